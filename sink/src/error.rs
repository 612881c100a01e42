//! The crate error of cdc-sink.
//!
//! Every failure the embedding service can see is a [`SinkError`]. Storage failures carry the
//! operation and the object path; a failure that stopped the sink is *sticky*: every later call
//! returns [`SinkError::Failed`] wrapping the first error, so no caller can mistake a stopped
//! sink for a working one, and no flush callback runs for events that were not written.

use std::sync::Arc;
use std::time::Duration;

/// Errors of the sink.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// An option or configuration value is out of range or inconsistent.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A storage URI, path or name from the layout contract is unusable (for example a table
    /// name containing `/`).
    #[error(transparent)]
    Layout(Arc<cdc_common::Error>),
    /// An object store operation failed with a non-retryable error, or with a retryable one
    /// after every attempt.
    #[error("storage {op} of `{path}` failed after {attempts} attempt(s): {source}")]
    Storage {
        /// The operation (`put`, `get`, `list`, `delete`, `multipart`).
        op: &'static str,
        /// The object path or prefix.
        path: String,
        /// Attempts made.
        attempts: u32,
        /// The last error of the store.
        #[source]
        source: Arc<object_store::Error>,
    },
    /// A schema file already exists in storage with other bytes: another writer (another
    /// sink process with the same dispatcher id, or a stale file) owns that name. Nothing was
    /// overwritten (create-only put, see `create_only.rs`).
    #[error("storage object `{path}` already exists with other content; another writer owns this name (two sink processes with the same dispatcher id?), nothing was overwritten")]
    AlreadyExists {
        /// The object path.
        path: String,
    },
    /// An object store operation did not finish within the per-request timeout on any attempt.
    #[error(
        "storage {op} of `{path}` timed out after {timeout:?} on each of {attempts} attempt(s)"
    )]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The object path.
        path: String,
        /// The per-request timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// A row of an event does not match its table definition (see `validate.rs`): the event
    /// was refused (nothing of it accepted) and the sink keeps working.
    #[error(
        "dispatcher `{dispatcher}`: row {row} of table `{table}`{}: {reason}",
        column.as_ref().map(|c| format!(" column `{c}`")).unwrap_or_default()
    )]
    InvalidRow {
        /// The dispatcher that handed in the event.
        dispatcher: String,
        /// `schema.table` of the event.
        table: String,
        /// 0-based index of the row in the event.
        row: usize,
        /// The column at fault, when one is.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// An event's commit ts is out of order for its dispatcher: the event was refused and the
    /// sink keeps working.
    #[error("dispatcher `{dispatcher}`: {what} at ts {ts} {reason}")]
    OutOfOrder {
        /// The dispatcher.
        dispatcher: String,
        /// `DML` or `DDL`.
        what: &'static str,
        /// The refused event's commit ts.
        ts: cdc_common::Ts,
        /// Which earlier event it would go behind, e.g. `is below the last DML at ts 5`.
        reason: String,
    },
    /// An event could not be encoded inside the pipeline (a codec limit the synchronous checks
    /// do not cover); the sink stops.
    #[error("dispatcher `{dispatcher}`: {source}")]
    Encode {
        /// The dispatcher that handed in the event.
        dispatcher: String,
        /// The codec's error.
        #[source]
        source: Arc<cdc_common::Error>,
    },
    /// The spool failed (spill I/O, corruption detected on read-back, closed).
    #[error("spool: {0}")]
    Spool(Arc<cdc_spool::SpoolError>),
    /// Metrics could not be registered (for example twice on one registry for one changefeed).
    #[error("metrics: {0}")]
    Metrics(Arc<prometheus::Error>),
    /// A dispatcher id is not registered.
    #[error("unknown dispatcher `{0}`")]
    UnknownDispatcher(String),
    /// A dispatcher id is registered twice.
    #[error("dispatcher `{0}` is already registered")]
    DuplicateDispatcher(String),
    /// A dispatcher with [`FileNaming::Table`](crate::FileNaming::Table) handed in an event of
    /// a table another such dispatcher writes: its files and index would have two writers.
    /// Dispatchers sharing a table must use `FileNaming::Dispatcher`.
    #[error("table `{table}` is already written by dispatcher `{owner}` under table file names")]
    TableOwned {
        /// The table.
        table: String,
        /// The dispatcher that writes it.
        owner: String,
    },
    /// The sink is closed (or closing) and accepts nothing.
    #[error("the sink is closed")]
    Closed,
    /// An earlier error stopped the sink; every later call returns it.
    #[error("the sink stopped after an earlier error: {0}")]
    Failed(Arc<SinkError>),
}

impl SinkError {
    /// True when retrying the same storage operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SinkError::Storage { source, .. } => cdc_common::storage::is_retryable(source),
            SinkError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// Builds [`SinkError::InvalidParameter`].
    pub fn param(name: impl Into<String>, reason: impl Into<String>) -> SinkError {
        SinkError::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

impl From<cdc_common::Error> for SinkError {
    fn from(e: cdc_common::Error) -> Self {
        match e {
            cdc_common::Error::InvalidParameter { name, reason } => {
                SinkError::InvalidParameter { name, reason }
            }
            other => SinkError::Layout(Arc::new(other)),
        }
    }
}

impl From<cdc_spool::SpoolError> for SinkError {
    fn from(e: cdc_spool::SpoolError) -> Self {
        SinkError::Spool(Arc::new(e))
    }
}

impl From<prometheus::Error> for SinkError {
    fn from(e: prometheus::Error) -> Self {
        SinkError::Metrics(Arc::new(e))
    }
}

/// Result alias of cdc-sink.
pub type Result<T, E = SinkError> = std::result::Result<T, E>;
