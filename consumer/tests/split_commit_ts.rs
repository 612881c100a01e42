//! One commit ts over two files of a stream: a transaction handed to the sink as several
//! events (the capture's snapshot of a table is one ts in batches; TiCDC splits large
//! transactions) is cut where a file reaches `file-size`. The rows at the stream's recorded
//! commit ts in the next file are the transaction's rest: a table with a primary key applies
//! them (idempotent even when they are a copy), a table without one skips them (a copy would
//! duplicate rows; this project's sink never cuts a keyless table's file inside a commit ts,
//! docs/format.md writer rule 7, end to end in `capture/tests/keyless_transactions.rs`). See
//! `consumer/src/replay/window.rs`.

use crate::support;

use cdc_common::{ColumnDef, ColumnType, DdlKind};
use support::*;

/// Replays `w`'s storage to the end with `extra` flags, in three rounds of one replayer.
async fn replay(w: &Writer, db: &std::path::Path, extra: &[&str]) {
    let mut r = ReplayerBuilder::sqlite(&w.uri, db)
        .args(extra)
        .replayer()
        .await
        .unwrap();
    ok_rounds(&mut r, 3).await;
}

#[tokio::test]
async fn a_transaction_split_over_two_files_is_applied_whole() {
    // One file per unit and the default units: the rest is in the unit's first file or in a
    // later file of the same unit.
    for flags in [&["--unit-files", "1"][..], &[][..]] {
        let mut w = Writer::new(&format!(
            "memory://split-ts-{}?protocol=csv&include-commit-ts=true",
            flags.len()
        ));
        let t = two_cols("db", "t", ts(1));
        w.schema(&t, "", DdlKind::CreateTable).await;
        w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
        w.file(
            &t,
            &[(ts(2), vec![ins(2, "b")]), (ts(3), vec![ins(3, "c")])],
        )
        .await;
        w.file(&t, &[(ts(3), vec![upd(3, "c", "C")])]).await;
        w.checkpoint(ts(5)).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("out.db");
        replay(&w, &db, flags).await;
        assert_eq!(
            id_names(&db, &format!("db.{}", t.table)),
            vec![s(1, "a"), s(2, "b"), s(3, "C")],
            "{flags:?}"
        );
    }
}

#[tokio::test]
async fn a_copy_at_the_recorded_ts_leaves_a_keyed_table_as_it_was() {
    let mut w = Writer::new("memory://split-ts-copy?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a"), upd(1, "a", "b")])])
        .await;
    // A restarted sink's copy of the transaction at 2, then a later one.
    w.file(&t, &[(ts(2), vec![ins(1, "a"), upd(1, "a", "b")])])
        .await;
    w.file(&t, &[(ts(3), vec![del(1, "b"), ins(2, "z")])]).await;
    w.checkpoint(ts(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w, &db, &["--unit-files", "1"]).await;
    assert_eq!(id_names(&db, &format!("db.{}", t.table)), vec![s(2, "z")]);
}

#[tokio::test]
async fn a_keyless_table_skips_rows_at_the_recorded_ts() {
    let mut w = Writer::new("memory://split-ts-keyless?protocol=csv&include-commit-ts=true");
    let t = table(
        "db",
        "k",
        ts(1),
        vec![
            ColumnDef::new("id", ColumnType::Int),
            ColumnDef::new("name", ColumnType::VarChar).with_precision(Some(64), None),
        ],
    );
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    // A copy of the transaction at 2: applying it again would duplicate the row.
    w.file(
        &t,
        &[(ts(2), vec![ins(1, "a")]), (ts(3), vec![ins(2, "b")])],
    )
    .await;
    w.checkpoint(ts(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w, &db, &["--unit-files", "1"]).await;
    assert_eq!(
        id_names(&db, &format!("db.{}", t.table)),
        vec![s(1, "a"), s(2, "b")]
    );
}

#[tokio::test]
async fn a_stalled_file_does_not_commit_the_same_rows_every_round() {
    let mut w = Writer::new("memory://split-ts-stall?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(
        &t,
        &[(ts(2), vec![ins(1, "a")]), (ts(9), vec![ins(2, "b")])],
    )
    .await;
    w.checkpoint(ts(5)).await;
    let (_dir, db, mut r) = sqlite_replayer(&w.uri).await;
    let mut applied = Vec::new();
    for _ in 0..4 {
        let rec = ok_round(&mut r).await;
        applied.push(rec.record.tables.get("db.t").map_or(0, |t| t.rows));
    }
    // The first rounds apply row 1 (up to the checkpoint); later ones wait without a commit.
    assert_eq!(
        applied.iter().sum::<u64>(),
        1,
        "rows applied per round: {applied:?}"
    );
    assert_eq!(id_names(&db, &format!("db.{}", t.table)), vec![s(1, "a")]);
    // Read again once the checkpoint passed it: only row 2 is new, and only row 2 is applied
    // (row 1 is not applied, nor counted, a second time).
    w.checkpoint(ts(10)).await;
    for _ in 0..2 {
        let rec = ok_round(&mut r).await;
        applied.push(rec.record.tables.get("db.t").map_or(0, |t| t.rows));
    }
    assert_eq!(
        applied.iter().sum::<u64>(),
        2,
        "rows applied per round: {applied:?}"
    );
    assert_eq!(
        id_names(&db, &format!("db.{}", t.table)),
        vec![s(1, "a"), s(2, "b")]
    );
}
