//! Fixture writer for consumer tests: writes storage exactly as the sink does, with
//! `cdc_common` only (layout paths, schema files, codecs, index files, `metadata`).
//!
//! [`ReplayerBuilder`] (in `replayer.rs`) is the tests' one prologue from `storage-consumer`
//! flags to a replayer, with the helpers that start a consumer process and count a round's
//! requests; `servers.rs` gives the SQL servers a test runs against.
#![allow(dead_code)]

mod http;
mod replayer;
mod servers;

// Not every test file drives a replayer or uses a server.
#[allow(unused_imports)]
pub use http::{http_get_ok, http_get_raw, http_get_status};
#[allow(unused_imports)]
pub use replayer::{
    assert_warned, counted, counted_round, ok_round, ok_rounds, sqlite_replayer, sqlite_uri, start,
    ReplayerBuilder,
};
#[allow(unused_imports)]
pub use servers::{
    postgres_client, sql_server, sql_servers, unique_tag, SqlServer, MYSQL, POSTGRES,
};

use cdc_common::codec::codec_for;
use cdc_common::layout::{
    ChangeStep, ChangeSummary, Checkpoint, DataDir, DataFile, DateDir, IndexFile, LayoutConfig,
    CHANGE_SUMMARY_FILE,
};
use cdc_common::schema_file::SchemaFile;
use cdc_common::storage::StorageUri;
use cdc_common::{
    ColumnDef, ColumnType, DdlKind, DmlEvent, RowChange, SinkOptions, TableDef, Ts, Value,
};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::HashMap;
use std::sync::Arc;

/// A ts at `sec` seconds after 2023-11-14 (physical ms << 18).
pub fn ts(sec: u64) -> Ts {
    Ts::from_parts(1_700_000_000_000 + sec * 1000, 0)
}

pub fn table(schema: &str, name: &str, version: Ts, cols: Vec<ColumnDef>) -> TableDef {
    TableDef {
        schema: schema.into(),
        table: name.into(),
        table_id: 0,
        version,
        columns: cols,
    }
}

/// `id INT PK, name VARCHAR(64)`.
pub fn two_cols(schema: &str, name: &str, version: Ts) -> TableDef {
    table(
        schema,
        name,
        version,
        vec![
            ColumnDef::new("id", ColumnType::Int).pk(),
            ColumnDef::new("name", ColumnType::VarChar).with_precision(Some(64), None),
        ],
    )
}

pub fn ins(id: i64, name: &str) -> RowChange {
    RowChange::Insert {
        after: vec![Value::Int(id), Value::String(name.into())],
    }
}

pub fn upd(id: i64, old: &str, name: &str) -> RowChange {
    RowChange::Update {
        before: Some(vec![Value::Int(id), Value::String(old.into())]),
        after: vec![Value::Int(id), Value::String(name.into())],
    }
}

pub fn del(id: i64, name: &str) -> RowChange {
    RowChange::Delete {
        before: vec![Value::Int(id), Value::String(name.into())],
    }
}

pub struct Writer {
    pub store: Arc<dyn ObjectStore>,
    pub opts: SinkOptions,
    pub cfg: LayoutConfig,
    /// The storage URI (with the options) the consumer must be given.
    pub uri: String,
    /// The writer's clock offset from UTC in seconds: date directories are named by the
    /// writer's local date at flush time (TiCDC's rule); the flush happens at the first
    /// event's commit ts here.
    pub utc_offset_secs: i64,
    next: HashMap<(DataDir, Option<String>), u64>,
    /// The change summary the sink keeps, when this writer keeps one too
    /// ([`Writer::with_change_summary`]).
    summary: std::sync::Mutex<Option<SummaryState>>,
}

/// The sink's change summary, as the fixture keeps it: the touched set since the last
/// checkpoint, the history, and the last checkpoint written.
#[derive(Default)]
struct SummaryState {
    file: ChangeSummary,
    tables: std::collections::BTreeSet<(String, String)>,
    schemas: std::collections::BTreeSet<String>,
    last: Option<Ts>,
    begun: bool,
}

impl Writer {
    /// `uri` is a sink URI (storage + options), e.g. `memory://t1?protocol=csv&include-commit-ts=true`.
    pub fn new(uri: &str) -> Writer {
        let (s, opts) = StorageUri::parse_sink(uri).expect("fixture uri");
        Writer {
            store: s.build().expect("fixture store"),
            cfg: LayoutConfig::from_options(&opts),
            opts,
            uri: uri.to_string(),
            utc_offset_secs: 0,
            next: HashMap::new(),
            summary: std::sync::Mutex::new(None),
        }
    }

    /// Keeps the change summary `changes.metadata` as the sink does: each schema file and
    /// index entry notes its table; [`Writer::checkpoint`] puts the step before `metadata`.
    pub fn with_change_summary(self) -> Writer {
        self.restart_summary();
        self
    }

    /// A new sink process (incarnation): its first step is incomplete.
    pub fn restart_summary(&self) {
        let mut s = self.summary.lock().unwrap();
        let last = s.as_ref().and_then(|s| s.last);
        *s = Some(SummaryState {
            file: ChangeSummary::new(format!("fixture-{}", last.map_or(0, |t| t.0))),
            last,
            ..SummaryState::default()
        });
    }

    fn note_table(&self, schema: &str, table: &str) {
        if let Some(s) = self.summary.lock().unwrap().as_mut() {
            s.tables.insert((schema.to_string(), table.to_string()));
        }
    }

    /// Moves `metadata` to `ts` without touching the change summary (another writer: TiCDC,
    /// an older sink).
    pub async fn checkpoint_without_summary(&self, ts: Ts) {
        self.put(
            "metadata",
            Checkpoint { checkpoint_ts: ts }.build().into_bytes(),
        )
        .await;
    }

    /// The change summary's next content for a checkpoint write of `ts` (the step taken).
    fn summary_step(&self, ts: Ts) -> Option<String> {
        let mut guard = self.summary.lock().unwrap();
        let s = guard.as_mut()?;
        let step = ChangeStep {
            from: s.last,
            to: ts,
            complete: s.begun,
            tables: std::mem::take(&mut s.tables).into_iter().collect(),
            schemas: std::mem::take(&mut s.schemas).into_iter().collect(),
        };
        s.begun = true;
        s.last = Some(ts);
        s.file.push(step);
        Some(s.file.build())
    }

    pub async fn put(&self, path: &str, bytes: Vec<u8>) {
        self.store
            .put(&Path::parse(path).unwrap(), PutPayload::from(bytes))
            .await
            .unwrap();
    }

    pub async fn get(&self, path: &str) -> Vec<u8> {
        self.store
            .get(&Path::parse(path).unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    pub async fn delete(&self, path: &str) {
        self.store
            .delete(&Path::parse(path).unwrap())
            .await
            .unwrap();
    }

    pub async fn schema(&self, def: &TableDef, query: &str, kind: DdlKind) -> String {
        let f = SchemaFile::for_table(def, query, &kind);
        let p = f.path().build().unwrap();
        self.put(&p, f.to_json().into_bytes()).await;
        self.note_table(&def.schema, &def.table);
        p
    }

    pub async fn db_schema(&self, schema: &str, version: Ts, query: &str, kind: DdlKind) -> String {
        let f = SchemaFile::for_database(schema, version, query, &kind);
        let p = f.path().build().unwrap();
        self.put(&p, f.to_json().into_bytes()).await;
        if let Some(s) = self.summary.lock().unwrap().as_mut() {
            s.schemas.insert(schema.to_string());
        }
        p
    }

    /// Encodes one data file holding `events` (each a transaction at a ts), publishes it, then
    /// its index entry. Returns the data file path.
    pub async fn file(&mut self, def: &TableDef, events: &[(Ts, Vec<RowChange>)]) -> String {
        self.file_of(def, None, events).await
    }

    pub async fn file_of(
        &mut self,
        def: &TableDef,
        dispatcher: Option<&str>,
        events: &[(Ts, Vec<RowChange>)],
    ) -> String {
        self.file_in(def, None, dispatcher, events).await
    }

    /// A data file of a partition (`<version>/<partition-id>/<date>/...`).
    pub async fn file_in(
        &mut self,
        def: &TableDef,
        partition_id: Option<i64>,
        dispatcher: Option<&str>,
        events: &[(Ts, Vec<RowChange>)],
    ) -> String {
        let codec = codec_for(&self.opts).unwrap().prepare(def).unwrap();
        let mut out = Vec::new();
        codec.file_header(&mut out);
        let t = Arc::new(def.clone());
        for (ts, rows) in events {
            codec
                .encode(
                    &DmlEvent {
                        table: t.clone(),
                        partition_id,
                        commit_ts: *ts,
                        rows: rows.clone(),
                    },
                    &mut out,
                )
                .unwrap();
        }
        let dir = DataDir {
            schema: def.schema.clone(),
            table: def.table.clone(),
            version: def.version,
            partition_id,
            date: DateDir::for_ts(self.opts.date_separator, self.local_clock(events[0].0)),
        };
        let key = (dir.clone(), dispatcher.map(str::to_string));
        let n = self.next.entry(key).or_insert(0);
        *n += 1;
        let f = DataFile {
            dir,
            dispatcher_id: dispatcher.map(str::to_string),
            index: *n,
        };
        let path = f.build(&self.cfg).unwrap();
        // The whole-file step the sink's writer runs (compression, parquet).
        let parts = codec.finish_file(&path, vec![out.into()]).unwrap();
        self.put(&path, parts.concat()).await;
        let idx = f.index_file();
        self.put(
            &idx.build().unwrap(),
            IndexFile::content(&f.file_name(&self.cfg).unwrap()).into_bytes(),
        )
        .await;
        self.note_table(&def.schema, &def.table);
        path
    }

    /// A writer whose local clock runs `hours` from UTC (TiCDC names date directories by it).
    pub fn at_utc_offset(mut self, hours: i64) -> Writer {
        self.utc_offset_secs = hours * 3600;
        self
    }

    /// `ts` moved to the writer's local clock (its UTC date is the local date).
    fn local_clock(&self, ts: Ts) -> Ts {
        let ms = ts.physical_ms() as i64 + self.utc_offset_secs * 1000;
        Ts::from_parts(ms as u64, ts.logical())
    }

    /// Writes `metadata`; with a change summary kept, the summary's new step first.
    pub async fn checkpoint(&self, ts: Ts) {
        if let Some(body) = self.summary_step(ts) {
            self.put(CHANGE_SUMMARY_FILE, body.into_bytes()).await;
        }
        self.put(
            "metadata",
            Checkpoint { checkpoint_ts: ts }.build().into_bytes(),
        )
        .await;
    }
}

/// Storage in a new local directory (removed when the returned guard drops): the guard and
/// the sink URI of the directory with `options` (e.g. `protocol=csv&include-commit-ts=true`).
pub fn local_storage(options: &str) -> (tempfile::TempDir, String) {
    let root = tempfile::tempdir().unwrap();
    let uri = format!("file://{}?{options}", root.path().display());
    (root, uri)
}

/// `(id, name)` rows of SQLite table `schema.table` (given as `"schema.table"`) in `db`,
/// through the backend's read-back, ordered by id: the two columns of [`two_cols`].
pub fn id_names(db: &std::path::Path, table: &str) -> Vec<(i64, String)> {
    use cdc_consumer::backend::Downstream;
    let (schema, table) = table.split_once('.').expect("schema.table");
    let defs = [
        ColumnDef::new("id", ColumnType::BigInt).pk(),
        ColumnDef::new("name", ColumnType::Text),
    ];
    let mut d = cdc_consumer::backend::sqlite::SqliteDownstream::open(db, 1).unwrap();
    futures::executor::block_on(d.read_rows(&cdc_common::TableName::new(schema, table), &defs))
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r[0].as_deref().unwrap().parse().unwrap(),
                r[1].clone().unwrap(),
            )
        })
        .collect()
}

/// An `(id, name)` row as [`id_names`] returns it.
pub fn s(id: i64, n: &str) -> (i64, String) {
    (id, n.to_string())
}

/// Equal as the column's value in a downstream's read-back: FLOAT/DOUBLE by the number (each
/// downstream prints its own shortest text), everything else by the text.
pub fn same_value(c: &ColumnDef, got: &Option<String>, want: &Option<String>) -> bool {
    match (c.ty, got, want) {
        (ColumnType::Float | ColumnType::Double, Some(g), Some(w)) => {
            g.parse::<f64>().ok() == w.parse::<f64>().ok()
        }
        _ => got == want,
    }
}

/// Storage of one table (`db.t`) with one one-row file, checkpoint at ts(10).
pub async fn one_table_one_file(uri: &str) -> Writer {
    let mut w = Writer::new(uri);
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "x")])]).await;
    w.checkpoint(ts(10)).await;
    w
}

/// Storage of `tables` tables (schemas `db0`..`db2` in turn, two columns) of three one-row
/// files each, checkpoint at ts(10): the fixture of the request-counting tests.
pub async fn three_files_per_table(uri: &str, tables: usize) -> Writer {
    three_files_per_table_in(Writer::new(uri), tables).await
}

/// [`three_files_per_table`] written by `w` (e.g. one keeping a change summary).
pub async fn three_files_per_table_in(mut w: Writer, tables: usize) -> Writer {
    for i in 0..tables {
        let t = two_cols(&format!("db{}", i % 3), &format!("t{i}"), ts(1));
        w.schema(&t, "", DdlKind::CreateTable).await;
        for f in 0..3 {
            w.file(&t, &[(ts(2 + f), vec![ins(f as i64, "x")])]).await;
        }
    }
    w.checkpoint(ts(10)).await;
    w
}

/// Every row of `schema`'s tables through the backend's read-back, as `table [values]` text,
/// sorted per table (the schema name left out, so two schemas compare).
pub async fn dump(down: &str, schema: &str) -> Vec<String> {
    use cdc_common::TableName;
    use cdc_consumer::backend::{self, Access};
    use cdc_consumer::config::DownstreamUri;
    let uri = DownstreamUri::parse(down, None).unwrap();
    let mut d = backend::open(&uri, 1, Access::ReadBack).await.unwrap();
    let mut out = Vec::new();
    for t in d.read_tables(schema).await.unwrap() {
        let name = TableName::new(schema, &t);
        let cols: Vec<ColumnDef> = d
            .read_columns(&name)
            .await
            .unwrap()
            .into_iter()
            .map(|c| ColumnDef::new(c, ColumnType::Text))
            .collect();
        let mut rows: Vec<String> = d
            .read_rows(&name, &cols)
            .await
            .unwrap()
            .into_iter()
            .map(|r| format!("{t} {r:?}"))
            .collect();
        rows.sort();
        out.extend(rows);
    }
    out
}
