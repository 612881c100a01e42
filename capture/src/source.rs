//! The source's normal (SQL) connection: connected with tokio-postgres and given the session
//! settings that fix the text forms `types.rs` parses.
//!
//! Every value capture reads (pgoutput's text tuples and COPY's text rows alike) goes through a
//! type output function of *this* session, so these settings are part of the format:
//! `DateStyle=ISO, MDY`, `TimeZone=UTC`, `IntervalStyle=postgres`, `bytea_output=hex`,
//! `extra_float_digits=3` (shortest exact float text), `client_encoding=UTF8`.
//!
//! Every session capture opens is named: `application_name` is `cdc-capture <slot>`
//! ([`application_name`]) when the capture sets it, the source URI's own when it has one, and
//! [`DEFAULT_APPLICATION_NAME`] for a connection made without either (the walsender's too).

use crate::error::{CaptureError, Result};
use tokio_postgres::{Client, NoTls};

/// The session settings capture relies on.
pub const SESSION_SETTINGS: &str = "SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC'; \
     SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; SET extra_float_digits = 3; \
     SET client_encoding = 'UTF8'";

/// The `application_name` of a session whose config names none (a caller of [`connect`] or of
/// the walsender that did not set [`application_name`]).
pub const DEFAULT_APPLICATION_NAME: &str = "cdc-capture";

/// The `application_name` of every session a capture of `slot` opens (its SQL connection and
/// the replication one), unless the source URI sets one: `cdc-capture <slot>`, cut to the
/// server's 63 bytes. `pg_stat_activity` then tells which capture a session belongs to, and a
/// session of one capture can be ended without touching another's.
pub fn application_name(slot: &str) -> String {
    let mut name = format!("cdc-capture {slot}");
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

/// Connects, spawns the connection task, and applies [`SESSION_SETTINGS`]. A config without an
/// `application_name` gets [`DEFAULT_APPLICATION_NAME`].
pub async fn connect(config: &tokio_postgres::Config) -> Result<Client> {
    let mut config = config.clone();
    if config.get_application_name().is_none() {
        config.application_name(DEFAULT_APPLICATION_NAME);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_application_name_names_the_slot_within_the_servers_63_bytes() {
        assert_eq!(application_name("orders"), "cdc-capture orders");
        // a slot name may take the whole 63 bytes itself
        let long = "s".repeat(63);
        let name = application_name(&long);
        assert_eq!(name.len(), 63);
        assert!(name.starts_with("cdc-capture sss"));
    }
}
