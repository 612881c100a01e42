//! `GET /wait?ts=N&timeout=5s`: read-your-writes (the "minimum sequence" pattern of replicated
//! read models). An application that wrote upstream at commit ts N asks the consumer to answer
//! once every table is applied through N, then reads the downstream knowing it sees its write.
//!
//! Answers: 200 with [`WaitAnswer`] (`reached: true`) as soon as the applied ts (see
//! [`crate::freshness`]) is at or above N; 504 with the same document (`reached: false`) when
//! `timeout` (default [`DEFAULT_TIMEOUT`], at most [`MAX_TIMEOUT`]) passes first; 400 for a
//! missing or malformed `ts` or `timeout`.
//!
//! # Invariants
//!
//! - A waiter never reads storage nor the downstream: it re-checks the in-memory [`Health`]
//!   only when the round loop fires [`Health::applied`] (a [`tokio::sync::Notify`]) at the end
//!   of each round, so any number of waiters costs no polling.
//! - No wake-up is lost: a waiter registers for the notification before it checks the applied
//!   ts, so a round that ends between the check and the wait still wakes it.
//! - An unknown applied ts (`null`) never satisfies a wait.

use crate::freshness::{now_ms, Freshness, Health, Status};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `timeout` when the request gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest `timeout` accepted (a waiter holds a connection).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// What `/wait` answers (200 when `reached`, else 504).
#[derive(Clone, Debug, serde::Serialize)]
pub struct WaitAnswer {
    /// The commit ts waited for.
    pub ts: u64,
    /// Every table is applied through `ts`.
    pub reached: bool,
    /// `/health`'s status at the moment of answering.
    pub status: Status,
    /// `/health`'s freshness at the moment of answering.
    pub freshness: Freshness,
}

/// A parsed `/wait` request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WaitRequest {
    /// The commit ts to wait for.
    pub ts: u64,
    /// How long to wait at most.
    pub timeout: Duration,
}

impl WaitRequest {
    /// Parses the query parameters `ts` (required) and `timeout` (e.g. `500ms`, `5s`).
    pub fn parse(ts: Option<&str>, timeout: Option<&str>) -> Result<WaitRequest, String> {
        let ts = ts
            .ok_or("`ts` is required (a commit ts)")?
            .parse::<u64>()
            .map_err(|e| format!("`ts` is not a commit ts: {e}"))?;
        let timeout = match timeout {
            Some(t) => {
                cdc_common::options::parse_duration("timeout", t, Duration::ZERO, MAX_TIMEOUT)
                    .map_err(|e| e.to_string())?
            }
            None => DEFAULT_TIMEOUT,
        };
        Ok(WaitRequest { ts, timeout })
    }
}

/// Waits until every table is applied through `req.ts` or `req.timeout` passes.
pub async fn wait(health: &Arc<Mutex<Health>>, req: WaitRequest) -> WaitAnswer {
    let notify = match health.lock() {
        Ok(h) => h.applied.clone(),
        Err(_) => return answer(health, req.ts),
    };
    let deadline = tokio::time::Instant::now() + req.timeout;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        // Registered before the check: a round ending right after it still wakes us.
        notified.as_mut().enable();
        let a = answer(health, req.ts);
        if a.reached {
            return a;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return answer(health, req.ts),
        }
    }
}

/// The answer for `ts` from the health document as it is now.
fn answer(health: &Arc<Mutex<Health>>, ts: u64) -> WaitAnswer {
    let mut h = health.lock().map(|h| h.clone()).unwrap_or_default();
    h.refresh(now_ms());
    WaitAnswer {
        ts,
        reached: h.applied_ts.is_some_and(|a| a >= ts),
        status: h.status,
        freshness: h.freshness,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ts_and_timeout() {
        assert_eq!(
            WaitRequest::parse(Some("42"), Some("250ms")),
            Ok(WaitRequest {
                ts: 42,
                timeout: Duration::from_millis(250)
            })
        );
        assert_eq!(
            WaitRequest::parse(Some("42"), None).unwrap().timeout,
            DEFAULT_TIMEOUT
        );
        assert!(WaitRequest::parse(None, None).is_err());
        assert!(WaitRequest::parse(Some("x"), None).is_err());
        assert!(WaitRequest::parse(Some("1"), Some("1h")).is_err());
    }
}
