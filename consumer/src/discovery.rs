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
use cdc_common::{TableName, Ts};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The upstream store with every call counted.
#[derive(Clone)]
pub struct Upstream {
    store: Arc<dyn ObjectStore>,
    metrics: Metrics,
}

impl Upstream {
    /// Wraps a store (rooted at the storage prefix).
    pub fn new(store: Arc<dyn ObjectStore>, metrics: Metrics) -> Upstream {
        Upstream { store, metrics }
    }

    fn path(p: &str) -> Result<Path> {
        Path::parse(p).map_err(|e| cdc_common::Error::path(p, e.to_string()).into())
    }

    /// Reads a whole object; `None` when it does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<Bytes>> {
        self.metrics.get_calls.inc();
        let p = Self::path(path)?;
        let r = match self.store.get(&p).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Error::storage(path, e)),
        };
        let b = r.bytes().await.map_err(|e| Error::storage(path, e))?;
        self.metrics.bytes_read.inc_by(b.len() as u64);
        Ok(Some(b))
    }

    /// Lists one directory level: `(sub-directory names, object names)`.
    pub async fn list_dir(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>)> {
        self.metrics.list_calls.inc();
        let p = if prefix.is_empty() {
            None
        } else {
            Some(Self::path(prefix.trim_end_matches('/'))?)
        };
        let r = self
            .store
            .list_with_delimiter(p.as_ref())
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
        self.metrics.list_calls.inc();
        self.store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
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
}

impl Catalog {
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
            ignored: HashSet::new(),
        }
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
        let mut barriers: Vec<(TableName, Ts)> = Vec::new();
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
                        self.version_mut(&f.dir.schema, &f.dir.table, f.dir.version)
                            .dirs
                            .entry(f.dir.clone())
                            .or_default();
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
                                barriers.push((TableName::new(&schema, &table), v));
                                if let Some(src) = &e.rename_from {
                                    barriers.push((src.clone(), v));
                                }
                            }
                        }
                    }
                }
            }
            // Every known schema and table also counts its newest barrier (seen in an earlier
            // round, still valid now).
            for (name, t) in &self.catalog.tables {
                if let Some((v, ve)) = t.versions.iter().next_back() {
                    if ve.schema.is_some() {
                        barriers.push((name.clone(), *v));
                    }
                }
                for (v, ve) in &t.versions {
                    if let Some(src) = ve.schema.as_ref().and_then(|s| s.rename_from.as_ref()) {
                        barriers.push((src.clone(), *v));
                    }
                }
            }
            for (schema, files) in &self.catalog.databases {
                if let Some(v) = files.keys().next_back() {
                    schema_barriers.push((schema.clone(), *v));
                }
            }
        }

        // Phase B: data directories and index files.
        if first {
            for (dir, dispatcher) in index_files {
                let ve = self.version_mut(&dir.schema, &dir.table, dir.version);
                ve.dirs
                    .entry(dir)
                    .or_default()
                    .indexes
                    .entry(dispatcher)
                    .or_insert(0);
            }
            let dirs: Vec<DataDir> = self.all_dirs(|_, _| true);
            for d in dirs {
                stats.new_dirs += 1;
                self.read_indexes(&d).await?;
            }
        } else {
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
                    let ve = self.version_mut(&name.schema, &name.table, *version);
                    if let std::collections::btree_map::Entry::Vacant(e) = ve.dirs.entry(dir) {
                        e.insert(DirEntry::default());
                        stats.new_dirs += 1;
                    }
                }
            }
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
            // Mark what can no longer change.
            let ckpt_date = self
                .catalog
                .checkpoint
                .and_then(|c| DateDir::for_ts(self.cfg.date_separator, c));
            for (name, t) in self.catalog.tables.iter_mut() {
                let newest = t.versions.keys().next_back().copied();
                for (v, ve) in t.versions.iter_mut() {
                    if Some(*v) != newest && open_versions.iter().any(|(n, x)| n == name && x == v)
                    {
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
            for (name, v) in barriers {
                if let Some(t) = self.catalog.tables.get_mut(&name) {
                    t.complete_below = t.complete_below.max(v);
                }
            }
            for (schema, v) in schema_barriers {
                for (name, t) in self.catalog.tables.iter_mut() {
                    if name.schema == schema {
                        t.complete_below = t.complete_below.max(v);
                    }
                }
            }
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
