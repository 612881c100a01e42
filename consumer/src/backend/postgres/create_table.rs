//! Creating a bookkeeping table when it is missing, safely when several consumers (a group's
//! members, or replicas started together) reach a fresh database at once.
//!
//! PostgreSQL's `CREATE TABLE IF NOT EXISTS` is not safe against a concurrent identical create:
//! both sessions pass the existence check and the second fails on the catalog's unique index
//! (`pg_type_typname_nsp_index`, SQLSTATE 23505), which stopped a member at startup.
//!
//! Invariants:
//! - a table that exists with its indexes costs one catalog read (`to_regclass`), no DDL and
//!   no lock, so the per-round callers (progress reload, round record) do not run DDL every
//!   round;
//! - a missing table or index is created in one implicit transaction that first takes a
//!   transaction advisory lock keyed on the table's name: concurrent creators run one after
//!   the other and the later one finds them (`CREATE INDEX IF NOT EXISTS` has the same race
//!   on the catalog as the table). An index added to a table an older version created is
//!   created the same way, by the first call that finds it missing; a role refused the
//!   privilege to create it goes on without it (a warning once per connection).

use tokio_postgres::Client;

/// Creates `public.<table>` with `columns` (the text inside the parentheses) unless it exists.
pub(super) async fn ensure(
    client: &Client,
    table: &str,
    columns: &str,
) -> std::result::Result<(), tokio_postgres::Error> {
    ensure_indexed(client, table, columns, &[], &mut false).await
}

/// [`ensure`], and each `(name, columns)` of `indexes` as `public.<name>` on it. An index is
/// a speed-up, not a condition: on a table that exists, a role that may not create it (it
/// does not own the table, as when a DBA created the bookkeeping tables and granted only reads
/// and writes) is warned with the statement to run and goes on without it; `refused` (kept by
/// the caller per connection) is set then, and no later call asks again (review helper-75:
/// the round record stopped being stored for such a role).
pub(super) async fn ensure_indexed(
    client: &Client,
    table: &str,
    columns: &str,
    indexes: &[(&str, &str)],
    refused: &mut bool,
) -> std::result::Result<(), tokio_postgres::Error> {
    let mut probe = format!("SELECT to_regclass('public.{table}') IS NOT NULL");
    for (name, _) in indexes {
        probe.push_str(&format!(", to_regclass('public.{name}') IS NOT NULL"));
    }
    let row = client.query_one(&probe, &[]).await?;
    let table_there: bool = row.try_get(0)?;
    let mut missing = Vec::new();
    for (i, ix) in indexes.iter().enumerate() {
        if !row.try_get::<_, bool>(i + 1)? && !*refused {
            missing.push(ix);
        }
    }
    if table_there && missing.is_empty() {
        return Ok(());
    }
    // Several statements in one simple query run as one transaction: the advisory lock is
    // held until the CREATEs commit.
    let mut ddl = format!("SELECT pg_advisory_xact_lock(hashtext('cdc-create:{table}'))");
    if !table_there {
        ddl.push_str(&format!(
            ";\n CREATE TABLE IF NOT EXISTS public.{table} ({columns})"
        ));
    }
    for (name, cols) in &missing {
        ddl.push_str(&format!(
            ";\n CREATE INDEX IF NOT EXISTS {name} ON public.{table} ({cols})"
        ));
    }
    match client.batch_execute(&ddl).await {
        Err(e) if table_there => {
            let statements: Vec<String> = missing
                .iter()
                .map(|(name, cols)| format!("CREATE INDEX {name} ON public.{table} ({cols})"))
                .collect();
            if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
                *refused = true;
            }
            tracing::warn!(
                table = %format!("public.{table}"),
                error = %e,
                "could not create an index the consumer keeps its round bookkeeping fast with; \
                 going on without it (a role that owns the table can run: {})",
                statements.join("; ")
            );
            Ok(())
        }
        r => r,
    }
}
