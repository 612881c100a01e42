//! Summary rounds: on storage whose sink keeps the change summary `changes.metadata`, a round
//! after the checkpoint moved refreshes only the tables that changed (O(changed tables)
//! requests), and applies the same rows and DDLs a full round would. A missing, damaged or
//! unchainable summary (a gap, another writer, a new sink process) brings a full round back.

use crate::support;

use cdc_common::DdlKind;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::{Replayer, RoundOutcome};
use support::*;

const TABLES: usize = 30;

/// `TABLES` tables of three files each (checkpoint ts(10)) written by a sink keeping the
/// change summary, and a consumer process on the SQLite database `db` that has run its first
/// (recursive) and second (settling) rounds and one idle round over it, with its metrics.
async fn settled(uri: &str, db: &std::path::Path) -> (Writer, Replayer, Metrics) {
    let w = three_files_per_table_in(Writer::new(uri).with_change_summary(), TABLES).await;
    let (mut r, m, _) = start(&w.uri, &sqlite_uri(db), &[]).await;
    for _ in 0..2 {
        let out = r.round().await;
        assert!(out.error.is_none(), "{:?}", out.error);
    }
    assert!(r.round().await.record.discovery.idle);
    (w, r, m)
}

/// One new one-row file in each of tables `t<i>` for `i` in `which`, at `at`.
async fn touch(w: &mut Writer, which: &[usize], at: cdc_common::Ts, id: i64) {
    for &i in which {
        let t = two_cols(&format!("db{}", i % 3), &format!("t{i}"), ts(1));
        w.file(&t, &[(at, vec![ins(id, "new")])]).await;
    }
}

/// `db0.t0` with a column `extra INT` added at `version`: its schema file written.
async fn add_extra_to_t0(w: &Writer, version: cdc_common::Ts) -> cdc_common::TableDef {
    let mut t0 = two_cols("db0", "t0", version);
    t0.columns.push(cdc_common::ColumnDef::new(
        "extra",
        cdc_common::ColumnType::Int,
    ));
    w.schema(
        &t0,
        "ALTER TABLE t0 ADD COLUMN extra INT",
        DdlKind::AddColumn,
    )
    .await;
    t0
}

/// Reopens `r`'s downstream on the SQLite file `db`, as `storage-consumer` does after a
/// failed round.
async fn reopen(r: &mut Replayer, db: &std::path::Path) {
    let uri = cdc_consumer::config::DownstreamUri::parse(&sqlite_uri(db), None).unwrap();
    let down = cdc_consumer::backend::open(&uri, 1, cdc_consumer::backend::Access::Apply)
        .await
        .unwrap();
    r.reopen(down).await.unwrap();
}

fn assert_summary(out: &RoundOutcome, tables: u64) {
    assert!(out.error.is_none(), "{:?}", out.error);
    let d = &out.record.discovery;
    assert!(d.summary && !d.idle && !d.full_listing, "{d:?}");
    assert_eq!(d.summary_tables, tables, "{d:?}");
}

fn assert_full(out: &RoundOutcome, lists: u64) {
    assert!(out.error.is_none(), "{:?}", out.error);
    let d = &out.record.discovery;
    assert!(!d.summary && !d.idle, "{d:?}");
    assert!(
        lists > TABLES as u64,
        "a full round lists per table: {lists}"
    );
}

#[tokio::test]
async fn k_changed_tables_cost_requests_in_k_on_memory() {
    k_changed_tables_on("memory://summary-1?protocol=csv&include-commit-ts=true").await;
}

#[tokio::test]
async fn k_changed_tables_cost_requests_in_k_on_a_local_directory() {
    let (_root, uri) = local_storage("protocol=csv&include-commit-ts=true");
    k_changed_tables_on(&uri).await;
}

async fn k_changed_tables_on(uri: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut r, m) = settled(uri, &dir.path().join("d.db")).await;
    // the first round walked every table
    assert_eq!(m.tables_walked.get(), TABLES as i64);

    for (k, (at, ckpt)) in [(1usize, (15, 20)), (3, (25, 30))] {
        let which: Vec<usize> = (0..k).map(|j| 7 + 5 * j).collect();
        touch(&mut w, &which, ts(at), 100 + k as i64).await;
        w.checkpoint(ts(ckpt)).await;
        let (out, lists, gets) = counted_round(&mut r, &m).await;
        assert_summary(&out, k as u64);
        assert_eq!(out.record.rows(), k as u64);
        // ...and walks only those tables: the others were left with nothing to do
        assert_eq!(m.tables_walked.get(), k as i64, "k = {k}");
        // GET metadata and the summary; per table: LIST its meta/, its version directory and
        // the data directory's meta/, GET the index file, GET the data file.
        assert_eq!((lists, gets), (3 * k as u64, 2 + 2 * k as u64), "k = {k}");
        let (idle, lists, gets) = counted_round(&mut r, &m).await;
        assert!(idle.record.discovery.idle);
        assert_eq!((lists, gets), (0, 1));
    }
    // Two checkpoints passed between two rounds: the steps chain.
    touch(&mut w, &[1], ts(35), 200).await;
    w.checkpoint(ts(40)).await;
    touch(&mut w, &[2], ts(45), 200).await;
    w.checkpoint(ts(50)).await;
    let (out, _, _) = counted_round(&mut r, &m).await;
    assert_summary(&out, 2);
    assert_eq!(out.record.rows(), 2);
    let kinds = |k: &str| m.discovery_rounds.with_label_values(&[k]).get();
    // the first round settled (no second full round before the summaries)
    assert_eq!((kinds("first"), kinds("full"), kinds("summary")), (1, 0, 3));
}

#[tokio::test]
async fn without_a_usable_summary_the_round_is_full_and_rows_still_apply() {
    let dir = tempfile::tempdir().unwrap();
    let uri = "memory://summary-2?protocol=csv&include-commit-ts=true";
    let (mut w, mut r, m) = settled(uri, &dir.path().join("d.db")).await;

    // Missing (deleted: it is derived).
    touch(&mut w, &[4], ts(15), 1).await;
    w.checkpoint(ts(20)).await;
    w.delete("changes.metadata").await;
    let (out, lists, _) = counted_round(&mut r, &m).await;
    assert_full(&out, lists);
    assert_eq!(out.record.rows(), 1);

    // Damaged: a warning naming it, and a full round.
    touch(&mut w, &[5], ts(25), 1).await;
    w.checkpoint(ts(30)).await;
    w.put("changes.metadata", b"{\"version\":1,\"steps\":[".to_vec())
        .await;
    let (out, lists, _) = counted_round(&mut r, &m).await;
    assert_full(&out, lists);
    assert_eq!(out.record.rows(), 1);
    assert_warned(&out.record, |w| w.contains("changes.metadata"));

    // A gap: another writer moved `metadata` without a step (the summary still ends at 30).
    touch(&mut w, &[6], ts(32), 1).await;
    w.checkpoint_without_summary(ts(35)).await;
    let (out, lists, _) = counted_round(&mut r, &m).await;
    assert_full(&out, lists);
    assert_eq!(out.record.rows(), 1);
    // ...and the sink's next step starts at its own last checkpoint (30), not at 35.
    touch(&mut w, &[8], ts(38), 1).await;
    w.checkpoint(ts(40)).await;
    let (out, lists, _) = counted_round(&mut r, &m).await;
    assert_full(&out, lists);
    assert_eq!(out.record.rows(), 1);

    // A summary round again once the chain holds...
    touch(&mut w, &[9], ts(45), 1).await;
    w.checkpoint(ts(50)).await;
    let (out, _, _) = counted_round(&mut r, &m).await;
    assert_summary(&out, 1);
    assert_eq!(out.record.rows(), 1);

    // ...until a new sink process: its first step is incomplete.
    w.restart_summary();
    touch(&mut w, &[10], ts(55), 1).await;
    w.checkpoint(ts(60)).await;
    let (out, lists, _) = counted_round(&mut r, &m).await;
    assert_full(&out, lists);
    assert_eq!(out.record.rows(), 1);
    touch(&mut w, &[11], ts(65), 1).await;
    w.checkpoint(ts(70)).await;
    let (out, _, _) = counted_round(&mut r, &m).await;
    assert_summary(&out, 1);
}

#[tokio::test]
async fn a_ddl_travels_through_a_summary_round() {
    let dir = tempfile::tempdir().unwrap();
    let uri = "memory://summary-3?protocol=csv&include-commit-ts=true";
    let db = dir.path().join("d.db");
    let (mut w, mut r, _) = settled(uri, &db).await;

    // A new version of db0.t0 (ADD COLUMN), a new table db1.fresh, db2.t2 dropped, and a new
    // database with a table.
    let t0 = add_extra_to_t0(&w, ts(12)).await;
    w.file(
        &t0,
        &[(
            ts(13),
            vec![cdc_common::RowChange::Insert {
                after: vec![
                    cdc_common::Value::Int(50),
                    cdc_common::Value::String("v2".into()),
                    cdc_common::Value::Int(7),
                ],
            }],
        )],
    )
    .await;
    let fresh = two_cols("db1", "fresh", ts(14));
    w.schema(&fresh, "CREATE TABLE fresh", DdlKind::CreateTable)
        .await;
    w.file(&fresh, &[(ts(15), vec![ins(1, "f")])]).await;
    let mut t2 = two_cols("db2", "t2", ts(1));
    t2.version = ts(16);
    w.schema(&t2, "DROP TABLE t2", DdlKind::DropTable).await;
    w.db_schema("db9", ts(17), "CREATE DATABASE db9", DdlKind::CreateSchema)
        .await;
    let n9 = two_cols("db9", "n", ts(18));
    w.schema(&n9, "CREATE TABLE n", DdlKind::CreateTable).await;
    w.file(&n9, &[(ts(19), vec![ins(9, "nine")])]).await;
    w.checkpoint(ts(20)).await;

    let out = r.round().await;
    assert_summary(&out, 4);
    assert_eq!(out.record.rows(), 3);
    let down = sqlite_uri(&db);

    // A fresh consumer's full replay of the same storage reaches the same downstream.
    let db2 = dir.path().join("full.db");
    let (mut full, _, _) = start(&w.uri, &sqlite_uri(&db2), &[]).await;
    for _ in 0..2 {
        assert!(full.round().await.error.is_none());
    }
    let down2 = sqlite_uri(&db2);
    for schema in ["db0", "db1", "db2", "db9"] {
        assert_eq!(
            dump(&down, schema).await,
            dump(&down2, schema).await,
            "{schema}"
        );
    }
    let db0 = dump(&down, "db0").await;
    assert!(
        db0.iter().any(|l| l.contains("v2") && l.contains('7')),
        "{db0:?}"
    );
    assert!(dump(&down, "db1")
        .await
        .iter()
        .any(|l| l.starts_with("fresh")));
    assert!(!dump(&down, "db2")
        .await
        .iter()
        .any(|l| l.starts_with("t2 ")));
    assert_eq!(dump(&down, "db9").await.len(), 1);
}

#[tokio::test]
async fn a_restart_on_the_settled_mark_reads_only_the_changed_tables() {
    use cdc_consumer::freshness::Status;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let uri = "memory://summary-4?protocol=csv&include-commit-ts=true";
    let (mut w, r, _) = settled(uri, &db).await;
    drop(r);
    let down = sqlite_uri(&db);

    // While it is down: new files in two tables, the checkpoint passes them.
    touch(&mut w, &[3, 17], ts(15), 300).await;
    w.checkpoint(ts(20)).await;
    let (mut r, m, h) = start(&w.uri, &down, &[]).await;
    let (out, lists, gets) = counted_round(&mut r, &m).await;
    assert_summary(&out, 2);
    assert_eq!(out.record.rows(), 2);
    // GET metadata and the summary; per table, read from scratch: LIST its meta/, GET its
    // schema file, LIST its version directory and the data directory's meta/, GET the index
    // file and the one data file not applied yet.
    assert_eq!((lists, gets), (6, 2 + 6));
    assert_eq!(
        r.catalog().tables.len(),
        2,
        "only the changed tables were read"
    );
    // Freshness stays honest: every table, read or not, is applied through the checkpoint.
    let (applied, status, tables) = {
        let h = h.lock().unwrap();
        (h.applied_ts, h.status, h.tables.clone())
    };
    assert_eq!(applied, Some(ts(20).0));
    assert_eq!(status, Status::Ready);
    assert_eq!(tables.len(), TABLES);
    assert!(
        tables.values().all(|t| t.applied_ts == ts(20).0),
        "{tables:?}"
    );
    // Settled at once: idle, and a summary round again once the checkpoint moves.
    let (idle, lists, gets) = counted_round(&mut r, &m).await;
    assert!(idle.record.discovery.idle && (lists, gets) == (0, 1));
    touch(&mut w, &[20], ts(25), 300).await;
    w.checkpoint(ts(30)).await;
    let (out, _, _) = counted_round(&mut r, &m).await;
    assert_summary(&out, 1);
    assert_eq!(out.record.rows(), 1);

    // A file above the checkpoint is pending when the process settles: the mark says so, and
    // a restart does not chain from it (that file's table is named in a step before it).
    touch(&mut w, &[25], ts(35), 400).await;
    w.checkpoint(ts(32)).await;
    let (out, _, _) = counted_round(&mut r, &m).await;
    assert_summary(&out, 1);
    assert_eq!(out.record.rows(), 0, "held back above the checkpoint");
    assert!(counted_round(&mut r, &m).await.0.record.discovery.idle);
    drop(r);
    w.checkpoint(ts(40)).await;
    let (mut r, m, _) = start(&w.uri, &down, &[]).await;
    let (out, lists, _) = counted_round(&mut r, &m).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(
        out.record.discovery.full_listing,
        "{:?}",
        out.record.discovery
    );
    assert_eq!(lists, 1);
    assert_eq!(out.record.rows(), 1, "the pending file is applied");
}

/// A table left with something to wait for (here its file's rows are above the checkpoint) is
/// walked again in the next summary round even when the summary does not name it, and a table
/// that has only its rows touched by the round is walked in it.
#[tokio::test]
async fn a_table_left_waiting_is_walked_again_though_the_summary_does_not_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let uri = "memory://summary-5?protocol=csv&include-commit-ts=true";
    let db = dir.path().join("d.db");
    let (mut w, mut r, m) = settled(uri, &db).await;

    // t3's new file holds a row at 25, above the checkpoint 20 the summary names it under.
    touch(&mut w, &[3], ts(25), 300).await;
    touch(&mut w, &[4], ts(15), 400).await;
    w.checkpoint(ts(20)).await;
    let out = r.round().await;
    assert_summary(&out, 2);
    assert_eq!(
        out.record.rows(),
        1,
        "t4's row; t3's waits for the checkpoint"
    );
    assert_eq!(m.tables_walked.get(), 2);

    // The checkpoint moves past it with no table named: t3 is still walked, and applied.
    w.checkpoint(ts(30)).await;
    let out = r.round().await;
    assert_summary(&out, 0);
    assert_eq!(out.record.rows(), 1, "t3's row at 25");
    assert_eq!(m.tables_walked.get(), 1);
    let rows = dump(&sqlite_uri(&db), "db0").await;
    assert!(rows.iter().any(|l| l.contains("300")), "{rows:?}");
    assert_eq!(m.files_pending.get(), 0);

    // Nothing left anywhere: the next summary round walks only what it names.
    touch(&mut w, &[5], ts(35), 500).await;
    w.checkpoint(ts(40)).await;
    let out = r.round().await;
    assert_summary(&out, 1);
    assert_eq!(m.tables_walked.get(), 1);
}

/// A summary round whose checkpoint reached a new date closes every table's earlier dated
/// directories, not only those of the tables it names (they get no file any more, so no
/// round needs to read their index files again); one at the same date walks only its own.
#[tokio::test]
async fn a_new_checkpoint_date_closes_every_tables_dated_directories_in_a_summary_round() {
    let dir = tempfile::tempdir().unwrap();
    let uri = "memory://summary-6?protocol=csv&include-commit-ts=true&date-separator=day";
    let (mut w, mut r, _) = settled(uri, &dir.path().join("d.db")).await;
    let open_dated = |r: &Replayer| -> Vec<String> {
        let mut out = Vec::new();
        for (name, t) in &r.catalog().tables {
            for ve in t.versions.values() {
                for (d, de) in &ve.dirs {
                    if !de.closed {
                        out.push(format!(
                            "{name} {}",
                            d.date.map(|x| x.to_string()).unwrap_or_default()
                        ));
                    }
                }
            }
        }
        out
    };
    assert_eq!(
        open_dated(&r).len(),
        TABLES,
        "every table's one dated directory is open"
    );

    // Three days later: the writers' clocks are past the first date, whatever their zone.
    let day = 86_400;
    touch(&mut w, &[1], ts(3 * day), 1).await;
    w.checkpoint(ts(3 * day + 10)).await;
    let out = r.round().await;
    assert_summary(&out, 1);
    assert_eq!(out.record.rows(), 1);
    let open = open_dated(&r);
    assert_eq!(open.len(), 1, "only t1's new directory is open: {open:?}");
    assert!(open[0].starts_with("db1.t1 "), "{open:?}");

    // The same date: a round that walks only the table it names leaves the others as they are.
    touch(&mut w, &[2], ts(3 * day + 20), 2).await;
    w.checkpoint(ts(3 * day + 30)).await;
    let out = r.round().await;
    assert_summary(&out, 1);
    assert_eq!(out.record.rows(), 1);
    let open = open_dated(&r);
    assert_eq!(open.len(), 2, "{open:?}");
}

/// A table stopped by its own error (a corrupt data file, `--on-bad-file stop`) keeps its step
/// round after round, and the other tables' summary rounds still walk only what changed: the
/// round concludes which tables are quiet though it ends on that table's error, and the
/// reopened downstream's progress record, unchanged, keeps it.
#[tokio::test]
async fn a_stuck_table_does_not_make_every_round_walk_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let uri = "memory://summary-7?protocol=csv&include-commit-ts=true";
    let db = dir.path().join("d.db");
    let (mut w, mut r, m) = settled(uri, &db).await;

    let t3 = two_cols("db0", "t3", ts(1));
    let bad = w.file(&t3, &[(ts(15), vec![ins(300, "bad")])]).await;
    let good = w.get(&bad).await;
    w.put(&bad, b"I,\"unterminated\n\xff\xfe".to_vec()).await;
    touch(&mut w, &[4], ts(16), 400).await;
    w.checkpoint(ts(20)).await;
    let out = r.round().await;
    assert!(out.error.is_some(), "t3's corrupt file stops it");
    assert_eq!(out.record.rows(), 1, "t4's row");
    assert_eq!(m.tables_walked.get(), 2);

    for (k, at) in [(5usize, 25u64), (6, 35)] {
        // as `storage-consumer` does after a failed round: a new connection, the progress
        // record read again (unchanged: nothing concluded from it is lost)
        reopen(&mut r, &db).await;
        touch(&mut w, &[k], ts(at), 500).await;
        w.checkpoint(ts(at + 5)).await;
        let out = r.round().await;
        assert!(out.error.is_some(), "t3 is still stuck");
        assert!(out.record.discovery.summary, "{:?}", out.record.discovery);
        assert_eq!(out.record.rows(), 1);
        assert_eq!(
            m.tables_walked.get(),
            2,
            "t{k} and the stuck t3, not all {TABLES}"
        );
    }

    // Repaired: the stuck table goes on in the next round.
    w.put(&bad, good).await;
    touch(&mut w, &[7], ts(45), 700).await;
    w.checkpoint(ts(50)).await;
    let out = r.round().await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.record.rows(), 2);
    assert_eq!(m.files_pending.get(), 0);
}

/// A round's applied ts is the least of every table's, quiet or not; an idle round after it
/// reports the same (it changed nothing). Here `t6` waits (its DDL at 14 waits for the
/// database-level DDL at 12, which waits for `t3`'s file spanning the checkpoint), so the
/// applied ts stays below the checkpoint in both rounds.
#[tokio::test]
async fn an_idle_round_reports_the_applied_ts_of_the_tables_still_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let uri = "memory://summary-8?protocol=csv&include-commit-ts=true";
    let (mut w, mut r, _) = settled(uri, &dir.path().join("d.db")).await;

    let t3 = two_cols("db0", "t3", ts(1));
    w.file(
        &t3,
        &[(ts(15), vec![ins(315, "a")]), (ts(25), vec![ins(325, "b")])],
    )
    .await;
    w.db_schema("db0", ts(12), "CREATE DATABASE db0", DdlKind::CreateSchema)
        .await;
    let mut t6 = two_cols("db0", "t6", ts(14));
    t6.columns.push(cdc_common::ColumnDef::new(
        "extra",
        cdc_common::ColumnType::Int,
    ));
    w.schema(
        &t6,
        "ALTER TABLE t6 ADD COLUMN extra INT",
        DdlKind::AddColumn,
    )
    .await;
    w.checkpoint(ts(20)).await;

    let busy = r.round().await;
    assert!(busy.error.is_none(), "{:?}", busy.error);
    assert!(busy.record.discovery.summary, "{:?}", busy.record.discovery);
    assert!(
        busy.record.applied_ts < ts(12).0,
        "t6 waits below its DDL: {} against {}",
        busy.record.applied_ts,
        ts(12).0
    );
    let idle = r.round().await;
    assert!(idle.record.discovery.idle, "{:?}", idle.record.discovery);
    assert_eq!(idle.record.applied_ts, busy.record.applied_ts);
    assert_eq!(idle.record.files_pending, busy.record.files_pending);
}

/// A reopened downstream whose progress record moved under the process (another process
/// applied a file in between) makes the next round list every table and walk every table;
/// the rows the other process applied are not applied again.
#[tokio::test]
async fn a_reopen_that_reads_a_moved_progress_record_makes_the_next_round_full() {
    let dir = tempfile::tempdir().unwrap();
    let uri = "memory://summary-9?protocol=csv&include-commit-ts=true";
    let db = dir.path().join("d.db");
    let (mut w, mut r, m) = settled(uri, &db).await;

    touch(&mut w, &[5], ts(15), 500).await;
    w.checkpoint(ts(20)).await;
    let (mut other, _, _) = start(&w.uri, &sqlite_uri(&db), &[]).await;
    let mut applied = 0;
    for _ in 0..3 {
        let out = other.round().await;
        assert!(out.error.is_none(), "{:?}", out.error);
        applied += out.record.rows();
    }
    assert_eq!(applied, 1, "the other process applied t5's row");

    reopen(&mut r, &db).await;
    touch(&mut w, &[6], ts(25), 600).await;
    w.checkpoint(ts(30)).await;
    let (out, lists, _) = counted_round(&mut r, &m).await;
    assert_full(&out, lists);
    assert_eq!(m.tables_walked.get(), TABLES as i64);
    assert_eq!(out.record.rows(), 1, "t6's row only");
}

/// A DDL's schema file read while the checkpoint is still below it gives a barrier that cannot
/// settle yet; the summary round that moves the checkpoint past it names only the tables that
/// changed since, not the DDL's. The barrier is known from the earlier round and raises the
/// table's `complete_below` then, so the DDL is applied in that round: a summary round that
/// looked for known barriers among its scope's tables only left it waiting for a full round.
#[tokio::test]
async fn a_ddl_read_below_the_checkpoint_applies_in_a_summary_round_that_does_not_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let uri = "memory://summary-9?protocol=csv&include-commit-ts=true";
    let db = dir.path().join("d.db");
    let (mut w, mut r, _) = settled(uri, &db).await;
    let t0 = add_extra_to_t0(&w, ts(20)).await;
    touch(&mut w, &[1], ts(12), 100).await;
    w.checkpoint(ts(15)).await;
    let out = r.round().await;
    assert_summary(&out, 2);
    assert_eq!(
        r.progress().table_version(&t0.name()),
        Some(ts(1)),
        "the DDL at 20 waits for the checkpoint"
    );

    touch(&mut w, &[2], ts(22), 101).await;
    w.checkpoint(ts(25)).await;
    let out = r.round().await;
    assert_summary(&out, 1);
    assert_eq!(
        r.progress().table_version(&t0.name()),
        Some(ts(20)),
        "the DDL is applied once the checkpoint passed it"
    );
}

/// A database-level barrier every table of its schema was raised to is applied in later
/// summary rounds to the scope's tables only; a table new to that schema is in the scope and
/// gets it. Here a table whose schema file (written late, at its older create version, as
/// TiCDC writes a table's schema file with its first rows) appears after an ALTER DATABASE:
/// every DML of it below the database-level DDL is indexed, as a full round concludes.
#[tokio::test]
async fn a_table_new_to_a_schema_gets_its_database_level_barrier_in_a_summary_round() {
    let dir = tempfile::tempdir().unwrap();
    let uri = "memory://summary-10?protocol=csv&include-commit-ts=true";
    let db = dir.path().join("d.db");
    let (mut w, mut r, _) = settled(uri, &db).await;
    w.db_schema("db0", ts(12), "ALTER DATABASE db0", DdlKind::Other)
        .await;
    touch(&mut w, &[0], ts(13), 100).await;
    w.checkpoint(ts(15)).await;
    assert!(r.round().await.error.is_none());
    let complete = |r: &Replayer, t: &str| {
        r.catalog().tables[&cdc_common::TableName::new("db0", t)].complete_below
    };
    assert!(
        complete(&r, "t3") >= ts(12),
        "every table of db0 has the barrier"
    );

    let late = two_cols("db0", "late", ts(5));
    w.schema(&late, "CREATE TABLE late", DdlKind::CreateTable)
        .await;
    w.file(&late, &[(ts(16), vec![ins(1, "l")])]).await;
    w.checkpoint(ts(20)).await;
    let out = r.round().await;
    assert_summary(&out, 1);
    assert_eq!(out.record.rows(), 1);
    assert_eq!(complete(&r, "late"), ts(12));
}

/// A rename whose source the catalog does not hold (a process standing on its settled mark
/// reads only the changed tables) gives its barrier to that source once the source enters the
/// catalog, in a later summary round whose scope names only the source: the renamed table is
/// walked for its known barriers then (found through the source's `renamed_away`), though it
/// gave none when last looked at.
#[tokio::test]
async fn a_rename_source_new_to_a_partial_catalog_gets_the_renames_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let uri = "memory://summary-11?protocol=csv&include-commit-ts=true";
    let (mut w, r, _) = settled(uri, &db).await;
    drop(r);
    // While it is down: db0.t0 renamed to db0.x at 12, the checkpoint past it.
    let x = two_cols("db0", "x", ts(12));
    w.schema(&x, "RENAME TABLE t0 TO x", DdlKind::RenameTable)
        .await;
    w.checkpoint(ts(15)).await;
    let (mut r, _, _) = start(&w.uri, &sqlite_uri(&db), &[]).await;
    let out = r.round().await;
    assert_summary(&out, 1);
    let complete = |r: &Replayer, t: &str| {
        r.catalog()
            .tables
            .get(&cdc_common::TableName::new("db0", t))
            .map(|e| e.complete_below)
    };
    assert_eq!(complete(&r, "t0"), None, "not in the partial catalog");
    // a round on another table: db0.x, walked again, gives no barrier now (its own is met,
    // its source is not in the catalog), so it is not among the tables walked for them next
    touch(&mut w, &[1], ts(16), 100).await;
    w.checkpoint(ts(17)).await;
    assert_summary(&r.round().await, 1);

    // db0.t0 created again at 20, the checkpoint below its own version: the rename's barrier
    // at 12 is the one that reaches it.
    let t0 = two_cols("db0", "t0", ts(20));
    w.schema(&t0, "CREATE TABLE t0", DdlKind::CreateTable).await;
    w.checkpoint(ts(18)).await;
    let out = r.round().await;
    assert_summary(&out, 1);
    assert_eq!(complete(&r, "t0"), Some(ts(12)));
}
