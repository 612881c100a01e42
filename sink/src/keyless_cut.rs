//! Where a data file of a table without a primary key may end: never inside a commit ts.
//!
//! A consumer applies a keyless table's rows at exactly its stream's recorded commit ts
//! (`done_ts`) no second time: there a copy of the last applied transaction would add
//! duplicate rows. So if a stream's file ended inside one commit ts, the rest of that
//! transaction, in the next file, would be skipped and lost. This is the writer's side of the
//! rule (docs/format.md, writer rule 7): a flush of a keyless batch for `file-size`,
//! `interval` or `spool-pressure` publishes it only up to the last commit ts known complete,
//! and keeps the trailing run (the items at the batch's last commit ts, `Batch::run_start`)
//! open, to go to the next file with the rest of its transaction.
//!
//! # When a commit ts is known complete
//!
//! The trailing run at commit ts `T` of a dispatcher's batch is complete when either
//!
//! 1. the writer received an event of the same dispatcher with a later commit ts: a
//!    dispatcher hands in its events in commit-ts order and they reach its writer in that
//!    order (`encoder_pool.rs`), so every event at `T` has arrived (in this batch: one commit
//!    ts of one stream goes to one batch, as the date directory follows the ts); or
//! 2. `T` is at or below the largest ts the caller gave [`crate::Sink::checkpoint`],
//!    [`crate::Sink::mark_resolved`] or `NodeCheckpoint::advance` (TiCDC's resolved ts: every
//!    event at or below it has been handed in) **and** nothing the dispatcher handed in is still on its way to the writer
//!    (`DispatcherState::nothing_in_transit`). The ts is read before the transit count: an
//!    event handed in before the caller's checkpoint call is counted by then.
//!
//! # What is not kept back
//!
//! - Tables with a primary key: their files are cut at `file-size` as before (the consumer
//!   applies rows at `done_ts` again, idempotently; the capture's snapshots rely on bounded
//!   files).
//! - `drain` (a DDL at `V`: every DML below `V` has been handed in), `remove` and `close`
//!   publish everything: a closing sink or a removed dispatcher is not handed the rest of an
//!   open transaction. What a consumer then sees is in docs/format.md (rule 7's exceptions).
//! - Spool pressure that keeping runs back would hold: after a flush kept runs back, if the
//!   spool still holds wakes or has a writer waiting for disk room, the kept runs are published
//!   too (`cdc_sink_file_cut_forced_total`). Otherwise a transaction larger than the spool's
//!   high watermark would stop its dispatcher for good (its wake held, the rest never handed
//!   in).
//!
//! A kept run stays in the spool and counts against its quotas like any open batch; it goes
//! back into the batch table with a new deadline one flush interval later. A transaction larger
//! than `file-size` makes a file larger than `file-size`.
//!
//! Cost: O(1) per event (`Batch::push` keeps the run start); a flush moves the kept items once.

use crate::batch::Batch;
use crate::flush::FlushReason;
use cdc_common::Ts;

/// What a flush does with one taken batch.
pub(crate) enum Cut {
    /// Publish all of it.
    Whole(Batch),
    /// Publish `head`; `run` goes back open.
    Split { head: Batch, run: Batch },
    /// Publish nothing: the batch is one incomplete run and goes back open.
    Hold(Batch),
}

/// True when a flush of `reason` keeps incomplete trailing runs of keyless batches back.
pub(crate) fn defers(reason: FlushReason) -> bool {
    matches!(
        reason,
        FlushReason::FileSize | FlushReason::Interval | FlushReason::SpoolPressure
    )
}

/// True when every event at the batch's last commit ts has reached this batch (see the module
/// doc). `handed_in` is the caller's checkpoint ts, read before this call.
pub(crate) fn trailing_run_complete(batch: &Batch, handed_in: Ts) -> bool {
    let Some(t) = batch.last_ts() else {
        return true;
    };
    let d = &batch.dispatcher;
    d.arrived() > t || (t <= handed_in && d.nothing_in_transit())
}

/// True when a flush of `batch` would publish nothing of it (a keyless batch that is one
/// incomplete run): the writer need not take it out at all.
pub(crate) fn would_hold(batch: &Batch, handed_in: Ts) -> bool {
    batch.keyless && batch.run_start == 0 && !trailing_run_complete(batch, handed_in)
}

/// Decides one batch of a flush that defers (see [`defers`]).
pub(crate) fn cut(mut batch: Batch, handed_in: Ts) -> Cut {
    if !batch.keyless || trailing_run_complete(&batch, handed_in) {
        return Cut::Whole(batch);
    }
    if batch.run_start == 0 {
        return Cut::Hold(batch);
    }
    let run = batch.split_trailing_run();
    Cut::Split { head: batch, run }
}
