//! [`CaptureError`]: every way capture stops, each bad set-up a variant whose message says
//! what is wrong and what to do.
//!
//! Classifier: [`CaptureError::is_connection_lost`] marks the errors after which the stream
//! reconnects and resumes from the slot's confirmed position (nothing is lost: everything
//! after that position is sent again, and what was already handed to the sink is skipped).

use cdc_sink::SinkError;

/// Result with [`CaptureError`].
pub type Result<T, E = CaptureError> = std::result::Result<T, E>;

/// Why capture stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The metrics could not be registered or served (`--metrics-addr` in use, say).
    #[error("metrics: {0}")]
    Metrics(String),
    /// A flag or config-file value is unusable.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The flag / key.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The server does not write logical WAL.
    #[error("the source server has wal_level={current}; logical replication needs wal_level=logical: set it in postgresql.conf (or start with -c wal_level=logical) and restart PostgreSQL")]
    WalLevel {
        /// The server's wal_level.
        current: String,
    },
    /// The publication does not exist in the source database.
    #[error("publication `{name}` does not exist in the source database: create it, e.g. CREATE PUBLICATION \"{name}\" FOR ALL TABLES (or FOR TABLE t1, t2)")]
    PublicationMissing {
        /// Its name.
        name: String,
    },
    /// The slot is held by another process.
    #[error("replication slot `{slot}` is in use by another process ({holder}): stop that process (another capture, or a subscription using the slot) or give this capture its own --slot")]
    SlotInUse {
        /// The slot.
        slot: String,
        /// Who holds it, as far as the server says.
        holder: String,
    },
    /// The user may not replicate.
    #[error("role `{user}` lacks the REPLICATION attribute: run ALTER ROLE \"{user}\" REPLICATION as a superuser, or connect as a role that has it")]
    NoReplicationPrivilege {
        /// The role.
        user: String,
    },
    /// Updates and deletes of these tables cannot be keyed.
    #[error("published table(s) {tables} have neither a primary key nor a replica identity, so their updates and deletes cannot be keyed (PostgreSQL refuses them): add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL (or USING INDEX a unique index)")]
    NoReplicaIdentity {
        /// The tables, comma-separated.
        tables: String,
    },
    /// The slot exists but the storage holds no finished snapshot.
    #[error("replication slot `{slot}` exists but the storage has no checkpoint: the initial snapshot never finished (or this is another storage). Drop the slot (SELECT pg_drop_replication_slot('{slot}')), empty the storage location, and start again")]
    SnapshotIncomplete {
        /// The slot.
        slot: String,
    },
    /// The storage has data but the slot is gone.
    #[error("the storage has a checkpoint but replication slot `{slot}` does not exist: changes since then are lost to this slot. Use a new storage location (a new snapshot is taken), or the slot that wrote this storage")]
    SlotLost {
        /// The slot.
        slot: String,
    },
    /// The slot uses another output plugin.
    #[error("replication slot `{slot}` uses output plugin `{plugin}`, not pgoutput: give capture a slot of its own (--slot)")]
    WrongPlugin {
        /// The slot.
        slot: String,
        /// Its plugin.
        plugin: String,
    },
    /// Authentication the walsender handshake cannot do.
    #[error("the server asked for {method} authentication on the replication connection, which capture does not support: use password, md5 or scram-sha-256 (pg_hba.conf)")]
    UnsupportedAuth {
        /// The method.
        method: &'static str,
    },
    /// A message or value did not decode.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A value did not convert.
    #[error("value: {0}")]
    Value(String),
    /// A PostgreSQL call failed.
    #[error("{context}: {source}")]
    Postgres {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The replication connection failed.
    #[error("replication connection: {0}")]
    Replication(String),
    /// I/O on the replication connection.
    #[error("replication connection: {0}")]
    Io(#[from] std::io::Error),
    /// The sink refused or stopped.
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
    /// The config file.
    #[error("config file {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl CaptureError {
    /// Wraps a tokio-postgres error with what was being done, mapping the server's answers
    /// that mean a bad set-up to their own variants.
    pub fn pg(context: impl Into<String>, source: tokio_postgres::Error) -> CaptureError {
        CaptureError::Postgres {
            context: context.into(),
            source,
        }
    }

    /// True when the connection to the source went away (reconnect and resume).
    pub fn is_connection_lost(&self) -> bool {
        match self {
            CaptureError::Postgres { source, .. } => {
                source.is_closed()
                    || source.as_db_error().is_none_or(|db| {
                        db.code().code().starts_with("08") || db.code().code().starts_with("57P")
                    })
            }
            CaptureError::Io(_) => true,
            _ => false,
        }
    }
}

/// A server error's SQLSTATE and message, when it is one.
pub fn db_error(e: &tokio_postgres::Error) -> Option<(&str, &str)> {
    e.as_db_error().map(|d| (d.code().code(), d.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_errors_say_what_to_do() {
        let e = CaptureError::WalLevel {
            current: "replica".into(),
        };
        assert!(e.to_string().contains("wal_level=logical"));
        let e = CaptureError::NoReplicaIdentity {
            tables: "public.t".into(),
        };
        assert!(e.to_string().contains("REPLICA IDENTITY FULL"));
        assert!(!e.is_connection_lost());
    }
}
