//! `/health`'s per-table map (`tables`): built whole, or patched after a round that walked
//! only some tables (see `quiet`).
//!
//! The whole map merges the catalog's tables (each with its applied ts) with the progress
//! record's rows grouped by table, keyed by `schema.table`. After a round that walked a part,
//! an entry can differ from the one `/health` shows only for a table the round walked: every
//! other table is quiet (nothing to do, no commit of its rows, no new file) and its applied
//! ts is the catalog's complete-through ts, the same for all of them. So such a round sends
//! the walked tables' entries (or their removal) and that one ts, which each entry marked
//! quiet takes: `O(walked)` entries built instead of every table's, and one pass that writes
//! a number per entry instead of a map of fresh strings.
//!
//! A patch is sent only when the map `/health` holds was itself built or patched under the
//! same conditions (this replayer's, not in a group, not standing on a settled mark without a
//! catalog, quiet tables known), and no walked name holds a `.` (two tables can read alike as
//! `schema.table`, `a.b` + `c` and `a` + `b.c`, and share one entry). With a partial catalog
//! (a process started from its settled mark), a table only the progress record names is
//! applied through the checkpoint, as a quiet one: its entry is marked quiet too. Debug
//! builds build the whole map beside every patch and check the patched one equals it.

use super::Replayer;
use crate::freshness::{StreamProgress, TableProgress};
use crate::progress::{Position, ProgressKey, DDL_STREAM};
use cdc_common::{TableName, Ts};
use std::collections::{BTreeMap, BTreeSet};

/// `/health`'s per-table map as a round computed it.
#[derive(Clone, Debug)]
pub(super) enum TablesFigure {
    /// The whole map.
    Whole(BTreeMap<String, TableProgress>),
    /// The walked tables' entries (`None`: the table has none any more) and the applied ts
    /// of every entry marked quiet.
    Patch {
        entries: Vec<(String, Option<TableProgress>)>,
        quiet_applied: u64,
    },
}

impl TablesFigure {
    /// Sets `map` (what `/health` shows) to this figure.
    pub fn apply(self, map: &mut BTreeMap<String, TableProgress>) {
        match self {
            TablesFigure::Whole(m) => *map = m,
            TablesFigure::Patch {
                entries,
                quiet_applied,
            } => {
                for (name, entry) in entries {
                    match entry {
                        Some(e) => {
                            map.insert(name, e);
                        }
                        None => {
                            map.remove(&name);
                        }
                    }
                }
                for t in map.values_mut().filter(|t| t.quiet) {
                    t.applied_ts = quiet_applied;
                }
            }
        }
    }
}

impl Replayer {
    /// Whether a map built now could be patched by later rounds (see the module doc).
    pub(super) fn patch_conditions(&self) -> bool {
        self.quiet.busy().is_some() && self.group.is_none() && self.standing_on().is_none()
    }

    /// The tables whose entries this round's patch sends, when it may send one.
    pub(super) fn patch_scope(&self) -> Option<BTreeSet<TableName>> {
        if !self.health_patchable || !self.patch_conditions() {
            return None;
        }
        let walked = self.quiet.walked()?;
        let dotted = |n: &TableName| n.schema.contains('.') || n.table.contains('.');
        if walked.iter().any(dotted) {
            return None;
        }
        Some(walked.clone())
    }

    /// The patch for the `walked` tables, their applied ts in `per_table` (the catalog's
    /// among them).
    pub(super) fn tables_patch(
        &self,
        walked: &BTreeSet<TableName>,
        per_table: &BTreeMap<TableName, Ts>,
    ) -> TablesFigure {
        let quiet_applied = self.disc.catalog().complete_through().0;
        let partial = self.disc.partial_catalog();
        let entries = walked
            .iter()
            .map(|name| {
                let mut t = TableProgress {
                    applied_ts: per_table.get(name).map_or(0, |ts| ts.0),
                    quiet: per_table.contains_key(name) && self.quiet.is_quiet(name),
                    ..Default::default()
                };
                let mut rows = false;
                for (k, p) in self.progress.table_rows(name) {
                    if !self.names_own_table(k) {
                        continue;
                    }
                    rows = true;
                    add_row(&mut t, k, p);
                }
                if rows && partial && !per_table.contains_key(name) {
                    // only the progress record names it: applied through the checkpoint
                    // (`tables_applied_ts`), as a quiet table
                    t.applied_ts = quiet_applied;
                    t.quiet = self.quiet.is_quiet(name);
                }
                let keep = rows || per_table.contains_key(name);
                (name.to_string(), keep.then_some(t))
            })
            .collect();
        TablesFigure::Patch {
            entries,
            quiet_applied,
        }
    }

    /// Debug builds: a patch applied to what `/health` shows gives the whole map, and the
    /// walked tables' applied ts (`per_table`) give the least applied ts all tables give.
    pub(super) fn check_tables_figure(
        &self,
        figure: &TablesFigure,
        per_table: &BTreeMap<TableName, Ts>,
    ) {
        if !matches!(figure, TablesFigure::Patch { .. }) {
            return;
        }
        let all = self.tables_applied_ts();
        assert_eq!(
            self.applied_of(per_table),
            self.applied_of(&all),
            "the walked tables' least applied ts is not every table's"
        );
        let whole = self.table_progress(all);
        let mut patched = match self.health.lock() {
            Ok(h) => h.tables.clone(),
            Err(_) => return,
        };
        figure.clone().apply(&mut patched);
        assert!(
            patched == whole,
            "/health's tables patched differ from the whole map: {:?}",
            patched
                .iter()
                .filter(|(k, v)| whole.get(*k) != Some(*v))
                .chain(whole.iter().filter(|(k, _)| !patched.contains_key(*k)))
                .take(3)
                .collect::<Vec<_>>()
        );
    }

    /// Per-table progress for `/health` and the status page: the catalog's tables with their
    /// applied ts, and every progress row grouped by table.
    pub(super) fn table_progress(
        &self,
        per_table: BTreeMap<TableName, Ts>,
    ) -> BTreeMap<String, TableProgress> {
        // The catalog's tables and the progress rows both order by schema, then table: one
        // merge, each table's name formatted once (a look-up and a formatted name per row was
        // a fifth of a busy round's CPU at 20,000 tables).
        let mut rows = self
            .progress
            .rows()
            // In a group, other members' tables are theirs to report.
            .filter(|(k, _)| self.names_own_table(k) && self.owns_table(&k.schema, &k.table))
            .peekable();
        let mut tables = per_table.into_iter().peekable();
        // (name, progress, whether its applied ts is the catalog's)
        let mut merged: Vec<(String, TableProgress, bool)> = Vec::with_capacity(tables.len());
        loop {
            let from_catalog = match (tables.peek(), rows.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((n, _)), Some((k, _))) => {
                    (n.schema.as_str(), n.table.as_str()) <= (k.schema.as_str(), k.table.as_str())
                }
            };
            let (name, mut t) = if from_catalog {
                let (n, ts) = tables.next().expect("peeked");
                let t = TableProgress {
                    applied_ts: ts.0,
                    quiet: self.quiet.is_quiet(&n),
                    ..Default::default()
                };
                (n, t)
            } else {
                let (k, _) = rows.peek().expect("peeked");
                let n = TableName::new(k.schema.as_str(), k.table.as_str());
                (n, TableProgress::default())
            };
            while let Some((k, p)) =
                rows.next_if(|(k, _)| k.schema == name.schema && k.table == name.table)
            {
                add_row(&mut t, k, p);
            }
            merged.push((name.to_string(), t, from_catalog));
        }
        // Two tables can read alike (`a.b` + `c`, `a` + `b.c`): one entry, as a map by that
        // text has always given: the later catalog table's applied ts, every row in order.
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, TableProgress)> = Vec::with_capacity(merged.len());
        for (name, t, from_catalog) in merged {
            match out.last_mut() {
                Some((last, l)) if *last == name => {
                    if from_catalog {
                        l.applied_ts = t.applied_ts;
                        l.quiet = t.quiet;
                    }
                    if t.version.is_some() {
                        l.version = t.version;
                    }
                    l.streams.extend(t.streams);
                }
                _ => out.push((name, t)),
            }
        }
        out.into_iter().collect()
    }
}

/// Adds a progress row of the table to its entry: the DDL row's version, or a stream.
fn add_row(t: &mut TableProgress, k: &ProgressKey, p: &Position) {
    if k.dispatcher == DDL_STREAM {
        t.version = Some(p.version.0);
    } else {
        t.streams.push(StreamProgress {
            partition: k.partition.clone(),
            dispatcher: k.dispatcher.clone(),
            version: p.version.0,
            date: p.date.clone(),
            file_index: p.file_index,
            commit_ts: p.commit_ts.0,
        });
    }
}
