//! Cost curves of the consumer by table count (issue 16 item 4): storage of N tables with one
//! one-row file each, replayed into a fresh SQLite file.
//!
//! ```text
//! cargo run --release -p cdc-consumer --example scale_bench -- [--quick] [N ...]
//! ```
//!
//! Default N: 100, 1,000, 10,000 and 20,000 tables (`--quick`: 100 and 1,000). For each N,
//! measured in one process, every figure a `BENCH` line:
//!
//! - cold replay: seconds until the first round that found and applied nothing, and ms per
//!   table; peak RSS of that replay (VmHWM, reset through `/proc/self/clear_refs` first);
//! - requests (the consumer's own `list_calls` and `get_calls` counters) of the first round, of
//!   the idle round that follows, of a restart with nothing new (a new replayer on the same
//!   downstream: its first round) and of a round where 10 tables got one new file each (right
//!   after that restart: the process's first round that lists); then, in that process once it
//!   has settled, of a second round where 10 other tables got a new file (a summary round: the
//!   storage carries the sink's change summary `changes.metadata`);
//! - the wall time of an idle round in the process that made the cold replay (its whole
//!   catalog built; the median of 5): requests stay at one, the CPU a round spends on its
//!   catalog and progress record is what grows with N;
//! - the restart's seconds until drained;
//! - with `SCALE_BENCH_BUSY_ROUNDS=K`, the mean wall time of K more rounds of that process,
//!   each after 10 other tables got a file (one round's time moves a few ms between runs);
//! - the wall time of a round with 10 tables changed in the process that made the cold replay
//!   (its catalog whole, where the restarted process stands on its settled mark with a partial
//!   one): the mean of `SCALE_BENCH_BUSY_ROUNDS` rounds, one when unset;
//! - the downstream's share of the cold replay: SQLite alone creating the N tables (the
//!   consumer's own `CREATE TABLE` text, one transaction, into a fresh file), and a cold
//!   replay into that file, where every table exists (`CREATE TABLE IF NOT EXISTS` finds it):
//!   the consumer's own cost per table, without SQLite's DDL, which grows with the number of
//!   tables already in the file (docs/architecture.md, "Consumer: cost curves").
//!
//! Every figure's baseline is the same figure at the smallest N, scaled by the table ratio:
//! a ratio of 1.0 means linear, above 1.0 super-linear.

use cdc_common::codec::codec_for;
use cdc_common::layout::{
    ChangeStep, ChangeSummary, Checkpoint, DataDir, DataFile, DateDir, IndexFile, LayoutConfig,
    CHANGE_SUMMARY_FILE,
};
use cdc_common::schema_file::SchemaFile;
use cdc_common::storage::StorageUri;
use cdc_common::testing::bench_line;
use cdc_common::{ColumnDef, ColumnType, DdlKind, DmlEvent, RowChange, TableDef, Ts, Value};
use cdc_consumer::backend::dialect::Dialect;
use cdc_consumer::backend::sqlite::dialect::Sqlite;
use cdc_consumer::config::{Args, Config};
use cdc_consumer::ddl::DdlOp;
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::Replayer;
use clap::Parser;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const QUERY: &str = "protocol=csv&include-commit-ts=true&date-separator=none";
/// Tables given a new file in the "k changed" round.
const CHANGED: usize = 10;
/// Idle rounds timed after the cold replay (the median is reported).
const IDLE_ROUNDS: usize = 5;

fn def(i: usize) -> TableDef {
    TableDef {
        schema: format!("s{}", i % 10),
        table: format!("t{i}"),
        table_id: 0,
        version: Ts::from_parts(1_700_000_000_000, 0),
        columns: vec![
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            ColumnDef::new("v", ColumnType::VarChar).with_precision(Some(16), None),
        ],
    }
}

/// The storage being written: store, layout and codec options, and the change summary the
/// sink keeps (tables touched since the last checkpoint, steps written, last checkpoint).
struct Storage {
    store: Arc<dyn ObjectStore>,
    cfg: LayoutConfig,
    opts: cdc_common::SinkOptions,
    summary: Mutex<SummaryState>,
}

/// Touched tables since the last checkpoint, the steps written, the last checkpoint.
type SummaryState = (Vec<(String, String)>, ChangeSummary, Option<Ts>);

impl Storage {
    async fn put(&self, path: String, bytes: Vec<u8>) {
        self.store
            .put(&Path::parse(&path).expect("path"), PutPayload::from(bytes))
            .await
            .expect("put");
    }

    async fn schema(&self, d: &TableDef) {
        let f = SchemaFile::for_table(d, "", &DdlKind::CreateTable);
        self.put(f.path().build().expect("path"), f.to_json().into_bytes())
            .await;
        self.touched(d);
    }

    fn touched(&self, d: &TableDef) {
        let mut s = self.summary.lock().expect("summary");
        s.0.push((d.schema.clone(), d.table.clone()));
    }

    /// Data file `index` of table `d`: one row, id `index`, at `ts`.
    async fn file(&self, d: &TableDef, index: u64, ts: Ts) {
        let codec = codec_for(&self.opts).expect("codec");
        let tc = codec.prepare(d).expect("prepare");
        let mut out = Vec::new();
        tc.file_header(&mut out);
        tc.encode(
            &DmlEvent {
                table: Arc::new(d.clone()),
                partition_id: None,
                commit_ts: ts,
                rows: vec![RowChange::Insert {
                    after: vec![Value::Int(index as i64), Value::String("x".into())],
                }],
            },
            &mut out,
        )
        .expect("encode");
        let file = DataFile {
            dir: DataDir {
                schema: d.schema.clone(),
                table: d.table.clone(),
                version: d.version,
                partition_id: None,
                date: DateDir::for_ts(self.opts.date_separator, d.version),
            },
            dispatcher_id: None,
            index,
        };
        self.put(file.build(&self.cfg).expect("path"), out).await;
        self.put(
            file.index_file().build().expect("path"),
            IndexFile::content(&file.file_name(&self.cfg).expect("name")).into_bytes(),
        )
        .await;
        self.touched(d);
    }

    /// The change summary's step, then `metadata`, as the sink writes them.
    async fn checkpoint(&self, ts: Ts) {
        let body = {
            let mut s = self.summary.lock().expect("summary");
            let mut tables = std::mem::take(&mut s.0);
            tables.sort();
            tables.dedup();
            let step = ChangeStep {
                from: s.2,
                to: ts,
                complete: s.2.is_some(),
                tables,
                schemas: Vec::new(),
            };
            s.1.push(step);
            s.2 = Some(ts);
            s.1.build()
        };
        self.put(CHANGE_SUMMARY_FILE.into(), body.into_bytes())
            .await;
        let c = Checkpoint { checkpoint_ts: ts };
        self.put("metadata".into(), c.build().into_bytes()).await;
    }
}

/// Peak RSS in MB since the last [`reset_peak`] (Linux; 0 elsewhere).
fn peak_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The consumer's configuration for replaying `uri` into the SQLite file `db`.
fn sqlite_config(uri: &str, db: &std::path::Path) -> Config {
    let down = format!("sqlite://{}", db.display());
    let argv = [
        "storage-consumer",
        "--upstream-uri",
        uri,
        "--downstream-uri",
        &down,
        "--log-level",
        "warn",
    ];
    Config::from_args(&Args::parse_from(argv)).expect("config")
}

async fn replayer(cfg: &Config, m: &Metrics) -> Replayer {
    cdc_consumer::replayer(cfg, m.clone(), Arc::new(Mutex::new(Health::default())))
        .await
        .expect("replayer")
}

/// Requests of one round: (lists, gets), and whether it found or applied anything.
async fn counted(r: &mut Replayer, m: &Metrics) -> (u64, u64, bool) {
    let (l, g, busy, _) = counted_kind(r, m).await;
    (l, g, busy)
}

/// [`counted`], and whether discovery called the round idle (it stopped after `metadata`).
async fn counted_kind(r: &mut Replayer, m: &Metrics) -> (u64, u64, bool, bool) {
    let (l0, g0) = (m.list_calls.get(), m.get_calls.get());
    let out = r.round().await;
    if let Some(e) = out.error {
        panic!("round failed: {e}");
    }
    let busy = out.found_new || out.record.applied_anything();
    let idle = out.record.discovery.idle;
    (m.list_calls.get() - l0, m.get_calls.get() - g0, busy, idle)
}

/// Rounds until one finds and applies nothing; the first round's requests and the idle
/// round's.
async fn drain(r: &mut Replayer, m: &Metrics) -> ((u64, u64), (u64, u64)) {
    let (l, g, _) = counted(r, m).await;
    loop {
        let (il, ig, busy) = counted(r, m).await;
        if !busy {
            return ((l, g), (il, ig));
        }
    }
}

/// Wall time of an idle round in a process that built its whole catalog: the median of
/// `IDLE_ROUNDS` rounds (each must be an idle round and find nothing), in ms.
async fn idle_round_ms(r: &mut Replayer, m: &Metrics) -> f64 {
    let mut ms: Vec<f64> = Vec::with_capacity(IDLE_ROUNDS);
    for _ in 0..IDLE_ROUNDS {
        let t = Instant::now();
        let (_, _, busy, idle) = counted_kind(r, m).await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!busy, "an idle round found or applied something");
        assert!(
            idle,
            "a round timed as idle listed storage (discovery did not call it idle)"
        );
    }
    ms.sort_by(f64::total_cmp);
    ms[IDLE_ROUNDS / 2]
}

/// One table count's figures.
struct Figures {
    tables: usize,
    cold_s: f64,
    peak_mb: f64,
    first: (u64, u64),
    idle: (u64, u64),
    /// Wall time of an idle round after the cold replay (see [`idle_round_ms`]).
    idle_ms: f64,
    restart_s: f64,
    restart: (u64, u64),
    changed: (u64, u64),
    /// The round with 10 tables changed in a process whose catalog settled.
    running: (u64, u64),
    /// Wall time of that round (its discovery, its 10 files applied, its report), in ms.
    running_ms: f64,
    /// The mean wall time of `SCALE_BENCH_BUSY_ROUNDS` more such rounds, in ms.
    busy_mean_ms: Option<f64>,
    /// The same round's wall time in the process that made the cold replay (its catalog whole,
    /// not standing on a settled mark), in ms: the mean of `SCALE_BENCH_BUSY_ROUNDS` (1 unset).
    cold_process_ms: f64,
    /// SQLite alone creating the tables.
    create_s: f64,
    /// A cold replay into a file where the tables exist.
    own_s: f64,
}

/// `SCALE_BENCH_BUSY_ROUNDS` (unset: `default`) rounds of the process `r`, each after 10
/// tables (from the `first`th) got a new file, numbered from `index`, and the checkpoint moved
/// past it from `ts_base` on: their mean wall time in ms (`None` for no rounds). One round's
/// time moves a few ms from run to run; the mean of 100 does not, and a profiler can attach to
/// a long run of them.
async fn busy_rounds_mean_ms(
    st: &Storage,
    r: &mut Replayer,
    m: &Metrics,
    (first, index, ts_base): (usize, u64, u64),
    default: u64,
) -> Option<f64> {
    let rounds: u64 = std::env::var("SCALE_BENCH_BUSY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    if rounds == 0 {
        return None;
    }
    let mut spent = 0.0;
    for k in 0..rounds {
        let base = ts_base + k * 1000;
        for i in first..first + CHANGED {
            st.file(&def(i), index + k, Ts::from_parts(base + i as u64, 0))
                .await;
        }
        st.checkpoint(Ts::from_parts(base + 999, 0)).await;
        let t = Instant::now();
        let (_, _, busy) = counted(r, m).await;
        spent += t.elapsed().as_secs_f64() * 1000.0;
        assert!(busy, "busy round {k} applied nothing");
    }
    Some(spent / rounds as f64)
}

async fn measure(tables: usize) -> Figures {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("storage");
    std::fs::create_dir_all(&root).expect("mkdir");
    let uri = format!("file://{}?{QUERY}", root.display());
    // The setup's own writes skip the per-file sync (it measures the consumer, not the disk).
    let (s, opts) = StorageUri::parse_sink(&format!("{uri}&fsync=false")).expect("uri");
    let st = Storage {
        store: s.build().expect("store"),
        cfg: LayoutConfig::from_options(&opts),
        opts,
        summary: Mutex::new((Vec::new(), ChangeSummary::new("scale-bench"), None)),
    };
    let t0 = Instant::now();
    for i in 0..tables {
        let d = def(i);
        st.schema(&d).await;
        st.file(&d, 1, Ts::from_parts(1_700_000_001_000 + i as u64, 0))
            .await;
    }
    st.checkpoint(Ts::from_parts(1_750_000_000_000, 0)).await;
    eprintln!(
        "scale_bench: {tables} tables written in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let cfg = sqlite_config(&uri, &dir.path().join("down.db"));

    reset_peak();
    let m = Metrics::new();
    let t = Instant::now();
    let mut r = replayer(&cfg, &m).await;
    let (first, idle) = drain(&mut r, &m).await;
    let cold_s = t.elapsed().as_secs_f64();
    let peak_mb = peak_mb();
    let idle_ms = idle_round_ms(&mut r, &m).await;
    // Tables from 2 x CHANGED on, below every later checkpoint: the restart finds them applied.
    let cold_process_ms =
        busy_rounds_mean_ms(&st, &mut r, &m, (2 * CHANGED, 2, 1_751_000_000_000), 1)
            .await
            .expect("at least one round");
    drop(r);
    let (create_s, own_s) = without_ddl(&uri, dir.path(), tables).await;

    let m = Metrics::new();
    let t = Instant::now();
    let mut r = replayer(&cfg, &m).await;
    let (restart, _) = drain(&mut r, &m).await;
    let restart_s = t.elapsed().as_secs_f64();

    for i in 0..CHANGED.min(tables) {
        st.file(&def(i), 2, Ts::from_parts(1_760_000_000_000 + i as u64, 0))
            .await;
    }
    st.checkpoint(Ts::from_parts(1_770_000_000_000, 0)).await;
    let (cl, cg, busy) = counted(&mut r, &m).await;
    assert!(busy, "the round after {CHANGED} new files applied nothing");
    // settle (a round that lists and applies everything below the checkpoint), then 10 others
    drain(&mut r, &m).await;
    for i in CHANGED..(2 * CHANGED).min(tables) {
        st.file(&def(i), 2, Ts::from_parts(1_780_000_000_000 + i as u64, 0))
            .await;
    }
    st.checkpoint(Ts::from_parts(1_790_000_000_000, 0)).await;
    let t = Instant::now();
    let (sl, sg, busy) = counted(&mut r, &m).await;
    let running_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(
        busy,
        "the running process's round after {CHANGED} new files applied nothing"
    );
    let busy_mean_ms =
        busy_rounds_mean_ms(&st, &mut r, &m, (CHANGED, 3, 1_800_000_000_000), 0).await;
    Figures {
        tables,
        cold_s,
        peak_mb,
        first,
        idle,
        idle_ms,
        restart_s,
        restart: (restart.0, restart.1),
        changed: (cl, cg),
        running: (sl, sg),
        running_ms,
        busy_mean_ms,
        cold_process_ms,
        create_s,
        own_s,
    }
}

/// SQLite creating the `tables` tables alone (the consumer's text, one transaction, a fresh
/// WAL file), then a cold replay of `uri` into that file: (create seconds, replay seconds).
async fn without_ddl(uri: &str, dir: &std::path::Path, tables: usize) -> (f64, f64) {
    let db = dir.join("created.db");
    let mut sql = String::from("BEGIN;");
    for i in 0..tables {
        for stmt in Sqlite.ddl(&DdlOp::CreateTable(def(i))) {
            sql.push_str(&stmt);
            sql.push_str(";\n");
        }
    }
    sql.push_str("COMMIT;");
    let conn = rusqlite::Connection::open(&db).expect("sqlite");
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        .expect("pragma");
    let t = Instant::now();
    conn.execute_batch(&sql).expect("create tables");
    let create_s = t.elapsed().as_secs_f64();
    drop(conn);
    let cfg = sqlite_config(uri, &db);
    let m = Metrics::new();
    let t = Instant::now();
    let mut r = replayer(&cfg, &m).await;
    drain(&mut r, &m).await;
    (create_s, t.elapsed().as_secs_f64())
}

fn reqs(p: (u64, u64)) -> f64 {
    (p.0 + p.1) as f64
}

fn report(f: &Figures, base: Option<&Figures>) {
    let n = f.tables;
    let scale = |v: fn(&Figures) -> f64| {
        base.map_or(("", 0.0), |b| {
            ("smallest N, scaled", v(b) * n as f64 / b.tables as f64)
        })
    };
    // A time of `f` in ms per table, and the same figure at the smallest N as its baseline.
    let ms_per_table = |f: &Figures, v: fn(&Figures) -> f64| v(f) * 1000.0 / f.tables as f64;
    let per_table = |v: fn(&Figures) -> f64| {
        (
            ms_per_table(f, v),
            base.map_or(("", 0.0), |b| ("smallest N", ms_per_table(b, v))),
        )
    };
    let line = |name: &str, value: f64, unit: &str, b: (&str, f64), target: &str| {
        bench_line(
            "scale",
            &format!("{name} @{n} tables"),
            value,
            unit,
            b,
            target,
        )
    };
    line("cold replay", f.cold_s, "s", scale(|f| f.cold_s), "linear");
    let per_table_line = |name: &str, v: fn(&Figures) -> f64, target: &str| {
        let (value, b) = per_table(v);
        line(name, value, "ms", b, target);
    };
    per_table_line("cold replay per table", |f| f.cold_s, "<=0.3 ms");
    line("cold replay peak RSS", f.peak_mb, "MB", ("", 0.0), "");
    per_table_line("SQLite alone, CREATE TABLE per table", |f| f.create_s, "");
    per_table_line(
        "cold replay per table, tables created beforehand",
        |f| f.own_s,
        "<=0.3 ms",
    );
    line(
        "first round LIST+GET",
        reqs(f.first),
        "req",
        scale(|f| reqs(f.first)),
        "",
    );
    line("idle round LIST+GET", reqs(f.idle), "req", ("", 0.0), "1");
    line(
        "idle round wall time",
        f.idle_ms,
        "ms",
        scale(|f| f.idle_ms),
        "",
    );
    line(
        "restart, nothing new",
        f.restart_s,
        "s",
        scale(|f| f.restart_s),
        "<1 s @20k",
    );
    line(
        "restart first round LIST+GET",
        reqs(f.restart),
        "req",
        scale(|f| reqs(f.restart)),
        "",
    );
    line(
        &format!("round, {CHANGED} tables changed, LIST+GET"),
        reqs(f.changed),
        "req",
        ("", 0.0),
        "",
    );
    line(
        &format!("running process, {CHANGED} tables changed, LIST+GET"),
        reqs(f.running),
        "req",
        ("", 0.0),
        "O(10)",
    );
    line(
        &format!("running process, {CHANGED} tables changed, wall time"),
        f.running_ms,
        "ms",
        scale(|f| f.running_ms),
        "",
    );
    line(
        &format!("process of the cold replay, {CHANGED} tables changed, wall time"),
        f.cold_process_ms,
        "ms",
        scale(|f| f.cold_process_ms),
        "",
    );
    if let Some(mean) = f.busy_mean_ms {
        line(
            &format!("running process, {CHANGED} tables changed, mean wall time of SCALE_BENCH_BUSY_ROUNDS"),
            mean,
            "ms",
            scale(|f| f.busy_mean_ms.unwrap_or(0.0)),
            "",
        );
    }
    println!(
        "tables {n:>6}: cold {:.2}s ({:.3} ms/table, peak {:.0} MB; SQLite's CREATE TABLEs alone {:.3} ms/table, cold replay with the tables there {:.3} ms/table); first round {} LIST {} GET; idle {} LIST {} GET, {:.1} ms; restart {:.2}s, first round {} LIST {} GET; {CHANGED} changed: {} LIST {} GET; running, {CHANGED} changed: {} LIST {} GET, {:.1} ms; in the cold replay's process: {:.1} ms",
        f.cold_s,
        ms_per_table(f, |f| f.cold_s),
        f.peak_mb,
        ms_per_table(f, |f| f.create_s),
        ms_per_table(f, |f| f.own_s),
        f.first.0,
        f.first.1,
        f.idle.0,
        f.idle.1,
        f.idle_ms,
        f.restart_s,
        f.restart.0,
        f.restart.1,
        f.changed.0,
        f.changed.1,
        f.running.0,
        f.running.1,
        f.running_ms,
        f.cold_process_ms,
    );
}

#[tokio::main]
async fn main() {
    let mut quick = false;
    let mut counts = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--quick" => quick = true,
            n => counts.push(
                n.parse::<usize>()
                    .unwrap_or_else(|_| panic!("a table count, not {n:?}")),
            ),
        }
    }
    if counts.is_empty() {
        counts = if quick {
            vec![100, 1000]
        } else {
            vec![100, 1000, 10_000, 20_000]
        };
    }
    let mut base: Option<Figures> = None;
    for n in counts {
        let f = measure(n).await;
        report(&f, base.as_ref());
        if base.is_none() {
            base = Some(f);
        }
    }
}
