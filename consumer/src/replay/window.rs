//! The checkpoint window: which rows of one data file a step applies.
//!
//! A row with a commit ts is applied when `done_ts < commit_ts <= checkpoint`: at or below
//! `done_ts` (the stream's recorded commit ts) it was applied before or is a sink replay; above
//! the checkpoint-ts the sink has not promised it yet. A row without a commit ts (csv without
//! `include-commit-ts`, canal-json without the TiDB extension) is always applied: its file is
//! indexed, so it is durable, but it cannot be held back to the checkpoint.
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

/// The rows of `rows` with `done_ts < commit_ts <= checkpoint` or no commit ts.
pub(super) fn checkpoint_window(rows: Vec<DecodedRow>, done_ts: Ts, checkpoint: Ts) -> Window {
    let above = holds_rows_above(&rows, checkpoint);
    let max_ts = rows
        .iter()
        .filter_map(|r| r.commit_ts)
        .filter(|t| *t <= checkpoint)
        .max()
        .unwrap_or(Ts::ZERO);
    let apply: Vec<_> = rows
        .into_iter()
        .filter(|r| match r.commit_ts {
            None => true,
            Some(t) => t > done_ts && t <= checkpoint,
        })
        .map(|r| r.change)
        .collect();
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
        let w = checkpoint_window(rows, Ts(20), Ts(30));
        assert_eq!(ids(&w), vec![3, 4]);
        assert!(!w.above);
        assert_eq!(w.max_ts, Ts(30));
    }

    #[test]
    fn rows_above_the_checkpoint_are_held_back_and_flag_the_file() {
        let rows = vec![row(1, Some(10)), row(2, Some(31)), row(3, Some(40))];
        let w = checkpoint_window(rows, Ts::ZERO, Ts(30));
        assert_eq!(ids(&w), vec![1]);
        assert!(w.above);
        assert_eq!(w.max_ts, Ts(10));
    }

    #[test]
    fn a_file_wholly_above_the_checkpoint_applies_nothing() {
        let rows = vec![row(1, Some(31)), row(2, Some(32))];
        let w = checkpoint_window(rows, Ts(5), Ts(30));
        assert!(w.apply.is_empty());
        assert!(w.above);
        assert_eq!(w.max_ts, Ts::ZERO);
    }

    #[test]
    fn max_ts_counts_rows_already_applied() {
        // A sink replay: every row is at or below done_ts; the stream's ts stays where it is.
        let rows = vec![row(1, Some(10)), row(2, Some(20))];
        let w = checkpoint_window(rows, Ts(20), Ts(30));
        assert!(w.apply.is_empty());
        assert!(!w.above);
        assert_eq!(w.max_ts, Ts(20));
    }

    #[test]
    fn rows_without_commit_ts_are_always_applied() {
        let rows = vec![
            row(1, None),
            row(2, Some(5)),
            row(3, None),
            row(4, Some(50)),
        ];
        let w = checkpoint_window(rows, Ts(10), Ts(30));
        assert_eq!(ids(&w), vec![1, 3]);
        assert!(w.above);
        assert_eq!(w.max_ts, Ts(5));
    }
}
