//! Storage as TiCDC users have it (issue 20): writers in any time zone, index entries
//! published before their data files, every table's stream independent of the others.

mod support;

use cdc_common::{ColumnDef, ColumnType, DdlKind, TableName};
use cdc_consumer::backend::sqlite::SqliteDownstream;
use cdc_consumer::backend::Downstream;
use cdc_consumer::replay::{Replayer, RoundOutcome};
use std::path::Path;
use support::*;

/// Seconds after [`ts`]'s origin (2023-11-14 22:13:20 UTC) at which the UTC date becomes
/// 2023-11-15.
const UTC_MIDNIGHT: u64 = 6400;

/// `(id, name)` rows of SQLite table `schema.table`, ordered by id.
fn rows(db: &Path, table: &str) -> Vec<(i64, String)> {
    let (schema, table) = table.split_once('.').unwrap();
    let defs = [
        ColumnDef::new("id", ColumnType::BigInt).pk(),
        ColumnDef::new("name", ColumnType::Text),
    ];
    let mut d = SqliteDownstream::open(db, 1).unwrap();
    futures::executor::block_on(d.read_rows(&TableName::new(schema, table), &defs))
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r[0].as_deref().unwrap().parse().unwrap(),
                r[1].clone().unwrap(),
            )
        })
        .collect()
}

fn s(id: i64, n: &str) -> (i64, String) {
    (id, n.to_string())
}

/// Runs `n` rounds of `r`, each without a fatal error.
async fn rounds(r: &mut Replayer, n: usize) {
    for _ in 0..n {
        let RoundOutcome { record, error, .. } = r.round().await;
        assert!(error.is_none(), "{:?}", record.fatal);
    }
}

/// A writer at `hours` from UTC keeps writing into the directory of its local date after the
/// checkpoint's UTC date has moved on (west) or before it has (east): every file is applied.
async fn every_file_of_a_writer_at(hours: i64, name: &str) {
    let uri = format!("memory://{name}?protocol=csv&include-commit-ts=true&date-separator=day");
    let mut w = Writer::new(&uri).at_utc_offset(hours);
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    let at = |sec: u64| ts(UTC_MIDNIGHT + sec);
    w.file(&t, &[(at(60), vec![ins(1, "a")])]).await;
    w.checkpoint(at(70)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let mut r = ReplayerBuilder::sqlite(&w.uri, &db)
        .replayer()
        .await
        .unwrap();
    rounds(&mut r, 3).await;
    assert_eq!(rows(&db, "db.t"), vec![s(1, "a")]);
    // Still the same local date for the writer: the same directory gets file 2.
    w.file(&t, &[(at(100), vec![ins(2, "b")])]).await;
    // Hours later (still before the writer's local midnight at UTC-12).
    w.file(&t, &[(at(10 * 3600), vec![ins(3, "c")])]).await;
    w.checkpoint(at(10 * 3600 + 10)).await;
    rounds(&mut r, 3).await;
    assert_eq!(rows(&db, "db.t"), vec![s(1, "a"), s(2, "b"), s(3, "c")]);
}

#[tokio::test]
async fn a_writer_at_utc_minus_12_has_every_file_applied() {
    every_file_of_a_writer_at(-12, "tz-west").await;
}

#[tokio::test]
async fn a_writer_at_utc_plus_14_has_every_file_applied() {
    every_file_of_a_writer_at(14, "tz-east").await;
}

/// Storage where `db.a`'s index names file 2 (`newest`: also file 3) and `db.b` has one file;
/// file 2 of `db.a` is deleted afterwards. Returns the writer and the deleted path.
async fn a_missing_file(name: &str, newest: u64) -> (Writer, String) {
    let mut w = Writer::new(&format!(
        "memory://{name}?protocol=csv&include-commit-ts=true"
    ));
    let a = two_cols("db", "a", ts(1));
    let b = two_cols("db", "b", ts(1));
    w.schema(&a, "", DdlKind::CreateTable).await;
    w.schema(&b, "", DdlKind::CreateTable).await;
    w.file(&a, &[(ts(2), vec![ins(1, "a")])]).await;
    w.file(&b, &[(ts(2), vec![ins(1, "b")])]).await;
    // tiflow publishes the index entry before the data file: rows above the checkpoint.
    let second = w.file(&a, &[(ts(20), vec![ins(2, "a")])]).await;
    if newest == 3 {
        w.file(&a, &[(ts(21), vec![ins(3, "a")])]).await;
    }
    w.delete(&second).await;
    w.checkpoint(ts(10)).await;
    (w, second)
}

#[tokio::test]
async fn the_newest_indexed_file_absent_is_in_flight_and_once_exits_zero() {
    let (w, second) = a_missing_file("inflight-once", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    ReplayerBuilder::sqlite(&w.uri, &db)
        .once()
        .run()
        .await
        .expect("rows at or below the checkpoint are all applied");
    assert_eq!(rows(&db, "db.a"), vec![s(1, "a")]);
    assert_eq!(rows(&db, "db.b"), vec![s(1, "b")]);
    // The round record names the waiting table and the file.
    let mut r = ReplayerBuilder::sqlite(&w.uri, &db)
        .replayer()
        .await
        .unwrap();
    let RoundOutcome { record, error, .. } = r.round().await;
    assert!(error.is_none(), "{:?}", record.fatal);
    assert!(
        record
            .warnings
            .iter()
            .any(|m| m.contains("`db.a`") && m.contains(&second) && m.contains("in flight")),
        "{:?}",
        record.warnings
    );
    // Once the data file lands, the stream goes on.
    let mut w = w;
    let a = two_cols("db", "a", ts(1));
    let again = w.file(&a, &[(ts(20), vec![ins(2, "a")])]).await;
    w.delete(&again).await; // file 3 named, file 2 still missing: now damage below it
    let RoundOutcome { error, .. } = r.round().await;
    let e = error.expect("a missing file below the newest named one is damage");
    assert!(e.to_string().contains(&second), "{e}");
}

#[tokio::test]
async fn a_missing_file_below_the_newest_is_damage_that_stops_only_its_table() {
    let (w, second) = a_missing_file("inflight-damage", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let health = std::sync::Arc::new(std::sync::Mutex::new(Default::default()));
    let e = ReplayerBuilder::sqlite(&w.uri, &db)
        .once()
        .health(health.clone())
        .run()
        .await
        .expect_err("damage is an error");
    assert!(
        e.to_string().contains("missing data file") && e.to_string().contains(&second),
        "{e}"
    );
    // The other table of the same round is applied all the same.
    assert_eq!(rows(&db, "db.a"), vec![s(1, "a")]);
    assert_eq!(rows(&db, "db.b"), vec![s(1, "b")]);
    let h: &cdc_consumer::freshness::Health = &health.lock().unwrap();
    let last = h.last_round.as_ref().unwrap();
    assert!(
        last.warnings
            .iter()
            .any(|m| m.contains("`db.a`") && m.contains("stuck")),
        "{:?}",
        last.warnings
    );
}
