//! PostgreSQL downstream (tokio-postgres, no TLS).
//!
//! - Upstream schemas are PostgreSQL schemas; types are mapped in [`dialect::Postgres`].
//! - Every value is sent as text (binary columns as `bytea`) into a statement that casts each
//!   parameter to its column type (`$1::integer`), prepared once per SQL text (one text per
//!   table version, operation and batch size) and cached on the connection.
//! - Multi-row upserts are `INSERT ... VALUES (...), (...) ON CONFLICT (pk) DO UPDATE`; a data
//!   file of at least [`COPY_MIN_ROWS`] upserts (and nothing else) is first `COPY`ed straight
//!   into the table inside a savepoint (when none of its keys exists, an upsert is an insert);
//!   on a unique violation it rolls back to the savepoint and goes through `COPY` into a
//!   temporary table plus one `INSERT ... SELECT ... ON CONFLICT` (the rows of one key reduced
//!   to the last image first, as both paths require).
//! - The progress table is `public.cdc_consumer_progress`; rows, DDL and progress of a unit are
//!   one transaction (PostgreSQL DDL is transactional).
//! - The progress write is a compare: it changes a row only when the stored position differs
//!   from the unit's. A consumer killed right after sending `COMMIT` leaves a server backend
//!   that still commits; a restarted consumer may have read the progress before that commit
//!   landed and apply the same unit again. Its progress write then waits on the first one's row
//!   lock, finds the unit's own position stored, changes nothing, and the whole transaction is
//!   rolled back: the unit is applied exactly once (a table without a key would otherwise get
//!   its rows twice).
//! - A schema, table or column name longer than [`MAX_IDENTIFIER_BYTES`] is refused (an error
//!   naming the table) rather than silently truncated by PostgreSQL into another name.
//!
//! Files: [`dialect`] (quoting, types, DDL text), `params` (values as text parameters), `apply`
//! (the transaction of a unit and its statements), `copy` (the bulk path), `identifiers` (the
//! length limit), `leases` (consumer group leases and the fence check), `bookkeeping` (progress and quarantine tables), `read_back` (tables, columns
//! and rows as canonical text), `error` (the server's message).

mod apply;
mod bookkeeping;
mod copy;
pub mod dialect;
mod error;
mod identifiers;
mod leases;
mod params;
mod read_back;
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
}

impl PostgresDownstream {
    /// Connects to `uri` (`postgres://user[:password]@host[:port]/db`).
    pub async fn connect(uri: &str, batch_rows: usize) -> Result<PostgresDownstream> {
        let (client, conn) =
            tokio_postgres::connect(uri, NoTls)
                .await
                .map_err(|e| Error::Connect {
                    uri: redact_uri(uri),
                    reason: PgError(&e).to_string(),
                })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::error!(error = %e, "postgres connection closed");
            }
        });
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
        })
    }
}

#[async_trait::async_trait]
impl Downstream for PostgresDownstream {
    async fn load_progress(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        bookkeeping::load_progress(&self.client).await
    }

    async fn table_exists(&mut self, name: &TableName) -> Result<bool> {
        let r = self
            .client
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
                &[&name.schema, &name.table],
            )
            .await
            .map_err(|e| super::downstream_error(&name.to_string(), "-", "table lookup", PgError(&e)))?;
        let n: i64 = r.try_get(0).map_err(|e| {
            super::downstream_error(&name.to_string(), "-", "table lookup", PgError(&e))
        })?;
        Ok(n > 0)
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
        bookkeeping::save_round(&self.client, rec, keep).await
    }

    async fn load_rounds(&mut self, limit: usize) -> Result<Vec<RoundRecord>> {
        bookkeeping::load_rounds(&self.client, limit).await
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
