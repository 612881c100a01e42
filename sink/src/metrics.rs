//! Sink metrics, registered on the embedding service's registry with a constant `changefeed`
//! label (the spool registers its own `cdc_spool_*` family on the same registry).
//!
//! | name | type | labels | meaning |
//! |------|------|--------|---------|
//! | `cdc_sink_flush_bytes` | histogram | | bytes of one data file |
//! | `cdc_sink_flush_duration_seconds` | histogram | | schema check + data put + index put of one file |
//! | `cdc_sink_flushes_total` | counter | `reason` | flushes by [`FlushReason`] |
//! | `cdc_sink_file_finish_seconds` | histogram | | whole-file step of one data file before its put (compression, parquet), on a blocking thread; plain files are not observed |
//! | `cdc_sink_files_streamed_total` | counter | | data files whose whole-file step streamed into a multipart upload (rewritten files at or above the multipart threshold) |
//! | `cdc_sink_files_written_total` | counter | | data files published |
//! | `cdc_sink_bytes_written_total` | counter | | data file bytes published |
//! | `cdc_sink_rows_written_total` | counter | | rows in published data files |
//! | `cdc_sink_ddl_drain_seconds` | histogram | | time `pass_block_event`/`write_block_event` waited for the drain |
//! | `cdc_sink_writer_queue_length` | gauge | `shard` | messages queued to a writer |
//! | `cdc_sink_encoder_queue_length` | gauge | | events queued to the encoding pool (not yet in the spool) |
//! | `cdc_sink_worker_busy_ratio` | gauge | `worker` | share of the last second a worker (`encoder-N`, `writer-N`) was busy |
//! | `cdc_sink_storage_errors_total` | counter | `op` | failed storage attempts (errors and timeouts); every op pre-created at 0 |
//! | `cdc_sink_storage_retries_total` | counter | | storage attempts retried |
//! | `cdc_sink_checkpoint_ts` | gauge | | last checkpoint ts written to `metadata` |
//! | `cdc_sink_node_checkpoint_ts` | gauge | | last progress ts written to this node's `metadata.node-<i>` (several sink processes) |
//! | `cdc_sink_checkpoint_conflicts_total` | counter | | conditional `metadata` writes that lost to another writer and were decided again |
//! | `cdc_sink_change_summary_writes_total` | counter | | change summaries (`changes.metadata`) put before a `metadata` write |
//! | `cdc_sink_change_summary_failures_total` | counter | | change summary puts that failed (consumers do full rounds until the next one) |
//! | `cdc_sink_stale_files_deleted_total` | counter | | data files a crashed run left above its index entry, deleted on restart |
//! | `cdc_sink_file_cut_deferred_total` | counter | | flushed batches of tables without a primary key whose trailing commit ts was kept back for the next file (`keyless_cut.rs`) |
//! | `cdc_sink_file_cut_forced_total` | counter | | kept-back runs published anyway because they alone held the spool above its low watermark (or the disk was full): files of tables without a primary key ending inside a commit ts |
//! | `cdc_sink_incomplete_runs_dropped_total` | counter | | trailing commit ts runs of tables without a primary key not known complete at `close` or a dispatcher's `remove`: released from the spool unpublished, never acknowledged (the upstream resends them) |
//!
//! [`FlushReason`]: crate::flush::FlushReason

use crate::flush::FlushReason;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use std::time::{Duration, Instant};

/// Every `op` label of `cdc_sink_storage_errors_total` (the operations `retry` wraps).
pub(crate) const STORAGE_OPS: [&str; 6] = ["put", "multipart", "get", "head", "list", "delete"];

/// The metric handles of one sink.
pub(crate) struct SinkMetrics {
    registry: Registry,
    pub flush_bytes: Histogram,
    pub flush_duration: Histogram,
    pub file_finish_seconds: Histogram,
    pub flushes_total: IntCounterVec,
    pub files_written_total: IntCounter,
    pub files_streamed_total: IntCounter,
    pub bytes_written_total: IntCounter,
    pub rows_written_total: IntCounter,
    pub ddl_drain_seconds: Histogram,
    pub writer_queue_length: IntGaugeVec,
    pub encoder_queue_length: IntGauge,
    pub worker_busy_ratio: prometheus::GaugeVec,
    pub storage_errors_total: IntCounterVec,
    pub storage_retries_total: IntCounter,
    pub checkpoint_ts: IntGauge,
    pub node_checkpoint_ts: IntGauge,
    pub checkpoint_conflicts_total: IntCounter,
    pub change_summary_writes_total: IntCounter,
    pub change_summary_failures_total: IntCounter,
    pub stale_files_deleted: IntCounter,
    pub file_cut_deferred_total: IntCounter,
    pub file_cut_forced_total: IntCounter,
    pub incomplete_runs_dropped_total: IntCounter,
}

impl SinkMetrics {
    /// Registers every metric; on failure nothing stays registered.
    pub fn register(registry: &Registry, changefeed: &str) -> prometheus::Result<SinkMetrics> {
        let opts = |name: &str, help: &str| {
            Opts::new(name, help).const_label(cdc_spool::CHANGEFEED_LABEL, changefeed)
        };
        let hopts = |name: &str, help: &str, buckets: Vec<f64>| {
            HistogramOpts::new(name, help)
                .const_label(cdc_spool::CHANGEFEED_LABEL, changefeed)
                .buckets(buckets)
        };
        let size_buckets = prometheus::exponential_buckets(1024.0, 4.0, 11)?;
        let time_buckets = prometheus::exponential_buckets(0.0005, 2.0, 18)?;
        let m = SinkMetrics {
            registry: registry.clone(),
            flush_bytes: Histogram::with_opts(hopts(
                "cdc_sink_flush_bytes",
                "Bytes of one published data file.",
                size_buckets,
            ))?,
            flush_duration: Histogram::with_opts(hopts(
                "cdc_sink_flush_duration_seconds",
                "Time to publish one data file: schema check, data put, index put.",
                time_buckets.clone(),
            ))?,
            file_finish_seconds: Histogram::with_opts(hopts(
                "cdc_sink_file_finish_seconds",
                "Time of the whole-file step of one data file (compression, parquet) before its put.",
                time_buckets.clone(),
            ))?,
            flushes_total: IntCounterVec::new(
                opts("cdc_sink_flushes_total", "Flushes by reason."),
                &["reason"],
            )?,
            files_written_total: IntCounter::with_opts(opts(
                "cdc_sink_files_written_total",
                "Data files published.",
            ))?,
            files_streamed_total: IntCounter::with_opts(opts(
                "cdc_sink_files_streamed_total",
                "Data files whose whole-file step streamed into a multipart upload.",
            ))?,
            bytes_written_total: IntCounter::with_opts(opts(
                "cdc_sink_bytes_written_total",
                "Data file bytes published.",
            ))?,
            rows_written_total: IntCounter::with_opts(opts(
                "cdc_sink_rows_written_total",
                "Rows in published data files.",
            ))?,
            ddl_drain_seconds: Histogram::with_opts(hopts(
                "cdc_sink_ddl_drain_seconds",
                "Time a DDL waited for its dispatchers' earlier DML to be durable.",
                time_buckets,
            ))?,
            writer_queue_length: IntGaugeVec::new(
                opts(
                    "cdc_sink_writer_queue_length",
                    "Messages queued to a writer.",
                ),
                &["shard"],
            )?,
            encoder_queue_length: IntGauge::with_opts(opts(
                "cdc_sink_encoder_queue_length",
                "Events queued to the encoding pool, not yet in the spool.",
            ))?,
            worker_busy_ratio: prometheus::GaugeVec::new(
                opts(
                    "cdc_sink_worker_busy_ratio",
                    "Share of the last measuring window a worker was busy.",
                ),
                &["worker"],
            )?,
            storage_errors_total: IntCounterVec::new(
                opts(
                    "cdc_sink_storage_errors_total",
                    "Failed storage attempts (errors and timeouts) by operation.",
                ),
                &["op"],
            )?,
            storage_retries_total: IntCounter::with_opts(opts(
                "cdc_sink_storage_retries_total",
                "Storage attempts retried.",
            ))?,
            checkpoint_ts: IntGauge::with_opts(opts(
                "cdc_sink_checkpoint_ts",
                "Last checkpoint ts written to the metadata file.",
            ))?,
            node_checkpoint_ts: IntGauge::with_opts(opts(
                "cdc_sink_node_checkpoint_ts",
                "Last progress ts written to this node's metadata.node-<i> file.",
            ))?,
            checkpoint_conflicts_total: IntCounter::with_opts(opts(
                "cdc_sink_checkpoint_conflicts_total",
                "Conditional writes of the metadata file that lost to another writer.",
            ))?,
            change_summary_writes_total: IntCounter::with_opts(opts(
                "cdc_sink_change_summary_writes_total",
                "Change summaries (changes.metadata) put before a metadata write.",
            ))?,
            change_summary_failures_total: IntCounter::with_opts(opts(
                "cdc_sink_change_summary_failures_total",
                "Change summary puts that failed.",
            ))?,
            stale_files_deleted: IntCounter::with_opts(opts(
                "cdc_sink_stale_files_deleted_total",
                "Data files a crashed run published without an index entry, deleted on restart.",
            ))?,
            file_cut_deferred_total: IntCounter::with_opts(opts(
                "cdc_sink_file_cut_deferred_total",
                "Flushed batches of keyless tables whose trailing commit ts was kept for the next file.",
            ))?,
            file_cut_forced_total: IntCounter::with_opts(opts(
                "cdc_sink_file_cut_forced_total",
                "Kept-back runs of keyless tables published inside a commit ts under spool pressure.",
            ))?,
            incomplete_runs_dropped_total: IntCounter::with_opts(opts(
                "cdc_sink_incomplete_runs_dropped_total",
                "Incomplete trailing commit ts runs of keyless tables released unpublished at close or remove.",
            ))?,
        };
        for r in FlushReason::ALL {
            m.flushes_total.with_label_values(&[r.as_str()]);
        }
        // Present at 0 before the first failure: an error-rate query or alert has a series to
        // evaluate instead of "no data".
        for op in STORAGE_OPS {
            m.storage_errors_total.with_label_values(&[op]);
        }
        for (k, c) in m.collectors().into_iter().enumerate() {
            if let Err(e) = registry.register(c) {
                for d in m.collectors().into_iter().take(k) {
                    let _ = registry.unregister(d);
                }
                return Err(e);
            }
        }
        Ok(m)
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.flush_bytes.clone()),
            Box::new(self.flush_duration.clone()),
            Box::new(self.file_finish_seconds.clone()),
            Box::new(self.flushes_total.clone()),
            Box::new(self.files_written_total.clone()),
            Box::new(self.files_streamed_total.clone()),
            Box::new(self.bytes_written_total.clone()),
            Box::new(self.rows_written_total.clone()),
            Box::new(self.ddl_drain_seconds.clone()),
            Box::new(self.writer_queue_length.clone()),
            Box::new(self.encoder_queue_length.clone()),
            Box::new(self.worker_busy_ratio.clone()),
            Box::new(self.storage_errors_total.clone()),
            Box::new(self.storage_retries_total.clone()),
            Box::new(self.checkpoint_ts.clone()),
            Box::new(self.node_checkpoint_ts.clone()),
            Box::new(self.checkpoint_conflicts_total.clone()),
            Box::new(self.change_summary_writes_total.clone()),
            Box::new(self.change_summary_failures_total.clone()),
            Box::new(self.stale_files_deleted.clone()),
            Box::new(self.file_cut_deferred_total.clone()),
            Box::new(self.file_cut_forced_total.clone()),
            Box::new(self.incomplete_runs_dropped_total.clone()),
        ]
    }

    /// The error counter of one operation.
    pub fn storage_errors(&self, op: &str) -> IntCounter {
        self.storage_errors_total.with_label_values(&[op])
    }

    /// Counts one flush of `reason`.
    pub fn flushed(&self, reason: FlushReason) {
        self.flushes_total
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// Unregisters everything (at close, so a new sink can register again).
    pub fn unregister(&self) {
        for c in self.collectors() {
            let _ = self.registry.unregister(c);
        }
    }
}

/// Measures the busy share of a worker over windows of about one second.
pub(crate) struct BusyMeter {
    gauge: prometheus::Gauge,
    window_start: Instant,
    busy: Duration,
}

impl BusyMeter {
    /// A meter publishing to `gauge`.
    pub fn new(gauge: prometheus::Gauge) -> BusyMeter {
        BusyMeter {
            gauge,
            window_start: Instant::now(),
            busy: Duration::ZERO,
        }
    }

    /// Adds busy time and publishes the ratio once a window has passed.
    pub fn add(&mut self, busy: Duration) {
        self.busy += busy;
        self.tick();
    }

    /// Publishes the ratio if the window has passed.
    pub fn tick(&mut self) {
        let elapsed = self.window_start.elapsed();
        if elapsed >= Duration::from_secs(1) {
            let ratio = (self.busy.as_secs_f64() / elapsed.as_secs_f64()).min(1.0);
            self.gauge.set(ratio);
            self.window_start = Instant::now();
            self.busy = Duration::ZERO;
        }
    }
}
