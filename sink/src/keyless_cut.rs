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
//! - `drain` (a DDL at `V`: every DML below `V` has been handed in) publishes everything.
//! - Spool pressure that the kept runs themselves would hold: after a flush kept runs back, if
//!   the spool holds wakes and the runs kept by every writer weigh more than its low watermark
//!   (with everything else published the spool would still not resume the wakes), or an
//!   enqueue waits for disk room, the kept runs are published too
//!   (`cdc_sink_file_cut_forced_total`). Otherwise a transaction larger than the low watermark
//!   could stop its dispatcher for good (its wake held, the rest never handed in). Kept runs
//!   below that weight never block the wakes for good: the writers publish everything else,
//!   the spool falls to its low watermark and the dispatchers hand in more. The weight of a
//!   kept batch is its bytes plus a spilled record's header per item ([`kept_weight`]: the
//!   watermarks count spilled records with their headers), counted in the writers' shared
//!   `WriterContext::kept_bytes` when a flush puts it back and taken off when a flush takes it
//!   again (events appended to it in between count from its next flush, at most one flush
//!   interval later: its deadline).
//!
//! # Close and remove: an incomplete run is dropped, not published
//!
//! A closing sink or a removed dispatcher is never handed the rest of an open transaction.
//! So on `close` and on a dispatcher's `remove` ([`drops`]), a keyless batch's trailing run
//! that is not known complete (same test as above) is released from the spool unpublished:
//! its entries are dropped, so their flush callbacks never run, the dispatcher's pending set
//! keeps its ts and the checkpoint stays below it. The upstream resends the whole transaction
//! from the checkpoint (after the restart, or to the dispatcher's next owner), and a consumer
//! sees it once, whole. Everything before the run is published; a run known complete is
//! published. Counted by `cdc_sink_incomplete_runs_dropped_total`, logged as a warning.
//!
//! A kept run stays in the spool and counts against its quotas like any open batch; it goes
//! back into the batch table with a new deadline one flush interval later. A transaction larger
//! than `file-size` makes a file larger than `file-size`.
//!
//! Cost: O(1) per event (`Batch::push` keeps the run start); a flush moves the kept items once.

use crate::batch::Batch;
use crate::flush::FlushReason;
use cdc_common::Ts;

/// What a flush does with one taken batch: the part to publish now and the part that goes
/// back open for the next file (a whole batch is one or the other; a split has both).
pub(crate) struct Cut {
    pub publish: Option<Batch>,
    pub keep: Option<Batch>,
}

/// Bytes of a spilled record's header (`cdc_spool`'s record framing): the watermarks count
/// spilled records with it.
const SPILLED_RECORD_HEADER: u64 = 8;

/// What a kept-back batch weighs against the spool's watermarks, at most: its bytes, plus a
/// record header per item in case they are spilled.
pub(crate) fn kept_weight(batch: &Batch) -> u64 {
    batch.bytes + SPILLED_RECORD_HEADER * batch.items.len() as u64
}

/// True when the runs kept back must be published anyway (see the module doc): the spool
/// holds wakes and the kept runs of every writer (`kept_bytes`) weigh more than its low
/// watermark, or an enqueue waits for disk room.
pub(crate) fn kept_runs_block_the_spool(
    holding: bool,
    disk_waiters: u64,
    kept_bytes: u64,
    low_watermark: u64,
) -> bool {
    (holding && kept_bytes > low_watermark) || disk_waiters > 0
}

/// True when a flush of `reason` keeps incomplete trailing runs of keyless batches back.
pub(crate) fn defers(reason: FlushReason) -> bool {
    matches!(
        reason,
        FlushReason::FileSize | FlushReason::Interval | FlushReason::SpoolPressure
    )
}

/// True when a flush of `reason` drops incomplete trailing runs of keyless batches instead of
/// publishing them: the sink closes or the dispatcher is removed, the rest of the
/// transaction will never reach this batch.
pub(crate) fn drops(reason: FlushReason) -> bool {
    matches!(reason, FlushReason::Close | FlushReason::Remove)
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

/// Decides one batch of a flush that defers (see [`defers`]) or drops (see [`drops`]): `keep`
/// is the incomplete trailing run, to keep open or to drop.
pub(crate) fn cut(mut batch: Batch, handed_in: Ts) -> Cut {
    if !batch.keyless || trailing_run_complete(&batch, handed_in) {
        return Cut {
            publish: Some(batch),
            keep: None,
        };
    }
    if batch.run_start == 0 {
        return Cut {
            publish: None,
            keep: Some(batch),
        };
    }
    let run = batch.split_trailing_run();
    Cut {
        publish: Some(batch),
        keep: Some(run),
    }
}
