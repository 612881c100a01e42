//! A table without a primary key, end to end through the sink and the consumer: transactions
//! several file sizes large, handed in as many events across flush intervals. The consumer
//! skips a keyless table's rows at its stream's recorded commit ts (a copy would duplicate
//! rows), so a file that ended inside a transaction would lose the transaction's rest; the
//! sink never ends such a file inside a commit ts (docs/format.md, writer rule 7), and every
//! row replays exactly once. No source server: the events are handed to the sink directly.

use crate::support;

use cdc_common::{ColumnDef, ColumnType, DmlEvent, RowChange, TableDef, TableName, Ts, Value};
use cdc_consumer::backend::Downstream;
use cdc_sink::{FileNaming, Sink, SinkConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// Commit ts `n` ms after 2023-11-14.
fn ts(n: u64) -> Ts {
    Ts::from_parts(1_700_000_000_000 + n, 0)
}

fn columns() -> Vec<ColumnDef> {
    vec![
        ColumnDef::new("id", ColumnType::BigInt),
        ColumnDef::new("name", ColumnType::VarChar).with_precision(Some(64), None),
    ]
}

/// Replays `uri` into the SQLite file `db`; the rows of `db.k` there.
async fn replicated(uri: &str, db: &std::path::Path) -> cdc_consumer::backend::TextRows {
    replay(uri, &sqlite_down(db)).await;
    let mut d = cdc_consumer::backend::sqlite::SqliteDownstream::open(db, 1).unwrap();
    d.read_rows(&TableName::new("db", "k"), &columns())
        .await
        .unwrap()
}

/// A sink on `uri` (checkpoints written at once) with dispatcher `d` added.
async fn open_sink(uri: &str, name: &str) -> Sink {
    let sink = Sink::open(
        uri,
        SinkConfig::new(name).with_checkpoint_interval(Duration::ZERO),
        &prometheus::Registry::new(),
    )
    .await
    .unwrap();
    sink.add_dispatcher("d", FileNaming::Table).unwrap();
    sink
}

/// `db.k` at version 1, with [`columns`]: no primary key.
fn keyless_table() -> Arc<TableDef> {
    Arc::new(TableDef {
        schema: "db".into(),
        table: "k".into(),
        table_id: 1,
        version: ts(1),
        columns: columns(),
    })
}

/// `rows` inserts `(id, "row <id>")` from `first`, at `at`.
fn inserts(t: &Arc<TableDef>, at: Ts, first: i64, rows: i64) -> DmlEvent {
    DmlEvent {
        table: Arc::clone(t),
        partition_id: None,
        commit_ts: at,
        rows: (first..first + rows)
            .map(|i| RowChange::Insert {
                after: vec![Value::Int(i), Value::String(format!("row {i}").into())],
            })
            .collect(),
    }
}

/// Sizes of the csv data files under `dir`, recursively.
fn data_file_sizes(dir: &std::path::Path) -> Vec<u64> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(data_file_sizes(&p));
        } else if p.extension().is_some_and(|x| x == "csv") {
            out.push(std::fs::metadata(&p).unwrap().len());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_transactions_larger_than_a_file_replay_exactly_once() {
    const TXNS: u64 = 3;
    const EVENTS: i64 = 40;
    const ROWS: i64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let uri = format!(
        "file://{}?protocol=csv&include-commit-ts=true&flush-interval=20ms&file-size=1KiB",
        storage.display()
    );
    let sink = open_sink(&uri, "keyless").await;
    let t = keyless_table();
    let flushed = Arc::new(AtomicUsize::new(0));
    let mut next = 0i64;
    for txn in 0..TXNS {
        let at = ts(10 + txn);
        for e in 0..EVENTS {
            let f = Arc::clone(&flushed);
            sink.add_dml_event(
                "d",
                inserts(&t, at, next, ROWS),
                None,
                Some(Box::new(move || {
                    f.fetch_add(1, Ordering::SeqCst);
                })),
            )
            .unwrap();
            next += ROWS;
            if e % 8 == 7 {
                // Longer than the flush interval: interval flushes fall inside the transaction.
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    }
    let last = ts(10 + TXNS - 1);
    sink.checkpoint(last).await.unwrap();
    let total = (TXNS as usize) * EVENTS as usize;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while flushed.load(Ordering::SeqCst) < total && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(flushed.load(Ordering::SeqCst), total, "every event durable");
    sink.checkpoint(last).await.unwrap();
    sink.close().await.unwrap();

    // Each transaction is several file sizes: kept whole, its file is larger than `file-size`.
    let sizes = data_file_sizes(&storage.join("db").join("k"));
    assert!(
        sizes.len() >= TXNS as usize && sizes.iter().any(|s| *s > 4 << 10),
        "data file sizes {sizes:?}"
    );

    let db = dir.path().join("replica.db");
    let got = replicated(&uri, &db).await;
    assert_eq!(
        got.len() as i64,
        next,
        "rows replayed: a file cut inside a transaction loses the rest"
    );
    let mut ids: Vec<i64> = got
        .iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..next).collect::<Vec<_>>(), "every row exactly once");
    for r in &got {
        let id = r[0].as_deref().unwrap();
        assert_eq!(r[1].as_deref(), Some(format!("row {id}").as_str()));
    }
}

/// Hands `rows` inserts from `first` at `at` to dispatcher `d`, one event per row, each
/// counting its flush callback in `flushed`.
fn hand_in(
    sink: &Sink,
    t: &Arc<TableDef>,
    at: Ts,
    first: i64,
    rows: i64,
    flushed: &Arc<AtomicUsize>,
) {
    for i in first..first + rows {
        let f = Arc::clone(flushed);
        sink.add_dml_event(
            "d",
            inserts(t, at, i, 1),
            None,
            Some(Box::new(move || {
                f.fetch_add(1, Ordering::SeqCst);
            })),
        )
        .unwrap();
    }
}

/// A sink closed in the middle of a keyless table's transaction (rule 7: close does not
/// publish a run not known complete): the part handed in is not published and not
/// acknowledged, the checkpoint stays below its ts, the restarted sink is handed the whole
/// transaction again, and the consumer applies it once, whole. Had the closing sink published
/// the part, the consumer would apply it, record done_ts = its ts and skip the restarted
/// sink's whole copy: the rest of the transaction lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_transaction_cut_by_close_is_applied_whole_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let uri = format!(
        "file://{}?protocol=csv&include-commit-ts=true&flush-interval=20ms",
        storage.display()
    );
    let t = keyless_table();
    let open = || async { open_sink(&uri, "keyless-close").await };
    let wait = |c: Arc<AtomicUsize>, n: usize| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while c.load(Ordering::SeqCst) < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        c.load(Ordering::SeqCst)
    };

    // First run: the transaction at ts 2 is whole and durable; the one at ts 3 (ids 5..10)
    // has been handed in up to id 7 when the sink closes.
    let sink = open().await;
    let before = Arc::new(AtomicUsize::new(0));
    hand_in(&sink, &t, ts(2), 0, 5, &before);
    sink.checkpoint(ts(2)).await.unwrap();
    assert_eq!(wait(Arc::clone(&before), 5).await, 5, "ts 2 durable");
    sink.checkpoint(ts(2)).await.unwrap();
    let cut = Arc::new(AtomicUsize::new(0));
    hand_in(&sink, &t, ts(3), 5, 3, &cut);
    // Several flush intervals: the open transaction is kept back meanwhile.
    tokio::time::sleep(Duration::from_millis(80)).await;
    sink.close().await.unwrap();
    assert_eq!(
        cut.load(Ordering::SeqCst),
        0,
        "the part of ts 3 handed in before close is never acknowledged"
    );

    // Restarted run: resumes from the checkpoint, which stayed below ts 3, and is handed the
    // transaction at ts 3 whole.
    let sink = open().await;
    let resumed = sink.stored_checkpoint().await.unwrap();
    assert_eq!(
        resumed,
        Some(ts(2)),
        "the checkpoint stays below the dropped ts 3"
    );
    let after = Arc::new(AtomicUsize::new(0));
    hand_in(&sink, &t, ts(3), 5, 5, &after);
    sink.checkpoint(ts(3)).await.unwrap();
    assert_eq!(wait(Arc::clone(&after), 5).await, 5, "ts 3 durable");
    sink.checkpoint(ts(3)).await.unwrap();
    sink.close().await.unwrap();

    let db = dir.path().join("replica.db");
    let got = replicated(&uri, &db).await;
    let mut ids: Vec<i64> = got
        .iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..10).collect::<Vec<_>>(),
        "both transactions applied once, whole"
    );
}
