//! The SQLite apply path: one transaction per [`Unit`] holding its DDL, its row statements
//! (multi-row `INSERT ... ON CONFLICT DO UPDATE` upserts, `DELETE ... IN` by key, rowid-limited
//! delete of one matching row for tables without a key), its progress rows and its quarantine
//! record. SQL texts are built once per (table version, statement kind, rows) and prepared
//! through rusqlite's statement cache.

use super::bookkeeping;
use super::dialect::Sqlite;
use crate::backend::dialect::Dialect;
use crate::backend::{downstream_error, Unit};
use crate::ddl::DdlOp;
use crate::error::Result;
use crate::plan::{batches, Batch, RowOp};
use crate::progress::PROGRESS_TABLE;
use cdc_common::{TableDef, TableName, Ts, Value};
use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use rusqlite::{params_from_iter, Connection, ToSql, Transaction};
use std::collections::HashMap;
use std::sync::Arc;

/// SQL texts by (table, version, statement kind, rows), built once.
pub(super) type SqlCache = HashMap<(TableName, Ts, &'static str, usize), Arc<str>>;

/// A bound value.
struct Bind<'a>(&'a Value);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Owned(SqlValue::Null),
            Value::Int(i) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            Value::UInt(u) => match i64::try_from(*u) {
                Ok(i) => ToSqlOutput::Owned(SqlValue::Integer(i)),
                // Above i64::MAX: kept exact as text.
                Err(_) => ToSqlOutput::Owned(SqlValue::Text(u.to_string())),
            },
            // Through the shortest text so 0.1f32 stays 0.1, not 0.10000000149.
            Value::Float(f) => ToSqlOutput::Owned(SqlValue::Real(
                f.to_string().parse::<f64>().unwrap_or(f64::from(*f)),
            )),
            Value::Double(d) => ToSqlOutput::Owned(SqlValue::Real(*d)),
            Value::Decimal(s) | Value::String(s) => ToSqlOutput::from(s.as_str()),
            Value::Bytes(b) => ToSqlOutput::from(b.as_slice()),
        })
    }
}

/// Applies one unit in one transaction (see the module doc).
pub(super) fn apply(
    conn: &mut Connection,
    cache: &mut SqlCache,
    batch_rows: usize,
    unit: Unit<'_>,
) -> Result<()> {
    let tname = unit.table.map(|t| t.name().to_string()).unwrap_or_default();
    let tx = conn
        .transaction()
        .map_err(|e| downstream_error(&tname, unit.file, "begin", e))?;
    for op in unit.ddl {
        run_ddl(&tx, op, unit.file)?;
    }
    if let Some(def) = unit.table {
        if !unit.rows.is_empty() {
            run_rows(&tx, cache, def, unit.file, unit.rows, batch_rows)?;
        }
    }
    bookkeeping::write_progress(&tx, &tname, &unit)?;
    if let Some(q) = unit.quarantine {
        bookkeeping::write_quarantine(&tx, &tname, unit.file, q)?;
    }
    tx.commit()
        .map_err(|e| downstream_error(&tname, unit.file, "commit", e))?;
    Ok(())
}

/// Runs the statements of one DDL operation inside the unit's transaction.
fn run_ddl(tx: &Transaction<'_>, op: &DdlOp, file: &str) -> Result<()> {
    let mut stmts = Sqlite.ddl(op);
    if let DdlOp::DropSchema { schema, .. } = op {
        // Also the schema's tables the consumer did not see this run (e.g. before a
        // restart): every table it created has a progress row. Not a name prefix scan:
        // `"a.b.t"` may be table `b.t` of schema `a` or table `t` of schema `a.b`.
        let mut st = tx
            .prepare(&format!(
                "SELECT DISTINCT table_name FROM {PROGRESS_TABLE} \
                 WHERE schema_name = ? AND table_name <> ''"
            ))
            .map_err(|e| downstream_error(schema, file, "ddl: drop schema", e))?;
        let names: Vec<String> = st
            .query_map([schema], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| downstream_error(schema, file, "ddl: drop schema", e))?;
        for n in names {
            stmts.push(format!(
                "DROP TABLE IF EXISTS {}",
                Sqlite.table(&TableName::new(schema.as_str(), n))
            ));
        }
    }
    for sql in stmts {
        tx.execute_batch(&sql)
            .map_err(|e| downstream_error(&op.target(), file, &format!("ddl: {}", op.kind()), e))?;
    }
    Ok(())
}

fn upsert_sql(def: &TableDef, rows: usize) -> String {
    let d = Sqlite;
    let cols: Vec<String> = def.columns.iter().map(|c| d.quote(&c.name)).collect();
    let mut s = insert_head(def, rows);
    let pk: Vec<String> = def
        .columns
        .iter()
        .filter(|c| c.primary_key)
        .map(|c| d.quote(&c.name))
        .collect();
    let set: Vec<String> = def
        .columns
        .iter()
        .filter(|c| !c.primary_key)
        .map(|c| format!("{0} = excluded.{0}", d.quote(&c.name)))
        .collect();
    let _ = cols;
    if set.is_empty() {
        s.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", pk.join(", ")));
    } else {
        s.push_str(&format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            pk.join(", "),
            set.join(", ")
        ));
    }
    s
}

fn delete_sql(def: &TableDef, rows: usize) -> String {
    let d = Sqlite;
    let pk: Vec<String> = def
        .columns
        .iter()
        .filter(|c| c.primary_key)
        .map(|c| d.quote(&c.name))
        .collect();
    let t = d.table(&def.name());
    if pk.len() == 1 {
        format!(
            "DELETE FROM {t} WHERE {} IN ({})",
            pk[0],
            vec!["?"; rows].join(", ")
        )
    } else {
        let one = format!(
            "({})",
            pk.iter()
                .map(|c| format!("{c} = ?"))
                .collect::<Vec<_>>()
                .join(" AND ")
        );
        format!("DELETE FROM {t} WHERE {}", vec![one; rows].join(" OR "))
    }
}

fn delete_one_sql(def: &TableDef) -> String {
    let d = Sqlite;
    let t = d.table(&def.name());
    let cond: Vec<String> = def
        .columns
        .iter()
        .map(|c| format!("{} IS ?", d.quote(&c.name)))
        .collect();
    format!(
        "DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE {} LIMIT 1)",
        cond.join(" AND ")
    )
}

/// Runs the row operations of a unit as batched statements inside its transaction.
fn run_rows(
    tx: &Transaction<'_>,
    cache: &mut SqlCache,
    def: &TableDef,
    file: &str,
    ops: &[RowOp],
    batch_rows: usize,
) -> Result<()> {
    let pk = def.pk_indexes();
    let name = def.name().to_string();
    for b in batches(def, ops, batch_rows) {
        let (n, params): (usize, Vec<&Value>) = match &b {
            Batch::Upsert(rows) | Batch::Insert(rows) => {
                (rows.len(), rows.iter().flat_map(|r| r.iter()).collect())
            }
            Batch::Delete(rows) => (
                rows.len(),
                rows.iter()
                    .flat_map(|r| pk.iter().filter_map(|i| r.get(*i)))
                    .collect(),
            ),
            Batch::DeleteOne(r) => (1, r.iter().collect()),
        };
        if cache.len() > 4096 {
            cache.clear();
        }
        let sql = cache
            .entry((def.name(), def.version, b.kind(), n))
            .or_insert_with(|| {
                Arc::from(match &b {
                    Batch::Upsert(_) => upsert_sql(def, n),
                    Batch::Insert(_) => insert_head(def, n),
                    Batch::Delete(_) => delete_sql(def, n),
                    Batch::DeleteOne(_) => delete_one_sql(def),
                })
            })
            .clone();
        let mut st = tx
            .prepare_cached(&sql)
            .map_err(|e| downstream_error(&name, file, b.kind(), e))?;
        st.execute(params_from_iter(params.into_iter().map(Bind)))
            .map_err(|e| downstream_error(&name, file, b.kind(), e))?;
    }
    Ok(())
}

/// `INSERT INTO t (cols) VALUES (?,..),(?,..)` for `rows` rows.
fn insert_head(def: &TableDef, rows: usize) -> String {
    let d = Sqlite;
    let cols: Vec<String> = def.columns.iter().map(|c| d.quote(&c.name)).collect();
    let one = format!("({})", vec!["?"; cols.len()].join(", "));
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        d.table(&def.name()),
        cols.join(", "),
        vec![one; rows].join(", ")
    )
}
