//! The sink's cost curve by dispatcher count: rows/s and peak RSS with 10, 100, 1,000 and
//! 10,000 dispatchers (and 20,000 unless `BENCH_QUICK=1`), each a table of its own, csv to
//! local files, the same rows in total (events of 10 rows, round robin, the next event of a
//! dispatcher only after its wake). Each count runs in a fresh child process so that its peak
//! RSS (`VmHWM`) is its own; the figure is the peak above the process's RSS before the sink
//! opened, beside the spool's memory quota: what is left over is the per-dispatcher cost.
//!
//! ```text
//! cargo bench -p cdc-sink --bench dispatchers
//! ```
//!
//! Environment: `BENCH_ROWS` (total rows per count, default 400,000), `BENCH_DIR` (default:
//! the system temp dir), `BENCH_QUICK=1` (up to 10,000 dispatchers, 200,000 rows).

use cdc_common::testing::bench_line;
use cdc_common::{ColumnDef, ColumnType, DmlEvent, RowChange, SinkOptions, TableDef, Ts, Value};
use cdc_sink::{FileNaming, Sink, SinkConfig};
use object_store::ObjectStore;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The spool's memory quota in every run.
const QUOTA_MIB: u64 = 64;
/// The documented bound (docs/architecture.md, "Memory"): peak RSS above start stays under the
/// quota + this fixed part (runtime, encoder and writer threads, buffers) + this much per
/// dispatcher (its state, table definition, open batch and file names).
const FIXED_MIB: f64 = 32.0;
const PER_DISPATCHER_KIB: f64 = 12.0;
const ROWS_PER_EVENT: usize = 10;

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

fn table(i: usize) -> Arc<TableDef> {
    Arc::new(TableDef {
        schema: "bench".into(),
        table: format!("t{i:05}"),
        table_id: i as i64,
        version: Ts::from_parts(1_700_000_000_000, 0),
        columns: vec![
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            ColumnDef::new("a", ColumnType::Int),
            ColumnDef::new("s", ColumnType::VarChar),
            ColumnDef::new("d", ColumnType::Double),
        ],
    })
}

fn event(t: &Arc<TableDef>, ts: Ts, base: i64) -> DmlEvent {
    DmlEvent {
        table: Arc::clone(t),
        partition_id: None,
        commit_ts: ts,
        rows: (0..ROWS_PER_EVENT as i64)
            .map(|k| RowChange::Insert {
                after: vec![
                    Value::Int(base + k),
                    Value::Int(k),
                    Value::String("abcdefghijklmnop".into()),
                    Value::Double(k as f64 * 0.5),
                ],
            })
            .collect(),
    }
}

/// One count, in this process: prints `RESULT <dispatchers> <rows/s> <peak above start, KiB>`.
async fn one(dispatchers: usize, total_rows: u64) {
    let dir = std::env::var("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let root = tempfile::tempdir_in(dir).expect("tempdir");
    let out = root.path().join("sink");
    std::fs::create_dir_all(&out).expect("mkdir");
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&out).expect("store"));
    let spool = cdc_spool::SpoolConfig::builder()
        .dir(root.path().join("spool"))
        .memory_quota(QUOTA_MIB << 20)
        .disk_quota(4 << 30)
        .build()
        .expect("spool");
    let start_rss = status_kib("VmRSS:");
    let options =
        SinkOptions::from_query("protocol=csv&flush-interval=5s&date-separator=none").unwrap();
    let registry = prometheus::Registry::new();
    let config = SinkConfig::new("bench-dispatchers").with_spool(spool);
    let sink = Arc::new(
        Sink::with_store(store, options, config, &registry)
            .await
            .expect("sink"),
    );
    let tables: Vec<_> = (0..dispatchers).map(table).collect();
    for d in 0..dispatchers {
        sink.add_dispatcher(&format!("d{d}"), FileNaming::Table)
            .expect("dispatcher");
    }
    let awake: Vec<_> = (0..dispatchers)
        .map(|_| Arc::new(AtomicBool::new(true)))
        .collect();
    let flushed = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let (s2, f2) = (Arc::clone(&sink), Arc::clone(&flushed));
    let sent = tokio::task::spawn_blocking(move || {
        let mut sent = 0u64;
        let mut ts = Ts::from_parts(1_700_000_001_000, 0).0;
        while sent < total_rows {
            let mut any = false;
            for (d, flag) in awake.iter().enumerate() {
                if sent >= total_rows {
                    break;
                }
                if !flag.load(Ordering::Acquire) {
                    continue;
                }
                flag.store(false, Ordering::Release);
                any = true;
                ts += 1;
                let (a, f) = (Arc::clone(flag), Arc::clone(&f2));
                s2.add_dml_event(
                    &format!("d{d}"),
                    event(&tables[d], Ts(ts), sent as i64),
                    Some(Box::new(move || a.store(true, Ordering::Release))),
                    Some(Box::new(move || {
                        f.fetch_add(ROWS_PER_EVENT as u64, Ordering::Relaxed);
                    })),
                )
                .expect("add_dml_event");
                sent += ROWS_PER_EVENT as u64;
            }
            if !any {
                std::thread::yield_now();
            }
        }
        sent
    })
    .await
    .expect("producer");
    sink.close().await.expect("close");
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(flushed.load(Ordering::SeqCst), sent, "every row flushed");
    let peak = status_kib("VmHWM:").saturating_sub(start_rss);
    println!("RESULT {dispatchers} {:.0} {peak}", sent as f64 / secs);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let total_rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 200_000 } else { 400_000 });
    if let Some(n) = std::env::var("BENCH_ONE_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        rt.block_on(one(n, total_rows));
        return;
    }
    let counts: &[usize] = if quick {
        &[10, 100, 1_000, 10_000]
    } else {
        &[10, 100, 1_000, 10_000, 20_000]
    };
    let exe = std::env::current_exe().expect("exe");
    let mut results = Vec::new();
    for &n in counts {
        let out = std::process::Command::new(&exe)
            .env("BENCH_ONE_COUNT", n.to_string())
            .env("BENCH_ROWS", total_rows.to_string())
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("RESULT "))
            .unwrap_or_else(|| {
                panic!(
                    "{n} dispatchers: no result: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let f: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        results.push((n, f[1], f[2] / 1024.0));
    }
    println!("dispatchers  rows/s      peak RSS above start  beyond the {QUOTA_MIB} MiB quota, per dispatcher");
    for &(n, rate, mib) in &results {
        let beyond = (mib - QUOTA_MIB as f64).max(0.0) * 1024.0 / n as f64;
        println!("{n:>11}  {rate:>9.0}   {mib:>8.1} MiB            {beyond:>8.1} KiB");
        let bound = QUOTA_MIB as f64 + FIXED_MIB + n as f64 * PER_DISPATCHER_KIB / 1024.0;
        bench_line(
            "sink",
            &format!("{n} dispatchers, csv to local fs: peak RSS above start ({rate:.0} rows/s)"),
            mib,
            "MiB",
            (
                &format!("quota + {FIXED_MIB} MiB + {PER_DISPATCHER_KIB} KiB/dispatcher"),
                bound,
            ),
            "<= 1.0",
        );
    }
}
