//! The sink's side of the one retry policy of object-storage calls ([`cdc_common::retry`]:
//! bounded attempts, exponential backoff with a cap, a timeout per request so that a hung
//! upload becomes an error instead of a stuck writer).
//!
//! ```text
//! attempt 1 --err(retryable)|timeout--> sleep(backoff) --> attempt 2 ... --> attempt max
//!     \--ok--> done            \--err(non-retryable)--> SinkError::Storage at once
//! ```
//!
//! The budget: `storage-retry-timeout` ([`SinkConfig::with_storage_retry_timeout`], default
//! [`DEFAULT_STORAGE_RETRY_TIMEOUT`]) becomes the policy's attempts ([`attempts_for`]): as many
//! as its backoffs need to add up to the timeout. Past it the operation fails and the embedder
//! gets the error through the error callback.
//!
//! [`SinkConfig::with_storage_retry_timeout`]: crate::config::SinkConfig::with_storage_retry_timeout
//!
//! What this file adds to the common loop: each failed attempt counts in
//! `cdc_sink_storage_errors_total{op}`, each retry in `cdc_sink_storage_retries_total` and logs a
//! warning (the [`SinkRetryHook`]); the loop's error becomes [`SinkError::Storage`] or
//! [`SinkError::Timeout`] naming the operation and the path. Retryability is
//! [`cdc_common::storage::is_retryable`]. Operations are idempotent (puts overwrite the same
//! bytes, deletes of missing objects are ignored by callers), so a retry after a timeout whose
//! request did land is harmless.

use crate::error::{Result, SinkError};
use crate::metrics::SinkMetrics;
use cdc_common::retry::{AttemptFailure, RetryError, RetryHook};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use cdc_common::retry::{
    RetryPolicy, DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BACKOFF,
    DEFAULT_REQUEST_TIMEOUT,
};

/// `storage-retry-timeout`'s default: how long the sink keeps retrying one storage operation
/// (sum of its backoffs) before it stops with the error. Two minutes ride out a storage outage
/// of at least a minute (a zone failover, a restarted endpoint): meanwhile nothing is
/// acknowledged, the spool keeps memory under its quota (spilling to disk) and, above its high
/// watermark, holds the dispatchers' wakes, so upstream slows down instead of the sink failing.
pub const DEFAULT_STORAGE_RETRY_TIMEOUT: Duration = Duration::from_secs(120);

/// Attempts of `policy` whose backoffs add up to at least `budget` (its `max_attempts` when
/// the backoff is zero). Each attempt may add up to the per-request timeout on top when the
/// store hangs instead of failing.
pub fn attempts_for(policy: &RetryPolicy, budget: Duration) -> u32 {
    if policy.max_backoff.is_zero() || policy.initial_backoff.is_zero() {
        return policy.max_attempts;
    }
    let mut total = Duration::ZERO;
    let mut backoff = policy.initial_backoff;
    let mut attempts: u32 = 1;
    while total < budget && attempts < u32::MAX {
        total += backoff;
        backoff = (backoff * 2).min(policy.max_backoff);
        attempts += 1;
    }
    attempts
}

/// Counts and logs the failures and retries of one sink storage operation.
struct SinkRetryHook<'a> {
    metrics: &'a SinkMetrics,
    op: &'static str,
    path: &'a str,
}

impl RetryHook for SinkRetryHook<'_> {
    fn on_failure(&mut self, _attempt: u32, _failure: &AttemptFailure<'_>) {
        self.metrics.storage_errors(self.op).inc();
    }

    fn on_retry(&mut self, attempt: u32, failure: &AttemptFailure<'_>, _backoff: Duration) {
        let (op, path) = (self.op, self.path);
        match failure {
            AttemptFailure::Store(e) => {
                tracing::warn!(op, path, attempt, error = %e, "storage error, retrying");
            }
            AttemptFailure::Timeout(_) => {
                tracing::warn!(op, path, attempt, "storage request timed out, retrying");
            }
        }
        self.metrics.storage_retries_total.inc();
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
    f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
{
    let mut hook = SinkRetryHook { metrics, op, path };
    cdc_common::retry::retry(policy, path, &mut hook, timeout_scale, f)
        .await
        .map_err(|e| storage_error(op, e))
}

/// The sink's error for an operation that failed for good.
fn storage_error(op: &'static str, e: RetryError) -> SinkError {
    match e {
        RetryError::Store {
            what,
            attempts,
            source,
        } => SinkError::Storage {
            op,
            path: what,
            attempts,
            source: Arc::new(source),
        },
        RetryError::Timeout {
            what,
            timeout,
            attempts,
        } => SinkError::Timeout {
            op,
            path: what,
            timeout,
            attempts,
        },
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    /// The default budget's backoffs add up to at least a minute of outage.
    #[test]
    fn the_default_budget_rides_out_a_minute() {
        let p = RetryPolicy::default();
        let n = attempts_for(&p, DEFAULT_STORAGE_RETRY_TIMEOUT);
        let mut total = Duration::ZERO;
        let mut b = p.initial_backoff;
        for _ in 1..n {
            total += b;
            b = (b * 2).min(p.max_backoff);
        }
        assert!(
            total >= Duration::from_secs(60),
            "{total:?} over {n} attempts"
        );
        assert!(total >= DEFAULT_STORAGE_RETRY_TIMEOUT);
        assert!(n < 40, "{n}");
        assert_eq!(attempts_for(&p, Duration::ZERO), 1);
    }
}
