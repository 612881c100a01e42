//! Names reach storage and the downstream verbatim: a schema, table and column named with the
//! characters object_store's `Path::from` would percent-encode (`"`, `` ` ``, `%`, `#`, `{`,
//! `~`, `?`, `\`, non-ASCII) go through the real sink into a local directory - whose entries
//! must carry the names as they are, as TiCDC writes them - and through the consumer into
//! SQLite, whose table must have the original name and hold the rows.

use cdc_common::{
    ColumnDef, ColumnType, DdlEvent, DdlKind, DmlEvent, RowChange, TableDef, TableName, Ts, Value,
};
use cdc_consumer::backend::sqlite::SqliteDownstream;
use cdc_consumer::backend::Downstream;
use cdc_harness::demo::replay;
use cdc_sink::{FileNaming, Sink, SinkConfig};
use std::sync::Arc;

const SCHEMA: &str = "s\"1`%41#";
const TABLE: &str = "t{1}~?\\ é";
const COLUMN: &str = "c%2F\"`#";

fn table(version: Ts) -> Arc<TableDef> {
    Arc::new(TableDef {
        schema: SCHEMA.into(),
        table: TABLE.into(),
        table_id: 7,
        version,
        columns: vec![
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            ColumnDef::new(COLUMN, ColumnType::VarChar),
        ],
    })
}

fn ddl(commit_ts: Ts, kind: DdlKind, query: String, tables: Vec<TableDef>) -> DdlEvent {
    DdlEvent {
        commit_ts,
        query,
        kind,
        schema: SCHEMA.into(),
        tables,
        prev_tables: vec![],
    }
}

/// Every path under `dir`, relative to it.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_names_reach_storage_and_sqlite_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let spool = dir.path().join("spool");
    let uri = format!(
        "file://{}?protocol=csv&flush-interval=10ms&spool-dir={}",
        storage.display(),
        spool.display()
    );
    let sink = Sink::open(&uri, SinkConfig::new("odd"), &prometheus::Registry::new())
        .await
        .unwrap();
    sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let t0 = Ts::from_parts(1_700_000_000_000, 0);
    let def = table(Ts(t0.0 + 1));
    sink.write_block_event(
        &ddl(
            t0,
            DdlKind::CreateSchema,
            "CREATE DATABASE x".into(),
            vec![],
        ),
        &[],
    )
    .await
    .unwrap();
    sink.write_block_event(
        &ddl(
            def.version,
            DdlKind::CreateTable,
            "CREATE TABLE x (id BIGINT PRIMARY KEY, c VARCHAR(10))".into(),
            vec![(*def).clone()],
        ),
        &["d"],
    )
    .await
    .unwrap();
    let rows = |ids: std::ops::Range<i64>| -> Vec<RowChange> {
        ids.map(|i| RowChange::Insert {
            after: vec![Value::Int(i), Value::String(format!("v{i} \"%#").into())],
        })
        .collect()
    };
    for (k, ids) in [(2, 0..3), (3, 3..5)] {
        let ev = DmlEvent {
            table: Arc::clone(&def),
            partition_id: None,
            commit_ts: Ts(t0.0 + k),
            rows: rows(ids),
        };
        sink.add_dml_event("d", ev, None, None).unwrap();
    }
    sink.checkpoint(Ts(t0.0 + 3)).await.unwrap();
    sink.close().await.unwrap();

    let entries = tree(&storage);
    let table_dir = format!("{SCHEMA}/{TABLE}");
    assert!(
        entries.iter().any(|p| p == &table_dir),
        "no directory `{table_dir}` in {entries:?}"
    );
    assert!(
        entries
            .iter()
            .all(|p| !p.contains("%7B") && !p.contains("%22")),
        "a name was percent-encoded: {entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|p| p.starts_with(&format!("{table_dir}/")) && p.ends_with(".csv")),
        "no data file under `{table_dir}`: {entries:?}"
    );

    let db = dir.path().join("down.db");
    let upstream = format!("file://{}?protocol=csv", storage.display());
    let downstream = format!("sqlite://{}", db.display());
    let report = replay(&upstream, &downstream, &|_| {}).await.unwrap();
    assert_eq!(report.rows, 5, "{report:?}");

    let cols = [
        ColumnDef::new("id", ColumnType::BigInt).pk(),
        ColumnDef::new(COLUMN, ColumnType::Text),
    ];
    let mut down = SqliteDownstream::open(&db, 1).unwrap();
    let got: Vec<(i64, String)> = down
        .read_rows(&TableName::new(SCHEMA, TABLE), &cols)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r[0].as_deref().unwrap().parse().unwrap(),
                r[1].clone().unwrap(),
            )
        })
        .collect();
    let want: Vec<(i64, String)> = (0..5).map(|i| (i, format!("v{i} \"%#"))).collect();
    assert_eq!(got, want);
}
