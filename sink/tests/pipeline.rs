//! The vertical slice: events in, data files then index files out, callbacks after the puts.

use crate::support;

use cdc_common::layout::{IndexFile, LayoutConfig};
use cdc_common::testing::{Fault, Op, Rule};
use cdc_sink::FileNaming;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_hold_each_dispatchers_events_in_order() {
    let h = harness("protocol=csv&flush-interval=20ms&worker-count=3&date-separator=none").await;
    let t1 = table("t1", ts(0));
    let t2 = table("t2", ts(0));
    let mut defs = BTreeMap::new();
    defs.insert("t1".to_string(), Arc::clone(&t1));
    defs.insert("t2".to_string(), Arc::clone(&t2));
    // t1 alone; t2 split over three dispatchers.
    h.sink.add_dispatcher("d-t1", FileNaming::Table).unwrap();
    for i in 0..3 {
        h.sink
            .add_dispatcher(&format!("d-t2-{i}"), FileNaming::Dispatcher)
            .unwrap();
    }
    let (flushed, flush_cb) = counter();
    let ids = ["d-t1", "d-t2-0", "d-t2-1", "d-t2-2"];
    for n in 0..150i64 {
        for (k, id) in ids.iter().enumerate() {
            let t = if k == 0 { &t1 } else { &t2 };
            let ev = event(t, ts(1 + n as u64), id, n * 3, 3);
            h.sink
                .add_dml_event(id, ev, None, Some(flush_cb()))
                .unwrap();
        }
        if n % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    h.sink.close().await.unwrap();
    assert_eq!(flushed.load(Ordering::SeqCst), 600);
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    assert!(
        files.len() > 4,
        "several flushes expected, got {}",
        files.len()
    );
    let mut per_dispatcher: HashMap<String, Vec<i64>> = HashMap::new();
    for (f, rows) in &files {
        for r in rows {
            let (d, seq) = row_key(r);
            if f.dir.table == "t2" {
                assert_eq!(f.dispatcher_id.as_deref(), Some(d.as_str()));
            } else {
                assert_eq!(f.dispatcher_id, None);
            }
            per_dispatcher.entry(d).or_default().push(seq);
        }
    }
    for id in ids {
        let seqs = &per_dispatcher[id];
        assert_eq!(seqs, &(0..450).collect::<Vec<i64>>(), "dispatcher {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_is_published_after_data_file() {
    let h = harness("protocol=csv&flush-interval=10ms&date-separator=day").await;
    // Uneven delays on data files, so publishing overlaps.
    h.store
        .add_rule(Rule::new(Op::Put, ".csv", Fault::Delay(Duration::from_millis(15))).every(2));
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    for n in 0..40i64 {
        h.sink
            .add_dml_event("d", event(&t, ts(n as u64 + 1), "d", n, 1), None, None)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    h.sink.close().await.unwrap();
    let layout = LayoutConfig::from_options(&h.options);
    let log = h.store.log();
    let mut index_puts = 0;
    for (i, rec) in log.iter().enumerate() {
        if rec.op != Op::Put || !rec.path.ends_with(".index") {
            continue;
        }
        index_puts += 1;
        let idx = IndexFile::parse(&rec.path, &layout).unwrap();
        let dir = idx.dir.build().unwrap();
        // The file it names (content = newest file) must have completed before it started.
        let data_before: Vec<_> = log[..i]
            .iter()
            .filter(|r| r.ok && r.path.starts_with(&dir) && r.path.ends_with(".csv"))
            .collect();
        assert!(
            !data_before.is_empty(),
            "index {} before any data",
            rec.path
        );
        let last = data_before.last().unwrap();
        assert!(last.finished <= rec.started, "{last:?} vs {rec:?}");
    }
    assert!(index_puts >= 2);
}

/// A stream's batch before midnight and its batch after it, flushed together: the later day's
/// index entry is put only after the earlier day's (a consumer that saw the later day never
/// reads the earlier one again), even when the earlier day's data file is slow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_later_day_is_indexed_after_its_earlier_day() {
    let h = harness("protocol=csv&flush-interval=10s&date-separator=day").await;
    h.store.add_rule(Rule::new(
        Op::Put,
        "2023-11-14/CDC",
        Fault::Delay(Duration::from_millis(300)),
    ));
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    // 2023-11-15 00:00:00 UTC is ts(6_400_000).
    for (n, at) in [6_399_000u64, 6_401_000].into_iter().enumerate() {
        h.sink
            .add_dml_event("d", event(&t, ts(at), "d", n as i64, 1), None, None)
            .unwrap();
    }
    h.sink.close().await.unwrap();
    let log = h.store.log();
    let index_put = |day: &str| {
        log.iter()
            .find(|r| r.op == Op::Put && r.ok && r.path.contains(day) && r.path.ends_with(".index"))
            .unwrap_or_else(|| panic!("no index put in {day}: {log:?}"))
            .clone()
    };
    let (earlier, later) = (index_put("/2023-11-14/"), index_put("/2023-11-15/"));
    assert!(
        earlier.finished <= later.started,
        "{later:?} started before {earlier:?} finished"
    );
}

/// The batch after midnight reaches file-size while the stream's batch before midnight waits
/// for its deadline: the size flush publishes the earlier day first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_flush_after_midnight_publishes_the_earlier_day_first() {
    let h = harness("protocol=csv&flush-interval=60s&file-size=1KiB&date-separator=day").await;
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    // 2023-11-15 00:00:00 UTC is ts(6_400_000): one small event before, a large one after.
    h.sink
        .add_dml_event("d", event(&t, ts(6_399_000), "d", 0, 1), None, None)
        .unwrap();
    h.sink
        .add_dml_event(
            "d",
            event_sized(&t, ts(6_401_000), "d", 1, 1, 4096),
            None,
            None,
        )
        .unwrap();
    // The size flush happens now; the deadline of the earlier batch is a minute away.
    let index_put = |day: &str| {
        h.store
            .log()
            .into_iter()
            .find(|r| r.op == Op::Put && r.ok && r.path.contains(day) && r.path.ends_with(".index"))
    };
    assert!(wait_for(5, || index_put("/2023-11-15/").is_some()).await);
    let (earlier, later) = (
        index_put("/2023-11-14/"),
        index_put("/2023-11-15/").unwrap(),
    );
    let earlier = earlier.unwrap_or_else(|| panic!("{later:?} put while 2023-11-14 has none"));
    assert!(
        earlier.finished <= later.started,
        "{later:?} started before {earlier:?} finished"
    );
    h.sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_flush_callback_before_the_put_completes() {
    let h = harness("protocol=csv&flush-interval=10ms").await;
    let hang = h.store.add_rule(Rule::new(Op::Put, ".csv", Fault::Hang));
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (woken, wake_cb) = counter();
    let (flushed, flush_cb) = counter();
    h.sink
        .add_dml_event(
            "d",
            event(&t, ts(1), "d", 0, 2),
            Some(wake_cb()),
            Some(flush_cb()),
        )
        .unwrap();
    assert!(wait_for(5, || woken.load(Ordering::SeqCst) == 1).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        flushed.load(Ordering::SeqCst),
        0,
        "flushed while the data put hangs"
    );
    let released_at = h.store.now();
    h.store.remove_rule(hang);
    assert!(wait_for(5, || flushed.load(Ordering::SeqCst) == 1).await);
    let puts = h.store.log();
    let data = puts
        .iter()
        .find(|r| r.path.ends_with(".csv") && r.ok)
        .unwrap();
    let index = puts
        .iter()
        .find(|r| r.path.ends_with(".index") && r.ok)
        .unwrap();
    assert!(data.finished >= released_at);
    assert!(index.started >= data.finished);
    h.sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_dml_event_returns_promptly_while_storage_hangs() {
    let h = harness("protocol=csv&flush-interval=10ms").await;
    h.store.add_rule(Rule::any("", Fault::Hang));
    let t = table("t", ts(0));
    for i in 0..10 {
        h.sink
            .add_dispatcher(&format!("d{i}"), FileNaming::Dispatcher)
            .unwrap();
    }
    let (woken, wake_cb) = counter();
    let mut slowest = Duration::ZERO;
    for n in 0..1000i64 {
        let id = format!("d{}", n % 10);
        let ev = event(&t, ts(n as u64 + 1), &id, n, 2);
        let start = Instant::now();
        h.sink
            .add_dml_event(&id, ev, Some(wake_cb()), None)
            .unwrap();
        slowest = slowest.max(start.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(50),
        "slowest call {slowest:?}"
    );
    // The spool has room: every event is acknowledged as enqueued although nothing is written.
    assert!(wait_for(10, || woken.load(Ordering::SeqCst) == 1000).await);
    h.store.clear_rules();
    h.sink.close().await.unwrap();
}
