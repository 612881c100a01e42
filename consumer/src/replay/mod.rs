//! The replay loop: discovery, then apply in the order [`crate::ordering`] allows, recording
//! progress with every unit.
//!
//! # Invariants
//!
//! - A unit (consecutive data files of one stream, up to `--unit-files`; the part of a file at
//!   or below the checkpoint; one DDL; or the CREATE TABLE DDLs of many tables, see
//!   `create_batch`) and the progress rows covering it are committed
//!   together, the progress row naming the unit's last file; the in-memory [`Progress`] is
//!   updated only after the commit returned. On any error the round ends and progress stays
//!   where the last commit left it (see `file_unit`).
//! - Rows with a commit ts above the checkpoint-ts are never applied; rows below the
//!   stream's recorded commit ts are skipped (they were applied, or are a sink replay); rows at
//!   it are applied again for a table with a primary key (the rest of a transaction cut across
//!   files, or a harmless copy) and skipped for a table without one (see `window`).
//! - Rows without a commit ts (csv without `include-commit-ts`, canal-json without the TiDB
//!   extension) are applied once their file is indexed: the sink indexes a file only after it is
//!   durable, but such rows cannot be held back to the checkpoint.
//! - Whatever stops one table stops only that table: a missing or corrupt data file or a
//!   refused statement leaves that table (and the tables a DDL barrier ties to it, which wait
//!   for its progress) where it is, with a warning naming it in the round record (and so in
//!   `/health`); every other table goes as far as it can, then the first such error ends the
//!   round. Storage and connection trouble ends the round at once.
//! - A data file that does not decode stops its table (`--on-bad-file stop`), or, under
//!   `quarantine`, is recorded in the quarantine table in the same transaction that moves its
//!   stream's progress past it, with none of its rows applied (see [`crate::quarantine`]).
//!
//! # Files
//!
//! - this file: the [`Replayer`], a round ([`Replayer::round`] -> [`RoundOutcome`]) and the
//!   step loop that runs what [`crate::ordering`] allows, one step at a time.
//! - `ddl_step`: the database-level and table schema file steps.
//! - `create_batch`: the CREATE TABLE steps of many tables applied as one unit, where the
//!   downstream's DDL is transactional.
//! - `file_step`: the data file step (read the file or take it from the read-ahead window,
//!   apply or quarantine).
//! - `file_unit`: the stream's next files taken into the step's unit (one transaction, one
//!   progress row).
//! - `group_round`: a consumer group member's round start (fences, progress reload) and
//!   which tables it applies.
//! - `read_ahead`: which data files of the round are read and decoded next, while one is
//!   applied.
//! - `prefetch`: the read-ahead window those files wait in, bounded by files and bytes, and
//!   where the read-ahead resumes.
//! - `window`: the pure checkpoint window (which rows of a file are applied).
//! - `quiet`: the tables known to have nothing to do, which a round after a summary round
//!   does not walk.
//! - `health_tables`: `/health`'s per-table map, built whole or patched with the tables a
//!   round walked.
//! - `report`: what a round reports (record totals, gauges, log line, `/health`) and the
//!   applied ts per table.
//! - `audit`: the round record stored in the downstream (`cdc_consumer_rounds`, see
//!   [`crate::audit`]) and loaded back at start.
//! - `resume`: the settled mark ([`crate::settled`]): starting from it, storing it after a
//!   settled round, and what a round reports while it stands on it without a catalog.
//!
//! The files below this one use it; it uses none of them (it only calls their methods on
//! [`Replayer`]), so there is no import circle.

mod audit;
mod create_batch;
mod ddl_step;
mod file_step;
mod file_unit;
mod group_round;
mod health_tables;
mod in_place;
mod prefetch;
mod quiet;
mod read_ahead;
mod report;
mod resume;
mod window;

pub use file_unit::{DEFAULT_UNIT_FILES, MAX_UNIT_FILES, UNIT_MAX_ROWS};
pub use prefetch::{DEFAULT_READ_AHEAD, DEFAULT_READ_AHEAD_BYTES, DEFAULT_READ_AHEAD_LOCAL};

use crate::backend::Downstream;
use crate::decode::Decoder;
use crate::discovery::{Catalog, Discovery, SchemaEntry, Upstream};
use crate::error::{Error, Result};
use crate::freshness::{now_ms, Health, Phase, RoundRecord};
use crate::group::{Fence, Group, LeaseKey};
use crate::metrics::Metrics;
use crate::ordering::{schema_step, table_steps, Step};
use crate::progress::{Position, Progress, ProgressKey};
use crate::quarantine::{BadFilePolicy, QuarantinedFile, HEALTH_QUARANTINE_LIST};
use crate::secrets::Secrets;
use crate::settled::{Scope, SettledMark};
use cdc_common::layout::{DataDir, LayoutConfig};
use cdc_common::{SinkOptions, TableName, Ts};
use std::collections::{HashMap, HashSet};
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
    /// The catalog's checkpoint as the last round left it, to tell whether a round found
    /// anything new, and (debug builds only, else 0) a hash of its tables that checks
    /// discovery's answer (see `Replayer::note_fingerprint`).
    fingerprint: (Option<Ts>, u64),
    /// The totals and `/health` figures of the first idle round since the last round that
    /// was not idle, reused by the idle rounds after it (see [`report::IdleFigures`]).
    idle_figures: Option<report::IdleFigures>,
    /// Streams whose next file holds only rows above the checkpoint (applied up to it).
    stalled: HashSet<ProgressKey>,
    /// Tables known to have nothing to do until discovery refreshes them or a commit touches
    /// them: a busy round after a summary round walks only the others (see `quiet`).
    quiet: quiet::Quiet,
    /// `/health`'s per-table map was built or patched where a later round may patch it
    /// (see `health_tables`).
    health_patchable: bool,
    /// Table versions whose unknown ENUM/SET elements were already warned about.
    elems_warned: HashSet<(TableName, Ts)>,
    /// Data files being read and decoded ahead of their step, and where the read-ahead
    /// resumes (see `read_ahead`, `prefetch`).
    prefetch: prefetch::Prefetch,
    /// The rows of the last committed unit, being freed on a blocking thread (see
    /// `file_step`).
    freeing: Option<JoinHandle<()>>,
    /// Consecutive data files of one stream applied as one unit (`--unit-files`).
    unit_files: usize,
    /// Streams whose unit of several files the downstream refused this round: one file per
    /// unit until the round ends (see `file_unit`).
    files_alone: HashSet<ProgressKey>,
    /// What to do with a data file that does not decode.
    policy: BadFilePolicy,
    /// The quarantine record as committed (newest [`HEALTH_QUARANTINE_LIST`]) and its size.
    quarantined: Vec<QuarantinedFile>,
    quarantined_total: u64,
    /// Redacted from every error and warning text before it is logged or shown.
    secrets: Secrets,
    /// Units read, handed to the downstream and committed since start: a round's deltas say
    /// which [`Phase`]s it reached.
    phase_counts: PhaseCounts,
    /// This process's id in the audit record ([`crate::audit::start_id`]).
    start_id: String,
    /// Round records kept in the downstream (`--keep-rounds`).
    keep_rounds: u64,
    /// The consumer group this replayer is a member of (`--group`).
    group: Option<Group>,
    /// In a group: this round's leases (see `group_round`).
    fences: HashMap<LeaseKey, Fence>,
    /// The consumer's scope ([`Replayer::set_scope`]); `None`: no settled mark is stored nor
    /// believed.
    scope: Option<Scope>,
    /// Every settled mark's row in the progress record as loaded (each scope has its own).
    loaded_marks: Vec<(ProgressKey, Position)>,
    /// This scope's settled mark as stored in the downstream (as loaded, or as last written).
    mark: Option<SettledMark>,
    /// [`Progress::digest`] of the record `mark` is known to hold for (`None`: not checked).
    mark_progress: Option<u64>,
    /// The mark this process started from, while no round has built the catalog.
    resumed: Option<SettledMark>,
    /// How the progress record is read at start and reopen: [`ProgressRead::Plain`] from the
    /// start for a process about to join a group, and from [`Replayer::set_group`] on.
    read: ProgressRead,
}

/// How the replayer reads the progress record when it starts and when it reopens its
/// downstream. Decided once, by whether the consumer joins a group ([`crate::replayer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressRead {
    /// After every unit still in flight on the record committed or rolled back
    /// ([`Downstream::load_progress_settled`]): a consumer outside a group. Only a record read
    /// this way lets a settled mark be believed (a late commit must change its digest).
    Settled,
    /// Without the settle lock ([`Downstream::load_progress`]): a group member, as its per-round
    /// reloads do. A member paused inside the locked read would make every other member's
    /// progress write wait, and the lease fence already orders a takeover after the replaced
    /// member's last unit (`group_round`). A member never stands on a settled mark (the others'
    /// progress moves under it).
    Plain,
}

impl ProgressRead {
    async fn load(self, down: &mut dyn Downstream) -> Result<Vec<(ProgressKey, Position)>> {
        match self {
            ProgressRead::Settled => down.load_progress_settled().await,
            ProgressRead::Plain => down.load_progress().await,
        }
    }
}

/// Counters behind a round's [`Phase`]s (see [`Replayer::round`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct PhaseCounts {
    read: u64,
    applied: u64,
    committed: u64,
}

/// The settled marks' rows among progress rows read back (see [`crate::settled`]).
fn settled_rows(rows: &[(ProgressKey, Position)]) -> Vec<(ProgressKey, Position)> {
    rows.iter()
        .filter(|(k, _)| k.is_settled())
        .cloned()
        .collect()
}

/// What one step did.
enum Outcome {
    /// Applied (or quarantined): the stream moves on.
    Applied,
    /// The stream's next file holds rows above the checkpoint: applied up to it, it waits.
    Stalled,
    /// The stream's next file is an empty newest file its writer may still write: the stream
    /// is held for the round ([`Progress::hold`]), nothing applied.
    Held,
}

/// One data file to apply (the fields of [`crate::ordering::Step::File`]).
pub(super) struct DataFileStep {
    /// The table.
    pub(super) table: TableName,
    /// The schema file of the file's version.
    pub(super) schema: SchemaEntry,
    /// The file's directory.
    pub(super) dir: DataDir,
    /// The writer.
    pub(super) dispatcher: Option<String>,
    /// The file index.
    pub(super) index: u64,
    /// The stream's progress key.
    pub(super) key: ProgressKey,
    /// The stream's position before this file (`None`: nothing applied yet).
    pub(super) before: Option<Position>,
}

/// What one round did (see [`Replayer::round`]).
#[derive(Debug)]
pub struct RoundOutcome {
    /// The round's audit record (also logged and put in `/health`).
    pub record: RoundRecord,
    /// Discovery found something new this round (for `--once`: a round that found nothing
    /// new and applied nothing means storage is drained).
    pub found_new: bool,
    /// The error that ended the round, if any (its redacted text is in `record.fatal`).
    pub error: Option<Error>,
}

/// True for an error about one table's own storage or statements (a missing or corrupt data
/// file, a statement the downstream refused): it stops that table (and the tables a DDL barrier
/// ties to it, which wait for its progress) while the others go on. Storage and connection
/// trouble ends the round.
fn stops_only_its_table(e: &Error) -> bool {
    matches!(
        e,
        Error::Missing { .. }
            | Error::InFlight { .. }
            | Error::Contract(_)
            | Error::Downstream { .. }
            | Error::Conflict { .. }
            | Error::Fenced { .. }
    )
}

impl Replayer {
    /// Loads the progress record (read as `read` says) and the quarantine record from the
    /// downstream.
    pub async fn new(
        disc: Discovery,
        mut down: Box<dyn Downstream>,
        options: &SinkOptions,
        policy: BadFilePolicy,
        read: ProgressRead,
        metrics: Metrics,
        health: Arc<Mutex<Health>>,
    ) -> Result<Replayer> {
        let rows = read.load(down.as_mut()).await?;
        let loaded_marks = settled_rows(&rows);
        let quarantined = down
            .load_quarantine(policy == BadFilePolicy::Quarantine)
            .await?;
        let prefetch = prefetch::Prefetch::new(&metrics);
        let mut r = Replayer {
            disc,
            down,
            decoder: Decoder::new(options)?,
            progress: Progress::from_rows(rows),
            metrics,
            health,
            rounds: 0,
            fingerprint: (None, 0),
            idle_figures: None,
            stalled: HashSet::new(),
            quiet: quiet::Quiet::default(),
            health_patchable: false,
            elems_warned: HashSet::new(),
            prefetch,
            freeing: None,
            unit_files: file_unit::DEFAULT_UNIT_FILES,
            files_alone: HashSet::new(),
            policy,
            quarantined: Vec::new(),
            quarantined_total: 0,
            secrets: Secrets::default(),
            phase_counts: PhaseCounts::default(),
            start_id: crate::audit::start_id(),
            keep_rounds: crate::audit::DEFAULT_KEEP_ROUNDS,
            group: None,
            fences: HashMap::new(),
            scope: None,
            loaded_marks,
            mark: None,
            mark_progress: None,
            resumed: None,
            read,
        };
        r.set_quarantined(quarantined);
        r.load_rounds().await;
        Ok(r)
    }

    /// Replaces the downstream (after a failed round: a new connection) and reloads the
    /// progress record from it, the source of truth for what was committed.
    pub async fn reopen(&mut self, mut down: Box<dyn Downstream>) -> Result<()> {
        // a group member reads plain (see `ProgressRead`)
        let rows = self.read.load(down.as_mut()).await?;
        let quarantined = down
            .load_quarantine(self.policy == BadFilePolicy::Quarantine)
            .await?;
        self.down = down;
        self.loaded_marks = settled_rows(&rows);
        self.mark = (self.scope.as_ref()).and_then(|s| SettledMark::find(&self.loaded_marks, s));
        self.mark_progress = None;
        let reloaded = Progress::from_rows(rows);
        // The record as this process left it (a round that stopped on one table's error, a
        // connection lost between units): what discovery and the quiet tables concluded from
        // it still holds. Else it may differ from what the last round left: look again.
        // Keeping them rests on three things the failed round did already: discovery takes
        // `summary_base` at a round's start and gives it back only when the round completes or
        // fails before changing the catalog (reading `metadata` or the summary; a failure in
        // its listings makes the next round full anyway), `finish_round` after an error allows
        // no idle round, and the quiet tables survive only a round that concluded (`quiet`:
        // one ended by one table's error, on the same catalog and record).
        let unchanged = reloaded.rows().eq(self.progress.rows());
        self.progress = reloaded;
        self.idle_figures = None;
        self.set_quarantined(quarantined);
        if !unchanged {
            self.quiet.forget();
            self.disc.require_full_round();
        }
        self.resumed = None;
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

    /// Sets how many round records the downstream keeps (`--keep-rounds`, at least 1).
    pub fn set_keep_rounds(&mut self, keep: u64) {
        self.keep_rounds = keep.max(1);
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

    /// Runs one round and returns what it did: its audit record (also logged and put in
    /// `/health`), whether discovery found anything new (for `--once`) and the error that
    /// ended the round, if any (its text is in the record's `fatal`).
    pub async fn round(&mut self) -> RoundOutcome {
        self.rounds += 1;
        self.metrics.rounds.inc();
        let mut rec = RoundRecord {
            start_id: self.start_id.clone(),
            round: self.rounds,
            started_at_ms: now_ms(),
            ..Default::default()
        };
        let before = self.phase_counts;
        let result = self.round_inner(&mut rec).await;
        rec.phases = self.phases_since(before);
        self.prefetch.cancel_all();
        // an idle round read nothing but `metadata`: it found nothing new, even on the first
        // round of a process (whose catalog goes from nothing to the checkpoint)
        let found_new = self.note_fingerprint(rec.discovery.idle);
        let error = self.record_error(&mut rec, result);
        self.disc.finish_round(error.is_none());
        let figures = self.round_figures(&rec);
        self.record_totals(&mut rec, &figures);
        self.store_settled_mark(&mut rec).await;
        self.collect_warnings(&mut rec);
        Self::log_record(&rec);
        self.save_round(&rec).await;
        self.publish_health(&rec, figures);
        RoundOutcome {
            record: rec,
            found_new,
            error,
        }
    }

    async fn round_inner(&mut self, rec: &mut RoundRecord) -> Result<()> {
        // Nothing is known quiet while discovery changes the catalog, nor after an error
        // before the round concludes (see `quiet`).
        let known = self.quiet.take();
        rec.discovery = self.disc.round().await?;
        self.metrics
            .discovery_rounds
            .with_label_values(&[rec.discovery.kind()])
            .inc();
        if rec.discovery.idle {
            // nothing at or below an unchanged checkpoint is left to apply
            self.metrics.idle_rounds.inc();
            self.quiet.restore(known);
            return Ok(());
        }
        let cat = self.disc.shared_catalog();
        // last round's holds say nothing of this round's files
        self.progress.clear_holds();
        // The tables this round walks: after a summary round, the ones not known quiet and
        // the ones it refreshed; else all (see `quiet`).
        let mut walk = self.quiet.walk(known, &cat, self.disc.refreshed());
        // what this round found to do, for `/metrics` and `--once`'s bar while it applies
        let pending = match &walk {
            None => crate::ordering::count_pending(&cat, &self.progress),
            Some(w) => crate::ordering::count_pending_in(&cat, &self.progress, w),
        };
        self.metrics.files_pending.set(pending as i64);
        self.begin_group_round(&cat).await?;
        let up = self.disc.upstream().clone();
        let cfg = *self.disc.layout();
        self.stalled.clear();
        self.files_alone.clear();
        let mut stalled: HashSet<ProgressKey> = HashSet::new();
        // Tables a table-local error stopped this round (asked per table per pass), and the
        // first such error: it ends the round once every other table went as far as it can.
        let mut stuck: HashSet<TableName> = HashSet::new();
        let mut first_stuck: Option<Error> = None;
        // A CREATE TABLE can be due in a batch only when this round read a schema file (see
        // `create_batch`): other rounds skip the walk of every table it costs.
        let creates = rec.discovery.new_schema_files > 0;
        loop {
            let mut did = false;
            for schema in cat.databases.keys() {
                if !self.owns(&LeaseKey::Schema(schema.clone())) {
                    continue;
                }
                while let (Some(step), _) = schema_step(&cat, &self.progress, schema) {
                    self.exec(&cat, &up, &cfg, step, &stalled, rec).await?;
                    did = true;
                }
            }
            // a step of another table or schema may have written a table's rows (a rename, a
            // database-level DDL): it is walked from this pass on
            self.quiet.extend_walk(&cat, &mut walk);
            let names: Vec<&TableName> = match &walk {
                None => cat.tables.keys().collect(),
                Some(w) => w.iter().filter(|n| cat.tables.contains_key(*n)).collect(),
            };
            if creates {
                let free: Vec<&TableName> = names
                    .iter()
                    .copied()
                    .filter(|n| !stuck.contains(*n))
                    .collect();
                did |= self
                    .create_tables_together(&cat, &free, &stalled, rec)
                    .await;
            }
            for name in names {
                if stuck.contains(name) || !self.owns_table(&name.schema, &name.table) {
                    continue;
                }
                match self
                    .table_round(&cat, &up, &cfg, name, &mut stalled, rec)
                    .await
                {
                    Ok(applied) => did |= applied,
                    Err(e) if stops_only_its_table(&e) => {
                        self.note_fenced(&e);
                        rec.warnings
                            .push(format!("table `{name}` is stuck (other tables go on): {e}"));
                        stuck.insert(name.clone());
                        first_stuck.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            if !did {
                break;
            }
        }
        self.stalled = stalled;
        self.quiet.extend_walk(&cat, &mut walk);
        self.metrics.tables_walked.set(match &walk {
            None => cat.tables.len(),
            Some(w) => w.iter().filter(|n| cat.tables.contains_key(*n)).count(),
        } as i64);
        // A member's progress moves under it (other members' commits): nothing is known
        // quiet in a group. A table-local error ended the round once every other table went
        // as far as it could, so it concludes too (the stuck table keeps its step: not quiet).
        if self.group.is_none() {
            self.quiet.conclude(&cat, &self.progress, walk);
        }
        match first_stuck {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs every step one table can take now; true when something was applied. Streams whose
    /// next file must wait join `stalled`.
    async fn table_round(
        &mut self,
        cat: &Catalog,
        up: &Upstream,
        cfg: &LayoutConfig,
        name: &TableName,
        stalled: &mut HashSet<ProgressKey>,
        rec: &mut RoundRecord,
    ) -> Result<bool> {
        let mut did = false;
        loop {
            let (steps, _) = table_steps(cat, &self.progress, name, stalled);
            if steps.is_empty() {
                return Ok(did);
            }
            for step in steps {
                let key = match &step {
                    Step::File { key, .. } => Some(key.clone()),
                    _ => None,
                };
                if key.is_some() {
                    self.read_ahead(cat, up, cfg, name, stalled, None);
                }
                match self.exec(cat, up, cfg, step, stalled, rec).await? {
                    Outcome::Applied => did = true,
                    Outcome::Held => {
                        // A hold can let a barrier go (see `ordering`): another pass. The
                        // stream is stalled too, so it is not stepped again this round
                        // whatever the ordering makes of the hold.
                        did = true;
                        if let Some(k) = key {
                            stalled.insert(k);
                        }
                    }
                    Outcome::Stalled => {
                        if let Some(k) = key {
                            stalled.insert(k);
                        }
                    }
                }
            }
        }
    }

    /// Runs one step. The apply duration is observed for a DDL step and for a data file whose
    /// rows went downstream, not for a quarantined file nor one wholly above the checkpoint.
    async fn exec(
        &mut self,
        cat: &Catalog,
        up: &Upstream,
        cfg: &LayoutConfig,
        step: Step,
        stalled: &HashSet<ProgressKey>,
        rec: &mut RoundRecord,
    ) -> Result<Outcome> {
        let started = Instant::now();
        match step {
            Step::SchemaDdl { schema, entry } => {
                self.exec_schema_ddl(cat, schema, entry, rec).await?
            }
            Step::TableDdl { table, entry, prev } => {
                self.exec_table_ddl(cat, table, entry, prev, rec).await?
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
                self.phase_counts.read += 1;
                let f = DataFileStep {
                    table,
                    schema,
                    dir,
                    dispatcher,
                    index,
                    key,
                    before,
                };
                return self.exec_file(cat, up, cfg, f, stalled, rec).await;
            }
        }
        self.metrics
            .apply_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(Outcome::Applied)
    }

    /// The phases a round reached: discover always (it is the first), read when it began
    /// reading a data file, apply when it handed a unit to the downstream, commit when a unit
    /// committed.
    fn phases_since(&self, before: PhaseCounts) -> Vec<Phase> {
        let now = self.phase_counts;
        let mut out = vec![Phase::Discover];
        if now.read > before.read {
            out.push(Phase::Read);
        }
        if now.applied > before.applied {
            out.push(Phase::Apply);
        }
        if now.committed > before.committed {
            out.push(Phase::Commit);
        }
        out
    }

    fn commit(&mut self, rows: Vec<(ProgressKey, Position)>) {
        self.phase_counts.committed += 1;
        for (k, p) in rows {
            self.quiet.note_commit(&k);
            self.progress.set(k, p);
        }
    }
}
