//! Restart with nothing new (issue 16 item 4): a consumer that starts on a downstream whose
//! previous consumer settled at the checkpoint `metadata` still reads makes one GET and no
//! listing, without building the catalog (the settled mark, `consumer/src/settled.rs`). New
//! data, a moved checkpoint, a progress record that changed, another scope, stdout, rows
//! without commit ts and a listing lag each bring the full first round back.

use crate::support;

use cdc_common::DdlKind;
use cdc_consumer::freshness::Status;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::Replayer;
use support::*;

const TABLES: usize = 30;

/// Storage with `TABLES` tables of three files each, checkpoint at ts(10).
async fn storage(uri: &str) -> Writer {
    three_files_per_table(uri, TABLES).await
}

/// Runs rounds until one is idle (the replayer settled); returns the rows applied.
async fn settle(r: &mut Replayer, m: &Metrics) -> u64 {
    let mut rows = 0;
    for _ in 0..6 {
        let (out, _, _) = counted(r, m).await;
        rows += out.record.rows();
        if out.record.discovery.idle {
            return rows;
        }
    }
    panic!("no idle round after 6 rounds");
}

#[tokio::test]
async fn a_restart_with_nothing_new_reads_metadata_only() {
    restart_on("memory://restart-1?protocol=csv&include-commit-ts=true").await;
}

/// The same on a local directory (the store `scale_bench` measures).
#[tokio::test]
async fn a_restart_with_nothing_new_reads_metadata_only_on_a_local_directory() {
    let (_root, uri) = local_storage("protocol=csv&include-commit-ts=true");
    restart_on(&uri).await;
}

/// A local directory is read as files, not through object_store's local store (discovery's
/// `LocalReader`): the same storage replays the same rows with the same requests counted as
/// from the in-memory store, round by round.
#[tokio::test]
async fn a_local_directory_replays_with_the_requests_counted_as_from_any_store() {
    let (_root, local) = local_storage("protocol=csv&include-commit-ts=true");
    let options = "memory://restart-local-twin?protocol=csv&include-commit-ts=true";
    let mut seen = Vec::new();
    for uri in [local.as_str(), options] {
        let dir = tempfile::tempdir().unwrap();
        let down = sqlite_uri(&dir.path().join("d.db"));
        let w = storage(uri).await;
        let (mut r, m, _) = start(&w.uri, &down, &[]).await;
        let mut rounds = Vec::new();
        for _ in 0..4 {
            let (out, lists, gets) = counted(&mut r, &m).await;
            rounds.push((out.record.rows(), lists, gets));
        }
        let bytes = m.bytes_read.get();
        let timed = m.get_duration.get_sample_count();
        assert_eq!(timed, m.get_calls.get(), "every GET timed once on {uri}");
        seen.push((rounds, bytes));
    }
    assert_eq!(seen[0], seen[1], "local directory vs memory store");
    let (rounds, bytes) = &seen[0];
    assert_eq!(rounds.iter().map(|r| r.0).sum::<u64>(), 3 * TABLES as u64);
    assert!(rounds[0].2 >= 3 * TABLES as u64, "{rounds:?}");
    assert!(*bytes > 0);
}

async fn restart_on(uri: &str) {
    let dir = tempfile::tempdir().unwrap();
    let down = sqlite_uri(&dir.path().join("d.db"));
    let w = storage(uri).await;
    let (mut r, m, _) = start(&w.uri, &down, &[]).await;
    assert_eq!(settle(&mut r, &m).await, 3 * TABLES as u64);
    assert_eq!(m.settled_checkpoint_ts.get(), ts(10).0 as i64);
    drop(r);

    // the next process: its first round reads `metadata` and stops there
    let (mut r, m, h) = start(&w.uri, &down, &[]).await;
    for _ in 0..2 {
        let (out, lists, gets) = counted(&mut r, &m).await;
        assert_eq!((lists, gets), (0, 1), "{:?}", out.record.discovery);
        assert!(out.record.discovery.idle && out.record.discovery.resumed);
        assert!(!out.found_new && out.record.rows() == 0);
        assert_eq!(out.record.applied_ts, ts(10).0);
    }
    assert!(r.catalog().tables.is_empty(), "no catalog was built");
    assert_eq!(m.settled_checkpoint_ts.get(), ts(10).0 as i64);
    // freshness stays honest: everything at or below the checkpoint is applied, per table too
    let (applied, status, tables) = {
        let h = h.lock().unwrap();
        (h.applied_ts, h.status, h.tables.clone())
    };
    assert_eq!(applied, Some(ts(10).0));
    assert_eq!(status, Status::Ready);
    assert_eq!(tables.len(), TABLES);
    assert!(tables.values().all(|t| t.applied_ts == ts(10).0));
    drop(r);

    // `--once` on it: one round, one GET
    let m = Metrics::new();
    ReplayerBuilder::new(&w.uri, &down)
        .once()
        .metrics(m.clone())
        .run()
        .await
        .unwrap();
    assert_eq!((m.list_calls.get(), m.get_calls.get()), (0, 1));
    assert_eq!(m.rounds.get(), 1);
}

#[tokio::test]
async fn a_restart_after_new_data_arrived_applies_it() {
    let dir = tempfile::tempdir().unwrap();
    let down = sqlite_uri(&dir.path().join("d.db"));
    let mut w = storage("memory://restart-2?protocol=csv&include-commit-ts=true").await;
    let (mut r, m, _) = start(&w.uri, &down, &[]).await;
    settle(&mut r, &m).await;
    drop(r);

    // while it is down: a new file in one table, and the checkpoint passes it
    let t0 = two_cols("db0", "t0", ts(1));
    w.file(&t0, &[(ts(15), vec![ins(100, "new")])]).await;
    w.checkpoint(ts(20)).await;
    let (mut r, m, _) = start(&w.uri, &down, &[]).await;
    let (first, lists, _) = counted(&mut r, &m).await;
    assert!(!first.record.discovery.idle && first.record.discovery.full_listing);
    assert_eq!(lists, 1, "the first round's one recursive listing");
    assert_eq!(first.record.rows(), 1);
    assert_eq!(first.record.tables["db0.t0"].files, 1);
    assert_eq!(settle(&mut r, &m).await, 0);
    drop(r);

    // and the next restart stands on the new checkpoint
    let (mut r, m, _) = start(&w.uri, &down, &[]).await;
    let (out, lists, gets) = counted(&mut r, &m).await;
    assert!(out.record.discovery.resumed);
    assert_eq!((lists, gets), (0, 1));
    assert_eq!(out.record.checkpoint_ts, ts(20).0);
}

#[tokio::test]
async fn a_checkpoint_that_moved_while_down_brings_the_full_first_round() {
    let dir = tempfile::tempdir().unwrap();
    let down = sqlite_uri(&dir.path().join("d.db"));
    let w = storage("memory://restart-3?protocol=csv&include-commit-ts=true").await;
    let (mut r, m, _) = start(&w.uri, &down, &[]).await;
    settle(&mut r, &m).await;
    drop(r);

    // the checkpoint moves with nothing new below it
    w.checkpoint(ts(20)).await;
    let (mut r, m, _) = start(&w.uri, &down, &[]).await;
    let (first, lists, gets) = counted(&mut r, &m).await;
    assert!(!first.record.discovery.idle && first.record.discovery.full_listing);
    // one recursive listing, then `metadata`, the change summary (absent here: the mark had
    // nothing pending, so the round tries to chain from it), every schema file and index file
    assert_eq!(lists, 1);
    assert_eq!(gets, 2 + 2 * TABLES as u64);
    assert_eq!(r.catalog().tables.len(), TABLES);
    // the first round read the checkpoint before its listing and settled: the second is idle
    let (second, lists, gets) = counted(&mut r, &m).await;
    assert!(second.record.discovery.idle && !second.record.discovery.resumed);
    assert_eq!((lists, gets), (0, 1));
    assert_eq!(m.settled_checkpoint_ts.get(), ts(20).0 as i64);
}

#[tokio::test]
async fn a_mark_is_believed_only_for_its_progress_rows_and_scope() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let down = sqlite_uri(&db);
    let w = storage("memory://restart-4?protocol=csv&include-commit-ts=true").await;

    // Two consumers share the downstream: db0's tables and db1's. Each settles with its own
    // mark; the other's commits do not spoil it.
    for filter in ["db0.*", "db1.*"] {
        let (mut r, m, _) = start(&w.uri, &down, &["--tables", filter]).await;
        assert_eq!(settle(&mut r, &m).await, 3 * (TABLES / 3) as u64);
    }
    for (filter, schema) in [("db0.*", "db0"), ("db1.*", "db1")] {
        let (mut r, m, h) = start(&w.uri, &down, &["--tables", filter]).await;
        let (out, lists, gets) = counted(&mut r, &m).await;
        assert!(out.record.discovery.resumed, "{filter}");
        assert_eq!((lists, gets), (0, 1), "{filter}");
        // /health names this consumer's tables only, not the other's sharing the downstream
        let tables = h.lock().unwrap().tables.clone();
        assert_eq!(tables.len(), TABLES / 3, "{filter}: {:?}", tables.keys());
        assert!(
            tables.keys().all(|t| t.starts_with(&format!("{schema}."))),
            "{filter}: {:?}",
            tables.keys()
        );
    }

    // Another scope (every table): db2's tables were never applied, so no mark may hold.
    let (mut r, m, _) = start(&w.uri, &down, &[]).await;
    let (out, _, _) = counted(&mut r, &m).await;
    assert!(!out.record.discovery.idle && out.record.discovery.full_listing);
    assert_eq!(out.record.rows(), 3 * (TABLES / 3) as u64, "db2's tables");
    settle(&mut r, &m).await;
    drop(r);

    // An operator deletes one table's stream row to replay it: the mark no longer holds.
    let c = rusqlite::Connection::open(&db).unwrap();
    let n = c
        .execute(
            "DELETE FROM cdc_consumer_progress WHERE schema_name = 'db0' AND table_name = 't0' \
             AND dispatcher = ''",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(c);
    let (mut r, m, _) = start(&w.uri, &down, &[]).await;
    let (out, lists, _) = counted(&mut r, &m).await;
    assert!(!out.record.discovery.idle && lists == 1);
    assert_eq!(
        out.record.tables["db0.t0"].files, 3,
        "replayed from its first file"
    );
}

#[tokio::test]
async fn stdout_rows_without_commit_ts_and_a_listing_lag_start_with_a_full_round() {
    let dir = tempfile::tempdir().unwrap();
    // stdout keeps no mark: its progress file holds streams only
    let w = one_table_one_file("memory://restart-5?protocol=csv&include-commit-ts=true").await;
    let progress = dir.path().join("p.json");
    let progress = progress.to_str().unwrap();
    let flags = ["--progress-file", progress];
    // rows without commit ts are applied as soon as indexed: no round is idle
    let w2 = one_table_one_file("memory://restart-6?protocol=csv").await;
    // a listing lag: no conclusion from a listing, so no round is idle
    let w3 = one_table_one_file("memory://restart-7?protocol=csv&include-commit-ts=true").await;
    let lagged = format!("{}&listing-lag=1ms", w3.uri);
    let cases = [
        (w.uri.clone(), "stdout://".to_string(), &flags[..]),
        (
            w2.uri.clone(),
            sqlite_uri(&dir.path().join("a.db")),
            &[][..],
        ),
        (lagged, sqlite_uri(&dir.path().join("b.db")), &[][..]),
    ];
    for (uri, down, extra) in cases {
        for process in 0..2 {
            let (mut r, m, _) = start(&uri, &down, extra).await;
            for round in 0..3 {
                let (out, lists, _) = counted(&mut r, &m).await;
                let d = &out.record.discovery;
                assert!(!d.resumed, "{uri} {down} process {process} round {round}");
                // stdout settles in-process like any downstream; the others never idle
                if round == 0 || !down.starts_with("stdout") {
                    assert!(!d.idle && lists > 0, "{uri} {down} process {process}");
                }
            }
            assert_eq!(m.settled_checkpoint_ts.get(), 0, "{uri} {down}");
        }
    }
}

/// The mark in the PostgreSQL and MySQL/MariaDB progress tables (a row their frozen columns
/// hold), beside the tests' other consumers.
#[tokio::test]
async fn a_restart_with_nothing_new_on_postgres_and_mysql() {
    for SqlServer { var, down, tag } in sql_servers() {
        let mut w = Writer::new(&format!(
            "memory://restart-server-{tag}?protocol=csv&include-commit-ts=true"
        ));
        for i in 0..3 {
            let t = two_cols(&format!("restart_{tag}"), &format!("t{i}"), ts(1));
            w.schema(&t, "", DdlKind::CreateTable).await;
            w.file(&t, &[(ts(2), vec![ins(i, "x")])]).await;
        }
        w.checkpoint(ts(10)).await;
        let (mut r, m, _) = start(&w.uri, &down, &[]).await;
        assert_eq!(settle(&mut r, &m).await, 3, "{var}");
        drop(r);
        // a process about to join a group does not stand on the mark: no log, no gauge (its
        // scope is set before it joins; other members' progress moves under a mark)
        let (g, gm, _) = start(&w.uri, &down, &["--group", &format!("g{tag}")]).await;
        assert_eq!(gm.settled_checkpoint_ts.get(), 0, "{var}");
        drop(g);
        let (mut r, m, _) = start(&w.uri, &down, &[]).await;
        assert_eq!(m.settled_checkpoint_ts.get(), ts(10).0 as i64, "{var}");
        let (out, lists, gets) = counted(&mut r, &m).await;
        assert!(out.record.discovery.resumed, "{var}");
        assert_eq!((lists, gets), (0, 1), "{var}");
        assert_eq!(out.record.applied_ts, ts(10).0, "{var}");
        // a moved checkpoint: the full first round, and the mark follows it
        w.checkpoint(ts(20)).await;
        let (out, lists, _) = counted(&mut r, &m).await;
        assert!(out.record.discovery.full_listing && lists == 1, "{var}");
        settle(&mut r, &m).await;
        assert_eq!(m.settled_checkpoint_ts.get(), ts(20).0 as i64, "{var}");
    }
}
