//! The source's normal (SQL) connection: connected with tokio-postgres and given the session
//! settings that fix the text forms `types.rs` parses.
//!
//! Every value capture reads (pgoutput's text tuples and COPY's text rows alike) goes through a
//! type output function of *this* session, so these settings are part of the format:
//! `DateStyle=ISO, MDY`, `TimeZone=UTC`, `IntervalStyle=postgres`, `bytea_output=hex`,
//! `extra_float_digits=3` (shortest exact float text), `client_encoding=UTF8`.

use crate::error::{CaptureError, Result};
use tokio_postgres::{Client, NoTls};

/// The session settings capture relies on.
pub const SESSION_SETTINGS: &str = "SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC'; \
     SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; SET extra_float_digits = 3; \
     SET client_encoding = 'UTF8'; SET application_name = 'cdc-capture'";

/// Connects, spawns the connection task, and applies [`SESSION_SETTINGS`].
pub async fn connect(config: &tokio_postgres::Config) -> Result<Client> {
    let (client, conn) = config
        .connect(NoTls)
        .await
        .map_err(|e| CaptureError::pg("connecting to the source", e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "source connection ended");
        }
    });
    client
        .batch_execute(SESSION_SETTINGS)
        .await
        .map_err(|e| CaptureError::pg("applying session settings", e))?;
    Ok(client)
}
