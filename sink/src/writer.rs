//! Writers: one tokio task per shard, owning the batches of the dispatchers routed to it and
//! publishing them as data files, then index files.
//!
//! # Loop
//!
//! ```text
//!            +--> Dml      append to batch (dispatcher, table, version, partition, date);
//!            |             batch >= file-size            -> flush it        (file-size)
//!  queue ----+--> Drain    flush every batch of the dispatcher, answer      (drain)
//!  (FIFO)    +--> Remove   same, then answer                                (remove)
//!            +--> Pressure spool holds wakes / lacks disk -> flush all      (spool-pressure)
//!            +--> Close    flush all, answer, exit                          (close)
//!  timer  -----> the oldest batch deadline passed -> flush every batch due  (interval)
//! ```
//!
//! The open batches and their deadlines are the writer's [`BatchTable`] (`batch_table.rs`):
//! each batch has its own deadline, `created + flush-interval`, so batches of different tables
//! that started at different times flush at different times.
//!
//! A `file-size`, `interval` or `spool-pressure` flush of a table without a primary key keeps
//! the batch's trailing commit ts back (open, for the next file) unless it is known complete,
//! and a file-size trigger on a batch that is one incomplete transaction does not take it out
//! at all; if after such a flush the kept runs alone hold the spool's wakes (they weigh more
//! than its low watermark) or the disk is full, they are published too (`keyless_cut.rs`).
//! `drain` publishes everything. `remove` and `close` publish everything except such a
//! trailing run not known complete: it is dropped unpublished (its flush callbacks never run,
//! the upstream resends the transaction; phase *drop incomplete* of `Writer::flush`).
//!
//! # Publishing one batch
//!
//! 1. *Look up* (`flush-concurrency` at a time for the whole flush, `plan_lookup.rs`): resolve
//!    each batch's table version directory (the schema file exists: written or reused, see
//!    `schema.rs`); for a `(data dir, dispatcher)` not numbered yet, read the next file index
//!    from storage: `index file content + 1`, after deleting the files a crashed run published
//!    above the index entry (never read by a consumer, never acknowledged; see
//!    `discover_next_index`). *Plan* (sequential, in the writer, no I/O): name the file in the
//!    date directory of its commit ts and take the stream's next number.
//! 2. *Publish* (up to `flush-concurrency` batches at once): the payload is the header plus
//!    the chunks - memory entries shared, not copied; spilled entries read back under a shared
//!    budget of `upload-memory` bytes, so uploads add a bounded amount to the spool's quota.
//!    The codec's whole-file step runs next on a blocking thread (`finish_file`: compression,
//!    parquet; a plain csv/json/avro file passes unchanged).
//!    Put the data file (multipart at or above the multipart threshold, at most two parts
//!    buffered), then put the index file naming it. A rewritten file at or above the threshold
//!    is not held whole: its whole-file step streams into the multipart upload
//!    (`streamed_put.rs`). Each put is retried
//!    with backoff and bounded by a per-request timeout (`retry.rs`).
//!    A flush takes along its streams' open batches of earlier date directories, and a
//!    stream's files in different date directories (a batch before midnight and one after;
//!    one stream = dispatcher, table version, partition) publish one after the other in date
//!    order, never concurrently: see "Streams across date directories".
//! 3. *Complete*: release the batch's spool entries in order - the spool runs each event's flush
//!    callback, then frees its bytes (which may resume held wakes).
//!
//! A batch whose publishing fails for good stops the sink (sticky error, error callback): its
//! entries are dropped, so their flush callbacks never run and the checkpoint never passes them.
//! From then on the writer drops what it receives and answers markers with the error.
//!
//! # Streams across date directories
//!
//! A consumer reads a stream's date directories in date order and, once it applied a file of
//! a later directory, never goes back to an earlier one (rows without a commit ts are applied
//! as soon as their file is indexed). So no index entry of a stream in a later directory may
//! be put before every file of its earlier directories that the same flush publishes: with
//! `flush-concurrency` above one, a small batch after midnight would otherwise be indexed
//! before a large one before it, and the consumer would skip the late file for good. So:
//!
//! - a flush takes along the still open batches of the same streams in earlier date
//!   directories (`BatchTable::take_earlier_days`): a file-size flush of the batch after
//!   midnight must not publish it while the batch before midnight waits for its deadline;
//! - the stream's batches of one flush are published in date order, one after the other
//!   (`stream_chains`, `publish_chain`); different streams still publish concurrently.
//!
//! Flushes run one after the other, so batches of different flushes are ordered already.

use crate::batch::{Batch, BatchKey, Pending};
use crate::batch_table::BatchTable;
use crate::changes::ChangeLog;
use crate::config::SinkConfig;
use crate::create_only::{self, DataTarget};
use crate::ddl::DrainMarker;
use crate::error::Result;
use crate::failure::Failure;
use crate::flush::FlushReason;
use crate::keyless_cut::{self, Cut};
use crate::metrics::{BusyMeter, SinkMetrics};
use crate::plan_lookup;
use crate::retry::retry;
use crate::router::DispatcherState;
use crate::schema::SchemaCache;
use bytes::Bytes;
use cdc_common::codec::{Codec, TableCodec};
use cdc_common::layout::{DataDir, DataFile, DateDir, IndexFile, LayoutConfig};
use cdc_common::storage::key;
use cdc_common::{SinkOptions, TableDef, TableName, Ts};
use cdc_spool::{Entry, Spool};
use futures::StreamExt;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

/// A message to a writer.
pub(crate) enum WriterMsg {
    /// One encoded event, in the spool.
    Dml {
        dispatcher: Arc<DispatcherState>,
        table: Arc<TableDef>,
        partition_id: Option<i64>,
        commit_ts: Ts,
        rows: usize,
        entry: Entry,
    },
    /// Flush every batch of the dispatcher, then answer.
    Drain {
        dispatcher: Arc<DispatcherState>,
        marker: DrainMarker,
    },
    /// The dispatcher is removed: flush its batches, then answer.
    Remove {
        dispatcher: Arc<DispatcherState>,
        marker: DrainMarker,
    },
    /// The spool needs room.
    Pressure,
    /// Flush everything and stop.
    Close { done: oneshot::Sender<()> },
}

/// The sending side of one writer, counting its queue length.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    tx: UnboundedSender<WriterMsg>,
    queue: prometheus::IntGauge,
}

impl WriterHandle {
    /// Queues a message; false if the writer is gone (the message is dropped, which drops any
    /// entry in it without running its flush callback).
    pub fn send(&self, msg: WriterMsg) -> bool {
        self.queue.inc();
        if self.tx.send(msg).is_err() {
            self.queue.dec();
            return false;
        }
        true
    }
}

/// What every writer shares.
pub(crate) struct WriterContext {
    pub store: Arc<dyn ObjectStore>,
    pub layout: LayoutConfig,
    pub options: SinkOptions,
    pub config: SinkConfig,
    pub spool: Spool,
    pub codec: Arc<dyn Codec>,
    pub schemas: Arc<SchemaCache>,
    /// Tables touched since the last checkpoint write (for the change summary).
    pub changes: Arc<ChangeLog>,
    pub metrics: Arc<SinkMetrics>,
    pub failure: Arc<Failure>,
    /// Permits (KiB) for bytes read back from spilled entries by uploads in flight.
    pub upload_memory: Arc<tokio::sync::Semaphore>,
    /// Total permits of `upload_memory`.
    pub upload_memory_kib: u32,
    /// The largest ts the caller gave `Sink::checkpoint`, `Sink::mark_resolved` or
    /// `NodeCheckpoint::advance`: every event at or below it has been handed in
    /// (`keyless_cut.rs`).
    pub handed_in: std::sync::atomic::AtomicU64,
    /// The weight of every writer's kept-back runs (`keyless_cut::kept_weight`), as counted
    /// when their flush put them back.
    pub kept_bytes: std::sync::atomic::AtomicU64,
}

impl WriterContext {
    /// The store access schema files take (`schema.rs`).
    pub fn schema_io(&self) -> crate::schema::SchemaIo<'_> {
        crate::schema::SchemaIo {
            store: &self.store,
            policy: &self.config.retry,
            metrics: &self.metrics,
            changes: &self.changes,
        }
    }

    /// Notes the caller's promise that every event at or below `ts` has been handed in.
    pub fn note_handed_in(&self, ts: Ts) {
        self.handed_in
            .fetch_max(ts.0, std::sync::atomic::Ordering::AcqRel);
    }

    /// The largest ts noted by [`WriterContext::note_handed_in`].
    pub fn handed_in(&self) -> Ts {
        Ts(self.handed_in.load(std::sync::atomic::Ordering::Acquire))
    }
}

/// Index files are per (data directory, file id).
pub(crate) type IndexKey = (DataDir, Option<String>);

/// Where one file goes (no spool entries: borrowed across the upload's awaits).
struct Upload {
    data_path: String,
    /// The data file's number, and the index file that will name it (create-only rule).
    number: u64,
    index_file: IndexFile,
    index_path: String,
    index_content: Bytes,
    header: Bytes,
    /// The table version's codec: its `finish_file` turns the parts into the stored bytes.
    codec: Arc<dyn TableCodec>,
}

/// One planned file.
struct Job {
    upload: Upload,
    index_key: IndexKey,
    index: u64,
    batch: Batch,
    reason: FlushReason,
    started: Instant,
}

struct Writer {
    shard: usize,
    ctx: Arc<WriterContext>,
    rx: UnboundedReceiver<WriterMsg>,
    queue: prometheus::IntGauge,
    batches: BatchTable,
    next_index: HashMap<IndexKey, u64>,
    headers: HashMap<(TableName, Ts), (Arc<dyn TableCodec>, Bytes)>,
    busy: BusyMeter,
}

/// Starts the writer of `shard` on the current tokio runtime.
pub(crate) fn spawn(
    shard: usize,
    ctx: Arc<WriterContext>,
) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let queue = ctx
        .metrics
        .writer_queue_length
        .with_label_values(&[&shard.to_string()]);
    let busy = BusyMeter::new(
        ctx.metrics
            .worker_busy_ratio
            .with_label_values(&[&format!("writer-{shard}")]),
    );
    let w = Writer {
        shard,
        batches: BatchTable::new(ctx.options.flush_interval),
        ctx,
        rx,
        queue: queue.clone(),
        next_index: HashMap::new(),
        headers: HashMap::new(),
        busy,
    };
    let handle = tokio::spawn(w.run());
    (WriterHandle { tx, queue }, handle)
}

impl Writer {
    async fn run(mut self) {
        loop {
            let deadline = self.batches.next_deadline();
            let msg = tokio::select! {
                m = self.rx.recv() => m,
                _ = sleep_until(deadline) => {
                    let start = Instant::now();
                    self.flush_due().await;
                    self.busy.add(start.elapsed());
                    continue;
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    self.busy.tick();
                    continue;
                }
            };
            let Some(msg) = msg else {
                // Every sender is gone without a Close: flush what was accepted, as close
                // does (a keyless transaction not known complete is dropped).
                self.flush_all(FlushReason::Close).await.ok();
                return;
            };
            self.queue.dec();
            let start = Instant::now();
            let stop = self.handle(msg).await;
            self.busy.add(start.elapsed());
            if stop {
                return;
            }
        }
    }

    /// Handles one message; true when the writer must stop.
    async fn handle(&mut self, msg: WriterMsg) -> bool {
        match msg {
            WriterMsg::Dml {
                dispatcher,
                table,
                partition_id,
                commit_ts,
                rows,
                entry,
            } => {
                dispatcher.note_arrived(commit_ts);
                if self.ctx.failure.is_failed() {
                    // Dropped: no flush callback, the checkpoint stays behind it.
                    return false;
                }
                let key = self.batch_key(&dispatcher, &table, partition_id, commit_ts);
                let pending = Pending {
                    entry,
                    commit_ts,
                    rows,
                };
                let bytes = self.batches.append(key.clone(), table, dispatcher, pending);
                if bytes >= self.ctx.options.file_size && !self.holds_whole(&key) {
                    if let Some(b) = self.batches.take(&key) {
                        let _ = self.flush(vec![b], FlushReason::FileSize).await;
                    }
                }
                false
            }
            WriterMsg::Drain { dispatcher, marker } => {
                tracing::debug!(shard = self.shard, dispatcher = %dispatcher.id, ts = %marker.ts, "drain");
                let r = self.flush_dispatcher(&dispatcher, FlushReason::Drain).await;
                marker.answer(r);
                false
            }
            WriterMsg::Remove { dispatcher, marker } => {
                let r = self
                    .flush_dispatcher(&dispatcher, FlushReason::Remove)
                    .await;
                marker.answer(r);
                false
            }
            WriterMsg::Pressure => {
                let st = self.ctx.spool.stats();
                if (st.holding || st.disk_quota_waiters > 0) && !self.batches.is_empty() {
                    let _ = self.flush_all(FlushReason::SpoolPressure).await;
                }
                false
            }
            WriterMsg::Close { done } => {
                let _ = self.flush_all(FlushReason::Close).await;
                let _ = done.send(());
                true
            }
        }
    }

    /// The batch an event goes to: its dispatcher, table version, partition (when partitions
    /// get their own directory) and the date directory of its commit ts.
    fn batch_key(
        &self,
        dispatcher: &DispatcherState,
        table: &TableDef,
        partition_id: Option<i64>,
        commit_ts: Ts,
    ) -> BatchKey {
        let layout = &self.ctx.layout;
        BatchKey {
            dispatcher: Arc::clone(&dispatcher.id),
            schema: table.schema.clone(),
            table: table.table.clone(),
            version: table.version,
            partition_id: partition_id.filter(|_| layout.enable_partition_separator),
            date: DateDir::for_ts(layout.date_separator, commit_ts),
        }
    }

    /// True when a flush of `key`'s batch would keep all of it back (a keyless batch that is
    /// one transaction still arriving, `keyless_cut.rs`): it is not taken out, so a large
    /// transaction costs one check per event, not a take and a put-back.
    fn holds_whole(&self, key: &BatchKey) -> bool {
        let handed_in = self.ctx.handed_in();
        self.batches
            .get(key)
            .is_some_and(|b| keyless_cut::would_hold(b, handed_in))
    }

    async fn flush_due(&mut self) {
        let due = self.batches.take_due(Instant::now());
        let _ = self.flush(due, FlushReason::Interval).await;
    }

    async fn flush_all(&mut self, reason: FlushReason) -> Result<()> {
        let batches = self.batches.take_all();
        self.flush(batches, reason).await
    }

    async fn flush_dispatcher(&mut self, d: &DispatcherState, reason: FlushReason) -> Result<()> {
        let batches = self.batches.take_dispatcher(&d.id);
        self.flush(batches, reason).await
    }

    /// Flushes `batches` for `reason`: takes along their streams' earlier days, keeps the
    /// incomplete trailing runs of keyless batches back when the reason allows it (phase
    /// *keep back*, `keyless_cut.rs`) or drops them on close and remove (phase *drop
    /// incomplete*), publishes the rest, and publishes the kept runs too when
    /// they alone hold the spool's wakes afterwards (phase *force*). On failure the sink is
    /// failed and every entry not published is dropped (no flush callback).
    async fn flush(&mut self, mut batches: Vec<Batch>, reason: FlushReason) -> Result<()> {
        self.ctx.failure.check()?;
        if batches.is_empty() {
            return Ok(());
        }
        // A stream's batches of earlier days still open go first (a size flush of the later
        // day's batch must not index it before them), then each stream publishes in date order.
        let mut earlier = Vec::new();
        for b in &batches {
            earlier.extend(self.batches.take_earlier_days(&b.key));
        }
        batches.extend(earlier);
        for b in &mut batches {
            self.unkeep(b);
        }
        let kept = if keyless_cut::defers(reason) {
            self.keep_back_runs(&mut batches)
        } else {
            Vec::new()
        };
        if keyless_cut::drops(reason) {
            self.drop_incomplete_runs(&mut batches, reason);
        }
        self.publish_batches(batches, reason).await?;
        if kept.is_empty() || !self.kept_runs_block_the_spool() {
            return Ok(());
        }
        let mut forced: Vec<Batch> = kept.iter().filter_map(|k| self.batches.take(k)).collect();
        for b in &mut forced {
            self.unkeep(b);
        }
        self.ctx
            .metrics
            .file_cut_forced_total
            .inc_by(forced.len() as u64);
        tracing::warn!(
            shard = self.shard,
            runs = forced.len(),
            "spool under pressure: publishing kept-back commit ts runs of tables without a \
             primary key, their files end inside a commit ts"
        );
        self.publish_batches(forced, FlushReason::SpoolPressure)
            .await
    }

    /// Replaces `batches` by what is to be published now and returns the incomplete trailing
    /// runs of keyless batches cut off them (`keyless_cut::cut`); the shared step of phases
    /// *keep back* and *drop incomplete*.
    fn split_incomplete_runs(&self, batches: &mut Vec<Batch>) -> Vec<Batch> {
        // Read before any transit count (`keyless_cut::trailing_run_complete`).
        let handed_in = self.ctx.handed_in();
        let mut runs = Vec::new();
        let mut publish = Vec::with_capacity(batches.len());
        for b in batches.drain(..) {
            let Cut { publish: now, keep } = keyless_cut::cut(b, handed_in);
            runs.extend(keep);
            publish.extend(now);
        }
        *batches = publish;
        runs
    }

    /// Phase *keep back*: puts each incomplete trailing run of a keyless batch back into the
    /// table, to go to the next file with the rest of its transaction. Returns the keys put
    /// back.
    fn keep_back_runs(&mut self, batches: &mut Vec<Batch>) -> Vec<BatchKey> {
        let runs = self.split_incomplete_runs(batches);
        let mut kept = Vec::with_capacity(runs.len());
        for run in runs {
            kept.push(run.key.clone());
            self.keep(run);
        }
        self.ctx
            .metrics
            .file_cut_deferred_total
            .inc_by(kept.len() as u64);
        kept
    }

    /// Phase *drop incomplete* (close, remove): drops each incomplete trailing run of a
    /// keyless batch: its entries go back to the spool without their flush callbacks, so
    /// nothing acknowledges them and the dispatcher's pending set keeps their ts (the
    /// checkpoint stays below it).
    fn drop_incomplete_runs(&mut self, batches: &mut Vec<Batch>, reason: FlushReason) {
        for run in self.split_incomplete_runs(batches) {
            self.ctx.metrics.incomplete_runs_dropped_total.inc();
            tracing::warn!(
                shard = self.shard,
                table = %run.table.name(),
                dispatcher = %run.dispatcher.id,
                ts = %run.last_ts().unwrap_or(Ts::ZERO),
                events = run.items.len(),
                reason = %reason,
                "transaction of a table without a primary key incomplete at {reason}: not \
                 published and not acknowledged; the upstream resends it from the checkpoint"
            );
            // Dropping the entries frees their spool bytes, once, without flush callbacks.
            drop(run);
        }
    }

    /// Puts a kept-back batch into the table, counting its weight in `kept_bytes`.
    fn keep(&mut self, mut b: Batch) {
        b.kept_weight = keyless_cut::kept_weight(&b);
        self.ctx
            .kept_bytes
            .fetch_add(b.kept_weight, std::sync::atomic::Ordering::AcqRel);
        self.batches.put_back(b);
    }

    /// Takes a batch's kept weight off `kept_bytes` (it was taken out of the table again).
    fn unkeep(&self, b: &mut Batch) {
        if b.kept_weight > 0 {
            self.ctx
                .kept_bytes
                .fetch_sub(b.kept_weight, std::sync::atomic::Ordering::AcqRel);
            b.kept_weight = 0;
        }
    }

    /// The force rule of `keyless_cut.rs`, on the spool's state now.
    fn kept_runs_block_the_spool(&self) -> bool {
        let st = self.ctx.spool.stats();
        keyless_cut::kept_runs_block_the_spool(
            st.holding,
            st.disk_quota_waiters,
            self.ctx
                .kept_bytes
                .load(std::sync::atomic::Ordering::Acquire),
            self.ctx.spool.config().low_watermark,
        )
    }

    /// Plans, publishes and completes `batches` (phase *publish*).
    async fn publish_batches(
        &mut self,
        mut batches: Vec<Batch>,
        reason: FlushReason,
    ) -> Result<()> {
        if batches.is_empty() {
            return self.ctx.failure.check();
        }
        batches.sort_by_key(|b| b.created);
        let started = Instant::now();
        let needs: Vec<plan_lookup::Need> = batches.iter().map(plan_lookup::Need::of).collect();
        let looked = match plan_lookup::look_up(&self.ctx, &needs, &self.next_index).await {
            Ok(l) => l,
            Err(e) => {
                self.ctx.failure.fail(e);
                return self.ctx.failure.check();
            }
        };
        self.next_index.extend(looked.next_index);
        let mut jobs = Vec::with_capacity(batches.len());
        for ((b, need), version) in batches.into_iter().zip(&needs).zip(looked.versions) {
            match self.plan(b, need.index_key(version), reason, started) {
                Ok(job) => jobs.push(job),
                Err(e) => {
                    self.ctx.failure.fail(e);
                    return self.ctx.failure.check();
                }
            }
        }
        let ctx = Arc::clone(&self.ctx);
        let results: Vec<Vec<(Job, Result<u64>)>> = futures::stream::iter(stream_chains(jobs))
            .map(|chain| publish_chain(Arc::clone(&ctx), chain))
            .buffer_unordered(self.ctx.config.flush_concurrency)
            .collect()
            .await;
        for (job, r) in results.into_iter().flatten() {
            match r {
                Ok(bytes) => self.complete(job, bytes),
                Err(e) => self.ctx.failure.fail(e),
            }
        }
        self.ctx.failure.check()
    }

    /// Names the file of `batch` under `index_key` and takes its stream's next
    /// number (known: phase *look up* ran for this flush).
    fn plan(
        &mut self,
        batch: Batch,
        index_key: IndexKey,
        reason: FlushReason,
        started: Instant,
    ) -> Result<Job> {
        // Phase *look up* put every key of this flush that the writer had not numbered.
        let index = *self
            .next_index
            .get(&index_key)
            .expect("the flush's look-up numbered every stream");
        let file = DataFile {
            dir: index_key.0.clone(),
            dispatcher_id: index_key.1.clone(),
            index,
        };
        let data_path = file.build(&self.ctx.layout)?;
        let index_file = file.index_file();
        let index_path = index_file.build()?;
        let name = data_path
            .rsplit('/')
            .next()
            .unwrap_or(&data_path)
            .to_string();
        let index_content = Bytes::from(IndexFile::content(&name));
        // Reserve the index now: a later batch of the same key in this round gets the next.
        self.next_index.insert(index_key.clone(), index + 1);

        let (codec, header) = self.header(&batch.table)?;
        Ok(Job {
            upload: Upload {
                data_path,
                number: index,
                index_file,
                index_path,
                index_content,
                header,
                codec,
            },
            index_key,
            index,
            batch,
            reason,
            started,
        })
    }

    /// The prepared codec of the table version and its file header, made once.
    fn header(&mut self, table: &TableDef) -> Result<(Arc<dyn TableCodec>, Bytes)> {
        let key = (table.name(), table.version);
        if let Some(h) = self.headers.get(&key) {
            return Ok(h.clone());
        }
        let tc: Arc<dyn TableCodec> = Arc::from(self.ctx.codec.prepare(table)?);
        let mut h = Vec::new();
        tc.file_header(&mut h);
        let h = (tc, Bytes::from(h));
        self.headers.insert(key, h.clone());
        Ok(h)
    }

    fn complete(&mut self, job: Job, bytes: u64) {
        let m = &self.ctx.metrics;
        let up = &job.upload;
        m.flush_bytes.observe(bytes as f64);
        m.flush_duration
            .observe(job.started.elapsed().as_secs_f64());
        m.flushed(job.reason);
        m.files_written_total.inc();
        m.bytes_written_total.inc_by(bytes);
        m.rows_written_total.inc_by(job.batch.rows as u64);
        tracing::trace!(shard = self.shard, path = %up.data_path, reason = %job.reason, "published");
        debug_assert!(self.next_index.get(&job.index_key).copied() > Some(job.index));
        let dispatcher = Arc::clone(&job.batch.dispatcher);
        // Runs the events' flush callbacks, then frees their bytes (one spool lock for the
        // whole file); only then may the checkpoint pass the events.
        let mut durable = Vec::with_capacity(job.batch.items.len());
        self.ctx
            .spool
            .release_many(job.batch.items.into_iter().map(|item| {
                durable.push(item.commit_ts);
                item.entry
            }));
        dispatcher.done_all(durable);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => futures::future::pending().await,
    }
}

/// The jobs of one flush as chains, one per stream (dispatcher, table version, partition: what
/// a consumer reads as one stream across date directories), each in date order (see
/// "Streams across date directories" in the module doc). Chains keep the order of their first
/// jobs.
fn stream_chains(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut chains: Vec<Vec<Job>> = Vec::with_capacity(jobs.len());
    // Without date directories a flush holds one batch per stream: every chain is one job.
    if jobs.iter().all(|j| j.batch.key.date.is_none()) {
        chains.extend(jobs.into_iter().map(|j| vec![j]));
        return chains;
    }
    let mut by_stream: HashMap<BatchKey, usize> = HashMap::with_capacity(jobs.len());
    for job in jobs {
        match by_stream.entry(job.batch.key.stream()) {
            std::collections::hash_map::Entry::Occupied(e) => chains[*e.get()].push(job),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(chains.len());
                chains.push(vec![job]);
            }
        }
    }
    for c in &mut chains {
        c.sort_by_key(|a| a.batch.key.date);
    }
    chains
}

/// Publishes one stream's jobs one after the other (data file, then index entry, then the
/// next); after a failure the later jobs are not tried (their index entries would name files
/// past a gap) and carry the same error, so their entries are dropped unacknowledged.
async fn publish_chain(ctx: Arc<WriterContext>, chain: Vec<Job>) -> Vec<(Job, Result<u64>)> {
    let mut out = Vec::with_capacity(chain.len());
    let mut failed: Option<crate::error::SinkError> = None;
    for job in chain {
        if let Some(e) = &failed {
            out.push((job, Err(e.clone())));
            continue;
        }
        let (job, r) = publish_job(Arc::clone(&ctx), job).await;
        if let Err(e) = &r {
            failed = Some(e.clone());
        }
        out.push((job, r));
    }
    out
}

/// Reads a job's chunks and publishes its file. Memory entries are shared, not copied (the
/// payload is the list of chunks); spilled entries are read back with one batched read
/// (`Spool::read_many_into`) under the upload-memory permits, so that bytes read back for
/// uploads in flight stay within `upload-memory` (the read buffers behind them hold at most
/// 3/2 of the payload bytes plus 11 bytes per record, see `cdc_spool::batch_read`).
async fn publish_job(ctx: Arc<WriterContext>, job: Job) -> (Job, Result<u64>) {
    let spilled: u64 = job
        .batch
        .items
        .iter()
        .filter(|p| p.entry.is_spilled())
        .map(|p| p.entry.len() as u64)
        .sum();
    let _permit = if spilled > 0 {
        let limit = ctx.upload_memory_kib;
        let want = spilled.div_ceil(1024).min(u64::from(limit)) as u32;
        // Closed semaphores do not occur (never closed); proceed without a permit then.
        Arc::clone(&ctx.upload_memory)
            .acquire_many_owned(want)
            .await
            .ok()
    } else {
        None
    };
    let mut chunks = Vec::with_capacity(job.batch.items.len() + 1);
    if !job.upload.header.is_empty() {
        chunks.push(job.upload.header.clone());
    }
    // One batched read: records of this batch that lie together in a segment come back with
    // one positioned read per run (at most 1 MiB), each still length- and CRC-checked.
    let entries = job.batch.items.iter().map(|p| &p.entry);
    if let Err(e) = ctx.spool.read_many_into(entries, &mut chunks) {
        return (job, Err(e.into()));
    }
    let len: usize = chunks.iter().map(Bytes::len).sum();
    if job.upload.codec.rewrites_file() && len >= ctx.config.multipart_threshold {
        let r = publish_streamed(&ctx, &job.upload, chunks).await;
        return (job, r);
    }
    let chunks = match finish_file(&ctx, &job.upload, chunks).await {
        Ok(c) => c,
        Err(e) => return (job, Err(e)),
    };
    let r = publish(&ctx, &job.upload, chunks).await;
    (job, r)
}

/// A large rewritten file (parquet, compressed): the whole-file step streams into a multipart
/// upload (`streamed_put.rs`), then the index file is put.
async fn publish_streamed(ctx: &WriterContext, job: &Upload, chunks: Vec<Bytes>) -> Result<u64> {
    create_only::check_data_name(&data_target(ctx, job)).await?;
    let len = crate::streamed_put::put_streamed(ctx, &job.codec, &job.data_path, &chunks).await?;
    drop(chunks);
    ctx.metrics.files_streamed_total.inc();
    put_index(ctx, job).await?;
    Ok(len)
}

/// The whole-file step (compression, parquet) on a blocking thread: it is CPU work on the
/// whole file and must not stall the writer's other uploads. A plain file passes unchanged,
/// without a trip to a blocking thread (two thread wake-ups per file) and unobserved.
async fn finish_file(ctx: &WriterContext, job: &Upload, chunks: Vec<Bytes>) -> Result<Vec<Bytes>> {
    if !job.codec.rewrites_file() {
        return Ok(chunks);
    }
    let codec = Arc::clone(&job.codec);
    let path = job.data_path.clone();
    let started = Instant::now();
    let r = tokio::task::spawn_blocking(move || codec.finish_file(&path, chunks))
        .await
        .map_err(|e| cdc_common::Error::Encode {
            what: format!("data file `{}`", job.data_path),
            reason: format!("the finishing thread failed: {e}"),
        })??;
    ctx.metrics
        .file_finish_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(r)
}

/// What the create-only rule needs to publish `job`'s data file (`create_only.rs`).
fn data_target<'a>(ctx: &'a WriterContext, job: &'a Upload) -> DataTarget<'a> {
    DataTarget {
        store: &ctx.store,
        policy: &ctx.config.retry,
        metrics: &ctx.metrics,
        layout: &ctx.layout,
        path: &job.data_path,
        number: job.number,
        index: &job.index_file,
        index_path: &job.index_path,
    }
}

/// Puts the data file (create-only single put, or multipart at or above the threshold after
/// checking the name), then the index file. Returns the data file's size.
async fn publish(ctx: &WriterContext, job: &Upload, chunks: Vec<Bytes>) -> Result<u64> {
    let policy = &ctx.config.retry;
    let store = &ctx.store;
    let location = key(&job.data_path)?;
    let len: usize = chunks.iter().map(Bytes::len).sum();
    if len >= ctx.config.multipart_threshold {
        create_only::check_data_name(&data_target(ctx, job)).await?;
        let part = ctx.config.multipart_part_size;
        let parts = len.div_ceil(part) as u32;
        retry(
            policy,
            &ctx.metrics,
            "multipart",
            &job.data_path,
            parts + 1,
            || async {
                let upload = store.put_multipart(&location).await?;
                let mut w = WriteMultipart::new_with_chunk_size(upload, part);
                for c in &chunks {
                    // At most two parts buffered per upload.
                    w.wait_for_capacity(2).await?;
                    w.put(c.clone());
                }
                w.finish().await
            },
        )
        .await?;
    } else {
        let payload: PutPayload = chunks.into_iter().collect();
        create_only::put_data_file(&data_target(ctx, job), payload).await?;
    }
    put_index(ctx, job).await?;
    Ok(len as u64)
}

/// Puts the index file naming the data file just stored, then notes its table for the change
/// summary (after the put, failed or not: see `changes.rs`).
async fn put_index(ctx: &WriterContext, job: &Upload) -> Result<()> {
    let index_location = key(&job.index_path)?;
    let put = retry(
        &ctx.config.retry,
        &ctx.metrics,
        "put",
        &job.index_path,
        1,
        || {
            ctx.store
                .put(&index_location, PutPayload::from(job.index_content.clone()))
        },
    )
    .await;
    let dir = &job.index_file.dir;
    ctx.changes.note_table(&dir.schema, &dir.table);
    put?;
    Ok(())
}
