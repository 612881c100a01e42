//! Discovery: what storage holds that the consumer has not applied yet, found with as few
//! object store calls as possible.
//!
//! # What a round reads
//!
//! ```text
//! phase 0   GET  metadata                                  checkpoint-ts
//! phase A   first round only: one recursive LIST of the root (schema and index files)
//!           later rounds:  LIST/ root            -> schemas      (delimiter listings,
//!                          LIST/ <schema>/       -> tables        never recursive)
//!                          LIST/ <schema>/meta/  -> database-level schema files
//!                          LIST/ <s>/<t>/meta/   -> table schema files (new versions)
//!                          GET  each schema file not seen before
//! phase B   for every version that is not final:   LIST/ <version>/ (and /<partition>/)
//!           for every data directory not closed:   LIST/ <dir>/meta/, GET each CDC*.index
//! ```
//!
//! A round with nothing new therefore costs, per table, one listing of its `meta/`, one of its
//! newest version directory, one of the active data directory's `meta/` and one small GET per
//! index file: O(tables), never a walk of the data files.
//!
//! # Invariants that make skipping safe
//!
//! - **Phase A before phase B.** The sink flushes every DML below a DDL's ts (data file, then
//!   index entry) before it writes the DDL's schema file. Every index read in phase B happens
//!   after the schema listings of phase A, so once a barrier at ts `V` was listed in phase A of
//!   a round, the index files read in phase B of that round cover every DML below `V` of the
//!   tables the barrier affects. [`TableEntry::complete_below`] records that.
//! - **Final versions.** A version with a newer version is *final* after one phase B that ran
//!   after the newer schema file was seen: its directories are never listed again.
//! - **Closed data directories.** A date directory whose date is before the checkpoint's date
//!   holds only rows at or below the checkpoint, which the sink flushed and indexed before it
//!   wrote the checkpoint; after one index read that follows that checkpoint read it is closed.
//! - The first round's recursive listing is not ordered against writes, so nothing is marked
//!   final, closed or complete from it; the second round (delimiter listings) does that.
//!
//! # Eventually consistent listings
//!
//! With a listing lag `D` ([`Discovery::with_listing_lag`]) a listing may leave out objects
//! written less than `D` ago; GETs stay consistent. Every conclusion above then rests only on
//! sightings at least `D` older than the listings it is drawn from (a listing started at `t`
//! shows everything written before `t - D`): a version is final, and a barrier completes its
//! tables, only once the newer version was first seen `D` before the phase B listings; a date
//! directory closes by a checkpoint read `D` before them; a newly listed data directory enters the
//! catalog only once it was first seen `D` ago and no younger-seen directory of an earlier date of
//! its version and partition waits (that one's stream must be read first), and while a table has
//! such waiting directories no barrier above them completes. With `D = 0` every sighting counts
//! at once, which is the behaviour described above.
//!
//! Transient storage errors are retried per call by [`Upstream`]; a call that still fails ends
//! the round (the catalog keeps what it learnt) and the next round starts over.
//!
//! Discovery only learns *what exists*; which files may be applied is decided by
//! [`crate::ordering`].
//!
//! # Hostile names
//!
//! `object_store` paths cannot hold `.`/`..` segments, empty segments, control characters
//! (NUL included) or non-UTF-8 bytes: a store that lists such a name fails the listing itself
//! (e.g. a local directory with non-UTF-8 bytes), which ends the round with a storage error
//! naming the object. A schema or table directory whose name is a valid path segment but not a
//! name the sink can write (see [`cdc_common::layout::validate_name`]: longer than 255 bytes)
//! cannot hold anything the sink wrote: it is ignored with one warning naming it.

use crate::config::TableFilter;
use crate::ddl;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use bytes::Bytes;
use cdc_common::layout::{
    parse_file_name, Checkpoint, DataDir, DataFile, DateDir, IndexFile, LayoutConfig,
    SchemaFilePath, METADATA_FILE, META_DIR,
};
use cdc_common::options::DateSeparator;
use cdc_common::schema_file::SchemaFile;
use cdc_common::storage::get_if_exists;
use cdc_common::{TableName, Ts};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStore;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Attempts per storage call before the round fails: rides out a transient error (a 503, a
/// reset connection) without restarting the round's discovery; a store that stays down still
/// fails the round quickly, and the next round tries again.
pub const DEFAULT_STORAGE_ATTEMPTS: u32 = 4;
/// Backoff before the first retry of a storage call; doubles per retry (50, 100, 200 ms).
pub const DEFAULT_STORAGE_BACKOFF: Duration = Duration::from_millis(50);

/// The upstream store with every call counted, and transient errors retried.
#[derive(Clone)]
pub struct Upstream {
    store: Arc<dyn ObjectStore>,
    metrics: Metrics,
    attempts: u32,
    backoff: Duration,
}

impl Upstream {
    /// Wraps a store (rooted at the storage prefix).
    pub fn new(store: Arc<dyn ObjectStore>, metrics: Metrics) -> Upstream {
        Upstream {
            store,
            metrics,
            attempts: DEFAULT_STORAGE_ATTEMPTS,
            backoff: DEFAULT_STORAGE_BACKOFF,
        }
    }

    /// Sets the attempts per call (at least 1) and the first backoff.
    pub fn with_retry(mut self, attempts: u32, backoff: Duration) -> Upstream {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    fn path(p: &str) -> Result<Path> {
        Path::parse(p).map_err(|e| cdc_common::Error::path(p, e.to_string()).into())
    }

    /// Runs `f` until it succeeds, fails with an error that is not retryable, or runs out of
    /// attempts; each retry counts in `cdc_consumer_errors_total{kind="storage-retry"}`.
    async fn retry<T, F, Fut>(&self, what: &str, mut f: F) -> object_store::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>>,
    {
        let mut backoff = self.backoff;
        let mut attempt = 1;
        loop {
            match f().await {
                Err(e) if attempt < self.attempts && cdc_common::storage::is_retryable(&e) => {
                    tracing::debug!(object = what, attempt, error = %e, "storage error, retrying");
                    self.metrics
                        .errors
                        .with_label_values(&["storage-retry"])
                        .inc();
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    /// Reads a whole object; `None` when it does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<Bytes>> {
        let p = Self::path(path)?;
        let r = self
            .retry(path, || async {
                self.metrics.get_calls.inc();
                get_if_exists(self.store.as_ref(), &p).await
            })
            .await
            .map_err(|e| Error::storage(path, e))?;
        if let Some(b) = &r {
            self.metrics.bytes_read.inc_by(b.len() as u64);
        }
        Ok(r)
    }

    /// Lists one directory level: `(sub-directory names, object names)`.
    pub async fn list_dir(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>)> {
        let p = if prefix.is_empty() {
            None
        } else {
            Some(Self::path(prefix.trim_end_matches('/'))?)
        };
        let r = self
            .retry(prefix, || {
                self.metrics.list_calls.inc();
                self.store.list_with_delimiter(p.as_ref())
            })
            .await
            .map_err(|e| Error::storage(prefix, e))?;
        let last = |p: &Path| p.filename().map(str::to_string);
        Ok((
            r.common_prefixes.iter().filter_map(last).collect(),
            r.objects.iter().filter_map(|o| last(&o.location)).collect(),
        ))
    }

    /// Lists every object under the root (first round only).
    pub async fn list_all(&self) -> Result<Vec<String>> {
        self.retry("", || {
            self.metrics.list_calls.inc();
            self.store
                .list(None)
                .map_ok(|m| m.location.to_string())
                .try_collect()
        })
        .await
        .map_err(|e| Error::storage("", e))
    }
}

/// A schema file read from storage.
#[derive(Clone, Debug)]
pub struct SchemaEntry {
    /// Its path.
    pub path: String,
    /// Its content.
    pub file: Arc<SchemaFile>,
    /// For RENAME TABLE (Type 14): the table this one was renamed from.
    pub rename_from: Option<TableName>,
}

/// A data directory and its writers' newest indexed files.
#[derive(Clone, Debug, Default)]
pub struct DirEntry {
    /// Newest indexed file index per dispatcher (`None` = the single writer `CDC.index`).
    pub indexes: BTreeMap<Option<String>, u64>,
    /// No new file can appear in it (see the module doc).
    pub closed: bool,
}

/// One version of a table.
#[derive(Clone, Debug, Default)]
pub struct VersionEntry {
    /// Its schema file (absent when data directories were found without one: a warning).
    pub schema: Option<SchemaEntry>,
    /// Its data directories.
    pub dirs: BTreeMap<DataDir, DirEntry>,
    /// A newer version exists and this one was listed after it appeared.
    pub is_final: bool,
}

/// What discovery knows of one table.
#[derive(Clone, Debug, Default)]
pub struct TableEntry {
    /// Versions by table version.
    pub versions: BTreeMap<Ts, VersionEntry>,
    /// Every DML of this table with a commit ts below this is indexed in `versions` (a barrier
    /// at this ts that affects the table was seen before the index files were read).
    pub complete_below: Ts,
}

/// Everything discovery has learnt.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// The sink's checkpoint-ts (`None` before the `metadata` file exists).
    pub checkpoint: Option<Ts>,
    /// Tables.
    pub tables: BTreeMap<TableName, TableEntry>,
    /// Database-level schema files by schema and version.
    pub databases: BTreeMap<String, BTreeMap<Ts, SchemaEntry>>,
    /// With a listing lag: every data file with rows at or below this ts is in the catalog
    /// (a checkpoint read a lag before the last listings, and below any directory still
    /// waiting to settle). `None`: listings are trusted, everything up to the checkpoint is.
    pub discovered_through: Option<Ts>,
}

impl Catalog {
    /// The ts up to which the catalog is complete and rows may be reported applied: the
    /// checkpoint, or less while listings lag (see [`Catalog::discovered_through`]).
    pub fn complete_through(&self) -> Ts {
        let c = self.checkpoint.unwrap_or(Ts::ZERO);
        self.discovered_through.map_or(c, |d| d.min(c))
    }

    /// The path of a data file.
    pub fn data_file_path(
        cfg: &LayoutConfig,
        dir: &DataDir,
        dispatcher: &Option<String>,
        index: u64,
    ) -> Result<String> {
        Ok(DataFile {
            dir: dir.clone(),
            dispatcher_id: dispatcher.clone(),
            index,
        }
        .build(cfg)?)
    }
}

/// Counts of one discovery round, for the audit record.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DiscoveryStats {
    /// List calls made.
    pub list_calls: u64,
    /// Get calls made.
    pub get_calls: u64,
    /// Schema files seen for the first time.
    pub new_schema_files: u64,
    /// Data directories seen for the first time.
    pub new_dirs: u64,
    /// Whether the round used the recursive listing (first round only).
    pub full_listing: bool,
}

/// Incremental discovery state.
pub struct Discovery {
    up: Upstream,
    cfg: LayoutConfig,
    filter: TableFilter,
    catalog: Catalog,
    rounds: u64,
    warnings: Vec<String>,
    /// Listings may leave out objects younger than this (see "Eventually consistent listings").
    listing_lag: Duration,
    /// When each table version (`Some(table)`) or database-level schema file (`None`) was
    /// first seen.
    first_seen: HashMap<(String, Option<String>, Ts), Instant>,
    /// Checkpoint-ts values read, with when; pruned to the newest one older than the lag.
    checkpoints: VecDeque<(Instant, Ts)>,
    /// Data directories listed but not yet in the catalog (younger sightings than the lag),
    /// with when each was first seen.
    unsettled: BTreeMap<DataDir, Instant>,
    /// Directories ignored for their name, warned about once.
    ignored: HashSet<String>,
}

impl Discovery {
    /// Discovery over `up`, reading paths with `cfg`, keeping the tables `filter` accepts.
    pub fn new(up: Upstream, cfg: LayoutConfig, filter: TableFilter) -> Discovery {
        Discovery {
            up,
            cfg,
            filter,
            catalog: Catalog::default(),
            rounds: 0,
            warnings: Vec::new(),
            listing_lag: Duration::ZERO,
            first_seen: HashMap::new(),
            checkpoints: VecDeque::new(),
            unsettled: BTreeMap::new(),
            ignored: HashSet::new(),
        }
    }

    /// Tolerates listings that leave out objects written less than `lag` ago (eventually
    /// consistent listings): no conclusion is drawn from a listing about anything seen less than
    /// `lag` before it. Zero (the default) trusts listings, as S3, GCS, Azure Blob and local
    /// directories are strongly consistent.
    pub fn with_listing_lag(mut self, lag: Duration) -> Discovery {
        self.listing_lag = lag;
        self
    }

    /// True when something first seen at `seen` is old enough that a listing started at
    /// `listed` shows everything written before it.
    fn settled(&self, seen: Instant, listed: Instant) -> bool {
        self.listing_lag.is_zero() || seen + self.listing_lag <= listed
    }

    fn version_settled(&self, name: &TableName, v: Ts, listed: Instant) -> bool {
        if self.listing_lag.is_zero() {
            return true;
        }
        let key = (name.schema.clone(), Some(name.table.clone()), v);
        self.first_seen
            .get(&key)
            .is_some_and(|at| self.settled(*at, listed))
    }

    fn database_settled(&self, schema: &str, v: Ts, listed: Instant) -> bool {
        if self.listing_lag.is_zero() {
            return true;
        }
        let key = (schema.to_string(), None, v);
        self.first_seen
            .get(&key)
            .is_some_and(|at| self.settled(*at, listed))
    }

    /// True when a listed directory of `name` below version `v` is not in the catalog yet.
    fn unsettled_below(&self, name: &TableName, v: Ts) -> bool {
        self.unsettled
            .keys()
            .any(|d| d.schema == name.schema && d.table == name.table && d.version < v)
    }

    /// The largest checkpoint-ts read long enough before `listed` (all of it, without a lag).
    fn settled_checkpoint(&mut self, listed: Instant) -> Option<Ts> {
        let lag = self.listing_lag;
        let ok = |at: Instant| lag.is_zero() || at + lag <= listed;
        // Keep the newest settled entry and everything after it.
        while self.checkpoints.len() > 1 && ok(self.checkpoints[1].0) {
            self.checkpoints.pop_front();
        }
        self.checkpoints
            .iter()
            .filter(|(at, _)| ok(*at))
            .map(|(_, ts)| *ts)
            .max()
    }

    /// Records a data directory found by a listing: straight into the catalog without a lag,
    /// else held until it is settled (see [`Discovery::promote`]). True when it is new.
    fn note_dir(&mut self, dir: DataDir) -> bool {
        if self.dir_entry(&dir).is_some() || self.unsettled.contains_key(&dir) {
            return false;
        }
        if self.listing_lag.is_zero() {
            let (schema, table, version) = (dir.schema.clone(), dir.table.clone(), dir.version);
            self.version_mut(&schema, &table, version)
                .dirs
                .insert(dir, DirEntry::default());
        } else {
            self.unsettled.insert(dir, Instant::now());
        }
        true
    }

    /// Moves settled directories into the catalog, except one with an unsettled directory of an
    /// earlier date in the same version and partition (its stream must read that one first).
    /// Returns how many moved.
    fn promote(&mut self, listed: Instant) -> u64 {
        let young: Vec<DataDir> = self
            .unsettled
            .iter()
            .filter(|(_, at)| !self.settled(**at, listed))
            .map(|(d, _)| d.clone())
            .collect();
        let ready: Vec<DataDir> = self
            .unsettled
            .iter()
            .filter(|(d, at)| {
                self.settled(**at, listed)
                    && !young.iter().any(|y| {
                        y.schema == d.schema
                            && y.table == d.table
                            && y.version == d.version
                            && y.partition_id == d.partition_id
                            && y.date < d.date
                    })
            })
            .map(|(d, _)| d.clone())
            .collect();
        for d in &ready {
            self.unsettled.remove(d);
            let (schema, table, version) = (d.schema.clone(), d.table.clone(), d.version);
            self.version_mut(&schema, &table, version)
                .dirs
                .insert(d.clone(), DirEntry::default());
        }
        ready.len() as u64
    }

    /// What is known so far.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The upstream store (for reading data files).
    pub fn upstream(&self) -> &Upstream {
        &self.up
    }

    /// The layout options.
    pub fn layout(&self) -> &LayoutConfig {
        &self.cfg
    }

    /// Takes the non-fatal warnings gathered since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn warn(&mut self, w: String) {
        tracing::warn!("{w}");
        self.warnings.push(w);
    }

    /// True (after one warning per directory) when `name`, the schema or table directory
    /// `dir`, is not a name the sink can write, so nothing under it belongs to the layout.
    fn ignore_bad_name(&mut self, dir: &str, name: &str) -> bool {
        let Err(e) = cdc_common::layout::validate_name(name) else {
            return false;
        };
        if self.ignored.insert(dir.to_string()) {
            self.warn(format!(
                "ignoring `{}/` and everything under it (not part of the layout): {e}",
                dir.escape_debug()
            ));
        }
        true
    }

    /// Runs one discovery round (see the module doc). On error the catalog keeps what it had
    /// learnt before the failing call; nothing is marked final or closed.
    pub async fn round(&mut self) -> Result<DiscoveryStats> {
        let lists0 = self.up.metrics.list_calls.get();
        let gets0 = self.up.metrics.get_calls.get();
        let mut stats = DiscoveryStats::default();

        // Phase 0: the checkpoint.
        let checkpoint = match self.up.get(METADATA_FILE).await? {
            Some(b) => Some(Checkpoint::parse(METADATA_FILE, &b)?.checkpoint_ts),
            None => None,
        };
        if let (Some(old), Some(new)) = (self.catalog.checkpoint, checkpoint) {
            if new < old {
                self.warn(format!(
                    "checkpoint-ts went back from {old} to {new}; keeping {old}"
                ));
            }
        }
        if let Some(c) = checkpoint {
            self.checkpoints.push_back((Instant::now(), c));
        }
        if checkpoint.is_none() {
            self.warn(format!(
                "no `{METADATA_FILE}` checkpoint file yet: nothing can be applied"
            ));
        }
        self.catalog.checkpoint = match (self.catalog.checkpoint, checkpoint) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => b.or(a),
        };

        let first = self.rounds == 0;
        // Barriers seen in phase A: (table, version) pairs whose earlier DML is now complete
        // after phase B.
        // Each barrier with the table whose schema file is its evidence (for RENAME TABLE the
        // new name's file is the source table's barrier).
        let mut barriers: Vec<(TableName, Ts, TableName)> = Vec::new();
        let mut schema_barriers: Vec<(String, Ts)> = Vec::new();
        let mut index_files: Vec<(DataDir, Option<String>)> = Vec::new();
        if first {
            stats.full_listing = true;
            let all = self.up.list_all().await?;
            let mut schema_paths = Vec::new();
            for p in all {
                if p == METADATA_FILE {
                    continue;
                }
                let mut segs = p.split('/');
                if let (Some(schema), Some(table), Some(_)) =
                    (segs.next(), segs.next(), segs.next())
                {
                    if self.ignore_bad_name(schema, schema)
                        || (table != META_DIR
                            && self.ignore_bad_name(&format!("{schema}/{table}"), table))
                    {
                        continue;
                    }
                }
                let name = p.rsplit('/').next().unwrap_or("");
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
            for p in schema_paths {
                if self.note_schema_file(&p, &mut stats).await?.is_some() {
                    stats.new_schema_files += 1;
                }
            }
        } else {
            let (schemas, _) = self.up.list_dir("").await?;
            for schema in schemas {
                if !self.filter.matches_schema(&schema) || self.ignore_bad_name(&schema, &schema) {
                    continue;
                }
                let (tables, _) = self.up.list_dir(&format!("{schema}/")).await?;
                for table in tables {
                    if table != META_DIR
                        && self.ignore_bad_name(&format!("{schema}/{table}"), &table)
                    {
                        continue;
                    }
                    let prefix = if table == META_DIR {
                        format!("{schema}/{META_DIR}/")
                    } else if self.filter.matches(&schema, &table) {
                        format!("{schema}/{table}/{META_DIR}/")
                    } else {
                        continue;
                    };
                    let (_, files) = self.up.list_dir(&prefix).await?;
                    for f in files {
                        let p = format!("{prefix}{f}");
                        if !f.starts_with("schema_") {
                            continue;
                        }
                        if let Some(e) = self.note_schema_file(&p, &mut stats).await? {
                            stats.new_schema_files += 1;
                            let v = e.file.table_version;
                            if e.file.is_database_level() {
                                schema_barriers.push((schema.clone(), v));
                            } else {
                                let name = TableName::new(&schema, &table);
                                if let Some(src) = &e.rename_from {
                                    barriers.push((src.clone(), v, name.clone()));
                                }
                                barriers.push((name.clone(), v, name));
                            }
                        }
                    }
                }
            }
            // Every known schema and table also counts its barriers seen in earlier rounds
            // (still valid now; the newest one that is settled wins).
            for (name, t) in &self.catalog.tables {
                for (v, ve) in &t.versions {
                    let Some(schema) = &ve.schema else { continue };
                    barriers.push((name.clone(), *v, name.clone()));
                    if let Some(src) = &schema.rename_from {
                        barriers.push((src.clone(), *v, name.clone()));
                    }
                }
            }
            for (schema, files) in &self.catalog.databases {
                for v in files.keys() {
                    schema_barriers.push((schema.clone(), *v));
                }
            }
        }

        // Phase B: data directories and index files.
        if first {
            for (dir, dispatcher) in index_files {
                self.version_mut(&dir.schema, &dir.table, dir.version);
                self.note_dir(dir.clone());
                // With a listing lag the directory waits (unsettled); its index files are
                // listed again once it is promoted.
                if let Some(e) = self.dir_entry_mut(&dir) {
                    e.indexes.entry(dispatcher).or_insert(0);
                }
            }
            let dirs: Vec<DataDir> = self.all_dirs(|_, _| true);
            for d in dirs {
                stats.new_dirs += 1;
                self.read_indexes(&d).await?;
            }
        } else {
            // Every listing below starts after `listed`: what was first seen at least the
            // listing lag before it, and everything written before that, shows in them.
            let listed = Instant::now();
            let open_versions: Vec<(TableName, Ts)> = self
                .catalog
                .tables
                .iter()
                .flat_map(|(n, t)| {
                    t.versions
                        .iter()
                        .filter(|(_, v)| !v.is_final)
                        .map(move |(v, _)| (n.clone(), *v))
                })
                .collect();
            for (name, version) in &open_versions {
                for dir in self.list_version_dirs(name, *version).await? {
                    if self.note_dir(dir) && self.listing_lag.is_zero() {
                        stats.new_dirs += 1;
                    }
                }
            }
            stats.new_dirs += self.promote(listed);
            let dirs = self.all_dirs(|v, d| !v.is_final || !d.closed);
            for d in dirs {
                if self.dir_entry(&d).is_some_and(|e| e.closed) {
                    continue;
                }
                let prefix = format!("{}/{META_DIR}/", d.build()?);
                let (_, files) = self.up.list_dir(&prefix).await?;
                for f in files {
                    let p = format!("{prefix}{f}");
                    if !f.ends_with(".index") {
                        continue;
                    }
                    let idx = IndexFile::parse(&p, &self.cfg).map_err(|e| self.mismatch(&p, e))?;
                    if let Some(e) = self.dir_entry_mut(&d) {
                        e.indexes.entry(idx.dispatcher_id).or_insert(0);
                    }
                }
                self.read_indexes(&d).await?;
            }
            // Mark what can no longer change, from sightings old enough for the listings above
            // to be complete (all of them without a listing lag).
            let ckpt_date = self
                .settled_checkpoint(listed)
                .and_then(|c| DateDir::for_ts(self.cfg.date_separator, c));
            let mut finals: Vec<(TableName, Ts)> = Vec::new();
            for (name, t) in &self.catalog.tables {
                let newest_settled = t
                    .versions
                    .keys()
                    .rev()
                    .find(|v| self.version_settled(name, **v, listed))
                    .copied();
                for v in t.versions.keys() {
                    let newer = newest_settled.is_some_and(|n| n > *v);
                    let open = open_versions.iter().any(|(n, x)| n == name && x == v);
                    let waiting = self.unsettled.keys().any(|d| {
                        d.schema == name.schema && d.table == name.table && d.version == *v
                    });
                    if newer && open && !waiting {
                        finals.push((name.clone(), *v));
                    }
                }
            }
            barriers.retain(|(n, v, evidence)| {
                self.version_settled(evidence, *v, listed) && !self.unsettled_below(n, *v)
            });
            schema_barriers.retain(|(schema, v)| self.database_settled(schema, *v, listed));
            let unsettled_tables: Vec<(TableName, Ts)> = self
                .unsettled
                .keys()
                .map(|d| (TableName::new(&d.schema, &d.table), d.version))
                .collect();
            for (name, t) in self.catalog.tables.iter_mut() {
                for (v, ve) in t.versions.iter_mut() {
                    if finals.iter().any(|(n, x)| n == name && x == v) {
                        ve.is_final = true;
                    }
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
            }
            for (name, v, _) in barriers {
                if let Some(t) = self.catalog.tables.get_mut(&name) {
                    t.complete_below = t.complete_below.max(v);
                }
            }
            for (schema, v) in schema_barriers {
                for (name, t) in self.catalog.tables.iter_mut() {
                    let waiting = unsettled_tables.iter().any(|(n, x)| n == name && *x < v);
                    if name.schema == schema && !waiting {
                        t.complete_below = t.complete_below.max(v);
                    }
                }
            }
            if !self.listing_lag.is_zero() {
                // Rows of a waiting directory are at or above its version.
                let settled = self.settled_checkpoint(listed).unwrap_or(Ts::ZERO);
                let through = self
                    .unsettled
                    .keys()
                    .map(|d| Ts(d.version.0.saturating_sub(1)))
                    .fold(settled, Ts::min);
                self.catalog.discovered_through = Some(through);
            }
        }
        if first && !self.listing_lag.is_zero() {
            // The first round's listing proves nothing yet.
            self.catalog.discovered_through = Some(Ts::ZERO);
        }
        self.rounds += 1;
        stats.list_calls = self.up.metrics.list_calls.get() - lists0;
        stats.get_calls = self.up.metrics.get_calls.get() - gets0;
        Ok(stats)
    }

    fn all_dirs(&self, keep: impl Fn(&VersionEntry, &DirEntry) -> bool) -> Vec<DataDir> {
        self.catalog
            .tables
            .values()
            .flat_map(|t| t.versions.values())
            .flat_map(|v| v.dirs.iter().filter(|(_, d)| keep(v, d)).map(|(k, _)| k))
            .cloned()
            .collect()
    }

    fn version_mut(&mut self, schema: &str, table: &str, version: Ts) -> &mut VersionEntry {
        self.first_seen
            .entry((schema.to_string(), Some(table.to_string()), version))
            .or_insert_with(Instant::now);
        self.catalog
            .tables
            .entry(TableName::new(schema, table))
            .or_default()
            .versions
            .entry(version)
            .or_default()
    }

    fn dir_entry(&self, d: &DataDir) -> Option<&DirEntry> {
        self.catalog
            .tables
            .get(&TableName::new(&d.schema, &d.table))?
            .versions
            .get(&d.version)?
            .dirs
            .get(d)
    }

    fn dir_entry_mut(&mut self, d: &DataDir) -> Option<&mut DirEntry> {
        self.catalog
            .tables
            .get_mut(&TableName::new(&d.schema, &d.table))?
            .versions
            .get_mut(&d.version)?
            .dirs
            .get_mut(d)
    }

    /// Reads every index file of a directory and records the newest file index.
    async fn read_indexes(&mut self, d: &DataDir) -> Result<()> {
        let dispatchers: Vec<Option<String>> = match self.dir_entry(d) {
            Some(e) => e.indexes.keys().cloned().collect(),
            None => return Ok(()),
        };
        for dispatcher in dispatchers {
            let f = IndexFile {
                dir: d.clone(),
                dispatcher_id: dispatcher.clone(),
            };
            let path = f.build()?;
            let Some(bytes) = self.up.get(&path).await? else {
                continue; // listed, then removed (cleanup): nothing new from it
            };
            self.check_index_content(&path, &bytes)?;
            let n = f.parse_content(&path, &bytes, &self.cfg)?;
            let old = self
                .dir_entry(d)
                .and_then(|e| e.indexes.get(&dispatcher).copied())
                .unwrap_or(0);
            if n < old {
                self.warn(format!(
                    "index file `{path}` went back from file {old} to {n}; keeping {old}"
                ));
            } else if let Some(e) = self.dir_entry_mut(d) {
                e.indexes.insert(dispatcher, n);
            }
        }
        Ok(())
    }

    /// Turns an index file whose data file name disagrees with the options into a
    /// [`Error::Mismatch`] that says what was expected and what was found.
    fn check_index_content(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(()); // parse_content reports it as corrupt
        };
        let name = text.trim_end_matches(['\n', '\r']);
        let Some((stem, ext)) = name.rsplit_once('.') else {
            return Ok(());
        };
        if ext != self.cfg.protocol.extension() {
            return Err(Error::Mismatch {
                path: path.into(),
                expected: format!(
                    "protocol {} (`.{}` data files)",
                    self.cfg.protocol.name(),
                    self.cfg.protocol.extension()
                ),
                found: format!("index names `{name}`"),
            });
        }
        let digits = stem.rsplit('_').next().unwrap_or(stem);
        let digits = digits.strip_prefix("CDC").unwrap_or(digits);
        if digits.bytes().all(|b| b.is_ascii_digit()) && digits.len() != self.cfg.file_index_width {
            return Err(Error::Mismatch {
                path: path.into(),
                expected: format!("file-index-width={}", self.cfg.file_index_width),
                found: format!("`{name}` with a {}-digit index", digits.len()),
            });
        }
        let _ = parse_file_name(path, name, &self.cfg);
        Ok(())
    }

    fn mismatch(&self, path: &str, e: cdc_common::Error) -> Error {
        Error::Mismatch {
            path: path.into(),
            expected: format!(
                "a path of protocol={} file-index-width={} date-separator={} \
                 enable-partition-separator={}",
                self.cfg.protocol.name(),
                self.cfg.file_index_width,
                self.cfg.date_separator.name(),
                self.cfg.enable_partition_separator
            ),
            found: e.to_string(),
        }
    }

    /// Reads and verifies a schema file not seen before; `None` when already known.
    async fn note_schema_file(
        &mut self,
        path: &str,
        _stats: &mut DiscoveryStats,
    ) -> Result<Option<SchemaEntry>> {
        let sp = SchemaFilePath::parse(path)?;
        let known = match &sp.table {
            Some(t) => self
                .catalog
                .tables
                .get(&TableName::new(&sp.schema, t))
                .and_then(|e| e.versions.get(&sp.version))
                .and_then(|v| v.schema.as_ref())
                .map(|s| s.path.clone()),
            None => self
                .catalog
                .databases
                .get(&sp.schema)
                .and_then(|m| m.get(&sp.version))
                .map(|s| s.path.clone()),
        };
        if let Some(k) = known {
            if k != path {
                self.warn(format!(
                    "two schema files for one version: `{k}` (used) and `{path}` (ignored)"
                ));
            }
            return Ok(None);
        }
        match &sp.table {
            Some(t) if !self.filter.matches(&sp.schema, t) => return Ok(None),
            None if !self.filter.matches_schema(&sp.schema) => return Ok(None),
            _ => {}
        }
        let Some(bytes) = self.up.get(path).await? else {
            return Ok(None);
        };
        let file = SchemaFile::parse_verified(path, &bytes)?;
        check_column_names(path, &file)?;
        let rename_from = if file.ddl_type == ddl::ACTION_RENAME_TABLE {
            ddl::rename_source(&file)
        } else {
            None
        };
        let entry = SchemaEntry {
            path: path.to_string(),
            file: Arc::new(file),
            rename_from,
        };
        match &sp.table {
            Some(t) => {
                let t = t.clone();
                self.version_mut(&sp.schema, &t, sp.version).schema = Some(entry.clone());
            }
            None => {
                self.first_seen
                    .entry((sp.schema.clone(), None, sp.version))
                    .or_insert_with(Instant::now);
                self.catalog
                    .databases
                    .entry(sp.schema.clone())
                    .or_default()
                    .insert(sp.version, entry.clone());
            }
        }
        Ok(Some(entry))
    }

    /// Finds the data directories of one table version with delimiter listings.
    async fn list_version_dirs(&mut self, name: &TableName, version: Ts) -> Result<Vec<DataDir>> {
        let base = DataDir::version_prefix(name, version)?;
        let (children, _) = self.up.list_dir(&format!("{base}/")).await?;
        let mut out = Vec::new();
        let sep = self.cfg.date_separator;
        let dir = |partition_id, date| DataDir {
            schema: name.schema.clone(),
            table: name.table.clone(),
            version,
            partition_id,
            date,
        };
        for c in children {
            if c == META_DIR {
                if sep == DateSeparator::None {
                    out.push(dir(None, None));
                    continue;
                }
                return Err(Error::Mismatch {
                    path: format!("{base}/{META_DIR}/"),
                    expected: format!(
                        "date-separator={} (index files under date directories)",
                        sep.name()
                    ),
                    found: "index files directly under the table version directory".into(),
                });
            }
            if sep != DateSeparator::None {
                if let Some(d) = DateDir::parse(sep, &c) {
                    out.push(dir(None, Some(d)));
                    continue;
                }
            }
            let pid = c
                .parse::<i64>()
                .ok()
                .filter(|_| self.cfg.enable_partition_separator);
            let Some(pid) = pid else {
                return Err(Error::Mismatch {
                    path: format!("{base}/{c}/"),
                    expected: format!(
                        "{} directories under the table version{}",
                        match sep {
                            DateSeparator::None => "no date".to_string(),
                            s => format!("date-separator={} date", s.name()),
                        },
                        if self.cfg.enable_partition_separator {
                            " or partition ids"
                        } else {
                            ""
                        }
                    ),
                    found: format!("directory `{c}`"),
                });
            };
            if sep == DateSeparator::None {
                out.push(dir(Some(pid), None));
                continue;
            }
            let (dates, _) = self.up.list_dir(&format!("{base}/{c}/")).await?;
            for d in dates {
                match DateDir::parse(sep, &d) {
                    Some(date) => out.push(dir(Some(pid), Some(date))),
                    None => {
                        return Err(Error::Mismatch {
                            path: format!("{base}/{c}/{d}/"),
                            expected: format!("date-separator={} date directories", sep.name()),
                            found: format!("directory `{d}`"),
                        })
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Rejects a schema file whose column names no downstream can hold: empty, containing NUL, or
/// the same name twice. Every other character is kept and quoted downstream.
fn check_column_names(path: &str, file: &SchemaFile) -> Result<()> {
    let bad = |reason: String| -> Error {
        cdc_common::Error::corrupt(path, cdc_common::error::Position::None, reason).into()
    };
    let mut seen = HashSet::new();
    for (i, c) in file.columns.iter().enumerate() {
        if c.name.is_empty() {
            return Err(bad(format!("column {} has an empty name", i + 1)));
        }
        if c.name.contains('\0') {
            return Err(bad(format!(
                "column {} name `{}` contains NUL",
                i + 1,
                c.name.escape_debug()
            )));
        }
        if !seen.insert(c.name.as_str()) {
            return Err(bad(format!(
                "column name `{}` appears twice",
                c.name.escape_debug()
            )));
        }
    }
    Ok(())
}
