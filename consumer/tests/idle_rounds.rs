//! Idle rounds: once a round has applied everything at or below the checkpoint, a round that
//! reads the same checkpoint costs one GET and no listing (at 100k tables and a round a second,
//! the difference between a few requests a day and a billion). A moved checkpoint, a failed
//! round, storage whose rows carry no commit ts and a listing lag each bring full rounds back.

use crate::support;

use support::*;

const TABLES: usize = 30;

/// Storage with `TABLES` tables of three files each, checkpoint at ts(10).
async fn storage(uri: &str) -> Writer {
    three_files_per_table(uri, TABLES).await
}

#[tokio::test]
async fn an_unchanged_checkpoint_costs_one_get_after_a_settled_round() {
    unchanged_checkpoint_on("memory://idle-rounds-1?protocol=csv&include-commit-ts=true").await;
}

/// The same on a local directory, whose store answers the conditional GET with its own tags.
#[tokio::test]
async fn an_unchanged_checkpoint_costs_one_get_on_a_local_directory() {
    let (_root, uri) = local_storage("protocol=csv&include-commit-ts=true");
    unchanged_checkpoint_on(&uri).await;
}

async fn unchanged_checkpoint_on(uri: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = storage(uri).await;
    let (mut r, m, _) = start(&w.uri, &sqlite_uri(&dir.path().join("d.db")), &[]).await;

    let (first, lists, _) = counted(&mut r, &m).await;
    assert_eq!(first.record.rows(), 3 * TABLES as u64);
    assert_eq!(lists, 1, "the first round lists once, recursively");
    // The first round read the checkpoint before its listing and applied everything below
    // it: it settles the catalog, and the rounds after it that read the same checkpoint are
    // idle (no second full round).
    for _ in 0..3 {
        let (idle, lists, gets) = counted(&mut r, &m).await;
        assert!(idle.record.discovery.idle, "{:?}", idle.record.discovery);
        assert_eq!((lists, gets), (0, 1), "an idle round reads `metadata` only");
    }
    assert_eq!(m.idle_rounds.get(), 3);

    // a file above the checkpoint changes nothing until the checkpoint moves
    let t0 = two_cols("db0", "t0", ts(1));
    w.file(&t0, &[(ts(15), vec![ins(100, "late")])]).await;
    let (still, lists, _) = counted_round(&mut r, &m).await;
    assert!(still.record.discovery.idle && lists == 0);
    assert_eq!(still.record.rows(), 0);

    // the checkpoint moves: a full round finds and applies it, then idle again
    w.checkpoint(ts(20)).await;
    let (moved, lists, _) = counted_round(&mut r, &m).await;
    assert!(!moved.record.discovery.idle && lists > 0);
    assert_eq!(moved.record.rows(), 1);
    let (again, lists, gets) = counted_round(&mut r, &m).await;
    assert!(again.record.discovery.idle);
    assert_eq!((lists, gets), (0, 1));
}

#[tokio::test]
async fn a_failed_round_is_followed_by_full_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = storage("memory://idle-rounds-2?protocol=csv&include-commit-ts=true").await;
    let (mut r, m, _) = start(&w.uri, &sqlite_uri(&dir.path().join("d.db")), &[]).await;
    for _ in 0..2 {
        assert!(r.round().await.error.is_none());
    }
    assert!(r.round().await.record.discovery.idle);

    // a bad file below a new checkpoint fails the round; nothing is skipped until one succeeds
    let t1 = two_cols("db1", "t1", ts(1));
    let bad = w.file(&t1, &[(ts(12), vec![ins(7, "y")])]).await;
    w.put(&bad, b"\"I\",broken".to_vec()).await;
    w.checkpoint(ts(13)).await;
    for _ in 0..2 {
        let (failed, lists, _) = counted_round(&mut r, &m).await;
        assert!(failed.error.is_some());
        assert!(!failed.record.discovery.idle && lists > 0);
    }
    // repaired (the writer rewrites the same file): applied, then idle again
    w.put(&bad, b"\"I\",\"t1\",\"db1\",\"12000\",7,\"y\"\r\n".to_vec())
        .await;
    let repaired = r.round().await;
    assert!(repaired.error.is_none(), "{:?}", repaired.error);
    assert!(r.round().await.record.discovery.idle);
}

#[tokio::test]
async fn rows_without_commit_ts_or_a_listing_lag_keep_every_round_full() {
    let dir = tempfile::tempdir().unwrap();
    // csv without include-commit-ts: files are applied as soon as indexed, above the checkpoint
    let mut w = storage("memory://idle-rounds-3?protocol=csv").await;
    let (mut r, m, _) = start(&w.uri, &sqlite_uri(&dir.path().join("a.db")), &[]).await;
    for _ in 0..2 {
        assert!(r.round().await.error.is_none());
    }
    let t0 = two_cols("db0", "t0", ts(1));
    w.file(&t0, &[(ts(15), vec![ins(100, "late")])]).await;
    let (round, lists, _) = counted_round(&mut r, &m).await;
    assert!(!round.record.discovery.idle && lists > 0);
    assert_eq!(
        round.record.rows(),
        1,
        "applied without waiting for the checkpoint"
    );

    // a listing lag: a listing may miss recent objects, so no round can stop at phase 0
    let w2 = storage("memory://idle-rounds-4?protocol=csv&include-commit-ts=true").await;
    let lagged = format!("{}&listing-lag=1ms", w2.uri);
    let (mut r2, m2, _) = start(&lagged, &sqlite_uri(&dir.path().join("b.db")), &[]).await;
    for _ in 0..4 {
        let (round, lists, _) = counted(&mut r2, &m2).await;
        assert!(!round.record.discovery.idle && lists > 0);
    }
    assert_eq!(m2.idle_rounds.get(), 0);
}

/// An idle round reuses the totals and `/health` figures of the first idle round after a round
/// that was not idle (computing them walks every table's steps); they must be what a fresh
/// computation gives, also once a moved checkpoint changed them.
#[tokio::test]
async fn idle_rounds_report_what_a_fresh_computation_gives() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = storage("memory://idle-rounds-5?protocol=csv&include-commit-ts=true").await;
    let (mut r, _m, h) = start(&w.uri, &sqlite_uri(&dir.path().join("d.db")), &[]).await;
    ok_rounds(&mut r, 2).await;
    let t0 = two_cols("db0", "t0", ts(1));
    for (n, checkpoint) in [(15, 20), (25, 30)] {
        for _ in 0..3 {
            let idle = ok_round(&mut r).await;
            assert!(idle.record.discovery.idle, "{:?}", idle.record.discovery);
            assert_figures_fresh(&r, &idle.record, &h);
        }
        // a file and a moved checkpoint: a full round applies it and moves every table
        w.file(&t0, &[(ts(n), vec![ins(n as i64, "late")])]).await;
        w.checkpoint(ts(checkpoint)).await;
        let moved = ok_round(&mut r).await;
        assert!(!moved.record.discovery.idle);
        assert_eq!(moved.record.rows(), 1);
        assert_figures_fresh(&r, &moved.record, &h);
    }
    let last = ok_round(&mut r).await;
    assert!(last.record.discovery.idle);
    assert_eq!(last.record.applied_ts, ts(30).0);
    assert_figures_fresh(&r, &last.record, &h);
}

/// The round record's totals and `/health` are those computed from the replayer as it stands.
fn assert_figures_fresh(
    r: &cdc_consumer::replay::Replayer,
    rec: &cdc_consumer::freshness::RoundRecord,
    h: &std::sync::Mutex<cdc_consumer::freshness::Health>,
) {
    let checkpoint = r.catalog().checkpoint.expect("checkpoint");
    assert_eq!(rec.applied_ts, r.applied_ts().min(checkpoint).0);
    assert_eq!(
        rec.files_pending,
        cdc_consumer::ordering::count_pending(r.catalog(), r.progress())
    );
    let h = h.lock().unwrap();
    assert_eq!(
        h.applied_ts,
        r.known_applied_ts().map(|t| t.min(checkpoint).0)
    );
    let fresh = r.tables_applied_ts();
    assert_eq!(h.tables.len(), fresh.len());
    for (name, applied) in fresh {
        assert_eq!(h.tables[&name.to_string()].applied_ts, applied.0, "{name}");
    }
}

/// With a listing lag, a DDL's schema file is read in one round and its barrier settles in a
/// later round that reads nothing new: that round's only news is the table's `complete_below`
/// raised (the version the DDL opens may now be applied), and it must say it found something
/// (`--once` goes on while rounds do). Debug builds also check every round's answer against a
/// hash of the whole catalog (`Replayer::note_fingerprint`).
#[tokio::test]
async fn a_round_whose_only_news_is_a_settled_ddl_barrier_says_it_found_something() {
    use cdc_common::{ColumnDef, ColumnType, DdlKind};
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new("memory://idle-rounds-6?protocol=csv&include-commit-ts=true");
    let v1 = two_cols("db", "t", ts(1));
    w.schema(&v1, "", DdlKind::CreateTable).await;
    w.file(&v1, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(5)).await;
    let lag = std::time::Duration::from_millis(300);
    let lagged = format!("{}&listing-lag=300ms", w.uri);
    let db = dir.path().join("d.db");
    let (mut r, _m, _) = start(&lagged, &sqlite_uri(&db), &[]).await;
    for _ in 0..2 {
        ok_round(&mut r).await;
        tokio::time::sleep(lag + lag / 2).await;
    }
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a")]);

    // an ADD COLUMN at 10 with no row after it, then the checkpoint past it
    let mut v2 = v1.clone();
    v2.version = ts(10);
    v2.columns.push(ColumnDef::new("x", ColumnType::BigInt));
    w.schema(&v2, "ALTER TABLE t ADD COLUMN x BIGINT", DdlKind::AddColumn)
        .await;
    w.checkpoint(ts(12)).await;
    let read = ok_round(&mut r).await;
    assert!(read.found_new, "the round that read the schema file");
    assert_eq!(r.progress().table_version(&v1.name()), Some(ts(1)));
    tokio::time::sleep(lag + lag / 2).await;
    let settled = ok_round(&mut r).await;
    assert_eq!(
        r.progress().table_version(&v1.name()),
        Some(ts(10)),
        "the DDL was applied once its barrier settled"
    );
    assert!(
        settled.found_new,
        "the round that settled the barrier found something: {:?}",
        settled.record.discovery
    );
}
