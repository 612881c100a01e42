//! The replay loop's side of the settled mark (see [`crate::settled`]): starting from the mark
//! a previous process stored, storing a new one after a round that settled at a checkpoint the
//! stored one does not say, and what a round reports while it stands on a mark with no catalog.
//!
//! # Invariants
//!
//! - A mark is believed only with a scope set ([`Replayer::set_scope`]), on a progress record
//!   read settled ([`ProgressRead::Settled`]: never by a group member, nor a process about to
//!   join one), on a downstream that keeps it, when it holds for the record as loaded;
//!   discovery then refuses it where idle rounds are not allowed (rows without commit ts, a
//!   listing lag).
//! - A mark is stored only under the same conditions, after a round discovery reports as
//!   settled, with a catalog that has tables (or while standing on the mark it would store
//!   again), and only when it differs from the stored one: at most one small transaction per
//!   checkpoint the consumer settles at, none per idle round.
//! - Failing to store it is a warning, never a failed round: the mark is optional, and the
//!   next start then does a full first round.
//! - While standing on a mark (no round built the catalog), the applied ts reported is the
//!   mark's checkpoint, never more than the checkpoint read: everything at or below it is
//!   applied, which is what the mark proves.

use super::{ProgressRead, Replayer};
use crate::backend::Unit;
use crate::config::TableFilter;
use crate::freshness::RoundRecord;
use crate::settled::{Scope, SettledMark};
use cdc_common::Ts;

impl Replayer {
    /// Sets the consumer's scope: the text of everything a settled mark must have been written
    /// under to hold (storage location, table filter, layout and protocol options; see
    /// [`crate::replayer`]) and the filter (which progress rows are the scope's). Without a
    /// scope no mark is stored nor believed. When the downstream holds this scope's mark and
    /// it holds for the progress record as loaded, the replayer starts from it: while
    /// `metadata` reads its checkpoint, rounds cost one GET. It does not when the record was
    /// read plain: a process about to join a group was built with [`ProgressRead::Plain`]
    /// (the scope is set before [`Replayer::set_group`]), and a member never stands on a mark
    /// (other members' progress moves under it).
    pub fn set_scope(&mut self, text: &str, filter: TableFilter) {
        let scope = Scope::new(text, filter);
        self.mark = SettledMark::find(&self.loaded_marks, &scope);
        self.mark_progress = None;
        self.resumed = None;
        // what the figures were computed standing on may have changed (see `IdleFigures`)
        self.idle_figures = None;
        self.quiet.forget();
        let holds = self
            .mark
            .as_ref()
            .filter(|m| m.holds_for(&self.progress, &scope))
            .cloned();
        self.scope = Some(scope);
        let Some(mark) = holds else {
            return;
        };
        self.mark_progress = Some(self.progress.digest());
        let usable = self.read == ProgressRead::Settled && self.down.keeps_settled_mark();
        if usable
            && self
                .disc
                .resume_at(mark.checkpoint, mark.files_pending == 0)
        {
            tracing::info!(
                checkpoint_ts = mark.checkpoint.0,
                "starting from the settled mark: no listing while the checkpoint stays there"
            );
            self.metrics
                .settled_checkpoint_ts
                .set(mark.checkpoint.0 as i64);
            self.resumed = Some(mark);
        }
    }

    /// The mark this process stands on: started from it and no round built the catalog yet.
    pub(super) fn standing_on(&self) -> Option<&SettledMark> {
        self.resumed.as_ref().filter(|_| !self.disc.catalog_built())
    }

    /// After a round (its totals filled): stores the settled mark when discovery reports the
    /// round settled at a checkpoint, or with a progress record, the stored mark does not say
    /// (see the module doc).
    pub(super) async fn store_settled_mark(&mut self, rec: &mut RoundRecord) {
        if self.disc.catalog_built() {
            self.resumed = None;
        }
        let Some(c) = self.disc.settled_at() else {
            return;
        };
        let has_tables = !self.disc.catalog().tables.is_empty()
            || self.standing_on().is_some()
            || self.disc.partial_catalog();
        if self.group.is_some() || !self.down.keeps_settled_mark() || !has_tables {
            return;
        }
        let Some(scope) = &self.scope else {
            return;
        };
        let progress = self.progress.digest();
        let same = |m: &SettledMark| m.checkpoint == c && m.files_pending == rec.files_pending;
        if self.mark.as_ref().is_some_and(same) && self.mark_progress == Some(progress) {
            return;
        }
        let mark = SettledMark::new(c, &self.progress, scope, rec.files_pending);
        if self.mark.as_ref() == Some(&mark) {
            self.mark_progress = Some(progress);
            return;
        }
        let row = [mark.row(scope)];
        let unit = Unit {
            file: "settled mark",
            table: None,
            ddl: &[],
            rows: &[],
            progress: &row,
            quarantine: None,
            fence: None,
        };
        match self.down.apply(unit).await {
            Ok(()) => {
                self.metrics.settled_checkpoint_ts.set(c.0 as i64);
                self.mark = Some(mark);
                self.mark_progress = Some(progress);
            }
            Err(e) => rec.warnings.push(format!(
                "storing the settled mark at checkpoint {c} failed (the next start lists \
                 storage): {e}"
            )),
        }
    }

    /// While standing on a mark: the applied ts of every table, the mark's checkpoint, at most
    /// `checkpoint`.
    pub(super) fn applied_on_mark(&self, checkpoint: Ts) -> Option<Ts> {
        self.standing_on().map(|m| m.checkpoint.min(checkpoint))
    }
}
