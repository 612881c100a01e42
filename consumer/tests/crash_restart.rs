//! Kill -9 at arbitrary moments and restart: the final state equals an uninterrupted run, with
//! no duplicate (a table without primary key would show one) and no missing row.

use crate::support;

use cdc_common::{ColumnDef, ColumnType, DdlKind, RowChange, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_storage-consumer");

fn consumer(uri: &str, down: &str, batch: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "--upstream-uri",
        uri,
        "--downstream-uri",
        down,
        "--once",
        "--batch-rows",
        batch,
        // One file per transaction: a unit of several files made the whole replay commit
        // within a few units, too fast for a kill to land between them reliably (kills
        // inside a unit are `file_units.rs`'s).
        "--unit-files",
        "1",
        "--log-level",
        "warn",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}

/// Sum of applied file indexes in the progress record (0 when there is none yet).
fn applied_files(db: &Path) -> i64 {
    let Ok(c) = rusqlite::Connection::open(db) else {
        return 0;
    };
    c.query_row(
        "SELECT coalesce(sum(file_index), 0) FROM cdc_consumer_progress",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

/// Pads row images to `n` columns (tables that gained a column).
fn widen(rows: Vec<RowChange>, n: usize, extra: i64) -> Vec<RowChange> {
    let pad = |mut v: Vec<Value>| {
        while v.len() < n {
            v.push(Value::Int(extra));
        }
        v
    };
    rows.into_iter()
        .map(|r| match r {
            RowChange::Insert { after } => RowChange::Insert { after: pad(after) },
            RowChange::Update { before, after } => RowChange::Update {
                before: before.map(pad),
                after: pad(after),
            },
            RowChange::Delete { before } => RowChange::Delete {
                before: pad(before),
            },
        })
        .collect()
}

/// Writes the storage the crash tests replay: 3 keyed tables (one gains a column half-way) and
/// one table without key, 480 small files in all, under `schema`.
async fn build_storage(root: &Path, schema: &str) -> String {
    std::fs::create_dir_all(root).unwrap();
    let uri = format!(
        "file://{}?protocol=csv&include-commit-ts=true&output-old-value=true",
        root.display()
    );
    let mut w = Writer::new(&uri);
    let mut sec = 10;
    let mut tables = Vec::new();
    for i in 0..3 {
        let t = two_cols(schema, &format!("pk{i}"), ts(1));
        w.schema(&t, "", DdlKind::CreateTable).await;
        tables.push(t);
    }
    let mut nopk = two_cols(schema, "nopk", ts(1));
    nopk.columns[0].primary_key = false;
    w.schema(&nopk, "", DdlKind::CreateTable).await;
    for f in 0..120i64 {
        for t in tables.iter_mut() {
            sec += 1;
            let rows = widen(
                vec![
                    ins(f * 10, "a"),
                    ins(f * 10 + 1, "b"),
                    upd(f * 10, "a", "A"),
                    del(f * 10 + 1, "b"),
                ],
                t.columns.len(),
                f,
            );
            w.file(t, &[(ts(sec), rows)]).await;
            if f == 60 && t.table == "pk0" {
                // A schema change in the middle.
                sec += 1;
                t.version = ts(sec);
                t.columns.push(ColumnDef::new("extra", ColumnType::BigInt));
                w.schema(
                    t,
                    "ALTER TABLE pk0 ADD COLUMN extra BIGINT",
                    DdlKind::AddColumn,
                )
                .await;
            }
        }
        sec += 1;
        let n = f % 7;
        w.file(&nopk, &[(ts(sec), vec![ins(n, "dup"), ins(n, "dup")])])
            .await;
    }
    let pk0 = tables[0].clone();
    sec += 1;
    w.file(
        &pk0,
        &[(
            ts(sec),
            vec![RowChange::Insert {
                after: vec![
                    Value::Int(100_000),
                    Value::String("w".into()),
                    Value::Int(5),
                ],
            }],
        )],
    )
    .await;
    w.checkpoint(ts(sec + 1)).await;

    uri
}

/// Runs the binary with `--batch-rows 1` into `down`, SIGKILLs it at the given delays
/// (restarting each time), then lets it finish. `applied` reads the progress made so far.
async fn kill_and_finish<F, Fut>(uri: &str, down: &str, total: i64, applied: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let mut kills = 0;
    let mut mid_way = 0;
    // Short delays first: with units of several files a run may finish within 100 ms.
    let delays = [15u64, 30, 40, 90, 150, 60, 220, 120, 300, 80, 400, 500];
    let mut finished = false;
    for d in delays {
        let mut child = consumer(uri, down, "1").spawn().unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(d) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match child.try_wait().unwrap() {
            Some(st) => {
                assert!(st.success());
                finished = true;
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                let n = applied().await;
                if n > 0 && n < total {
                    mid_way += 1;
                }
            }
        }
    }
    assert!(
        kills >= 2 && mid_way >= 1,
        "the replay must have been killed mid-way ({kills} kills, {mid_way} with partial progress)"
    );
    if !finished {
        let st = consumer(uri, down, "1").status().unwrap();
        assert!(st.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let uri = build_storage(&dir.path().join("storage"), "db").await;
    let reference = dir.path().join("reference.db");
    let st = consumer(&uri, &format!("sqlite://{}", reference.display()), "256")
        .status()
        .unwrap();
    assert!(st.success());
    let want = dump(&format!("sqlite://{}", reference.display()), "db").await;
    assert!(want.len() > 300);
    let total = applied_files(&reference);
    let crashed = dir.path().join("crashed.db");
    kill_and_finish(
        &uri,
        &format!("sqlite://{}", crashed.display()),
        total,
        || {
            let c = crashed.clone();
            async move { applied_files(&c) }
        },
    )
    .await;
    assert_eq!(
        dump(&format!("sqlite://{}", crashed.display()), "db").await,
        want
    );
}

async fn pg_applied(client: &tokio_postgres::Client, schema: &str) -> i64 {
    client
        .query_one(
            "SELECT coalesce(sum(file_index), 0)::bigint FROM public.cdc_consumer_progress WHERE schema_name = $1",
            &[&schema],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_on_postgres() {
    let Some(pg) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let client = postgres_client(&pg).await;
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    let (a, b) = (format!("crash_ref_{tag}"), format!("crash_run_{tag}"));
    let dir = tempfile::tempdir().unwrap();
    let ref_uri = build_storage(&dir.path().join("a"), &a).await;
    let run_uri = build_storage(&dir.path().join("b"), &b).await;
    let st = consumer(&ref_uri, &pg, "256").status().unwrap();
    assert!(st.success());
    let total = pg_applied(&client, &a).await;
    kill_and_finish(&run_uri, &pg, total, || pg_applied(&client, &b)).await;
    assert_eq!(dump(&pg, &b).await, dump(&pg, &a).await);
}

async fn my_applied(pool: &mysql_async::Pool, schema: &str) -> i64 {
    use mysql_async::prelude::Queryable;
    let Ok(mut c) = pool.get_conn().await else {
        return 0;
    };
    c.exec_first::<Option<i64>, _, _>(
        "SELECT CAST(sum(file_index) AS SIGNED) FROM cdc_consumer_progress WHERE schema_name = ?",
        (schema,),
    )
    .await
    .ok()
    .flatten()
    .flatten()
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_on_mariadb() {
    let Some(my) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    let pool = mysql_async::Pool::from_url(&my).unwrap();
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    let (a, b) = (format!("crash_ref_{tag}"), format!("crash_run_{tag}"));
    let dir = tempfile::tempdir().unwrap();
    let ref_uri = build_storage(&dir.path().join("a"), &a).await;
    let run_uri = build_storage(&dir.path().join("b"), &b).await;
    let st = consumer(&ref_uri, &my, "256").status().unwrap();
    assert!(st.success());
    let total = my_applied(&pool, &a).await;
    kill_and_finish(&run_uri, &my, total, || my_applied(&pool, &b)).await;
    assert_eq!(dump(&my, &b).await, dump(&my, &a).await);
}

/// The race a SIGKILL can leave on a server downstream: the killed consumer had sent `COMMIT`
/// and its backend commits after the restarted consumer read the progress record, so the new
/// consumer applies the same unit again. Here consumer A reads the progress record, consumer B
/// then applies every unit (one per stream), and A applies them after: each must be a no-op.
async fn late_commit(down: &str, schema: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    std::fs::create_dir_all(&root).unwrap();
    let uri = format!(
        "file://{}?protocol=csv&include-commit-ts=true",
        root.display()
    );
    let mut w = Writer::new(&uri);
    let mut nopk = two_cols(schema, "nopk", ts(1));
    nopk.columns[0].primary_key = false;
    w.schema(&nopk, "", DdlKind::CreateTable).await;
    w.file(&nopk, &[(ts(5), vec![ins(1, "x"), ins(2, "y")])])
        .await;
    w.checkpoint(ts(6)).await;
    let open = || async {
        ReplayerBuilder::new(&uri, down)
            .once()
            .build()
            .await
            .unwrap()
    };
    let (cfg_a, late) = open().await; // has read the (empty) progress record
    let (cfg_b, b) = open().await;
    cdc_consumer::run(&cfg_b, b).await.unwrap();
    cdc_consumer::run(&cfg_a, late).await.unwrap();
}

fn tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_committed_after_the_progress_was_read_is_not_applied_twice_on_postgres() {
    let Some(pg) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let schema = format!("late_commit_{}", tag());
    late_commit(&pg, &schema).await;
    let n = dump(&pg, &schema).await.len() as i64;
    assert_eq!(n, 2, "the file's two rows, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_committed_after_the_progress_was_read_is_not_applied_twice_on_mariadb() {
    let Some(my) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    let schema = format!("late_commit_{}", tag());
    late_commit(&my, &schema).await;
    let n = Some(dump(&my, &schema).await.len() as i64);
    assert_eq!(n, Some(2), "the file's two rows, once");
}
