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
//!   created the same way, by the first call that finds it missing.

use tokio_postgres::Client;

/// Creates `public.<table>` with `columns` (the text inside the parentheses) unless it exists.
pub(super) async fn ensure(
    client: &Client,
    table: &str,
    columns: &str,
) -> std::result::Result<(), tokio_postgres::Error> {
    ensure_indexed(client, table, columns, &[]).await
}

/// [`ensure`], and each `(name, columns)` of `indexes` as `public.<name>` on it.
pub(super) async fn ensure_indexed(
    client: &Client,
    table: &str,
    columns: &str,
    indexes: &[(&str, &str)],
) -> std::result::Result<(), tokio_postgres::Error> {
    let mut all = format!("to_regclass('public.{table}') IS NOT NULL");
    for (name, _) in indexes {
        all.push_str(&format!(" AND to_regclass('public.{name}') IS NOT NULL"));
    }
    let exists: bool = client
        .query_one(&format!("SELECT {all}"), &[])
        .await?
        .try_get(0)?;
    if exists {
        return Ok(());
    }
    // Several statements in one simple query run as one transaction: the advisory lock is
    // held until the CREATEs commit.
    let mut ddl = format!(
        "SELECT pg_advisory_xact_lock(hashtext('cdc-create:{table}'));
         CREATE TABLE IF NOT EXISTS public.{table} ({columns})"
    );
    for (name, cols) in indexes {
        ddl.push_str(&format!(
            ";\n CREATE INDEX IF NOT EXISTS {name} ON public.{table} ({cols})"
        ));
    }
    client.batch_execute(&ddl).await
}
