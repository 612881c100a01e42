//! MySQL/MariaDB's read-back of replicated tables as canonical text (see
//! [`crate::backend`]): tables and columns from `information_schema`, rows through the text
//! protocol with every column cast to text on the server (binary columns as lowercase hex,
//! BIT as its number, FLOAT and DOUBLE through DOUBLE). The bookkeeping tables in the
//! progress database are not listed. The ENUM/SET elements of an existing table come from
//! `COLUMN_TYPE` (the last source of [`crate::enum_elems`]).

use super::dialect::Mysql;
use crate::audit::ROUNDS_TABLE;
use crate::backend::dialect::Dialect;
use crate::backend::{order_columns, read_back_error, TextRows};
use crate::error::Result;
use crate::progress::PROGRESS_TABLE;
use crate::quarantine::QUARANTINE_TABLE;
use cdc_common::codec::elems::elems_of_type;
use cdc_common::{ColumnDef, ColumnType, TableName};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value as MyValue};

/// The tables of `schema` (a database), sorted by name; `progress_db` is the database of the
/// bookkeeping tables.
pub(super) async fn tables(
    conn: &mut Conn,
    schema: &str,
    progress_db: &str,
) -> Result<Vec<String>> {
    let names: Vec<String> = conn
        .exec(
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = ? ORDER BY table_name",
            (schema,),
        )
        .await
        .map_err(|e| read_back_error(schema, e))?;
    Ok(names
        .into_iter()
        .filter(|n| {
            let bookkeeping = n == PROGRESS_TABLE || n == QUARANTINE_TABLE || n == ROUNDS_TABLE;
            !(schema == progress_db && bookkeeping)
        })
        .collect())
}

/// The column names of a table, in ordinal order.
pub(super) async fn columns(conn: &mut Conn, table: &TableName) -> Result<Vec<String>> {
    conn.exec(
        "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
         WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        (table.schema.as_str(), table.table.as_str()),
    )
    .await
    .map_err(|e| read_back_error(&table.to_string(), e))
}

/// The ENUM/SET columns of a table with their elements, from `COLUMN_TYPE` (`enum('a','b')`,
/// quotes doubled as MySQL and MariaDB print them); a type whose list does not parse is left
/// out rather than guessed.
pub(super) async fn elems(
    conn: &mut Conn,
    table: &TableName,
) -> Result<Vec<(String, Vec<String>)>> {
    let types: Vec<(String, String)> = conn
        .exec(
            "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR) \
             FROM information_schema.columns WHERE table_schema = ? AND table_name = ? \
             AND data_type IN ('enum', 'set') ORDER BY ordinal_position",
            (table.schema.as_str(), table.table.as_str()),
        )
        .await
        .map_err(|e| read_back_error(&table.to_string(), e))?;
    Ok(types
        .into_iter()
        .filter_map(|(name, ty)| Some((name, elems_of_type(&ty)?)))
        .collect())
}

/// Every row of a table as canonical text, in key order.
pub(super) async fn rows(
    conn: &mut Conn,
    table: &TableName,
    columns: &[ColumnDef],
) -> Result<TextRows> {
    let t = Mysql.table(table);
    let select: Vec<String> = columns.iter().map(select_expr).collect();
    // Qualified, so that ORDER BY sorts the table's column, not a text expression.
    let order: Vec<String> = order_columns(columns)
        .into_iter()
        .map(|c| format!("{t}.{}", Mysql.quote(&c.name)))
        .collect();
    let sql = format!(
        "SELECT {} FROM {t} ORDER BY {}",
        select.join(", "),
        order.join(", ")
    );
    let rows: Vec<Row> = conn
        .query(sql)
        .await
        .map_err(|e| read_back_error(&table.to_string(), e))?;
    Ok(rows
        .into_iter()
        .map(|r| (0..r.len()).map(|i| text(r.as_ref(i))).collect())
        .collect())
}

/// The text expression of one column.
fn select_expr(c: &ColumnDef) -> String {
    let q = Mysql.quote(&c.name);
    match c.ty {
        t if t.is_binary() => format!("IF({q} IS NULL, NULL, lower(hex({q})))"),
        ColumnType::Bit => format!("CAST({q} AS UNSIGNED)"),
        ColumnType::Float | ColumnType::Double => format!("CAST({q} AS DOUBLE)"),
        _ => format!("CAST({q} AS CHAR)"),
    }
}

/// The text of one value of the text protocol.
fn text(v: Option<&MyValue>) -> Option<String> {
    match v {
        Some(MyValue::NULL) | None => None,
        Some(MyValue::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        Some(v) => Some(v.as_sql(true).trim_matches('\'').to_string()),
    }
}
