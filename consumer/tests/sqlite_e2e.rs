//! End-to-end replays into SQLite: fixtures written as the sink writes them, replayed with the
//! library entry points exactly as the binary runs them.

use crate::support;

use cdc_common::{ColumnDef, ColumnType, DdlKind, TableName, Value};
use cdc_consumer::backend::sqlite::SqliteDownstream;
use cdc_consumer::backend::Downstream;
use cdc_consumer::replay::RoundOutcome;
use cdc_consumer::Error;
use std::path::Path;
use support::*;

async fn replay(uri: &str, db: &Path, extra: &[&str]) -> cdc_consumer::Result<()> {
    ReplayerBuilder::sqlite(uri, db)
        .once()
        .args(extra)
        .run()
        .await
}

/// Rows of SQLite table `schema.table` (split at the first dot) through the backend's
/// read-back, the given columns as text, ordered by `id`.
fn read_back(db: &Path, table: &str, cols: &[&str]) -> Vec<Vec<Option<String>>> {
    let (schema, table) = table.split_once('.').unwrap();
    let mut defs = vec![ColumnDef::new("id", ColumnType::BigInt).pk()];
    defs.extend(cols.iter().map(|c| ColumnDef::new(*c, ColumnType::Text)));
    let mut d = SqliteDownstream::open(db, 1).unwrap();
    futures::executor::block_on(d.read_rows(&TableName::new(schema, table), &defs)).unwrap()
}

fn table_names(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT IN ('cdc_consumer_progress', 'cdc_consumer_rounds') ORDER BY name")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn csv_with_commit_ts_replays_inserts_updates_and_deletes() {
    let mut w = Writer::new("memory://e2e-basic?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(
        &t,
        "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(64))",
        DdlKind::CreateTable,
    )
    .await;
    w.file(
        &t,
        &[
            (ts(2), vec![ins(1, "a"), ins(2, "b")]),
            (ts(3), vec![ins(3, "c")]),
        ],
    )
    .await;
    w.file(&t, &[(ts(4), vec![upd(1, "a", "A"), del(2, "b")])])
        .await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "A"), s(3, "c")]);
    // A second run with nothing new changes nothing.
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "A"), s(3, "c")]);
    // New files are picked up from the recorded progress.
    w.file(&t, &[(ts(11), vec![ins(4, "d")])]).await;
    w.checkpoint(ts(12)).await;
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "A"), s(3, "c"), s(4, "d")]);
}

#[tokio::test]
async fn rows_above_the_checkpoint_wait_for_it() {
    let mut w = Writer::new("memory://e2e-ckpt?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(
        &t,
        &[(ts(2), vec![ins(1, "a")]), (ts(5), vec![ins(2, "b")])],
    )
    .await;
    w.file(&t, &[(ts(6), vec![ins(3, "c")])]).await;
    w.checkpoint(ts(3)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a")]);
    w.checkpoint(ts(5)).await;
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a"), s(2, "b")]);
    w.checkpoint(ts(9)).await;
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a"), s(2, "b"), s(3, "c")]);
}

#[tokio::test]
async fn add_and_rename_column_are_barriers() {
    let mut w = Writer::new("memory://e2e-alter?protocol=csv&include-commit-ts=true");
    let t1 = two_cols("db", "t", ts(1));
    w.schema(&t1, "", DdlKind::CreateTable).await;
    w.file(&t1, &[(ts(2), vec![ins(1, "a")])]).await;
    let mut t2 = t1.clone();
    t2.version = ts(3);
    t2.columns.push(ColumnDef::new("extra", ColumnType::BigInt));
    w.schema(
        &t2,
        "ALTER TABLE t ADD COLUMN extra BIGINT",
        DdlKind::AddColumn,
    )
    .await;
    w.file(
        &t2,
        &[(
            ts(4),
            vec![cdc_common::RowChange::Insert {
                after: vec![Value::Int(2), Value::String("b".into()), Value::Int(7)],
            }],
        )],
    )
    .await;
    let mut t3 = t2.clone();
    t3.version = ts(5);
    t3.columns[2].name = "more".into();
    w.schema(
        &t3,
        "ALTER TABLE t RENAME COLUMN extra TO more",
        DdlKind::RenameColumn {
            from: "extra".into(),
            to: "more".into(),
        },
    )
    .await;
    w.file(
        &t3,
        &[(
            ts(6),
            vec![cdc_common::RowChange::Insert {
                after: vec![Value::Int(3), Value::String("c".into()), Value::Int(9)],
            }],
        )],
    )
    .await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db, &[]).await.unwrap();
    let got: Vec<(i64, Option<i64>)> = read_back(&db, "db.t", &["more"])
        .into_iter()
        .map(|r| {
            let int = |v: &Option<String>| v.as_deref().map(|v| v.parse().unwrap());
            (int(&r[0]).unwrap(), int(&r[1]))
        })
        .collect();
    assert_eq!(got, vec![(1, None), (2, Some(7)), (3, Some(9))]);
}

#[tokio::test]
async fn rename_table_waits_for_the_old_tables_dml() {
    let mut w = Writer::new("memory://e2e-rename?protocol=csv&include-commit-ts=true");
    let old = two_cols("db", "old", ts(1));
    w.schema(&old, "", DdlKind::CreateTable).await;
    w.file(&old, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(3)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(table_names(&db), vec!["db.old"]);
    // DML on the old name just below the rename, then the rename, then DML on the new name.
    w.file(&old, &[(ts(4), vec![ins(2, "b")])]).await;
    let new = two_cols("db", "new", ts(5));
    w.schema(
        &new,
        "RENAME TABLE `db`.`old` TO `db`.`new`",
        DdlKind::RenameTable,
    )
    .await;
    w.file(&new, &[(ts(6), vec![upd(2, "b", "B"), ins(3, "c")])])
        .await;
    w.checkpoint(ts(10)).await;
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(table_names(&db), vec!["db.new"]);
    assert_eq!(
        id_names(&db, "db.new"),
        vec![s(1, "a"), s(2, "B"), s(3, "c")]
    );
}

#[tokio::test]
async fn drop_schema_waits_for_every_table_of_the_schema() {
    let mut w = Writer::new("memory://e2e-dropdb?protocol=csv&include-commit-ts=true");
    let a = two_cols("db", "a", ts(1));
    let b = two_cols("db", "b", ts(1));
    let keep = two_cols("other", "k", ts(1));
    for t in [&a, &b, &keep] {
        w.schema(t, "", DdlKind::CreateTable).await;
    }
    w.file(&a, &[(ts(2), vec![ins(1, "a")])]).await;
    w.file(&b, &[(ts(3), vec![ins(1, "b")])]).await;
    w.file(&keep, &[(ts(3), vec![ins(1, "k")])]).await;
    w.db_schema("db", ts(4), "DROP DATABASE db", DdlKind::DropSchema)
        .await;
    // Recreated after the drop.
    w.db_schema("db", ts(5), "CREATE DATABASE db", DdlKind::CreateSchema)
        .await;
    let a2 = two_cols("db", "a", ts(6));
    w.schema(
        &a2,
        "CREATE TABLE a (id INT PRIMARY KEY, name VARCHAR(64))",
        DdlKind::CreateTable,
    )
    .await;
    w.file(&a2, &[(ts(7), vec![ins(9, "new")])]).await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(table_names(&db), vec!["db.a", "other.k"]);
    assert_eq!(id_names(&db, "db.a"), vec![s(9, "new")]);
    assert_eq!(id_names(&db, "other.k"), vec![s(1, "k")]);
}

#[tokio::test]
async fn truncate_and_drop_table() {
    let mut w = Writer::new("memory://e2e-trunc?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    let mut t2 = t.clone();
    t2.version = ts(3);
    w.schema(&t2, "TRUNCATE TABLE t", DdlKind::TruncateTable)
        .await;
    w.file(&t2, &[(ts(4), vec![ins(2, "b")])]).await;
    let d = two_cols("db", "gone", ts(1));
    w.schema(&d, "", DdlKind::CreateTable).await;
    w.file(&d, &[(ts(2), vec![ins(1, "a")])]).await;
    let mut d2 = d.clone();
    d2.version = ts(5);
    w.schema(&d2, "DROP TABLE gone", DdlKind::DropTable).await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(2, "b")]);
    assert_eq!(table_names(&db), vec!["db.t"]);
}

#[tokio::test]
async fn table_without_primary_key_deletes_one_matching_row() {
    let mut w =
        Writer::new("memory://e2e-nopk?protocol=csv&include-commit-ts=true&output-old-value=true");
    let mut t = two_cols("db", "t", ts(1));
    t.columns[0].primary_key = false;
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a"), ins(1, "a"), ins(2, "b")])])
        .await;
    w.file(&t, &[(ts(3), vec![del(1, "a"), upd(2, "b", "B")])])
        .await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a"), s(2, "B")]);
}

#[tokio::test]
async fn canal_json_and_avro_replay_the_same_rows() {
    for (name, q) in [
        (
            "e2e-canal",
            "protocol=canal-json&enable-tidb-extension=true",
        ),
        ("e2e-avro", "protocol=avro"),
        ("e2e-csv-nots", "protocol=csv"),
    ] {
        let mut w = Writer::new(&format!("memory://{name}?{q}"));
        let t = two_cols("db", "t", ts(1));
        w.schema(&t, "", DdlKind::CreateTable).await;
        w.file(&t, &[(ts(2), vec![ins(1, "a"), ins(2, "b")])]).await;
        w.file(&t, &[(ts(3), vec![upd(1, "a", "x"), del(2, "b")])])
            .await;
        w.checkpoint(ts(10)).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("out.db");
        replay(&w.uri, &db, &[]).await.unwrap();
        assert_eq!(id_names(&db, "db.t"), vec![s(1, "x")], "{name}");
    }
}

#[tokio::test]
async fn tables_filter_keeps_only_matching_tables() {
    let mut w = Writer::new("memory://e2e-filter?protocol=csv&include-commit-ts=true");
    for n in ["a", "b"] {
        let t = two_cols("db", n, ts(1));
        w.schema(&t, "", DdlKind::CreateTable).await;
        w.file(&t, &[(ts(2), vec![ins(1, n)])]).await;
    }
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db, &["--tables", "db.b"]).await.unwrap();
    assert_eq!(table_names(&db), vec!["db.b"]);
}

#[tokio::test]
async fn wrong_protocol_or_index_width_is_a_mismatch_naming_both() {
    let mut w = Writer::new("memory://e2e-mismatch?protocol=canal-json&file-index-width=6");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let e = replay(
        "memory://e2e-mismatch?protocol=csv&file-index-width=6",
        &db,
        &[],
    )
    .await
    .unwrap_err();
    assert!(matches!(&e, Error::Mismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("csv") && msg.contains(".json"), "{msg}");
    let e = replay("memory://e2e-mismatch?protocol=canal-json", &db, &[])
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("file-index-width=20"), "{e}");
}

#[tokio::test]
async fn until_ts_stops_once_applied() {
    let mut w = Writer::new("memory://e2e-until?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(3)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let until = ts(3).0.to_string();
    replay(&w.uri, &db, &["--until-ts", &until]).await.unwrap();
    let later = ts(30).0.to_string();
    let e = replay(&w.uri, &db, &["--until-ts", &later])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UntilNotReached { .. }), "{e}");
}

#[tokio::test]
async fn rows_at_or_below_the_recorded_commit_ts_are_skipped() {
    // A table without key shows any duplicate.
    let mut w = Writer::new("memory://e2e-skip?protocol=csv&include-commit-ts=true");
    let mut t = two_cols("db", "t", ts(1));
    t.columns[0].primary_key = false;
    w.schema(&t, "", DdlKind::CreateTable).await;
    // A file straddling the checkpoint is applied in two parts.
    w.file(
        &t,
        &[(ts(2), vec![ins(1, "a")]), (ts(5), vec![ins(2, "b")])],
    )
    .await;
    w.checkpoint(ts(3)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a")]);
    // A restarted sink writes rows again from its checkpoint: ts 2 and 5 reappear in a new
    // file, followed by new rows.
    w.file(
        &t,
        &[
            (ts(2), vec![ins(1, "a")]),
            (ts(5), vec![ins(2, "b")]),
            (ts(6), vec![ins(3, "c")]),
        ],
    )
    .await;
    w.checkpoint(ts(10)).await;
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a"), s(2, "b"), s(3, "c")]);
}

#[tokio::test]
async fn a_refused_statement_names_table_file_and_statement_kind() {
    let mut w = Writer::new("memory://e2e-refused?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    let path = w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    // The downstream already has the table, with a column the rows do not fill.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE \"db.t\" (id INTEGER PRIMARY KEY, name TEXT, must TEXT NOT NULL)",
        )
        .unwrap();
    let e = replay(&w.uri, &db, &[]).await.unwrap_err();
    assert!(
        matches!(&e, Error::Downstream { table, file, kind, .. }
            if table == "db.t" && *file == path && kind == "upsert"),
        "{e}"
    );
}

#[tokio::test]
async fn several_dispatchers_and_date_directories_are_each_applied_in_order() {
    let mut w = Writer::new("memory://e2e-streams?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    let day = 86_400;
    // Dispatcher a writes ids 1.., dispatcher b ids 100..; both cross into the next day, where
    // file indexes restart at 1.
    for (i, sec) in [2, 3, day + 2, day + 3].into_iter().enumerate() {
        let i = i as i64;
        w.file_of(
            &t,
            Some("a"),
            &[(ts(sec), vec![ins(1 + i, "a"), upd(1 + i, "a", "A")])],
        )
        .await;
        w.file_of(&t, Some("b-2"), &[(ts(sec), vec![ins(100 + i, "b")])])
            .await;
    }
    w.checkpoint(ts(day + 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(
        id_names(&db, "db.t"),
        vec![s(1, "A"), s(2, "A"), s(100, "b"), s(101, "b")]
    );
    w.checkpoint(ts(day + 10)).await;
    replay(&w.uri, &db, &[]).await.unwrap();
    assert_eq!(
        id_names(&db, "db.t"),
        vec![
            s(1, "A"),
            s(2, "A"),
            s(3, "A"),
            s(4, "A"),
            s(100, "b"),
            s(101, "b"),
            s(102, "b"),
            s(103, "b")
        ]
    );
    let c = rusqlite::Connection::open(&db).unwrap();
    let streams: Vec<(String, String, i64)> = c
        .prepare("SELECT dispatcher, date_dir, file_index FROM cdc_consumer_progress WHERE dispatcher NOT IN ('#ddl', '#settled') ORDER BY 1")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        streams,
        vec![
            ("a".into(), "2023-11-15".into(), 2),
            ("b-2".into(), "2023-11-15".into(), 2)
        ]
    );
}

#[tokio::test]
async fn sink_options_can_come_from_a_config_file() {
    let mut w = Writer::new(
        "memory://e2e-config?protocol=canal-json&enable-tidb-extension=true&file-index-width=8",
    );
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("consumer.toml");
    std::fs::write(
        &cfg,
        "protocol = \"canal-json\"\nenable-tidb-extension = true\nfile-index-width = 8\n",
    )
    .unwrap();
    let db = dir.path().join("out.db");
    replay(
        "memory://e2e-config",
        &db,
        &["--config", cfg.to_str().unwrap()],
    )
    .await
    .unwrap();
    assert_eq!(id_names(&db, "db.t"), vec![s(1, "a")]);
}

#[tokio::test]
async fn partition_directories_are_separate_streams() {
    let mut w = Writer::new("memory://e2e-parts?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "p", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file_in(&t, Some(101), None, &[(ts(2), vec![ins(1, "a")])])
        .await;
    w.file_in(&t, Some(102), None, &[(ts(2), vec![ins(2, "b")])])
        .await;
    w.file_in(&t, Some(101), None, &[(ts(3), vec![upd(1, "a", "A")])])
        .await;
    w.checkpoint(ts(10)).await;
    let (_dir, db, mut r) = sqlite_replayer(&w.uri).await;
    for _ in 0..2 {
        assert!(r.round().await.error.is_none());
    }
    assert_eq!(id_names(&db, "db.p"), vec![s(1, "A"), s(2, "b")]);
    // A new partition appears while the replayer runs: found by the incremental listings.
    w.file_in(&t, Some(103), None, &[(ts(11), vec![ins(3, "c")])])
        .await;
    w.file_in(&t, Some(102), None, &[(ts(11), vec![del(2, "b")])])
        .await;
    w.checkpoint(ts(12)).await;
    let RoundOutcome {
        record: rec,
        error: err,
        ..
    } = r.round().await;
    assert!(err.is_none());
    assert!(!rec.discovery.full_listing);
    assert_eq!(rec.tables["db.p"].files, 2);
    assert_eq!(id_names(&db, "db.p"), vec![s(1, "A"), s(3, "c")]);
}

#[tokio::test]
async fn rename_and_dml_arriving_between_rounds_of_one_replayer_keep_their_order() {
    let mut w = Writer::new("memory://e2e-rename-live?protocol=csv&include-commit-ts=true");
    let old = two_cols("db", "old", ts(1));
    w.schema(&old, "", DdlKind::CreateTable).await;
    w.file(&old, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(3)).await;
    let (_dir, db, mut r) = sqlite_replayer(&w.uri).await;
    for _ in 0..2 {
        assert!(r.round().await.error.is_none());
    }
    // Between two rounds: the last DML of the old name, the rename, DML of the new name, with
    // the checkpoint already past all of it.
    w.file(&old, &[(ts(4), vec![upd(1, "a", "A"), ins(2, "b")])])
        .await;
    let new = two_cols("db", "new", ts(5));
    w.schema(&new, "RENAME TABLE old TO new", DdlKind::RenameTable)
        .await;
    w.file(&new, &[(ts(6), vec![del(2, "b"), ins(3, "c")])])
        .await;
    w.checkpoint(ts(10)).await;
    for _ in 0..3 {
        let RoundOutcome {
            record: rec,
            error: err,
            ..
        } = r.round().await;
        assert!(err.is_none(), "{:?}", rec.fatal);
    }
    assert_eq!(table_names(&db), vec!["db.new"]);
    assert_eq!(id_names(&db, "db.new"), vec![s(1, "A"), s(3, "c")]);
}
