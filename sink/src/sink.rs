//! The embedding API: [`Sink`].
//!
//! ```text
//!              add_dispatcher / remove_dispatcher
//! dispatcher --add_dml_event(ev, wake, flush)--> encoding pool --> spool --> writer shard
//!     ^   ^                                                         |          |
//!     |   +------------- wake (enqueued under quota) ---------------+          |
//!     +----------------- flush (data + index file durable) --------------------+
//! DDL: pass_block_event / write_block_event(ddl, dispatchers) -- drain markers (ddl.rs)
//! checkpoint(ts) -> metadata;  close() -> flush everything accepted (rule 7 aside), stop
//! ```
//!
//! Two-stage acknowledgement: `wake` runs once the spool accepted the encoded event under its
//! quota (it is withheld above the high watermark, which is how backpressure reaches the
//! dispatcher); `flush` runs only after the event's data file and then its index file are in
//! storage. A failed write never runs `flush`, and once anything failed the sink is stopped:
//! every call returns [`SinkError::Failed`] and the checkpoint does not move.

use crate::changes::ChangeLog;
use crate::checkpoint::{CheckpointOutcome, CheckpointState};
use crate::cleanup;
use crate::config::SinkConfig;
use crate::ddl::{schema_files, DrainMarker};
use crate::encoder_pool::{encode_inline, EncodeTask, EncoderContext, EncoderPool, Offer};
use crate::error::{Result, SinkError};
use crate::failure::Failure;
use crate::metrics::SinkMetrics;
use crate::router::{DispatcherState, FileNaming};
use crate::schema::SchemaCache;
use crate::validate;
use crate::writer::{self, WriterContext, WriterMsg};
use cdc_common::codec::codec_for;
use cdc_common::layout::{build_file_name, validate_name, LayoutConfig};
use cdc_common::storage::StorageUri;
use cdc_common::{DdlEvent, DmlEvent, SinkOptions, TableName, Ts};
use cdc_spool::{Callback, Spool, SpoolConfig, SpoolStats};
use object_store::ObjectStore;
use prometheus::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::task::JoinHandle;

/// The cloud-storage sink of one changefeed. `Send + Sync`: share it behind an `Arc`.
///
/// Must be created inside a tokio runtime (writers are tokio tasks); encoder threads are
/// plain threads.
///
/// # What a wake or flush callback may do
///
/// Where they run: `wake` on the thread calling [`Sink::add_dml_event`] (a small event, the
/// usual case at low traffic), on an encoder thread, or - when it was held above the spool's
/// high watermark - on the thread whose release brings the spool down to the low watermark (a
/// writer task). `flush` runs on a writer task (a tokio worker thread) once the event's data
/// and index files are in storage. Each runs at most once; the callbacks of an event that is
/// refused or dropped (stopped sink) are dropped unrun.
///
/// - **Hand in the next event: allowed, and ordered.** A callback may call `add_dml_event`
///   again, for its own dispatcher or another. Events of one dispatcher reach storage in the
///   order `add_dml_event` accepted them, also when one is handed in from a wake or a flush
///   callback: it reaches its writer behind everything its dispatcher handed in before, the
///   event woken included (see `encoder_pool.rs`, "Order on re-entry").
///   One dispatcher's calls must still not race each other from different threads; the usual
///   protocol (the next event only after the previous wake) keeps them sequential.
/// - **Other calls that return at once** are allowed too: [`Sink::add_dispatcher`],
///   [`Sink::error`], [`Sink::spool_stats`], [`Sink::options`]. For the async calls
///   (`checkpoint`, `pass_block_event`, `write_block_event`, `remove_dispatcher`, `close`)
///   spawn a task; never `block_on` them in a callback.
/// - **Block: not allowed.** No sleeping, waiting on I/O, a contended lock, a full bounded
///   channel or another callback. A blocking callback stops the thread that runs it for as
///   long: `add_dml_event` itself blocks (on the caller's thread), every dispatcher of that
///   encoder thread stops encoding, or every dispatcher of that writer shard stops publishing.
///   Waiting for something only that thread can do deadlocks: a flush callback that waits for
///   another flush of its shard, a held wake that waits for a flush while its writer releases
///   it, a callback that `block_on`s a drain of its own dispatcher. Hand slow work to another
///   thread or task (an unbounded channel, `tokio::spawn`).
pub struct Sink {
    ctx: Arc<WriterContext>,
    encoders: EncoderPool,
    enc_ctx: Arc<EncoderContext>,
    dispatchers: RwLock<HashMap<String, Arc<DispatcherState>>>,
    /// Table -> the `FileNaming::Table` dispatcher writing it (one index file, one writer).
    table_owners: Mutex<HashMap<TableName, Arc<str>>>,
    closed: AtomicBool,
    /// Which checkpoint writer this sink serves, fixed by the first call: [`Sink::checkpoint`]
    /// (`metadata` from this sink's progress) or a `NodeCheckpoint` (this node's file, and
    /// `metadata` as the minimum over every node). Mixing them would write `metadata` from one
    /// node's progress alone.
    checkpoint_mode: std::sync::atomic::AtomicU8,
    checkpoint: tokio::sync::Mutex<CheckpointState>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    cleanup: Mutex<Option<JoinHandle<()>>>,
}

/// `Sink::checkpoint_mode` values.
const MODE_UNSET: u8 = 0;
const MODE_SINGLE: u8 = 1;
const MODE_NODE: u8 = 2;

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("changefeed", &self.ctx.config.changefeed)
            .field("store", &self.ctx.store.to_string())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Builds a sink from a storage URI carrying the sink options in its query
    /// (`file:///data/cdc?protocol=csv&flush-interval=2s`, `memory://name`, `s3://...`).
    pub async fn open(uri: &str, config: SinkConfig, registry: &Registry) -> Result<Sink> {
        let (storage, options) = StorageUri::parse_sink(uri)?;
        let store = storage.build()?;
        let config = config.for_storage(&storage.kind);
        Sink::with_store(store, options, config, registry).await
    }

    /// Builds a sink over an existing store (tests wrap stores, services may share one).
    pub async fn with_store(
        store: Arc<dyn ObjectStore>,
        options: SinkOptions,
        config: SinkConfig,
        registry: &Registry,
    ) -> Result<Sink> {
        // `storage-retry-timeout` in the URI overrides the embedder's retry budget.
        let config = match options.storage_retry_timeout {
            Some(t) => config.with_storage_retry_timeout(t),
            None => config,
        };
        config.validate()?;
        options.validate()?;
        let codec: Arc<dyn cdc_common::codec::Codec> = Arc::from(codec_for(&options)?);
        let spool_config = match &config.spool {
            Some(c) => c.clone(),
            None => SpoolConfig::from_options(&options.spool)?,
        };
        // Off the runtime's threads: opening reads the directory, and it waits up to
        // `cdc_spool::LOCK_WAIT` for a lock that another thread's child may still hold. The
        // caller's span goes with it. A caller that drops this future does not stop the open:
        // the spool opened is dropped with the task's answer, which cleans up as `close` does.
        let (changefeed, reg) = (config.changefeed.clone(), registry.clone());
        let dir = spool_config.dir.clone();
        let span = tracing::Span::current();
        let spool = tokio::task::spawn_blocking(move || {
            span.in_scope(|| Spool::open(spool_config, &changefeed, &reg))
        })
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // the runtime is shutting down
            Err(e) => SinkError::Spool(Arc::new(cdc_spool::SpoolError::Io {
                path: dir,
                source: std::io::Error::other(format!("opening the spool did not finish: {e}")),
            })),
        })??;
        let metrics = match SinkMetrics::register(registry, &config.changefeed) {
            Ok(m) => Arc::new(m),
            Err(e) => {
                let _ = spool.close();
                return Err(e.into());
            }
        };
        let failure = Arc::new(Failure::new(config.on_error.clone()));
        let changes = Arc::new(ChangeLog::default());
        let ctx = Arc::new(WriterContext {
            store,
            layout: LayoutConfig::from_options(&options),
            options: options.clone(),
            config: config.clone(),
            spool: spool.clone(),
            codec: Arc::clone(&codec),
            schemas: Arc::new(SchemaCache::default()),
            changes: Arc::clone(&changes),
            metrics: Arc::clone(&metrics),
            failure: Arc::clone(&failure),
            upload_memory: Arc::new(tokio::sync::Semaphore::new(config.upload_memory / 1024)),
            upload_memory_kib: (config.upload_memory / 1024) as u32,
            handed_in: std::sync::atomic::AtomicU64::new(0),
            kept_bytes: std::sync::atomic::AtomicU64::new(0),
        });
        let mut handles = Vec::with_capacity(config.writer_count);
        let mut tasks = Vec::with_capacity(config.writer_count);
        for shard in 0..config.writer_count {
            let (h, t) = writer::spawn(shard, Arc::clone(&ctx));
            handles.push(h);
            tasks.push(t);
        }
        let enc_ctx = Arc::new(EncoderContext::new(
            codec,
            spool.clone(),
            handles,
            failure,
            metrics,
        ));
        let encoders = match EncoderPool::start(options.worker_count, Arc::clone(&enc_ctx)) {
            Ok(p) => p,
            Err(e) => {
                return Err(SinkError::param(
                    "worker-count",
                    format!("cannot start encoder threads: {e}"),
                ))
            }
        };
        // One cleanup runner per storage: only the configured owner among the sink processes.
        let cleanup = (options.file_expiration_days > 0 && config.cleanup_owner).then(|| {
            let ctx = Arc::clone(&ctx);
            tokio::spawn(async move {
                let mut first_run = true;
                loop {
                    let now_ms = Ts::now().physical_ms();
                    let Some(wait) = cleanup::wait_before_run(&ctx.options, first_run, now_ms)
                    else {
                        tracing::warn!("file-cleanup-cron-spec never fires again: cleanup stops");
                        return;
                    };
                    first_run = false;
                    tokio::time::sleep(wait).await;
                    let r = cleanup::run_once(
                        &ctx.store,
                        &ctx.layout,
                        &ctx.config.retry,
                        &ctx.metrics,
                        ctx.options.file_expiration_days,
                        Ts::now(),
                        ctx.config.local_root.as_deref(),
                    )
                    .await;
                    match r {
                        Ok(rep) => tracing::info!(
                            deleted = rep.deleted.len(),
                            dirs = rep.removed_dirs,
                            "expired files cleaned up"
                        ),
                        Err(e) => tracing::warn!(error = %e, "file cleanup failed"),
                    }
                }
            })
        });
        Ok(Sink {
            ctx,
            encoders,
            enc_ctx,
            dispatchers: RwLock::new(HashMap::new()),
            table_owners: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            checkpoint_mode: std::sync::atomic::AtomicU8::new(MODE_UNSET),
            checkpoint: tokio::sync::Mutex::new(CheckpointState::new(
                config.checkpoint_interval,
                config.local_root.clone(),
                changes,
            )),
            tasks: Mutex::new(tasks),
            cleanup: Mutex::new(cleanup),
        })
    }

    fn usable(&self) -> Result<()> {
        self.ctx.failure.check()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(SinkError::Closed);
        }
        Ok(())
    }

    /// A schema or table name is a path segment of every key written for it: the layout's
    /// rules ([`validate_name`]), and no `\` where the store turns it into `/`.
    fn check_name(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        if self.ctx.config.backslash_is_separator && name.contains('\\') {
            return Err(cdc_common::Error::InvalidName {
                name: name.escape_debug().to_string(),
                reason: "contains `\\`, which this store (Azure Blob Storage) turns into `/`"
                    .into(),
            }
            .into());
        }
        Ok(())
    }

    fn dispatcher(&self, id: &str) -> Result<Arc<DispatcherState>> {
        self.dispatchers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| SinkError::UnknownDispatcher(id.to_string()))
    }

    /// Registers a dispatcher. With [`FileNaming::Dispatcher`] its id appears in file names
    /// and must be `[A-Za-z0-9-]{1,128}`.
    pub fn add_dispatcher(&self, id: &str, naming: FileNaming) -> Result<()> {
        self.usable()?;
        if id.is_empty() {
            return Err(SinkError::param("dispatcher", "id must not be empty"));
        }
        if naming == FileNaming::Dispatcher {
            build_file_name(Some(id), 1, &self.ctx.layout)?;
        }
        let mut map = self.dispatchers.write().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(id) {
            return Err(SinkError::DuplicateDispatcher(id.to_string()));
        }
        let d = DispatcherState::new(
            id,
            naming,
            self.ctx.options.worker_count,
            self.ctx.config.writer_count,
        );
        map.insert(id.to_string(), Arc::new(d));
        Ok(())
    }

    /// Unregisters a dispatcher after flushing everything it handed in (their flush callbacks
    /// have run when this returns `Ok`), except the last transaction of a table without a
    /// primary key when it is not known complete (docs/format.md, writer rule 7): no event of
    /// the dispatcher with a later commit ts arrived, and its ts is above what
    /// [`Sink::mark_resolved`] / [`Sink::checkpoint`] said was handed in. That transaction is
    /// released unpublished: its flush callbacks never run, it is never acknowledged, and its
    /// next owner must get it again from the upstream, whole. So the caller's checkpoint must
    /// not pass it (TiCDC's, built from flush callbacks, does not). A caller that wants it
    /// written calls `mark_resolved(ts)` or `checkpoint(ts)` first.
    pub async fn remove_dispatcher(&self, id: &str) -> Result<()> {
        self.usable()?;
        let d = self.dispatcher(id)?;
        self.drain(&[Arc::clone(&d)], Ts::ZERO, true).await?;
        self.dispatchers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        let owned = std::mem::take(&mut *d.owned_tables.lock().unwrap_or_else(|e| e.into_inner()));
        let mut owners = self.table_owners.lock().unwrap_or_else(|e| e.into_inner());
        for t in owned {
            owners.remove(&t);
        }
        Ok(())
    }

    /// Hands in one table's share of a transaction. Never blocks: the event is queued to its
    /// encoder thread and this returns. `wake` runs once the encoded event is under the spool's
    /// quota (possibly on another thread, possibly much later under backpressure); `flush` runs
    /// once it is durable in storage, never if it is not. Either may call `add_dml_event` again and
    /// neither may block (see [`Sink`], "What a wake or flush callback may do"). Errors: an unknown
    /// dispatcher, a table or schema name unusable as a path segment, a row that does not match its
    /// table ([`SinkError::InvalidRow`]), a commit ts out of order for the dispatcher
    /// ([`SinkError::OutOfOrder`]), a closed or stopped sink. A refused event is not accepted (its
    /// callbacks are dropped unrun); only a stopped sink stays stopped.
    pub fn add_dml_event(
        &self,
        dispatcher: &str,
        event: DmlEvent,
        wake: Option<Callback>,
        flush: Option<Callback>,
    ) -> Result<()> {
        self.usable()?;
        let d = self.dispatcher(dispatcher)?;
        self.check_name(&event.table.schema)?;
        self.check_name(&event.table.table)?;
        // Refused events leave no trace: every check runs before anything is recorded.
        validate::check_rows(dispatcher, &event)?;
        let ts = event.commit_ts;
        d.check_dml_ts(ts)?;
        if d.file_id.is_none() {
            self.claim_table(&d, &event.table)?;
        }
        d.note_dml(ts);
        d.track(ts);
        if event.rows.len() <= self.ctx.config.inline_encode_max_rows
            && self.spool_has_room()
            && d.try_claim_inline()
        {
            match encode_inline(&self.enc_ctx, &d, event, wake, flush) {
                Offer::Done => d.leave(),
                // The claim passes to the task; its encoder thread leaves it.
                Offer::WaitForSpace(e) => {
                    if !self.encoders.send(d.encoder, EncodeTask::Encoded(e)) {
                        d.leave();
                        d.untrack(ts);
                        return Err(SinkError::Closed);
                    }
                }
            }
            return self.ctx.failure.check();
        }
        d.enter();
        self.ctx.metrics.encoder_queue_length.inc();
        let encoder = d.encoder;
        let task = EncodeTask::Dml {
            dispatcher: Arc::clone(&d),
            event,
            wake,
            flush,
        };
        if !self.encoders.send(encoder, task) {
            self.ctx.metrics.encoder_queue_length.dec();
            d.leave();
            d.untrack(ts);
            return Err(SinkError::Closed);
        }
        Ok(())
    }

    /// Checks that `d` (table file names) is the only such writer of `table`; the shared map is
    /// consulted once per (dispatcher, table), then the dispatcher's own list answers.
    fn claim_table(&self, d: &DispatcherState, table: &cdc_common::TableDef) -> Result<()> {
        let mut owned = d.owned_tables.lock().unwrap_or_else(|e| e.into_inner());
        if owned
            .iter()
            .any(|t| t.schema == table.schema && t.table == table.table)
        {
            return Ok(());
        }
        let name = table.name();
        let mut owners = self.table_owners.lock().unwrap_or_else(|e| e.into_inner());
        let owner = owners
            .entry(name.clone())
            .or_insert_with(|| Arc::clone(&d.id));
        if **owner != *d.id {
            return Err(SinkError::TableOwned {
                table: name.to_string(),
                owner: owner.to_string(),
            });
        }
        owned.push(name);
        Ok(())
    }

    /// True while the spool's memory is under half its quota and wakes flow: the inline path
    /// then never spills on the caller's thread in practice.
    fn spool_has_room(&self) -> bool {
        let st = self.ctx.spool.stats();
        !st.holding && st.memory_bytes < self.ctx.spool.config().memory_quota / 2
    }

    /// Waits until every DML the listed dispatchers handed in before this call is durable
    /// (a DDL at `event.commit_ts` that needs no schema file of its own, or whose schema file
    /// another dispatcher writes). A DDL below a listed dispatcher's last DML or last DDL is
    /// refused with [`SinkError::OutOfOrder`] before anything is drained; afterwards the
    /// dispatchers accept only DMLs at or above `event.commit_ts`.
    pub async fn pass_block_event(&self, event: &DdlEvent, dispatchers: &[&str]) -> Result<()> {
        self.usable()?;
        let ds = dispatchers
            .iter()
            .map(|id| self.dispatcher(id))
            .collect::<Result<Vec<_>>>()?;
        for d in &ds {
            d.check_ddl_ts(event.commit_ts)?;
        }
        for d in &ds {
            d.note_ddl(event.commit_ts);
        }
        let start = Instant::now();
        self.drain(&ds, event.commit_ts, false).await?;
        self.ctx
            .metrics
            .ddl_drain_seconds
            .observe(start.elapsed().as_secs_f64());
        Ok(())
    }

    /// Drains like [`Sink::pass_block_event`], then writes the DDL's schema files: one per
    /// table in `event.tables`, or the database-level file for CREATE/DROP DATABASE.
    pub async fn write_block_event(&self, event: &DdlEvent, dispatchers: &[&str]) -> Result<()> {
        // A name that cannot be a path segment is refused before anything is drained or
        // written, and does not stop the sink.
        if event.kind.is_schema_level() {
            self.check_name(&event.schema)?;
        }
        for t in &event.tables {
            self.check_name(&t.schema)?;
            self.check_name(&t.table)?;
        }
        let files = schema_files(event);
        for f in &files {
            f.path().build()?;
        }
        self.pass_block_event(event, dispatchers).await?;
        let ctx = &self.ctx;
        // `schema_files` makes one file per table of a table-level DDL, in its order.
        let tables = (!event.kind.is_schema_level()).then_some(&event.tables);
        for (i, f) in files.iter().enumerate() {
            let def = tables.and_then(|t| t.get(i));
            if let Err(e) = ctx.schemas.write_ddl_file(&ctx.schema_io(), f, def).await {
                ctx.failure.fail(e.clone());
                return Err(e);
            }
        }
        Ok(())
    }

    async fn drain(&self, ds: &[Arc<DispatcherState>], ts: Ts, remove: bool) -> Result<()> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut expected = 0;
        for d in ds {
            let marker = DrainMarker {
                ts,
                reply: tx.clone(),
            };
            let task = EncodeTask::Drain {
                dispatcher: Arc::clone(d),
                marker,
                remove,
            };
            d.enter();
            if !self.encoders.send(d.encoder, task) {
                d.leave();
                return Err(SinkError::Closed);
            }
            expected += 1;
        }
        drop(tx);
        let mut first_err = None;
        for _ in 0..expected {
            match rx.recv().await {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                None => {
                    first_err.get_or_insert(self.ctx.failure.error().unwrap_or(SinkError::Closed));
                    break;
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Advances the checkpoint file `metadata` towards `ts` (see [`CheckpointOutcome`]):
    /// monotonic, rate-limited, clamped below every event handed in and not yet durable at the
    /// moment the file is written (a ts deferred earlier included), and refused once the sink
    /// has stopped on an error.
    ///
    /// `ts` is also the caller's word that every event at or below it has been handed in
    /// (TiCDC's resolved ts): the writers then close the files of tables without a primary key
    /// at that commit ts (docs/format.md, writer rule 7). A `ts` given too early can make such
    /// a file end inside a transaction.
    pub async fn checkpoint(&self, ts: Ts) -> Result<CheckpointOutcome> {
        self.ctx.failure.check()?;
        self.claim_checkpoint_mode(false)?;
        let ctx = &self.ctx;
        ctx.note_handed_in(ts);
        let mut st = self.checkpoint.lock().await;
        let r = st
            .advance(
                &ctx.store,
                &ctx.config.retry,
                &ctx.metrics,
                ts,
                || self.min_pending(),
                false,
            )
            .await;
        if let Err(e) = &r {
            tracing::warn!(error = %e, "checkpoint write failed");
        }
        r
    }

    /// Tells the sink that every event with a commit ts at or below `ts` has been handed in
    /// (TiCDC's resolved ts), without writing anything. [`Sink::checkpoint`] says the same of
    /// its ts; a caller that checkpoints only behind flush callbacks (the capture confirms a
    /// transaction once its events are durable) calls this when a transaction is handed in
    /// whole. A table without a primary key has its file closed at a commit ts only once that
    /// ts is known complete (docs/format.md, writer rule 7): without this call, or a later
    /// event of the same dispatcher, its last transaction stays open until a DDL drain, spool
    /// pressure or close. One atomic update; callable from a callback.
    pub fn mark_resolved(&self, ts: Ts) {
        self.ctx.note_handed_in(ts);
    }

    /// The checkpoint in storage: the last one this sink wrote or, before its first write, the
    /// one a previous run left (`None` for new storage). An upstream restarting after a crash
    /// resends every event with a commit ts above it; events at or below it are durable.
    pub async fn stored_checkpoint(&self) -> Result<Option<Ts>> {
        let ctx = &self.ctx;
        let mut st = self.checkpoint.lock().await;
        st.stored(&ctx.store, &ctx.config.retry, &ctx.metrics).await
    }

    /// Fixes which checkpoint writer this sink serves (`node`: a `NodeCheckpoint`), or refuses
    /// a call of the other one.
    pub(crate) fn claim_checkpoint_mode(&self, node: bool) -> Result<()> {
        let want = if node { MODE_NODE } else { MODE_SINGLE };
        match self.checkpoint_mode.compare_exchange(
            MODE_UNSET,
            want,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            Err(had) if had == want => Ok(()),
            Err(_) => Err(SinkError::param(
                "checkpoint",
                if node {
                    "this sink already wrote `metadata` through Sink::checkpoint; a NodeCheckpoint \
                     on the same sink would mix one node's progress with the minimum over nodes"
                } else {
                    "this sink is a node of several (NodeCheckpoint): Sink::checkpoint would \
                     write `metadata` from this node's progress alone"
                },
            )),
        }
    }

    /// What the writers share (store, config, metrics, failure): for `node_checkpoint.rs`.
    pub(crate) fn ctx(&self) -> &WriterContext {
        &self.ctx
    }

    /// The smallest commit ts handed in and not yet durable, over every dispatcher.
    pub(crate) fn min_pending(&self) -> Option<Ts> {
        self.dispatchers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|d| d.min_pending())
            .min()
    }

    /// The error that stopped the sink, if any.
    pub fn error(&self) -> Option<SinkError> {
        self.ctx.failure.error()
    }

    /// A snapshot of the spool's accounting.
    pub fn spool_stats(&self) -> SpoolStats {
        self.ctx.spool.stats()
    }

    /// The options in force.
    pub fn options(&self) -> &SinkOptions {
        &self.ctx.options
    }

    /// Flushes everything accepted, writes a deferred checkpoint, stops every worker, closes
    /// the spool and unregisters the metrics.
    ///
    /// One exception to "everything accepted": a table without a primary key whose last
    /// transaction is not known complete (no later commit ts of its dispatcher arrived, and
    /// its ts is above what [`Sink::mark_resolved`] / [`Sink::checkpoint`] said was handed in)
    /// does not get that transaction published (docs/format.md, writer rule 7): it is released
    /// unpublished, its flush callbacks never run and the checkpoint stays below its ts, so the
    /// upstream resends it whole after the restart. An embedder that wants its last keyless
    /// transaction written on close calls `mark_resolved(ts)` or `checkpoint(ts)` first
    /// (`cdc-storage generate` and the capture do). Returns the error that stopped the sink, if any.
    /// Later calls return `Ok` (or that error) and do nothing.
    pub async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return self.ctx.failure.check();
        }
        if let Some(c) = self
            .cleanup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            c.abort();
        }
        // Encoders forward everything queued before the stop, then exit.
        let threads = self.encoders.stop();
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        // Writers flush everything (reason `close`; a keyless transaction not known complete is
        // dropped, `keyless_cut.rs`) and exit.
        let mut waits = Vec::new();
        for w in &self.enc_ctx.writers {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if w.send(WriterMsg::Close { done: tx }) {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.await;
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        if self.ctx.failure.check().is_ok() {
            let ctx = &self.ctx;
            let mut st = self.checkpoint.lock().await;
            if let Some(ts) = st.deferred() {
                if let Err(e) = st
                    .advance(
                        &ctx.store,
                        &ctx.config.retry,
                        &ctx.metrics,
                        ts,
                        || self.min_pending(),
                        true,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "final checkpoint write failed");
                }
            }
        }
        if let Err(e) = self.ctx.spool.clone().close() {
            tracing::warn!(error = %e, "spool close failed");
        }
        self.ctx.metrics.unregister();
        self.ctx.failure.check()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            // Not closed: stop the encoder threads (they exit once their queues are empty);
            // writers end when the last queue handle goes. Nothing unflushed is acknowledged.
            drop(self.encoders.stop());
        }
    }
}
