//! Bad input to the sink: rows that do not match their table, events out of commit-ts order,
//! events for unregistered dispatchers and options out of range are refused with a typed error
//! naming what is wrong; the sink keeps working, and storage then holds exactly the accepted
//! events (decoded back), nothing of the refused ones.

use crate::support;

use cdc_common::testing::FaultStore;
use cdc_common::{DdlEvent, DdlKind, RowChange, SinkOptions, Ts, Value};
use cdc_sink::{FileNaming, RetryPolicy, Sink, SinkConfig, SinkError};
use object_store::memory::InMemory;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::*;

fn ddl(at: Ts) -> DdlEvent {
    DdlEvent {
        commit_ts: at,
        query: "ALTER TABLE t ADD INDEX i (seq)".into(),
        kind: DdlKind::AddIndex,
        schema: "s".into(),
        tables: vec![],
        prev_tables: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_events_leave_no_trace_and_the_sink_keeps_working() {
    let h = harness("protocol=csv&flush-interval=20ms&date-separator=none").await;
    let t = table("t", ts(0));
    let mut defs = BTreeMap::new();
    defs.insert("t".to_string(), Arc::clone(&t));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, cb) = counter();
    let (refused_flushed, refused_cb) = counter();
    let (refused_woken, refused_wake) = counter();
    let mut accepted = Vec::new();
    let mut seq = 0i64;
    let mut accept = |at: u64, h: &Harness, seq: &mut i64| {
        h.sink
            .add_dml_event("d", event(&t, ts(at), "d", *seq, 2), None, Some(cb()))
            .unwrap();
        accepted.extend([*seq, *seq + 1]);
        *seq += 2;
    };
    accept(10, &h, &mut seq);

    // Each bad event is refused with the error that names it; the good row before a bad one
    // in the same event is not accepted either.
    let bad_rows: Vec<(&str, RowChange, Option<&str>)> = vec![
        (
            "too few values",
            RowChange::Insert {
                after: vec![Value::Int(1)],
            },
            None,
        ),
        (
            "NULL primary key",
            RowChange::Insert {
                after: vec![
                    Value::Null,
                    Value::String("d".into()),
                    Value::Int(1),
                    Value::Null,
                ],
            },
            Some("id"),
        ),
        (
            "wrong variant",
            RowChange::Insert {
                after: vec![
                    Value::Int(1),
                    Value::Int(7),
                    Value::Int(1),
                    Value::String("p".into()),
                ],
            },
            Some("d"),
        ),
        (
            "delete without its key",
            RowChange::Delete {
                before: vec![Value::Null, Value::Null, Value::Null, Value::Null],
            },
            Some("id"),
        ),
    ];
    for (what, row, column) in bad_rows {
        let mut ev = event(&t, ts(11), "d", 1000, 1);
        ev.rows.push(row);
        let r = h
            .sink
            .add_dml_event("d", ev, Some(refused_wake()), Some(refused_cb()));
        match r {
            Err(SinkError::InvalidRow {
                dispatcher,
                table,
                row,
                column: c,
                ..
            }) => {
                assert_eq!(
                    (dispatcher.as_str(), table.as_str(), row, c.as_deref()),
                    ("d", "s.t", 1, column),
                    "{what}"
                );
            }
            other => panic!("{what}: {other:?}"),
        }
        assert!(h.sink.error().is_none(), "{what} stopped the sink");
    }

    // Out of order: below the last DML.
    let r = h.sink.add_dml_event(
        "d",
        event(&t, ts(9), "d", 1000, 1),
        Some(refused_wake()),
        Some(refused_cb()),
    );
    assert!(
        matches!(&r, Err(SinkError::OutOfOrder { what: "DML", ts: at, .. }) if *at == ts(9)),
        "{r:?}"
    );
    // Same ts again is fine (one transaction in several events).
    accept(10, &h, &mut seq);
    // A DDL below the last DML is refused before anything is drained.
    let r = h.sink.pass_block_event(&ddl(ts(5)), &["d"]).await;
    assert!(
        matches!(&r, Err(SinkError::OutOfOrder { what: "DDL", dispatcher, .. }) if dispatcher == "d"),
        "{r:?}"
    );
    // A DDL at 20; then a DML below 20 is refused, at or above it accepted.
    h.sink.pass_block_event(&ddl(ts(20)), &["d"]).await.unwrap();
    assert_eq!(
        flushed.load(Ordering::SeqCst),
        2,
        "the DDL drained both events"
    );
    let r = h.sink.add_dml_event(
        "d",
        event(&t, ts(19), "d", 1000, 1),
        Some(refused_wake()),
        Some(refused_cb()),
    );
    assert!(matches!(r, Err(SinkError::OutOfOrder { .. })), "{r:?}");
    assert!(matches!(
        h.sink.pass_block_event(&ddl(ts(19)), &["d"]).await,
        Err(SinkError::OutOfOrder { what: "DDL", .. })
    ));
    accept(21, &h, &mut seq);
    // An unregistered dispatcher.
    assert!(matches!(
        h.sink.add_dml_event("ghost", event(&t, ts(30), "ghost", 1000, 1), Some(refused_wake()), Some(refused_cb())),
        Err(SinkError::UnknownDispatcher(id)) if id == "ghost"
    ));
    accept(30, &h, &mut seq);

    // The checkpoint may pass refused events: they were never accepted.
    h.sink.remove_dispatcher("d").await.unwrap();
    assert!(matches!(
        h.sink.checkpoint(ts(30)).await.unwrap(),
        cdc_sink::CheckpointOutcome::Written(at) if at == ts(30)
    ));
    h.sink.close().await.unwrap();
    assert_eq!(flushed.load(Ordering::SeqCst), 4);
    assert_eq!(refused_flushed.load(Ordering::SeqCst), 0);
    assert_eq!(refused_woken.load(Ordering::SeqCst), 0);
    // Storage holds exactly the accepted events.
    let files = read_data_files(h.store.inner(), &h.options, &defs).await;
    let seqs: Vec<i64> = files
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| row_key(r).1))
        .collect();
    assert_eq!(seqs, accepted);
}

async fn open_with(options: SinkOptions, config: SinkConfig) -> Result<Sink, SinkError> {
    let store = FaultStore::new(Arc::new(InMemory::new()));
    Sink::with_store(
        Arc::new(store),
        options,
        config,
        &prometheus::Registry::new(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_option_out_of_range_is_refused_naming_it() {
    let spool_dir = tempfile::tempdir().unwrap();
    let config =
        || SinkConfig::new("opts").with_spool(spool_config(spool_dir.path(), 1 << 20, 4 << 20));
    let name = |r: Result<Sink, SinkError>| match r {
        Err(SinkError::InvalidParameter { name, .. }) => name,
        Ok(_) => "accepted".into(),
        Err(e) => panic!("{e:?}"),
    };
    // Options built as a struct get the URI's range checks.
    type Bad = fn(&mut SinkOptions);
    let options: [(&str, Bad); 8] = [
        ("worker-count", |o| o.worker_count = 0),
        ("flush-interval", |o| {
            o.flush_interval = Duration::from_millis(1)
        }),
        ("file-size", |o| o.file_size = 10),
        ("file-index-width", |o| o.file_index_width = 40),
        ("file-cleanup-interval", |o| {
            o.file_cleanup_interval = Duration::ZERO
        }),
        ("file-expiration-days", |o| o.file_expiration_days = 100_000),
        ("delimiter", |o| o.csv.delimiter = "\n".into()),
        ("spool-low-watermark", |o| {
            o.spool.high_watermark = Some(10);
            o.spool.low_watermark = Some(20);
        }),
    ];
    for (expected, f) in options {
        let mut o = SinkOptions::default();
        f(&mut o);
        assert_eq!(name(open_with(o, config()).await), expected);
    }
    type BadConfig = fn(SinkConfig) -> SinkConfig;
    let configs: [(&str, BadConfig); 9] = [
        ("changefeed", |c| SinkConfig {
            changefeed: String::new(),
            ..c
        }),
        ("writer-count", |c| c.with_writer_count(0)),
        ("flush-concurrency", |c| c.with_flush_concurrency(0)),
        ("multipart-threshold", |c| c.with_multipart(0, 1 << 20)),
        ("multipart-part-size", |c| c.with_multipart(1 << 20, 0)),
        ("upload-memory", |c| c.with_upload_memory(10)),
        ("checkpoint-interval", |c| {
            c.with_checkpoint_interval(Duration::from_secs(7200))
        }),
        ("retry.max-attempts", |c| {
            c.with_retry(RetryPolicy {
                max_attempts: 0,
                ..RetryPolicy::default()
            })
        }),
        ("retry.request-timeout", |c| {
            c.with_retry(RetryPolicy {
                request_timeout: Duration::ZERO,
                ..RetryPolicy::default()
            })
        }),
    ];
    for (expected, f) in configs {
        assert_eq!(
            name(open_with(SinkOptions::default(), f(config())).await),
            expected
        );
    }
    // The same through a URI.
    let r = Sink::open(
        "memory://bad-options?file-index-width=3",
        config(),
        &prometheus::Registry::new(),
    )
    .await;
    assert_eq!(name(r), "file-index-width");
    // And the defaults open.
    let s = open_with(SinkOptions::default(), config()).await.unwrap();
    s.close().await.unwrap();
}
