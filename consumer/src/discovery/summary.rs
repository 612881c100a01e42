//! Summary rounds: a round after the checkpoint moved that refreshes only the tables the
//! sink's change summary (`changes.metadata`, [`cdc_common::layout::ChangeSummary`]) names,
//! instead of listing every table.
//!
//! ```text
//! phase 0   GET metadata                      C_m (C_prev: what the last round read)
//! phase S   GET changes.metadata              complete steps chaining C_prev -> C_m exactly?
//!           no (missing, unreadable, a gap, an incomplete step, another writer): full round
//! phase A   LIST/ <s>/<t>/meta/ of each named table, <s>/meta/ of each named schema,
//!           GET each schema file not seen before
//! phase B   the named tables' open versions and open directories, as a full round does
//! ```
//!
//! # Why the other tables need no request
//!
//! The catalog was up to date at `C_prev`: the last round completed, read `C_prev` before its
//! listings (a first round too: its recursive listing starts after phase 0) and drew every
//! conclusion they allow. The sink takes its touched set right before it starts writing
//! `metadata = C`, notes a put only once it returned, and stores the step before `metadata`
//! moves. So:
//!
//! - an index entry or schema file the last round's listings did not show completed after
//!   they started, so after `metadata = C_prev` was written, so after the set for `C_prev`
//!   was taken: it is named in a step after `C_prev`;
//! - every row at or below `C_m` was durable (its index entry put) before `C_m` was decided
//!   and so before the set for `C_m` was taken; every schema file below `C_m` likewise: each
//!   is named in a step at or before `C_m`.
//!
//! A table named in no step from `C_prev` to `C_m` therefore holds nothing at or below `C_m`
//! that the catalog lacks. What it may have got after the set for `C_m` was taken holds rows
//! above `C_m` only (held back) and is named in the next step, which the next round reads.
//!
//! Conclusions about tables outside the refreshed set: a version becomes final only for a
//! refreshed table (no new version of another one exists below `C_m`); a dated directory
//! before the checkpoint's date minus a day is closed as in a full round (every entry in it
//! is at or below `C_m`, so already read); a barrier raises `complete_below` of a table not
//! refreshed only at or below `C_m` (a DROP DATABASE or RENAME seen in this round's listings
//! may be newer than `C_m`, and the table's DML below it newer than what was read).
//!
//! # On a settled mark (no catalog)
//!
//! A process that started from the settled mark at `C_s` ([`crate::settled`]) has an empty
//! catalog. When the mark also says that no indexed file was pending (above `C_s`, held back)
//! at the round that settled, the storage it stands for is the catalog "up to date at `C_s`"
//! with everything applied: a table named in no step from `C_s` to `C_m` has nothing to
//! apply through `C_m`. The round reads the named tables from scratch (every schema file,
//! every version's directories and index files: a first round's work for those tables, its
//! listings made after phase 0) and the catalog is *partial* ([`Discovery::partial_catalog`]): a
//! table it lacks counts as applied through the checkpoint (ordering's `table_reached` already
//! treats an unknown table so; `/health` lists the progress record's tables at the checkpoint).
//! A mark with pending files is not chained from: such a file's table is named in a step
//! before `C_s`, not after. The next full round lists every table and makes the catalog
//! whole.
//!
//! # When it runs
//!
//! Only where an idle round could: rows carry their commit ts (without one, files are applied
//! as soon as indexed, and a round must find them whatever the checkpoint), no listing lag
//! (the argument relies on a listing showing every put completed before it), not a group
//! member. And only after a round that left the catalog up to date at `C_prev` (or on a
//! settled mark without pending files): after a round whose discovery failed once it had
//! begun to change the catalog (its listings), or a reopened downstream whose progress record
//! differs from the process's, the round is a full one (a round that failed reading
//! `metadata` or the summary, or whose replay failed, left the catalog up to date at the
//! base).
//! The exact landing on `C_m` matters: a chain that passes `C_m` without a step ending there
//! means `metadata` was written by someone else (another sink, TiCDC).

use super::round::{Barriers, Scope};
use super::{Discovery, DiscoveryStats};
use crate::error::Result;
use cdc_common::layout::{ChangeSummary, ChangedSince, CHANGE_SUMMARY_FILE, META_DIR};
use cdc_common::{TableName, Ts};
use std::time::Instant;

/// What a summary round refreshed: the tables and schemas the change summary named (and the
/// filter kept). Every other table's catalog entry is as the round before left it, but for
/// conclusions that cannot give a table without a next version anything to apply (closed
/// dated directories, `complete_below`); the replay's quiet tables rest on that
/// (`replay/quiet.rs`).
#[derive(Clone, Debug, Default)]
pub struct Refreshed {
    /// The tables read again.
    pub tables: std::collections::BTreeSet<TableName>,
    /// The schemas whose `meta/` directory was listed again.
    pub schemas: std::collections::BTreeSet<String>,
}

impl Discovery {
    /// Phase S: what changed from `base` (the checkpoint the last up-to-date round read) to the
    /// checkpoint just read, from the change summary; `None`: a full round is needed.
    pub(super) async fn read_summary(&mut self, base: Option<Ts>) -> Result<Option<ChangedSince>> {
        let (Some(from), Some(to)) = (base, self.last_read) else {
            return Ok(None);
        };
        if !self.summary_allowed() {
            return Ok(None);
        }
        let Some(bytes) = self.up.get(CHANGE_SUMMARY_FILE).await? else {
            return Ok(None);
        };
        let summary = match ChangeSummary::parse(CHANGE_SUMMARY_FILE, &bytes) {
            Ok(s) => s,
            Err(e) => {
                self.warn(format!("{e}; listing every table this round"));
                return Ok(None);
            }
        };
        let changed = summary.changed_between(from, to);
        // A table named like the schema-level `meta/` directory is ambiguous in the layout.
        Ok(changed.filter(|c| c.tables.iter().all(|(_, t)| t != META_DIR)))
    }

    /// Whether summary rounds may run (see "When it runs").
    pub(super) fn summary_allowed(&self) -> bool {
        self.idle_allowed && self.listing_lag.is_zero()
    }

    /// Phases A and B for the tables and schemas of `changed` only; what the round refreshed.
    pub(super) async fn summary_round(
        &mut self,
        changed: ChangedSince,
        stats: &mut DiscoveryStats,
    ) -> Result<Refreshed> {
        let scope = self.summary_scope(&changed);
        stats.summary_tables = scope.len() as u64;
        let metas = self.summary_metas(&changed);
        let mut barriers: Barriers = self.read_meta_dirs(&metas, stats).await?;
        self.add_known_barriers(&mut barriers, Some(&scope));
        let listed = Instant::now();
        // A table new to the catalog got its versions from its schema files just read.
        let open_versions = self.open_versions(Some(&scope));
        stats.new_dirs += self.list_open_versions(&open_versions, listed).await?;
        self.read_open_indexes(Some(&scope)).await?;
        self.conclude(listed, &open_versions, barriers, Some(&scope));
        let schemas = metas
            .into_iter()
            .filter(|(_, t, _)| t == META_DIR)
            .map(|(s, _, _)| s)
            .collect();
        Ok(Refreshed {
            tables: scope,
            schemas,
        })
    }

    /// The tables `changed` names that the filter keeps.
    fn summary_scope(&self, changed: &ChangedSince) -> Scope {
        changed
            .tables
            .iter()
            .filter(|(s, t)| self.filter.matches(s, t))
            .map(|(s, t)| TableName::new(s, t))
            .collect()
    }

    /// The `meta/` directories phase A lists: each kept table's, each kept schema's.
    fn summary_metas(&self, changed: &ChangedSince) -> Vec<(String, String, String)> {
        let schemas = changed
            .schemas
            .iter()
            .filter(|s| self.filter.matches_schema(s))
            .map(|s| (s.clone(), META_DIR.to_string(), format!("{s}/{META_DIR}/")));
        let tables = changed
            .tables
            .iter()
            .filter(|(s, t)| self.filter.matches(s, t))
            .map(|(s, t)| (s.clone(), t.clone(), format!("{s}/{t}/{META_DIR}/")));
        schemas.chain(tables).collect()
    }
}
