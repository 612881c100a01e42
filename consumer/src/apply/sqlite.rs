//! SQLite downstream (bundled SQLite through rusqlite).
//!
//! - One database file; table `s.t` is the single quoted identifier `"s.t"` (see [`crate::ddl`]).
//! - WAL journal with `synchronous=NORMAL`: a power loss may lose the last transactions, but
//!   rows and progress are in the same transaction, so they are lost *together* and replayed.
//! - Statements are prepared once per SQL text (rusqlite's statement cache): one text per
//!   (table, operation, batch size).

use super::{batches, downstream_error, Batch, Downstream, RowOp, Unit};
use crate::ddl::{DdlOp, Dialect, Sqlite};
use crate::error::{Error, Result};
use crate::progress::{Position, ProgressKey, PROGRESS_TABLE};
use crate::quarantine::{QuarantinedFile, QUARANTINE_TABLE};
use cdc_common::{TableDef, TableName, Ts, Value};
use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use rusqlite::{params_from_iter, Connection, ToSql};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The SQLite downstream.
pub struct SqliteDownstream {
    conn: Connection,
    batch_rows: usize,
    /// SQL texts by (table, version, statement kind, rows), built once.
    sql: SqlCache,
}

type SqlCache = HashMap<(TableName, Ts, &'static str, usize), Arc<str>>;

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

impl SqliteDownstream {
    /// Opens (creating) the database file.
    pub fn open(path: &Path, batch_rows: usize) -> Result<SqliteDownstream> {
        let conn = Connection::open(path).map_err(|e| Error::Connect {
            uri: format!("sqlite://{}", path.display()),
            reason: e.to_string(),
        })?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )
        .map_err(|e| Error::Connect {
            uri: format!("sqlite://{}", path.display()),
            reason: e.to_string(),
        })?;
        conn.set_prepared_statement_cache_capacity(512);
        Ok(SqliteDownstream {
            conn,
            batch_rows,
            sql: HashMap::new(),
        })
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

    fn run_rows(
        tx: &rusqlite::Transaction<'_>,
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
                        Batch::Upsert(_) => Self::upsert_sql(def, n),
                        Batch::Insert(_) => insert_head(def, n),
                        Batch::Delete(_) => Self::delete_sql(def, n),
                        Batch::DeleteOne(_) => Self::delete_one_sql(def),
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

/// The [`ProgressKey`] in columns 0..4 (`schema_name, table_name, partition_id, dispatcher`) of
/// a progress or quarantine row.
fn progress_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProgressKey> {
    Ok(ProgressKey {
        schema: r.get(0)?,
        table: r.get(1)?,
        partition: r.get(2)?,
        dispatcher: r.get(3)?,
    })
}

#[async_trait::async_trait]
impl Downstream for SqliteDownstream {
    async fn load_progress(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        let bad = |e: rusqlite::Error| downstream_error(PROGRESS_TABLE, "-", "progress", e);
        self.conn
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (
                    schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
                    partition_id TEXT NOT NULL, dispatcher TEXT NOT NULL,
                    table_version INTEGER NOT NULL, date_dir TEXT NOT NULL,
                    file_index INTEGER NOT NULL, commit_ts INTEGER NOT NULL,
                    PRIMARY KEY (schema_name, table_name, partition_id, dispatcher))"
            ))
            .map_err(bad)?;
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
                 date_dir, file_index, commit_ts FROM {PROGRESS_TABLE}"
            ))
            .map_err(bad)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    progress_key(r)?,
                    (
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                    ),
                ))
            })
            .map_err(bad)?;
        let mut out = Vec::new();
        for r in rows {
            let (k, (v, date, idx, ts)) = r.map_err(bad)?;
            let p = Position::from_columns(v, date, idx, ts)
                .map_err(|e| downstream_error(PROGRESS_TABLE, "-", "progress", e))?;
            out.push((k, p));
        }
        Ok(out)
    }

    async fn table_exists(&mut self, name: &TableName) -> Result<bool> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                [format!("{}.{}", name.schema, name.table)],
                |r| r.get(0),
            )
            .map_err(|e| downstream_error(&name.to_string(), "-", "table lookup", e))?;
        Ok(n > 0)
    }

    async fn apply(&mut self, unit: Unit<'_>) -> Result<()> {
        let batch_rows = self.batch_rows;
        let cache = &mut self.sql;
        let tname = unit.table.map(|t| t.name().to_string()).unwrap_or_default();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| downstream_error(&tname, unit.file, "begin", e))?;
        for op in unit.ddl {
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
                    .map_err(|e| downstream_error(schema, unit.file, "ddl: drop schema", e))?;
                let names: Vec<String> = st
                    .query_map([schema], |r| r.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(|e| downstream_error(schema, unit.file, "ddl: drop schema", e))?;
                for n in names {
                    stmts.push(format!(
                        "DROP TABLE IF EXISTS {}",
                        Sqlite.table(&TableName::new(schema.as_str(), n))
                    ));
                }
            }
            for sql in stmts {
                tx.execute_batch(&sql).map_err(|e| {
                    downstream_error(&op.target(), unit.file, &format!("ddl: {}", op.kind()), e)
                })?;
            }
        }
        if let Some(def) = unit.table {
            if !unit.rows.is_empty() {
                Self::run_rows(&tx, cache, def, unit.file, unit.rows, batch_rows)?;
            }
        }
        for (k, p) in unit.progress {
            let (v, idx, ts) = p
                .to_columns()
                .map_err(|e| downstream_error(&tname, unit.file, "progress", e))?;
            let mut st = tx
                .prepare_cached(&format!(
                    "INSERT INTO {PROGRESS_TABLE} (schema_name, table_name, partition_id, dispatcher, \
                     table_version, date_dir, file_index, commit_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (schema_name, table_name, partition_id, dispatcher) DO UPDATE SET \
                     table_version = excluded.table_version, date_dir = excluded.date_dir, \
                     file_index = excluded.file_index, commit_ts = excluded.commit_ts"
                ))
                .map_err(|e| downstream_error(&tname, unit.file, "progress", e))?;
            st.execute(rusqlite::params![
                k.schema,
                k.table,
                k.partition,
                k.dispatcher,
                v,
                p.date,
                idx,
                ts
            ])
            .map_err(|e| downstream_error(&tname, unit.file, "progress", e))?;
        }
        if let Some(q) = unit.quarantine {
            let bad = |e: rusqlite::Error| downstream_error(&tname, unit.file, "quarantine", e);
            let (v, idx, before, at) = q
                .to_columns()
                .map_err(|e| downstream_error(&tname, unit.file, "quarantine", e))?;
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO {QUARANTINE_TABLE} (schema_name, table_name, \
                     partition_id, dispatcher, table_version, date_dir, file_index, path, reason, \
                     commit_ts_before, quarantined_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                rusqlite::params![
                    q.key.schema,
                    q.key.table,
                    q.key.partition,
                    q.key.dispatcher,
                    v,
                    q.date,
                    idx,
                    q.path,
                    q.reason,
                    before,
                    at,
                ],
            )
            .map_err(bad)?;
        }
        tx.commit()
            .map_err(|e| downstream_error(&tname, unit.file, "commit", e))?;
        Ok(())
    }

    async fn load_quarantine(&mut self, create: bool) -> Result<Vec<QuarantinedFile>> {
        let bad = |e: rusqlite::Error| downstream_error(QUARANTINE_TABLE, "-", "quarantine", e);
        if create {
            self.conn
                .execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (
                        schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
                        partition_id TEXT NOT NULL, dispatcher TEXT NOT NULL,
                        table_version INTEGER NOT NULL, date_dir TEXT NOT NULL,
                        file_index INTEGER NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL,
                        commit_ts_before INTEGER NOT NULL, quarantined_at_ms INTEGER NOT NULL,
                        PRIMARY KEY (schema_name, table_name, partition_id, dispatcher,
                                     table_version, date_dir, file_index))"
                ))
                .map_err(bad)?;
        } else {
            let n: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                    [QUARANTINE_TABLE],
                    |r| r.get(0),
                )
                .map_err(bad)?;
            if n == 0 {
                return Ok(Vec::new());
            }
        }
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
                 date_dir, file_index, path, reason, commit_ts_before, quarantined_at_ms \
                 FROM {QUARANTINE_TABLE} ORDER BY quarantined_at_ms, path"
            ))
            .map_err(bad)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    progress_key(r)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, i64>(10)?,
                ))
            })
            .map_err(bad)?;
        let mut out = Vec::new();
        for r in rows {
            let (key, version, date, index, path, reason, before, at) = r.map_err(bad)?;
            out.push(
                QuarantinedFile::from_columns(
                    key,
                    date,
                    path,
                    reason,
                    (version, index, before, at),
                )
                .map_err(|e| downstream_error(QUARANTINE_TABLE, "-", "quarantine", e))?,
            );
        }
        Ok(out)
    }
}
