//! A store that stays down: the sink stops acknowledging (no flush callback, the checkpoint
//! stays below every unwritten event), its memory stays within the spool quota while the
//! dispatcher keeps handing in events until backpressure withholds the wake; then either the
//! store recovers and everything lands once, or the retry budget runs out and the sink stops
//! with a storage error, having lost nothing it acknowledged.

use crate::support;

use cdc_common::testing::{Fault, Op, Rule};
use cdc_common::Ts;
use cdc_sink::{CheckpointOutcome, FileNaming, RetryPolicy, SinkError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const MEMORY: u64 = 256 * 1024;

/// Hands in `n` events from `seq0`, each only after the previous one's wake (the dispatcher's
/// protocol); returns how many were handed in before a wake did not come within `patience`
/// (backpressure), plus the receiver of that pending wake.
async fn hand_in_until_held(
    h: &Harness,
    t: &Arc<cdc_common::TableDef>,
    seq0: i64,
    max: i64,
    flush: &(impl Fn() -> cdc_sink::Callback + Clone),
) -> (i64, Option<tokio::sync::mpsc::UnboundedReceiver<()>>) {
    for n in 0..max {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let wake: cdc_sink::Callback = Box::new(move || {
            let _ = tx.send(());
        });
        let seq = seq0 + n;
        let ev = event_sized(t, ts(100 + seq as u64), "d", seq, 1, 4000);
        h.sink
            .add_dml_event("d", ev, Some(wake), Some(flush()))
            .unwrap();
        if tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
        {
            return (n + 1, Some(rx));
        }
    }
    (max, None)
}

/// Samples the spool's memory and whether wakes are held, until stopped.
fn sampler(h: &Harness) -> (Arc<AtomicU64>, Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sink = Arc::clone(&h.sink);
    let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
    let task = tokio::spawn(async move {
        while !s.load(Ordering::SeqCst) {
            p.fetch_max(sink.spool_stats().memory_bytes, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    (peak, stop, task)
}

fn seqs(
    files: &[(
        cdc_common::layout::DataFile,
        Vec<cdc_common::codec::DecodedRow>,
    )],
) -> Vec<i64> {
    files
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| row_key(r).1))
        .collect()
}

async fn down_harness(attempts: u32, on_error: Option<cdc_sink::config::ErrorCallback>) -> Harness {
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = cdc_spool::SpoolConfig::builder()
        .dir(spool_dir.path())
        .memory_quota(MEMORY)
        .disk_quota(4 << 20)
        .watermarks(384 * 1024, 128 * 1024)
        .build()
        .unwrap();
    let mut h = harness_on(
        None,
        "protocol=csv&flush-interval=20ms&file-size=32KiB&worker-count=2&date-separator=none",
        move |c| {
            let c = c.with_spool(spool).with_retry(RetryPolicy {
                max_attempts: attempts,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(20),
                request_timeout: Duration::from_secs(2),
            });
            match on_error {
                Some(f) => c.with_on_error(f),
                None => c,
            }
        },
    )
    .await;
    h.spool_dir = spool_dir;
    h
}

/// Table `t` written by dispatcher `d`: five one-row events (seq 0..5 at ts 1..=5) land while
/// the store is up, each with a flush callback counting into the returned counter, and the
/// checkpoint reaches ts 5.
async fn five_durable_events(
    h: &Harness,
) -> (
    Arc<cdc_common::TableDef>,
    BTreeMap<String, Arc<cdc_common::TableDef>>,
    Arc<std::sync::atomic::AtomicUsize>,
    impl Fn() -> cdc_sink::Callback + Clone,
) {
    let t = table("t", ts(0));
    let mut defs = BTreeMap::new();
    defs.insert("t".to_string(), Arc::clone(&t));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    for seq in 0..5i64 {
        h.sink
            .add_dml_event(
                "d",
                event(&t, ts(1 + seq as u64), "d", seq, 1),
                None,
                Some(cb()),
            )
            .unwrap();
    }
    assert!(wait_for(5, || flushed.load(Ordering::SeqCst) == 5).await);
    assert_eq!(
        h.sink.checkpoint(ts(5)).await.unwrap(),
        CheckpointOutcome::Written(ts(5))
    );
    (t, defs, flushed, cb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stays_down_holds_wakes_and_the_checkpoint_then_recovers() {
    // Retries without end (within the test): the sink waits for the store.
    let h = down_harness(u32::MAX, None).await;
    let (t, defs, flushed, cb) = five_durable_events(&h).await;

    // Every put of the table's files fails from now on (the checkpoint file still writes).
    h.store
        .add_rule(Rule::new(Op::Put, "s/t/", Fault::Fail { retryable: true }));
    let (peak, stop, task) = sampler(&h);
    let (handed, pending_wake) = hand_in_until_held(&h, &t, 5, 2000, &cb).await;
    let mut pending_wake = pending_wake.expect("backpressure never withheld a wake");
    let st = h.sink.spool_stats();
    assert!(st.holding && st.held_wakes > 0, "{st:?}");
    assert!(handed < 2000);
    // Nothing after the outage is acknowledged, nothing stopped the sink.
    assert_eq!(flushed.load(Ordering::SeqCst), 5);
    assert!(h.sink.error().is_none(), "{:?}", h.sink.error());
    assert!(h.store.failures() > 0);
    // The checkpoint never passes the first unwritten event (ts(100 + 5)).
    let first_unwritten = ts(105);
    let last = ts(100 + 5 + handed as u64 - 1);
    let out = h.sink.checkpoint(last).await.unwrap();
    assert_eq!(out, CheckpointOutcome::Written(Ts(first_unwritten.0 - 1)));
    let written = read_checkpoint(h.store.inner()).await.unwrap();
    assert!(
        written < first_unwritten,
        "{written} passes {first_unwritten}"
    );
    let peak_memory = peak.load(Ordering::SeqCst);
    assert!(
        peak_memory <= MEMORY,
        "spool memory {peak_memory} above its quota {MEMORY}"
    );
    eprintln!(
        "store down: {handed} events handed in before the wake was held; spool memory peak \
         {peak_memory} B (quota {MEMORY}), disk {} B; {} failed puts",
        st.disk_bytes,
        h.store.failures()
    );

    // The store comes back: the held wake runs and every event lands, once.
    h.store.clear_rules();
    tokio::time::timeout(Duration::from_secs(10), pending_wake.recv())
        .await
        .expect("the held wake never ran")
        .expect("wake dropped");
    let total = 5 + handed as usize;
    assert!(wait_for(10, || flushed.load(Ordering::SeqCst) == total).await);
    assert_eq!(
        h.sink.checkpoint(last).await.unwrap(),
        CheckpointOutcome::Written(last)
    );
    stop.store(true, Ordering::SeqCst);
    task.await.unwrap();
    h.sink.close().await.unwrap();
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    assert_eq!(seqs(&files), (0..total as i64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_past_the_retry_budget_stops_the_sink_and_loses_nothing_acknowledged() {
    let reported: Arc<Mutex<Vec<SinkError>>> = Arc::default();
    let rep = Arc::clone(&reported);
    let h = down_harness(
        4,
        Some(Arc::new(move |e: &SinkError| {
            rep.lock().unwrap().push(e.clone())
        })),
    )
    .await;
    let (t, defs, flushed, cb) = five_durable_events(&h).await;

    h.store
        .add_rule(Rule::new(Op::Put, "s/t/", Fault::Fail { retryable: true }));
    for seq in 5..8i64 {
        h.sink
            .add_dml_event(
                "d",
                event(&t, ts(10 + seq as u64), "d", seq, 1),
                None,
                Some(cb()),
            )
            .unwrap();
    }
    assert!(wait_for(5, || h.sink.error().is_some()).await);
    let is_storage = |e: &SinkError| matches!(e, SinkError::Storage { op: "put", attempts: 4, path, .. } if path.starts_with("s/t/"));
    assert!(
        matches!(h.sink.error(), Some(SinkError::Failed(e)) if is_storage(&e)),
        "{:?}",
        h.sink.error()
    );
    {
        let r = reported.lock().unwrap();
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(is_storage(&r[0]), "{r:?}");
    }
    // Nothing more is acknowledged, the checkpoint stays where the durable events are, and
    // every call says why the sink stopped.
    assert_eq!(flushed.load(Ordering::SeqCst), 5);
    assert!(matches!(
        h.sink.checkpoint(ts(30)).await,
        Err(SinkError::Failed(_))
    ));
    assert_eq!(read_checkpoint(h.store.inner()).await, Some(ts(5)));
    assert!(matches!(
        h.sink
            .add_dml_event("d", event(&t, ts(40), "d", 9, 1), None, Some(cb())),
        Err(SinkError::Failed(_))
    ));
    h.store.clear_rules();
    assert!(matches!(h.sink.close().await, Err(SinkError::Failed(_))));
    assert_eq!(flushed.load(Ordering::SeqCst), 5);
    // Everything acknowledged is in storage.
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    assert_eq!(seqs(&files), (0..5).collect::<Vec<_>>());
}
