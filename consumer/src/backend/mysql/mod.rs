//! MySQL/MariaDB downstream (mysql_async, binary protocol, TLS by `ssl-mode`/`ssl-ca`: [`tls`]).
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
//!   applied exactly once. When a consumer starts or reopens its downstream, the progress record is read with a
//!   locking read, which waits
//!   for such a late commit: a unit of several files formed again after discovery saw more
//!   files would not end at the late unit's file, and the compare alone would not catch it.
//! - The progress table lives in the URI's database (`cdc_consumer` when the URI names none).
//! - The session runs with `time_zone = '+00:00'` (TIMESTAMP values are UTC text) and
//!   `NO_BACKSLASH_ESCAPES` added to its `sql_mode`: the only string literals in our SQL text
//!   are ENUM/SET elements in DDL, written with `'` doubled, and a backslash in them must stay
//!   a backslash (without the mode, an element ending in `\` would escape the closing quote and
//!   let the rest of the definition be read as SQL). Every value is a bound parameter.
//!
//! - A unit that meets a lock conflict (deadlock, lock wait timeout) is run again, a few times
//!   (`conflict`).
//!
//! Files: [`dialect`] (quoting, types, DDL text), `apply` (DDL, then the transaction of a unit),
//! `bookkeeping` (progress and quarantine tables), `read_back` (tables, columns and rows as
//! canonical text).

mod apply;
mod bookkeeping;
mod conflict;
pub mod dialect;
mod leases;
mod load_data;
mod read_back;
pub mod tls;

pub use leases::MysqlLeaseStore;

use super::{Downstream, TextRows, Unit};
use crate::backend::dialect::Dialect;
use crate::error::{Error, Result};
use crate::freshness::RoundRecord;
use crate::progress::{Position, ProgressKey};
use crate::quarantine::QuarantinedFile;
use cdc_common::storage::redact_uri;
use cdc_common::{ColumnDef, TableName};
use dialect::Mysql;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use std::sync::Arc;

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
    /// Rows waiting for the server's LOCAL INFILE requests (`load_data.rs`).
    infiles: Arc<load_data::Infiles>,
    /// False once the server refused LOCAL INFILE: statements only.
    load_data: bool,
}

impl MysqlDownstream {
    /// Connects to `uri` (`mysql://user[:password]@host[:port][/db]`).
    pub async fn connect(uri: &str, batch_rows: usize) -> Result<MysqlDownstream> {
        let bad = |reason: String| Error::Connect {
            uri: redact_uri(uri),
            reason,
        };
        let plan = tls::from_uri(uri).map_err(bad)?;
        let opts = Opts::from_url(&plan.uri).map_err(|e| bad(e.to_string()))?;
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
        let infiles = Arc::new(load_data::Infiles::default());
        let opts = infiles.install(opts);
        let conn = connect_tls(opts, &plan).await.map_err(bad)?;
        Ok(MysqlDownstream {
            conn,
            batch_rows,
            progress_db: Mysql.quote(&db),
            progress_db_name: db,
            infiles,
            load_data: true,
        })
    }
}

/// Opens the session with the TLS options of `plan`: `PREFERRED` falls back to plain when
/// the server offers no TLS; a failure with a CA file names the file.
pub async fn connect_tls(
    opts: OptsBuilder,
    plan: &tls::MysqlTls,
) -> std::result::Result<Conn, String> {
    // mysql_async builds its rustls configuration with the process-wide provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tried = Conn::new(opts.clone().ssl_opts(plan.ssl.clone())).await;
    let tried =
        match tried {
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) if plan.mode == tls::SslMode::Preferred => Conn::new(opts.ssl_opts(None)).await,
            other => other,
        };
    tried.map_err(|e| match (&plan.ssl, &plan.ca) {
        (Some(_), Some(ca)) => format!("{e} (ssl-mode={}, ssl-ca {ca})", plan.mode.name()),
        (Some(_), None) => format!("{e} (ssl-mode={})", plan.mode.name()),
        _ => e.to_string(),
    })
}

#[async_trait::async_trait]
impl Downstream for MysqlDownstream {
    async fn load_progress(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        bookkeeping::load_progress(&mut self.conn, &self.progress_db, false).await
    }

    async fn load_progress_settled(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        bookkeeping::load_progress(&mut self.conn, &self.progress_db, true).await
    }

    async fn table_exists(&mut self, name: &TableName) -> Result<bool> {
        let n: Option<i64> = self
            .conn
            .exec_first(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                (name.schema.as_str(), name.table.as_str()),
            )
            .await
            .map_err(|e| super::downstream_error(&name.to_string(), "-", "table lookup", e))?;
        Ok(n.unwrap_or(0) > 0)
    }

    async fn limit_idle_transactions(&mut self, limit: std::time::Duration) -> Result<()> {
        // MySQL has no idle-in-transaction timeout; `wait_timeout` ends a session idle for
        // that long, in a transaction or not (the caller picks a limit above the pause
        // between rounds; a connection lost otherwise is reopened by the next round).
        let secs = limit.as_secs_f64().ceil().max(1.0) as u64;
        self.conn
            .query_drop(format!("SET SESSION wait_timeout = {secs}"))
            .await
            .map_err(|e| super::downstream_error("-", "-", "wait_timeout", e))
    }

    async fn apply(&mut self, unit: Unit<'_>) -> Result<()> {
        let mut retry = conflict::Retry::new();
        loop {
            let bulk = apply::Bulk {
                infiles: &self.infiles,
                enabled: &mut self.load_data,
            };
            match apply::apply(
                &mut self.conn,
                &self.progress_db,
                self.batch_rows,
                &unit,
                bulk,
            )
            .await
            {
                Err(e) if retry.again(unit.file, &e).await => continue,
                done => return done,
            }
        }
    }

    async fn load_quarantine(&mut self, create: bool) -> Result<Vec<QuarantinedFile>> {
        bookkeeping::load_quarantine(
            &mut self.conn,
            &self.progress_db,
            &self.progress_db_name,
            create,
        )
        .await
    }

    async fn save_round(&mut self, rec: &RoundRecord, keep: u64) -> Result<()> {
        bookkeeping::save_round(&mut self.conn, &self.progress_db, rec, keep).await
    }

    async fn load_rounds(&mut self, limit: usize) -> Result<Vec<RoundRecord>> {
        bookkeeping::load_rounds(&mut self.conn, &self.progress_db, limit).await
    }

    async fn read_tables(&mut self, schema: &str) -> Result<Vec<String>> {
        read_back::tables(&mut self.conn, schema, &self.progress_db_name).await
    }

    async fn read_columns(&mut self, table: &TableName) -> Result<Vec<String>> {
        read_back::columns(&mut self.conn, table).await
    }

    async fn read_rows(&mut self, table: &TableName, columns: &[ColumnDef]) -> Result<TextRows> {
        read_back::rows(&mut self.conn, table, columns).await
    }

    async fn read_elems(&mut self, table: &TableName) -> Result<Vec<(String, Vec<String>)>> {
        read_back::elems(&mut self.conn, table).await
    }
}
