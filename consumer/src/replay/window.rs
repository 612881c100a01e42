//! The checkpoint window: which rows of one data file a step applies.
//!
//! A row with a commit ts is applied when `done_ts < commit_ts <= checkpoint`: below
//! `done_ts` (the stream's recorded commit ts) it was applied before or is a sink replay; above
//! the checkpoint-ts the sink has not promised it yet. A row without a commit ts (csv without
//! `include-commit-ts`, canal-json without the TiDB extension) is always applied: its file is
//! indexed, so it is durable, but it cannot be held back to the checkpoint.
//!
//! # Rows at exactly `done_ts`
//!
//! One commit ts can span two files of a stream: a transaction handed to the sink as several
//! events (the capture's snapshot of a table is one ts in batches of rows; TiCDC splits large
//! transactions) is cut wherever a file reaches `file-size`. The rows at `done_ts` in the next
//! file are then the transaction's rest, not a replay, and skipping them loses them. They are
//! also what a copy of the stream's last applied transaction looks like, so:
//!
//! - a table with a primary key ([`AtDoneTs::Apply`]) applies them: each is an upsert or a
//!   delete by key, so applying a copy again leaves every key as it was (the keys the last
//!   transaction touched keep its final state, since nothing later was applied), and the rest
//!   of a split transaction is applied;
//! - a table without one ([`AtDoneTs::Skip`]) skips them: applying a copy again would add
//!   duplicate rows, so a transaction split across files would lose its rest there. This
//!   project's sink never ends such a table's file inside a commit ts (docs/format.md, writer
//!   rule 7, with its exceptions: spool pressure, a checkpoint ts given too early; a close or
//!   remove in the middle of a transaction drops the part instead of publishing it), so there
//!   the rows are always a copy; storage written by TiCDC has no such rule.
//!
//! A file applied only up to the checkpoint keeps its stream at the previous file with
//! `done_ts` = that checkpoint (every row of the stream at or below it is applied), so when it
//! is read again only a row at exactly the checkpoint comes again (applied again for a keyed
//! table: harmless). A file whose applicable rows are all at `done_ts` while it still has rows
//! above the checkpoint applies nothing (the stream waits), so a stalled stream does not commit
//! the same rows every round.
//!
//! This is a pure function of the decoded rows and the two bounds, so it is tested here
//! without storage or a downstream.

use cdc_common::codec::DecodedRow;
use cdc_common::{RowChange, Ts};

/// The rows of a data file inside the checkpoint window, and what the file holds beyond it.
#[derive(Debug)]
pub(super) struct Window {
    /// The rows to apply, in file order.
    pub(super) apply: Vec<RowChange>,
    /// Some row is above the checkpoint: the file is applied only up to it and its stream
    /// waits for the next checkpoint.
    pub(super) above: bool,
    /// The largest commit ts at or below the checkpoint (zero when there is none), applied or
    /// not: the stream's commit ts after this file.
    pub(super) max_ts: Ts,
}

/// True when some row of `rows` is above the checkpoint (the file is not wholly applicable).
pub(super) fn holds_rows_above(rows: &[DecodedRow], checkpoint: Ts) -> bool {
    rows.iter()
        .any(|r| r.commit_ts.is_some_and(|t| t > checkpoint))
}

/// What a window does with rows at exactly the stream's recorded commit ts (see the module
/// doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AtDoneTs {
    /// Apply them again: a table with a primary key, where that is idempotent.
    Apply,
    /// Skip them: a table without a primary key, where a copy would duplicate rows.
    Skip,
}

impl AtDoneTs {
    /// The rule for a table: [`AtDoneTs::Apply`] when it has a primary key, by the same test
    /// the plan uses to choose upserts and deletes by key (`crate::plan`), which is what makes
    /// applying rows again idempotent.
    pub(crate) fn for_table(def: &cdc_common::TableDef) -> AtDoneTs {
        if !def.pk_indexes().is_empty() {
            AtDoneTs::Apply
        } else {
            AtDoneTs::Skip
        }
    }
}

/// The rows of `rows` with `done_ts < commit_ts <= checkpoint` (`done_ts <= commit_ts` under
/// [`AtDoneTs::Apply`]) or no commit ts.
pub(super) fn checkpoint_window(
    rows: Vec<DecodedRow>,
    done_ts: Ts,
    checkpoint: Ts,
    at_done: AtDoneTs,
) -> Window {
    let above = holds_rows_above(&rows, checkpoint);
    let max_ts = rows
        .iter()
        .filter_map(|r| r.commit_ts)
        .filter(|t| *t <= checkpoint)
        .max()
        .unwrap_or(Ts::ZERO);
    let from_done = at_done == AtDoneTs::Apply && done_ts > Ts::ZERO;
    let inside = |t: Ts| (t > done_ts || (from_done && t == done_ts)) && t <= checkpoint;
    // A stalled file with nothing past `done_ts` applies nothing (see the module doc).
    let nothing_new = above
        && !rows
            .iter()
            .any(|r| r.commit_ts.is_none_or(|t| t > done_ts && t <= checkpoint));
    let apply: Vec<_> = if nothing_new {
        Vec::new()
    } else {
        rows.into_iter()
            .filter(|r| r.commit_ts.is_none_or(inside))
            .map(|r| r.change)
            .collect()
    };
    Window {
        apply,
        above,
        max_ts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::Value;

    /// A row inserting `id`, committed at `ts` (`None`: the format carries no commit ts).
    fn row(id: i64, ts: Option<u64>) -> DecodedRow {
        DecodedRow {
            commit_ts: ts.map(Ts),
            change: RowChange::Insert {
                after: vec![Value::Int(id)],
            },
        }
    }

    fn ids(w: &Window) -> Vec<i64> {
        w.apply
            .iter()
            .map(|c| match c {
                RowChange::Insert { after } => match after[0] {
                    Value::Int(i) => i,
                    ref v => panic!("unexpected value {v:?}"),
                },
                c => panic!("unexpected change {c:?}"),
            })
            .collect()
    }

    #[test]
    fn rows_between_done_ts_and_checkpoint_are_applied_bounds_included_above_only() {
        let rows = vec![
            row(1, Some(10)),
            row(2, Some(20)),
            row(3, Some(21)),
            row(4, Some(30)),
        ];
        let w = checkpoint_window(rows, Ts(20), Ts(30), AtDoneTs::Skip);
        assert_eq!(ids(&w), vec![3, 4]);
        assert!(!w.above);
        assert_eq!(w.max_ts, Ts(30));
    }

    #[test]
    fn rows_above_the_checkpoint_are_held_back_and_flag_the_file() {
        let rows = vec![row(1, Some(10)), row(2, Some(31)), row(3, Some(40))];
        let w = checkpoint_window(rows, Ts::ZERO, Ts(30), AtDoneTs::Skip);
        assert_eq!(ids(&w), vec![1]);
        assert!(w.above);
        assert_eq!(w.max_ts, Ts(10));
    }

    #[test]
    fn a_file_wholly_above_the_checkpoint_applies_nothing() {
        let rows = vec![row(1, Some(31)), row(2, Some(32))];
        let w = checkpoint_window(rows, Ts(5), Ts(30), AtDoneTs::Skip);
        assert!(w.apply.is_empty());
        assert!(w.above);
        assert_eq!(w.max_ts, Ts::ZERO);
    }

    #[test]
    fn max_ts_counts_rows_already_applied() {
        // A sink replay: every row is at or below done_ts; the stream's ts stays where it is.
        let rows = vec![row(1, Some(10)), row(2, Some(20))];
        let w = checkpoint_window(rows, Ts(20), Ts(30), AtDoneTs::Skip);
        assert!(w.apply.is_empty());
        assert!(!w.above);
        assert_eq!(w.max_ts, Ts(20));
    }

    #[test]
    fn rows_at_done_ts_are_applied_again_for_keyed_tables_only() {
        // The rest of a transaction at ts 20 split across files, then a later row.
        let rows = vec![row(1, Some(10)), row(2, Some(20)), row(3, Some(25))];
        let w = checkpoint_window(rows.clone(), Ts(20), Ts(30), AtDoneTs::Apply);
        assert_eq!(ids(&w), vec![2, 3]);
        assert_eq!(w.max_ts, Ts(25));
        let w = checkpoint_window(rows, Ts(20), Ts(30), AtDoneTs::Skip);
        assert_eq!(ids(&w), vec![3]);
        // A next file wholly at done_ts (a snapshot's batches at one ts) is applied whole.
        let rows = vec![row(4, Some(20)), row(5, Some(20))];
        let w = checkpoint_window(rows, Ts(20), Ts(30), AtDoneTs::Apply);
        assert_eq!(ids(&w), vec![4, 5]);
        assert!(!w.above);
    }

    #[test]
    fn a_stalled_file_with_nothing_past_done_ts_applies_nothing() {
        // Re-read after it was applied up to ts 20: nothing new until the checkpoint moves.
        let rows = vec![row(1, Some(20)), row(2, Some(40))];
        let w = checkpoint_window(rows.clone(), Ts(20), Ts(30), AtDoneTs::Apply);
        assert!(w.apply.is_empty());
        assert!(w.above);
        // Once it moves, the rows at done_ts come again with the new ones (idempotent).
        let w = checkpoint_window(rows, Ts(20), Ts(40), AtDoneTs::Apply);
        assert_eq!(ids(&w), vec![1, 2]);
    }

    #[test]
    fn rows_without_commit_ts_are_always_applied() {
        let rows = vec![
            row(1, None),
            row(2, Some(5)),
            row(3, None),
            row(4, Some(50)),
        ];
        let w = checkpoint_window(rows, Ts(10), Ts(30), AtDoneTs::Skip);
        assert_eq!(ids(&w), vec![1, 3]);
        assert!(w.above);
        assert_eq!(w.max_ts, Ts(5));
    }
}
