//! Store faults end to end: the deterministic workload goes through the real sink API into a
//! store that fails 10% of all operations (retryable) and adds random latency, while the consumer
//! follows through its own faulty view of the same store (10% errors, latency, and listings that
//! leave out young objects) into SQLite. The downstream must equal the workload's model.
//!
//! Each `FaultStore` prints its seed on stderr (`CDC_FAULT_SEED=<seed>` repeats the fault mix).

use cdc_common::layout::LayoutConfig;
use cdc_common::testing::{Fault, FaultStore, Op, Rule};
use cdc_common::SinkOptions;
use cdc_consumer::backend::sqlite::SqliteDownstream;
use cdc_consumer::config::TableFilter;
use cdc_consumer::discovery::{Discovery, Upstream};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::Replayer;
use cdc_harness::generate::{generate_into, GenerateOptions};
use cdc_harness::verify::verify;
use cdc_harness::workload::{Workload, WorkloadConfig};
use cdc_sink::{RetryPolicy, Sink, SinkConfig};
use object_store::memory::InMemory;
use object_store::ObjectStore;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the consumer's listings may leave out a new object, and its `listing-lag`.
const LISTING_LAG: Duration = Duration::from_millis(150);
/// Consumer rounds allowed (each failed round counts).
const MAX_ROUNDS: u64 = 2000;

/// 10% retryable errors on every operation, plus 0-4 ms of latency.
fn faulty(inner: &Arc<dyn ObjectStore>) -> FaultStore {
    let s = FaultStore::new(Arc::clone(inner));
    s.add_rule(Rule::any("", Fault::Fail { retryable: true }).probability(0.1));
    s.add_rule(Rule::any(
        "",
        Fault::RandomDelay {
            min: Duration::ZERO,
            max: Duration::from_millis(4),
        },
    ));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_errors_latency_and_lagging_listings_still_reach_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = WorkloadConfig {
        dispatchers: 4,
        tables: 3,
        transactions: 1200,
        rows_per_txn: 3,
        ddl_every: 60,
        seed: 7,
        schema: format!("faults_{}", std::process::id()),
        start_ts: None,
        live_rows_cap: None,
    };
    let options = SinkOptions::from_query(
        "protocol=csv&flush-interval=30ms&file-size=8KiB&date-separator=day&file-index-width=6\
         &include-commit-ts=true&worker-count=2",
    )
    .unwrap();
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());

    // The sink: every operation may fail; retries are quick and many.
    let sink_store = faulty(&inner);
    let registry = prometheus::Registry::new();
    let config = SinkConfig::new("faults")
        .with_writer_count(2)
        .with_checkpoint_interval(Duration::from_millis(50))
        .with_retry(RetryPolicy {
            max_attempts: 40,
            initial_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(20),
            request_timeout: Duration::from_secs(10),
        })
        .with_spool(
            cdc_spool::SpoolConfig::builder()
                .dir(tmp.path().join("spool"))
                .memory_quota(8 << 20)
                .disk_quota(64 << 20)
                .build()
                .unwrap(),
        );
    let sink = Sink::with_store(
        Arc::new(sink_store.clone()),
        options.clone(),
        config,
        &registry,
    )
    .await
    .unwrap();

    // The consumer: errors, latency, and eventually consistent listings.
    let consumer_store = faulty(&inner);
    consumer_store.add_rule(Rule::new(
        Op::List,
        "",
        Fault::PartialList {
            hide: 0.5,
            younger_than: Some(LISTING_LAG),
        },
    ));
    let metrics = Metrics::new();
    let up = Upstream::new(Arc::new(consumer_store.clone()), metrics.clone())
        .with_retry(2, Duration::from_millis(2));
    let disc = Discovery::new(up, LayoutConfig::from_options(&options), TableFilter::all())
        .with_listing_lag(LISTING_LAG);
    let db = tmp.path().join("down.db");
    let down = SqliteDownstream::open(&db, 64).unwrap();
    let mut replayer = Replayer::new(
        disc,
        Box::new(down),
        &options,
        cdc_consumer::quarantine::BadFilePolicy::Stop,
        cdc_consumer::replay::ProgressRead::Settled,
        metrics,
        Arc::new(Mutex::new(Health::default())),
    )
    .await
    .unwrap();

    // The consumer follows while the generator runs, then until it reached the final
    // checkpoint; a failed round is simply followed by the next one.
    let target = AtomicU64::new(0);
    let generator = async {
        let g = generate_into(sink, &registry, &cfg, GenerateOptions::default(), &|_| {}).await;
        let ts = g.as_ref().map(|g| g.checkpoint_ts.0).unwrap_or(u64::MAX);
        target.store(ts, Ordering::SeqCst);
        g
    };
    let consumer = async {
        let (mut rounds, mut failed) = (0u64, 0u64);
        loop {
            rounds += 1;
            let cdc_consumer::replay::RoundOutcome {
                record: rec,
                error: err,
                ..
            } = replayer.round().await;
            if err.is_some() {
                failed += 1;
            }
            let t = target.load(Ordering::SeqCst);
            if t == u64::MAX || (t > 0 && err.is_none() && rec.applied_ts >= t) {
                return (rounds, failed, rec.applied_ts);
            }
            if rounds >= MAX_ROUNDS {
                return (rounds, failed, rec.applied_ts);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (g, (rounds, failed, applied)) = tokio::join!(generator, consumer);
    let seeds = (sink_store.seed(), consumer_store.seed());
    let g = g.unwrap_or_else(|e| panic!("generate failed (seeds {seeds:?}): {e:#}"));
    assert_eq!(g.rows, g.rows_flushed, "every row handed in became durable");
    assert!(
        applied >= g.checkpoint_ts.0,
        "consumer stopped at {applied} below the checkpoint {} after {rounds} rounds (seeds {seeds:?})",
        g.checkpoint_ts.0
    );
    assert!(sink_store.failures() > 0, "no sink operation failed");
    assert!(
        consumer_store.failures() > 0,
        "no consumer operation failed"
    );
    assert!(
        consumer_store.hidden_entries() > 0,
        "no listing left anything out"
    );

    let model = Workload::final_model(cfg.clone());
    let downstream = format!("sqlite://{}", db.display());
    let diffs = verify(&downstream, &cfg.schema, &model).await.unwrap();
    assert!(
        diffs.is_empty(),
        "{} differences (seeds {seeds:?}), first: {:#?}",
        diffs.len(),
        &diffs[..diffs.len().min(10)]
    );
    eprintln!(
        "sink: {} rows, {} files, {} injected failures; consumer: {rounds} rounds ({failed} failed), \
         {} injected failures, {} listing entries hidden",
        g.rows,
        g.files,
        sink_store.failures(),
        consumer_store.failures(),
        consumer_store.hidden_entries()
    );
}
