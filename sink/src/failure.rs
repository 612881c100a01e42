//! The sticky failure of a running sink: the first error wins, is reported once to the error
//! callback, and is returned (as [`SinkError::Failed`]) by every later call of the API, the
//! encoders and the writers, so that no caller can mistake a stopped sink for a working one.
//!
//! Invariant: once [`Failure::is_failed`] is true it stays true, and [`Failure::error`] always
//! wraps the same first error.

use crate::config::ErrorCallback;
use crate::error::{Result, SinkError};
use std::sync::Arc;

/// The sticky failure shared by the API, the encoders and the writers: the first error wins,
/// is reported once to the error callback, and is returned by every later call.
pub(crate) struct Failure {
    failed: std::sync::atomic::AtomicBool,
    first: std::sync::Mutex<Option<Arc<SinkError>>>,
    on_error: Option<ErrorCallback>,
}

impl Failure {
    pub fn new(on_error: Option<ErrorCallback>) -> Failure {
        Failure {
            failed: std::sync::atomic::AtomicBool::new(false),
            first: std::sync::Mutex::new(None),
            on_error,
        }
    }

    /// Records `e` unless an error is already recorded.
    pub fn fail(&self, e: SinkError) {
        let e = match e {
            SinkError::Failed(_) => return,
            e => Arc::new(e),
        };
        {
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_some() {
                return;
            }
            *first = Some(Arc::clone(&e));
            self.failed
                .store(true, std::sync::atomic::Ordering::Release);
        }
        tracing::error!(error = %e, "sink stopped");
        if let Some(cb) = &self.on_error {
            cb(&e);
        }
    }

    /// True once an error is recorded.
    pub fn is_failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The recorded error, as [`SinkError::Failed`].
    pub fn error(&self) -> Option<SinkError> {
        if !self.is_failed() {
            return None;
        }
        let first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        first.as_ref().map(|e| SinkError::Failed(Arc::clone(e)))
    }

    /// `Err` once an error is recorded.
    pub fn check(&self) -> Result<()> {
        match self.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
