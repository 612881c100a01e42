//! The consumer over a misbehaving store: retryable errors on every call, random latency, and
//! eventually consistent listings that leave out young objects, while a writer keeps adding
//! files, date directories, a second stream and a DDL. Rounds that fail are retried; nothing is
//! skipped, nothing applied twice, and the DDL lands between the rows of its two versions.

use crate::support;

use cdc_common::testing::{Fault, FaultStore, Op, Rule};
use cdc_common::{ColumnDef, ColumnType, DdlKind, RowChange, TableDef, TableName, Ts, Value};
use cdc_consumer::backend::sqlite::SqliteDownstream;
use cdc_consumer::backend::Downstream;
use cdc_consumer::config::TableFilter;
use cdc_consumer::discovery::{Discovery, Upstream};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::{Replayer, RoundOutcome};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// How long the store's listings may leave an object out, and the consumer's `listing-lag`.
const LAG: Duration = Duration::from_millis(150);

struct Consumer {
    replayer: Replayer,
    store: FaultStore,
    failed_rounds: u64,
    rounds: u64,
}

impl Consumer {
    async fn open(w: &Writer, db: &std::path::Path) -> Consumer {
        let store = FaultStore::new(Arc::clone(&w.store));
        store.add_rule(Rule::any("", Fault::Fail { retryable: true }).probability(0.1));
        store.add_rule(Rule::any(
            "",
            Fault::RandomDelay {
                min: Duration::ZERO,
                max: Duration::from_millis(3),
            },
        ));
        store.add_rule(Rule::new(
            Op::List,
            "",
            Fault::PartialList {
                hide: 0.5,
                younger_than: Some(LAG),
            },
        ));
        let metrics = Metrics::new();
        let up = Upstream::new(Arc::new(store.clone()), metrics.clone())
            .with_retry(2, Duration::from_millis(1));
        let disc = Discovery::new(up, w.cfg, TableFilter::all()).with_listing_lag(LAG);
        let down = SqliteDownstream::open(db, 64).unwrap();
        let replayer = Replayer::new(
            disc,
            Box::new(down),
            &w.opts,
            cdc_consumer::quarantine::BadFilePolicy::Stop,
            cdc_consumer::replay::ProgressRead::Settled,
            metrics,
            Arc::new(Mutex::new(Health::default())),
        )
        .await
        .unwrap();
        Consumer {
            replayer,
            store,
            failed_rounds: 0,
            rounds: 0,
        }
    }

    /// One round; a failed one is counted and left for the next round to redo.
    async fn round(&mut self) -> Option<u64> {
        self.rounds += 1;
        let RoundOutcome {
            record: rec,
            error: err,
            ..
        } = self.replayer.round().await;
        match err {
            Some(_) => {
                self.failed_rounds += 1;
                None
            }
            None => Some(rec.applied_ts),
        }
    }
}

/// The downstream through its read-back.
fn read_back(db: &std::path::Path) -> SqliteDownstream {
    SqliteDownstream::open(db, 1).unwrap()
}

fn ids(db: &std::path::Path) -> Vec<i64> {
    let id = [ColumnDef::new("id", ColumnType::BigInt).pk()];
    futures::executor::block_on(read_back(db).read_rows(&TableName::new("db", "t"), &id))
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect()
}

fn columns(db: &std::path::Path) -> Vec<String> {
    futures::executor::block_on(read_back(db).read_columns(&TableName::new("db", "t"))).unwrap()
}

fn with_x(def: &TableDef, version: Ts) -> TableDef {
    let mut d = def.clone();
    d.version = version;
    d.columns.push(ColumnDef::new("x", ColumnType::Int));
    d
}

fn ins3(id: i64, name: &str) -> RowChange {
    RowChange::Insert {
        after: vec![
            Value::Int(id),
            Value::String(name.into()),
            Value::Int(id * 10),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_latency_and_lagging_listings_lose_and_repeat_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("down.db");
    let name = format!("store-faults-{}", std::process::id());
    let mut w = Writer::new(&format!(
        "memory://{name}?protocol=csv&include-commit-ts=true&date-separator=day"
    ));
    let mut c = Consumer::open(&w, &db).await;
    let mut expected = BTreeSet::new();

    // Version 1; ts(0) is 2023-11-14 22:13:20 UTC, ts(7000) the next day.
    let t1 = two_cols("db", "t", ts(1));
    w.schema(
        &t1,
        "CREATE TABLE t (id INT, name VARCHAR(64))",
        DdlKind::CreateTable,
    )
    .await;
    let mut last = ts(1);
    for (day, base) in [(0u64, 0i64), (7000, 100)] {
        for i in 0..5u64 {
            let at = ts(day + 2 + i);
            for (d, off) in [("a", 0i64), ("b", 50)] {
                let id = base + off + i as i64;
                w.file_of(&t1, Some(d), &[(at, vec![ins(id, d)])]).await;
                expected.insert(id);
            }
            w.checkpoint(at).await;
            last = at;
            c.round().await;
        }
    }
    // Version 2 (a new column): both streams move on after the DDL.
    let t2 = with_x(&t1, ts(7100));
    w.schema(&t2, "ALTER TABLE t ADD COLUMN x INT", DdlKind::AddColumn)
        .await;
    for i in 0..5u64 {
        let at = ts(7101 + i);
        for (d, off) in [("a", 200i64), ("b", 250)] {
            let id = off + i as i64;
            w.file_of(&t2, Some(d), &[(at, vec![ins3(id, d)])]).await;
            expected.insert(id);
        }
        w.checkpoint(at).await;
        last = at;
        c.round().await;
    }

    // Rounds until everything up to the last checkpoint is applied (bounded).
    let mut done = false;
    for _ in 0..400 {
        if c.round().await == Some(last.0) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seed = c.store.seed();
    assert!(done, "not applied after {} rounds (seed {seed})", c.rounds);
    assert!(
        c.store.failures() > 0,
        "no error was injected (seed {seed})"
    );
    assert!(
        c.store.hidden_entries() > 0,
        "no listing left anything out (seed {seed})"
    );
    let got: Vec<i64> = ids(&db);
    let want: Vec<i64> = expected.into_iter().collect();
    assert_eq!(got, want, "seed {seed}");
    assert_eq!(columns(&db), vec!["id", "name", "x"], "seed {seed}");
    // A few more rounds change nothing.
    for _ in 0..3 {
        c.round().await;
    }
    assert_eq!(ids(&db), want, "seed {seed}");
    eprintln!(
        "rounds {} (failed {}), injected failures {}, hidden listing entries {}",
        c.rounds,
        c.failed_rounds,
        c.store.failures(),
        c.store.hidden_entries()
    );
}

/// A round whose discovery fails after reading a newer checkpoint reports no table applied
/// beyond what the last completed discovery knew: a table with a new file below the new
/// checkpoint, not read yet, is not counted as applied through it (`/health`, the round
/// record, `/wait`). Failing before it changed the catalog, it keeps the summary chain.
#[tokio::test]
async fn a_round_whose_discovery_fails_claims_no_applied_ts_it_did_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut r, store, health) =
        settled_over_faults("faults-discovery-fails", &dir.path().join("d.db")).await;

    // t1 gets a row at 15 and the checkpoint moves to 20; every later read fails.
    let t1 = two_cols("db1", "t1", ts(1));
    w.file(&t1, &[(ts(15), vec![ins(15, "new")])]).await;
    w.checkpoint(ts(20)).await;
    store.add_rule(Rule::new(
        Op::Get,
        "changes",
        Fault::Fail { retryable: false },
    ));
    store.add_rule(Rule::new(Op::List, "", Fault::Fail { retryable: false }));
    let failed = r.round().await;
    assert!(failed.error.is_some(), "discovery fails");
    assert!(
        failed.record.applied_ts < ts(15).0,
        "t1's row at 15 is not applied, yet the round says {} (15 is {})",
        failed.record.applied_ts,
        ts(15).0
    );
    let shown = health.lock().unwrap().applied_ts;
    assert!(shown.is_some_and(|a| a < ts(15).0), "{shown:?}");

    // The store answers again: the round failed before it changed the catalog (at the change
    // summary), so the next one is still a summary round, and applies t1's row.
    store.clear_rules();
    let next = r.round().await;
    assert!(next.error.is_none(), "{:?}", next.error);
    assert!(next.record.discovery.summary, "{:?}", next.record.discovery);
    assert_eq!(next.record.rows(), 1);
    assert_eq!(next.record.applied_ts, ts(20).0);
}

/// Four tables of three files each (checkpoint 10) in the memory store `name`, written by a
/// sink keeping the change summary, and a replayer of it through a fault store (no fault yet)
/// into the SQLite file `db`, idle rounds on as `storage-consumer` has them, that has applied
/// them and read the checkpoint again idle: the writer, the replayer, its store and `/health`.
async fn settled_over_faults(
    name: &str,
    db: &std::path::Path,
) -> (Writer, Replayer, FaultStore, Arc<Mutex<Health>>) {
    let w = three_files_per_table_in(
        Writer::new(&format!(
            "memory://{name}?protocol=csv&include-commit-ts=true"
        ))
        .with_change_summary(),
        4,
    )
    .await;
    let store = FaultStore::new(Arc::clone(&w.store));
    let metrics = Metrics::new();
    let up = Upstream::new(Arc::new(store.clone()), metrics.clone())
        .with_retry(1, Duration::from_millis(1));
    let disc = Discovery::new(up, w.cfg, TableFilter::all()).with_idle_rounds(true);
    let health = Arc::new(Mutex::new(Health::default()));
    let mut r = Replayer::new(
        disc,
        Box::new(SqliteDownstream::open(db, 64).unwrap()),
        &w.opts,
        cdc_consumer::quarantine::BadFilePolicy::Stop,
        cdc_consumer::replay::ProgressRead::Settled,
        metrics,
        Arc::clone(&health),
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let out = r.round().await;
        assert!(out.error.is_none(), "{:?}", out.error);
    }
    let idle = r.round().await;
    assert!(idle.record.discovery.idle);
    assert_eq!(idle.record.applied_ts, ts(10).0);
    (w, r, store, health)
}

/// A round that read a newer checkpoint and failed at the change summary, then a `metadata`
/// read back lower (12, where a step of the summary ends): the chain from the last complete
/// round (10) reaches 12 but not the catalog's 20, so the next round lists everything; a
/// summary round there would not read t1 (its row at 15 is in the step 12 -> 20) and yet
/// count it applied through 20.
#[tokio::test]
async fn a_checkpoint_read_lower_after_a_failed_round_makes_the_next_round_full() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut r, store, _) =
        settled_over_faults("faults-checkpoint-back", &dir.path().join("d.db")).await;

    // Steps 10 -> 12 (nothing) and 12 -> 20 (t1's row at 15) in the summary.
    w.checkpoint(ts(12)).await;
    let t1 = two_cols("db1", "t1", ts(1));
    w.file(&t1, &[(ts(15), vec![ins(15, "new")])]).await;
    w.checkpoint(ts(20)).await;
    let fault = store.add_rule(Rule::new(
        Op::Get,
        "changes",
        Fault::Fail { retryable: false },
    ));
    assert!(r.round().await.error.is_some(), "the summary read fails");
    store.remove_rule(fault);
    w.checkpoint_without_summary(ts(12)).await;
    let out = r.round().await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(!out.record.discovery.summary, "{:?}", out.record.discovery);
    assert_eq!(out.record.rows(), 1, "t1's row, found by listing");
}

/// A round that lists a new dispatcher's index file and then fails reading it: the catalog
/// holds the new entry (at file 0) though nothing else changed, and the round must still say
/// the catalog grew (debug builds check every round's answer against a hash of the catalog;
/// this round tripped it). The next round reads the index and applies the file.
#[tokio::test]
async fn a_round_that_lists_an_index_file_and_fails_reading_it_says_the_catalog_grew() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut r, store, _) =
        settled_over_faults("faults-new-index", &dir.path().join("d.db")).await;
    let t1 = two_cols("db1", "t1", ts(1));
    w.file_of(&t1, Some("d2"), &[(ts(15), vec![ins(15, "new")])])
        .await;
    w.checkpoint(ts(20)).await;
    let fault = store.add_rule(Rule::new(
        Op::Get,
        "CDC_d2.index",
        Fault::Fail { retryable: false },
    ));
    let failed = r.round().await;
    assert!(failed.error.is_some(), "the index read fails");
    assert!(failed.found_new, "{:?}", failed.record.discovery);
    store.remove_rule(fault);
    let out = r.round().await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.record.rows(), 1, "the new dispatcher's row");
}
