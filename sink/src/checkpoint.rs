//! The checkpoint file `metadata` = `{"checkpoint-ts":N}` at the storage root.
//!
//! Rules, in order, for `checkpoint(ts)`:
//!
//! 1. A stopped sink writes nothing (events may have been lost; the checkpoint must not pass them).
//! 2. `ts` is clamped below the smallest commit ts any dispatcher handed in that is not yet
//!    durable: even a caller that computed `ts` too eagerly cannot make the file pass an
//!    unflushed event. The clamp is taken when the value is decided, under the checkpoint
//!    lock, and applies to the ts a deferral remembered too: `checkpoint(400)` deferred, an
//!    event at 350 accepted, `checkpoint(360)` writes 349, not 400.
//! 3. Monotonic: a ts at or below the last written one (this process, or the file found in
//!    storage at the first call) is `Unchanged`; and the write itself is conditional
//!    (`checkpoint_update.rs`): a ts at or below what another process wrote meanwhile is
//!    `Unchanged` too, so the file never decreases even with several writers.
//! 4. Rate-limited: within `checkpoint-interval` of the last write the ts is remembered
//!    (`Deferred`) and written by a later call or at close.
//! 5. Each write of `metadata` is preceded by the change summary naming the tables touched
//!    since the previous one (`summary_writer.rs`).

use crate::changes::ChangeLog;
use crate::checkpoint_update::{self, Advanced};
use crate::error::Result;
use crate::metrics::SinkMetrics;
use crate::retry::RetryPolicy;
use crate::summary_writer::SummaryWriter;
use cdc_common::layout::Checkpoint;
use cdc_common::Ts;

use object_store::ObjectStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a `checkpoint` call did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// The file now holds this ts (possibly clamped below the requested one).
    Written(Ts),
    /// Too soon after the last write: this ts is written later (next call or close), clamped
    /// again then below whatever is pending at that moment.
    Deferred(Ts),
    /// Nothing to do: the (clamped) ts is not above the last one written.
    Unchanged,
}

/// The writer of the checkpoint file (one per sink, behind an async mutex).
#[derive(Debug)]
pub(crate) struct CheckpointState {
    /// Least time between two writes (rule 4).
    interval: Duration,
    /// Root directory of a local file system store (its `flock` serialises writers there).
    local_root: Option<PathBuf>,
    loaded: bool,
    last_written: Option<Ts>,
    last_write_at: Option<Instant>,
    deferred: Option<Ts>,
    /// The change summary put before each write (rule 5).
    summary: SummaryWriter,
}

impl CheckpointState {
    /// A writer that writes at most once per `interval` (unless forced).
    pub fn new(
        interval: Duration,
        local_root: Option<PathBuf>,
        changes: Arc<ChangeLog>,
    ) -> CheckpointState {
        CheckpointState {
            interval,
            local_root,
            loaded: false,
            last_written: None,
            last_write_at: None,
            deferred: None,
            summary: SummaryWriter::new(changes),
        }
    }

    /// The checkpoint last written, loading the one a previous run left on first use.
    pub async fn stored(
        &mut self,
        store: &Arc<dyn ObjectStore>,
        policy: &RetryPolicy,
        metrics: &Arc<SinkMetrics>,
    ) -> Result<Option<Ts>> {
        if !self.loaded {
            self.last_written = checkpoint_update::read(store, policy, metrics, Checkpoint::path())
                .await?
                .ts;
            self.loaded = true;
        }
        Ok(self.last_written)
    }

    /// Applies rules 2 to 4 to `ts` (or to the deferred ts, if larger) and writes if due.
    /// `min_pending` answers the smallest commit ts not yet durable; it is asked after the
    /// stored checkpoint is known, right before the decision, so the value written is clamped
    /// against what is pending at the moment of writing.
    pub async fn advance(
        &mut self,
        store: &Arc<dyn ObjectStore>,
        policy: &RetryPolicy,
        metrics: &Arc<SinkMetrics>,
        ts: Ts,
        min_pending: impl FnOnce() -> Option<Ts>,
        force: bool,
    ) -> Result<CheckpointOutcome> {
        self.stored(store, policy, metrics).await?;
        let pending = min_pending();
        // The largest ts asked for since the last write, each request clamped when made...
        let wanted = clamp(ts, pending);
        let wanted = self.deferred.map_or(wanted, |d| d.max(wanted));
        // ...and clamped again now: events accepted since a deferral are pending too.
        let ts = clamp(wanted, pending);
        if self.last_written.is_some_and(|w| ts <= w) {
            self.deferred = None;
            return Ok(CheckpointOutcome::Unchanged);
        }
        if !force
            && self
                .last_write_at
                .is_some_and(|at| at.elapsed() < self.interval)
        {
            self.deferred = Some(wanted);
            return Ok(CheckpointOutcome::Deferred(wanted));
        }
        self.summary
            .before_metadata(store, policy, metrics, self.last_written, ts)
            .await;
        let advanced = checkpoint_update::advance(
            store,
            policy,
            metrics,
            Checkpoint::path(),
            ts,
            self.local_root.as_deref(),
            checkpoint_update::Writers::One,
        )
        .await;
        self.summary.after_metadata(advanced.as_ref().ok().copied());
        let advanced = advanced?;
        self.last_write_at = Some(Instant::now());
        self.deferred = None;
        match advanced {
            Advanced::Written(ts) => {
                self.last_written = Some(ts);
                metrics.checkpoint_ts.set(ts.0 as i64);
                Ok(CheckpointOutcome::Written(ts))
            }
            Advanced::AlreadyAt(stored) => {
                // Another writer is ahead (or an earlier attempt of ours landed).
                self.last_written = Some(stored);
                if stored == ts {
                    metrics.checkpoint_ts.set(ts.0 as i64);
                    Ok(CheckpointOutcome::Written(ts))
                } else {
                    Ok(CheckpointOutcome::Unchanged)
                }
            }
        }
    }

    /// The ts deferred by the rate limit, if any.
    pub fn deferred(&self) -> Option<Ts> {
        self.deferred
    }
}

/// Rule 2: the largest ts the checkpoint may hold given the smallest pending commit ts.
pub(crate) fn clamp(ts: Ts, min_pending: Option<Ts>) -> Ts {
    match min_pending {
        Some(p) if p <= ts => Ts(p.0.saturating_sub(1)),
        _ => ts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_passes_a_pending_event() {
        assert_eq!(clamp(Ts(10), None), Ts(10));
        assert_eq!(clamp(Ts(10), Some(Ts(11))), Ts(10));
        assert_eq!(clamp(Ts(10), Some(Ts(10))), Ts(9));
        assert_eq!(clamp(Ts(10), Some(Ts(4))), Ts(3));
    }
}
