//! Scale, slow storage, injected failures, flush timing.

use crate::support;

use cdc_common::testing::{Fault, Op, Rule};
use cdc_common::Ts;
use cdc_sink::{CheckpointOutcome, FileNaming, SinkError};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_dispatchers_over_two_hundred_tables() {
    let h = harness_on(
        None,
        "protocol=csv&flush-interval=50ms&worker-count=4&date-separator=none",
        |c| c.with_writer_count(4),
    )
    .await;
    let mut defs = BTreeMap::new();
    for t in 0..200 {
        defs.insert(format!("t{t}"), table(&format!("t{t}"), ts(0)));
    }
    for d in 0..1000 {
        h.sink
            .add_dispatcher(&format!("d{d}"), FileNaming::Dispatcher)
            .unwrap();
    }
    let (flushed, cb) = counter();
    for round in 0..3i64 {
        for d in 0..1000 {
            let id = format!("d{d}");
            let t = &defs[&format!("t{}", d % 200)];
            let ev = event(t, ts(1 + round as u64), &id, round * 2, 2);
            h.sink.add_dml_event(&id, ev, None, Some(cb())).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    h.sink.close().await.unwrap();
    assert_eq!(flushed.load(Ordering::SeqCst), 3000);
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    let mut per: HashMap<String, Vec<i64>> = HashMap::new();
    for (f, rows) in &files {
        for r in rows {
            let (d, seq) = row_key(r);
            assert_eq!(f.dispatcher_id.as_deref(), Some(d.as_str()));
            per.entry(d).or_default().push(seq);
        }
    }
    assert_eq!(per.len(), 1000);
    for (d, seqs) in per {
        assert_eq!(seqs, (0..6).collect::<Vec<_>>(), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_store_keeps_memory_within_the_spool_quota_while_wakes_pause_and_resume() {
    const MEMORY: u64 = 256 * 1024;
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = cdc_spool::SpoolConfig::builder()
        .dir(spool_dir.path())
        .memory_quota(MEMORY)
        .disk_quota(1024 * 1024)
        .watermarks(384 * 1024, 128 * 1024)
        .build()
        .unwrap();
    let h = harness_on(
        None,
        "protocol=csv&flush-interval=50ms&file-size=64KiB&worker-count=2",
        move |c| c.with_spool(spool),
    )
    .await;
    h.store.add_rule(Rule::new(
        Op::Put,
        "",
        Fault::Delay(Duration::from_millis(30)),
    ));
    let t = table("t", ts(0));
    let max_memory = Arc::new(AtomicU64::new(0));
    let saw_holding = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let sink = Arc::clone(&h.sink);
        let (max_memory, saw_holding, stop) = (
            Arc::clone(&max_memory),
            Arc::clone(&saw_holding),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let s = sink.spool_stats();
                max_memory.fetch_max(s.memory_bytes, Ordering::SeqCst);
                if s.holding && s.held_wakes > 0 {
                    saw_holding.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let (flushed, cb) = counter();
    let mut producers = Vec::new();
    for d in 0..8 {
        let id = format!("d{d}");
        h.sink.add_dispatcher(&id, FileNaming::Dispatcher).unwrap();
        let sink = Arc::clone(&h.sink);
        let t = Arc::clone(&t);
        let cb = cb.clone();
        producers.push(tokio::spawn(async move {
            for n in 0..40i64 {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let wake: cdc_sink::Callback = Box::new(move || {
                    let _ = tx.send(());
                });
                let ev = event_sized(&t, ts(1 + n as u64), &id, n * 8, 8, 1000);
                sink.add_dml_event(&id, ev, Some(wake), Some(cb())).unwrap();
                // The dispatcher's protocol: the next event only after the wake.
                tokio::time::timeout(Duration::from_secs(30), rx.recv())
                    .await
                    .expect("wake never came")
                    .expect("wake dropped");
            }
        }));
    }
    for p in producers {
        p.await.unwrap();
    }
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&h.registry.gather())
        .unwrap();
    let pressure = text
        .lines()
        .find(|l| {
            l.starts_with("cdc_sink_flushes_total") && l.contains("reason=\"spool-pressure\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(pressure > 0.0, "no spool-pressure flush: {text}");
    h.sink.close().await.unwrap();
    stop.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    assert_eq!(flushed.load(Ordering::SeqCst), 320);
    let peak = max_memory.load(Ordering::SeqCst);
    assert!(peak <= MEMORY, "spool memory {peak} above quota {MEMORY}");
    assert!(saw_holding.load(Ordering::SeqCst), "wakes never paused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_retryable_errors_lose_nothing() {
    let h = harness("protocol=csv&flush-interval=10ms&date-separator=none").await;
    // Every third operation of any kind on each path fails with a retryable error.
    h.store
        .add_rule(Rule::any("", Fault::Fail { retryable: true }).every(2));
    let t = table("t", ts(0));
    let mut defs = BTreeMap::new();
    defs.insert("t".to_string(), Arc::clone(&t));
    let (flushed, cb) = counter();
    for d in 0..4 {
        h.sink
            .add_dispatcher(&format!("d{d}"), FileNaming::Dispatcher)
            .unwrap();
    }
    for n in 0..60i64 {
        for d in 0..4 {
            let id = format!("d{d}");
            h.sink
                .add_dml_event(
                    &id,
                    event(&t, ts(1 + n as u64), &id, n, 1),
                    None,
                    Some(cb()),
                )
                .unwrap();
        }
        if n % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
    h.sink.close().await.unwrap();
    assert_eq!(flushed.load(Ordering::SeqCst), 240);
    assert!(
        h.store.log().iter().any(|r| !r.ok),
        "no failure was injected"
    );
    h.store.clear_rules();
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    let per = seqs_per_dispatcher(&files);
    for d in 0..4 {
        assert_eq!(per[&format!("d{d}")], (0..60).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_upload_times_out_and_is_retried() {
    // Every data file put hangs until the store recovers (the rule is removed); each attempt
    // times out after 100 ms and is retried.
    let h = harness_on(None, "protocol=csv&flush-interval=10ms", |c| {
        let mut r = fast_retry();
        r.request_timeout = Duration::from_millis(100);
        r.max_attempts = 1000;
        c.with_retry(r)
    })
    .await;
    let hang = h.store.add_rule(Rule::new(Op::Put, ".csv", Fault::Hang));
    let t = table("t", ts(0));
    let mut defs = BTreeMap::new();
    defs.insert("t".to_string(), Arc::clone(&t));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    h.sink
        .add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, Some(cb()))
        .unwrap();
    // The sink reports the timeouts: failed put attempts and retries count up.
    let timeouts = || {
        metric(
            &h.registry,
            "cdc_sink_storage_errors_total",
            &[("op", "put")],
        )
    };
    assert!(
        wait_for(5, || timeouts() >= 3.0).await,
        "no timeout reported"
    );
    assert!(metric(&h.registry, "cdc_sink_storage_retries_total", &[]) >= 3.0);
    assert_eq!(flushed.load(Ordering::SeqCst), 0);
    assert!(h.sink.error().is_none(), "{:?}", h.sink.error());
    // Meanwhile the checkpoint stays below the hung event.
    let out = h.sink.checkpoint(ts(5)).await.unwrap();
    assert_eq!(out, CheckpointOutcome::Written(Ts(ts(1).0 - 1)));
    // The store recovers: the next attempt lands, exactly one data file.
    h.store.remove_rule(hang);
    assert!(wait_for(5, || flushed.load(Ordering::SeqCst) == 1).await);
    assert!(h.sink.error().is_none());
    h.sink.close().await.unwrap();
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_past_the_retry_budget_stops_the_sink_with_a_timeout() {
    let reported: Arc<Mutex<Vec<SinkError>>> = Arc::default();
    let rep = Arc::clone(&reported);
    let h = harness_on(None, "protocol=csv&flush-interval=10ms", move |c| {
        let mut r = fast_retry();
        r.request_timeout = Duration::from_millis(50);
        r.max_attempts = 3;
        c.with_retry(r)
            .with_on_error(Arc::new(move |e: &SinkError| {
                rep.lock().unwrap().push(e.clone())
            }))
    })
    .await;
    h.store.add_rule(Rule::new(Op::Put, ".csv", Fault::Hang));
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    h.sink
        .add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, Some(cb()))
        .unwrap();
    assert!(wait_for(5, || h.sink.error().is_some()).await);
    let is_timeout = |e: &SinkError| matches!(e, SinkError::Timeout { op: "put", attempts: 3, path, .. } if path.ends_with(".csv"));
    assert!(
        matches!(h.sink.error(), Some(SinkError::Failed(e)) if is_timeout(&e)),
        "{:?}",
        h.sink.error()
    );
    let reported = reported.lock().unwrap().clone();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(is_timeout(&reported[0]), "{reported:?}");
    assert!(reported[0].is_retryable());
    assert_eq!(flushed.load(Ordering::SeqCst), 0);
    assert!(matches!(
        h.sink.checkpoint(ts(5)).await,
        Err(SinkError::Failed(_))
    ));
    h.store.clear_rules();
    assert!(matches!(h.sink.close().await, Err(SinkError::Failed(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retryable_error_surfaces_and_no_checkpoint_passes_the_lost_events() {
    let reported: Arc<Mutex<Vec<String>>> = Arc::default();
    let rep = Arc::clone(&reported);
    let h = harness_on(None, "protocol=csv&flush-interval=10ms", move |c| {
        c.with_on_error(Arc::new(move |e: &SinkError| {
            rep.lock().unwrap().push(e.to_string())
        }))
    })
    .await;
    let good = table("good", ts(0));
    let bad = table("bad", ts(0));
    h.store.add_rule(Rule::new(
        Op::Put,
        "s/bad/",
        Fault::Fail { retryable: false },
    ));
    h.sink.add_dispatcher("g", FileNaming::Table).unwrap();
    h.sink.add_dispatcher("b", FileNaming::Table).unwrap();
    let (_good_flushed, good_cb) = counter();
    let (bad_flushed, bad_cb) = counter();
    h.sink
        .add_dml_event("g", event(&good, ts(10), "g", 0, 1), None, Some(good_cb()))
        .unwrap();
    h.sink
        .add_dml_event("b", event(&bad, ts(20), "b", 0, 1), None, Some(bad_cb()))
        .unwrap();
    assert!(wait_for(5, || h.sink.error().is_some()).await);
    assert!(
        !reported.lock().unwrap().is_empty(),
        "error callback not called"
    );
    assert_eq!(bad_flushed.load(Ordering::SeqCst), 0);
    assert!(matches!(
        h.sink.checkpoint(ts(30)).await,
        Err(SinkError::Failed(_))
    ));
    assert!(matches!(
        h.sink
            .add_dml_event("g", event(&good, ts(40), "g", 1, 1), None, Some(good_cb())),
        Err(SinkError::Failed(_))
    ));
    assert!(matches!(h.sink.close().await, Err(SinkError::Failed(_))));
    let meta = object_store::ObjectStoreExt::get(
        h.store.inner().as_ref(),
        &object_store::path::Path::from("metadata"),
    )
    .await;
    assert!(meta.is_err(), "a checkpoint was written after the failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_batch_ages_on_its_own_clock() {
    let h = harness("protocol=csv&flush-interval=200ms&date-separator=none").await;
    let tables: Vec<_> = (0..3).map(|i| table(&format!("t{i}"), ts(0))).collect();
    for i in 0..3 {
        h.sink
            .add_dispatcher(&format!("d{i}"), FileNaming::Table)
            .unwrap();
    }
    // Table i starts 70 ms after table i-1, then all three send every 10 ms.
    for step in 0..50u64 {
        for (i, t) in tables.iter().enumerate() {
            if step >= 7 * i as u64 {
                let id = format!("d{i}");
                h.sink
                    .add_dml_event(&id, event(t, ts(step + 1), &id, step as i64, 1), None, None)
                    .unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.sink.close().await.unwrap();
    let first_put = |name: &str| {
        h.store
            .log()
            .iter()
            .find(|r| r.ok && r.path.starts_with(&format!("s/{name}/")) && r.path.ends_with(".csv"))
            .map(|r| r.started)
            .unwrap()
    };
    let (a, b, c) = (first_put("t0"), first_put("t1"), first_put("t2"));
    assert!(b > a + Duration::from_millis(35), "{a:?} {b:?}");
    assert!(c > b + Duration::from_millis(35), "{b:?} {c:?}");
}

/// Sum of a counter's samples in the registry's text output.
fn metric_sum(registry: &prometheus::Registry, name: &str) -> f64 {
    prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The spool directory on a 2 MiB tmpfs (mounted by the test) while every put hangs: the file
/// system fills long before the spool's 64 MiB disk quota. Enqueues that find no room are
/// refused with "wait for disk quota": the encoders withhold the dispatchers' wakes, ask the
/// writers to flush and retry after releases. Once storage answers again, everything is
/// written: each dispatcher's rows in order, every flush callback once, no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_file_system_withholds_wakes_and_loses_nothing() {
    const FS_SIZE: u64 = 2 << 20;
    let mount_point = tempfile::tempdir().unwrap();
    let Some(fs) = cdc_common::testing::Tmpfs::mount(mount_point.path(), FS_SIZE) else {
        return;
    };
    let spool = cdc_spool::SpoolConfig::builder()
        .dir(fs.path())
        .memory_quota(64 * 1024)
        .disk_quota(64 << 20)
        .watermarks(48 << 20, 16 << 20)
        .build()
        .unwrap();
    let h = harness_on(
        None,
        "protocol=csv&flush-interval=50ms&file-size=256KiB&worker-count=2",
        move |c| c.with_spool(spool),
    )
    .await;
    let hang = h.store.add_rule(Rule::new(Op::Put, "", Fault::Hang));
    let t = table("t", ts(0));
    let (flushed, cb) = counter();
    const DISPATCHERS: i64 = 4;
    const EVENTS: i64 = 200;
    const ROWS: usize = 8;
    let mut producers = Vec::new();
    for d in 0..DISPATCHERS {
        let id = format!("d{d}");
        h.sink.add_dispatcher(&id, FileNaming::Dispatcher).unwrap();
        let sink = Arc::clone(&h.sink);
        let t = Arc::clone(&t);
        let cb = cb.clone();
        producers.push(tokio::spawn(async move {
            for n in 0..EVENTS {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let wake: cdc_sink::Callback = Box::new(move || {
                    let _ = tx.send(());
                });
                let seq0 = n * ROWS as i64;
                let ev = event_sized(&t, ts(1 + n as u64), &id, seq0, ROWS, 1000);
                sink.add_dml_event(&id, ev, Some(wake), Some(cb())).unwrap();
                // The dispatcher's protocol: the next event only after the wake.
                tokio::time::timeout(Duration::from_secs(30), rx.recv())
                    .await
                    .expect("wake never came")
                    .expect("wake dropped");
            }
        }));
    }
    // About 6.6 MB of rows against 2 MiB of file system: the spool must be refused for space.
    assert!(
        wait_for(10, || metric_sum(
            &h.registry,
            "cdc_spool_disk_quota_rejections_total"
        ) > 0.0)
        .await,
        "the spool was never refused for space: {:?}",
        h.sink.spool_stats()
    );
    let s = h.sink.spool_stats();
    assert!(
        s.disk_bytes < 4 * FS_SIZE,
        "refused by the file system, not by the 64 MiB quota: {s:?}"
    );
    assert_eq!(flushed.load(Ordering::SeqCst), 0, "nothing is written yet");
    assert!(h.sink.error().is_none(), "waiting is not an error");
    h.store.remove_rule(hang);
    for p in producers {
        p.await.unwrap();
    }
    h.sink.close().await.unwrap();
    assert!(h.sink.error().is_none());
    let total = (DISPATCHERS * EVENTS) as usize;
    assert_eq!(
        flushed.load(Ordering::SeqCst),
        total,
        "every event flushed once"
    );
    let defs = BTreeMap::from([("t".to_string(), Arc::clone(&t))]);
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    let per = seqs_per_dispatcher(&files);
    assert_eq!(per.len(), DISPATCHERS as usize);
    for (d, seqs) in per {
        let want: Vec<i64> = (0..EVENTS * ROWS as i64).collect();
        assert_eq!(seqs, want, "{d}: every row once, in order");
    }
    drop(h);
    assert_eq!(fs.free(), FS_SIZE, "the spool left nothing behind");
}

/// A flush's first files across new tables: each table's schema file and file number are
/// looked up in storage before its file is named. One writer made those requests one table
/// after another, so over a store with a round trip per request the first flush of N tables
/// waited for about 4 N round trips; now they run `flush-concurrency` at a time, and still
/// every data file is put only after its table's schema file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_flush_looks_up_its_new_tables_side_by_side() {
    const TABLES: usize = 24;
    let h = harness_on(
        None,
        "protocol=csv&flush-interval=60s&date-separator=none",
        |c| c.with_writer_count(1).with_flush_concurrency(8),
    )
    .await;
    h.store.add_rule(Rule::new(
        Op::List,
        "",
        Fault::Delay(Duration::from_millis(20)),
    ));
    let mut defs = BTreeMap::new();
    for t in 0..TABLES {
        let name = format!("t{t}");
        let def = table(&name, ts(0));
        defs.insert(name.clone(), Arc::clone(&def));
        h.sink.add_dispatcher(&name, FileNaming::Table).unwrap();
        let ev = event(&def, ts(1 + t as u64), &name, 0, 3);
        h.sink.add_dml_event(&name, ev, None, None).unwrap();
    }
    h.sink.close().await.unwrap();

    let log = h.store.log();
    let lists: Vec<_> = log.iter().filter(|r| r.op == Op::List).collect();
    let most_at_once = lists
        .iter()
        .map(|a| {
            lists
                .iter()
                .filter(|b| b.started <= a.started && a.started < b.finished)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most_at_once >= 4,
        "the look-ups of {TABLES} new tables ran {most_at_once} at a time at most (one writer, \
         flush-concurrency 8)"
    );
    for t in 0..TABLES {
        let dir = format!("s/t{t}/");
        let schema_done = log
            .iter()
            .filter(|r| {
                r.op == Op::Put && r.ok && r.path.starts_with(&format!("{dir}meta/schema_"))
            })
            .map(|r| r.finished)
            .min()
            .unwrap_or_else(|| panic!("no schema file put for t{t}"));
        let data_started = log
            .iter()
            .filter(|r| r.op == Op::Put && r.path.starts_with(&dir) && r.path.ends_with(".csv"))
            .map(|r| r.started)
            .min()
            .unwrap_or_else(|| panic!("no data file put for t{t}"));
        assert!(
            schema_done <= data_started,
            "t{t}: its data file was put before its schema file was"
        );
    }
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    assert_eq!(files.len(), TABLES, "one data file per table");
    assert!(files
        .iter()
        .all(|(f, rows)| f.index == 1 && rows.len() == 3));
}

/// `cdc_sink_file_finish_seconds` times the whole-file step (compression, parquet), which runs
/// on a blocking thread. A plain file has no such step: it is neither sent to a thread nor
/// timed (it used to be both, a round trip to a blocking thread per file for nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_file_with_a_whole_file_step_is_timed_as_finished() {
    for (query, finished) in [
        ("protocol=csv&flush-interval=50ms&date-separator=none", 0.0),
        (
            "protocol=csv&compression=gzip&flush-interval=50ms&date-separator=none",
            1.0,
        ),
    ] {
        let h = harness(query).await;
        let t = table("t", ts(0));
        h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
        h.sink
            .add_dml_event("d", event(&t, ts(1), "d", 0, 3), None, None)
            .unwrap();
        // Read while the sink is open: closing unregisters its metrics.
        let written = || metric(&h.registry, "cdc_sink_files_written_total", &[]) == 1.0;
        assert!(wait_for(10, written).await, "{query}: no file written");
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&h.registry.gather())
            .unwrap();
        let count: f64 = text
            .lines()
            .find(|l| l.starts_with("cdc_sink_file_finish_seconds_count"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{query}: no cdc_sink_file_finish_seconds_count\n{text}"));
        assert_eq!(count, finished, "{query}: files timed as finished");
        h.sink.close().await.unwrap();
    }
}

/// Two versions of one table in one flush (definition Y at 10, then the first run's definition
/// X again at 20): version 20 may not reuse run 1's `schema_5` of X, because Y lies between.
/// Resolved side by side, 20's listing could run before 10's schema file was written and
/// reuse version 5, so rows after the change went into the directory read before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tables_versions_in_one_flush_are_resolved_in_order() {
    use cdc_common::{ColumnDef, ColumnType, RowChange, Value};
    let q = "protocol=csv&flush-interval=60s&date-separator=none";
    let h = harness_on(None, q, |c| c.with_writer_count(1)).await;
    let x5 = table("t", ts(5));
    h.sink.add_dispatcher("d0", FileNaming::Dispatcher).unwrap();
    h.sink
        .add_dml_event("d0", event(&x5, ts(6), "d0", 0, 1), None, None)
        .unwrap();
    h.sink.close().await.unwrap();
    let h = harness_on(Some(h.store.clone()), q, |c| {
        c.with_writer_count(1).with_flush_concurrency(8)
    })
    .await;
    h.store.add_rule(Rule::new(
        Op::List,
        "",
        Fault::Delay(Duration::from_millis(50)),
    ));
    h.store.add_rule(Rule::new(
        Op::Put,
        "meta/schema_",
        Fault::Delay(Duration::from_millis(100)),
    ));
    let mut y = (*table("t", ts(10))).clone();
    y.columns.push(ColumnDef::new("extra", ColumnType::VarChar));
    let y10 = Arc::new(y);
    let mut ev = event(&y10, ts(11), "d1", 0, 1);
    for r in ev.rows.iter_mut() {
        if let RowChange::Insert { after } = r {
            after.push(Value::Null);
        }
    }
    h.sink.add_dispatcher("d1", FileNaming::Dispatcher).unwrap();
    h.sink.add_dispatcher("d2", FileNaming::Dispatcher).unwrap();
    h.sink.add_dml_event("d1", ev, None, None).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.sink
        .add_dml_event(
            "d2",
            event(&table("t", ts(20)), ts(21), "d2", 0, 1),
            None,
            None,
        )
        .unwrap();
    h.sink.close().await.unwrap();
    let puts: Vec<String> = h.store.completed_puts();
    let d2: Vec<&String> = puts.iter().filter(|p| p.contains("CDC_d2_")).collect();
    assert_eq!(d2.len(), 1, "{puts:?}");
    let v20 = ts(20).0.to_string();
    assert!(
        d2[0].starts_with(&format!("s/t/{v20}/")),
        "d2's rows after version 10 went to {}, not version 20's directory",
        d2[0]
    );
}
