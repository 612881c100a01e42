//! `verify`: compares a downstream database with the workload's model.
//!
//! Every column is read back as text through an expression chosen per dialect and column type
//! (binary as hex, PostgreSQL via `::text`, MySQL floats through DOUBLE), then compared with the
//! model's value by type: integers and text exactly, DECIMAL as a normalized number, FLOAT and
//! DOUBLE numerically, JSON as parsed documents. The table set and each table's column names
//! must match too. The result is a list of differences (empty when equal).

use crate::workload::{Model, ModelTable};
use anyhow::{bail, Context, Result};
use cdc_common::{ColumnDef, ColumnType, TableName, Value};
use mysql_async::prelude::Queryable;

/// Most differences listed before the rest are only counted.
pub const MAX_DIFFS: usize = 20;

/// Rows of one table as text, ordered by primary key: `(pk, values)`.
type TextRows = Vec<Vec<Option<String>>>;

/// A downstream to read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// Compares the downstream at `uri` with `model`; returns the differences (empty when equal).
pub async fn verify(uri: &str, schema: &str, model: &Model) -> Result<Vec<String>> {
    let mut diffs = Vec::new();
    let mut conn = Conn::open(uri).await?;
    let actual_tables = conn.tables(schema).await?;
    let expected: Vec<String> = model.tables.keys().map(|n| n.table.clone()).collect();
    for t in &actual_tables {
        if !expected.contains(t) {
            diffs.push(format!(
                "table `{schema}.{t}` exists downstream but not in the model"
            ));
        }
    }
    for (name, table) in &model.tables {
        if !actual_tables.contains(&name.table) {
            diffs.push(format!("table `{name}` is missing downstream"));
            continue;
        }
        compare_table(&mut conn, name, table, &mut diffs).await?;
        if diffs.len() > MAX_DIFFS * 4 {
            break;
        }
    }
    Ok(diffs)
}

async fn compare_table(
    conn: &mut Conn,
    name: &TableName,
    t: &ModelTable,
    diffs: &mut Vec<String>,
) -> Result<()> {
    let cols = conn.columns(name).await?;
    let expected: Vec<String> = t.def.columns.iter().map(|c| c.name.clone()).collect();
    if cols != expected {
        diffs.push(format!(
            "table `{name}`: columns {cols:?}, expected {expected:?}"
        ));
        return Ok(());
    }
    let rows = conn.rows(name, &t.def.columns).await?;
    if rows.len() != t.rows.len() {
        diffs.push(format!(
            "table `{name}`: {} rows downstream, {} in the model",
            rows.len(),
            t.rows.len()
        ));
    }
    let mut actual = rows.iter().peekable();
    for (key, expected_row) in &t.rows {
        // Skip downstream rows whose key is not in the model (extra rows).
        while let Some(r) = actual.peek() {
            let k: Option<i64> = r[0].as_deref().and_then(|s| s.parse().ok());
            if k.is_some_and(|k| k < *key) {
                diffs.push(format!(
                    "table `{name}`: extra row id={}",
                    k.unwrap_or_default()
                ));
                actual.next();
            } else {
                break;
            }
        }
        let Some(row) = actual.peek() else {
            diffs.push(format!("table `{name}`: missing row id={key}"));
            continue;
        };
        if row[0].as_deref() != Some(key.to_string().as_str()) {
            diffs.push(format!("table `{name}`: missing row id={key}"));
            continue;
        }
        for ((col, exp), act) in t.def.columns.iter().zip(expected_row).zip(row.iter()) {
            if !same(col, exp, act.as_deref()) {
                diffs.push(format!(
                    "table `{name}` id={key} column `{}`: downstream {act:?}, model {exp:?}",
                    col.name
                ));
            }
        }
        actual.next();
        if diffs.len() > MAX_DIFFS * 4 {
            return Ok(());
        }
    }
    for r in actual {
        diffs.push(format!("table `{name}`: extra row id={:?}", r[0]));
    }
    Ok(())
}

/// True when the downstream text `act` is the model value `exp` of column `col`.
fn same(col: &ColumnDef, exp: &Value, act: Option<&str>) -> bool {
    let Some(act) = act else { return exp.is_null() };
    match exp {
        Value::Null => false,
        Value::Int(i) => act == i.to_string(),
        Value::UInt(u) => act == u.to_string(),
        Value::Float(f) => act.parse::<f64>().is_ok_and(|a| (a as f32) == *f),
        Value::Double(d) => act
            .parse::<f64>()
            .is_ok_and(|a| a == *d || ((a - d) / d).abs() < 1e-12),
        Value::Decimal(d) => normalize_decimal(act) == normalize_decimal(d),
        Value::Bytes(b) => act.eq_ignore_ascii_case(&hex(b)),
        Value::String(s) if col.ty == ColumnType::Json => {
            let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
            parse(act).is_some() && parse(act) == parse(s)
        }
        Value::String(s) => act == s,
    }
}

fn normalize_decimal(s: &str) -> String {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let body = match (int.is_empty(), frac.is_empty()) {
        (true, true) => return "0".into(),
        (true, false) => format!("0.{frac}"),
        (false, true) => int.to_string(),
        (false, false) => format!("{int}.{frac}"),
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
    Mysql(mysql_async::Conn),
}

impl Conn {
    async fn open(uri: &str) -> Result<Conn> {
        let redacted = cdc_common::storage::redact_uri(uri);
        if let Some(path) = uri.strip_prefix("sqlite://") {
            let c = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .with_context(|| format!("opening {redacted}"))?;
            Ok(Conn::Sqlite(c))
        } else if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
            let (client, connection) = tokio_postgres::connect(uri, tokio_postgres::NoTls)
                .await
                .with_context(|| format!("connecting to {redacted}"))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Conn::Postgres(client))
        } else if uri.starts_with("mysql://") {
            let opts =
                mysql_async::Opts::from_url(uri).with_context(|| format!("parsing {redacted}"))?;
            let c = mysql_async::Conn::new(opts)
                .await
                .with_context(|| format!("connecting to {redacted}"))?;
            Ok(Conn::Mysql(c))
        } else {
            bail!("unsupported downstream `{redacted}` (sqlite://, postgres:// or mysql://)")
        }
    }

    fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
            Conn::Mysql(_) => Dialect::Mysql,
        }
    }

    /// Text queries returning rows of nullable strings.
    async fn query(&mut self, sql: &str) -> Result<TextRows> {
        match self {
            Conn::Sqlite(c) => {
                let mut st = c
                    .prepare(sql)
                    .with_context(|| format!("preparing `{sql}`"))?;
                let n = st.column_count();
                let rows = st.query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            use rusqlite::types::ValueRef;
                            Ok(match r.get_ref(i)? {
                                ValueRef::Null => None,
                                ValueRef::Integer(v) => Some(v.to_string()),
                                ValueRef::Real(v) => Some(v.to_string()),
                                ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                                ValueRef::Blob(b) => Some(hex(b)),
                            })
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            }
            Conn::Postgres(c) => {
                let msgs = c
                    .simple_query(sql)
                    .await
                    .with_context(|| format!("running `{sql}`"))?;
                Ok(msgs
                    .into_iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                        }
                        _ => None,
                    })
                    .collect())
            }
            Conn::Mysql(c) => {
                let rows: Vec<mysql_async::Row> = c
                    .query(sql)
                    .await
                    .with_context(|| format!("running `{sql}`"))?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| match r.as_ref(i) {
                                Some(mysql_async::Value::NULL) | None => None,
                                Some(mysql_async::Value::Bytes(b)) => {
                                    Some(String::from_utf8_lossy(b).into_owned())
                                }
                                Some(v) => Some(v.as_sql(true).trim_matches('\'').to_string()),
                            })
                            .collect()
                    })
                    .collect())
            }
        }
    }

    async fn tables(&mut self, schema: &str) -> Result<Vec<String>> {
        let sql = match self.dialect() {
            Dialect::Sqlite => format!(
                "SELECT substr(name, {}) FROM sqlite_master WHERE type = 'table' AND substr(name, 1, {}) = '{}.' ORDER BY name",
                schema.len() + 2,
                schema.len() + 1,
                sq(schema)
            ),
            Dialect::Postgres | Dialect::Mysql => format!(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = '{}' ORDER BY table_name",
                sq(schema)
            ),
        };
        Ok(self
            .query(&sql)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }

    async fn columns(&mut self, t: &TableName) -> Result<Vec<String>> {
        let sql = match self.dialect() {
            Dialect::Sqlite => format!("SELECT name FROM pragma_table_info('{}') ORDER BY cid", sq(&format!("{}.{}", t.schema, t.table))),
            Dialect::Postgres | Dialect::Mysql => format!(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = '{}' AND table_name = '{}' ORDER BY ordinal_position",
                sq(&t.schema),
                sq(&t.table)
            ),
        };
        Ok(self
            .query(&sql)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }

    async fn rows(&mut self, t: &TableName, cols: &[ColumnDef]) -> Result<TextRows> {
        let d = self.dialect();
        // Aliased, so that ORDER BY names the table's column, not the text expression
        // (PostgreSQL would otherwise sort `"id"::text` as text).
        let exprs: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS v{i}", select_expr(d, c)))
            .collect();
        let table = match d {
            Dialect::Sqlite => dq(&format!("{}.{}", t.schema, t.table)),
            Dialect::Postgres => format!("{}.{}", dq(&t.schema), dq(&t.table)),
            Dialect::Mysql => format!("{}.{}", bq(&t.schema), bq(&t.table)),
        };
        let pk = match d {
            Dialect::Mysql => bq(&cols[0].name),
            _ => dq(&cols[0].name),
        };
        self.query(&format!(
            "SELECT {} FROM {table} ORDER BY {pk}",
            exprs.join(", ")
        ))
        .await
    }
}

fn select_expr(d: Dialect, c: &ColumnDef) -> String {
    match d {
        // Blobs are hex-encoded when read (SQLite's hex(NULL) would be '', not NULL).
        Dialect::Sqlite => dq(&c.name),
        Dialect::Postgres => {
            let q = dq(&c.name);
            if c.ty.is_binary() {
                format!("encode({q}, 'hex')") // NULL stays NULL
            } else {
                format!("{q}::text")
            }
        }
        Dialect::Mysql => {
            let q = bq(&c.name);
            match c.ty {
                t if t.is_binary() => format!("IF({q} IS NULL, NULL, lower(hex({q})))"),
                ColumnType::Bit => format!("CAST({q} AS UNSIGNED)"),
                ColumnType::Float | ColumnType::Double => format!("CAST({q} AS DOUBLE)"),
                _ => format!("CAST({q} AS CHAR)"),
            }
        }
    }
}

fn sq(s: &str) -> String {
    s.replace('\'', "''")
}
fn dq(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
fn bq(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_normalize() {
        assert_eq!(normalize_decimal("0012.500"), "12.5");
        assert_eq!(normalize_decimal("-0.000"), "0");
        assert_eq!(normalize_decimal("-1.230"), "-1.23");
        assert_eq!(normalize_decimal("100"), "100");
    }

    #[test]
    fn values_compare_by_type() {
        let j = ColumnDef::new("j", ColumnType::Json);
        assert!(same(
            &j,
            &Value::String("{\"k\":1,\"s\":\"x\"}".into()),
            Some("{\"s\": \"x\", \"k\": 1}")
        ));
        let f = ColumnDef::new("f", ColumnType::Float);
        assert!(same(&f, &Value::Float(-2.25), Some("-2.25")));
        assert!(!same(&f, &Value::Float(-2.25), Some("-2.5")));
        let b = ColumnDef::new("b", ColumnType::Blob);
        assert!(same(&b, &Value::Bytes(vec![0, 255]), Some("00FF")));
        let i = ColumnDef::new("i", ColumnType::Int);
        assert!(same(&i, &Value::Null, None));
        assert!(!same(&i, &Value::Int(1), None));
        assert!(!same(&i, &Value::Null, Some("0")));
    }
}
