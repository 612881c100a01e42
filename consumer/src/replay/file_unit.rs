//! A data file unit: consecutive files of one stream applied in one downstream transaction
//! with one progress row, so a stream of many small files costs one commit (one WAL flush)
//! and one bulk statement per unit instead of one per file.
//!
//! A unit starts with the stream's next file (the step [`crate::ordering`] gives, read and
//! windowed by `file_step` with all its error handling) and takes the stream's following files,
//! in index order, while every one of these holds:
//!
//! - the unit has fewer than `--unit-files` files (default [`DEFAULT_UNIT_FILES`]; 1 applies
//!   every file alone) and fewer than [`UNIT_MAX_ROWS`] row changes;
//! - the next file is indexed in the same directory by the same writer (same table version,
//!   date and partition: no DDL lies between, and the stream's order is the index order);
//! - it reads and decodes (an error leaves it to its own step, which reports it, waits for it
//!   or quarantines it exactly as before; a newest file held in flight by `in_place` hands
//!   that answer to the step, so the stream waits once, not twice, for the file to be quiet);
//! - every row of it is at or below the checkpoint (a file partly above is its own step: it is
//!   applied up to the checkpoint and its stream waits), and it is not a newest file of no
//!   rows its writer may still write (its step holds the stream before it, see `in_place`);
//!   such a file is handed back to the read-ahead.
//!
//! # Invariants
//!
//! - The unit's rows are each file's window rows ([`super::window`], the stream's commit ts
//!   carried from file to file), in stream order, planned as one sequence: each key's last
//!   state over the unit. The reduction's argument ([`crate::plan`]) holds for any consecutive
//!   changes of one stream applied in one transaction, a file being no special boundary.
//! - Its one progress row names the unit's **last** file with the stream's commit ts after it,
//!   and is written in the unit's transaction: a crash rolls the whole unit back and the
//!   stream resumes after the last committed unit (the progress record never names a file
//!   whose rows are not all committed, nor misses one whose rows are).
//! - A unit of several files that the downstream refuses (a statement error, not a lost
//!   connection) is applied again one file per unit for the rest of the round (see
//!   [`Replayer::retry_files_alone`]): the error then names the exact file, and the files
//!   before it are committed, as without units.
//! - Files and rows are counted once the unit committed (each file in
//!   `cdc_consumer_files_applied_total`, the round record's per-table files), the apply
//!   duration once per unit, and the unit in `cdc_consumer_data_units_total`.

use super::window::{checkpoint_window, holds_rows_above, AtDoneTs, Window};
use super::{DataFileStep, Replayer, RoundRecord};
use crate::discovery::{Catalog, Upstream};
use crate::error::Error;
use cdc_common::codec::TableCodec;
use cdc_common::layout::LayoutConfig;
use cdc_common::{RowChange, TableDef, Ts};
use std::sync::Arc;

/// Data files per unit by default (`--unit-files`).
pub const DEFAULT_UNIT_FILES: usize = 8;
/// The most `--unit-files` accepts.
pub const MAX_UNIT_FILES: usize = 64;
/// A unit takes no further file once it holds this many row changes (memory: the decoded
/// rows of the unit are held until it commits).
pub const UNIT_MAX_ROWS: usize = 100_000;

/// The files of one unit and their rows (see the module doc).
#[derive(Debug)]
pub(super) struct FileUnit {
    /// The first file's path.
    pub(super) first_path: String,
    /// The last file's path.
    pub(super) last_path: String,
    /// Every file's window rows, in stream order.
    pub(super) rows: Vec<RowChange>,
    /// Files in the unit.
    pub(super) files: u64,
    /// The last file's index.
    pub(super) last_index: u64,
    /// The stream's commit ts once the unit is applied.
    pub(super) ts_after: Ts,
    /// The (only) file holds rows above the checkpoint: applied up to it.
    pub(super) above: bool,
}

impl FileUnit {
    /// A unit of the stream's next file, `index` at `path`, whose window `w` was taken from
    /// the stream's commit ts `done_ts`.
    pub(super) fn first(index: u64, path: &str, w: Window, done_ts: Ts) -> FileUnit {
        FileUnit {
            first_path: path.to_string(),
            last_path: path.to_string(),
            rows: w.apply,
            files: 1,
            last_index: index,
            ts_after: done_ts.max(w.max_ts),
            above: w.above,
        }
    }

    /// Adds the next file of the stream (index `last_index + 1`), wholly at or below the
    /// checkpoint.
    fn push(&mut self, path: String, w: Window) {
        debug_assert!(
            !w.above,
            "a file partly above the checkpoint is its own unit"
        );
        self.rows.extend(w.apply);
        self.files += 1;
        self.last_index += 1;
        self.ts_after = self.ts_after.max(w.max_ts);
        self.last_path = path;
    }

    /// True when the unit may take one more file under a limit of `max_files`.
    pub(super) fn has_room(&self, max_files: usize) -> bool {
        !self.above && (self.files as usize) < max_files && self.rows.len() < UNIT_MAX_ROWS
    }

    /// The unit's name in errors and warnings: its file, or its first and last files.
    pub(super) fn label(&self) -> String {
        if self.files == 1 {
            self.first_path.clone()
        } else {
            format!(
                "{} .. {} ({} files)",
                self.first_path, self.last_path, self.files
            )
        }
    }
}

/// What [`Replayer::extend_unit`] reads the next files with.
pub(super) struct Source<'a> {
    pub(super) up: &'a Upstream,
    pub(super) cfg: &'a LayoutConfig,
    pub(super) codec: &'a Arc<dyn TableCodec>,
    pub(super) def: &'a TableDef,
    /// The newest index of the stream's directory.
    pub(super) newest: u64,
    /// Its writer may still write that newest file (`file_step`'s `stream_open`, on a local
    /// directory): read as no rows, it is not taken.
    pub(super) newest_open: bool,
    pub(super) checkpoint: Ts,
}

impl Replayer {
    /// The most files a unit of this stream may hold now: `--unit-files`, or 1 for a stream
    /// whose unit the downstream refused this round.
    pub(super) fn unit_limit(&self, f: &DataFileStep) -> usize {
        if self.files_alone.contains(&f.key) {
            1
        } else {
            self.unit_files
        }
    }

    /// Takes the stream's next files into `unit` while the module doc's conditions hold.
    pub(super) async fn extend_unit(
        &mut self,
        unit: &mut FileUnit,
        f: &DataFileStep,
        src: &Source<'_>,
    ) {
        let limit = self.unit_limit(f);
        while unit.has_room(limit) && unit.last_index < src.newest {
            let next = unit.last_index + 1;
            let Ok(path) = Catalog::data_file_path(src.cfg, &f.dir, &f.dispatcher, next) else {
                return;
            };
            let rows = match self
                .read_rows(src.up, src.codec, src.def, &path, (next, src.newest))
                .await
            {
                Ok(rows) => rows,
                Err(e @ Error::InFlight { .. }) => {
                    // Its stream waits: the step takes this answer, and does not wait for the
                    // file to be quiet a second time in the round.
                    self.prefetch.hand_back(path, Err(e));
                    return;
                }
                // Any other error is the file's own step's to report (it reads the file again).
                Err(_) => return,
            };
            if holds_rows_above(&rows, src.checkpoint)
                || (rows.is_empty() && src.newest_open && next == src.newest)
            {
                // Its own step applies it up to the checkpoint, or holds its stream before an
                // open newest file of no rows: hand the decoded rows back.
                self.prefetch.hand_back(path, Ok(rows));
                return;
            }
            let w = checkpoint_window(
                rows,
                unit.ts_after,
                src.checkpoint,
                AtDoneTs::for_table(src.def),
            );
            unit.push(path, w);
        }
    }

    /// After the downstream refused a unit of several files of `f`'s stream (a statement it
    /// refused, or a lock conflict that outlasted the retries; the round record's warnings say
    /// so): that stream's next units are one file each for the rest of the round, so the
    /// error names the file and the files before it commit.
    pub(super) fn retry_files_alone(
        &mut self,
        f: &DataFileStep,
        label: &str,
        e: &crate::error::Error,
        rec: &mut RoundRecord,
    ) {
        tracing::warn!(
            unit = label,
            error = %e,
            "the downstream refused a unit of several files; applying them one file per unit"
        );
        rec.warnings.push(format!(
            "the downstream refused the unit {label} ({e}); its files are applied one per unit"
        ));
        self.files_alone.insert(f.key.clone());
        // The refused unit's files left the read-ahead window and are to be read again.
        self.prefetch.taken_not_applied();
    }

    /// Sets how many consecutive data files of one stream are applied in one unit
    /// (`--unit-files`, 1..=[`MAX_UNIT_FILES`]).
    pub fn set_unit_files(&mut self, files: usize) {
        self.unit_files = files.clamp(1, MAX_UNIT_FILES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::Value;

    fn window(ids: &[i64], max_ts: u64, above: bool) -> Window {
        Window {
            apply: ids
                .iter()
                .map(|i| RowChange::Insert {
                    after: vec![Value::Int(*i)],
                })
                .collect(),
            above,
            max_ts: Ts(max_ts),
        }
    }

    #[test]
    fn a_unit_names_its_last_file_and_the_streams_ts_after_it() {
        let mut u = FileUnit::first(3, "t/CDC3.csv", window(&[1, 2], 20, false), Ts(5));
        assert_eq!(u.label(), "t/CDC3.csv");
        u.push("t/CDC4.csv".into(), window(&[3], 30, false));
        // a sink replay: every row at or below the ts already reached
        u.push("t/CDC5.csv".into(), window(&[], 0, false));
        assert_eq!(u.last_index, 5);
        assert_eq!(u.files, 3);
        assert_eq!(u.ts_after, Ts(30));
        assert_eq!(u.rows.len(), 3);
        assert_eq!(u.label(), "t/CDC3.csv .. t/CDC5.csv (3 files)");
    }

    #[test]
    fn a_unit_is_bounded_by_files_rows_and_the_checkpoint() {
        let mut u = FileUnit::first(1, "a", window(&[1], 1, false), Ts::ZERO);
        assert!(u.has_room(2));
        assert!(!u.has_room(1), "--unit-files 1 applies every file alone");
        u.push("b".into(), window(&[2], 2, false));
        assert!(!u.has_room(2));
        assert!(u.has_room(3));
        let big: Vec<i64> = (0..UNIT_MAX_ROWS as i64).collect();
        let u = FileUnit::first(1, "a", window(&big, 1, false), Ts::ZERO);
        assert!(!u.has_room(DEFAULT_UNIT_FILES));
        let u = FileUnit::first(1, "a", window(&[1], 1, true), Ts::ZERO);
        assert!(
            !u.has_room(DEFAULT_UNIT_FILES),
            "a file partly above stays alone"
        );
    }
}
