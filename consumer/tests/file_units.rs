//! Units of several data files (`--unit-files`, see `replay/file_unit.rs`): consecutive files of
//! one stream go down in one transaction with one progress row naming the last file, and:
//! - a crash in the middle of a unit leaves the downstream at the previous committed unit
//!   (rows and progress), and a restart ends equal to an uninterrupted run (PostgreSQL: the
//!   unit is held mid-way by a sleeping trigger, then the consumer is killed with SIGKILL);
//! - a unit the downstream refuses is applied again one file per unit, so the error names the
//!   exact file and the files before it are committed (SQLite: a trigger raising an error);
//! - a killed consumer's unit that commits late (its server session had received `COMMIT`) is
//!   not applied again by a restart that would cut its unit differently (the checkpoint moved):
//!   the restart reads the progress record settled (PostgreSQL: a deferred trigger makes the
//!   commit late).

use crate::support;

use cdc_common::{DdlKind, RowChange};
use cdc_consumer::backend::{self, Access};
use cdc_consumer::config::DownstreamUri;
use cdc_consumer::metrics::Metrics;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_storage-consumer");
/// Data files per table in the fixture.
const FILES: i64 = 16;
/// Rows per data file of the table without key.
const ROWS_PER_FILE: i64 = 4;
/// `--unit-files` of these tests: units are files 1-4, 5-8, 9-12, 13-16.
const UNIT_FILES: &str = "4";
/// The row of file 7 (the middle of the second unit) the injected trigger waits or fails on.
const TRIGGER_ID: i64 = 70;

/// Storage under `schema`: a table without key (`nopk`, whose duplicates a double apply
/// would show) and a keyed one (`pk`, inserts, updates and deletes), [`FILES`] files each.
/// Only the tables' DDL is below the checkpoint; [`release`] moves it past every file.
async fn storage(root: &Path, schema: &str) -> String {
    std::fs::create_dir_all(root).unwrap();
    let uri = format!(
        "file://{}?protocol=csv&include-commit-ts=true&output-old-value=true",
        root.display()
    );
    let mut w = Writer::new(&uri);
    let mut nopk = two_cols(schema, "nopk", ts(1));
    nopk.columns[0].primary_key = false;
    let pk = two_cols(schema, "pk", ts(1));
    w.schema(&nopk, "", DdlKind::CreateTable).await;
    w.schema(&pk, "", DdlKind::CreateTable).await;
    for f in 1..=FILES {
        let sec = 10 + f as u64;
        let rows: Vec<RowChange> = (0..ROWS_PER_FILE)
            .map(|i| ins(f * 10 + i, if i == 1 { "dup" } else { "x" }))
            .collect();
        w.file(&nopk, &[(ts(sec), rows)]).await;
        w.file(
            &pk,
            &[(
                ts(sec),
                vec![
                    ins(f, "a"),
                    upd(f - 1, "a", &format!("b{f}")),
                    del(f - 2, &format!("b{}", f - 1)),
                ],
            )],
        )
        .await;
    }
    w.checkpoint(ts(2)).await;
    uri
}

/// Moves the checkpoint of the storage at `uri` past every data file.
async fn release(uri: &str) {
    Writer::new(uri).checkpoint(ts(1000)).await;
}

fn consumer(uri: &str, down: &str) -> Command {
    consumer_with(uri, down, UNIT_FILES)
}

fn consumer_with(uri: &str, down: &str, unit_files: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "--upstream-uri",
        uri,
        "--downstream-uri",
        down,
        "--once",
        "--unit-files",
        unit_files,
        "--log-level",
        "warn",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}

/// The file index the progress record holds for `schema.table`'s stream.
async fn progress_file(down: &str, schema: &str, table: &str) -> Option<u64> {
    let uri = DownstreamUri::parse(down, None).unwrap();
    let mut d = backend::open(&uri, 1, Access::Apply).await.unwrap();
    d.load_progress()
        .await
        .unwrap()
        .into_iter()
        .find(|(k, _)| k.schema == schema && k.table == table && !k.dispatcher.starts_with('#'))
        .map(|(_, p)| p.file_index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_in_the_middle_of_a_unit_leaves_the_previous_unit_and_a_restart_finishes_it_on_postgres(
) {
    let Some(SqlServer { down: pg, tag, .. }) = sql_server(POSTGRES) else {
        return;
    };
    let client = postgres_client(&pg).await;
    let (a, b) = (format!("unit_ref_{tag}"), format!("unit_run_{tag}"));
    let dir = tempfile::tempdir().unwrap();

    // The reference: an uninterrupted run.
    let ref_uri = storage(&dir.path().join("a"), &a).await;
    release(&ref_uri).await;
    assert!(consumer(&ref_uri, &pg).status().unwrap().success());
    let want = dump(&pg, &a).await;
    assert_eq!(
        want.iter().filter(|r| r.starts_with("nopk ")).count() as i64,
        FILES * ROWS_PER_FILE
    );

    // The run: tables first, then a trigger that holds the insert of file 7's row.
    let run_uri = storage(&dir.path().join("b"), &b).await;
    assert!(consumer(&run_uri, &pg).status().unwrap().success());
    assert_eq!(
        progress_file(&pg, &b, "nopk").await,
        None,
        "only DDL so far"
    );
    client
        .batch_execute(&format!(
            "CREATE FUNCTION {b}.hold() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(120); RETURN NEW; END $$; \
             CREATE TRIGGER hold BEFORE INSERT ON {b}.nopk FOR EACH ROW \
             WHEN (NEW.id = {TRIGGER_ID}) EXECUTE FUNCTION {b}.hold()"
        ))
        .await
        .unwrap();
    release(&run_uri).await;
    let mut child = consumer(&run_uri, &pg).spawn().unwrap();
    let held = wait_for_sleeping_backend(&client, &format!("%{b}%")).await;
    let Some(backend_pid) = held else {
        child.kill().ok();
        panic!("the unit of files 5-8 never reached file 7's row");
    };
    child.kill().unwrap(); // SIGKILL, in the middle of the unit of files 5-8
    child.wait().unwrap();
    // The held transaction is still open on the server: what is committed is the first unit.
    assert_eq!(
        progress_file(&pg, &b, "nopk").await,
        Some(4),
        "the progress record names the last file of the last committed unit"
    );
    let nopk_rows = |rows: &[String]| rows.iter().filter(|r| r.starts_with("nopk ")).count();
    assert_eq!(
        nopk_rows(&dump(&pg, &b).await) as i64,
        4 * ROWS_PER_FILE,
        "exactly the rows of files 1-4 are committed"
    );
    // The killed consumer's server session ends (rolled back); the trigger goes.
    client
        .execute("SELECT pg_terminate_backend($1)", &[&backend_pid])
        .await
        .unwrap();
    client
        .batch_execute(&format!("DROP TRIGGER hold ON {b}.nopk"))
        .await
        .unwrap();
    assert!(consumer(&run_uri, &pg).status().unwrap().success());
    assert_eq!(
        dump(&pg, &b).await,
        want,
        "the restart ends as an uninterrupted run"
    );
    assert_eq!(progress_file(&pg, &b, "nopk").await, Some(FILES as u64));
}

/// The pid of a server backend sleeping in a test's trigger while running a statement like
/// `query` (within 60 s), if any.
async fn wait_for_sleeping_backend(client: &tokio_postgres::Client, query: &str) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let rows = client
            .query(
                "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' \
                 AND pid <> pg_backend_pid() AND query LIKE $1",
                &[&query],
            )
            .await
            .unwrap();
        if let Some(r) = rows.first() {
            return Some(r.get(0));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_files_of_a_stream_are_one_unit_and_a_refused_unit_is_applied_file_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.db");
    let ref_down = format!("sqlite://{}", reference.display());
    let ref_uri = storage(&dir.path().join("a"), "db").await;
    release(&ref_uri).await;
    let metrics = Metrics::new();
    ReplayerBuilder::new(&ref_uri, &ref_down)
        .once()
        .args(&["--unit-files", UNIT_FILES])
        .metrics(metrics.clone())
        .run()
        .await
        .unwrap();
    // 2 tables x 16 files in units of 4 files.
    assert_eq!(metrics.files_applied.get(), 2 * FILES as u64);
    assert_eq!(metrics.data_units.get(), 2 * FILES as u64 / 4);
    let want = dump(&ref_down, "db").await;

    let db = dir.path().join("run.db");
    let down = format!("sqlite://{}", db.display());
    let uri = storage(&dir.path().join("b"), "db").await;
    ReplayerBuilder::sqlite(&uri, &db)
        .once()
        .run()
        .await
        .unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER boom BEFORE INSERT ON \"db.nopk\" WHEN NEW.id = {TRIGGER_ID} \
             BEGIN SELECT RAISE(ABORT, 'injected refusal'); END"
        ))
        .unwrap();
    release(&uri).await;
    let mut r = ReplayerBuilder::sqlite(&uri, &db)
        .args(&["--unit-files", UNIT_FILES])
        .replayer()
        .await
        .unwrap();
    let mut warnings = Vec::new();
    let err = loop {
        let out = r.round().await;
        warnings.extend(out.record.warnings);
        if let Some(e) = out.error {
            break e.to_string();
        }
        assert!(!out.record.discovery.idle, "the refusal never came back");
    };
    drop(r);
    assert!(
        err.contains("injected refusal") && err.contains("0007.csv") && !err.contains(".."),
        "the error names the one refused file: {err}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("refused the unit") && w.contains("0005.csv")),
        "the round record says the unit was refused and split: {warnings:?}"
    );
    assert_eq!(
        progress_file(&down, "db", "nopk").await,
        Some(6),
        "files 5 and 6 committed one per unit after the unit of 5-8 was refused"
    );
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TRIGGER boom")
        .unwrap();
    ReplayerBuilder::sqlite(&uri, &db)
        .once()
        .args(&["--unit-files", UNIT_FILES])
        .run()
        .await
        .unwrap();
    assert_eq!(dump(&down, "db").await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_of_a_killed_consumers_unit_is_not_applied_again_by_a_longer_unit_on_postgres(
) {
    let Some(SqlServer { down: pg, tag, .. }) = sql_server(POSTGRES) else {
        return;
    };
    let client = postgres_client(&pg).await;
    let (a, b) = (format!("late_ref_{tag}"), format!("late_run_{tag}"));
    let dir = tempfile::tempdir().unwrap();
    let ref_uri = storage(&dir.path().join("a"), &a).await;
    release(&ref_uri).await;
    assert!(consumer_with(&ref_uri, &pg, "8")
        .status()
        .unwrap()
        .success());
    let want = dump(&pg, &a).await;

    // Tables first; then only files 1-4 below the checkpoint: the first unit is files 1-4.
    let uri = storage(&dir.path().join("b"), &b).await;
    assert!(consumer_with(&uri, &pg, "8").status().unwrap().success());
    Writer::new(&uri).checkpoint(ts(10 + 4)).await;
    // The stream's first progress row commits 3 s after its COMMIT arrived.
    client
        .batch_execute(&format!(
            "CREATE FUNCTION {b}.late() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER late_{tag} AFTER INSERT ON public.cdc_consumer_progress \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
             WHEN (NEW.schema_name = '{b}' AND NEW.table_name = 'nopk') \
             EXECUTE FUNCTION {b}.late()"
        ))
        .await
        .unwrap();
    let mut killed = consumer_with(&uri, &pg, "8").spawn().unwrap();
    let Some(_) = wait_for_sleeping_backend(&client, "COMMIT").await else {
        killed.kill().ok();
        panic!("the unit of files 1-4 never reached its commit");
    };
    killed.kill().unwrap(); // SIGKILL after COMMIT was sent: its session still commits
    killed.wait().unwrap();
    // The restart sees every file below the checkpoint: its first unit would be files 1-8.
    release(&uri).await;
    assert!(consumer_with(&uri, &pg, "8").status().unwrap().success());
    client
        .batch_execute(&format!(
            "DROP TRIGGER late_{tag} ON public.cdc_consumer_progress"
        ))
        .await
        .unwrap();
    assert_eq!(
        dump(&pg, &b).await,
        want,
        "files 1-4 applied once: by the late commit, not again by the restart"
    );
}
