//! The one retry policy of object-storage calls: bounded attempts, exponential backoff with a
//! cap, and a timeout per request so that a hung upload becomes an error instead of a stuck
//! caller. The sink and the consumer both run their store calls through [`retry`].
//!
//! ```text
//! attempt 1 --err(retryable)|timeout--> hook.on_retry, sleep(backoff) --> attempt 2 ... --> attempt max
//!     \--ok--> done            \--err(non-retryable)--> RetryError::Store at once
//! ```
//!
//! Retryability is [`crate::storage::is_retryable`]: everything but not-found, already exists,
//! precondition, permission, authentication, invalid path and not-supported. A timeout is
//! retryable. The backoff starts at `initial_backoff`, doubles per retry and never exceeds
//! `max_backoff`.
//!
//! The loop knows no metrics and no logger: the caller passes a [`RetryHook`], told of every
//! failed attempt ([`RetryHook::on_failure`]) and of every retry before its backoff
//! ([`RetryHook::on_retry`]); the sink counts `cdc_sink_storage_errors_total{op}` and
//! `cdc_sink_storage_retries_total` there, the consumer its
//! `cdc_consumer_errors_total{kind="storage-retry"}`.
//!
//! Callers retry idempotent operations only (puts overwrite the same bytes, deletes of missing
//! objects are ignored by callers), so a retry after a timeout whose request did land is
//! harmless.

use crate::error::{store_error_is_retryable, Error, Result};
use std::future::Future;
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
    /// Checks the policy; the error names the parameter at fault (`retry.max-attempts`,
    /// `retry.request-timeout`, `retry.initial-backoff`).
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::param("retry.max-attempts", "must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::param(
                "retry.request-timeout",
                "must be greater than 0",
            ));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(Error::param(
                "retry.initial-backoff",
                "must not exceed retry.max-backoff",
            ));
        }
        Ok(())
    }
}

/// Why one attempt failed, as told to a [`RetryHook`].
#[derive(Debug)]
pub enum AttemptFailure<'a> {
    /// The store answered with an error.
    Store(&'a object_store::Error),
    /// The request did not finish within this (scaled) per-request timeout.
    Timeout(Duration),
}

/// What the caller of [`retry`] observes of the loop: counters and logs live here, not in the
/// loop. Both methods default to doing nothing; `()` is the hook that observes nothing.
pub trait RetryHook {
    /// Called after every failed attempt (`attempt` is 1-based), whether or not it is retried.
    fn on_failure(&mut self, _attempt: u32, _failure: &AttemptFailure<'_>) {}

    /// Called when the failed `attempt` will be retried, before sleeping `backoff`.
    fn on_retry(&mut self, _attempt: u32, _failure: &AttemptFailure<'_>, _backoff: Duration) {}
}

impl RetryHook for () {}

/// How an operation failed for good: the two ways an attempt can fail, for the last attempt.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The store failed with a non-retryable error, or with a retryable one on the last attempt.
    #[error("storage operation on `{what}` failed after {attempts} attempt(s): {source}")]
    Store {
        /// The object or prefix the operation was on (the caller's `what`).
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The store's last error.
        #[source]
        source: object_store::Error,
    },
    /// The last attempt (and every one before it that was not a store error) timed out.
    #[error("storage operation on `{what}` timed out after {timeout:?} on attempt {attempts}")]
    Timeout {
        /// The object or prefix the operation was on (the caller's `what`).
        what: String,
        /// The per-request timeout (scaled).
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },
}

impl RetryError {
    /// Attempts made before giving up.
    pub fn attempts(&self) -> u32 {
        match self {
            RetryError::Store { attempts, .. } | RetryError::Timeout { attempts, .. } => *attempts,
        }
    }

    /// True when the operation timed out (rather than failing with a store error).
    pub fn is_timeout(&self) -> bool {
        matches!(self, RetryError::Timeout { .. })
    }
}

/// Runs `f` until it succeeds, fails with a non-retryable error, or runs out of
/// `policy.max_attempts`. Each attempt is bounded by `policy.request_timeout * timeout_scale`
/// (a multipart upload is several requests; 0 counts as 1). `what` names the object or prefix
/// in the error; `hook` observes each failure and retry.
pub async fn retry<T, F, Fut, H>(
    policy: &RetryPolicy,
    what: &str,
    hook: &mut H,
    timeout_scale: u32,
    mut f: F,
) -> Result<T, RetryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
    H: RetryHook + ?Sized,
{
    let timeout = policy.request_timeout * timeout_scale.max(1);
    let mut backoff = policy.initial_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let failed = match tokio::time::timeout(timeout, f()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => Failed::Store(e),
            Err(_) => Failed::Timeout(timeout),
        };
        hook.on_failure(attempt, &failed.observed());
        if !failed.is_retryable() || attempt >= policy.max_attempts {
            return Err(failed.into_error(what, attempt));
        }
        hook.on_retry(attempt, &failed.observed(), backoff);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}

/// One failed attempt, owned (the loop keeps the last one for its error).
enum Failed {
    Store(object_store::Error),
    Timeout(Duration),
}

impl Failed {
    fn observed(&self) -> AttemptFailure<'_> {
        match self {
            Failed::Store(e) => AttemptFailure::Store(e),
            Failed::Timeout(t) => AttemptFailure::Timeout(*t),
        }
    }

    /// A timeout is retryable: the request may have hung on one connection only.
    fn is_retryable(&self) -> bool {
        match self {
            Failed::Store(e) => store_error_is_retryable(e),
            Failed::Timeout(_) => true,
        }
    }

    fn into_error(self, what: &str, attempts: u32) -> RetryError {
        let what = what.to_string();
        match self {
            Failed::Store(source) => RetryError::Store {
                what,
                attempts,
                source,
            },
            Failed::Timeout(timeout) => RetryError::Timeout {
                what,
                timeout,
                attempts,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use tokio::time::Instant;

    /// Records what the loop told its hook.
    #[derive(Default)]
    struct Seen {
        failures: Vec<(u32, bool)>,
        backoffs: Vec<Duration>,
    }

    impl RetryHook for Seen {
        fn on_failure(&mut self, attempt: u32, failure: &AttemptFailure<'_>) {
            let timed_out = matches!(failure, AttemptFailure::Timeout(_));
            self.failures.push((attempt, timed_out));
        }

        fn on_retry(&mut self, _attempt: u32, _failure: &AttemptFailure<'_>, backoff: Duration) {
            self.backoffs.push(backoff);
        }
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            request_timeout: Duration::from_secs(1),
        }
    }

    fn transient() -> object_store::Error {
        object_store::Error::Generic {
            store: "test",
            source: "connection reset".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_with_the_last_store_error() {
        let calls = Cell::new(0u32);
        let mut seen = Seen::default();
        let r: Result<(), _> = retry(&policy(4), "a/b", &mut seen, 1, || {
            calls.set(calls.get() + 1);
            async { Err(transient()) }
        })
        .await;
        assert_eq!(calls.get(), 4);
        let e = r.unwrap_err();
        assert!(
            matches!(&e, RetryError::Store { what, attempts: 4, source: object_store::Error::Generic { .. } } if what == "a/b"),
            "{e:?}"
        );
        assert_eq!(e.attempts(), 4);
        assert!(!e.is_timeout());
        assert_eq!(
            seen.failures,
            vec![(1, false), (2, false), (3, false), (4, false)]
        );
        assert_eq!(seen.backoffs.len(), 3, "no retry after the last attempt");
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_error_fails_at_once() {
        let calls = Cell::new(0u32);
        let mut seen = Seen::default();
        let start = Instant::now();
        let r: Result<(), _> = retry(&policy(6), "gone", &mut seen, 1, || {
            calls.set(calls.get() + 1);
            async {
                Err(object_store::Error::NotFound {
                    path: "gone".into(),
                    source: "no such key".into(),
                })
            }
        })
        .await;
        assert_eq!(calls.get(), 1);
        assert!(matches!(
            r,
            Err(RetryError::Store {
                attempts: 1,
                source: object_store::Error::NotFound { .. },
                ..
            })
        ));
        assert_eq!(seen.failures, vec![(1, false)]);
        assert!(seen.backoffs.is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO, "no backoff slept");
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_is_retried_and_succeeds_on_a_later_attempt() {
        let calls = Cell::new(0u32);
        let mut seen = Seen::default();
        let start = Instant::now();
        let r = retry(&policy(3), "slow", &mut seen, 1, || {
            calls.set(calls.get() + 1);
            let hang = calls.get() == 1;
            async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                Ok(7)
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls.get(), 2);
        assert_eq!(seen.failures, vec![(1, true)]);
        assert_eq!(seen.backoffs, vec![Duration::from_millis(100)]);
        assert_eq!(start.elapsed(), Duration::from_millis(1100));
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_on_every_attempt_give_a_timeout_error_with_the_scaled_timeout() {
        let mut seen = Seen::default();
        let r: Result<(), _> = retry(&policy(2), "big", &mut seen, 3, std::future::pending).await;
        let e = r.unwrap_err();
        assert!(
            matches!(&e, RetryError::Timeout { attempts: 2, timeout, .. } if *timeout == Duration::from_secs(3)),
            "{e:?}"
        );
        assert!(e.is_timeout());
        assert_eq!(seen.failures, vec![(1, true), (2, true)]);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_up_to_its_cap() {
        let mut seen = Seen::default();
        let start = Instant::now();
        let r: Result<(), _> =
            retry(&policy(6), "x", &mut seen, 1, || async { Err(transient()) }).await;
        assert!(r.is_err());
        let ms = |v: u64| Duration::from_millis(v);
        assert_eq!(
            seen.backoffs,
            vec![ms(100), ms(200), ms(300), ms(300), ms(300)]
        );
        assert_eq!(
            start.elapsed(),
            ms(1200),
            "the loop slept exactly the backoffs"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_unit_hook_observes_nothing_and_success_is_returned_at_once() {
        let r = retry(&RetryPolicy::default(), "ok", &mut (), 1, || async {
            Ok("done")
        })
        .await;
        assert_eq!(r.unwrap(), "done");
    }

    #[test]
    fn validate_names_the_parameter() {
        let name = |p: RetryPolicy| match p.validate() {
            Err(Error::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, got {other:?}"),
        };
        let ok = RetryPolicy::default();
        ok.validate().unwrap();
        assert_eq!(
            name(RetryPolicy {
                max_attempts: 0,
                ..ok
            }),
            "retry.max-attempts"
        );
        assert_eq!(
            name(RetryPolicy {
                request_timeout: Duration::ZERO,
                ..ok
            }),
            "retry.request-timeout"
        );
        assert_eq!(
            name(RetryPolicy {
                initial_backoff: Duration::from_secs(10),
                ..ok
            }),
            "retry.initial-backoff"
        );
    }
}
