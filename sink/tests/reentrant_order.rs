//! Events of one dispatcher reach storage in the order `add_dml_event` accepted them, also when
//! a wake or flush callback hands in the dispatcher's next event (re-entry).
//!
//! The race these tests pin: a small event is encoded on the caller's thread (the inline path)
//! and its wake runs when the spool accepts it; an event handed in from that wake goes through
//! the dispatcher's encoder thread. Each wake below waits until that next event is in the
//! spool, and a little longer, before it returns: if the wake ran before its own event was
//! handed to the writer, the next event would reach the writer first.

use crate::support;

use cdc_common::TableDef;
use cdc_sink::{Callback, FileNaming, Sink};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// How long a wake waits for the event it handed in to reach the spool, at most.
const SPOOL_WAIT: Duration = Duration::from_secs(5);
/// Then how long it gives the encoder thread to forward that event to the writer.
const FORWARD_GRACE: Duration = Duration::from_millis(50);

/// A wake that hands in `seq` (one row at `at`) for dispatcher `d`, then waits until the spool
/// holds `entries` entries and a little longer.
fn re_entering_wake(
    sink: &Arc<Sink>,
    t: &Arc<TableDef>,
    at: cdc_common::Ts,
    seq: i64,
    entries: u64,
    flush: Callback,
) -> Callback {
    let sink = Arc::clone(sink);
    let t = Arc::clone(t);
    Box::new(move || {
        sink.add_dml_event("d", event(&t, at, "d", seq, 1), None, Some(flush))
            .unwrap();
        let deadline = Instant::now() + SPOOL_WAIT;
        while sink.spool_stats().entries < entries && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(FORWARD_GRACE);
    })
}

/// The `seq` column of every row of dispatcher `d`, in storage order (file index, then row).
async fn stored_order(h: &Harness, t: &Arc<TableDef>) -> Vec<i64> {
    let defs = BTreeMap::from([("t".to_string(), Arc::clone(t))]);
    read_data_files(h.store.inner(), &h.options, &defs)
        .await
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(row_key))
        .map(|(d, seq)| {
            assert_eq!(d, "d");
            seq
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_handed_in_by_a_wake_is_stored_after_the_event_woken() {
    let h = harness("protocol=csv&flush-interval=60s&date-separator=none").await;
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    // Event 0 (inline: one row, nothing queued) wakes; its wake hands in event 1.
    let wake = re_entering_wake(&h.sink, &t, ts(11), 1, 2, cb());
    let sink = Arc::clone(&h.sink);
    let first = event(&t, ts(10), "d", 0, 1);
    let flush0 = cb();
    // On a plain thread: the wake waits on the caller's thread.
    tokio::task::spawn_blocking(move || {
        sink.add_dml_event("d", first, Some(wake), Some(flush0))
            .unwrap();
    })
    .await
    .unwrap();
    h.sink.close().await.unwrap();
    assert_eq!(flushed.load(Ordering::SeqCst), 2);
    assert_eq!(stored_order(&h, &t).await, vec![0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_handed_in_by_flush_and_wake_callbacks_are_stored_in_acceptance_order() {
    let h = harness("protocol=csv&flush-interval=20ms&date-separator=none").await;
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    // Event 0 is flushed; its flush callback (on the writer) hands in event 1, inline; the
    // wake of event 1 hands in event 2. While the wake waits, the spool holds events 0 (its
    // flush callback runs before its bytes are freed), 1 and 2.
    let sink = Arc::clone(&h.sink);
    let t1 = Arc::clone(&t);
    let (flush1, flush2) = (cb(), cb());
    let chain = Arc::new(AtomicUsize::new(0));
    let chain2 = Arc::clone(&chain);
    let flush0: Callback = Box::new(move || {
        let wake = re_entering_wake(&sink, &t1, ts(12), 2, 3, flush2);
        sink.add_dml_event("d", event(&t1, ts(11), "d", 1, 1), Some(wake), Some(flush1))
            .unwrap();
        chain2.fetch_add(1, Ordering::SeqCst);
    });
    h.sink
        .add_dml_event("d", event(&t, ts(10), "d", 0, 1), None, Some(flush0))
        .unwrap();
    assert!(
        wait_for(10, || flushed.load(Ordering::SeqCst) == 2).await,
        "events 1 and 2 flushed"
    );
    assert_eq!(chain.load(Ordering::SeqCst), 1);
    h.sink.close().await.unwrap();
    assert_eq!(stored_order(&h, &t).await, vec![0, 1, 2]);
}
