//! PostgreSQL's read-back of replicated tables as canonical text (see [`crate::backend`]):
//! tables and columns from `information_schema`, rows through the simple (text) protocol with
//! every column cast to `text` (binary columns `encode(.., 'hex')`, which keeps NULL a NULL).
//! The bookkeeping tables in `public` are not listed.

use super::dialect::Postgres;
use super::error::PgError;
use crate::audit::ROUNDS_TABLE;
use crate::backend::dialect::Dialect;
use crate::backend::{order_columns, read_back_error, TextRows};
use crate::error::Result;
use crate::progress::PROGRESS_TABLE;
use crate::quarantine::QUARANTINE_TABLE;
use cdc_common::{ColumnDef, TableName};
use tokio_postgres::{Client, SimpleQueryMessage};

/// The tables of `schema`, sorted by name.
pub(super) async fn tables(client: &Client, schema: &str) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = $1::text ORDER BY table_name",
            &[&schema],
        )
        .await
        .map_err(|e| read_back_error(schema, PgError(&e)))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let name: String = r
            .try_get(0)
            .map_err(|e| read_back_error(schema, PgError(&e)))?;
        let bookkeeping =
            name == PROGRESS_TABLE || name == QUARANTINE_TABLE || name == ROUNDS_TABLE;
        if !(schema == "public" && bookkeeping) {
            out.push(name);
        }
    }
    Ok(out)
}

/// The column names of a table, in ordinal order.
pub(super) async fn columns(client: &Client, table: &TableName) -> Result<Vec<String>> {
    let bad = |e: tokio_postgres::Error| read_back_error(&table.to_string(), PgError(&e));
    let rows = client
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = $1::text AND table_name = $2::text ORDER BY ordinal_position",
            &[&table.schema, &table.table],
        )
        .await
        .map_err(bad)?;
    rows.iter().map(|r| r.try_get(0).map_err(bad)).collect()
}

/// Every row of a table as canonical text, in key order.
pub(super) async fn rows(
    client: &Client,
    table: &TableName,
    columns: &[ColumnDef],
) -> Result<TextRows> {
    let t = Postgres.table(table);
    let select: Vec<String> = columns.iter().map(select_expr).collect();
    // Qualified, so that ORDER BY sorts the table's column, not the text expression of the
    // same name (PostgreSQL would otherwise sort `"id"::text` as text).
    let order: Vec<String> = order_columns(columns)
        .into_iter()
        .map(|c| format!("{t}.{}", Postgres.quote(&c.name)))
        .collect();
    let sql = format!(
        "SELECT {} FROM {t} ORDER BY {}",
        select.join(", "),
        order.join(", ")
    );
    let messages = client
        .simple_query(&sql)
        .await
        .map_err(|e| read_back_error(&table.to_string(), PgError(&e)))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// The text expression of one column.
fn select_expr(c: &ColumnDef) -> String {
    let q = Postgres.quote(&c.name);
    if c.ty.is_binary() {
        format!("encode({q}, 'hex')") // NULL stays NULL
    } else {
        format!("{q}::text")
    }
}
