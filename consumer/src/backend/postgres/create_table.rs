//! Creating a bookkeeping table when it is missing, safely when several consumers (a group's
//! members, or replicas started together) reach a fresh database at once.
//!
//! PostgreSQL's `CREATE TABLE IF NOT EXISTS` is not safe against a concurrent identical create:
//! both sessions pass the existence check and the second fails on the catalog's unique index
//! (`pg_type_typname_nsp_index`, SQLSTATE 23505), which stopped a member at startup.
//!
//! Invariants:
//! - a table that exists costs one catalog read (`to_regclass`), no DDL and no lock, so the
//!   per-round callers (progress reload, round record) do not run DDL every round;
//! - a missing table is created in one implicit transaction that first takes a transaction
//!   advisory lock keyed on the table's name: concurrent creators run one after the other and
//!   the later one finds the table.

use tokio_postgres::Client;

/// Creates `public.<table>` with `columns` (the text inside the parentheses) unless it exists.
pub(super) async fn ensure(
    client: &Client,
    table: &str,
    columns: &str,
) -> std::result::Result<(), tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            &format!("SELECT to_regclass('public.{table}') IS NOT NULL"),
            &[],
        )
        .await?
        .try_get(0)?;
    if exists {
        return Ok(());
    }
    // Several statements in one simple query run as one transaction: the advisory lock is
    // held until the CREATE commits.
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(hashtext('cdc-create:{table}'));
             CREATE TABLE IF NOT EXISTS public.{table} ({columns})"
        ))
        .await
}
