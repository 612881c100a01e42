//! DDL drain markers, schema files, restart behaviour, checkpoint rules, multipart, cleanup.

use crate::support;

use cdc_common::layout::{Checkpoint, DataFile, LayoutConfig, SchemaFilePath};
use cdc_common::testing::{Fault, FaultStore, Op, Rule};
use cdc_common::{DdlEvent, DdlKind, TableName, Ts};
use cdc_sink::{CheckpointOutcome, FileNaming};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::*;

fn ddl(kind: DdlKind, at: Ts, tables: Vec<cdc_common::TableDef>) -> DdlEvent {
    DdlEvent {
        commit_ts: at,
        query: format!("{kind:?}"),
        kind,
        schema: "s".into(),
        tables,
        prev_tables: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dml_before_t_appears_after_the_schema_file_of_t() {
    // A long flush interval: only the drain can publish the DML in time.
    let h = harness("protocol=csv&flush-interval=60s&date-separator=none").await;
    h.store.add_rule(Rule::new(
        Op::Put,
        ".csv",
        Fault::Delay(Duration::from_millis(30)),
    ));
    let a = table("a", ts(0));
    let b = table("b", ts(0));
    h.sink.add_dispatcher("da", FileNaming::Table).unwrap();
    h.sink.add_dispatcher("db", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    for n in 0..20i64 {
        h.sink
            .add_dml_event(
                "da",
                event(&a, ts(10 + n as u64), "da", n, 2),
                None,
                Some(cb()),
            )
            .unwrap();
        h.sink
            .add_dml_event(
                "db",
                event(&b, ts(10 + n as u64), "db", n, 2),
                None,
                Some(cb()),
            )
            .unwrap();
    }
    // RENAME a TO a2, b TO b2 at T = ts(100): a multi-table DDL blocks both dispatchers.
    let t = ts(100);
    let mut rename = ddl(
        DdlKind::RenameTable,
        t,
        vec![(*table("a2", t)).clone(), (*table("b2", t)).clone()],
    );
    rename.prev_tables = vec![TableName::new("s", "a"), TableName::new("s", "b")];
    h.sink
        .write_block_event(&rename, &["da", "db"])
        .await
        .unwrap();
    assert_eq!(
        flushed.load(Ordering::SeqCst),
        40,
        "drain returned before DML was durable"
    );
    let log = h.store.completed_puts();
    let first_schema = log
        .iter()
        .position(|p| p.contains("/meta/schema_") && p.contains(&t.0.to_string()))
        .expect("schema files of T");
    let last_data = log.iter().rposition(|p| p.ends_with(".csv")).unwrap();
    assert!(last_data < first_schema, "{log:?}");
    for name in ["a2", "b2"] {
        assert!(
            log.iter()
                .any(|p| p.starts_with(&format!("s/{name}/meta/schema_{}_", t.0))),
            "{name}"
        );
    }
    // DROP DATABASE: a database-level schema file.
    h.sink
        .write_block_event(&ddl(DdlKind::DropSchema, ts(200), vec![]), &["da", "db"])
        .await
        .unwrap();
    assert!(paths(h.store.inner())
        .await
        .iter()
        .any(|p| p.starts_with(&format!("s/meta/schema_{}_", ts(200).0))));
    h.sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replaces_unindexed_files_and_reuses_the_schema_version() {
    let store = FaultStore::new(Arc::new(InMemory::new()));
    let query = "protocol=csv&flush-interval=60s&date-separator=none&file-index-width=6";
    let v1 = ts(0);
    let t = table("t", v1);
    let mut defs = BTreeMap::new();
    defs.insert("t".to_string(), Arc::clone(&t));
    {
        let h = harness_on(Some(store.clone()), query, |c| c).await;
        h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
        h.sink
            .write_block_event(&ddl(DdlKind::CreateTable, v1, vec![(*t).clone()]), &[])
            .await
            .unwrap();
        for n in 0..3i64 {
            h.sink
                .add_dml_event("d", event(&t, ts(10 + n as u64), "d", n, 1), None, None)
                .unwrap();
            // Each drain cuts one file: CDC000001..3.
            h.sink
                .pass_block_event(&ddl(DdlKind::Other, ts(11 + n as u64), vec![]), &["d"])
                .await
                .unwrap();
        }
        h.sink.close().await.unwrap();
    }
    let before = paths(store.inner()).await;
    let dir = format!("s/t/{}", v1.0);
    assert!(
        before.contains(&format!("{dir}/CDC000003.csv")),
        "{before:?}"
    );
    // A crash after a data put but before its index put leaves unindexed files (two here: a
    // run with flush concurrency may publish several before the crash).
    for n in [4, 6] {
        store
            .inner()
            .put(
                &Path::from(format!("{dir}/CDC00000{n}.csv")),
                "I,t,s,9,stale,9,x\r\n".into(),
            )
            .await
            .unwrap();
    }
    // Restart: the dispatcher now carries a checkpoint-derived, newer version of the same
    // definition.
    let t_new = table("t", ts(50));
    {
        let h = harness_on(Some(store.clone()), query, |c| c).await;
        h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
        h.sink
            .add_dml_event("d", event(&t_new, ts(60), "d", 3, 1), None, None)
            .unwrap();
        // Drained (and so cold-started) before close(), which unregisters the metrics.
        h.sink.remove_dispatcher("d").await.unwrap();
        let deleted = h
            .registry
            .gather()
            .iter()
            .find(|f| f.name() == "cdc_sink_stale_files_deleted_total")
            .map(|f| f.get_metric()[0].get_counter().get_value());
        assert_eq!(deleted, Some(2.0), "both stale files counted as deleted");
        h.sink.close().await.unwrap();
    }
    // Numbering resumes after the index entry: the stale files are gone (4 rewritten with
    // this run's rows, 6 deleted), so no later index entry can cover a stale file's rows.
    let after = paths(store.inner()).await;
    assert!(after.contains(&format!("{dir}/CDC000004.csv")), "{after:?}");
    assert!(
        !after.contains(&format!("{dir}/CDC000006.csv")),
        "{after:?}"
    );
    let files = read_data_files(store.inner(), &h_options(query), &defs).await;
    let keys: Vec<(String, i64)> = files
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(row_key))
        .collect();
    assert_eq!(
        keys,
        (0..4).map(|n| ("d".to_string(), n)).collect::<Vec<_>>(),
        "the storage holds each accepted event once and no stale row"
    );
    let schema_files: Vec<&String> = after
        .iter()
        .filter(|p| p.contains("/meta/schema_"))
        .collect();
    assert_eq!(
        schema_files.len(),
        1,
        "a new version was created: {schema_files:?}"
    );
    assert!(!after
        .iter()
        .any(|p| p.starts_with(&format!("s/t/{}/", ts(50).0))));
    let idx = store
        .inner()
        .get(&Path::from(format!("{dir}/meta/CDC.index")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&idx[..], b"CDC000004.csv\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_index_with_data_files_deletes_nothing_and_numbers_past_them() {
    let store = FaultStore::new(Arc::new(InMemory::new()));
    let query = "protocol=csv&flush-interval=60s&date-separator=none&file-index-width=6";
    let t = table("t", ts(0));
    let dir = format!("s/t/{}", ts(0).0);
    for n in [1, 2] {
        store
            .inner()
            .put(
                &Path::from(format!("{dir}/CDC00000{n}.csv")),
                "I,t,s,9,old,9,x\r\n".into(),
            )
            .await
            .unwrap();
    }
    // No index file: lost (or deleted by hand), or a crash before the first entry. The sink
    // cannot tell which, so it keeps the files.
    let h = harness_on(Some(store.clone()), query, |c| c).await;
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    h.sink
        .add_dml_event("d", event(&t, ts(10), "d", 0, 1), None, None)
        .unwrap();
    h.sink.remove_dispatcher("d").await.unwrap();
    let deleted = h
        .registry
        .gather()
        .iter()
        .find(|f| f.name() == "cdc_sink_stale_files_deleted_total")
        .map(|f| f.get_metric()[0].get_counter().get_value());
    assert_eq!(deleted, Some(0.0));
    h.sink.close().await.unwrap();
    let after = paths(store.inner()).await;
    for n in 1..=3 {
        assert!(
            after.contains(&format!("{dir}/CDC00000{n}.csv")),
            "{after:?}"
        );
    }
    let idx = store
        .inner()
        .get(&Path::from(format!("{dir}/meta/CDC.index")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&idx[..], b"CDC000003.csv\n");
}

fn h_options(query: &str) -> cdc_common::SinkOptions {
    cdc_common::SinkOptions::from_query(query).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_is_monotonic_rate_limited_and_never_passes_unflushed_events() {
    let h = harness_on(None, "protocol=csv&flush-interval=10ms", |c| {
        c.with_checkpoint_interval(Duration::from_millis(300))
    })
    .await;
    let read = |store: Arc<dyn ObjectStore>| async move {
        let b = store
            .get(&Path::from("metadata"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        Checkpoint::parse("metadata", &b).unwrap().checkpoint_ts
    };
    assert_eq!(
        h.sink.checkpoint(Ts(100)).await.unwrap(),
        CheckpointOutcome::Written(Ts(100))
    );
    assert_eq!(
        h.sink.checkpoint(Ts(50)).await.unwrap(),
        CheckpointOutcome::Unchanged
    );
    assert_eq!(
        h.sink.checkpoint(Ts(200)).await.unwrap(),
        CheckpointOutcome::Deferred(Ts(200))
    );
    assert_eq!(read(Arc::clone(h.store.inner())).await, Ts(100));
    tokio::time::sleep(Duration::from_millis(350)).await;
    // An event at 250 hangs in storage: the checkpoint stops just below it.
    let hang = h.store.add_rule(Rule::new(Op::Put, ".csv", Fault::Hang));
    let t = table("t", Ts(1));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    h.sink
        .add_dml_event("d", event(&t, Ts(250), "d", 0, 1), None, None)
        .unwrap();
    assert_eq!(
        h.sink.checkpoint(Ts(300)).await.unwrap(),
        CheckpointOutcome::Written(Ts(249))
    );
    h.store.remove_rule(hang);
    tokio::time::sleep(Duration::from_millis(350)).await;
    h.sink
        .pass_block_event(&ddl(DdlKind::Other, Ts(301), vec![]), &["d"])
        .await
        .unwrap();
    assert_eq!(
        h.sink.checkpoint(Ts(300)).await.unwrap(),
        CheckpointOutcome::Written(Ts(300))
    );
    assert_eq!(
        h.sink.checkpoint(Ts(400)).await.unwrap(),
        CheckpointOutcome::Deferred(Ts(400))
    );
    h.sink.close().await.unwrap();
    assert_eq!(
        read(Arc::clone(h.store.inner())).await,
        Ts(400),
        "close writes the deferred ts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_upload_as_multipart() {
    let h = harness_on(
        None,
        "protocol=csv&flush-interval=60s&file-size=1MiB&date-separator=none",
        |c| c.with_multipart(256 * 1024, 64 * 1024),
    )
    .await;
    let t = table("t", ts(0));
    let mut defs = BTreeMap::new();
    defs.insert("t".to_string(), Arc::clone(&t));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    for n in 0..40i64 {
        // ~40 KiB per event: the file-size trigger cuts ~1 MiB files.
        h.sink
            .add_dml_event(
                "d",
                event_sized(&t, ts(n as u64 + 1), "d", n * 40, 40, 1000),
                None,
                None,
            )
            .unwrap();
    }
    h.sink.close().await.unwrap();
    let log = h.store.log();
    assert!(
        log.iter().any(|r| r.op == Op::Multipart && r.ok),
        "no multipart upload"
    );
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    let seqs: Vec<i64> = files
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| row_key(r).1))
        .collect();
    assert_eq!(seqs, (0..1600).collect::<Vec<_>>());
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&h.registry.gather())
        .unwrap();
    // Metrics are unregistered at close; the fresh gather is empty of sink metrics.
    assert!(!text.contains("cdc_sink_flushes_total"));
}

/// Parquet and compressed files at or above the multipart threshold are not held whole: their
/// whole-file step streams into the multipart upload (`cdc_sink_files_streamed_total`), an
/// upload failing once is retried by running the step again, and every row reads back in order.
async fn rewritten_files_stream_into_multipart(query: &str) {
    let store = FaultStore::new(Arc::new(InMemory::new()));
    store.add_rule(Rule::new(Op::Multipart, "CDC", Fault::Fail { retryable: true }).times(1));
    let h = harness_on(
        Some(store),
        &format!("{query}&flush-interval=60s&file-size=1MiB&date-separator=none"),
        |c| c.with_multipart(64 * 1024, 16 * 1024),
    )
    .await;
    let t = table("t", ts(0));
    let mut defs = BTreeMap::new();
    defs.insert("t".to_string(), Arc::clone(&t));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    for n in 0..40i64 {
        h.sink
            .add_dml_event(
                "d",
                event_sized(&t, ts(n as u64 + 1), "d", n * 40, 40, 1000),
                None,
                None,
            )
            .unwrap();
    }
    // The first file is cut by size while the sink runs; its metrics are readable until close.
    let streamed = || {
        h.registry
            .gather()
            .iter()
            .filter(|f| f.name() == "cdc_sink_files_streamed_total")
            .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value()))
            .sum::<f64>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while streamed() < 1.0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        streamed() >= 1.0,
        "{query}: no file streamed into multipart"
    );
    h.sink.close().await.unwrap();
    let log = h.store.log();
    assert!(
        log.iter().any(|r| r.op == Op::Multipart && !r.ok),
        "{query}: the injected failure did not hit a multipart upload"
    );
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    let seqs: Vec<i64> = files
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| row_key(r).1))
        .collect();
    assert_eq!(seqs, (0..1600).collect::<Vec<_>>(), "{query}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_parquet_files_stream_into_multipart() {
    rewritten_files_stream_into_multipart("protocol=parquet").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_compressed_files_stream_into_multipart() {
    rewritten_files_stream_into_multipart("protocol=csv&compression=zstd").await;
    rewritten_files_stream_into_multipart(
        "protocol=canal-json&enable-tidb-extension=true&compression=gzip",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_reasons_are_counted() {
    let h = harness("protocol=csv&flush-interval=30ms&file-size=4KiB").await;
    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    for n in 0..10i64 {
        h.sink
            .add_dml_event(
                "d",
                event_sized(&t, ts(n as u64 + 1), "d", n, 1, 1000),
                None,
                None,
            )
            .unwrap();
    }
    h.sink
        .add_dml_event("d", event(&t, ts(20), "d", 100, 1), None, None)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&h.registry.gather())
        .unwrap();
    let count = |reason: &str| -> f64 {
        text.lines()
            .find(|l| {
                l.starts_with("cdc_sink_flushes_total")
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(count("file-size") >= 2.0, "{text}");
    assert!(count("interval") >= 1.0, "{text}");
    for name in [
        "cdc_sink_flush_bytes",
        "cdc_sink_flush_duration_seconds",
        "cdc_sink_files_written_total",
        "cdc_sink_bytes_written_total",
        "cdc_sink_writer_queue_length",
        "cdc_sink_worker_busy_ratio",
        "cdc_spool_memory_bytes",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    h.sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_files_are_removed_and_empty_dirs_too() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(root.path()).unwrap());
    let options =
        cdc_common::SinkOptions::from_query("date-separator=day&file-expiration-days=2").unwrap();
    let layout = LayoutConfig::from_options(&options);
    let now = Ts::from_parts(1_662_000_000_000, 0); // 2022-09-01
    let old = "s/t/1/2022-08-20/CDC00000000000000000001.csv";
    let old_index = "s/t/1/2022-08-20/meta/CDC.index";
    let kept = "s/t/1/2022-08-31/CDC00000000000000000001.csv";
    let schema = "s/t/meta/schema_1_0000000001.json";
    for p in [old, old_index, kept, schema, "metadata"] {
        store.put(&Path::from(p), "x".into()).await.unwrap();
    }
    assert!(DataFile::parse(old, &layout).is_ok());
    let report = cdc_sink::cleanup::remove_expired(&store, &options, now, Some(root.path()))
        .await
        .unwrap();
    let mut deleted = report.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, vec![old.to_string(), old_index.to_string()]);
    let left = paths(&store).await;
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(!root.path().join("s/t/1/2022-08-20").exists());
    assert!(root.path().join("s/t/1/2022-08-31").exists());
    let _ = SchemaFilePath::parse(schema).unwrap();
}
