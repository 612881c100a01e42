//! What every handle and every entry of one spool share: the [`Spool`] handle type (a cheap
//! clone of an `Arc<Inner>`), `Inner` (configuration, directory, metrics, read buffers, the
//! condition variable of disk-space waiters) and the lock-guarded `State` (accounting,
//! watermark machine, segment table, space generation and its waiters).
//!
//! The methods of [`Spool`] live with their concept: open, enqueue, disk-space waits, stats and
//! close in `spool.rs`, reads in `read.rs`, release in `release.rs`. The types meet here so that
//! entries, reads and releases name the shared state without importing the handle's module;
//! dependencies point one way: `shared <- entry <- {read, release} <- spool`.
//!
//! # Invariants
//!
//! - One mutex (`Inner::state`) guards all bookkeeping. It is never held across a record or
//!   chunk write, a file read, or a callback (see `spool.rs` for the two exceptions); a
//!   poisoned lock is taken anyway ([`lock`]).
//! - `Inner::closed` mirrors `State::closed` for the lock-free read path; both only go from
//!   false to true.
//! - The gauges are set from the state under the lock ([`Inner::publish`]), so they move in
//!   order.
//! - The spool directory is removed at close, or when the last handle and the last entry (each
//!   holds the `Arc<Inner>`) are dropped without close.
//! - The directory's lock file stays locked from open until close has removed the directory
//!   (close runs at the latest when `Inner` drops), so no other spool can open (and wipe) the
//!   directory while this one may still write or read it.

use crate::config::SpoolConfig;
use crate::error::{Result, SpoolError};
use crate::metrics::SpoolMetrics;
use crate::open_segments::OpenSegments;
use crate::quota::Accounting;
use crate::segment_table::Segments;
use crate::watermark::{Callback, Watermark};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A cheap, cloneable handle to the spool of one changefeed (`Send + Sync`).
#[derive(Clone)]
pub struct Spool {
    pub(crate) inner: Arc<Inner>,
}

/// The state behind every handle and entry of one spool (each holds an `Arc` of it).
pub(crate) struct Inner {
    pub(crate) config: SpoolConfig,
    pub(crate) changefeed: String,
    pub(crate) dir: PathBuf,
    /// The open lock file `<dir>.lock`, exclusively locked until close (see the crate doc);
    /// close drops the descriptor, releasing the lock, after the directory is removed.
    pub(crate) dir_lock: Mutex<Option<std::fs::File>>,
    /// Mirror of `State::closed` for the lock-free read path.
    pub(crate) closed: AtomicBool,
    /// True when the last enqueue did not fit the memory quota: the next one computes its
    /// record header before taking the lock.
    pub(crate) spilling: AtomicBool,
    /// True after a refusal for lack of disk space, until a segment write succeeds again
    /// (logs the transitions, not every refusal).
    pub(crate) disk_full: AtomicBool,
    pub(crate) state: Mutex<State>,
    /// Signalled when bytes are released (the space generation advances) and at close.
    pub(crate) space: Condvar,
    pub(crate) metrics: SpoolMetrics,
    /// The segment files by id, kept by the segment table, looked up by reads.
    pub(crate) open_segments: Arc<OpenSegments>,
}

/// The bookkeeping guarded by the spool's one lock (see [`lock`]).
pub(crate) struct State {
    pub(crate) closed: bool,
    pub(crate) acct: Accounting,
    pub(crate) watermark: Watermark,
    pub(crate) segments: Segments,
    /// Advances on every release; disk-quota waiters wait for it to move.
    pub(crate) space_generation: u64,
    /// Async waiters: run once the generation passes theirs.
    pub(crate) space_callbacks: Vec<(u64, Callback)>,
    /// Threads blocked in `wait_for_space*`.
    pub(crate) blocked_waiters: usize,
}

/// Takes the spool's lock.
pub(crate) fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // Callbacks never run under the lock, so a poisoned lock only means a panic inside the
    // spool's own bookkeeping; the state is still consistent enough to account and close.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// Sets the gauges from the state (called under the lock, so they move in order).
    pub(crate) fn publish(&self, st: &State) {
        let m = &self.metrics;
        m.memory_bytes.set(st.acct.memory_bytes as i64);
        m.disk_bytes.set(st.acct.disk_bytes as i64);
        m.entries.set(st.acct.entries() as i64);
        m.segments.set(st.segments.count() as i64);
        m.held_wakes.set(st.watermark.held() as i64);
        m.disk_quota_waiters
            .set((st.blocked_waiters + st.space_callbacks.len()) as i64);
    }

    /// Closes the spool (see [`Spool::close`]); a second call does nothing.
    pub(crate) fn close(&self) -> Result<()> {
        let mut st = lock(&self.state);
        if st.closed {
            return Ok(());
        }
        st.closed = true;
        self.closed.store(true, Ordering::Release);
        st.watermark.clear();
        st.segments.clear();
        st.acct = Accounting::new(self.config.memory_quota, self.config.disk_quota);
        let callbacks = std::mem::take(&mut st.space_callbacks);
        self.publish(&st);
        drop(st);
        self.space.notify_all();
        self.metrics.unregister();
        for (_, cb) in callbacks {
            cb();
        }
        let removed = match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SpoolError::io(&self.dir, e)),
        };
        // Only now may another spool take the directory.
        drop(
            self.dir_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        removed
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle and the last entry are gone without `close`: clean up the same way.
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "cannot remove spool directory");
        }
    }
}
