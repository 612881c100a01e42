//! One discovery round, as its phases (see [`crate::discovery`] for what each reads and why
//! the order makes skipping safe):
//!
//! ```text
//! read_checkpoint                      phase 0: GET metadata (conditional)
//! unchanged since a settled round:     stop (an idle round, see "Idle rounds"; also on the
//!                                      checkpoint a previous process settled at)
//! first round:  list_everything        phase A: one recursive LIST, schema files read
//!               read_listed_indexes    phase B: every listed directory's index files
//!               conclude_first                  without a listing lag: conclude, as below
//! summary round: read_summary, then     phase A and B of the tables the change summary names
//!               summary_round                   (see `summary.rs`; a later round otherwise)
//! later rounds: list_new_schema_files  phase A: delimiter listings, new schema files -> barriers
//!               add_known_barriers              (barriers seen in earlier rounds still hold)
//!               list_open_versions     phase B: data directories of versions not final, promoted
//!               read_open_indexes               index files of directories not closed
//!               conclude                        finals, closed directories, complete tables
//! ```
//!
//! Invariants: every phase B listing of a later round starts after every phase A listing of
//! the same round (the first round's one listing needs no such order: "The first round" in
//! [`crate::discovery`]); a
//! phase that fails ends the round with the catalog keeping what earlier calls taught it, and
//! nothing is marked final, closed or complete by a round that failed.

use super::catalog::{Catalog, SchemaEntry, TableEntry};
use super::settle::{waiting_below, waiting_versions};
use super::store::WARM_CHUNK;
use super::{Discovery, DiscoveryStats, Fetched};
use crate::error::Result;
use cdc_common::layout::{
    ChangeSummary, Checkpoint, DataDir, DataFile, DateDir, IndexFile, METADATA_FILE, META_DIR,
};
use cdc_common::{TableName, Ts};
use std::sync::Arc;
use std::time::Instant;

/// A schema-version barrier of one table: once its evidence was seen early enough, every DML
/// of `table` below `version` is indexed after this round's phase B.
struct TableBarrier {
    table: TableName,
    version: Ts,
    /// The table whose schema file shows the barrier (for RENAME TABLE the new name's file is
    /// the source table's barrier).
    evidence: TableName,
}

/// A database-level barrier: a schema file of `schema` at `version`.
struct SchemaBarrier {
    schema: String,
    version: Ts,
}

/// Barriers seen in phase A: (table, version) pairs whose earlier DML is complete after
/// phase B.
#[derive(Default)]
pub(super) struct Barriers {
    tables: Vec<TableBarrier>,
    schemas: Vec<SchemaBarrier>,
}

/// What the first round's recursive listing found besides schema files.
struct FullListing {
    /// Index files by data directory and dispatcher.
    index_files: Vec<(DataDir, Option<String>)>,
}

/// One version of one table.
pub(super) type TableVersion = (TableName, Ts);

/// The tables a summary round refreshes.
pub(super) type Scope = std::collections::BTreeSet<TableName>;

impl Discovery {
    /// Runs one discovery round (see the module doc). On error the catalog keeps what it had
    /// learnt before the failing call; nothing is marked final or closed.
    pub async fn round(&mut self) -> Result<DiscoveryStats> {
        let lists0 = self.up.metrics.list_calls.get();
        let gets0 = self.up.metrics.get_calls.get();
        let mut stats = DiscoveryStats::default();
        // Nothing warmed by an earlier round is taken by this one.
        self.up.forget_warm();
        // Set again only by a round that completes (a failed one leaves the catalog partly
        // refreshed: the next round is a full one), or given back when the round failed
        // before it changed the catalog (reading `metadata` or the change summary: the
        // catalog is still up to date at the base, and a process on its settled mark would
        // otherwise list the whole storage after one failed GET).
        let base = self.summary_base.take();
        self.refreshed = None;
        if let Err(e) = self.read_checkpoint().await {
            self.summary_base = base;
            return Err(e);
        }
        // `metadata` below the catalog's checkpoint (written back, or a newer one read by a
        // round that failed after it): no chain from the base reaches what the catalog says,
        // so this round lists everything.
        let base = base.filter(|_| self.last_read >= self.catalog.checkpoint);
        if self.idle_at.is_some() && self.idle_at == self.last_read {
            self.listed_through_checkpoint();
            self.summary_base = base;
            stats.idle = true;
            stats.resumed = self.built == 0;
            self.last_idle = true;
            stats.get_calls = self.up.metrics.get_calls.get() - gets0;
            return Ok(stats);
        }
        // a full round: the replayer earns the next skip again
        self.idle_at = None;
        self.last_idle = false;
        self.last_summary = false;
        let changed = match base {
            Some(_) => match self.read_summary(base).await {
                Ok(c) => c,
                Err(e) => {
                    self.summary_base = base;
                    return Err(e);
                }
            },
            None => None,
        };
        if let Some(changed) = changed {
            stats.summary = true;
            // On a settled mark's empty catalog the changed tables are read from scratch.
            self.partial |= self.built == 0;
            let refreshed = self.summary_round(changed, &mut stats).await?;
            self.refreshed = Some(refreshed);
            self.last_summary = true;
        } else if self.built == 0 {
            stats.full_listing = true;
            self.partial = false;
            // The recursive listing starts after phase 0 read the checkpoint.
            let listed = Instant::now();
            let listing = self.list_everything(&mut stats).await?;
            self.read_listed_indexes(listing, &mut stats).await?;
            if self.listing_lag.is_zero() {
                self.conclude_first(listed);
            } else {
                // The first round's listing proves nothing yet.
                self.catalog_mut().discovered_through = Some(Ts::ZERO);
                self.catalog_mut().schemas_through = Some(Ts::ZERO);
            }
        } else {
            // Phase A's listings start after this: they show every schema file written a lag
            // before it, so every one below a checkpoint read that long before.
            let phase_a = Instant::now();
            let mut barriers = self.list_new_schema_files(&mut stats).await?;
            self.add_known_barriers(&mut barriers, None);
            // Every listing below starts after `listed`: what was first seen at least the
            // listing lag before it, and everything written before that, shows in them.
            let listed = Instant::now();
            let open_versions = self.open_versions(None);
            stats.new_dirs += self.list_open_versions(&open_versions, listed).await?;
            self.read_open_indexes(None).await?;
            if !self.listing_lag.is_zero() {
                let through = self.settled_checkpoint(phase_a).unwrap_or(Ts::ZERO);
                self.catalog_mut().schemas_through = Some(through);
            }
            self.conclude(listed, &open_versions, barriers, None);
            // Every table was listed: the catalog is whole again.
            self.partial = false;
        }
        self.listed_through_checkpoint();
        self.built += 1;
        if (self.concluded() || self.last_summary) && self.summary_allowed() {
            self.summary_base = self.last_read;
        }
        stats.list_calls = self.up.metrics.list_calls.get() - lists0;
        stats.get_calls = self.up.metrics.get_calls.get() - gets0;
        Ok(stats)
    }

    /// The round completed: the catalog holds every file at or below the checkpoint it read
    /// (`Catalog::listed_through`). Until then the checkpoint just read is only seen: a round
    /// whose listings failed must not let the figures count a table with a file below it, not
    /// yet read, as applied through it.
    fn listed_through_checkpoint(&mut self) {
        let through = self.catalog.checkpoint;
        if self.catalog.listed_through != through {
            self.catalog_mut().listed_through = through;
        }
    }

    /// Phase 0: reads the checkpoint-ts (it never goes back in the catalog).
    async fn read_checkpoint(&mut self) -> Result<()> {
        let fetched = self
            .up
            .get_if_changed(METADATA_FILE, self.metadata_etag.as_deref())
            .await?;
        let checkpoint = match fetched {
            Fetched::Body(b, etag) => {
                let c = Checkpoint::parse(METADATA_FILE, &b)?.checkpoint_ts;
                self.metadata_etag = etag;
                Some(c)
            }
            Fetched::Unchanged => self.last_read,
            Fetched::Missing => {
                self.metadata_etag = None;
                None
            }
        };
        self.last_read = checkpoint;
        if let (Some(old), Some(new)) = (self.catalog.checkpoint, checkpoint) {
            if new < old {
                self.warn(format!(
                    "checkpoint-ts went back from {old} to {new}; keeping {old}"
                ));
            }
        }
        // Only a value read for the first time in a row: settling asks when a value was first
        // read, and idle rounds read the same one without end (the list would only grow).
        if let Some(c) = checkpoint {
            if self.checkpoints.back().map(|(_, ts)| *ts) != Some(c) {
                self.checkpoints.push_back((Instant::now(), c));
            }
        }
        if checkpoint.is_none() {
            self.warn(format!(
                "no `{METADATA_FILE}` checkpoint file yet: nothing can be applied"
            ));
        }
        self.catalog_mut().checkpoint = match (self.catalog.checkpoint, checkpoint) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => b.or(a),
        };
        Ok(())
    }

    /// Phase A of the first round: one recursive listing; schema files are read, data
    /// directories noted, index files returned for phase B. The names are taken in batches
    /// while the listing goes on (`listing_ahead`), and the schema files among them read a
    /// chunk at a time as soon as a chunk is there, in the listing's order.
    async fn list_everything(&mut self, stats: &mut DiscoveryStats) -> Result<FullListing> {
        let mut index_files: Vec<(DataDir, Option<String>)> = Vec::new();
        let mut schema_paths = Vec::new();
        let mut listing = self.up.list_all_ahead();
        while let Some(batch) = listing.next_batch().await? {
            self.note_listed(batch, &mut schema_paths, &mut index_files)?;
            while schema_paths.len() >= WARM_CHUNK {
                let chunk: Vec<String> = schema_paths.drain(..WARM_CHUNK).collect();
                self.read_schema_chunk(&chunk, stats).await?;
            }
        }
        self.read_schema_chunk(&schema_paths, stats).await?;
        self.up.forget_warm();
        Ok(FullListing { index_files })
    }

    /// Classifies a batch of the first round's listing: schema files to read, index files
    /// for phase B, data directories noted, anything else warned about.
    fn note_listed(
        &mut self,
        batch: Vec<String>,
        schema_paths: &mut Vec<String>,
        index_files: &mut Vec<(DataDir, Option<String>)>,
    ) -> Result<()> {
        for p in batch {
            // Node progress files (several sink processes) are the sink's; `metadata` is
            // the minimum over them; the change summary is read by summary rounds.
            if p == METADATA_FILE || Checkpoint::is_node_path(&p) || ChangeSummary::is_path(&p) {
                continue;
            }
            let mut segs = p.split('/');
            if let (Some(schema), Some(table), Some(_)) = (segs.next(), segs.next(), segs.next()) {
                if self.ignore_bad_name(schema, schema)
                    || (table != META_DIR
                        && self.ignore_bad_name(&format!("{schema}/{table}"), table))
                {
                    continue;
                }
            }
            let name = p.rsplit('/').next().unwrap_or("");
            if super::is_staging_name(name) {
                continue;
            }
            if name.starts_with("schema_") && p.contains("/meta/") {
                schema_paths.push(p);
            } else if name.ends_with(".index") {
                let f = IndexFile::parse(&p, &self.cfg).map_err(|e| self.mismatch(&p, e))?;
                if self.filter.matches(&f.dir.schema, &f.dir.table) {
                    index_files.push((f.dir, f.dispatcher_id));
                }
            } else if name.starts_with("CDC") {
                let f = DataFile::parse(&p, &self.cfg).map_err(|e| self.mismatch(&p, e))?;
                if self.filter.matches(&f.dir.schema, &f.dir.table) {
                    // Data files are found through their index files; make sure the
                    // directory is known even if its index is not there yet.
                    self.version_mut(&f.dir.schema, &f.dir.table, f.dir.version);
                    self.note_dir(f.dir);
                }
            } else {
                self.warn(format!("ignoring object `{p}` (not part of the layout)"));
            }
        }
        Ok(())
    }

    /// Reads the schema files of `chunk` (at most [`WARM_CHUNK`]) not seen before, warmed
    /// together, in `chunk`'s order.
    async fn read_schema_chunk(
        &mut self,
        chunk: &[String],
        stats: &mut DiscoveryStats,
    ) -> Result<()> {
        let wanted = chunk
            .iter()
            .filter(|p| self.wants_schema_file(p))
            .cloned()
            .collect();
        self.up.warm_gets(wanted).await;
        for p in chunk {
            if self.note_schema_file(p, stats).await?.is_some() {
                stats.new_schema_files += 1;
            }
        }
        Ok(())
    }

    /// Phase B of the first round: the listed directories and the index files in them.
    async fn read_listed_indexes(
        &mut self,
        listing: FullListing,
        stats: &mut DiscoveryStats,
    ) -> Result<()> {
        for (dir, dispatcher) in listing.index_files {
            self.version_mut(&dir.schema, &dir.table, dir.version);
            self.note_dir(dir.clone());
            // With a listing lag the directory waits (unsettled); its index files are
            // listed again once it is promoted.
            if let Some(e) = self.dir_entry_mut(&dir) {
                let known = e.indexes.contains_key(&dispatcher);
                e.indexes.entry(dispatcher).or_insert(0);
                self.grew |= !known;
            }
        }
        let dirs: Vec<DataDir> = self.dirs_in(None, |_, _| true);
        for chunk in dirs.chunks(WARM_CHUNK) {
            let paths = chunk.iter().flat_map(|d| self.index_paths(d)).collect();
            self.up.warm_gets(paths).await;
            for d in chunk {
                stats.new_dirs += 1;
                self.read_indexes(d).await?;
            }
        }
        self.up.forget_warm();
        Ok(())
    }

    /// The first round's conclusions, without a listing lag: every schema file it read is a
    /// barrier, every version is open. Sound for the reason given in [`crate::discovery`]
    /// ("The first round"): each conclusion is about what lies at or
    /// below the checkpoint phase 0 read, all of which was in storage before the recursive
    /// listing started, and every index file was read after phase 0 too.
    fn conclude_first(&mut self, listed: Instant) {
        let mut barriers = Barriers::default();
        self.add_known_barriers(&mut barriers, None);
        let open_versions = self.open_versions(None);
        self.conclude(listed, &open_versions, barriers, None);
    }

    /// Phase A of later rounds: delimiter listings of every schema and table `meta/`; each
    /// schema file not seen before is read and is a barrier.
    async fn list_new_schema_files(&mut self, stats: &mut DiscoveryStats) -> Result<Barriers> {
        let (schemas, _) = self.up.list_dir("").await?;
        let warm = schemas
            .iter()
            .filter(|s| self.filter.matches_schema(s))
            .map(|s| format!("{s}/"))
            .collect();
        self.up.warm_lists(warm).await;
        // Every `meta/` to list, in schema and table order.
        let mut metas: Vec<(String, String, String)> = Vec::new();
        for schema in schemas {
            if !self.filter.matches_schema(&schema) || self.ignore_bad_name(&schema, &schema) {
                continue;
            }
            let (tables, _) = self.up.list_dir(&format!("{schema}/")).await?;
            for table in tables {
                if table != META_DIR && self.ignore_bad_name(&format!("{schema}/{table}"), &table) {
                    continue;
                }
                let prefix = if table == META_DIR {
                    format!("{schema}/{META_DIR}/")
                } else if self.filter.matches(&schema, &table) {
                    format!("{schema}/{table}/{META_DIR}/")
                } else {
                    continue;
                };
                metas.push((schema.clone(), table, prefix));
            }
        }
        self.up.forget_warm();
        self.read_meta_dirs(&metas, stats).await
    }

    /// Phase A's reading part: lists each `(schema, table or "meta", prefix)` `meta/` and
    /// reads the schema files not seen before (each a barrier).
    pub(super) async fn read_meta_dirs(
        &mut self,
        metas: &[(String, String, String)],
        stats: &mut DiscoveryStats,
    ) -> Result<Barriers> {
        let mut barriers = Barriers::default();
        for chunk in metas.chunks(WARM_CHUNK) {
            let warm = chunk.iter().map(|(_, _, p)| p.clone()).collect();
            self.up.warm_lists(warm).await;
            for (schema, table, prefix) in chunk {
                let (_, files) = self.up.list_dir(prefix).await?;
                for f in files {
                    let p = format!("{prefix}{f}");
                    if !f.starts_with("schema_") || super::is_staging_name(&f) {
                        continue;
                    }
                    if let Some(e) = self.note_schema_file(&p, stats).await? {
                        stats.new_schema_files += 1;
                        barriers.add_new(schema, table, &e);
                    }
                }
            }
        }
        self.up.forget_warm();
        Ok(barriers)
    }

    /// Every known schema and table also counts its barriers seen in earlier rounds (still
    /// valid now; the newest one that is settled wins). A barrier can only raise its table's
    /// `complete_below`, which never goes down: one at or below it (most of them, once
    /// applied) is left out rather than built again each round.
    ///
    /// A summary round (`scope`) looks only at the tables that gave such a barrier when the
    /// last round looked (`barrier_tables`), its scope's, and the tables renamed from one in
    /// its scope: every other table gave none then, and can give one only through a new
    /// schema file of its own (then it is in the scope) or a new entry of a table it was
    /// renamed from (then that one is). Debug builds check after the round that applying
    /// every table's barriers raises nothing more (`check_known_barriers_applied`).
    pub(super) fn add_known_barriers(&mut self, barriers: &mut Barriers, scope: Option<&Scope>) {
        let cat = &self.catalog;
        let open = match (scope, &self.barrier_tables) {
            (Some(scope), Some(known)) => {
                let renamed = scope
                    .iter()
                    .filter_map(|s| cat.renamed_away.get(s))
                    .flat_map(|r| r.iter().map(|(_, n)| n));
                let names: std::collections::BTreeSet<&TableName> =
                    known.iter().chain(scope.iter()).chain(renamed).collect();
                let tables = names
                    .into_iter()
                    .filter_map(|n| cat.tables.get_key_value(n));
                table_barriers(cat, tables, barriers)
            }
            _ => table_barriers(cat, cat.tables.iter(), barriers),
        };
        self.barrier_tables = Some(open);
        database_barriers(&self.catalog, barriers);
    }

    /// The table versions not final yet (of the tables in `scope`, all without one): their
    /// directories are listed in phase B.
    pub(super) fn open_versions(&self, scope: Option<&Scope>) -> Vec<TableVersion> {
        // In name order either way (a scope orders as the catalog does); a scope's tables are
        // looked up, not found by a walk of every table.
        let tables = self.scoped_tables(scope);
        tables
            .flat_map(|(n, t)| {
                t.versions
                    .iter()
                    .filter(|(_, v)| !v.is_final)
                    .map(move |(v, _)| (n.clone(), *v))
            })
            .collect()
    }

    /// The catalog's tables in `scope` (every table without one), in name order.
    pub(super) fn scoped_tables<'a>(
        &'a self,
        scope: Option<&'a Scope>,
    ) -> Box<dyn Iterator<Item = (&'a TableName, &'a TableEntry)> + 'a> {
        match scope {
            None => Box::new(self.catalog.tables.iter()),
            Some(s) => Box::new(
                s.iter()
                    .filter_map(|n| self.catalog.tables.get_key_value(n)),
            ),
        }
    }

    /// Phase B: lists the data directories of the open versions, then promotes the settled
    /// ones. Returns how many directories entered the catalog.
    pub(super) async fn list_open_versions(
        &mut self,
        open_versions: &[TableVersion],
        listed: Instant,
    ) -> Result<u64> {
        let mut new_dirs = 0;
        for chunk in open_versions.chunks(WARM_CHUNK) {
            let warm = chunk
                .iter()
                .filter(|(name, version)| self.lists_version_dirs(name, *version))
                .filter_map(|(name, version)| DataDir::version_prefix(name, *version).ok())
                .map(|base| format!("{base}/"))
                .collect();
            self.up.warm_lists(warm).await;
            for (name, version) in chunk {
                for dir in self.list_version_dirs(name, *version).await? {
                    if self.note_dir(dir) && self.listing_lag.is_zero() {
                        new_dirs += 1;
                    }
                }
            }
        }
        self.up.forget_warm();
        Ok(new_dirs + self.promote(listed))
    }

    /// Phase B: lists the `meta/` of every directory not closed (of the tables in `scope`, all
    /// without one) and reads its index files.
    pub(super) async fn read_open_indexes(&mut self, scope: Option<&Scope>) -> Result<()> {
        let dirs = self.dirs_in(scope, |v, d| !v.is_final || !d.closed);
        for chunk in dirs.chunks(WARM_CHUNK) {
            let mut open = Vec::with_capacity(chunk.len());
            let mut metas = Vec::with_capacity(chunk.len());
            for d in chunk {
                if self.dir_entry(d).is_some_and(|e| e.closed) {
                    continue;
                }
                metas.push(format!("{}/{META_DIR}/", d.build()?));
                open.push(d);
            }
            self.up.warm_lists(metas.clone()).await;
            for (d, prefix) in open.iter().zip(&metas) {
                let (_, files) = self.up.list_dir(prefix).await?;
                for f in files {
                    let p = format!("{prefix}{f}");
                    if !f.ends_with(".index") {
                        continue;
                    }
                    let idx = IndexFile::parse(&p, &self.cfg).map_err(|e| self.mismatch(&p, e))?;
                    if let Some(e) = self.dir_entry_mut(d) {
                        let known = e.indexes.contains_key(&idx.dispatcher_id);
                        e.indexes.entry(idx.dispatcher_id).or_insert(0);
                        self.grew |= !known;
                    }
                }
            }
            let paths = open.iter().flat_map(|d| self.index_paths(d)).collect();
            self.up.warm_gets(paths).await;
            for d in open {
                self.read_indexes(d).await?;
            }
        }
        self.up.forget_warm();
        Ok(())
    }

    /// Marks what can no longer change, from sightings old enough for the listings above to
    /// be complete (all of them without a listing lag). `scope`: the tables a summary round
    /// refreshed (see `summary.rs` for what its conclusions may say of the others).
    pub(super) fn conclude(
        &mut self,
        listed: Instant,
        open_versions: &[TableVersion],
        barriers: Barriers,
        scope: Option<&Scope>,
    ) {
        let settled = self.settled_checkpoint(listed);
        let ckpt_date = settled
            .and_then(|c| DateDir::for_ts(self.cfg.date_separator, earliest_writer_clock(c)));
        let through = settled.unwrap_or(Ts::ZERO);
        let finals = self.final_versions(listed, through, open_versions);
        let barriers = self.settled_barriers(listed, through, barriers);
        self.mark_final_and_closed(&finals, ckpt_date, scope);
        self.complete_tables(barriers, scope);
        if let Some(scope) = scope.filter(|_| cfg!(debug_assertions)) {
            self.check_known_barriers_applied(listed, through, scope);
        }
        if !self.listing_lag.is_zero() {
            self.update_discovered_through(listed);
        }
    }

    /// The open versions that became final: a newer settled version at or below `through`
    /// (the checkpoint read before the listings) exists, and no directory of theirs waits to
    /// settle. A newer schema file alone is not enough: a sink restarted from a checkpoint
    /// below it writes the older version's rows again, into new files of the older version
    /// (see "Sink restarts" in the module doc).
    fn final_versions(
        &self,
        listed: Instant,
        through: Ts,
        open_versions: &[TableVersion],
    ) -> Vec<TableVersion> {
        // Walks the open versions (grouped by table, as `open_versions` makes them), not every
        // table's versions with a search of the open list for each: that was O(tables x open
        // versions) per round, the largest discovery item of a cold start at 10,000 tables.
        let mut finals: Vec<TableVersion> = Vec::new();
        let mut newest: Option<(&TableName, Option<Ts>)> = None;
        for (name, v) in open_versions {
            let Some(t) = self.catalog.tables.get(name) else {
                continue;
            };
            if !t.versions.contains_key(v) {
                continue;
            }
            let newest_settled = match newest {
                Some((n, s)) if n == name => s,
                _ => {
                    let s = t
                        .versions
                        .keys()
                        .rev()
                        .find(|x| **x <= through && self.version_settled(name, **x, listed))
                        .copied();
                    newest = Some((name, s));
                    s
                }
            };
            if newest_settled.is_none_or(|n| n <= *v) {
                continue;
            }
            if !waiting_versions(&self.unsettled, name).any(|w| w == *v) {
                finals.push((name.clone(), *v));
            }
        }
        finals
    }

    /// The barriers at or below `through` (the checkpoint read before the listings) whose
    /// evidence is settled and below which no directory waits. A barrier above it may still
    /// get rows below it from a restarted sink (see "Sink restarts" in the module doc).
    fn settled_barriers(&self, listed: Instant, through: Ts, mut barriers: Barriers) -> Barriers {
        barriers.tables.retain(|b| {
            b.version <= through
                && self.version_settled(&b.evidence, b.version, listed)
                && !self.unsettled_below(&b.table, b.version)
        });
        barriers.schemas.retain(|b| {
            b.version <= through && self.database_settled(&b.schema, b.version, listed)
        });
        barriers
    }

    /// Marks the final versions, and closes their directories and every dated directory
    /// before the settled checkpoint's date. A summary round (`scope`) whose date is the one
    /// every table's directories were last closed before walks only its tables: the others
    /// got no directory since (summary rounds add only the scope's) and no version of theirs
    /// became final (`finals` are the scope's).
    fn mark_final_and_closed(
        &mut self,
        finals: &[TableVersion],
        ckpt_date: Option<DateDir>,
        scope: Option<&Scope>,
    ) {
        let walk_scope = scope.filter(|_| self.closed_before == Some(ckpt_date));
        if walk_scope.is_none() {
            self.closed_before = Some(ckpt_date);
        }
        let catalog = Arc::make_mut(&mut self.catalog);
        for (name, v) in finals {
            if let Some(ve) = catalog
                .tables
                .get_mut(name)
                .and_then(|t| t.versions.get_mut(v))
            {
                ve.is_final = true;
            }
        }
        let close = |t: &mut TableEntry| {
            for ve in t.versions.values_mut() {
                for (dir, de) in ve.dirs.iter_mut() {
                    if let (Some(d), Some(c)) = (dir.date, ckpt_date) {
                        if d < c {
                            de.closed = true;
                        }
                    }
                    if ve.is_final {
                        de.closed = true;
                    }
                }
            }
        };
        match walk_scope {
            None => catalog.tables.values_mut().for_each(close),
            Some(s) => {
                for n in s {
                    if let Some(t) = catalog.tables.get_mut(n) {
                        close(t);
                    }
                }
            }
        }
    }

    /// Raises `complete_below` of every table a settled barrier covers (a database-level one
    /// covers the schema's tables that have no directory waiting below it). With a `scope`
    /// (a summary round), a table outside it only for a barrier at or below the checkpoint
    /// read: its index files were not read this round, and only below the checkpoint is every
    /// DML of it known to be in what earlier rounds read (`summary.rs`).
    ///
    /// A database-level barrier that every table of its schema was raised to when last
    /// applied (`db_barriers_met`) is applied to the scope's tables only in a summary round:
    /// the others are at or above it for good (`complete_below` never goes down), and a table
    /// new to the schema comes with a schema file of its own (it is in the scope). Each
    /// database-level file walked every table of its schema in every round.
    fn complete_tables(&mut self, barriers: Barriers, scope: Option<&Scope>) {
        let covers = covers(scope, self.last_read);
        // The fields apart (not `catalog_mut`, which borrows all of `self`): the waiting
        // directories are read while the catalog is changed.
        let unsettled = &self.unsettled;
        let met = &mut self.db_barriers_met;
        let catalog = Arc::make_mut(&mut self.catalog);
        let mut raise = |t: &mut TableEntry, v: Ts| {
            if t.complete_below < v {
                t.complete_below = v;
                self.grew = true;
            }
        };
        for b in barriers.tables {
            if !covers(&b.table, b.version) {
                continue;
            }
            if let Some(t) = catalog.tables.get_mut(&b.table) {
                raise(t, b.version);
            }
        }
        for SchemaBarrier { schema, version: v } in barriers.schemas {
            let key = (schema, v);
            let mut all_met = true;
            let mut apply = |name: &TableName, t: &mut TableEntry| {
                if !waiting_below(unsettled, name, v) && covers(name, v) {
                    raise(t, v);
                }
                all_met &= t.complete_below >= v;
            };
            match scope.filter(|_| met.contains(&key)) {
                Some(scope) => {
                    let of_schema = scope
                        .range(TableName::new(&key.0, "")..)
                        .take_while(|n| n.schema == key.0);
                    for name in of_schema {
                        if let Some(t) = catalog.tables.get_mut(name) {
                            apply(name, t);
                        }
                    }
                }
                None => {
                    for (name, t) in catalog.tables_of_mut(&key.0) {
                        apply(name, t);
                    }
                }
            }
            if all_met {
                met.insert(key);
            } else {
                met.remove(&key);
            }
        }
    }

    /// Debug builds, after a summary round's conclusions: every table's known barriers, and
    /// every database-level one over every table of its schema, applied as a round that
    /// walks every table applies them, raise no `complete_below` more (the round's scoped
    /// walks left out only tables with nothing to raise; see `add_known_barriers` and
    /// `complete_tables`).
    fn check_known_barriers_applied(&self, listed: Instant, through: Ts, scope: &Scope) {
        let cat = &self.catalog;
        let mut all = Barriers::default();
        table_barriers(cat, cat.tables.iter(), &mut all);
        database_barriers(cat, &mut all);
        let all = self.settled_barriers(listed, through, all);
        let covers = covers(Some(scope), self.last_read);
        for b in &all.tables {
            if let Some(t) = cat
                .tables
                .get(&b.table)
                .filter(|_| covers(&b.table, b.version))
            {
                assert!(
                    t.complete_below >= b.version,
                    "table `{}`: a known barrier at {} (from `{}`) was left out of a summary \
                     round (complete_below {})",
                    b.table,
                    b.version.0,
                    b.evidence,
                    t.complete_below.0
                );
            }
        }
        for b in &all.schemas {
            for (name, t) in cat.tables_of(&b.schema) {
                if !waiting_below(&self.unsettled, name, b.version) && covers(name, b.version) {
                    assert!(
                        t.complete_below >= b.version,
                        "table `{name}`: the database-level barrier at {} was left out of a \
                         summary round (complete_below {})",
                        b.version.0,
                        t.complete_below.0
                    );
                }
            }
        }
    }
}

/// Adds every database-level schema file's barrier (each still holds; `complete_tables`
/// skips the ones its schema's tables met).
fn database_barriers(cat: &Catalog, barriers: &mut Barriers) {
    for (schema, files) in &cat.databases {
        for v in files.keys() {
            barriers.schemas.push(SchemaBarrier {
                schema: schema.clone(),
                version: *v,
            });
        }
    }
}

/// Whether a barrier at `v` may raise `name`'s `complete_below` in a round of `scope` that
/// read the checkpoint `read` (see `Discovery::complete_tables`).
fn covers(scope: Option<&Scope>, read: Option<Ts>) -> impl Fn(&TableName, Ts) -> bool + '_ {
    let read = read.unwrap_or(Ts::ZERO);
    move |name, v| scope.is_none_or(|s| s.contains(name)) || v <= read
}

/// Adds the barriers the schema files of `tables` give that can still raise a
/// `complete_below` (see [`Discovery::add_known_barriers`]); returns the tables that gave one.
fn table_barriers<'a>(
    cat: &Catalog,
    tables: impl Iterator<Item = (&'a TableName, &'a TableEntry)>,
    barriers: &mut Barriers,
) -> Scope {
    let raises =
        |name: &TableName, v: Ts| cat.tables.get(name).is_some_and(|t| t.complete_below < v);
    let mut gave = Scope::new();
    for (name, t) in tables {
        let before = barriers.tables.len();
        for (v, ve) in &t.versions {
            let Some(schema) = &ve.schema else { continue };
            if t.complete_below < *v {
                barriers.table(name.clone(), *v, name.clone());
            }
            if let Some(src) = schema.rename_from.as_ref().filter(|s| raises(s, *v)) {
                barriers.table(src.clone(), *v, name.clone());
            }
        }
        if barriers.tables.len() > before {
            gave.insert(name.clone());
        }
    }
    gave
}

/// How far behind UTC a writer's clock may be when it names a date directory: TiCDC names it
/// by its local wall clock at flush time, and time zones reach UTC-12; a further 12 hours
/// cover a writer clock that lags the TSO.
const WRITER_CLOCK_BEHIND_UTC_MS: u64 = 24 * 3600 * 1000;

/// The earliest time any writer's clock may show once the checkpoint `c` was read: a date
/// directory before this time's UTC date gets no new file. Assumes no time zone.
fn earliest_writer_clock(c: Ts) -> Ts {
    Ts::from_parts(
        c.physical_ms().saturating_sub(WRITER_CLOCK_BEHIND_UTC_MS),
        0,
    )
}

impl Barriers {
    fn table(&mut self, table: TableName, version: Ts, evidence: TableName) {
        self.tables.push(TableBarrier {
            table,
            version,
            evidence,
        });
    }

    /// The barriers a schema file read for the first time in `schema`/`table`'s `meta/` sets.
    fn add_new(&mut self, schema: &str, table: &str, e: &SchemaEntry) {
        let v = e.file.table_version;
        if e.file.is_database_level() {
            self.schemas.push(SchemaBarrier {
                schema: schema.to_string(),
                version: v,
            });
        } else {
            let name = TableName::new(schema, table);
            if let Some(src) = &e.rename_from {
                self.table(src.clone(), v, name.clone());
            }
            self.table(name.clone(), v, name);
        }
    }
}
