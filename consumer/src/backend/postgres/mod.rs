//! PostgreSQL downstream (tokio-postgres, no TLS).
//!
//! - Upstream schemas are PostgreSQL schemas; types are mapped in [`dialect::Postgres`].
//! - Every value is sent as text (binary columns as `bytea`) into a statement that casts each
//!   parameter to its column type (`$1::integer`), prepared once per SQL text (one text per
//!   table version, operation and batch size) and cached on the connection.
//! - Multi-row upserts are `INSERT ... VALUES (...), (...) ON CONFLICT (pk) DO UPDATE`; a data
//!   file whose reduced operations are deletes then at least [`COPY_MIN_ROWS`] upserts takes
//!   the COPY path of [`copy`]: the deletes as multi-row statements, then the upserts by `COPY`
//!   (straight into the table when the unit deleted nothing, no savepoint: a unique violation
//!   aborts the transaction and the unit is applied again; else, or after that violation, into
//!   a temporary table plus one `INSERT ... SELECT ... ON CONFLICT`).
//! - The progress table is `public.cdc_consumer_progress`; rows, DDL and progress of a unit are
//!   one transaction (PostgreSQL DDL is transactional).
//! - The progress write is a compare: it changes a row only when the stored position differs
//!   from the unit's. A consumer killed right after sending `COMMIT` leaves a server backend
//!   that still commits; a restarted consumer may have read the progress before that commit
//!   landed and apply the same unit again. Its progress write then waits on the first one's row
//!   lock, finds the unit's own position stored, changes nothing, and the whole transaction is
//!   rolled back: the unit is applied exactly once (a table without a key would otherwise get
//!   its rows twice).
//!   When a consumer starts or reopens its downstream, the progress record is read under a
//!   `SHARE` lock (held for that one read), which waits for such a late
//!   commit: a unit of several files (see `replay/file_unit.rs`) formed again after discovery
//!   saw more files would not end at the late unit's file, and the compare alone would not
//!   catch it.
//! - A schema, table or column name longer than [`MAX_IDENTIFIER_BYTES`] is refused (an error
//!   naming the table) rather than silently truncated by PostgreSQL into another name.
//!
//! Files: [`dialect`] (quoting, types, DDL text), `params` (values as text parameters), `float`
//! (the text of a float, for parameters and COPY alike), `apply`
//! (the transaction of a unit and its statements), `copy` (the bulk path), `identifiers` (the
//! length limit), `leases` (consumer group leases and the fence check), `bookkeeping` (progress and quarantine tables), `read_back` (tables, columns
//! and rows as canonical text), `error` (the server's message).

mod apply;
mod bookkeeping;
mod copy;
mod create_table;
pub mod dialect;
mod error;
mod float;
mod identifiers;
mod leases;
mod params;
mod read_back;
pub mod tls;
mod upsert;

pub use copy::COPY_MIN_ROWS;
pub use identifiers::MAX_IDENTIFIER_BYTES;
pub use leases::PgLeaseStore;

use super::{Downstream, TextRows, Unit};
use crate::error::{Error, Result};
use crate::freshness::RoundRecord;
use crate::progress::{Position, ProgressKey};
use crate::quarantine::QuarantinedFile;
use cdc_common::storage::redact_uri;
use cdc_common::{ColumnDef, TableName};
use error::PgError;
use std::collections::HashMap;
use tokio_postgres::{Client, NoTls};

/// The PostgreSQL downstream.
pub struct PostgresDownstream {
    client: Client,
    batch_rows: usize,
    statements: apply::Statements,
    /// [`TABLE_EXISTS`], prepared on first use (one round trip per lookup after it).
    table_exists: Option<tokio_postgres::Statement>,
    /// This connection's role was refused creating the round records' index (it does not own
    /// the table): not asked again (`create_table::ensure_indexed`).
    rounds_index_refused: bool,
}

/// Whether a relation of that schema and name exists (a table, partitioned table, view,
/// foreign table or materialized view: any of them makes a CREATE TABLE of that name fail).
/// Read from `pg_catalog` rather than `information_schema.tables`, a view that also checks the
/// user's privileges on every candidate row: the catalog lookup is an index probe.
const TABLE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'f', 'm'))";

impl PostgresDownstream {
    /// Connects to `uri` (`postgres://user[:password]@host[:port]/db`, TLS by `sslmode` and
    /// `sslrootcert`, see [`tls`]).
    pub async fn connect(uri: &str, batch_rows: usize) -> Result<PostgresDownstream> {
        let bad = |reason: String| Error::Connect {
            uri: redact_uri(uri),
            reason,
        };
        let plan = tls::from_uri(uri).map_err(bad)?;
        let config: tokio_postgres::Config =
            plan.uri.parse().map_err(|e| bad(PgError(&e).to_string()))?;
        let client = match plan.tls {
            None => {
                let (client, conn) = config
                    .connect(NoTls)
                    .await
                    .map_err(|e| bad(PgError(&e).to_string()))?;
                tokio::spawn(drive(conn));
                client
            }
            Some((rustls_config, mode)) => {
                let mut config = config;
                config.ssl_mode(mode);
                let connector = tokio_postgres_rustls::MakeRustlsConnect::new(rustls_config);
                let (client, conn) = config.connect(connector).await.map_err(|e| {
                    let text = PgError(&e).to_string();
                    match &plan.root_cert {
                        Some(ca) if text.contains("certificate") => bad(format!(
                            "{text} (TLS: the server's certificate was checked against sslrootcert {ca})"
                        )),
                        _ => bad(text),
                    }
                })?;
                tokio::spawn(drive(conn));
                client
            }
        };
        client
            .batch_execute("SET TIME ZONE 'UTC'")
            .await
            .map_err(|e| Error::Connect {
                uri: redact_uri(uri),
                reason: PgError(&e).to_string(),
            })?;
        Ok(PostgresDownstream {
            client,
            batch_rows,
            statements: HashMap::new(),
            table_exists: None,
            rounds_index_refused: false,
        })
    }
}

/// Runs a connection's I/O until it closes.
async fn drive<S, T>(conn: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = conn.await {
        tracing::error!(error = %e, "postgres connection closed");
    }
}

#[async_trait::async_trait]
impl Downstream for PostgresDownstream {
    fn transactional_ddl(&self) -> bool {
        true
    }

    async fn load_progress(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        bookkeeping::load_progress(&mut self.client, false).await
    }

    async fn load_progress_settled(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        bookkeeping::load_progress(&mut self.client, true).await
    }

    async fn table_exists(&mut self, name: &TableName) -> Result<bool> {
        let bad = |e: tokio_postgres::Error| {
            super::downstream_error(&name.to_string(), "-", "table lookup", PgError(&e))
        };
        let st = match &self.table_exists {
            Some(st) => st.clone(),
            None => {
                let st = self.client.prepare(TABLE_EXISTS).await.map_err(bad)?;
                self.table_exists.insert(st).clone()
            }
        };
        let r = self
            .client
            .query_one(&st, &[&name.schema, &name.table])
            .await
            .map_err(bad)?;
        r.try_get(0).map_err(bad)
    }

    async fn apply(&mut self, unit: Unit<'_>) -> Result<()> {
        apply::apply(
            &mut self.client,
            &mut self.statements,
            self.batch_rows,
            unit,
        )
        .await
    }

    async fn limit_idle_transactions(&mut self, limit: std::time::Duration) -> Result<()> {
        // A unit's transaction never waits on anything but the server, so it is idle only
        // when this process is paused or partitioned.
        self.client
            .batch_execute(&format!(
                "SET idle_in_transaction_session_timeout = {}",
                limit.as_millis().max(1)
            ))
            .await
            .map_err(|e| {
                super::downstream_error(
                    "-",
                    "-",
                    "idle_in_transaction_session_timeout",
                    PgError(&e),
                )
            })
    }

    async fn load_quarantine(&mut self, create: bool) -> Result<Vec<QuarantinedFile>> {
        bookkeeping::load_quarantine(&self.client, create).await
    }

    async fn save_round(&mut self, rec: &RoundRecord, keep: u64) -> Result<()> {
        bookkeeping::save_round(&self.client, &mut self.rounds_index_refused, rec, keep).await
    }

    async fn load_rounds(&mut self, limit: usize) -> Result<Vec<RoundRecord>> {
        bookkeeping::load_rounds(&self.client, &mut self.rounds_index_refused, limit).await
    }

    async fn read_tables(&mut self, schema: &str) -> Result<Vec<String>> {
        read_back::tables(&self.client, schema).await
    }

    async fn read_columns(&mut self, table: &TableName) -> Result<Vec<String>> {
        read_back::columns(&self.client, table).await
    }

    async fn read_rows(&mut self, table: &TableName, columns: &[ColumnDef]) -> Result<TextRows> {
        read_back::rows(&self.client, table, columns).await
    }
}
