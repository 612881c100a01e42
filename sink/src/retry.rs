//! Retries of object store operations: bounded attempts, exponential backoff, and a timeout per
//! request so that a hung upload becomes an error instead of a stuck writer.
//!
//! ```text
//! attempt 1 --err(retryable)|timeout--> sleep(backoff) --> attempt 2 ... --> attempt max
//!     \--ok--> done            \--err(non-retryable)--> SinkError::Storage at once
//! ```
//!
//! Retryability is [`cdc_common::storage::is_retryable`]: everything but not-found, already
//! exists, precondition, permission, authentication, invalid path and not-supported. Each failed
//! attempt counts in `cdc_sink_storage_errors_total{op}`, each retry in
//! `cdc_sink_storage_retries_total`. Operations are idempotent (puts overwrite the same bytes,
//! deletes of missing objects are ignored by callers), so a retry after a timeout whose request
//! did land is harmless.

use crate::error::{Result, SinkError};
use crate::metrics::SinkMetrics;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Attempts per operation: rides out a few seconds of throttling or a connection reset.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
/// First backoff; doubles per retry.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Backoff cap.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Per-request timeout: a 64 MiB part at a slow 2 MiB/s still finishes; a hung request fails.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How storage operations are retried.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Timeout of one request (one attempt).
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl RetryPolicy {
    /// Checks the policy.
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(SinkError::param("retry.max-attempts", "must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err(SinkError::param(
                "retry.request-timeout",
                "must be greater than 0",
            ));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(SinkError::param(
                "retry.initial-backoff",
                "must not exceed retry.max-backoff",
            ));
        }
        Ok(())
    }
}

/// Runs `f` until it succeeds, fails with a non-retryable error, or runs out of attempts.
/// `timeout_scale` multiplies the request timeout (multipart uploads are several requests).
pub(crate) async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
    op: &'static str,
    path: &str,
    timeout_scale: u32,
    mut f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
{
    let timeout = policy.request_timeout * timeout_scale.max(1);
    let mut backoff = policy.initial_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let err = match tokio::time::timeout(timeout, f()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => {
                metrics.storage_errors(op).inc();
                if !cdc_common::storage::is_retryable(&e) || attempt >= policy.max_attempts {
                    return Err(SinkError::Storage {
                        op,
                        path: path.to_string(),
                        attempts: attempt,
                        source: Arc::new(e),
                    });
                }
                tracing::warn!(op, path, attempt, error = %e, "storage error, retrying");
                None
            }
            Err(_) => {
                metrics.storage_errors(op).inc();
                Some(SinkError::Timeout {
                    op,
                    path: path.to_string(),
                    timeout,
                    attempts: attempt,
                })
            }
        };
        if let Some(e) = err {
            if attempt >= policy.max_attempts {
                return Err(e);
            }
            tracing::warn!(op, path, attempt, "storage request timed out, retrying");
        }
        metrics.storage_retries_total.inc();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}
