//! A snapshot larger than one data file: the capture hands a table's snapshot in batches that
//! all carry the snapshot's commit ts, and the sink cuts files at `file-size`, so one commit ts
//! spans several files of the table's stream. Every row must replay (the consumer applies rows
//! at the stream's recorded commit ts again for a keyed table; `consumer/src/replay/window.rs`).

use crate::support;

use support::*;

const ROWS: i64 = 20_000;

/// Data files under `dir`, recursively.
fn data_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += data_files(&p);
        } else if p.extension().is_some_and(|x| x == "csv") {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_spanning_several_files_replays_every_row() {
    let Some(uri) = pg_uri() else { return };
    let c = connect(&uri).await;
    let s = unique("cap_snapfiles");
    let (slot, publication) = (unique("slot_snapfiles"), unique("pub_snapfiles"));
    c.batch_execute(&format!(
        "CREATE SCHEMA {s};
         CREATE TABLE {s}.t (id INT PRIMARY KEY, v TEXT NOT NULL);
         INSERT INTO {s}.t SELECT i, 'row ' || i FROM generate_series(1, {ROWS}) i;
         CREATE PUBLICATION {publication} FOR TABLES IN SCHEMA {s};"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let sink = format!("{}&file-size=64KiB", sink_uri(&storage));
    let capture = start(config(&uri, &publication, &slot, &sink));
    tokio::select! {
        _ = wait_checkpoint(&storage) => {}
        _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => panic!("no snapshot"),
    }
    let report = capture.stop().await;
    assert_eq!(report.snapshot_rows, ROWS as u64, "{report:?}");
    let files = data_files(&storage.join(&s));
    assert!(files >= 3, "the snapshot must span several files: {files}");

    let db = dir.path().join("replica.db");
    let down = sqlite_down(&db);
    replay(&sink, &down).await;
    let (_, source) = assert_same_table(&c, &down, &s, "t", "id").await;
    assert_eq!(source.len(), ROWS as usize);
    drop_slot(&c, &slot).await;
    c.batch_execute(&format!(
        "DROP PUBLICATION {publication}; DROP SCHEMA {s} CASCADE"
    ))
    .await
    .unwrap();
}
