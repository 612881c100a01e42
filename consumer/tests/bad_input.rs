//! Corrupt, truncated and missing files: an error naming the path, progress left where it was,
//! and a clean resume once storage is repaired.

mod common;

use cdc_common::DdlKind;
use cdc_consumer::config::{Args, Config};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::Error;
use clap::Parser;
use common::*;
use std::path::Path;
use std::sync::{Arc, Mutex};

async fn replay(uri: &str, db: &Path) -> cdc_consumer::Result<()> {
    let down = format!("sqlite://{}", db.display());
    let argv = [
        "storage-consumer",
        "--upstream-uri",
        uri,
        "--downstream-uri",
        &down,
        "--once",
    ];
    let cfg = Config::from_args(&Args::parse_from(argv))?;
    let r = cdc_consumer::replayer(
        &cfg,
        Metrics::new(),
        Arc::new(Mutex::new(Health::default())),
    )
    .await?;
    cdc_consumer::run(&cfg, r).await
}

fn state(db: &Path) -> (Vec<i64>, Vec<(String, i64)>) {
    let c = rusqlite::Connection::open(db).unwrap();
    let ids = c
        .prepare("SELECT id FROM \"db.t\" ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_default();
    let prog = c
        .prepare("SELECT dispatcher, file_index FROM cdc_consumer_progress ORDER BY dispatcher")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .unwrap_or_default();
    (ids, prog)
}

/// Storage with two good files, then `damage` applied to the second; returns the writer and
/// the second file's path.
async fn setup(name: &str) -> (Writer, String, String) {
    let mut w = Writer::new(&format!(
        "memory://{name}?protocol=csv&include-commit-ts=true"
    ));
    let t = two_cols("db", "t", ts(1));
    let schema = w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    let second = w
        .file(
            &t,
            &[(ts(3), vec![ins(2, "bbbbbbbbbbbbbbbb"), ins(3, "c")])],
        )
        .await;
    w.checkpoint(ts(10)).await;
    (w, second, schema)
}

async fn check_stops_at_first_file(w: &Writer, db: &Path, path: &str) {
    let e = replay(&w.uri, db).await.unwrap_err();
    assert!(
        e.to_string().contains(path),
        "error must name `{path}`: {e}"
    );
    let (ids, prog) = state(db);
    assert_eq!(ids, vec![1]);
    assert_eq!(prog, vec![("".to_string(), 1), ("#ddl".to_string(), 0)]);
}

#[tokio::test]
async fn garbage_data_file_names_the_file_and_keeps_progress() {
    let (w, second, _) = setup("bad-garbage").await;
    let good = w.get(&second).await;
    w.put(&second, b"\xff\xfe\x00garbage,\"unterminated\n".to_vec())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    check_stops_at_first_file(&w, &db, &second).await;
    // Repaired storage resumes from the recorded progress.
    w.put(&second, good).await;
    replay(&w.uri, &db).await.unwrap();
    assert_eq!(state(&db).0, vec![1, 2, 3]);
}

#[tokio::test]
async fn truncated_data_file_names_the_file() {
    let (w, second, _) = setup("bad-trunc").await;
    let good = w.get(&second).await;
    let cut = good[..good.len() / 2 + 3].to_vec();
    w.put(&second, cut).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    check_stops_at_first_file(&w, &db, &second).await;
}

#[tokio::test]
async fn missing_data_file_names_the_file() {
    let (w, second, _) = setup("bad-missing").await;
    w.delete(&second).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let e = replay(&w.uri, &db).await.unwrap_err();
    assert!(
        matches!(&e, Error::Missing { path, .. } if *path == second),
        "{e}"
    );
    assert_eq!(state(&db).0, vec![1]);
}

#[tokio::test]
async fn corrupt_schema_index_and_metadata_files_name_the_object() {
    let (w, second, schema) = setup("bad-meta").await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");

    let good = w.get(&schema).await;
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x20;
    w.put(&schema, bad).await;
    let e = replay(&w.uri, &db).await.unwrap_err();
    assert!(e.to_string().contains(&schema), "{e}");
    w.put(&schema, good).await;

    let index = format!("{}/meta/CDC.index", second.rsplit_once('/').unwrap().0);
    let good = w.get(&index).await;
    w.put(&index, b"not a file name\n".to_vec()).await;
    let e = replay(&w.uri, &db).await.unwrap_err();
    assert!(e.to_string().contains(&index), "{e}");
    w.put(&index, good).await;

    w.put("metadata", b"{\"checkpoint-ts\":".to_vec()).await;
    let e = replay(&w.uri, &db).await.unwrap_err();
    assert!(e.to_string().contains("metadata"), "{e}");
    // Nothing was applied by any of the failed runs.
    assert!(state(&db).0.is_empty());
    w.checkpoint(ts(10)).await;
    replay(&w.uri, &db).await.unwrap();
    assert_eq!(state(&db).0, vec![1, 2, 3]);
}
