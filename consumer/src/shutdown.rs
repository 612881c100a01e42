//! Graceful stop on SIGTERM / SIGINT (systemd's stop, Kubernetes' pod deletion, Ctrl-C).
//!
//! Invariants:
//! - a stop request never cuts a round short: the round in flight finishes (each unit is one
//!   transaction, so cutting it would only roll it back, but a finished round leaves the
//!   progress record and `/health` telling the truth about what was applied);
//! - after the last round, a group member leaves its group (releases every lease and deletes
//!   its member row), so the other members take its tables over at their next heartbeat
//!   instead of waiting a lease TTL;
//! - a second signal while stopping is not waited on: the default action (terminate) is
//!   restored, which is safe because every apply is one transaction with its progress.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// A stop request shared by the round loop and whoever listens for signals.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    requested: AtomicBool,
    notify: Notify,
}

impl Shutdown {
    /// A stop that only [`Shutdown::request`] triggers (tests, embedders, benchmarks).
    pub fn manual() -> Shutdown {
        Shutdown::default()
    }

    /// A stop triggered by the first SIGTERM or SIGINT the process receives. A second one
    /// terminates the process at once.
    pub fn on_signals() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{signal, SignalKind};
        let stop = Shutdown::default();
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let s = stop.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "stopping after the round in flight");
            s.request();
            // The second signal: stop waiting.
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second stop signal: exiting now");
            std::process::exit(130);
        });
        Ok(stop)
    }

    /// Asks the round loop to stop after the round in flight.
    pub fn request(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Waits until a stop is asked for (at once if it already was).
    pub async fn wait(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.requested() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wait_returns_after_a_request_made_before_or_during_it() {
        let s = Shutdown::manual();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        s.request();
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("woken")
            .unwrap();
        // Already requested: returns at once.
        tokio::time::timeout(Duration::from_millis(100), s.wait())
            .await
            .expect("immediate");
    }
}
