//! Read-ahead: the data files a round will apply next are read and decoded while the current
//! one is applied, so a replay from object storage is not one request latency per file.
//!
//! Before each data file step, [`Replayer::read_ahead`] walks the files the round would take
//! next (the current table's streams from their progress, then the tables after it, in round
//! order; for a table whose next step is a DDL, the files of the version it opens) and starts
//! reading the first ones not already started, while the read-ahead window has room (`prefetch`:
//! at most `--read-ahead` files, default [`super::DEFAULT_READ_AHEAD`], and about `--read-ahead-bytes`
//! of stored data, default [`super::DEFAULT_READ_AHEAD_BYTES`]). It looks at most 32 tables (or four
//! per file of depth) ahead, so a step costs O(depth), not O(tables); in a round that walks
//! a part (after a summary round, `quiet.rs`) these are the round's tables, the others being
//! quiet, so the 32 are tables with work rather than quiet ones between them. The step takes its file
//! from the window (see `file_step`); a read-ahead that failed is simply read again by the
//! step, which reports the error.
//!
//! Where it resumes: a table whose every file the read-ahead would read is started (and which
//! has no newer version whose files come later) is *done* for the round, and so is a table it
//! never reads (not owned, nothing pending, streams stalled). A table with a stream whose next
//! date directory comes after the one started is not done. The window (`prefetch`) keeps the
//! unbroken run of done tables that began at a call's current table (its first and last
//! table), and a call whose current table lies in that run starts after its last table instead
//! of walking those tables' steps again: with one small file per table, each file step had
//! recomputed the steps of the `--read-ahead` tables in the window before it found one to
//! start (a fifth of a cold replay's main-thread samples at 10,000 tables). A table that is not
//! done (no room left in it, a DDL next, a newer version to follow) ends the run, so from there
//! on each call walks as before.
//!
//! Invariants: read-ahead only reads, it never changes what is applied or in which order;
//! the window's memory is bounded by files and by bytes (see `prefetch`) besides the unit being
//! applied (its rows, see `file_unit`); once a step took its stream's next files into its unit,
//! the read-ahead starts again after them, so the next files are read while the unit is
//! applied; every read-ahead left over when a round ends is cancelled (`Replayer::round`).
//! Files of a table whose ENUM/SET elements must come from the downstream, and files of tables
//! this member does not own, are not read ahead. The resume point only skips tables that have
//! nothing left to start; the window drops it at the round's end and when a refused unit's
//! files are sent back to be read one by one (see `prefetch`).

use super::Replayer;
use crate::discovery::{Catalog, TableEntry, Upstream};
use crate::enum_elems;
use crate::ordering::{next_schema_version, pending_files, table_steps, Step};
use crate::progress::ProgressKey;
use cdc_common::layout::{DataDir, LayoutConfig};
use cdc_common::TableName;
use std::collections::HashSet;
use std::ops::Bound;

/// Tables looked at from the current one for files to read ahead, at least (four per file of
/// depth when that is more).
const READ_AHEAD_TABLES: usize = 32;

impl Replayer {
    /// Starts reading the next files of the round from `from`'s streams on (see the module
    /// doc). `applying`: a stream whose files up to the given index are in the unit being
    /// applied (taken from the read-ahead already): its reading starts after them.
    pub(super) fn read_ahead(
        &mut self,
        cat: &Catalog,
        up: &Upstream,
        cfg: &LayoutConfig,
        from: &TableName,
        stalled: &HashSet<ProgressKey>,
        applying: Option<(&ProgressKey, u64)>,
    ) {
        // Tables from `from` up to the resume point have nothing left to start, when `from`
        // lies in the run of done tables it ends (a later pass of the round over earlier
        // tables does not). The run is taken out while the tables are walked, and put back
        // (extended, replaced or as it was) after.
        let run = self.prefetch.take_resume();
        let resumed = run
            .as_ref()
            .is_some_and(|(first, last)| first <= from && from <= last);
        let start = match &run {
            Some((_, last)) if resumed => Bound::Excluded(last),
            _ => Bound::Included(from),
        };
        // A bounded look ahead: a round with files in few of many tables must not walk every
        // later table at each file step. A round that walks a part looks among its tables
        // only: every other one is quiet, nothing to start in it (`quiet.rs`).
        let walking = self.quiet.take_walking();
        let tables: Box<dyn Iterator<Item = (&TableName, &TableEntry)>> = match &walking {
            None => Box::new(cat.tables.range::<TableName, _>((start, Bound::Unbounded))),
            Some(w) => Box::new(
                w.range::<TableName, _>((start, Bound::Unbounded))
                    .filter_map(|n| cat.tables.get_key_value(n)),
            ),
        };
        let tables = tables.take(READ_AHEAD_TABLES.max(4 * self.prefetch.max_files()));
        let mut run_unbroken = true;
        let mut through = None;
        for (name, t) in tables {
            if !self.prefetch.has_room() {
                break;
            }
            let ahead = if self.owns_table(&name.schema, &name.table) {
                self.read_ahead_table(cat, up, cfg, (name, t), stalled, applying)
            } else {
                Ahead::Done
            };
            run_unbroken &= ahead == Ahead::Done;
            if run_unbroken {
                through = Some(name);
            }
            if ahead == Ahead::OutOfRoom {
                break;
            }
        }
        self.quiet.put_walking(walking);
        let run = match through {
            // the run goes on from where it began: the resumed run's first table, or `from`
            Some(name) => match run {
                Some((first, _)) if resumed => Some((first, name.clone())),
                _ => Some((from.clone(), name.clone())),
            },
            None => run,
        };
        self.prefetch.set_resume(run);
    }

    /// Starts reading `table`'s next files while the window has room; says whether the table
    /// is done for the round (see the module doc).
    fn read_ahead_table(
        &mut self,
        cat: &Catalog,
        up: &Upstream,
        cfg: &LayoutConfig,
        (name, t): (&TableName, &TableEntry),
        stalled: &HashSet<ProgressKey>,
        applying: Option<(&ProgressKey, u64)>,
    ) -> Ahead {
        let (mut steps, _) = table_steps(cat, &self.progress, name, stalled);
        // Files of a newer version than those started here come after a DDL step.
        let next_version = next_schema_version(t, self.progress.table_version(name));
        let mut done = next_version.is_none();
        if let [Step::TableDdl { .. }] = steps.as_slice() {
            // The table's files of the version its DDL opens come right after it.
            done = false;
            steps = next_version
                .map(|(v, _)| pending_files(t, &self.progress, name, v))
                .unwrap_or_default();
        }
        // Anything but a file, or a file whose stream goes on in a later directory, comes after.
        done &= steps
            .iter()
            .all(|s| matches!(s, Step::File { .. }) && !stream_continues(t, s));
        for step in steps {
            let Step::File {
                schema,
                dir,
                dispatcher,
                index,
                key,
                ..
            } = step
            else {
                continue;
            };
            if stalled.contains(&key) {
                continue;
            }
            let def = schema.file.to_table_def();
            if enum_elems::lacks_elems(&def) {
                continue;
            }
            let Ok(codec) = self.decoder.prepared(&def) else {
                continue; // the step reports it
            };
            let newest = t
                .versions
                .get(&dir.version)
                .and_then(|v| v.dirs.get(&dir))
                .and_then(|d| d.indexes.get(&dispatcher))
                .copied()
                .unwrap_or(index);
            let first = match applying {
                Some((k, last)) if *k == key => index.max(last + 1),
                _ => index,
            };
            for i in first..=newest {
                if !self.prefetch.has_room() {
                    return Ahead::OutOfRoom;
                }
                let Ok(path) = Catalog::data_file_path(cfg, &dir, &dispatcher, i) else {
                    break;
                };
                if self.prefetch.contains(&path) {
                    continue;
                }
                self.prefetch
                    .start(up, codec.clone(), def.columns.len(), path, (i, newest));
            }
        }
        if done {
            Ahead::Done
        } else {
            Ahead::NotDone
        }
    }

    /// Sets how many data files are read ahead (`--read-ahead`; 0 reads each file when its
    /// step comes), keeping the byte limit.
    pub fn set_read_ahead(&mut self, depth: usize) {
        let bytes = self.prefetch.max_bytes();
        self.prefetch.set_limits(depth, bytes);
    }

    /// Sets the stored bytes the read-ahead window holds, about (`--read-ahead-bytes`; see
    /// `prefetch`), keeping the file limit.
    pub fn set_read_ahead_bytes(&mut self, bytes: u64) {
        let files = self.prefetch.max_files();
        self.prefetch.set_limits(files, bytes);
    }
}

/// True when `step`'s stream has files in a later directory of its version than the step's
/// (the next date of the same partition): its step comes after this directory's files.
fn stream_continues(t: &TableEntry, step: &Step) -> bool {
    let Step::File {
        dir, dispatcher, ..
    } = step
    else {
        return false;
    };
    let Some(ve) = t.versions.get(&dir.version) else {
        return false;
    };
    ve.dirs
        .range::<DataDir, _>((Bound::Excluded(dir), Bound::Unbounded))
        .take_while(|(d, _)| d.partition_id == dir.partition_id)
        .any(|(_, de)| de.indexes.get(dispatcher).is_some_and(|newest| *newest > 0))
}

/// What [`Replayer::read_ahead`] left of one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ahead {
    /// Nothing of it is left to start this round (see the module doc).
    Done,
    /// The window filled up before every file of it was started.
    OutOfRoom,
    /// Its files are started, but a DDL or a newer version's files come after them.
    NotDone,
}
