//! The upstream store client: every object store call discovery and replay make goes through
//! [`Upstream`], which counts it (`cdc_consumer_{list,get}_calls_total`, bytes read) and retries
//! transient errors.
//!
//! Invariants: a call is retried only for an error [`cdc_common::storage::is_retryable`] accepts,
//! at most `attempts` times in all, with a backoff doubling from the first one; a call that
//! still fails returns [`Error::Storage`] naming the object, and ends the round that made it.

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use bytes::Bytes;
use cdc_common::storage::get_if_exists;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStore;
use std::sync::Arc;
use std::time::Duration;

/// reset connection) without restarting the round's discovery; a store that stays down still
/// fails the round quickly, and the next round tries again.
pub const DEFAULT_STORAGE_ATTEMPTS: u32 = 4;
/// Backoff before the first retry of a storage call; doubles per retry (50, 100, 200 ms).
pub const DEFAULT_STORAGE_BACKOFF: Duration = Duration::from_millis(50);

/// The upstream store with every call counted, and transient errors retried.
#[derive(Clone)]
pub struct Upstream {
    store: Arc<dyn ObjectStore>,
    /// Read by a discovery round to count its calls.
    pub(super) metrics: Metrics,
    attempts: u32,
    backoff: Duration,
}

impl Upstream {
    /// Wraps a store (rooted at the storage prefix).
    pub fn new(store: Arc<dyn ObjectStore>, metrics: Metrics) -> Upstream {
        Upstream {
            store,
            metrics,
            attempts: DEFAULT_STORAGE_ATTEMPTS,
            backoff: DEFAULT_STORAGE_BACKOFF,
        }
    }

    /// Sets the attempts per call (at least 1) and the first backoff.
    pub fn with_retry(mut self, attempts: u32, backoff: Duration) -> Upstream {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    fn path(p: &str) -> Result<Path> {
        Path::parse(p).map_err(|e| cdc_common::Error::path(p, e.to_string()).into())
    }

    /// Runs `f` until it succeeds, fails with an error that is not retryable, or runs out of
    /// attempts; each retry counts in `cdc_consumer_errors_total{kind="storage-retry"}`.
    async fn retry<T, F, Fut>(&self, what: &str, mut f: F) -> object_store::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>>,
    {
        let mut backoff = self.backoff;
        let mut attempt = 1;
        loop {
            match f().await {
                Err(e) if attempt < self.attempts && cdc_common::storage::is_retryable(&e) => {
                    tracing::debug!(object = what, attempt, error = %e, "storage error, retrying");
                    self.metrics
                        .errors
                        .with_label_values(&["storage-retry"])
                        .inc();
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    /// Reads a whole object; `None` when it does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<Bytes>> {
        let p = Self::path(path)?;
        let r = self
            .retry(path, || async {
                self.metrics.get_calls.inc();
                get_if_exists(self.store.as_ref(), &p).await
            })
            .await
            .map_err(|e| Error::storage(path, e))?;
        if let Some(b) = &r {
            self.metrics.bytes_read.inc_by(b.len() as u64);
        }
        Ok(r)
    }

    /// Lists one directory level: `(sub-directory names, object names)`.
    pub async fn list_dir(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>)> {
        let p = if prefix.is_empty() {
            None
        } else {
            Some(Self::path(prefix.trim_end_matches('/'))?)
        };
        let r = self
            .retry(prefix, || {
                self.metrics.list_calls.inc();
                self.store.list_with_delimiter(p.as_ref())
            })
            .await
            .map_err(|e| Error::storage(prefix, e))?;
        let last = |p: &Path| p.filename().map(str::to_string);
        Ok((
            r.common_prefixes.iter().filter_map(last).collect(),
            r.objects.iter().filter_map(|o| last(&o.location)).collect(),
        ))
    }

    /// Lists every object under the root (first round only).
    pub async fn list_all(&self) -> Result<Vec<String>> {
        self.retry("", || {
            self.metrics.list_calls.inc();
            self.store
                .list(None)
                .map_ok(|m| m.location.to_string())
                .try_collect()
        })
        .await
        .map_err(|e| Error::storage("", e))
    }
}
