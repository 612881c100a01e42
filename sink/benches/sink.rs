//! The sink's throughput, memory and low-traffic harness (not criterion: each scenario is one
//! long run whose figures are printed).
//!
//! ```text
//! cargo bench -p cdc-sink --bench sink -- throughput    # rows/s to the local fs + raw disk bandwidth
//! cargo bench -p cdc-sink --bench sink -- memory        # peak RSS with storage 100x slower
//! cargo bench -p cdc-sink --bench sink -- low-traffic   # wake latency, flush spread
//! cargo bench -p cdc-sink --bench sink -- first-flush   # new tables over storage with latency
//! ```
//!
//! Environment: `BENCH_ROWS` (throughput, default 4,000,000), `BENCH_SECS` (memory, default
//! 30; low-traffic, default 15), `BENCH_DIR` (default: the system temp dir), `BENCH_WORKERS`
//! (encoder threads, default 2), `BENCH_TABLES` (first-flush, default 2,000),
//! `BENCH_PREBUILT=1` (throughput: build every event before the
//! clock starts, to measure the sink without the producer's allocations).

use cdc_common::testing::{bench_line, process_cpu_secs};
use cdc_common::testing::{Fault, FaultStore, Op, Rule};
use cdc_common::{ColumnDef, ColumnType, DmlEvent, RowChange, SinkOptions, TableDef, Ts, Value};
use cdc_sink::{FileNaming, Sink, SinkConfig};
use object_store::ObjectStore;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DISPATCHERS: usize = 1000;
const ROWS_PER_EVENT: usize = 100;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_dir() -> std::path::PathBuf {
    std::env::var("BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| std::env::temp_dir())
}

/// A 10-column table; its csv rows are ~100 bytes.
fn table(i: usize) -> Arc<TableDef> {
    Arc::new(TableDef {
        schema: "bench".into(),
        table: format!("t{i:04}"),
        table_id: i as i64,
        version: Ts::from_parts(1_700_000_000_000, 0),
        columns: vec![
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            ColumnDef::new("a", ColumnType::Int),
            ColumnDef::new("b", ColumnType::Int),
            ColumnDef::new("c", ColumnType::BigInt),
            ColumnDef::new("d", ColumnType::Double),
            ColumnDef::new("e", ColumnType::VarChar),
            ColumnDef::new("f", ColumnType::VarChar),
            ColumnDef::new("g", ColumnType::VarChar),
            ColumnDef::new("h", ColumnType::DateTime),
            ColumnDef::new("i", ColumnType::Int),
        ],
    })
}

fn rows(base: i64, n: usize) -> Vec<RowChange> {
    (0..n as i64)
        .map(|k| RowChange::Insert {
            after: vec![
                Value::Int(base + k),
                Value::Int(k * 7),
                Value::Int(-k),
                Value::Int(1_000_000_007 * k),
                Value::Double(k as f64 * 1.5),
                Value::String("abcdefgh".into()),
                Value::String("ijklmnop".into()),
                Value::String("qrstuvwx".into()),
                Value::String("2024-01-02 03:04:05".into()),
                Value::Int(42),
            ],
        })
        .collect()
}

fn spool(dir: &std::path::Path, memory: u64, disk: u64) -> cdc_spool::SpoolConfig {
    cdc_spool::SpoolConfig::builder()
        .dir(dir)
        .memory_quota(memory)
        .disk_quota(disk)
        .build()
        .expect("spool config")
}

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Sends events round-robin to the dispatchers that are awake (the dispatcher protocol: the
/// next event only after the previous one's wake) until `more()` says stop or `next` has no
/// event; returns rows sent.
/// The producer's wait for a wake: a producer with no dispatcher awake sleeps until a wake
/// callback unparks it, as a real dispatcher thread blocks, instead of spinning on the flags (a
/// spinning producer takes one of the two cores the encoders need).
struct Park {
    producer: std::sync::OnceLock<std::thread::Thread>,
    parked: AtomicBool,
}

impl Park {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            producer: std::sync::OnceLock::new(),
            parked: AtomicBool::new(false),
        })
    }

    /// Called by a wake callback after it set its dispatcher's flag.
    fn wake(&self) {
        if self.parked.swap(false, Ordering::SeqCst) {
            if let Some(t) = self.producer.get() {
                t.unpark();
            }
        }
    }

    /// Sleeps until a flag is set (checked again after announcing the sleep, so a wake between
    /// the producer's scan and its sleep is not lost).
    fn wait(&self, awake: &[Arc<AtomicBool>]) {
        self.producer.get_or_init(std::thread::current);
        self.parked.store(true, Ordering::SeqCst);
        if !awake.iter().any(|f| f.load(Ordering::SeqCst)) {
            std::thread::park_timeout(Duration::from_millis(50));
        }
        self.parked.store(false, Ordering::SeqCst);
    }
}

fn produce(
    sink: &Sink,
    park: &Arc<Park>,
    awake: &[Arc<AtomicBool>],
    flushed_rows: &Arc<AtomicU64>,
    mut next: impl FnMut(usize, Ts) -> Option<DmlEvent>,
    mut more: impl FnMut(u64) -> bool,
) -> u64 {
    let mut sent = 0u64;
    let mut commit = Ts::from_parts(1_700_000_001_000, 0).0;
    let mut exhausted = 0;
    while more(sent) && exhausted < DISPATCHERS {
        let mut any = false;
        exhausted = 0;
        for (d, flag) in awake.iter().enumerate() {
            if !flag.load(Ordering::Acquire) {
                continue;
            }
            commit += 1;
            let Some(ev) = next(d, Ts(commit)) else {
                exhausted += 1;
                continue;
            };
            flag.store(false, Ordering::Release);
            any = true;
            let a = Arc::clone(flag);
            let p = Arc::clone(park);
            let f = Arc::clone(flushed_rows);
            let n = ev.rows.len() as u64;
            sink.add_dml_event(
                &format!("d{d}"),
                ev,
                Some(Box::new(move || {
                    a.store(true, Ordering::SeqCst);
                    p.wake();
                })),
                Some(Box::new(move || {
                    f.fetch_add(n, Ordering::Relaxed);
                })),
            )
            .expect("add_dml_event");
            sent += n;
            if !more(sent) {
                break;
            }
        }
        if !any {
            park.wait(awake);
        }
    }
    sent
}

/// Events built on demand by cloning a template (the producer's cost counts).
fn cloning(
    tables: Vec<Arc<TableDef>>,
    template: Vec<RowChange>,
) -> impl FnMut(usize, Ts) -> Option<DmlEvent> {
    move |d, ts| {
        Some(DmlEvent {
            table: Arc::clone(&tables[d]),
            partition_id: None,
            commit_ts: ts,
            rows: template.to_vec(),
        })
    }
}

async fn setup(
    store: Arc<dyn ObjectStore>,
    query: &str,
    config: SinkConfig,
) -> (Arc<Sink>, Vec<Arc<TableDef>>, Vec<Arc<AtomicBool>>) {
    let options = SinkOptions::from_query(query).expect("options");
    let registry = prometheus::Registry::new();
    let sink = Arc::new(
        Sink::with_store(store, options, config, &registry)
            .await
            .expect("sink"),
    );
    let tables: Vec<_> = (0..DISPATCHERS).map(table).collect();
    for d in 0..DISPATCHERS {
        sink.add_dispatcher(&format!("d{d}"), FileNaming::Table)
            .expect("dispatcher");
    }
    let awake = (0..DISPATCHERS)
        .map(|_| Arc::new(AtomicBool::new(true)))
        .collect();
    (sink, tables, awake)
}

/// The data files under `dir`: total bytes, and each file's path relative to `dir` and size.
fn data_files(dir: &std::path::Path) -> (u64, Vec<(std::path::PathBuf, u64)>) {
    let mut total = 0;
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "csv") {
                let n = e.metadata().map(|m| m.len()).unwrap_or(0);
                total += n;
                let rel = p.strip_prefix(dir).expect("under dir").to_path_buf();
                files.push((rel, n));
            }
        }
    }
    (total, files)
}

/// Writes back every dirty page of the machine, so that a timed phase does not pay for the
/// previous phase's writeback (the sink's and the raw write's figures start from the same state).
fn sync_disks() {
    let _ = std::process::Command::new("sync").status();
}

async fn throughput() {
    let total_rows = env_u64("BENCH_ROWS", 4_000_000);
    let workers = env_u64("BENCH_WORKERS", 2);
    let root = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let out = root.path().join("sink");
    let spool_dir = root.path().join("spool");
    std::fs::create_dir_all(&out).expect("mkdir");
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&out).expect("local store"));
    let config =
        SinkConfig::new("bench-throughput").with_spool(spool(&spool_dir, 1 << 30, 4 << 30));
    // TiCDC's default flush interval (5s) and file size (64 MiB).
    let query = format!("protocol=csv&flush-interval=5s&worker-count={workers}&date-separator=day");
    let (sink, tables, awake) = setup(store, &query, config).await;
    let flushed = Arc::new(AtomicU64::new(0));
    let prebuilt = std::env::var("BENCH_PREBUILT").is_ok_and(|v| v == "1");
    // With BENCH_PREBUILT=1 every event is built before the clock starts, so the figure is the
    // sink's alone; otherwise the producer clones a template per event inside the run.
    let mut queues: Option<Vec<std::collections::VecDeque<DmlEvent>>> = prebuilt.then(|| {
        let per = (total_rows as usize).div_ceil(ROWS_PER_EVENT * DISPATCHERS);
        (0..DISPATCHERS)
            .map(|d| {
                (0..per)
                    .map(|_| DmlEvent {
                        table: Arc::clone(&tables[d]),
                        partition_id: None,
                        commit_ts: Ts::ZERO,
                        rows: rows(0, ROWS_PER_EVENT),
                    })
                    .collect()
            })
            .collect()
    });
    sync_disks();
    let start = Instant::now();
    let cpu_start = process_cpu_secs();
    let s2 = Arc::clone(&sink);
    let f2 = Arc::clone(&flushed);
    let sent = tokio::task::spawn_blocking(move || match queues.as_mut() {
        Some(q) => produce(
            &s2,
            &Park::new(),
            &awake,
            &f2,
            |d, ts| {
                q[d].pop_front().map(|mut e| {
                    e.commit_ts = ts;
                    e
                })
            },
            |_| true,
        ),
        None => produce(
            &s2,
            &Park::new(),
            &awake,
            &f2,
            cloning(tables, rows(0, ROWS_PER_EVENT)),
            |sent| sent < total_rows,
        ),
    })
    .await
    .expect("producer");
    let produced = start.elapsed();
    let cpu_produced = process_cpu_secs();
    sink.close().await.expect("close");
    let elapsed = start.elapsed();
    let cpu_closed = process_cpu_secs();
    assert_eq!(flushed.load(Ordering::SeqCst), sent, "every row flushed");
    let (bytes, files) = data_files(&out);
    let rows_per_sec = sent as f64 / elapsed.as_secs_f64();
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "throughput ({}): {sent} rows ({:.1} MiB csv, {} files) in {:.2}s (producer done at {:.2}s): \
         {:.0} rows/s, {:.1} MiB/s, {:.1} bytes/row",
        if prebuilt { "events pre-built" } else { "producer clones each event" },
        mib,
        files.len(),
        elapsed.as_secs_f64(),
        produced.as_secs_f64(),
        rows_per_sec,
        mib / elapsed.as_secs_f64(),
        bytes as f64 / sent as f64
    );
    // Raw bandwidth: the same files (same paths, same sizes), written to the same disk by plain
    // std::fs writes, each directory created once, after the same writeback of what came before.
    // The file system's state (its writeback, recently freed inodes) moves this figure several
    // fold between runs, so it is the fastest of three.
    let buf = vec![b'x'; files.iter().map(|f| f.1).max().unwrap_or(0) as usize];
    let (mut raw_secs, mut raw_cpu) = (f64::MAX, 0.0);
    for attempt in 0..3 {
        let raw = root.path().join(format!("raw{attempt}"));
        sync_disks();
        let cpu = process_cpu_secs();
        let start = Instant::now();
        for (rel, n) in &files {
            let path = raw.join(rel);
            let dir = path.parent().expect("parent");
            if !dir.exists() {
                std::fs::create_dir_all(dir).expect("mkdir");
            }
            std::fs::write(&path, &buf[..*n as usize]).expect("write");
        }
        let secs = start.elapsed().as_secs_f64();
        if secs < raw_secs {
            (raw_secs, raw_cpu) = (secs, process_cpu_secs() - cpu);
        }
        let _ = std::fs::remove_dir_all(&raw);
    }
    println!(
        "cpu: {:.2}s until the producer was done, {:.2}s in close, {:.2}s in total ({:.2} cores \
         busy); raw write {:.2}s",
        cpu_produced - cpu_start,
        cpu_closed - cpu_produced,
        cpu_closed - cpu_start,
        (cpu_closed - cpu_start) / elapsed.as_secs_f64(),
        raw_cpu
    );
    bench_line(
        "sink",
        &format!(
            "throughput, csv to local fs, {DISPATCHERS} dispatchers ({})",
            if prebuilt {
                "events pre-built"
            } else {
                "producer clones events"
            }
        ),
        mib / elapsed.as_secs_f64(),
        "MiB/s",
        ("raw write of the same files", mib / raw_secs),
        &format!(">= 0.6 ({rows_per_sec:.0} rows/s)"),
    );
    println!(
        "raw disk: same {} files, {:.1} MiB in {:.2}s: {:.1} MiB/s (sink reached {:.0}% of it)",
        files.len(),
        mib,
        raw_secs,
        mib / raw_secs,
        100.0 * (mib / elapsed.as_secs_f64()) / (mib / raw_secs)
    );
}

/// A fault store over local files in `root/sink` (the scenarios with slow storage).
fn local_fault_store(root: &std::path::Path) -> FaultStore {
    let out = root.join("sink");
    std::fs::create_dir_all(&out).expect("mkdir");
    let local: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&out).expect("local store"));
    FaultStore::new(local)
}

async fn memory() {
    let secs = env_u64("BENCH_SECS", 30);
    let workers = env_u64("BENCH_WORKERS", 2);
    const QUOTA: u64 = 256 << 20;
    let root = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let slow = local_fault_store(root.path());
    // First measure the producer alone (events into a sink over a fast store), in a process
    // of its own: its memory would otherwise stay in this process's heap and peak RSS ...
    let probe_rate = probe_in_child();
    // ... then run it against storage 100x slower.
    let storage_bps = (probe_rate / 100.0) as u64;
    slow.add_rule(Rule::new(
        Op::Put,
        "",
        Fault::Throughput {
            bytes_per_sec: storage_bps,
        },
    ));
    let spool_dir = root.path().join("spool");
    let config = SinkConfig::new("bench-memory")
        .with_spool(spool(&spool_dir, QUOTA, 512 << 20))
        .with_multipart(256 << 20, 8 << 20);
    let query = format!("protocol=csv&flush-interval=5s&worker-count={workers}");
    let (sink, tables, awake) = setup(Arc::new(slow.clone()), &query, config).await;
    let flushed = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let s2 = Arc::clone(&sink);
    let f2 = Arc::clone(&flushed);
    let held_seen = Arc::new(AtomicU64::new(0));
    let sampler = {
        let sink = Arc::clone(&sink);
        let held_seen = Arc::clone(&held_seen);
        tokio::spawn(async move {
            let mut peak_mem = 0u64;
            let mut peak_disk = 0u64;
            while Instant::now() < stop_at {
                let s = sink.spool_stats();
                peak_mem = peak_mem.max(s.memory_bytes);
                peak_disk = peak_disk.max(s.disk_bytes);
                held_seen.fetch_max(s.held_wakes, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (peak_mem, peak_disk)
        })
    };
    let sent = tokio::task::spawn_blocking(move || {
        let next = cloning(tables, rows(0, ROWS_PER_EVENT));
        produce(&s2, &Park::new(), &awake, &f2, next, |_| {
            Instant::now() < stop_at
        })
    })
    .await
    .expect("producer");
    let (peak_mem, peak_disk) = sampler.await.expect("sampler");
    let rss = peak_rss_mib();
    println!(
        "memory: producer ~{:.1} MiB/s alone, storage {:.2} MiB/s (100x slower); {secs}s: \
         {sent} rows accepted, {} flushed; spool peak memory {:.1} MiB (quota {} MiB), \
         peak disk {:.1} MiB, most held wakes {}; peak RSS {:.1} MiB (limit quota + 128 = {} MiB)",
        probe_rate / 1048576.0,
        storage_bps as f64 / 1048576.0,
        flushed.load(Ordering::SeqCst),
        peak_mem as f64 / 1048576.0,
        QUOTA >> 20,
        peak_disk as f64 / 1048576.0,
        held_seen.load(Ordering::Relaxed),
        rss,
        (QUOTA >> 20) + 128
    );
    bench_line(
        "sink",
        "peak RSS, storage 100x slower than the producer",
        rss,
        "MiB",
        ("spool memory quota + 128 MiB", ((QUOTA >> 20) + 128) as f64),
        "<= 1.0",
    );
    // Do not wait for the slow store to drain the backlog.
    slow.clear_rules();
    sink.close().await.expect("close");
}

/// The first flush across many new tables over storage with a round trip per request: every
/// table needs its schema file, its index file looked for and its directory listed, then its
/// data and index files put. By default the storage is local files with every request delayed
/// 5 ms (a nearby object store); `BENCH_STORE_URI` (a fresh prefix: `s3://bucket/prefix?...`)
/// runs it against that storage as it is. Prints the wall time of the flush beside the time its
/// requests took, added up (the flush with its requests made one after another; lower is
/// better).
async fn first_flush() {
    const LATENCY: Duration = Duration::from_millis(5);
    let tables = env_u64("BENCH_TABLES", 2000) as usize;
    let root = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let uri = std::env::var("BENCH_STORE_URI").ok();
    let (store, storage) = match &uri {
        Some(uri) => {
            let (parsed, _) = cdc_common::storage::StorageUri::parse(uri).expect("BENCH_STORE_URI");
            let store = FaultStore::new(parsed.build().expect("store"));
            (store, cdc_common::storage::redact_uri(uri))
        }
        None => {
            let store = local_fault_store(root.path());
            store.add_rule(Rule::any("", Fault::Delay(LATENCY)));
            (
                store,
                format!("storage at {} ms per request", LATENCY.as_millis()),
            )
        }
    };
    let options =
        SinkOptions::from_query("protocol=csv&flush-interval=60s&date-separator=none").unwrap();
    let config = SinkConfig::new("bench-first-flush").with_spool(spool(
        &root.path().join("spool"),
        256 << 20,
        1 << 30,
    ));
    let registry = prometheus::Registry::new();
    let sink = Sink::with_store(Arc::new(store.clone()), options, config, &registry)
        .await
        .expect("sink");
    let before = store.log().len();
    for i in 0..tables {
        let d = format!("d{i}");
        sink.add_dispatcher(&d, FileNaming::Table)
            .expect("dispatcher");
        let ev = DmlEvent {
            table: table(i),
            partition_id: None,
            commit_ts: Ts::from_parts(1_700_000_001_000, i as u64),
            rows: rows(0, 10),
        };
        sink.add_dml_event(&d, ev, None, None)
            .expect("add_dml_event");
    }
    let start = Instant::now();
    sink.close().await.expect("close");
    let secs = start.elapsed().as_secs_f64();
    let log = store.log();
    let requests = &log[before..];
    let sequential: f64 = requests
        .iter()
        .map(|r| r.finished.saturating_sub(r.started).as_secs_f64())
        .sum();
    println!(
        "first flush: {tables} new tables, {} requests ({storage}) in {secs:.2}s; the requests \
         took {sequential:.1}s added up",
        requests.len()
    );
    bench_line(
        "sink",
        &format!("first flush of {tables} new tables, {storage}"),
        secs,
        "s",
        ("its requests' time added up", sequential),
        "<= 0.1",
    );
}

async fn low_traffic() {
    let secs = env_u64("BENCH_SECS", 15);
    let root = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let store = local_fault_store(root.path());
    let spool_dir = root.path().join("spool");
    let config = SinkConfig::new("bench-low").with_spool(spool(&spool_dir, 256 << 20, 1 << 30));
    let query = "protocol=csv&flush-interval=5s&worker-count=2";
    let (sink, tables, _) = setup(Arc::new(store.clone()), query, config).await;
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let template = rows(0, 1);
    let start = Instant::now();
    let mut commit = Ts::from_parts(1_700_000_001_000, 0).0;
    // Dispatcher d sends at d ms past every second.
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut next = 0u64; // next send slot, in ms since start
    while start.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        let now_ms = start.elapsed().as_millis() as u64;
        while next <= now_ms {
            let d = (next % 1000) as usize;
            commit += 1;
            let ev = DmlEvent {
                table: Arc::clone(&tables[d]),
                partition_id: None,
                commit_ts: Ts(commit),
                rows: template.clone(),
            };
            let lat = Arc::clone(&latencies);
            let at = Instant::now();
            sink.add_dml_event(
                &format!("d{d}"),
                ev,
                Some(Box::new(move || {
                    let l = at.elapsed();
                    lat.lock().unwrap_or_else(|e| e.into_inner()).push(l);
                })),
                None,
            )
            .expect("add");
            next += 1;
        }
    }
    sink.close().await.expect("close");
    let mut l = latencies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
    // Flush spread: data file puts per 10 ms window, excluding the close at the end.
    let close_from = store
        .log()
        .iter()
        .map(|r| r.started)
        .max()
        .unwrap_or_default();
    let mut windows = std::collections::BTreeMap::<u128, usize>::new();
    let mut files = 0;
    for r in store.log() {
        if r.op == Op::Put
            && r.path.ends_with(".csv")
            && r.started + Duration::from_millis(500) < close_from
        {
            *windows.entry(r.started.as_millis() / 10).or_default() += 1;
            files += 1;
        }
    }
    let busiest = windows.values().copied().max().unwrap_or(0);
    println!(
        "low traffic: {} events from {DISPATCHERS} dispatchers at 1/s for {secs}s; wake latency \
         p50 {:?} p99 {:?} max {:?}; {files} interval-flushed files before close, busiest 10 ms \
         window {busiest} files ({:.1}% of {DISPATCHERS} tables)",
        l.len(),
        pct(0.5),
        pct(0.99),
        l.last().copied().unwrap_or_default(),
        busiest as f64 * 100.0 / DISPATCHERS as f64
    );
    bench_line(
        "sink",
        "low traffic: wake latency p99, 1000 dispatchers at 1 txn/s",
        pct(0.99).as_secs_f64() * 1e6,
        "us",
        ("target 1 ms", 1000.0),
        "<= 1.0",
    );
    bench_line(
        "sink",
        "low traffic: busiest 10 ms flush window (files)",
        busiest as f64,
        "files",
        ("tables (a sweep would flush all)", DISPATCHERS as f64),
        "<< 1.0",
    );
}

/// The producer's rate alone, in bytes/s (the `memory` scenario's probe, run by
/// [`probe_in_child`] in its own process).
async fn memory_probe() {
    let workers = env_u64("BENCH_WORKERS", 2);
    let root = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let rate = {
        let spool_dir = root.path().join("spool-probe");
        let config = SinkConfig::new("bench-probe").with_spool(spool(&spool_dir, 1 << 30, 4 << 30));
        let query = format!("protocol=csv&flush-interval=60s&worker-count={workers}");
        let mem: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let (sink, tables, awake) = setup(mem, &query, config).await;
        let flushed = Arc::new(AtomicU64::new(0));
        let s2 = Arc::clone(&sink);
        let start = Instant::now();
        let sent = tokio::task::spawn_blocking(move || {
            let next = cloning(tables, rows(0, ROWS_PER_EVENT));
            produce(&s2, &Park::new(), &awake, &flushed, next, |sent| {
                sent < 1_000_000
            })
        })
        .await
        .expect("producer");
        let rate = sent as f64 * 100.0 / start.elapsed().as_secs_f64(); // ~100 csv bytes/row
        sink.close().await.expect("close");
        rate
    };
    println!("PROBE {rate}");
}

/// Runs `memory-probe` in a child process and returns the rate it printed.
fn probe_in_child() -> f64 {
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .arg("memory-probe")
        .output()
        .expect("run the memory probe");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("PROBE "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("the memory probe printed no rate: {text}"))
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = args.is_empty();
    let want = |n: &str| all || args.iter().any(|a| a == n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if want("throughput") {
        rt.block_on(throughput());
    }
    if want("low-traffic") {
        rt.block_on(low_traffic());
    }
    if want("memory") {
        rt.block_on(memory());
    }
    if want("first-flush") {
        rt.block_on(first_flush());
    }
    // Only when asked by name (the `memory` scenario's child process).
    if args.iter().any(|a| a == "memory-probe") {
        rt.block_on(memory_probe());
    }
}
