//! The settled mark: what lets a restart with nothing new cost one GET instead of a rebuilt
//! catalog (one listing of the bucket plus a schema file and an index file per table).
//!
//! # What it says
//!
//! A round is *settled* at checkpoint-ts `C` when the replayer applied everything the catalog
//! allowed after a discovery round that read `C` before its listings drew its conclusions (see
//! "Idle rounds" in [`crate::discovery`]): then every row at or below `C` that storage holds for the tables this
//! consumer replays is applied. The mark stores `C` in the downstream's progress record, with
//! a digest of the record's rows of those tables and of the consumer's *scope* (storage
//! location, table filter, layout and protocol options). A consumer starting with the same
//! scope and the same rows that reads `C` again from `metadata` knows nothing new can be
//! applied: its first round is idle without building the catalog. The first round that reads
//! a moved checkpoint builds the catalog as any first round does, or, when the mark had no
//! file pending and the sink's change summary chains from `C`, reads only the tables changed
//! since (a summary round, see `discovery/summary.rs`).
//!
//! # Why it is not written in a unit's transaction
//!
//! Settledness is known only after the round's last unit committed. Instead of riding in a
//! transaction, the mark is checked against what it was written with: the digest of the
//! scope's rows ([`crate::progress::Progress::digest_where`]) must match. Any unit committed
//! after it (by this consumer, an older binary, or a group member), any row an operator
//! deleted or edited, and any change of scope makes the mark not match, and the start does a
//! full first round; a crash before the mark is written costs the same. A mark that matches was written after the last
//! change to the record, when that record was settled at `C`.
//!
//! # Invariants
//!
//! - Derived and rebuildable (invariant 7): deleting the row costs one full first round.
//! - The digest is a walk of the progress record: computed at start and when a round settles
//!   at a new checkpoint or with a record that changed, never in an idle round.
//! - Written only outside a consumer group, with rows that carry their commit ts, no listing
//!   lag, a downstream that keeps it (not stdout), and a catalog that has tables (so the
//!   applied ts it lets `/health` report is one a full round would report too).
//! - Believed only under the same conditions, when the digest matches and `metadata` reads
//!   exactly its `C`.
//!
//! # Rows (in `cdc_consumer_progress`, see [`crate::progress`])
//!
//! One row per scope, so consumers of several storages sharing one downstream database (one
//! progress table) each keep theirs; the digest covers only the rows of the tables (and
//! schemas) the scope's filter replays, so another consumer's commits do not spoil it.
//!
//! ```text
//! schema_name ''  table_name ''  partition_id <scope id: 16 hex digits>  dispatcher '#settled'
//! table_version  digest of the scope's progress rows and the scope (63 bits)
//! date_dir       'm1' (the mark's format; another value is not read)
//! file_index     files pending at the settled round (what `/health` shows until a full round;
//!                a count of files, so a query summing `file_index` stays about files)
//! commit_ts      C
//! ```
//!
//! A scope no consumer runs any more leaves its row behind (one small row per scope ever run;
//! deleting it is harmless).

use crate::config::TableFilter;
use crate::progress::{fnv1a, Position, Progress, ProgressKey, FNV_BASIS};
use cdc_common::Ts;

/// The `date_dir` value of a mark in this format.
const FORMAT: &str = "m1";

/// What a mark must have been written under to hold: a consumer's storage location, table
/// filter, layout and protocol options (their text, hashed), and the filter itself, which says
/// which progress rows are the scope's.
#[derive(Clone, Debug)]
pub struct Scope {
    id: String,
    hash: u64,
    filter: TableFilter,
}

impl Scope {
    /// The scope described by `text` (everything that must not change; see
    /// [`crate::replayer`]), replaying the tables `filter` accepts.
    pub fn new(text: &str, filter: TableFilter) -> Scope {
        let hash = fnv1a(FNV_BASIS, text.as_bytes());
        Scope {
            id: format!("{hash:016x}"),
            hash,
            filter,
        }
    }

    /// The scope's id: the `partition_id` of its mark's row.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// True for a progress row of a table (or a schema's DDL row) this scope replays.
    pub(crate) fn covers(&self, k: &ProgressKey) -> bool {
        if k.table.is_empty() {
            self.filter.matches_schema(&k.schema)
        } else {
            self.filter.matches(&k.schema, &k.table)
        }
    }

    /// The digest a mark stores for `progress` (63 bits: the column is signed).
    fn digest(&self, progress: &Progress) -> u64 {
        // A scope of every table covers every row: the record keeps that digest as it changes
        // (a walk of the record was a tenth of a busy round's CPU at 20,000 tables).
        let rows = if self.filter.is_all() {
            progress.digest()
        } else {
            progress.digest_where(|k| self.covers(k))
        };
        let h = fnv1a(FNV_BASIS, &rows.to_le_bytes());
        fnv1a(h, &self.hash.to_le_bytes()) & (i64::MAX as u64)
    }
}

/// The settled mark of one scope (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledMark {
    /// The checkpoint-ts the record was settled at.
    pub checkpoint: Ts,
    /// Digest of the scope's progress rows and the scope it was settled with.
    pub digest: u64,
    /// Indexed data files not applied at the settled round (those above `checkpoint`).
    pub files_pending: u64,
}

impl SettledMark {
    /// The mark of `progress` settled at `checkpoint` under `scope` (a walk of the record).
    pub fn new(checkpoint: Ts, progress: &Progress, scope: &Scope, files_pending: u64) -> Self {
        SettledMark {
            checkpoint,
            digest: scope.digest(progress),
            files_pending,
        }
    }

    /// True when the mark was written under `scope` with exactly these progress rows of it.
    pub fn holds_for(&self, progress: &Progress, scope: &Scope) -> bool {
        self.digest == scope.digest(progress)
    }

    /// `scope`'s mark among rows read back from the progress record (`None`: absent, or a
    /// format this consumer does not read).
    pub fn find(rows: &[(ProgressKey, Position)], scope: &Scope) -> Option<SettledMark> {
        rows.iter()
            .find(|(k, p)| k.is_settled() && k.partition == scope.id && p.date == FORMAT)
            .map(|(_, p)| SettledMark {
                checkpoint: p.commit_ts,
                digest: p.version.0,
                files_pending: p.file_index,
            })
    }

    /// The mark as `scope`'s progress row.
    pub fn row(&self, scope: &Scope) -> (ProgressKey, Position) {
        (
            ProgressKey::settled(&scope.id),
            Position {
                version: Ts(self.digest),
                date: FORMAT.into(),
                file_index: self.files_pending,
                commit_ts: self.checkpoint,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(commit: u64) -> Position {
        Position {
            version: Ts(5),
            date: String::new(),
            file_index: 3,
            commit_ts: Ts(commit),
        }
    }

    fn key(schema: &str, table: &str) -> ProgressKey {
        ProgressKey {
            schema: schema.into(),
            table: table.into(),
            partition: String::new(),
            dispatcher: String::new(),
        }
    }

    fn scope(text: &str, filter: &str) -> Scope {
        let f = if filter.is_empty() {
            TableFilter::all()
        } else {
            TableFilter::parse(filter).unwrap()
        };
        Scope::new(text, f)
    }

    #[test]
    fn a_mark_holds_only_for_the_rows_and_scope_it_was_written_with() {
        let rows = vec![(key("s", "a"), pos(10)), (key("s", "b"), pos(11))];
        let p = Progress::from_rows(rows.clone());
        let sc = scope("file:///x", "");
        let mark = SettledMark::new(Ts(20), &p, &sc, 0);
        // the same record read back in another order, with the mark's own row among it
        let mut back = vec![mark.row(&sc)];
        back.extend(rows.iter().rev().cloned());
        let found = SettledMark::find(&back, &sc).expect("the mark's row is found");
        assert_eq!(found, mark);
        assert!(found.holds_for(&Progress::from_rows(back.clone()), &sc));
        // a unit committed after it, a row deleted, another scope: it no longer holds
        let mut moved = Progress::from_rows(back.clone());
        moved.set(key("s", "a"), pos(12));
        assert!(!found.holds_for(&moved, &sc));
        assert!(!found.holds_for(&Progress::from_rows(rows[..1].to_vec()), &sc));
        let other = scope("file:///y", "");
        assert!(!found.holds_for(&p, &other));
        assert_eq!(SettledMark::find(&back, &other), None);
        // setting a row back to what it was restores the digest (it is the record's, not
        // its history's)
        moved.set(key("s", "a"), pos(10));
        assert!(found.holds_for(&moved, &sc));
    }

    #[test]
    fn rows_outside_the_filter_do_not_spoil_a_mark() {
        let sc = scope("file:///x", "s.*");
        let mut p = Progress::from_rows([(key("s", "a"), pos(10))]);
        let mark = SettledMark::new(Ts(20), &p, &sc, 0);
        // another consumer's table in the same progress table moves
        p.set(key("other", "t"), pos(30));
        p.set(key("other", ""), pos(30));
        assert!(mark.holds_for(&p, &sc));
        // this scope's schema DDL row and tables count
        p.set(key("s", ""), pos(31));
        assert!(!mark.holds_for(&p, &sc));
    }

    #[test]
    fn a_scope_of_every_table_takes_the_records_kept_digest_which_a_walk_agrees_with() {
        let mut p = Progress::from_rows([(key("s", "a"), pos(10)), (key("t", ""), pos(1))]);
        p.set(key("s", "b"), pos(11));
        p.set(key("s", "a"), pos(12));
        p.set(key("s", "a"), pos(13));
        let all = scope("file:///x", "");
        let mark = SettledMark::new(Ts(20), &p, &all, 0);
        // the same mark by a walk of every row: a filter that accepts every row by its patterns
        let walked = scope("file:///x", "*.*");
        assert_eq!(p.digest(), p.digest_where(|_| true));
        assert_eq!(mark.digest, SettledMark::new(Ts(20), &p, &walked, 0).digest);
    }

    #[test]
    fn another_format_is_not_read() {
        let sc = scope("x", "");
        let (k, mut p) = SettledMark::new(Ts(7), &Progress::default(), &sc, 0).row(&sc);
        p.date = "m2".into();
        assert_eq!(SettledMark::find(&[(k, p)], &sc), None);
        // the digest fits the signed column, the scope id the partition column
        let m = SettledMark::new(Ts(7), &Progress::default(), &sc, 0);
        assert!(m.row(&sc).1.to_columns().is_ok());
        assert_eq!(sc.id().len(), 16);
    }
}
