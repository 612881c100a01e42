//! Prometheus metrics of the consumer, all named `cdc_consumer_*`.
//!
//! One [`Metrics`] per process, shared by discovery (list/get calls, bytes read), the replay
//! loop (rows, files, DDLs, apply duration, lag, pending files, errors) and `/metrics`.
//! The freshness gauges (lag, checkpoint age, last success, failed rounds in a row) come from
//! [`Health`] ([`Metrics::set_freshness`]): one source, so `/metrics` and `/health` agree.

use crate::freshness::Health;
use prometheus::{
    Counter, Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The consumer's metrics and the registry that renders them.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Row changes applied downstream.
    pub rows_applied: IntCounter,
    /// Data files applied downstream (wholly).
    pub files_applied: IntCounter,
    /// Downstream transactions that applied data files (a unit holds up to `--unit-files`
    /// consecutive files of one stream; files applied / units = files per unit).
    pub data_units: IntCounter,
    /// DDLs (schema files) applied downstream.
    pub ddls_applied: IntCounter,
    /// Bytes of objects read from storage.
    pub bytes_read: IntCounter,
    /// Time to apply one unit (consecutive data files of one stream, or a DDL) downstream,
    /// commit included.
    pub apply_duration: Histogram,
    /// Upstream checkpoint ts minus applied ts, in seconds of wall time (NaN while the applied
    /// ts is unknown, see [`crate::freshness`]).
    pub lag_seconds: Gauge,
    /// Wall clock minus the checkpoint's physical time, in seconds (set at each round's end
    /// and at each scrape).
    pub checkpoint_age_seconds: Gauge,
    /// End of the last successful round, seconds since the Unix epoch (0: none yet).
    pub last_success_timestamp_seconds: Gauge,
    /// Rounds failed in a row (0 after a success).
    pub consecutive_failed_rounds: IntGauge,
    /// Upstream checkpoint ts seen last.
    pub checkpoint_ts: IntGauge,
    /// Applied ts (every table applied up to it).
    pub applied_ts: IntGauge,
    /// Indexed data files not yet applied.
    pub files_pending: IntGauge,
    /// Tables the last round that was not idle walked (the others known quiet).
    pub tables_walked: IntGauge,
    /// Object store list calls (recursive or with delimiter).
    pub list_calls: IntCounter,
    /// Object store get calls.
    pub get_calls: IntCounter,
    /// Time of one object store get call (retries included), answer read.
    pub get_duration: Histogram,
    /// Data files in the read-ahead window (being read and decoded, or waiting for their step).
    pub read_ahead_files: IntGauge,
    /// Stored bytes of the data files the read-ahead window fetched and holds.
    pub read_ahead_bytes: IntGauge,
    /// Time the replay waited for a data file's rows (read-ahead not ready, or not read ahead).
    pub read_wait_seconds: Counter,
    /// Data files a step read itself: not started by the read-ahead (or its read cancelled).
    pub read_ahead_misses: IntCounter,
    /// Second looks at a local directory's newest data file that may still be being written
    /// in place (see `replay::in_place`).
    pub in_place_looks: IntCounter,
    /// Errors by kind (`fatal`, `warning`).
    pub errors: IntCounterVec,
    /// Replay rounds run.
    pub rounds: IntCounter,
    /// Rounds that read an unchanged checkpoint after a settled round and stopped there.
    pub idle_rounds: IntCounter,
    /// Discovery rounds by kind: `idle`, `first`, `summary`, `full` (see
    /// [`crate::discovery::DiscoveryStats::kind`]).
    pub discovery_rounds: IntCounterVec,
    /// Checkpoint-ts of the settled mark this process stored or started from (0: none; see
    /// [`crate::settled`]).
    pub settled_checkpoint_ts: IntGauge,
    /// Data files quarantined by this process (`--on-bad-file quarantine`); the downstream's
    /// quarantine table holds every one ever recorded.
    pub quarantined_files: IntCounter,
    /// Group leases this member holds (`--group`; 0 otherwise).
    pub group_leases_held: IntGauge,
    /// Leases this member claimed (new, released or expired ones).
    pub group_claims: IntCounter,
    /// Leases this member released to rebalance.
    pub group_releases: IntCounter,
    /// Units rolled back because their lease was lost (the fence check failed).
    pub group_fenced: IntCounter,
    /// Heartbeats that failed.
    pub group_heartbeat_failures: IntCounter,
    /// 1 with labels `group` and `member` once this process joined a consumer group.
    pub group_info: IntGaugeVec,
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(format!("cdc_consumer_{name}"), help)
                .expect("static metric definition is valid");
            registry
                .register(Box::new(c.clone()))
                .expect("metric names are unique");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(format!("cdc_consumer_{name}"), help)
                .expect("static metric definition is valid");
            registry
                .register(Box::new(g.clone()))
                .expect("metric names are unique");
            g
        };
        let rows_applied = counter("rows_applied_total", "Row changes applied downstream");
        let files_applied = counter("files_applied_total", "Data files applied downstream");
        let data_units = counter(
            "data_units_total",
            "Downstream transactions that applied data files (up to --unit-files files each)",
        );
        let ddls_applied = counter("ddls_applied_total", "Schema changes applied downstream");
        let bytes_read = counter("bytes_read_total", "Bytes read from storage");
        let list_calls = counter("list_calls_total", "Object store list calls");
        let get_calls = counter("get_calls_total", "Object store get calls");
        let rounds = counter("rounds_total", "Replay rounds run");
        let idle_rounds = counter(
            "idle_rounds_total",
            "Rounds that read an unchanged checkpoint and stopped there (one request)",
        );
        let quarantined_files = counter(
            "quarantined_files_total",
            "Data files that did not decode and were quarantined (their rows not applied)",
        );
        let group_leases_held = gauge("group_leases_held", "Group leases this member holds");
        let group_claims = counter("group_claims_total", "Group leases claimed by this member");
        let group_releases = counter(
            "group_releases_total",
            "Group leases released by this member to rebalance",
        );
        let group_fenced = counter(
            "group_fenced_total",
            "Units rolled back because this member's lease was lost",
        );
        let group_heartbeat_failures = counter(
            "group_heartbeat_failures_total",
            "Group heartbeats that failed",
        );
        let group_info = IntGaugeVec::new(
            Opts::new(
                "cdc_consumer_group_info",
                "1 for the consumer group (and member id) this process belongs to",
            ),
            &["group", "member"],
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(group_info.clone()))
            .expect("metric names are unique");
        let checkpoint_ts = gauge("checkpoint_ts", "Upstream checkpoint ts seen last");
        let settled_checkpoint_ts = gauge(
            "settled_checkpoint_ts",
            "Checkpoint ts of the settled mark stored or started from (0: none)",
        );
        let applied_ts = gauge("applied_ts", "Ts up to which every table is applied");
        let files_pending = gauge("files_pending", "Indexed data files not yet applied");
        let tables_walked = gauge(
            "tables_walked",
            "Tables the last round that was not idle walked (the others had nothing to do)",
        );
        let read_ahead_files = gauge(
            "read_ahead_files",
            "Data files in the read-ahead window (in flight, or decoded and waiting)",
        );
        let read_ahead_bytes = gauge(
            "read_ahead_bytes",
            "Stored bytes of the data files the read-ahead window fetched and holds",
        );
        let read_ahead_misses = counter(
            "read_ahead_misses_total",
            "Data files a step read itself: the read-ahead had not started them",
        );
        let in_place_looks = counter(
            "in_place_looks_total",
            "Second looks at a newest data file that may still be being written in place",
        );
        let read_wait_seconds = Counter::new(
            "cdc_consumer_read_wait_seconds_total",
            "Time the replay waited for a data file to be read and decoded",
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(read_wait_seconds.clone()))
            .expect("metric names are unique");
        let get_duration = Histogram::with_opts(
            HistogramOpts::new(
                "cdc_consumer_get_duration_seconds",
                "Time of one object store get call (retries included), its answer read",
            )
            .buckets(prometheus::exponential_buckets(0.001, 2.0, 14).unwrap_or_default()),
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(get_duration.clone()))
            .expect("metric names are unique");
        let apply_duration = Histogram::with_opts(
            HistogramOpts::new(
                "cdc_consumer_apply_duration_seconds",
                "Time to apply one unit (data files of one stream, or a DDL) downstream, commit included",
            )
            .buckets(prometheus::exponential_buckets(0.0005, 4.0, 10).unwrap_or_default()),
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(apply_duration.clone()))
            .expect("metric names are unique");
        let lag_seconds = Gauge::new(
            "cdc_consumer_lag_seconds",
            "Upstream checkpoint minus applied ts, in seconds",
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(lag_seconds.clone()))
            .expect("metric names are unique");
        let float_gauge = |name: &str, help: &str| {
            let g = Gauge::new(format!("cdc_consumer_{name}"), help)
                .expect("static metric definition is valid");
            registry
                .register(Box::new(g.clone()))
                .expect("metric names are unique");
            g
        };
        let checkpoint_age_seconds = float_gauge(
            "checkpoint_age_seconds",
            "Wall clock minus the upstream checkpoint's physical time, in seconds",
        );
        let last_success_timestamp_seconds = float_gauge(
            "last_success_timestamp_seconds",
            "End of the last successful replay round, seconds since the Unix epoch",
        );
        let consecutive_failed_rounds =
            gauge("consecutive_failed_rounds", "Replay rounds failed in a row");
        let errors = IntCounterVec::new(
            Opts::new(
                "cdc_consumer_errors_total",
                "Errors by kind (fatal, warning)",
            ),
            &["kind"],
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(errors.clone()))
            .expect("metric names are unique");
        let discovery_rounds = IntCounterVec::new(
            Opts::new(
                "cdc_consumer_discovery_rounds_total",
                "Discovery rounds by kind (idle, first, summary, full)",
            ),
            &["kind"],
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(discovery_rounds.clone()))
            .expect("metric names are unique");
        for kind in ["idle", "first", "summary", "full"] {
            discovery_rounds.with_label_values(&[kind]);
        }
        // Present at 0 before the first error, so error-rate queries have a series.
        for kind in ["fatal", "warning", "storage-retry"] {
            errors.with_label_values(&[kind]);
        }
        Metrics {
            registry,
            rows_applied,
            files_applied,
            data_units,
            ddls_applied,
            bytes_read,
            apply_duration,
            lag_seconds,
            checkpoint_age_seconds,
            last_success_timestamp_seconds,
            consecutive_failed_rounds,
            checkpoint_ts,
            applied_ts,
            files_pending,
            tables_walked,
            list_calls,
            get_calls,
            get_duration,
            read_ahead_files,
            read_ahead_bytes,
            read_wait_seconds,
            read_ahead_misses,
            in_place_looks,
            errors,
            rounds,
            idle_rounds,
            discovery_rounds,
            settled_checkpoint_ts,
            quarantined_files,
            group_leases_held,
            group_claims,
            group_releases,
            group_fenced,
            group_heartbeat_failures,
            group_info,
        }
    }

    /// Sets the freshness gauges from a refreshed [`Health`] (see [`Health::refresh`]).
    pub fn set_freshness(&self, h: &Health) {
        let f = &h.freshness;
        self.lag_seconds
            .set(f.lag_ms.map(|ms| ms as f64 / 1000.0).unwrap_or(f64::NAN));
        if let Some(age) = f.checkpoint_age_ms {
            self.checkpoint_age_seconds.set(age as f64 / 1000.0);
        }
        self.last_success_timestamp_seconds
            .set(h.last_success_at_ms.unwrap_or(0) as f64 / 1000.0);
        self.consecutive_failed_rounds
            .set(f.consecutive_failed_rounds as i64);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric names, which are static here.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
