//! Shared helpers of the sink's integration tests: a sink over a recording [`FaultStore`],
//! test tables and events, and reading the published files back.
#![allow(dead_code)]

use cdc_common::codec::{codec_for, DecodedRow};
use cdc_common::layout::{DataFile, LayoutConfig};
use cdc_common::testing::FaultStore;
use cdc_common::{
    ColumnDef, ColumnType, DdlEvent, DdlKind, DmlEvent, RowChange, SinkOptions, TableDef, Ts, Value,
};
use cdc_sink::{Callback, RetryPolicy, Sink, SinkConfig};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub struct Harness {
    pub sink: Arc<Sink>,
    pub store: FaultStore,
    pub registry: prometheus::Registry,
    pub options: SinkOptions,
    pub spool_dir: tempfile::TempDir,
}

/// The log lines of this test binary at `level` and above, captured by its one subscriber
/// (installed by the first call; the level of that call holds for the binary).
pub fn captured_logs(
    level: tracing_subscriber::filter::LevelFilter,
) -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        #[derive(Clone)]
        struct W(Arc<Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let w = W(Arc::clone(&buf));
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .try_init()
            .expect("the only subscriber of this test binary");
        buf
    })
}

/// A quick retry policy for tests.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
    }
}

pub fn spool_config(dir: &std::path::Path, memory: u64, disk: u64) -> cdc_spool::SpoolConfig {
    cdc_spool::SpoolConfig::builder()
        .dir(dir)
        .memory_quota(memory)
        .disk_quota(disk)
        .build()
        .unwrap()
}

/// A spool small enough to come under pressure in a test: `memory` bytes in memory, 1 MiB on
/// disk, wakes held above `high` and resumed below `low`.
pub fn small_spool(
    dir: &std::path::Path,
    memory: u64,
    high: u64,
    low: u64,
) -> cdc_spool::SpoolConfig {
    cdc_spool::SpoolConfig::builder()
        .dir(dir)
        .memory_quota(memory)
        .disk_quota(1 << 20)
        .watermarks(high, low)
        .build()
        .unwrap()
}

/// A DDL of schema `s` at `at` that names no table: a drain barrier for the dispatchers it is
/// passed with, and nothing else.
pub fn barrier_ddl(at: Ts) -> DdlEvent {
    DdlEvent {
        commit_ts: at,
        query: String::new(),
        kind: DdlKind::Other,
        schema: "s".into(),
        tables: vec![],
        prev_tables: vec![],
    }
}

/// A sink (fresh in-memory store) whose spool is [`small_spool`] in a directory of its own,
/// returned with it (keep it alive as long as the sink).
pub async fn harness_with_small_spool(
    query: &str,
    memory: u64,
    high: u64,
    low: u64,
) -> (Harness, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let h = harness_on(None, query, move |c| {
        c.with_spool(small_spool(&path, memory, high, low))
    })
    .await;
    (h, dir)
}

/// A sink over `store` (a fresh in-memory store when `None`).
pub async fn harness_on(
    store: Option<FaultStore>,
    query: &str,
    tweak: impl FnOnce(SinkConfig) -> SinkConfig,
) -> Harness {
    let options = SinkOptions::from_query(query).unwrap();
    let store = store.unwrap_or_else(|| FaultStore::new(Arc::new(InMemory::new())));
    let spool_dir = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let config = SinkConfig::new("test")
        .with_writer_count(2)
        .with_retry(fast_retry())
        .with_checkpoint_interval(Duration::ZERO)
        .with_spool(spool_config(spool_dir.path(), 64 << 20, 256 << 20));
    let config = tweak(config);
    let sink = Sink::with_store(Arc::new(store.clone()), options.clone(), config, &registry)
        .await
        .unwrap();
    Harness {
        sink: Arc::new(sink),
        store,
        registry,
        options,
        spool_dir,
    }
}

pub async fn harness(query: &str) -> Harness {
    harness_on(None, query, |c| c).await
}

/// Commit ts at `ms` milliseconds after 2023-11-14.
pub fn ts(ms: u64) -> Ts {
    Ts::from_parts(1_700_000_000_000 + ms, 0)
}

/// A table `s.<name>` with columns `id BIGINT PK, d VARCHAR, seq BIGINT, payload VARCHAR`.
pub fn table(name: &str, version: Ts) -> Arc<TableDef> {
    Arc::new(TableDef {
        schema: "s".into(),
        table: name.into(),
        table_id: 1,
        version,
        columns: vec![
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            ColumnDef::new("d", ColumnType::VarChar),
            ColumnDef::new("seq", ColumnType::BigInt),
            ColumnDef::new("payload", ColumnType::VarChar),
        ],
    })
}

/// An event of `rows` inserts by `dispatcher`, sequence numbers `seq0..seq0+rows`.
pub fn event(table: &Arc<TableDef>, at: Ts, dispatcher: &str, seq0: i64, rows: usize) -> DmlEvent {
    event_sized(table, at, dispatcher, seq0, rows, 16)
}

pub fn event_sized(
    table: &Arc<TableDef>,
    at: Ts,
    dispatcher: &str,
    seq0: i64,
    rows: usize,
    payload: usize,
) -> DmlEvent {
    DmlEvent {
        table: Arc::clone(table),
        partition_id: None,
        commit_ts: at,
        rows: (0..rows as i64)
            .map(|i| RowChange::Insert {
                after: vec![
                    Value::Int(seq0 + i),
                    Value::String(dispatcher.into()),
                    Value::Int(seq0 + i),
                    Value::String("x".repeat(payload).into()),
                ],
            })
            .collect(),
    }
}

/// A counter and a callback that increments it.
pub fn counter() -> (
    Arc<AtomicUsize>,
    impl Fn() -> Callback + Clone + Send + Sync + 'static,
) {
    let c = Arc::new(AtomicUsize::new(0));
    let c2 = Arc::clone(&c);
    (c, move || {
        let c = Arc::clone(&c2);
        Box::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }) as Callback
    })
}

/// Every data file in `store`, decoded with `def` of its table, in (dir, dispatcher, index)
/// order.
pub async fn read_data_files(
    store: &Arc<dyn ObjectStore>,
    options: &SinkOptions,
    defs: &BTreeMap<String, Arc<TableDef>>,
) -> Vec<(DataFile, Vec<DecodedRow>)> {
    let layout = LayoutConfig::from_options(options);
    let codec = codec_for(options).unwrap();
    let objects: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut files: Vec<DataFile> = objects
        .iter()
        .filter_map(|o| DataFile::parse(o.location.as_ref(), &layout).ok())
        .collect();
    files.sort_by(|a, b| {
        (&a.dir, &a.dispatcher_id, a.index).cmp(&(&b.dir, &b.dispatcher_id, b.index))
    });
    let mut out = Vec::new();
    for f in files {
        let path = f.build(&layout).unwrap();
        let bytes = store
            .get(&object_store::path::Path::from(path.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let def = defs.get(&f.dir.table).expect("table def");
        let tc = codec.prepare(def).unwrap();
        let rows = tc.decode(&path, &bytes).unwrap();
        out.push((f, rows));
    }
    out
}

/// The `(dispatcher, seq)` rows of `files` ([`row_key`]), seqs per dispatcher in file order.
pub fn seqs_per_dispatcher(
    files: &[(DataFile, Vec<DecodedRow>)],
) -> std::collections::HashMap<String, Vec<i64>> {
    let mut per: std::collections::HashMap<String, Vec<i64>> = Default::default();
    for (_, rows) in files {
        for r in rows {
            let (d, seq) = row_key(r);
            per.entry(d).or_default().push(seq);
        }
    }
    per
}

/// `(dispatcher column, seq column)` of a decoded row.
pub fn row_key(r: &DecodedRow) -> (String, i64) {
    let img = r.change.image();
    let d = match &img[1] {
        Value::String(s) => s.to_string(),
        other => panic!("unexpected {other:?}"),
    };
    let seq = match &img[2] {
        Value::Int(i) => *i,
        Value::UInt(u) => *u as i64,
        other => panic!("unexpected {other:?}"),
    };
    (d, seq)
}

/// Polls `cond` every 5 ms for up to `secs` seconds.
pub async fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

/// The value of a counter or gauge in `registry`: the sum over the series whose labels include
/// every `(name, value)` of `labels` (0 when there is none).
pub fn metric(registry: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for family in registry.gather() {
        if family.name() != name {
            continue;
        }
        for m in family.get_metric() {
            let has = |(k, v): &(&str, &str)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            };
            if labels.iter().all(has) {
                total += m.get_counter().get_value() + m.get_gauge().get_value();
            }
        }
    }
    total
}

/// The `metadata` checkpoint in `store`, if written.
pub async fn read_checkpoint(store: &Arc<dyn ObjectStore>) -> Option<Ts> {
    let r = store
        .get(&object_store::path::Path::from("metadata"))
        .await
        .ok()?;
    let b = r.bytes().await.ok()?;
    Some(
        cdc_common::layout::Checkpoint::parse("metadata", &b)
            .unwrap()
            .checkpoint_ts,
    )
}

/// Every object's path in `store`, sorted.
pub async fn paths(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    let mut v: Vec<String> = store
        .list(None)
        .map_ok(|o| o.location.to_string())
        .try_collect()
        .await
        .unwrap();
    v.sort();
    v
}
