//! API edges: every protocol round-trips, partitions, dispatcher removal, bad input.

use crate::support;

use cdc_common::layout::{DataFile, LayoutConfig};
use cdc_sink::{FileNaming, SinkError};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_round_trips_through_storage() {
    for protocol in ["csv", "canal-json", "avro"] {
        let h = harness(&format!(
            "protocol={protocol}&flush-interval=60s&file-size=2KiB&date-separator=none"
        ))
        .await;
        let t = table("t", ts(0));
        let mut defs = BTreeMap::new();
        defs.insert("t".to_string(), Arc::clone(&t));
        h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
        for n in 0..30i64 {
            h.sink
                .add_dml_event("d", event(&t, ts(1 + n as u64), "d", n * 2, 2), None, None)
                .unwrap();
        }
        h.sink.close().await.unwrap();
        let files = read_data_files(h.store.inner(), &h.options, &defs).await;
        assert!(files.len() > 1, "{protocol}: one file only");
        let seqs: Vec<i64> = files
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|r| row_key(r).1))
            .collect();
        assert_eq!(seqs, (0..60).collect::<Vec<_>>(), "{protocol}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_get_their_own_directories() {
    let h = harness("protocol=csv&flush-interval=60s&date-separator=none").await;
    let t = table("p", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    for pid in [7i64, 8] {
        let mut ev = event(&t, ts(5), "d", pid, 1);
        ev.partition_id = Some(pid);
        h.sink.add_dml_event("d", ev, None, None).unwrap();
    }
    h.sink.close().await.unwrap();
    let layout = LayoutConfig::from_options(&h.options);
    let mut pids: Vec<Option<i64>> = h
        .store
        .completed_puts()
        .iter()
        .filter_map(|p| DataFile::parse(p, &layout).ok())
        .map(|f| f.dir.partition_id)
        .collect();
    pids.sort();
    assert_eq!(pids, vec![Some(7), Some(8)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_dispatcher_flushes_it_first() {
    let h = harness("protocol=csv&flush-interval=60s").await;
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    h.sink
        .add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, Some(cb()))
        .unwrap();
    h.sink.remove_dispatcher("d").await.unwrap();
    assert_eq!(flushed.load(Ordering::SeqCst), 1);
    assert!(matches!(
        h.sink
            .add_dml_event("d", event(&t, ts(2), "d", 1, 1), None, None),
        Err(SinkError::UnknownDispatcher(_))
    ));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    h.sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_has_one_writer_under_table_file_names() {
    let h = harness("protocol=csv&flush-interval=60s").await;
    let t = table("t", ts(0));
    h.sink.add_dispatcher("a", FileNaming::Table).unwrap();
    h.sink.add_dispatcher("b", FileNaming::Table).unwrap();
    h.sink.add_dispatcher("c", FileNaming::Dispatcher).unwrap();
    h.sink
        .add_dml_event("a", event(&t, ts(1), "a", 0, 1), None, None)
        .unwrap();
    assert!(matches!(
        h.sink
            .add_dml_event("b", event(&t, ts(2), "b", 0, 1), None, None),
        Err(SinkError::TableOwned { .. })
    ));
    // Dispatcher file names never collide.
    h.sink
        .add_dml_event("c", event(&t, ts(3), "c", 0, 1), None, None)
        .unwrap();
    // Once `a` is removed, `b` may take the table over.
    h.sink.remove_dispatcher("a").await.unwrap();
    h.sink
        .add_dml_event("b", event(&t, ts(4), "b", 0, 1), None, None)
        .unwrap();
    h.sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_typed_error() {
    let h = harness("protocol=csv").await;
    assert!(matches!(
        h.sink.add_dispatcher("a/b", FileNaming::Dispatcher),
        Err(SinkError::InvalidParameter { .. } | SinkError::Layout(_))
    ));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    assert!(matches!(
        h.sink.add_dispatcher("d", FileNaming::Table),
        Err(SinkError::DuplicateDispatcher(_))
    ));
    let bad = table("..", ts(0));
    assert!(matches!(
        h.sink
            .add_dml_event("d", event(&bad, ts(1), "d", 0, 1), None, None),
        Err(SinkError::Layout(_))
    ));
    assert!(matches!(
        h.sink.add_dml_event(
            "nobody",
            event(&table("t", ts(0)), ts(1), "d", 0, 1),
            None,
            None
        ),
        Err(SinkError::UnknownDispatcher(_))
    ));
    // A row that does not match its table is refused at once; the sink keeps working
    // (tests/bad_input.rs has every kind of bad row, out-of-order events and options).
    let t = table("t", ts(0));
    let mut ev = event(&t, ts(1), "d", 0, 1);
    ev.rows = vec![cdc_common::RowChange::Insert { after: vec![] }];
    let (flushed, cb) = counter();
    assert!(matches!(
        h.sink.add_dml_event("d", ev, None, Some(cb())),
        Err(SinkError::InvalidRow { row: 0, .. })
    ));
    assert!(h.sink.error().is_none());
    h.sink
        .add_dml_event("d", event(&t, ts(2), "d", 0, 1), None, Some(cb()))
        .unwrap();
    h.sink.close().await.unwrap();
    assert_eq!(flushed.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_from_a_file_uri_runs_scheduled_expiry() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let old_dir = data.join("s/t/1/2020-01-01");
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::write(old_dir.join("CDC00000000000000000001.csv"), "x").unwrap();
    let uri = format!(
        "file://{}?protocol=csv&date-separator=day&file-expiration-days=1&file-cleanup-interval=1s\
         &spool-dir={}&spool-memory-quota=16MiB&spool-disk-quota=64MiB",
        data.display(),
        root.path().join("spool").display()
    );
    let registry = prometheus::Registry::new();
    let sink = cdc_sink::Sink::open(&uri, cdc_sink::SinkConfig::new("uri-test"), &registry)
        .await
        .unwrap();
    assert!(
        wait_for(5, || !old_dir.exists()).await,
        "expired file not removed"
    );
    assert!(
        wait_for(5, || !data.join("s").exists()).await,
        "empty directories left"
    );
    let t = table("t", ts(0));
    sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    sink.add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, Some(cb()))
        .unwrap();
    sink.close().await.unwrap();
    assert_eq!(flushed.load(Ordering::SeqCst), 1);
    assert!(data.join("s/t").exists());
}

/// With several sink processes on one storage only the cleanup owner expires files: a sink
/// opened with `with_cleanup_owner(false)` leaves an expired file alone, the owner removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_cleanup_owner_expires_files() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let old_dir = data.join("s/t/1/2020-01-01");
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::write(old_dir.join("CDC00000000000000000001.csv"), "x").unwrap();
    let uri = |spool: &str| {
        format!(
            "file://{}?protocol=csv&date-separator=day&file-expiration-days=1&file-cleanup-interval=1s\
             &spool-dir={}&spool-memory-quota=16MiB&spool-disk-quota=64MiB",
            data.display(),
            root.path().join(spool).display()
        )
    };
    let registry = prometheus::Registry::new();
    let follower = cdc_sink::Sink::open(
        &uri("spool-a"),
        cdc_sink::SinkConfig::new("node-a").with_cleanup_owner(false),
        &registry,
    )
    .await
    .unwrap();
    assert!(
        !wait_for(3, || !old_dir.exists()).await,
        "a sink that is not the cleanup owner deleted an expired file"
    );
    let owner = cdc_sink::Sink::open(
        &uri("spool-b"),
        cdc_sink::SinkConfig::new("node-b"),
        &registry,
    )
    .await
    .unwrap();
    assert!(
        wait_for(5, || !old_dir.exists()).await,
        "the cleanup owner did not remove the expired file"
    );
    follower.close().await.unwrap();
    owner.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_spec_schedules_expiry_as_ticdc_does() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let old_dir = data.join("s/t/1/2020-01-01");
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::write(old_dir.join("CDC00000000000000000001.csv"), "x").unwrap();
    // every second (TiCDC's six-field syntax, seconds first)
    let uri = format!(
        "file://{}?protocol=csv&date-separator=day&file-expiration-days=1\
         &file-cleanup-cron-spec=*%20*%20*%20*%20*%20*\
         &spool-dir={}&spool-memory-quota=16MiB&spool-disk-quota=64MiB",
        data.display(),
        root.path().join("spool").display()
    );
    let registry = prometheus::Registry::new();
    let sink = cdc_sink::Sink::open(&uri, cdc_sink::SinkConfig::new("cron-test"), &registry)
        .await
        .unwrap();
    assert!(
        wait_for(5, || !old_dir.exists()).await,
        "expired file not removed on the cron schedule"
    );
    sink.close().await.unwrap();
}

/// Opening a sink whose spool directory another sink holds waits for the lock (up to
/// `cdc_spool::LOCK_WAIT`, see the spool's "ownership") off the runtime's threads: on a
/// runtime of one thread other tasks go on meanwhile, and the open is refused as in use once
/// the wait is over.
#[tokio::test(flavor = "current_thread")]
async fn a_held_spool_directory_is_waited_for_without_blocking_the_runtime() {
    let root = tempfile::tempdir().unwrap();
    let uri = format!(
        "file://{}?protocol=csv&spool-dir={}&spool-memory-quota=16MiB&spool-disk-quota=64MiB",
        root.path().join("data").display(),
        root.path().join("spool").display()
    );
    let config = || cdc_sink::SinkConfig::new("held");
    let first = cdc_sink::Sink::open(&uri, config(), &prometheus::Registry::new())
        .await
        .unwrap();
    let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Arc::clone(&ticks);
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let second = cdc_sink::Sink::open(&uri, config(), &prometheus::Registry::new()).await;
    let during = ticks.load(Ordering::SeqCst);
    ticker.abort();
    match second {
        Err(SinkError::Spool(e)) => assert!(e.is_in_use(), "{e}"),
        other => panic!("a held spool directory was opened: {other:?}"),
    }
    // 500 ms of waiting is about 50 ticks; a blocked runtime runs none.
    assert!(
        during >= 10,
        "the runtime ran {during} ticks of 10 ms while the open waited {:?}",
        cdc_spool::LOCK_WAIT
    );
    first.close().await.unwrap();
}
