//! `storage-retry-timeout` (`SinkConfig::with_storage_retry_timeout`): the default policy's
//! shape scaled down 20 times (backoff 5 ms doubling to 250 ms, budget 6 s for the default's
//! 100 ms to 5 s and 2 min) rides out a 3 s outage (the default's minute) with nothing
//! acknowledged during it and everything landing once after; the same outage past a shorter
//! budget stops the sink with the storage error through the error callback.

use crate::support;

use cdc_common::testing::{Fault, Op, Rule};
use cdc_sink::{FileNaming, RetryPolicy, SinkError};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const OUTAGE: Duration = Duration::from_secs(3);

/// The default policy (100 ms doubling to 5 s) scaled down 20 times, budgeted by `budget`.
async fn scaled_harness(
    budget: Duration,
    on_error: Option<cdc_sink::config::ErrorCallback>,
) -> Harness {
    harness_on(
        None,
        "protocol=csv&flush-interval=20ms&worker-count=2&date-separator=none",
        move |c| {
            let c = c
                .with_retry(RetryPolicy {
                    max_attempts: 1,
                    initial_backoff: Duration::from_millis(5),
                    max_backoff: Duration::from_millis(250),
                    request_timeout: Duration::from_secs(2),
                })
                .with_storage_retry_timeout(budget);
            match on_error {
                Some(f) => c.with_on_error(f),
                None => c,
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_outage_is_ridden_out_within_the_budget() {
    let h = scaled_harness(Duration::from_secs(6), None).await;
    let t = table("t", ts(0));
    let mut defs = BTreeMap::new();
    defs.insert("t".to_string(), Arc::clone(&t));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    h.sink
        .add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, Some(cb()))
        .unwrap();
    assert!(wait_for(5, || flushed.load(Ordering::SeqCst) == 1).await);

    h.store
        .add_rule(Rule::new(Op::Put, "s/t/", Fault::Fail { retryable: true }));
    for seq in 1..4i64 {
        h.sink
            .add_dml_event(
                "d",
                event(&t, ts(10 + seq as u64), "d", seq, 1),
                None,
                Some(cb()),
            )
            .unwrap();
    }
    tokio::time::sleep(OUTAGE).await;
    // Down for the whole outage: failed attempts, nothing acknowledged, the sink not stopped.
    assert!(h.store.failures() > 3, "{}", h.store.failures());
    assert_eq!(flushed.load(Ordering::SeqCst), 1);
    assert!(h.sink.error().is_none(), "{:?}", h.sink.error());

    h.store.clear_rules();
    assert!(wait_for(10, || flushed.load(Ordering::SeqCst) == 4).await);
    assert!(h.sink.error().is_none(), "{:?}", h.sink.error());
    h.sink.close().await.unwrap();
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    let seqs: Vec<i64> = files
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| row_key(r).1))
        .collect();
    assert_eq!(seqs, vec![0, 1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_past_the_budget_reaches_the_error_callback() {
    let reported: Arc<Mutex<Vec<SinkError>>> = Arc::default();
    let rep = Arc::clone(&reported);
    let h = scaled_harness(
        Duration::from_millis(300),
        Some(Arc::new(move |e: &SinkError| {
            rep.lock().unwrap().push(e.clone())
        })),
    )
    .await;
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    h.store
        .add_rule(Rule::new(Op::Put, "s/t/", Fault::Fail { retryable: true }));
    h.sink
        .add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, Some(cb()))
        .unwrap();
    assert!(wait_for(5, || h.sink.error().is_some()).await);
    assert_eq!(flushed.load(Ordering::SeqCst), 0);
    let r = reported.lock().unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        matches!(&r[0], SinkError::Storage { op: "put", attempts, .. } if *attempts > 1),
        "{r:?}"
    );
}

/// `storage-retry-timeout` in the sink URI overrides the embedder's policy: a policy of one
/// attempt retries for the URI's budget instead of stopping at the first failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uri_option_sets_the_retry_budget() {
    let reported: Arc<Mutex<Vec<SinkError>>> = Arc::default();
    let rep = Arc::clone(&reported);
    let h = harness_on(
        None,
        "protocol=csv&flush-interval=20ms&worker-count=2&date-separator=none&storage-retry-timeout=1s",
        move |c| {
            c.with_retry(RetryPolicy {
                max_attempts: 1,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(250),
                request_timeout: Duration::from_secs(2),
            })
            .with_on_error(Arc::new(move |e: &SinkError| {
                rep.lock().unwrap().push(e.clone())
            }))
        },
    )
    .await;
    assert_eq!(
        h.options.storage_retry_timeout,
        Some(Duration::from_secs(1))
    );
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    h.store
        .add_rule(Rule::new(Op::Put, "s/t/", Fault::Fail { retryable: true }));
    h.sink
        .add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, None)
        .unwrap();
    assert!(wait_for(10, || h.sink.error().is_some()).await);
    let r = reported.lock().unwrap();
    assert!(
        matches!(&r[0], SinkError::Storage { op: "put", attempts, .. } if *attempts > 3),
        "{r:?}"
    );
}
