//! The replay loop: discovery, then apply in the order [`crate::ordering`] allows, recording
//! progress with every unit.
//!
//! # Invariants
//!
//! - A unit (one data file, the part of a file at or below the checkpoint, or one DDL) and the
//!   progress rows covering it are committed together; the in-memory [`Progress`] is updated only
//!   after the commit returned. On any error the round ends and progress stays where the last
//!   commit left it.
//! - Rows with a commit ts above the checkpoint-ts are never applied; rows at or below the
//!   stream's recorded commit ts are skipped (they were applied, or are a sink replay).
//! - Rows without a commit ts (csv without `include-commit-ts`, canal-json without the TiDB
//!   extension) are applied once their file is indexed: the sink indexes a file only after it is
//!   durable, but such rows cannot be held back to the checkpoint.
//! - A data file that does not decode ends the round (`--on-bad-file stop`), or, under
//!   `quarantine`, is recorded in the quarantine table in the same transaction that moves its
//!   stream's progress past it, with none of its rows applied (see [`crate::quarantine`]).

use crate::backend::{Downstream, Unit};
use crate::ddl::{self, DdlOp};
use crate::decode::Decoder;
use crate::discovery::{Catalog, Discovery, SchemaEntry, Upstream};
use crate::error::{Error, Result};
use crate::freshness::{now_ms, Health, RecentError, RoundRecord, StreamProgress, TableProgress};
use crate::metrics::Metrics;
use crate::ordering::{count_pending, schema_step, table_steps, Step, Wait};
use crate::plan::plan_rows;
use crate::progress::{date_text, Position, Progress, ProgressKey, DDL_STREAM};
use crate::quarantine::{is_quarantinable, BadFilePolicy, QuarantinedFile, HEALTH_QUARANTINE_LIST};
use crate::secrets::Secrets;
use cdc_common::codec::{DecodedRow, TableCodec};
use cdc_common::layout::LayoutConfig;
use cdc_common::{SinkOptions, TableDef, TableName, Ts};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::task::JoinHandle;

/// The replayer: one discovery state, one downstream, the progress record.
pub struct Replayer {
    disc: Discovery,
    down: Box<dyn Downstream>,
    decoder: Decoder,
    progress: Progress,
    metrics: Metrics,
    health: Arc<Mutex<Health>>,
    rounds: u64,
    fingerprint: u64,
    /// Streams whose next file holds only rows above the checkpoint (applied up to it).
    stalled: HashSet<ProgressKey>,
    /// Next files being read and decoded while the current one is applied (one per stream).
    prefetch: HashMap<String, JoinHandle<Result<Vec<DecodedRow>>>>,
    /// What to do with a data file that does not decode.
    policy: BadFilePolicy,
    /// The quarantine record as committed (newest [`HEALTH_QUARANTINE_LIST`]) and its size.
    quarantined: Vec<QuarantinedFile>,
    quarantined_total: u64,
    /// Redacted from every error and warning text before it is logged or shown.
    secrets: Secrets,
}

enum Outcome {
    Applied,
    Stalled,
}

impl Replayer {
    /// Loads the progress record (and the quarantine record) from the downstream.
    pub async fn new(
        disc: Discovery,
        mut down: Box<dyn Downstream>,
        options: &SinkOptions,
        policy: BadFilePolicy,
        metrics: Metrics,
        health: Arc<Mutex<Health>>,
    ) -> Result<Replayer> {
        let rows = down.load_progress().await?;
        let quarantined = down
            .load_quarantine(policy == BadFilePolicy::Quarantine)
            .await?;
        let mut r = Replayer {
            disc,
            down,
            decoder: Decoder::new(options)?,
            progress: Progress::from_rows(rows),
            metrics,
            health,
            rounds: 0,
            fingerprint: 0,
            stalled: HashSet::new(),
            prefetch: HashMap::new(),
            policy,
            quarantined: Vec::new(),
            quarantined_total: 0,
            secrets: Secrets::default(),
        };
        r.set_quarantined(quarantined);
        Ok(r)
    }

    /// Replaces the downstream (after a failed round: a new connection) and reloads the
    /// progress record from it, the source of truth for what was committed.
    pub async fn reopen(&mut self, mut down: Box<dyn Downstream>) -> Result<()> {
        let rows = down.load_progress().await?;
        let quarantined = down
            .load_quarantine(self.policy == BadFilePolicy::Quarantine)
            .await?;
        self.down = down;
        self.progress = Progress::from_rows(rows);
        self.set_quarantined(quarantined);
        Ok(())
    }

    fn set_quarantined(&mut self, all: Vec<QuarantinedFile>) {
        self.quarantined_total = all.len() as u64;
        let skip = all.len().saturating_sub(HEALTH_QUARANTINE_LIST);
        self.quarantined = all.into_iter().skip(skip).collect();
        if let Ok(mut h) = self.health.lock() {
            h.quarantined_files_total = self.quarantined_total;
            h.quarantined = self.quarantined.clone();
        }
    }

    /// Sets the secret values redacted from every error and warning text the replayer logs or
    /// puts in `/health` (see [`crate::secrets`]).
    pub fn set_secrets(&mut self, secrets: Secrets) {
        self.secrets = secrets;
    }

    /// The quarantine record as committed (the newest entries) and how many it holds.
    pub fn quarantined(&self) -> (&[QuarantinedFile], u64) {
        (&self.quarantined, self.quarantined_total)
    }

    /// The progress record as committed.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// What discovery knows.
    pub fn catalog(&self) -> &Catalog {
        self.disc.catalog()
    }

    /// Runs one round and returns its audit record (also logged and put in `/health`).
    /// Also returns whether discovery found anything new (for `--once`) and the error that
    /// ended the round, if any (its text is in the record's `fatal`).
    pub async fn round(&mut self) -> (RoundRecord, bool, Option<Error>) {
        self.rounds += 1;
        self.metrics.rounds.inc();
        let mut rec = RoundRecord {
            round: self.rounds,
            started_at_ms: now_ms(),
            ..Default::default()
        };
        let result = self.round_inner(&mut rec).await;
        for (_, h) in self.prefetch.drain() {
            h.abort();
        }
        rec.warnings.extend(self.disc.take_warnings());
        for w in rec.warnings.iter_mut() {
            if let std::borrow::Cow::Owned(r) = self.secrets.redact(w) {
                *w = r;
            }
        }
        let fp = self.catalog_fingerprint();
        let found_new = fp != self.fingerprint;
        self.fingerprint = fp;
        let err = match result {
            Err(e) => {
                self.metrics.errors.with_label_values(&["fatal"]).inc();
                rec.fatal = Some(self.secrets.redact(&e.to_string()).into_owned());
                Some(e)
            }
            Ok(()) => None,
        };
        self.metrics
            .errors
            .with_label_values(&["warning"])
            .inc_by(rec.warnings.len() as u64);
        let cat = self.disc.catalog();
        let checkpoint = cat.checkpoint.unwrap_or(Ts::ZERO);
        let applied = self.applied_ts();
        let tables = self.table_progress();
        let pending = count_pending(cat, &self.progress);
        rec.checkpoint_ts = checkpoint.0;
        rec.applied_ts = applied.min(checkpoint).0;
        rec.files_pending = pending;
        rec.ended_at_ms = now_ms();
        self.metrics.checkpoint_ts.set(checkpoint.0 as i64);
        self.metrics.applied_ts.set(rec.applied_ts as i64);
        self.metrics.files_pending.set(pending as i64);
        self.metrics
            .lag_seconds
            .set(crate::freshness::lag_ms(checkpoint, Ts(rec.applied_ts)) as f64 / 1000.0);
        // The audit record: in full (JSON) when the round did or met anything, else at debug.
        let record = serde_json::to_string(&rec).unwrap_or_default();
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
        if let Ok(mut h) = self.health.lock() {
            h.set_ts(checkpoint, Ts(rec.applied_ts));
            h.files_pending = pending;
            h.last_round = Some(rec.clone());
            h.tables = tables;
            h.quarantined_files_total = self.quarantined_total;
            h.quarantined = self.quarantined.clone();
            if let Some(f) = &rec.fatal {
                h.push_error(RecentError {
                    round: rec.round,
                    at_ms: rec.ended_at_ms,
                    message: f.clone(),
                });
            }
        }
        (rec, found_new, err)
    }

    fn catalog_fingerprint(&self) -> u64 {
        let cat = self.disc.catalog();
        let mut h: u64 = cat.checkpoint.map(|c| c.0).unwrap_or(0);
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

    /// The ts up to which every table is applied (see [`crate::freshness`]).
    pub fn applied_ts(&self) -> Ts {
        let checkpoint = self.disc.catalog().complete_through();
        self.tables_applied_ts()
            .into_values()
            .fold(checkpoint, Ts::min)
    }

    /// Per table of the catalog, the ts up to which it is applied (at most the checkpoint).
    pub fn tables_applied_ts(&self) -> BTreeMap<TableName, Ts> {
        let cat = self.disc.catalog();
        // Not beyond what discovery knows to be complete (lagging listings).
        let checkpoint = cat.complete_through();
        let mut out = BTreeMap::new();
        let none = HashSet::new();
        for name in cat.tables.keys() {
            let (steps, wait) = table_steps(cat, &self.progress, name, &none);
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
            out.insert(name.clone(), t_applied.min(checkpoint));
        }
        out
    }

    /// Per-table progress for `/health` and the status page: the catalog's tables with their
    /// applied ts, and every progress row grouped by table.
    fn table_progress(&self) -> BTreeMap<String, TableProgress> {
        let mut out: BTreeMap<String, TableProgress> = self
            .tables_applied_ts()
            .into_iter()
            .map(|(name, ts)| {
                let t = TableProgress {
                    applied_ts: ts.0,
                    ..Default::default()
                };
                (name.to_string(), t)
            })
            .collect();
        for (k, p) in self.progress.rows() {
            // Database-level DDL rows have no table.
            if k.table.is_empty() {
                continue;
            }
            let t = out
                .entry(TableName::new(k.schema.as_str(), k.table.as_str()).to_string())
                .or_default();
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
        out
    }

    fn table_commit_ts(&self, name: &TableName) -> Ts {
        self.progress
            .rows()
            .filter(|(k, _)| k.schema == name.schema && k.table == name.table)
            .map(|(_, p)| p.commit_ts)
            .max()
            .unwrap_or(Ts::ZERO)
    }

    async fn round_inner(&mut self, rec: &mut RoundRecord) -> Result<()> {
        rec.discovery = self.disc.round().await?;
        let cat = self.disc.catalog().clone();
        let up = self.disc.upstream().clone();
        let cfg = *self.disc.layout();
        self.stalled.clear();
        let mut stalled: HashSet<ProgressKey> = HashSet::new();
        loop {
            let mut did = false;
            for schema in cat.databases.keys() {
                while let (Some(step), _) = schema_step(&cat, &self.progress, schema) {
                    self.exec(&cat, &up, &cfg, step, rec).await?;
                    did = true;
                }
            }
            for name in cat.tables.keys() {
                loop {
                    let (steps, _) = table_steps(&cat, &self.progress, name, &stalled);
                    if steps.is_empty() {
                        break;
                    }
                    for step in steps {
                        let key = match &step {
                            Step::File { key, .. } => Some(key.clone()),
                            _ => None,
                        };
                        match self.exec(&cat, &up, &cfg, step, rec).await? {
                            Outcome::Applied => did = true,
                            Outcome::Stalled => {
                                if let Some(k) = key {
                                    stalled.insert(k);
                                }
                            }
                        }
                    }
                }
            }
            if !did {
                break;
            }
        }
        self.stalled = stalled;
        Ok(())
    }

    async fn exec(
        &mut self,
        cat: &Catalog,
        up: &Upstream,
        cfg: &LayoutConfig,
        step: Step,
        rec: &mut RoundRecord,
    ) -> Result<Outcome> {
        let started = Instant::now();
        let out = match step {
            Step::SchemaDdl { schema, entry } => {
                let ops = match entry.file.ddl_type {
                    ddl::ACTION_CREATE_SCHEMA => vec![DdlOp::CreateSchema(schema.clone())],
                    ddl::ACTION_DROP_SCHEMA => vec![DdlOp::DropSchema {
                        schema: schema.clone(),
                        tables: cat
                            .tables
                            .keys()
                            .filter(|n| n.schema == schema)
                            .cloned()
                            .collect(),
                    }],
                    other => {
                        rec.warnings.push(format!(
                            "`{}`: database-level DDL type {other} has no downstream effect",
                            entry.path
                        ));
                        Vec::new()
                    }
                };
                self.apply_ddl(
                    &entry.path,
                    None,
                    &ops,
                    ProgressKey::schema_ddl(&schema),
                    entry.file.table_version,
                )
                .await?;
                rec.tables.entry(schema).or_default().ddls += 1;
                Outcome::Applied
            }
            Step::TableDdl { table, entry, prev } => {
                let def = entry.file.to_table_def();
                let ops = self
                    .table_ddl_ops(cat, &table, &entry, prev.as_ref(), &def)
                    .await?;
                self.apply_ddl(
                    &entry.path,
                    Some(&def),
                    &ops,
                    ProgressKey::table_ddl(&table),
                    entry.file.table_version,
                )
                .await?;
                rec.tables.entry(table.to_string()).or_default().ddls += 1;
                Outcome::Applied
            }
            Step::File {
                table,
                schema,
                dir,
                dispatcher,
                index,
                key,
                before,
            } => {
                let path = Catalog::data_file_path(cfg, &dir, &dispatcher, index)?;
                let newest = cat
                    .tables
                    .get(&table)
                    .and_then(|t| t.versions.get(&dir.version))
                    .and_then(|v| v.dirs.get(&dir))
                    .and_then(|d| d.indexes.get(&dispatcher))
                    .copied()
                    .unwrap_or(index);
                let def = schema.file.to_table_def();
                let codec = self.decoder.prepared(&def)?;
                let prefetched = match self.prefetch.remove(&path) {
                    // Err: the task panicked or was cancelled.
                    Some(h) => h.await.ok(),
                    None => None,
                };
                let fetched = match prefetched {
                    Some(r) => r,
                    // Not prefetched, or the prefetch task failed: read the file here instead.
                    None => {
                        fetch_decode(
                            up.clone(),
                            codec.clone(),
                            def.columns.len(),
                            path.clone(),
                            newest,
                        )
                        .await
                    }
                };
                let rows = match fetched {
                    Ok(rows) => rows,
                    Err(e)
                        if self.policy == BadFilePolicy::Quarantine
                            && is_quarantinable(&e, &path) =>
                    {
                        let pos = Position {
                            version: dir.version,
                            date: date_text(&dir),
                            file_index: index,
                            commit_ts: before.as_ref().map(|p| p.commit_ts).unwrap_or(Ts::ZERO),
                        };
                        self.quarantine(&def, key, pos, &path, e, rec).await?;
                        return Ok(Outcome::Applied);
                    }
                    Err(e) => return Err(e),
                };
                if index < newest {
                    let next = Catalog::data_file_path(cfg, &dir, &dispatcher, index + 1)?;
                    if let std::collections::hash_map::Entry::Vacant(e) = self.prefetch.entry(next)
                    {
                        let h = tokio::spawn(fetch_decode(
                            up.clone(),
                            codec,
                            def.columns.len(),
                            e.key().clone(),
                            newest,
                        ));
                        e.insert(h);
                    }
                }
                let checkpoint = cat.checkpoint.unwrap_or(Ts::ZERO);
                let done_ts = before.as_ref().map(|p| p.commit_ts).unwrap_or(Ts::ZERO);
                let above = rows
                    .iter()
                    .any(|r| r.commit_ts.is_some_and(|t| t > checkpoint));
                let max_ts = rows
                    .iter()
                    .filter_map(|r| r.commit_ts)
                    .filter(|t| *t <= checkpoint)
                    .max()
                    .unwrap_or(Ts::ZERO);
                let apply: Vec<_> = rows
                    .into_iter()
                    .filter(|r| match r.commit_ts {
                        None => true,
                        Some(t) => t > done_ts && t <= checkpoint,
                    })
                    .map(|r| r.change)
                    .collect();
                let n_rows = apply.len() as u64;
                let (ops, no_before) = plan_rows(&def, apply);
                if no_before > 0 {
                    rec.warnings.push(format!(
                        "`{path}`: {no_before} updates of a table without primary key carry no \
                         old image; applied as inserts"
                    ));
                }
                let pos = if above {
                    if n_rows == 0 {
                        return Ok(Outcome::Stalled);
                    }
                    // Partly applicable: keep the previous file as the position, advance the ts.
                    let mut p = before.clone().unwrap_or(Position {
                        version: dir.version,
                        date: date_text(&dir),
                        file_index: 0,
                        commit_ts: Ts::ZERO,
                    });
                    p.commit_ts = p.commit_ts.max(max_ts);
                    p
                } else {
                    Position {
                        version: dir.version,
                        date: date_text(&dir),
                        file_index: index,
                        commit_ts: done_ts.max(max_ts),
                    }
                };
                let progress = vec![(key, pos)];
                self.down
                    .apply(Unit {
                        file: &path,
                        table: Some(&def),
                        ddl: &[],
                        rows: &ops,
                        progress: &progress,
                        quarantine: None,
                    })
                    .await?;
                self.commit(progress);
                self.metrics.rows_applied.inc_by(n_rows);
                let tr = rec.tables.entry(table.to_string()).or_default();
                tr.rows += n_rows;
                if above {
                    Outcome::Stalled
                } else {
                    self.metrics.files_applied.inc();
                    tr.files += 1;
                    Outcome::Applied
                }
            }
        };
        self.metrics
            .apply_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(out)
    }

    /// Records `path` as quarantined and moves its stream past it, in one downstream
    /// transaction; none of its rows are applied.
    async fn quarantine(
        &mut self,
        def: &TableDef,
        key: ProgressKey,
        pos: Position,
        path: &str,
        err: Error,
        rec: &mut RoundRecord,
    ) -> Result<()> {
        let q = QuarantinedFile::new(&key, &pos, path, err.to_string(), now_ms());
        let progress = vec![(key, pos)];
        self.down
            .apply(Unit {
                file: path,
                table: Some(def),
                ddl: &[],
                rows: &[],
                progress: &progress,
                quarantine: Some(&q),
            })
            .await?;
        self.commit(progress);
        tracing::warn!(file = path, reason = %q.reason, "data file quarantined; its rows are not applied");
        rec.warnings.push(format!(
            "quarantined `{path}` (rows not applied): {}",
            q.reason
        ));
        rec.tables
            .entry(def.name().to_string())
            .or_default()
            .quarantined += 1;
        self.metrics.quarantined_files.inc();
        self.quarantined_total += 1;
        self.quarantined.push(q);
        if self.quarantined.len() > HEALTH_QUARANTINE_LIST {
            self.quarantined.remove(0);
        }
        Ok(())
    }

    fn commit(&mut self, rows: Vec<(ProgressKey, Position)>) {
        for (k, p) in rows {
            self.progress.set(k, p);
        }
    }

    /// Applies a schema file's DDL together with its `#ddl` progress row (version and commit ts
    /// both the file's table version) as one unit, then records it.
    async fn apply_ddl(
        &mut self,
        file: &str,
        table: Option<&TableDef>,
        ddl: &[DdlOp],
        key: ProgressKey,
        version: Ts,
    ) -> Result<()> {
        let progress = vec![(
            key,
            Position {
                version,
                date: String::new(),
                file_index: 0,
                commit_ts: version,
            },
        )];
        self.down
            .apply(Unit {
                file,
                table,
                ddl,
                rows: &[],
                progress: &progress,
                quarantine: None,
            })
            .await?;
        self.commit(progress);
        self.metrics.ddls_applied.inc();
        Ok(())
    }

    /// The DDL operations of a table schema file (see [`crate::ddl`]).
    async fn table_ddl_ops(
        &mut self,
        cat: &Catalog,
        table: &TableName,
        entry: &SchemaEntry,
        prev: Option<&SchemaEntry>,
        def: &TableDef,
    ) -> Result<Vec<DdlOp>> {
        let file = &entry.file;
        let exists = self.down.table_exists(table).await?;
        let create = || vec![DdlOp::CreateTable(def.clone())];
        Ok(match file.ddl_type {
            ddl::ACTION_DROP_TABLE => vec![DdlOp::DropTable(table.clone())],
            ddl::ACTION_TRUNCATE_TABLE if exists => vec![DdlOp::TruncateTable(table.clone())],
            ddl::ACTION_RENAME_TABLE => match &entry.rename_from {
                Some(src) if src != table && !exists && self.down.table_exists(src).await? => {
                    let mut ops = vec![DdlOp::RenameTable {
                        from: src.clone(),
                        to: table.clone(),
                    }];
                    // The source's definition as applied, to catch column differences.
                    let src_def = self
                        .progress
                        .table_version(src)
                        .and_then(|v| cat.tables.get(src)?.versions.get(&v)?.schema.clone())
                        .map(|e| e.file.to_table_def());
                    if let Some(mut s) = src_def {
                        s.schema = table.schema.clone();
                        s.table = table.table.clone();
                        ops.extend(ddl::diff_columns(&s, def, &file.query));
                    }
                    ops
                }
                _ if exists => match prev {
                    Some(p) => ddl::diff_columns(&p.file.to_table_def(), def, &file.query),
                    None => Vec::new(),
                },
                _ => create(),
            },
            _ if !exists => create(),
            ddl::ACTION_CREATE_TABLE => create(),
            _ => match prev {
                Some(p) if p.file.ddl_type != ddl::ACTION_DROP_TABLE => {
                    ddl::diff_columns(&p.file.to_table_def(), def, &file.query)
                }
                _ => create(),
            },
        })
    }
}

/// Reads a data file and decodes it (on a blocking thread: decoding is CPU work).
async fn fetch_decode(
    up: Upstream,
    codec: Arc<dyn TableCodec>,
    columns: usize,
    path: String,
    newest: u64,
) -> Result<Vec<DecodedRow>> {
    let Some(bytes) = up.get(&path).await? else {
        return Err(Error::Missing {
            path,
            reason: format!(
                "its index file names file {newest}, so files up to {newest} must exist"
            ),
        });
    };
    let object = path.clone();
    match tokio::task::spawn_blocking(move || {
        crate::decode::decode_with(codec.as_ref(), columns, &path, &bytes)
    })
    .await
    {
        Ok(r) => r,
        // A decoder panic on these bytes is reported as a corrupt file, never propagated.
        Err(e) => Err(cdc_common::Error::corrupt(
            object,
            cdc_common::error::Position::None,
            format!("the decoder failed on this file: {e}"),
        )
        .into()),
    }
}
