//! The audit record as data: every round is stored in the downstream (`cdc_consumer_rounds`, or
//! stdout's JSON-lines file), with its consumer start id, phases reached, per-table counts and
//! its fatal error apart from warnings; a restarted consumer still shows the old rounds at
//! `/rounds`; `--keep-rounds` bounds what is kept. PostgreSQL and MariaDB run when
//! `scripts/servers.sh` started them.

use crate::support;

use cdc_common::DdlKind;
use cdc_consumer::freshness::{Health, Phase, RoundRecord};
use cdc_consumer::metrics::Metrics;
use std::sync::{Arc, Mutex};
use support::*;

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), n % 1_000_000_000)
}

/// The round records a replayer's health holds for one consumer start id, oldest first.
fn rounds_of(health: &Arc<Mutex<Health>>, start_id: &str) -> Vec<RoundRecord> {
    let h = health.lock().unwrap();
    h.rounds
        .iter()
        .filter(|r| r.start_id == start_id)
        .cloned()
        .collect()
}

/// Two rounds (one applying, one failing on a corrupt file), then a restart: the new
/// consumer's health holds the old rounds, as stored.
async fn survives_restart(down: &str, extra: &[&str]) -> (Arc<Mutex<Health>>, String) {
    let s = unique("cdcr");
    let mut w = Writer::new(&format!("memory://{s}?protocol=csv&include-commit-ts=true"));
    let t = two_cols(&s, "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a"), ins(2, "b")])]).await;
    w.checkpoint(ts(3)).await;
    let health = Arc::new(Mutex::new(Health::default()));
    let mut r = ReplayerBuilder::new(&w.uri, down)
        .args(extra)
        .health(health.clone())
        .replayer()
        .await
        .unwrap();
    let ok = r.round().await;
    assert!(ok.error.is_none());
    let first_id = ok.record.start_id.clone();
    assert!(!first_id.is_empty());
    let broken = w.file(&t, &[(ts(4), vec![ins(3, "c")])]).await;
    w.put(&broken, b"\"I\",broken".to_vec()).await;
    w.checkpoint(ts(5)).await;
    let failed = r.round().await;
    assert!(failed.error.is_some());
    drop(r);

    let health2 = Arc::new(Mutex::new(Health::default()));
    let r2 = ReplayerBuilder::new(&w.uri, down)
        .args(extra)
        .health(health2.clone())
        .replayer()
        .await
        .unwrap();
    let old = rounds_of(&health2, &first_id);
    assert_eq!(old.len(), 2, "{old:?}");
    assert_eq!(old[0].round, 1);
    assert_eq!(
        old[0].phases,
        vec![Phase::Discover, Phase::Read, Phase::Apply, Phase::Commit]
    );
    assert_eq!(old[0].tables[&format!("{s}.t")].rows, 2);
    assert_eq!(old[0].tables[&format!("{s}.t")].ddls, 1);
    assert!(old[0].fatal.is_none());
    assert_eq!(old[1].round, 2);
    assert_eq!(old[1].phases, vec![Phase::Discover, Phase::Read]);
    let fatal = old[1].fatal.clone().unwrap();
    assert!(fatal.contains("CDC00000000000000000002.csv"), "{fatal}");
    // The fatal error stays apart; the only warning names the table it stopped (issue 20).
    assert_eq!(old[1].warnings.len(), 1, "{:?}", old[1].warnings);
    assert!(
        old[1].warnings[0].starts_with(&format!("table `{s}.t` is stuck")),
        "{:?}",
        old[1].warnings
    );
    assert!(old[1].started_at_ms <= old[1].ended_at_ms);
    drop(r2);
    (health2, first_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_survive_a_restart_on_sqlite_and_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let down = format!("sqlite://{}", dir.path().join("out.db").display());
    let (health, first_id) = survives_restart(&down, &[]).await;
    let addr = cdc_consumer::http::serve("127.0.0.1:0".parse().unwrap(), health, Metrics::new())
        .await
        .unwrap();
    let rounds: serde_json::Value =
        serde_json::from_str(&http_get_ok(addr, "/rounds?limit=1").await).unwrap();
    let rounds = rounds.as_array().unwrap();
    assert_eq!(rounds.len(), 1);
    assert_eq!(rounds[0]["start_id"], first_id.as_str());
    assert_eq!(rounds[0]["round"], 2);
    assert_eq!(rounds[0]["phases"], serde_json::json!(["discover", "read"]));
    let page = http_get_ok(addr, "/").await;
    assert!(page.contains("id=\"recent-rounds\""), "{page}");
    assert!(page.contains(&first_id), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_survive_a_restart_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let progress = dir.path().join("p.json");
    let progress = progress.to_str().unwrap();
    survives_restart("stdout://", &["--progress-file", progress]).await;
    assert!(dir.path().join("p.json.rounds.jsonl").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_survive_a_restart_on_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    survives_restart(&uri, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_survive_a_restart_on_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    survives_restart(&uri, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_rounds_bounds_the_stored_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let down = format!("sqlite://{}", db.display());
    let w = Writer::new("memory://rounds-keep?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.checkpoint(ts(2)).await;
    let mut r = ReplayerBuilder::new(&w.uri, &down)
        .args(&["--keep-rounds", "3"])
        .replayer()
        .await
        .unwrap();
    let mut last = 0;
    for _ in 0..6 {
        let out = r.round().await;
        assert!(out.error.is_none());
        last = out.record.round;
        // Distinct end times, so retention by end time is exact.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    drop(r);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rounds: Vec<i64> = conn
        .prepare("SELECT round FROM cdc_consumer_rounds ORDER BY round")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rounds, vec![last as i64 - 2, last as i64 - 1, last as i64]);
}

/// Storage of one table `<schema>.t` with one one-row file, checkpoint at ts(10): a schema of
/// the test's own on a shared server.
async fn one_row_in(schema: &str) -> Writer {
    let mut w = Writer::new(&format!(
        "memory://{schema}?protocol=csv&include-commit-ts=true"
    ));
    let t = two_cols(schema, "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "x")])]).await;
    w.checkpoint(ts(10)).await;
    w
}

/// The statement that finds where `--keep-rounds` cuts (run by every round's save).
const CUT: &str = "SELECT ended_at_ms FROM cdc_consumer_rounds ORDER BY ended_at_ms DESC \
                   LIMIT 1 OFFSET 3";

/// Each round's save keeps the newest `--keep-rounds` records by end time. Without an index on
/// `ended_at_ms` finding the cut read and sorted every record kept (15 ms a round in SQLite at
/// the default 10,000): the index is there, on a rounds table an older version created
/// without it too, and the cut is found through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rounds_kept_are_cut_through_an_index_on_their_end_time_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    // the rounds table as an older version created it
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE cdc_consumer_rounds (start_id TEXT NOT NULL, round INTEGER NOT NULL,
             started_at_ms INTEGER NOT NULL, ended_at_ms INTEGER NOT NULL, fatal TEXT,
             record TEXT NOT NULL, PRIMARY KEY (start_id, round))",
        )
        .unwrap();
    let w = one_table_one_file("memory://rounds-index?protocol=csv&include-commit-ts=true").await;
    let mut r = ReplayerBuilder::new(&w.uri, &format!("sqlite://{}", db.display()))
        .replayer()
        .await
        .unwrap();
    ok_rounds(&mut r, 2).await;
    drop(r);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {CUT}"))
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        plan.iter()
            .any(|p| p.contains("INDEX cdc_consumer_rounds_ended_at")),
        "{plan:?}"
    );
    assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
}

/// A fresh PostgreSQL database on the test server (owned by `owner`, else by the server's
/// user) holding the rounds table as an older version created it, without the index, made by
/// the server's user, who may use it as `role` too: (the server's client, the new
/// database's URI as the server's user, and its name). Dropped by [`drop_database`].
async fn database_with_old_rounds(
    base: &str,
    tag: u128,
    owner: Option<&str>,
) -> (tokio_postgres::Client, String, String) {
    let admin = postgres_client(base).await;
    let db = format!("rounds_db_{tag}");
    let owned = owner.map(|o| format!(" OWNER {o}")).unwrap_or_default();
    admin
        .batch_execute(&format!("CREATE DATABASE {db}{owned}"))
        .await
        .unwrap();
    let uri = format!("{}/{db}", &base[..base.rfind('/').unwrap()]);
    postgres_client(&uri)
        .await
        .batch_execute(
            "CREATE TABLE public.cdc_consumer_rounds (start_id TEXT NOT NULL,
             round BIGINT NOT NULL, started_at_ms BIGINT NOT NULL, ended_at_ms BIGINT NOT NULL,
             fatal TEXT, record TEXT NOT NULL, PRIMARY KEY (start_id, round))",
        )
        .await
        .unwrap();
    (admin, uri, db)
}

/// Drops a database [`database_with_old_rounds`] made (one statement a query: DROP DATABASE
/// refuses a transaction block).
async fn drop_database(admin: &tokio_postgres::Client, db: &str) {
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
}

/// The same index in PostgreSQL, created by the first save that finds it missing on a rounds
/// table an older version created (in a database of the test's own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rounds_kept_are_cut_through_an_index_on_their_end_time_in_postgres() {
    let Some(base) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let tag = unique_tag() % 1_000_000_000;
    let (admin, uri, db) = database_with_old_rounds(&base, tag, None).await;
    let w = one_row_in(&format!("rounds_index_{tag}")).await;
    let mut r = ReplayerBuilder::new(&w.uri, &uri).replayer().await.unwrap();
    ok_rounds(&mut r, 1).await;
    drop(r);
    let defs: Vec<String> = postgres_client(&uri)
        .await
        .query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' \
             AND tablename = 'cdc_consumer_rounds'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    drop_database(&admin, &db).await;
    assert!(
        defs.iter()
            .any(|d| d.contains("cdc_consumer_rounds_ended_at") && d.contains("(ended_at_ms)")),
        "{defs:?}"
    );
}

/// A role that may read and write the round records but does not own their table (a DBA made
/// it, in an older version's shape without the index, and granted the rest) cannot create
/// the index: it is warned once and goes on, and every round is still stored (review
/// helper-75: each save failed on the refused CREATE INDEX, so none was stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_index_the_round_records_still_stores_them_on_postgres() {
    let Some(base) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    let tag = unique_tag() % 1_000_000_000;
    let role = format!("rounds_writer_{tag}");
    postgres_client(&base)
        .await
        .batch_execute(&format!("CREATE ROLE {role} LOGIN PASSWORD 'pw'"))
        .await
        .unwrap();
    // the database is the role's (it creates its own bookkeeping), the rounds table is not
    let (admin, uri, db) = database_with_old_rounds(&base, tag, Some(&role)).await;
    let owner = postgres_client(&uri).await;
    owner
        .batch_execute(&format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON public.cdc_consumer_rounds TO {role}"
        ))
        .await
        .unwrap();
    // `scheme://user@host:port/database` -> the same database as the role
    let (scheme, rest) = uri.split_once("://").unwrap();
    let host = &rest[rest.find('@').unwrap() + 1..];
    let as_role = format!("{scheme}://{role}:pw@{host}");
    let w = one_row_in(&format!("rounds_role_{tag}")).await;
    let mut r = ReplayerBuilder::new(&w.uri, &as_role)
        .replayer()
        .await
        .unwrap();
    ok_rounds(&mut r, 2).await;
    drop(r);
    let stored: i64 = owner
        .query_one("SELECT count(*) FROM public.cdc_consumer_rounds", &[])
        .await
        .unwrap()
        .get(0);
    drop(owner);
    drop_database(&admin, &db).await;
    admin
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
    assert_eq!(stored, 2, "both rounds' records stored without the index");
}
