//! Quiet tables: the tables a busy round need not walk.
//!
//! A table is *quiet* when, at the end of a round, it has nothing to apply and nothing to wait
//! for: [`crate::ordering::table_steps`] gives no step and [`Wait::Idle`] (with no stream left
//! out as stalled), [`crate::ordering::table_pending`] counts no indexed file, and no stream of
//! it is held. What such a table can be given to do comes from two places only:
//!
//! - **discovery**: a new index entry, data directory, version or schema file of its own. A
//!   summary round reads again only the tables (and schemas) the change summary names
//!   ([`crate::discovery::Refreshed`]); every other table's catalog entry stays as it was, but
//!   for conclusions that only gate a next version (`complete_below`) or an empty newest file
//!   (closed dated directories), and a quiet table has neither;
//! - **the progress record**: a commit of one of its rows. Its own steps, and steps of other
//!   tables that write its rows (a rename, a database-level DDL).
//!
//! Nothing else it is judged by changes for it: the checkpoint only bounds work that exists
//! (a table waiting for the checkpoint, or with a stream stalled above it, is not quiet), a
//! database-level DDL gates only a next version, and holds last one round.
//!
//! So after a summary round a round walks only the tables that were not quiet, the ones the
//! round refreshed (with every table of a refreshed schema) and the ones a commit of the round
//! touched, and its figures take a quiet table as applied through the checkpoint with nothing
//! pending. Every other round (a process's first, a full one, a group member's, the round
//! after one that ended on an error other than a table's own, a downstream reopened with a
//! progress record that differs from the process's, or a new scope) walks every table and
//! decides afresh. A reopened downstream whose record is the one the process left (the
//! usual case after a round one table's error ended) keeps what was known, and its discovery
//! goes on from where it was (`Replayer::reopen`).
//! Debug builds check, after every round that walked a part, that each table it left out is
//! quiet (the whole test suite runs that check).

use crate::discovery::{Catalog, Refreshed};
use crate::ordering::{table_pending, table_steps, Wait};
use crate::progress::{Progress, ProgressKey};
use cdc_common::TableName;
use std::collections::{BTreeSet, HashSet};

/// Which tables are known quiet between rounds.
#[derive(Default)]
pub(super) struct Quiet {
    /// Tables not known to be quiet; `None`: nothing is known, a round walks every table.
    busy: Option<BTreeSet<TableName>>,
    /// Tables whose progress rows the current round committed.
    touched: BTreeSet<TableName>,
    /// Schemas whose database-level progress row the current round committed.
    touched_schemas: BTreeSet<String>,
    /// The tables the last round that concluded walked, when it did not walk every table:
    /// the only ones whose figures can differ from the round before (`health_tables`).
    walked: Option<BTreeSet<TableName>>,
    /// The tables the round running walks, as far as its last pass (a copy of its [`Walk`],
    /// extended with it): the read-ahead looks for files to start among these only, every
    /// other table being quiet (`read_ahead.rs`). A table a commit of the current pass
    /// touched joins at the pass's end, as it does the walk.
    walking: Walk,
}

/// The tables a round walks: `None` for every table of the catalog.
pub(super) type Walk = Option<BTreeSet<TableName>>;

impl Quiet {
    /// Forgets what is known: the next round walks every table.
    pub fn forget(&mut self) {
        self.busy = None;
        self.walked = None;
    }

    /// Takes what is known, leaving nothing known: a round takes it before its discovery
    /// changes the catalog, and puts it back only when the round turned out idle.
    pub fn take(&mut self) -> Option<BTreeSet<TableName>> {
        self.walked = None;
        self.walking = None;
        self.busy.take()
    }

    /// Puts back what [`Quiet::take`] took (an idle round changed nothing). Its figures are
    /// those of the busy tables, as after the round that concluded them (`walked` always
    /// holds every table not quiet: the figures take the least applied ts from it).
    pub fn restore(&mut self, busy: Option<BTreeSet<TableName>>) {
        self.walked = busy.clone();
        self.busy = busy;
    }

    /// Whether `name` is known quiet.
    pub fn is_quiet(&self, name: &TableName) -> bool {
        self.busy.as_ref().is_some_and(|b| !b.contains(name))
    }

    /// The tables not known quiet (`None`: nothing is known).
    pub fn busy(&self) -> Option<&BTreeSet<TableName>> {
        self.busy.as_ref()
    }

    /// The tables the last round walked, when it concluded and did not walk every table
    /// (every table not quiet is among them).
    pub fn walked(&self) -> Option<&BTreeSet<TableName>> {
        self.walked.as_ref()
    }

    /// The tables the round about to run walks, from what was known before its discovery
    /// (`busy`, from [`Quiet::take`]): those, and what discovery refreshed (every table of a
    /// refreshed schema too), when discovery says what it refreshed; else every table.
    pub fn walk(
        &mut self,
        busy: Option<BTreeSet<TableName>>,
        cat: &Catalog,
        refreshed: Option<&Refreshed>,
    ) -> Walk {
        self.touched.clear();
        self.touched_schemas.clear();
        self.walking = None;
        let (Some(mut walk), Some(refreshed)) = (busy, refreshed) else {
            return None;
        };
        walk.extend(refreshed.tables.iter().cloned());
        add_schemas_tables(cat, &refreshed.schemas, &mut walk);
        self.walking = Some(walk.clone());
        Some(walk)
    }

    /// Takes the tables the round running walks (`None`: every table), for the read-ahead to
    /// give back with [`Quiet::put_walking`] (it walks them while it changes the replayer).
    pub fn take_walking(&mut self) -> Walk {
        self.walking.take()
    }

    /// Gives back what [`Quiet::take_walking`] took.
    pub fn put_walking(&mut self, walking: Walk) {
        self.walking = walking;
    }

    /// Notes a committed progress row (one per unit: the allocation is the unit's least).
    pub fn note_commit(&mut self, k: &ProgressKey) {
        if k.table.is_empty() {
            self.touched_schemas.insert(k.schema.clone());
        } else {
            self.touched.insert(TableName::new(&k.schema, &k.table));
        }
    }

    /// Adds to `walk` (and to the read-ahead's copy) the tables the round's commits touched
    /// so far that it lacks.
    pub fn extend_walk(&mut self, cat: &Catalog, walk: &mut Walk) {
        for w in [walk.as_mut(), self.walking.as_mut()].into_iter().flatten() {
            w.extend(self.touched.iter().cloned());
            add_schemas_tables(cat, &self.touched_schemas, w);
        }
    }

    /// After a round whose steps all ran (a table-local error included: the stuck table
    /// keeps its step): decides which of the tables it walked are quiet (every table when it
    /// walked all), the others keeping what was known.
    pub fn conclude(&mut self, cat: &Catalog, progress: &Progress, mut walk: Walk) {
        self.extend_walk(cat, &mut walk);
        let none = HashSet::new();
        let busy_of = |names: &mut dyn Iterator<Item = &TableName>| -> BTreeSet<TableName> {
            names
                .filter(|n| !is_quiet_now(cat, progress, n, &none))
                .cloned()
                .collect()
        };
        self.busy = Some(match &walk {
            None => busy_of(&mut cat.tables.keys()),
            Some(w) => busy_of(&mut w.iter().filter(|n| cat.tables.contains_key(*n))),
        });
        if cfg!(debug_assertions) {
            if let Some(w) = &walk {
                for name in cat.tables.keys().filter(|n| !w.contains(*n)) {
                    assert!(
                        is_quiet_now(cat, progress, name, &none),
                        "table `{name}` was left out of a round as quiet but has something to \
                         do or wait for"
                    );
                }
            }
        }
        self.walked = walk;
    }
}

/// Adds every table of `schemas` to `walk` (a database-level change reaches each of them).
fn add_schemas_tables(cat: &Catalog, schemas: &BTreeSet<String>, walk: &mut BTreeSet<TableName>) {
    for schema in schemas {
        walk.extend(cat.tables_of(schema).map(|(n, _)| n.clone()));
    }
}

/// Whether `name` is quiet under `cat` and `progress` (see the module doc).
fn is_quiet_now(
    cat: &Catalog,
    progress: &Progress,
    name: &TableName,
    none: &HashSet<ProgressKey>,
) -> bool {
    let Some(t) = cat.tables.get(name) else {
        return true;
    };
    if progress.holds_in(name) {
        return false;
    }
    let (steps, wait) = table_steps(cat, progress, name, none);
    steps.is_empty() && wait == Wait::Idle && table_pending(name, t, progress) == 0
}
