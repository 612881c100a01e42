//! Sink configuration beyond the URI's [`SinkOptions`]: what the embedding service decides
//! (changefeed id, writer shards, retry policy, error callback), each default explained.
//!
//! [`SinkOptions`]: cdc_common::SinkOptions

use crate::error::{Result, SinkError};
use crate::retry::{attempts_for, RetryPolicy, DEFAULT_STORAGE_RETRY_TIMEOUT};
use cdc_common::storage::StorageKind;
use cdc_spool::SpoolConfig;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Writer shards: enough to overlap the uploads of several tables on 2-8 cores; each shard is
/// one tokio task, so more shards cost little but spread batches (and small files) thinner.
pub const DEFAULT_WRITER_COUNT: usize = 4;
/// Most writer shards accepted.
pub const MAX_WRITER_COUNT: usize = 256;
/// Uploads one writer runs at once when several batches flush together (drain, pressure,
/// interval ticks of many tables): hides object store latency without a storm of requests.
pub const DEFAULT_FLUSH_CONCURRENCY: usize = 8;
/// Data files at or above this size upload as multipart: S3's recommended switch-over point
/// region, and large enough that typical 64 MiB files upload as a handful of parts.
pub const DEFAULT_MULTIPART_THRESHOLD: usize = 32 * 1024 * 1024;
/// Events of at most this many rows encode on the caller's thread when nothing of their
/// dispatcher is queued: a few microseconds of CPU instead of a thread handoff, which is what
/// keeps wake latency low at low traffic; bigger events go to the pool. 0 disables it.
pub const DEFAULT_INLINE_ENCODE_MAX_ROWS: usize = 16;
/// Bytes that uploads in flight may read back from spilled spool entries, across writers:
/// what publishing adds to the spool's memory quota when the backlog is on disk. A 64 MiB file
/// is read back alone; smaller ones share it.
pub const DEFAULT_UPLOAD_MEMORY: usize = 64 * 1024 * 1024;
/// Part size of multipart uploads (S3 needs at least 5 MiB per part but the last).
pub const DEFAULT_MULTIPART_PART_SIZE: usize = 8 * 1024 * 1024;
/// Shortest time between two writes of the `metadata` checkpoint file: consumers poll it at
/// second granularity, and a write per transaction would be a small-file storm of its own.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `checkpoint-interval` accepted: a consumer waits for the checkpoint, so an hour of
/// silence is already far beyond any useful setting (0 writes on every call).
pub const MAX_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(3600);
/// Most concurrent uploads per writer accepted.
pub const MAX_FLUSH_CONCURRENCY: usize = 1024;
/// Largest multipart part accepted (S3's limit per part).
pub const MAX_MULTIPART_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
/// How long an encoder thread waits for spool disk space before re-checking for shutdown.
pub const DISK_QUOTA_POLL: Duration = Duration::from_millis(100);

/// Called once with the error that stopped the sink (from a writer or encoder thread; keep it
/// short and non-blocking).
pub type ErrorCallback = Arc<dyn Fn(&SinkError) + Send + Sync>;

/// Sink configuration. Build with [`SinkConfig::new`] and the `with_*` methods.
#[derive(Clone)]
pub struct SinkConfig {
    /// Changefeed id: names the spool directory and labels every metric.
    pub changefeed: String,
    /// Writer shards (see [`DEFAULT_WRITER_COUNT`]).
    pub writer_count: usize,
    /// Concurrent uploads per writer (see [`DEFAULT_FLUSH_CONCURRENCY`]).
    pub flush_concurrency: usize,
    /// Multipart threshold in bytes (see [`DEFAULT_MULTIPART_THRESHOLD`]).
    pub multipart_threshold: usize,
    /// Multipart part size in bytes (see [`DEFAULT_MULTIPART_PART_SIZE`]).
    pub multipart_part_size: usize,
    /// Read-back budget of uploads in bytes (see [`DEFAULT_UPLOAD_MEMORY`]).
    pub upload_memory: usize,
    /// Largest event (rows) encoded inline (see [`DEFAULT_INLINE_ENCODE_MAX_ROWS`]).
    pub inline_encode_max_rows: usize,
    /// Retries, backoff and per-request timeout of storage operations; its attempts follow
    /// `storage_retry_timeout` unless [`SinkConfig::with_retry`] came last.
    pub retry: RetryPolicy,
    /// `storage-retry-timeout`: how long one storage operation is retried (sum of backoffs,
    /// see [`crate::retry::attempts_for`]); default
    /// [`crate::retry::DEFAULT_STORAGE_RETRY_TIMEOUT`].
    pub storage_retry_timeout: Duration,
    /// Minimum time between checkpoint file writes.
    pub checkpoint_interval: Duration,
    /// Spool configuration; `None` resolves the URI's spool options against this machine.
    pub spool: Option<SpoolConfig>,
    /// Root directory of a local-filesystem store, for removing empty directories in cleanup
    /// (set by [`crate::Sink::open`] for `file://` URIs).
    pub local_root: Option<PathBuf>,
    /// This process runs the retention cleanup (`file-expiration-days`). With several sink
    /// processes on one storage exactly one should (the CDC service's owner node decides which);
    /// default `true`, the single-process case.
    pub cleanup_owner: bool,
    /// The store turns `\` in a key into `/` (Azure Blob Storage does), so a schema or table
    /// name containing `\` would land in another directory: such names are refused. Set by
    /// [`crate::Sink::open`] for `azure://` URIs.
    pub backslash_is_separator: bool,
    /// Called once when an error stops the sink.
    pub on_error: Option<ErrorCallback>,
}

impl fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkConfig")
            .field("changefeed", &self.changefeed)
            .field("writer_count", &self.writer_count)
            .field("flush_concurrency", &self.flush_concurrency)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("multipart_part_size", &self.multipart_part_size)
            .field("upload_memory", &self.upload_memory)
            .field("inline_encode_max_rows", &self.inline_encode_max_rows)
            .field("retry", &self.retry)
            .field("storage_retry_timeout", &self.storage_retry_timeout)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("spool", &self.spool)
            .field("local_root", &self.local_root)
            .field("cleanup_owner", &self.cleanup_owner)
            .field("backslash_is_separator", &self.backslash_is_separator)
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

impl SinkConfig {
    /// Defaults for changefeed `changefeed`.
    pub fn new(changefeed: impl Into<String>) -> SinkConfig {
        SinkConfig {
            changefeed: changefeed.into(),
            writer_count: DEFAULT_WRITER_COUNT,
            flush_concurrency: DEFAULT_FLUSH_CONCURRENCY,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            multipart_part_size: DEFAULT_MULTIPART_PART_SIZE,
            upload_memory: DEFAULT_UPLOAD_MEMORY,
            inline_encode_max_rows: DEFAULT_INLINE_ENCODE_MAX_ROWS,
            retry: RetryPolicy {
                max_attempts: attempts_for(&RetryPolicy::default(), DEFAULT_STORAGE_RETRY_TIMEOUT),
                ..RetryPolicy::default()
            },
            storage_retry_timeout: DEFAULT_STORAGE_RETRY_TIMEOUT,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            spool: None,
            local_root: None,
            cleanup_owner: true,
            backslash_is_separator: false,
            on_error: None,
        }
    }

    /// Sets the writer shard count.
    pub fn with_writer_count(mut self, n: usize) -> Self {
        self.writer_count = n;
        self
    }

    /// Sets the concurrent uploads per writer.
    pub fn with_flush_concurrency(mut self, n: usize) -> Self {
        self.flush_concurrency = n;
        self
    }

    /// Sets the multipart threshold and part size.
    pub fn with_multipart(mut self, threshold: usize, part_size: usize) -> Self {
        self.multipart_threshold = threshold;
        self.multipart_part_size = part_size;
        self
    }

    /// Sets the upload read-back budget in bytes.
    pub fn with_upload_memory(mut self, bytes: usize) -> Self {
        self.upload_memory = bytes;
        self
    }

    /// Sets the largest event encoded inline (0 disables the inline path).
    pub fn with_inline_encode_max_rows(mut self, rows: usize) -> Self {
        self.inline_encode_max_rows = rows;
        self
    }

    /// Sets the retry policy exactly (its `max_attempts` included; follow with
    /// [`SinkConfig::with_storage_retry_timeout`] to budget its attempts by time instead).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets `storage-retry-timeout`: the retry policy's attempts become as many as its
    /// backoffs need to add up to `timeout` (see [`crate::retry::attempts_for`]).
    pub fn with_storage_retry_timeout(mut self, timeout: Duration) -> Self {
        self.storage_retry_timeout = timeout;
        self.retry.max_attempts = attempts_for(&self.retry, timeout);
        self
    }

    /// Sets the minimum time between checkpoint writes.
    pub fn with_checkpoint_interval(mut self, d: Duration) -> Self {
        self.checkpoint_interval = d;
        self
    }

    /// Uses this spool configuration instead of the URI's options.
    pub fn with_spool(mut self, spool: SpoolConfig) -> Self {
        self.spool = Some(spool);
        self
    }

    /// Sets whether this process runs the retention cleanup (see [`SinkConfig::cleanup_owner`]).
    pub fn with_cleanup_owner(mut self, owner: bool) -> Self {
        self.cleanup_owner = owner;
        self
    }

    /// Sets the local root (for empty-directory cleanup).
    pub fn with_local_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.local_root = Some(root.into());
        self
    }

    /// What follows from the kind of store the sink writes to: the local root of a `file://`
    /// store (unless one is set) and the `\` rule of Azure. [`crate::Sink::open`] applies it;
    /// callers that build the store from a URI themselves and use [`crate::Sink::with_store`]
    /// apply it too.
    pub fn for_storage(mut self, kind: &StorageKind) -> Self {
        match kind {
            StorageKind::Local { root, .. } if self.local_root.is_none() => {
                self.local_root = Some(root.clone());
            }
            StorageKind::Azure { .. } => self.backslash_is_separator = true,
            _ => {}
        }
        self
    }

    /// Declares that the store turns `\` in keys into `/` (see
    /// [`SinkConfig::backslash_is_separator`]), for stores built by the caller.
    pub fn with_backslash_is_separator(mut self, yes: bool) -> Self {
        self.backslash_is_separator = yes;
        self
    }

    /// Sets the error callback.
    pub fn with_on_error(mut self, f: ErrorCallback) -> Self {
        self.on_error = Some(f);
        self
    }

    /// Checks every value; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.changefeed.is_empty() {
            return Err(SinkError::param("changefeed", "must not be empty"));
        }
        if !(1..=MAX_WRITER_COUNT).contains(&self.writer_count) {
            return Err(SinkError::param(
                "writer-count",
                format!(
                    "{} is out of range 1..={MAX_WRITER_COUNT}",
                    self.writer_count
                ),
            ));
        }
        if !(1..=MAX_FLUSH_CONCURRENCY).contains(&self.flush_concurrency) {
            return Err(SinkError::param(
                "flush-concurrency",
                format!(
                    "{} is out of range 1..={MAX_FLUSH_CONCURRENCY}",
                    self.flush_concurrency
                ),
            ));
        }
        if self.multipart_threshold == 0 {
            return Err(SinkError::param(
                "multipart-threshold",
                "must be greater than 0",
            ));
        }
        if !(1..=MAX_MULTIPART_PART_SIZE).contains(&self.multipart_part_size) {
            return Err(SinkError::param(
                "multipart-part-size",
                format!(
                    "{} is out of range 1..={MAX_MULTIPART_PART_SIZE}",
                    self.multipart_part_size
                ),
            ));
        }
        if self.checkpoint_interval > MAX_CHECKPOINT_INTERVAL {
            return Err(SinkError::param(
                "checkpoint-interval",
                format!(
                    "{:?} is out of range 0s..={MAX_CHECKPOINT_INTERVAL:?}",
                    self.checkpoint_interval
                ),
            ));
        }
        if !(1024..=(u32::MAX as usize) * 1024).contains(&self.upload_memory) {
            return Err(SinkError::param(
                "upload-memory",
                "must be between 1 KiB and 4 TiB",
            ));
        }
        Ok(self.retry.validate()?)
    }
}
