//! The checkpoint written is clamped against what is pending at the moment of writing: a ts
//! deferred by the rate limit never carries the file past an event accepted after the deferral
//! and not yet durable; and the checkpoint never decreases.

use crate::support;

use cdc_common::testing::{Fault, Op, Rule};
use cdc_common::{DdlEvent, DdlKind, Ts};
use cdc_sink::{CheckpointOutcome, FileNaming};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// The rate limit of these tests: long enough that the second call is deferred, short enough
/// to wait out.
const INTERVAL: Duration = Duration::from_secs(1);

fn barrier(at: Ts) -> DdlEvent {
    DdlEvent {
        commit_ts: at,
        query: "ALTER TABLE t COMMENT 'barrier'".into(),
        kind: DdlKind::Other,
        schema: "s".into(),
        tables: vec![],
        prev_tables: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_checkpoint_is_clamped_below_an_event_accepted_after_the_deferral() {
    let h = harness_on(None, "protocol=csv&flush-interval=10ms", |c| {
        c.with_checkpoint_interval(INTERVAL)
    })
    .await;
    let store = Arc::clone(h.store.inner());
    assert_eq!(
        h.sink.checkpoint(Ts(100)).await.unwrap(),
        CheckpointOutcome::Written(Ts(100))
    );
    // Nothing is pending: 400 is remembered for a later write.
    assert_eq!(
        h.sink.checkpoint(Ts(400)).await.unwrap(),
        CheckpointOutcome::Deferred(Ts(400))
    );
    // Then an event at 350 is accepted, and storage holds its data file.
    let hang = h.store.add_rule(Rule::new(Op::Put, ".csv", Fault::Hang));
    let t = table("t", Ts(1));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    h.sink
        .add_dml_event("d", event(&t, Ts(350), "d", 0, 1), None, Some(cb()))
        .unwrap();
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    // The next write may not pass 350, whatever was deferred before it was accepted.
    let out = h.sink.checkpoint(Ts(360)).await.unwrap();
    assert_eq!(
        flushed.load(Ordering::SeqCst),
        0,
        "the event is not durable"
    );
    assert_eq!(read_checkpoint(&store).await, Some(Ts(349)), "{out:?}");
    assert_eq!(out, CheckpointOutcome::Written(Ts(349)));

    // Once the event is durable the checkpoint moves on, never backwards.
    h.store.remove_rule(hang);
    h.sink
        .pass_block_event(&barrier(Ts(361)), &["d"])
        .await
        .unwrap();
    assert_eq!(flushed.load(Ordering::SeqCst), 1);
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    assert_eq!(
        h.sink.checkpoint(Ts(360)).await.unwrap(),
        CheckpointOutcome::Written(Ts(360))
    );
    assert_eq!(
        h.sink.checkpoint(Ts(300)).await.unwrap(),
        CheckpointOutcome::Unchanged
    );
    h.sink.close().await.unwrap();
    assert_eq!(read_checkpoint(&store).await, Some(Ts(360)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_what_is_pending_then_writes_the_deferred_checkpoint() {
    let h = harness_on(None, "protocol=csv&flush-interval=10ms", |c| {
        c.with_checkpoint_interval(INTERVAL)
    })
    .await;
    let store = Arc::clone(h.store.inner());
    assert_eq!(
        h.sink.checkpoint(Ts(100)).await.unwrap(),
        CheckpointOutcome::Written(Ts(100))
    );
    assert_eq!(
        h.sink.checkpoint(Ts(400)).await.unwrap(),
        CheckpointOutcome::Deferred(Ts(400))
    );
    // An event at 350 accepted after the deferral: close flushes it, then the deferred 400
    // is safe to write.
    let t = table("t", Ts(1));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    h.sink
        .add_dml_event("d", event(&t, Ts(350), "d", 0, 1), None, None)
        .unwrap();
    h.sink.close().await.unwrap();
    assert_eq!(read_checkpoint(&store).await, Some(Ts(400)));
}
