//! Prometheus metrics of one spool, registered on the caller's registry with a constant
//! `changefeed` label (so several changefeeds' spools share one registry) and unregistered when
//! the spool closes.
//!
//! | name | type | meaning |
//! |------|------|---------|
//! | `cdc_spool_memory_bytes` | gauge | payload bytes of entries held in memory |
//! | `cdc_spool_disk_bytes` | gauge | bytes of live records (header + payload) in segment files |
//! | `cdc_spool_entries` | gauge | entries enqueued and not yet released |
//! | `cdc_spool_segments` | gauge | segment files that exist |
//! | `cdc_spool_held_wakes` | gauge | wake callbacks held above the high watermark |
//! | `cdc_spool_disk_quota_waiters` | gauge | callers blocked in `wait_for_space` or registered through `notify_on_space` |
//! | `cdc_spool_spill_bytes_total` | counter | record bytes written to segment files |
//! | `cdc_spool_disk_quota_rejections_total` | counter | enqueues answered `WaitForDiskQuota` |
//! | `cdc_spool_disk_quota_wait_seconds` | histogram | time spent in `wait_for_space` |

use prometheus::core::{Collector, Desc, Describer};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Opts, Registry};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The label carrying the changefeed id.
pub const CHANGEFEED_LABEL: &str = "changefeed";

/// The metrics of one spool.
#[derive(Clone, Debug)]
pub(crate) struct SpoolMetrics {
    pub(crate) memory_bytes: IntGauge,
    pub(crate) disk_bytes: IntGauge,
    pub(crate) entries: IntGauge,
    pub(crate) segments: IntGauge,
    pub(crate) held_wakes: IntGauge,
    pub(crate) disk_quota_waiters: IntGauge,
    /// Updated under the spool's lock, at every spill (see [`LockedCounter`]).
    pub(crate) spill_bytes_total: LockedCounter,
    pub(crate) disk_quota_rejections_total: IntCounter,
    pub(crate) disk_quota_wait_seconds: Histogram,
    registry: Registry,
}

fn opts(name: &str, help: &str, changefeed: &str) -> Opts {
    Opts::new(name, help).const_label(CHANGEFEED_LABEL, changefeed)
}

impl SpoolMetrics {
    /// Creates and registers the metrics; on failure nothing stays registered.
    pub(crate) fn register(
        registry: &Registry,
        changefeed: &str,
    ) -> Result<SpoolMetrics, prometheus::Error> {
        let gauge = |name: &str, help: &str| IntGauge::with_opts(opts(name, help, changefeed));
        let counter = |name: &str, help: &str| IntCounter::with_opts(opts(name, help, changefeed));
        let m = SpoolMetrics {
            memory_bytes: gauge(
                "cdc_spool_memory_bytes",
                "Payload bytes of spool entries held in memory.",
            )?,
            disk_bytes: gauge(
                "cdc_spool_disk_bytes",
                "Bytes of live spool records (header + payload) in segment files.",
            )?,
            entries: gauge(
                "cdc_spool_entries",
                "Spool entries enqueued and not yet released.",
            )?,
            segments: gauge("cdc_spool_segments", "Spool segment files that exist.")?,
            held_wakes: gauge(
                "cdc_spool_held_wakes",
                "Dispatcher wake callbacks held above the spool's high watermark.",
            )?,
            disk_quota_waiters: gauge(
                "cdc_spool_disk_quota_waiters",
                "Callers waiting for the spool's disk quota to free up.",
            )?,
            spill_bytes_total: LockedCounter::new(opts(
                "cdc_spool_spill_bytes_total",
                "Record bytes written to spool segment files.",
                changefeed,
            ))?,
            disk_quota_rejections_total: counter(
                "cdc_spool_disk_quota_rejections_total",
                "Enqueues answered with WaitForDiskQuota.",
            )?,
            disk_quota_wait_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "cdc_spool_disk_quota_wait_seconds",
                    "Time spent waiting for the spool's disk quota.",
                )
                .const_label(CHANGEFEED_LABEL, changefeed)
                .buckets(prometheus::exponential_buckets(0.001, 4.0, 9)?),
            )?,
            registry: registry.clone(),
        };
        for (i, c) in m.collectors().into_iter().enumerate() {
            if let Err(e) = registry.register(c) {
                for r in m.collectors().into_iter().take(i) {
                    let _ = registry.unregister(r);
                }
                return Err(e);
            }
        }
        Ok(m)
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.memory_bytes.clone()),
            Box::new(self.disk_bytes.clone()),
            Box::new(self.entries.clone()),
            Box::new(self.segments.clone()),
            Box::new(self.held_wakes.clone()),
            Box::new(self.disk_quota_waiters.clone()),
            Box::new(self.spill_bytes_total.clone()),
            Box::new(self.disk_quota_rejections_total.clone()),
            Box::new(self.disk_quota_wait_seconds.clone()),
        ]
    }

    /// Removes the metrics from the registry (the spool closed).
    pub(crate) fn unregister(&self) {
        for c in self.collectors() {
            let _ = self.registry.unregister(c);
        }
    }
}

/// A counter written only under the spool's lock: an update is a plain load and store instead
/// of an atomic read-modify-write (which costs about as much as the rest of a small spill's
/// accounting, since it waits for the record's copy to leave the store buffer). Scrapes read
/// it without the lock. Exposed as an ordinary Prometheus counter.
#[derive(Clone, Debug)]
pub(crate) struct LockedCounter {
    desc: Desc,
    value: Arc<AtomicU64>,
}

impl LockedCounter {
    fn new(opts: Opts) -> Result<LockedCounter, prometheus::Error> {
        Ok(LockedCounter {
            desc: opts.describe()?,
            value: Arc::default(),
        })
    }

    /// Adds `n`. The caller holds the spool's lock: every writer does, so nothing is lost
    /// between the load and the store.
    pub(crate) fn add_locked(&self, n: u64) {
        let v = self.value.load(Ordering::Relaxed);
        self.value.store(v + n, Ordering::Relaxed);
    }
}

impl Collector for LockedCounter {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut counter = proto::Counter::default();
        counter.set_value(self.value.load(Ordering::Relaxed) as f64);
        let mut metric = proto::Metric::from_label(self.desc.const_label_pairs.clone());
        metric.set_counter(counter);
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(MetricType::COUNTER);
        family.set_metric(vec![metric]);
        vec![family]
    }
}
