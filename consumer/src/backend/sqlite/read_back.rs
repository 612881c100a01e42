//! SQLite's read-back of replicated tables as canonical text (see [`crate::backend`]):
//! tables are the `"schema.table"` names of `sqlite_master`, columns come from
//! `pragma_table_info`, and each value is converted by its stored type (integers and reals as
//! Rust prints them, text as is, blobs as lowercase hex; `hex()` in SQL would turn NULL into
//! `''`).

use super::dialect::Sqlite;
use crate::backend::dialect::Dialect;
use crate::backend::{hex, order_columns, read_back_error, TextRows};
use crate::error::Result;
use cdc_common::{ColumnDef, TableName};
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// The tables of `schema`: names `schema.<table>` in the one namespace, sorted.
pub(super) fn tables(conn: &Connection, schema: &str) -> Result<Vec<String>> {
    let bad = |e: rusqlite::Error| read_back_error(schema, e);
    let mut st = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .map_err(bad)?;
    let all: Vec<String> = st
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(bad)?;
    let prefix = format!("{schema}.");
    Ok(all
        .into_iter()
        .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string))
        .collect())
}

/// The column names of a table, in declaration order.
pub(super) fn columns(conn: &Connection, table: &TableName) -> Result<Vec<String>> {
    let bad = |e: rusqlite::Error| read_back_error(&table.to_string(), e);
    let mut st = conn
        .prepare("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        .map_err(bad)?;
    let names = st
        .query_map([format!("{}.{}", table.schema, table.table)], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(bad)?;
    Ok(names)
}

/// Every row of a table as canonical text, in key order.
pub(super) fn rows(
    conn: &Connection,
    table: &TableName,
    columns: &[ColumnDef],
) -> Result<TextRows> {
    let bad = |e: rusqlite::Error| read_back_error(&table.to_string(), e);
    let t = Sqlite.table(table);
    let select: Vec<String> = columns.iter().map(|c| Sqlite.quote(&c.name)).collect();
    // Qualified, so that ORDER BY names the table's column even when a column is named like
    // another one's output.
    let order: Vec<String> = order_columns(columns)
        .into_iter()
        .map(|c| format!("{t}.{}", Sqlite.quote(&c.name)))
        .collect();
    let sql = format!(
        "SELECT {} FROM {t} ORDER BY {}",
        select.join(", "),
        order.join(", ")
    );
    let mut st = conn.prepare(&sql).map_err(bad)?;
    let n = columns.len();
    let rows = st
        .query_map([], |r| (0..n).map(|i| Ok(text(r.get_ref(i)?))).collect())
        .and_then(|rows| rows.collect())
        .map_err(bad)?;
    Ok(rows)
}

/// The canonical text of one stored value.
fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(v) => Some(v.to_string()),
        ValueRef::Real(v) => Some(v.to_string()),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Some(hex(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::ColumnType;

    #[test]
    fn rows_read_back_as_canonical_text_in_key_order() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE \"s.t\" (id INTEGER, b BLOB, r REAL, n TEXT);
             INSERT INTO \"s.t\" VALUES (2, x'00ff', 0.5, NULL), (1, NULL, 2.0, 'x');
             CREATE TABLE \"s2.u\" (id INTEGER);
             CREATE TABLE cdc_consumer_progress (id INTEGER);",
        )
        .unwrap();
        let t = TableName::new("s", "t");
        let cols = [
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            ColumnDef::new("b", ColumnType::Blob),
            ColumnDef::new("r", ColumnType::Double),
            ColumnDef::new("n", ColumnType::Text),
        ];
        let text = |v: &str| Some(v.to_string());
        assert_eq!(
            rows(&conn, &t, &cols).unwrap(),
            vec![
                vec![text("1"), None, text("2"), text("x")],
                vec![text("2"), text("00ff"), text("0.5"), None],
            ]
        );
        assert_eq!(columns(&conn, &t).unwrap(), ["id", "b", "r", "n"]);
        assert_eq!(tables(&conn, "s").unwrap(), ["t"]);
        assert!(columns(&conn, &TableName::new("s", "none"))
            .unwrap()
            .is_empty());
    }
}
