//! The crate error of cdc-consumer.
//!
//! Every variant names the object it is about: the storage path, or the downstream table, the
//! data or schema file being applied and the kind of statement that failed. Errors that come
//! from the shared contract (corrupt files, paths that do not follow the layout) keep the
//! `cdc_common` error, which already names the object and the position.

use cdc_common::Ts;

/// Errors of the consumer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command-line option or configuration value cannot be used.
    #[error("invalid option `{name}`: {reason}")]
    Config {
        /// The option name as the user wrote it.
        name: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// What is in storage does not match the options the consumer was started with (protocol,
    /// file-index-width, date-separator...).
    #[error("storage does not match the options at `{path}`: expected {expected}, found {found}")]
    Mismatch {
        /// The object that disagrees.
        path: String,
        /// What the options say.
        expected: String,
        /// What storage holds.
        found: String,
    },
    /// An object store call failed.
    #[error("storage error on `{path}`: {source}")]
    Storage {
        /// The path (or prefix) of the call.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// An object store call did not answer within the per-request timeout of
    /// [`cdc_common::retry::RetryPolicy`], on its last attempt.
    #[error("storage call on `{path}` timed out after {timeout:?} (attempt {attempts})")]
    StorageTimeout {
        /// The path (or prefix) of the call.
        path: String,
        /// The per-request timeout.
        timeout: std::time::Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// A data file that an index file names (or that precedes it) is not in storage.
    #[error("missing data file `{path}`: {reason}")]
    Missing {
        /// The path that was expected.
        path: String,
        /// Why it was expected.
        reason: String,
    },
    /// The newest data file an index names may still be being written in place: its stream
    /// waits for a later round (see `replay::in_place`).
    #[error("data file `{path}` may still be being written: {reason}")]
    InFlight {
        /// The data file.
        path: String,
        /// What was seen.
        reason: String,
    },
    /// A file or path read from storage violates the storage contract (corrupt, truncated,
    /// wrong checksum, not following the layout).
    #[error(transparent)]
    Contract(#[from] cdc_common::Error),
    /// The downstream refused a statement.
    #[error("downstream error on table `{table}` applying `{file}` ({kind}): {reason}")]
    Downstream {
        /// The downstream table (`schema.table`, or the schema for schema DDLs).
        table: String,
        /// The data or schema file being applied.
        file: String,
        /// The kind of statement: `upsert`, `delete`, `insert`, `ddl: ...`, `progress`...
        kind: String,
        /// The downstream's message.
        reason: String,
    },
    /// The downstream ended a unit's transaction on a lock conflict with another session (a
    /// deadlock, or a lock wait that timed out). Nothing of the unit was committed, so the unit
    /// may be run again; backends that raise it retry the unit a few times before giving up.
    #[error("downstream lock conflict on table `{table}` applying `{file}` ({kind}): {reason}")]
    Conflict {
        /// The downstream table (`schema.table`, or the schema for schema DDLs).
        table: String,
        /// The data or schema file being applied.
        file: String,
        /// The kind of statement that met the conflict.
        kind: String,
        /// The downstream's message.
        reason: String,
    },
    /// The downstream could not be reached or set up.
    #[error("downstream `{uri}`: {reason}")]
    Connect {
        /// The downstream URI, secrets redacted.
        uri: String,
        /// What failed.
        reason: String,
    },
    /// A local file (stdout progress file, config file) could not be read or written.
    #[error("I/O error on `{path}`: {source}")]
    Io {
        /// The local path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A group member's lease on the unit's table (or schema) was taken over or released since
    /// its round began: the unit's transaction is rolled back, nothing of it is committed (see
    /// [`crate::group::fence`]).
    #[error("group `{group}`: member `{owner}` lost its lease on {key} (epoch {epoch}) before committing `{file}`; nothing of it was committed")]
    Fenced {
        /// The group.
        group: String,
        /// The table or schema.
        key: String,
        /// This member.
        owner: String,
        /// The epoch it held.
        epoch: i64,
        /// The file being applied.
        file: String,
    },
    /// `--until-ts` cannot be reached with `--once` (kept apart to give a clear exit message).
    #[error("stopped before --until-ts {until}: applied up to {applied}")]
    UntilNotReached {
        /// The requested ts.
        until: Ts,
        /// What was applied.
        applied: Ts,
    },
    /// `--once` was stopped by SIGTERM/SIGINT before it had applied everything.
    #[error("stopped by a signal before --once had applied everything: applied up to {applied}")]
    Stopped {
        /// What was applied.
        applied: Ts,
    },
}

impl Error {
    /// Builds [`Error::Config`].
    pub fn config(name: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Config {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// Builds [`Error::Storage`].
    pub fn storage(path: impl Into<String>, source: object_store::Error) -> Error {
        Error::Storage {
            path: path.into(),
            source,
        }
    }

    /// True when the same round may succeed later (transient storage trouble).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Storage { source, .. } => cdc_common::storage::is_retryable(source),
            Error::StorageTimeout { .. } => true,
            Error::Contract(e) => e.is_retryable(),
            Error::Connect { .. } => true,
            _ => false,
        }
    }
}

/// Result alias of cdc-consumer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
