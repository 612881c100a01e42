//! MySQL/MariaDB downstream (mysql_async, binary protocol, no TLS).
//!
//! - Upstream schemas are databases; column types are MySQL's own (`ColumnDef::sql_type`).
//! - Multi-row `INSERT ... ON DUPLICATE KEY UPDATE c = VALUES(c)` for upserts, `DELETE ... WHERE
//!   (pk) IN (...)` for deletes, `DELETE ... WHERE c <=> ? ... LIMIT 1` for tables without key.
//!   Statements are prepared server-side and cached per SQL text by the driver's statement
//!   cache (one text per table version, operation and batch size).
//! - DDL autocommits in MySQL, so a unit's DDL runs before its transaction, and the statements
//!   are idempotent (`IF [NOT] EXISTS`, including MariaDB's column clauses; renames check that
//!   the source still exists), so a crash between the DDL and the progress commit re-runs
//!   harmless statements. Rows and progress are one transaction.
//! - Before writing progress, a locking read of the stream's progress row: a consumer killed
//!   right after sending `COMMIT` leaves a server session that still commits, after a restarted
//!   consumer may have read the progress record; the restarted one then applies the same unit,
//!   waits on the row lock, finds the unit's own position stored and rolls back, so the unit is
//!   applied exactly once.
//! - The progress table lives in the URI's database (`cdc_consumer` when the URI names none).
//! - The session runs with `time_zone = '+00:00'` (TIMESTAMP values are UTC text) and
//!   `NO_BACKSLASH_ESCAPES` added to its `sql_mode`: the only string literals in our SQL text
//!   are ENUM/SET elements in DDL, written with `'` doubled, and a backslash in them must stay
//!   a backslash (without the mode, an element ending in `\` would escape the closing quote and
//!   let the rest of the definition be read as SQL). Every value is a bound parameter.

use super::{batches, downstream_error, warn_already_applied, Batch, Downstream, RowOp, Unit};
use crate::ddl::{Dialect, Mysql};
use crate::error::{Error, Result};
use crate::progress::{Position, ProgressKey, PROGRESS_TABLE};
use crate::quarantine::{QuarantinedFile, QUARANTINE_TABLE};
use cdc_common::storage::redact_uri;
use cdc_common::{TableDef, TableName, Value};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params, TxOpts, Value as MyValue};

/// Statements kept prepared per connection.
const STMT_CACHE: usize = 512;

/// The MySQL/MariaDB downstream.
pub struct MysqlDownstream {
    conn: Conn,
    batch_rows: usize,
    /// Quoted database of the progress and quarantine tables.
    progress_db: String,
    /// The same database, unquoted (for information_schema lookups).
    progress_db_name: String,
}

fn my_value(v: &Value) -> MyValue {
    match v {
        Value::Null => MyValue::NULL,
        Value::Int(i) => MyValue::Int(*i),
        Value::UInt(u) => MyValue::UInt(*u),
        Value::Float(f) => MyValue::Float(*f),
        Value::Double(d) => MyValue::Double(*d),
        Value::Decimal(s) | Value::String(s) => MyValue::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => MyValue::Bytes(b.clone()),
    }
}

impl MysqlDownstream {
    /// Connects to `uri` (`mysql://user[:password]@host[:port][/db]`).
    pub async fn connect(uri: &str, batch_rows: usize) -> Result<MysqlDownstream> {
        let bad = |reason: String| Error::Connect {
            uri: redact_uri(uri),
            reason,
        };
        let opts = Opts::from_url(uri).map_err(|e| bad(e.to_string()))?;
        let db = opts.db_name().unwrap_or("cdc_consumer").to_string();
        let opts = OptsBuilder::from_opts(opts)
            .stmt_cache_size(STMT_CACHE)
            .init(vec![
                "SET time_zone = '+00:00'",
                "SET NAMES utf8mb4",
                // String literals in DDL (ENUM/SET elements) are written with `'` doubled; a
                // backslash must then be an ordinary character, or an element ending in `\`
                // would escape the closing quote.
                "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), \
                 'NO_BACKSLASH_ESCAPES')",
            ]);
        let conn = Conn::new(opts).await.map_err(|e| bad(e.to_string()))?;
        Ok(MysqlDownstream {
            conn,
            batch_rows,
            progress_db: Mysql.quote(&db),
            progress_db_name: db,
        })
    }

    fn statement(def: &TableDef, b: &Batch<'_>) -> (String, Vec<MyValue>) {
        let d = Mysql;
        let t = d.table(&def.name());
        let cols: Vec<String> = def.columns.iter().map(|c| d.quote(&c.name)).collect();
        let pk = def.pk_indexes();
        let one = |n: usize| format!("({})", vec!["?"; n].join(", "));
        match b {
            Batch::Upsert(rows) | Batch::Insert(rows) => {
                let mut s = format!(
                    "INSERT INTO {t} ({}) VALUES {}",
                    cols.join(", "),
                    vec![one(cols.len()); rows.len()].join(", ")
                );
                if matches!(b, Batch::Upsert(_)) {
                    let set: Vec<String> = def
                        .columns
                        .iter()
                        .filter(|c| !c.primary_key)
                        .map(|c| format!("{0} = VALUES({0})", d.quote(&c.name)))
                        .collect();
                    let first_key = pk.first().and_then(|i| def.columns.get(*i));
                    let set = if let (true, Some(k)) = (set.is_empty(), first_key) {
                        let k = d.quote(&k.name);
                        format!("{k} = {k}")
                    } else {
                        set.join(", ")
                    };
                    s.push_str(&format!(" ON DUPLICATE KEY UPDATE {set}"));
                }
                let params = rows.iter().flat_map(|r| r.iter().map(my_value)).collect();
                (s, params)
            }
            Batch::Delete(rows) => {
                let key: Vec<String> = pk.iter().map(|i| d.quote(&def.columns[*i].name)).collect();
                let s = format!(
                    "DELETE FROM {t} WHERE ({}) IN ({})",
                    key.join(", "),
                    vec![one(pk.len()); rows.len()].join(", ")
                );
                let params = rows
                    .iter()
                    .flat_map(|r| {
                        pk.iter()
                            .map(|i| my_value(r.get(*i).unwrap_or(&Value::Null)))
                    })
                    .collect();
                (s, params)
            }
            Batch::DeleteOne(r) => {
                let cond: Vec<String> = cols.iter().map(|c| format!("{c} <=> ?")).collect();
                let s = format!("DELETE FROM {t} WHERE {} LIMIT 1", cond.join(" AND "));
                (s, r.iter().map(my_value).collect())
            }
        }
    }
}

#[async_trait::async_trait]
impl Downstream for MysqlDownstream {
    async fn load_progress(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        let bad = |e: mysql_async::Error| downstream_error(PROGRESS_TABLE, "-", "progress", e);
        let db = &self.progress_db;
        self.conn
            .query_drop(format!("CREATE DATABASE IF NOT EXISTS {db}"))
            .await
            .map_err(bad)?;
        self.conn
            .query_drop(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{PROGRESS_TABLE} (
                    schema_name VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL,
                    partition_id VARCHAR(20) NOT NULL, dispatcher VARCHAR(130) NOT NULL,
                    table_version BIGINT NOT NULL, date_dir VARCHAR(10) NOT NULL,
                    file_index BIGINT NOT NULL, commit_ts BIGINT NOT NULL,
                    PRIMARY KEY (schema_name, table_name, partition_id, dispatcher)
                 ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"
            ))
            .await
            .map_err(bad)?;
        type Row = (String, String, String, String, i64, String, i64, i64);
        let rows: Vec<Row> = self
            .conn
            .query(format!(
                "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
                 date_dir, file_index, commit_ts FROM {db}.{PROGRESS_TABLE}"
            ))
            .await
            .map_err(bad)?;
        let mut out = Vec::new();
        for (schema, table, partition, dispatcher, v, date, idx, ts) in rows {
            out.push((
                ProgressKey {
                    schema,
                    table,
                    partition,
                    dispatcher,
                },
                Position::from_columns(v, date, idx, ts)
                    .map_err(|e| downstream_error(PROGRESS_TABLE, "-", "progress", e))?,
            ));
        }
        Ok(out)
    }

    async fn table_exists(&mut self, name: &TableName) -> Result<bool> {
        let n: Option<i64> = self
            .conn
            .exec_first(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                (name.schema.as_str(), name.table.as_str()),
            )
            .await
            .map_err(|e| downstream_error(&name.to_string(), "-", "table lookup", e))?;
        Ok(n.unwrap_or(0) > 0)
    }

    async fn apply(&mut self, unit: Unit<'_>) -> Result<()> {
        let tname = unit.table.map(|t| t.name().to_string()).unwrap_or_default();
        // DDL autocommits: run it first, idempotently (see the module doc).
        for op in unit.ddl {
            for sql in Mysql.ddl(op) {
                self.conn.query_drop(sql).await.map_err(|e| {
                    downstream_error(&op.target(), unit.file, &format!("ddl: {}", op.kind()), e)
                })?;
            }
        }
        let batch_rows = self.batch_rows;
        let progress_db = self.progress_db.clone();
        let mut tx = self
            .conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| downstream_error(&tname, unit.file, "begin", e))?;
        if let Some(def) = unit.table {
            let ops: &[RowOp] = unit.rows;
            for b in batches(def, ops, batch_rows) {
                let (sql, params) = Self::statement(def, &b);
                tx.exec_drop(sql, Params::Positional(params))
                    .await
                    .map_err(|e| downstream_error(&tname, unit.file, b.kind(), e))?;
            }
        }
        for (k, p) in unit.progress {
            let (v, idx, ts) = p
                .to_columns()
                .map_err(|e| downstream_error(&tname, unit.file, "progress", e))?;
            // A locking read sees the newest commit: it waits for a late commit of this very
            // unit by a killed consumer (see the module doc) and finds its position stored.
            let stored: Option<(i64, String, i64, i64)> = tx
                .exec_first(
                    format!(
                        "SELECT table_version, date_dir, file_index, commit_ts FROM \
                         {progress_db}.{PROGRESS_TABLE} WHERE schema_name = ? AND table_name = ? \
                         AND partition_id = ? AND dispatcher = ? FOR UPDATE"
                    ),
                    Params::Positional(vec![
                        k.schema.as_str().into(),
                        k.table.as_str().into(),
                        k.partition.as_str().into(),
                        k.dispatcher.as_str().into(),
                    ]),
                )
                .await
                .map_err(|e| downstream_error(&tname, unit.file, "progress", e))?;
            if stored == Some((v, p.date.clone(), idx, ts)) {
                warn_already_applied(unit.file);
                tx.rollback()
                    .await
                    .map_err(|e| downstream_error(&tname, unit.file, "rollback", e))?;
                return Ok(());
            }
            tx.exec_drop(
                format!(
                    "INSERT INTO {progress_db}.{PROGRESS_TABLE} (schema_name, table_name, \
                     partition_id, dispatcher, table_version, date_dir, file_index, commit_ts) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
                     table_version = VALUES(table_version), date_dir = VALUES(date_dir), \
                     file_index = VALUES(file_index), commit_ts = VALUES(commit_ts)"
                ),
                Params::Positional(vec![
                    k.schema.as_str().into(),
                    k.table.as_str().into(),
                    k.partition.as_str().into(),
                    k.dispatcher.as_str().into(),
                    v.into(),
                    p.date.as_str().into(),
                    idx.into(),
                    ts.into(),
                ]),
            )
            .await
            .map_err(|e| downstream_error(&tname, unit.file, "progress", e))?;
        }
        if let Some(q) = unit.quarantine {
            let (v, idx, before, at) = q
                .to_columns()
                .map_err(|e| downstream_error(&tname, unit.file, "quarantine", e))?;
            let params: Vec<MyValue> = vec![
                q.key.schema.as_str().into(),
                q.key.table.as_str().into(),
                q.key.partition.as_str().into(),
                q.key.dispatcher.as_str().into(),
                v.into(),
                q.date.as_str().into(),
                idx.into(),
                q.path.as_str().into(),
                q.reason.as_str().into(),
                before.into(),
                at.into(),
            ];
            tx.exec_drop(
                format!(
                    "INSERT INTO {progress_db}.{QUARANTINE_TABLE} (schema_name, table_name, \
                     partition_id, dispatcher, table_version, date_dir, file_index, path, reason, \
                     commit_ts_before, quarantined_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON DUPLICATE KEY UPDATE path = VALUES(path), reason = VALUES(reason), \
                     commit_ts_before = VALUES(commit_ts_before), \
                     quarantined_at_ms = VALUES(quarantined_at_ms)"
                ),
                Params::Positional(params),
            )
            .await
            .map_err(|e| downstream_error(&tname, unit.file, "quarantine", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| downstream_error(&tname, unit.file, "commit", e))?;
        Ok(())
    }

    async fn load_quarantine(&mut self, create: bool) -> Result<Vec<QuarantinedFile>> {
        let bad = |e: mysql_async::Error| downstream_error(QUARANTINE_TABLE, "-", "quarantine", e);
        let db = self.progress_db.clone();
        if create {
            self.conn
                .query_drop(format!(
                    "CREATE TABLE IF NOT EXISTS {db}.{QUARANTINE_TABLE} (
                        schema_name VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL,
                        partition_id VARCHAR(20) NOT NULL, dispatcher VARCHAR(130) NOT NULL,
                        table_version BIGINT NOT NULL, date_dir VARCHAR(10) NOT NULL,
                        file_index BIGINT NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL,
                        commit_ts_before BIGINT NOT NULL, quarantined_at_ms BIGINT NOT NULL,
                        PRIMARY KEY (schema_name, table_name, partition_id, dispatcher,
                                     table_version, date_dir, file_index)
                     ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"
                ))
                .await
                .map_err(bad)?;
        } else {
            let n: Option<i64> = self
                .conn
                .exec_first(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                    (self.progress_db_name.as_str(), QUARANTINE_TABLE),
                )
                .await
                .map_err(bad)?;
            if n.unwrap_or(0) == 0 {
                return Ok(Vec::new());
            }
        }
        type Row = (
            String,
            String,
            String,
            String,
            i64,
            String,
            i64,
            String,
            String,
            i64,
            i64,
        );
        let rows: Vec<Row> = self
            .conn
            .query(format!(
                "SELECT schema_name, table_name, partition_id, dispatcher, table_version, \
                 date_dir, file_index, path, reason, commit_ts_before, quarantined_at_ms \
                 FROM {db}.{QUARANTINE_TABLE} ORDER BY quarantined_at_ms, path"
            ))
            .await
            .map_err(bad)?;
        let mut out = Vec::new();
        for (schema, table, partition, dispatcher, v, date, idx, path, reason, before, at) in rows {
            let key = ProgressKey {
                schema,
                table,
                partition,
                dispatcher,
            };
            out.push(
                QuarantinedFile::from_columns(key, date, path, reason, (v, idx, before, at))
                    .map_err(|e| downstream_error(QUARANTINE_TABLE, "-", "quarantine", e))?,
            );
        }
        Ok(out)
    }
}
