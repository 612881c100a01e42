//! What a round reports, and the applied ts it reports.
//!
//! After the steps ran, a round's [`RoundRecord`] gets its warnings (redacted), its fatal
//! error (redacted), its totals (checkpoint-ts, applied ts, files pending); the gauges are set,
//! the record is logged (in full when the round did or met anything, else at debug), and
//! `/health` is updated and its `/wait` waiters are woken.
//!
//! Invariants: the applied ts of a table never exceeds what discovery knows to be complete
//! ([`crate::discovery::Catalog::complete_through`]) nor the checkpoint; no warning or error
//! text leaves the replayer without going through [`crate::secrets`].

use super::health_tables::TablesFigure;
use super::Replayer;
use crate::error::{Error, Result};
use crate::freshness::{now_ms, RecentError, RoundRecord};
use crate::ordering::{count_pending, table_steps, Step, Wait};
use crate::progress::ProgressKey;
use cdc_common::{TableName, Ts};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// What a round reports of its tables: the record's totals and `/health` both read it. It is
/// computed once per round, after the steps ran ([`Replayer::round_figures`]): each table's
/// steps are walked once (`O(tables)`), where the totals and `/health` each walked them before.
/// Nothing the figures depend on (catalog, progress record, stalled streams, ownership, the
/// mark the process stands on) changes between the totals and `/health`: storing the round
/// record writes none of them, and storing the settled mark writes only `resumed`, which it
/// clears once the catalog is built, when `standing_on()` no longer reads it.
pub(super) struct RoundFigures {
    /// The record's applied ts (before the checkpoint bound).
    applied: Ts,
    /// Files left to apply at or below the checkpoint.
    pending: u64,
    /// `/health`'s applied ts ([`Replayer::known_applied_ts`]).
    known_applied: Option<Ts>,
    /// `/health`'s per-table progress, whole or as a patch of what it shows; `None` for an
    /// idle round that reuses the figures (`/health` keeps the tables it has).
    tables: Option<TablesFigure>,
}

/// The figures an idle round would compute again. An idle round read an unchanged checkpoint
/// and stopped there: it changed neither the catalog nor the progress record, nor which
/// streams are stalled, and what it stores (the settled mark) changes none of the inputs
/// either; so the first idle round after a round that was not idle computes them (160 ms a
/// round at 20,000 tables), and the idle rounds after it reuse them. Dropped by every round
/// that is not idle or fails, and when the progress record is reloaded or the scope set.
#[derive(Clone, Copy)]
pub(super) struct IdleFigures {
    applied: Ts,
    pending: u64,
    known_applied: Option<Ts>,
}

impl Replayer {
    /// Adds discovery's warnings to the record, redacts them all, and counts them.
    pub(super) fn collect_warnings(&mut self, rec: &mut RoundRecord) {
        rec.warnings.extend(self.disc.take_warnings());
        for w in rec.warnings.iter_mut() {
            if let std::borrow::Cow::Owned(r) = self.secrets.redact(w) {
                *w = r;
            }
        }
        self.metrics
            .errors
            .with_label_values(&["warning"])
            .inc_by(rec.warnings.len() as u64);
    }

    /// True when the catalog changed since the last round (discovery found something new):
    /// its checkpoint moved or discovery says the catalog grew ([`crate::discovery::Discovery::take_grew`],
    /// `O(1)`). An `idle` round found nothing new and changed nothing in the catalog but its
    /// checkpoint (it stopped after reading it).
    ///
    /// Debug builds also hash every table's versions, schema files, index entries and
    /// `complete_below` after each round that was not idle, and assert that a round whose hash
    /// moved is one discovery said grew: a change made where the flag is not set fails the
    /// test suite here. (The hash, compared alone, was the answer before: `O(tables)` in
    /// every round, the largest single cost of a busy round at 10,000 tables.)
    pub(super) fn note_fingerprint(&mut self, idle: bool) -> bool {
        let checkpoint = self.disc.catalog().checkpoint;
        let seen = std::mem::replace(&mut self.fingerprint.0, checkpoint);
        if idle {
            return false;
        }
        let grew = self.disc.take_grew();
        if cfg!(debug_assertions) {
            let hash = self.tables_fingerprint();
            assert!(
                grew || hash == self.fingerprint.1,
                "round {}: the catalog's tables changed, but discovery did not say it grew",
                self.rounds
            );
            self.fingerprint.1 = hash;
        }
        grew || checkpoint != seen
    }

    /// Puts the error that ended the round (redacted) in the record's `fatal`, and counts it.
    pub(super) fn record_error(&self, rec: &mut RoundRecord, result: Result<()>) -> Option<Error> {
        match result {
            Err(e) => {
                self.metrics.errors.with_label_values(&["fatal"]).inc();
                rec.fatal = Some(self.secrets.redact(&e.to_string()).into_owned());
                Some(e)
            }
            Ok(()) => None,
        }
    }

    /// The round's figures (see [`RoundFigures`]). The one place that decides whether they
    /// are computed or reused: reused by an idle round that ended well, when the idle round
    /// before it kept them (see [`IdleFigures`]).
    pub(super) fn round_figures(&mut self, rec: &RoundRecord) -> RoundFigures {
        let idle_ok = rec.discovery.idle && rec.fatal.is_none();
        if !idle_ok {
            self.idle_figures = None;
        }
        if let Some(f) = self.idle_figures {
            return RoundFigures {
                applied: f.applied,
                pending: f.pending,
                known_applied: f.known_applied,
                tables: None,
            };
        }
        // After a round that walked only some tables, only theirs can differ from what
        // `/health` shows; a quiet table is applied through the checkpoint, so the walked
        // ones' applied ts give the least (see `health_tables`).
        let patch = self.patch_scope();
        let per_table = match &patch {
            Some(walked) => self.walked_applied_ts(walked),
            None => self.tables_applied_ts(),
        };
        let (applied, pending) = (self.applied_of(&per_table), self.files_pending());
        let known_applied = self.known_applied_ts_of(Some(&per_table));
        if idle_ok {
            self.idle_figures = Some(IdleFigures {
                applied,
                pending,
                known_applied,
            });
        }
        let tables = match patch {
            Some(walked) => {
                let patch = self.tables_patch(&walked, &per_table);
                if cfg!(debug_assertions) {
                    self.check_tables_figure(&patch, &per_table);
                }
                patch
            }
            None => TablesFigure::Whole(self.table_progress(per_table)),
        };
        self.health_patchable = self.patch_conditions();
        RoundFigures {
            applied,
            pending,
            known_applied,
            tables: Some(tables),
        }
    }

    /// Fills the record's totals and end time from the round's figures, and sets the gauges.
    pub(super) fn record_totals(&mut self, rec: &mut RoundRecord, figures: &RoundFigures) {
        let checkpoint = self.disc.catalog().checkpoint.unwrap_or(Ts::ZERO);
        rec.checkpoint_ts = checkpoint.0;
        rec.applied_ts = figures.applied.min(checkpoint).0;
        rec.files_pending = figures.pending;
        rec.ended_at_ms = now_ms();
        self.metrics.checkpoint_ts.set(checkpoint.0 as i64);
        self.metrics.applied_ts.set(rec.applied_ts as i64);
        self.metrics.files_pending.set(figures.pending as i64);
    }

    /// Files left to apply at or below the checkpoint, of the tables this consumer reports.
    fn files_pending(&self) -> u64 {
        let cat = self.disc.catalog();
        match (&self.group, self.standing_on()) {
            // no catalog read in this process: the count the mark's settled round saw
            (None, Some(mark)) => mark.files_pending,
            // a quiet table has none (see `quiet`)
            (None, None) => match self.quiet.busy() {
                Some(busy) => crate::ordering::count_pending_in(cat, &self.progress, busy),
                None => count_pending(cat, &self.progress),
            },
            // A member's freshness covers the tables it owns.
            (Some(_), _) => crate::group::weights::universe(cat, &self.progress)
                .into_iter()
                .filter(|(k, _)| self.owns(k))
                .map(|(_, w)| w - 1)
                .sum(),
        }
    }

    /// Puts the round in `/health`: its totals, its record, the per-table progress, the
    /// quarantine record, and its error among the recent ones.
    pub(super) fn publish_health(&mut self, rec: &RoundRecord, figures: RoundFigures) {
        let (applied, tables) = (figures.known_applied, figures.tables);
        if let Ok(mut h) = self.health.lock() {
            h.set_ts(Ts(rec.checkpoint_ts), applied);
            h.note_round(rec.fatal.is_none(), rec.ended_at_ms);
            h.files_pending = rec.files_pending;
            h.last_round = Some(rec.clone());
            h.push_round(rec.clone());
            if let Some(tables) = tables {
                tables.apply(&mut h.tables);
            }
            h.quarantined_files_total = self.quarantined_total;
            h.quarantined = self.quarantined.clone();
            if let Some(f) = &rec.fatal {
                h.push_error(RecentError {
                    round: rec.round,
                    at_ms: rec.ended_at_ms,
                    message: f.clone(),
                });
            }
            h.refresh(rec.ended_at_ms);
            self.metrics.set_freshness(&h);
            h.applied.notify_waiters();
        }
    }

    /// The applied ts `/health` shows: `None` when it is not known (no checkpoint yet, or no
    /// table in the catalog: nothing was read), never the checkpoint borrowed. Standing on a
    /// settled mark (no catalog built in this process), it is the mark's checkpoint: what the
    /// mark proves applied.
    pub fn known_applied_ts(&self) -> Option<Ts> {
        self.known_applied_ts_of(None)
    }

    /// [`Replayer::known_applied_ts`], from `per_table` ([`Replayer::tables_applied_ts`]) when
    /// the caller has it.
    fn known_applied_ts_of(&self, per_table: Option<&BTreeMap<TableName, Ts>>) -> Option<Ts> {
        let cat = self.disc.catalog();
        let checkpoint = cat.checkpoint?;
        if let Some(on_mark) = self.applied_on_mark(checkpoint) {
            return Some(on_mark);
        }
        if cat.tables.is_empty() && !self.disc.partial_catalog() {
            return None;
        }
        // no discovery round completed yet: nothing is known applied
        cat.listed_through?;
        let applied = match per_table {
            Some(m) => self.applied_of(m),
            None => self.applied_ts(),
        };
        Some(applied.min(checkpoint))
    }

    /// A hash of every table's versions, schema files (there or not), index entries and
    /// `complete_below`, and of the database-level files' count: debug builds' check of
    /// [`crate::discovery::Discovery::take_grew`] (see `note_fingerprint`).
    fn tables_fingerprint(&self) -> u64 {
        let cat = self.disc.catalog();
        let mut h: u64 = 0;
        for t in cat.tables.values() {
            for (v, ve) in &t.versions {
                h = h.wrapping_mul(31).wrapping_add(v.0);
                h = h.wrapping_add(u64::from(ve.schema.is_some()));
                for de in ve.dirs.values() {
                    for n in de.indexes.values() {
                        h = h.wrapping_mul(31).wrapping_add(*n + 1);
                    }
                }
            }
            h = h.wrapping_mul(31).wrapping_add(t.complete_below.0);
        }
        for d in cat.databases.values() {
            h = h.wrapping_mul(31).wrapping_add(d.len() as u64);
        }
        h
    }

    /// The ts up to which every table is applied (see [`crate::freshness`]); with no table in
    /// the catalog every table is vacuously applied, so this is the checkpoint (what
    /// `--until-ts` compares). `/health` shows [`Replayer::known_applied_ts`] instead.
    pub fn applied_ts(&self) -> Ts {
        self.applied_of(&self.tables_applied_ts())
    }

    /// [`Replayer::applied_ts`] from the per-table figures ([`Replayer::tables_applied_ts`]).
    pub(super) fn applied_of(&self, per_table: &BTreeMap<TableName, Ts>) -> Ts {
        let checkpoint = self.disc.catalog().complete_through();
        per_table.values().copied().fold(checkpoint, Ts::min)
    }

    /// True for a progress row of one of this consumer's tables: database-level DDL rows have
    /// no table, and rows outside the consumer's scope (another consumer sharing the progress
    /// table, a table outside `--tables`) are not this one's to report.
    pub(super) fn names_own_table(&self, k: &ProgressKey) -> bool {
        !k.table.is_empty() && self.scope.as_ref().is_none_or(|s| s.covers(k))
    }

    /// Per table of the catalog, the ts up to which it is applied (at most the checkpoint).
    /// Standing on a settled mark, every table the catalog or the progress record names, at
    /// the mark's checkpoint.
    pub fn tables_applied_ts(&self) -> BTreeMap<TableName, Ts> {
        let cat = self.disc.catalog();
        // Not beyond what discovery knows to be complete (lagging listings).
        let checkpoint = cat.complete_through();
        // Pairs in two sorted runs, a later pair of a name replacing an earlier one: built in
        // one pass (`collect` merges the runs), not inserted one by one (O(tables log tables)
        // name compares, measured at a fifth of a busy round's CPU at 20,000 tables).
        let mut out: Vec<(TableName, Ts)> = Vec::new();
        if let Some(on_mark) = self.applied_on_mark(checkpoint) {
            out.extend(self.progress_tables().into_iter().map(|n| (n, on_mark)));
            out.extend(cat.tables.keys().map(|n| (n.clone(), on_mark)));
            return out.into_iter().collect();
        }
        if self.disc.partial_catalog() {
            // Tables a summary round on a settled mark did not read: unchanged since the mark,
            // nothing left to apply through the checkpoint (see discovery's `summary.rs`).
            out.extend(self.progress_tables().into_iter().map(|n| (n, checkpoint)));
        }
        let none = HashSet::new();
        // In a group, the tables this member owns this round.
        let owned = cat
            .tables
            .keys()
            .filter(|n| self.owns_table(&n.schema, &n.table));
        for name in owned {
            out.push((name.clone(), self.table_applied_ts(name, checkpoint, &none)));
        }
        out.into_iter().collect()
    }

    /// [`Replayer::tables_applied_ts`] of the catalog's tables among `walked` only.
    fn walked_applied_ts(&self, walked: &BTreeSet<TableName>) -> BTreeMap<TableName, Ts> {
        let cat = self.disc.catalog();
        let checkpoint = cat.complete_through();
        let none = HashSet::new();
        walked
            .iter()
            .filter(|n| cat.tables.contains_key(*n))
            .map(|n| (n.clone(), self.table_applied_ts(n, checkpoint, &none)))
            .collect()
    }

    /// The ts up to which the catalog's table `name` is applied, at most `checkpoint` (what
    /// discovery knows complete).
    fn table_applied_ts(
        &self,
        name: &TableName,
        checkpoint: Ts,
        none: &HashSet<ProgressKey>,
    ) -> Ts {
        let cat = self.disc.catalog();
        if self.quiet.is_quiet(name) {
            // nothing to apply nor wait for: applied through the checkpoint
            return checkpoint;
        }
        let (steps, wait) = table_steps(cat, &self.progress, name, none);
        let t_applied = if steps.is_empty() {
            match wait {
                Wait::Idle | Wait::Checkpoint(_) => checkpoint,
                Wait::Discovery(v) => Ts(v.0.saturating_sub(1)),
                Wait::Other(_) | Wait::Stalled => self.table_commit_ts(name),
            }
        } else {
            let mut m = checkpoint;
            for s in &steps {
                match s {
                    Step::File { key, .. } if self.stalled.contains(key) => {}
                    Step::File { before, .. } => {
                        m = m.min(before.as_ref().map(|p| p.commit_ts).unwrap_or(Ts::ZERO))
                    }
                    Step::TableDdl { entry, .. } => {
                        m = m.min(Ts(entry.file.table_version.0.saturating_sub(1)))
                    }
                    Step::SchemaDdl { .. } => {}
                }
            }
            m
        };
        t_applied.min(checkpoint)
    }

    /// The tables this consumer's progress rows name (only its scope's: the progress table may
    /// be shared with other consumers, or name tables outside `--tables`).
    /// Each table once, in name order (rows order by schema, then table).
    fn progress_tables(&self) -> Vec<TableName> {
        let mut out: Vec<TableName> = Vec::new();
        for (k, _) in self.progress.rows() {
            let named = |l: &TableName| l.schema == k.schema && l.table == k.table;
            if self.names_own_table(k) && !out.last().is_some_and(named) {
                out.push(TableName::new(k.schema.as_str(), k.table.as_str()));
            }
        }
        out
    }

    /// The highest commit ts a table's rows record: a range of the record, not a walk of it
    /// (every waiting table asks, once per round).
    fn table_commit_ts(&self, name: &TableName) -> Ts {
        self.progress
            .table_rows(name)
            .map(|(_, p)| p.commit_ts)
            .max()
            .unwrap_or(Ts::ZERO)
    }

    /// Logs the audit record: in full (JSON) when the round did or met anything, else at debug.
    pub(super) fn log_record(rec: &RoundRecord) {
        let record = serde_json::to_string(rec).unwrap_or_default();
        match &rec.fatal {
            Some(f) => {
                tracing::error!(round = rec.round, error = %f, %record, "replay round failed")
            }
            None if rec.applied_anything() || !rec.warnings.is_empty() => tracing::info!(
                round = rec.round,
                checkpoint_ts = rec.checkpoint_ts,
                applied_ts = rec.applied_ts,
                rows = rec.rows(),
                files_pending = rec.files_pending,
                %record,
                "replay round"
            ),
            None => tracing::debug!(round = rec.round, %record, "replay round (idle)"),
        }
    }
}
