//! The first round of a process draws its conclusions (final versions, closed directories,
//! complete barriers) from its recursive listing when there is no listing lag: its phase 0
//! read the checkpoint before the listing started, and everything at or below that
//! checkpoint was in storage by then. So a cold start applies a table's history below the
//! checkpoint, DDLs included, in one round, and the round after it is idle. Conclusions about
//! versions above the checkpoint still wait (a restarted sink may write below them again:
//! `sink_restart_replays.rs`, whose first round reads a checkpoint below the DDL).

use crate::support;

use cdc_common::{ColumnDef, ColumnType, DdlKind, RowChange, Value};
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::{Replayer, RoundOutcome};
use support::*;

/// `db.t` at version 1 with rows 1 and 2, an ADD COLUMN at ts 10, row 3 of version 2 at
/// ts 11; the checkpoint at `checkpoint`.
async fn history(uri: &str, checkpoint: u64) -> Writer {
    let mut w = Writer::new(uri);
    let v1 = two_cols("db", "t", ts(1));
    w.schema(&v1, "", DdlKind::CreateTable).await;
    w.file(&v1, &[(ts(2), vec![ins(1, "a"), ins(2, "b")])])
        .await;
    w.file(&v1, &[(ts(3), vec![upd(2, "b", "bb")])]).await;
    let mut v2 = v1.clone();
    v2.version = ts(10);
    v2.columns.push(ColumnDef::new("x", ColumnType::BigInt));
    w.schema(&v2, "ALTER TABLE t ADD COLUMN x BIGINT", DdlKind::AddColumn)
        .await;
    let row3 = RowChange::Insert {
        after: vec![Value::Int(3), Value::String("c".into()), Value::Int(7)],
    };
    w.file(&v2, &[(ts(11), vec![row3])]).await;
    w.checkpoint(ts(checkpoint)).await;
    w
}

/// A fresh SQLite downstream replaying a storage, after its first round.
struct FirstRound {
    /// Holds the downstream's directory (bind it: dropping it deletes the file).
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    r: Replayer,
    m: Metrics,
    /// The first round (it did not fail) and its LIST calls.
    first: RoundOutcome,
    lists: u64,
}

async fn first_round(w: &Writer) -> FirstRound {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let (mut r, m, _) = start(&w.uri, &sqlite_uri(&db), &[]).await;
    let (first, lists, _) = counted(&mut r, &m).await;
    assert!(first.error.is_none(), "{:?}", first.record.fatal);
    FirstRound {
        _dir: dir,
        db,
        r,
        m,
        first,
        lists,
    }
}

#[tokio::test]
async fn a_cold_start_applies_a_ddl_and_the_rows_after_it_in_its_first_round() {
    let w = history(
        "memory://first-round-1?protocol=csv&include-commit-ts=true",
        12,
    )
    .await;
    let FirstRound {
        _dir,
        db,
        mut r,
        m,
        first,
        lists,
    } = first_round(&w).await;
    assert!(first.record.discovery.full_listing);
    assert_eq!(lists, 1, "one recursive listing");
    // version 1 is final, the ADD COLUMN's barrier complete: the DDL and row 3 apply too
    assert_eq!(first.record.rows(), 4);
    assert_eq!(
        id_names(&db, "db.t"),
        vec![s(1, "a"), s(2, "bb"), s(3, "c")]
    );
    let t = &r.catalog().tables[&cdc_common::TableName::new("db", "t")];
    assert!(t.versions[&ts(1)].is_final, "version 1 is final");
    assert!(t.complete_below >= ts(10), "{:?}", t.complete_below);

    // settled by the first round: the next one reads `metadata` and stops
    let (second, lists, gets) = counted(&mut r, &m).await;
    assert!(
        second.record.discovery.idle,
        "{:?}",
        second.record.discovery
    );
    assert_eq!((lists, gets), (0, 1));
}

#[tokio::test]
async fn a_first_round_below_the_ddl_leaves_the_older_version_open() {
    // The checkpoint is below the ADD COLUMN: a sink restarted from it may still write rows of
    // version 1, so the first round marks nothing final and completes no barrier at ts 10.
    let w = history(
        "memory://first-round-2?protocol=csv&include-commit-ts=true",
        9,
    )
    .await;
    let FirstRound { _dir, db, r, .. } = first_round(&w).await;
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a"), s(2, "bb")]);
    let t = &r.catalog().tables[&cdc_common::TableName::new("db", "t")];
    assert!(!t.versions[&ts(1)].is_final, "version 1 stays open");
    assert!(t.complete_below < ts(10), "{:?}", t.complete_below);
}

#[tokio::test]
async fn a_listing_that_fails_midway_is_listed_again_and_the_round_completes() {
    use cdc_common::testing::fault_store::{Fault, FaultStore, Op, Rule};
    use cdc_consumer::config::TableFilter;
    use cdc_consumer::discovery::{Discovery, Upstream};
    use object_store::ObjectStoreExt;
    use std::sync::Arc;

    // The round reads the first round's listing while it goes on: the names of the attempt
    // that failed were already taken when the listing is made again from the start. An
    // object outside the layout, listed first, shows that they were: it is warned about
    // once per attempt that listed it.
    let tables = 30;
    let w = three_files_per_table(
        "memory://first-round-3?protocol=csv&include-commit-ts=true",
        tables,
    )
    .await;
    w.store
        .put(&"a-stray-object".into(), b"x".to_vec().into())
        .await
        .unwrap();
    let store = FaultStore::new(Arc::clone(&w.store));
    store.add_rule(Rule::new(Op::List, "", Fault::FailListAfter { entries: 40 }).times(1));
    let metrics = Metrics::new();
    let up = Upstream::new(Arc::new(store.clone()), metrics.clone())
        .with_retry(2, std::time::Duration::from_millis(1));
    let mut d = Discovery::new(up, w.cfg, TableFilter::all());
    let stats = d
        .round()
        .await
        .expect("the retried listing completes the round");
    assert_eq!(
        metrics.list_calls.get(),
        2,
        "one failed attempt, one whole listing"
    );
    assert_eq!(
        store.failures(),
        1,
        "the store's log has the cut listing failed"
    );
    assert_eq!(d.catalog().tables.len(), tables);
    assert!(
        d.catalog().tables.values().all(|t| t.versions.len() == 1),
        "every table has its one version"
    );
    assert!(stats.full_listing);
    let warnings = d.take_warnings();
    assert_eq!(
        warnings,
        vec!["ignoring object `a-stray-object` (not part of the layout)"; 2],
        "the failed attempt's names were handled, then handled again"
    );
}
