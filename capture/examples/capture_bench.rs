//! Capture benchmark (run by `cdc-storage bench --postgres-uri ...`, release build):
//!
//! 1. **Throughput.** A table of `rows` rows (5 columns: bigint key, int, text, numeric,
//!    timestamptz) is read three ways: PostgreSQL's own `COPY ... TO STDOUT` (the baseline,
//!    bytes drained on the client), capture's initial snapshot into local storage (capture
//!    start until the sink's first checkpoint: the rows are durable), and the same number of
//!    rows committed in one transaction and streamed (commit until the slot confirmed the
//!    commit: the rows are durable in storage and checkpointed).
//! 2. **End-to-end lag.** With capture and a consumer (into SQLite) both running, a writer
//!    commits 10 rows every 10 ms (1,000 row changes/s) for `lag-secs` seconds; a reader polls
//!    the SQLite file every 2 ms. A transaction's lag is the first poll that sees its last row
//!    minus the moment its COMMIT returned. p50/p99 over every transaction.
//!
//! Settings of the lag run (the lag is mostly these): sink `flush-interval=200ms`, capture
//! `--poll-interval 100ms` (its default), consumer `--interval 100ms`.
//!
//! Usage: `capture_bench <rows> <postgres-uri> [lag-secs]`. Prints `BENCH {...}` lines.

use cdc_capture::{CaptureArgs, CaptureConfig, CaptureReport};
use cdc_common::testing::bench_line;
use cdc_consumer::config::{Args, Config};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use clap::Parser;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_postgres::{Client, NoTls};

/// Rows per writer transaction and transactions per second of the lag run.
const LAG_TXN_ROWS: usize = 10;
const LAG_TICK: Duration = Duration::from_millis(10);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let usage = "usage: capture_bench <rows> <postgres-uri> [lag-secs]";
    let rows: usize = argv.get(1).and_then(|v| v.parse().ok()).expect(usage);
    let uri = argv.get(2).expect(usage).clone();
    let lag_secs: u64 = argv.get(3).map_or(20, |v| v.parse().expect(usage));
    let c = connect(&uri).await;
    let schema = format!("capbench_{}", std::process::id());
    let dir = tempfile::tempdir().expect("temp dir");

    prepare(&c, &schema, rows).await;
    let copy = copy_to(&c, &schema).await;
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    let (snapshot, streamed) = capture_throughput(&uri, &c, &schema, rows, dir.path()).await;
    eprintln!(
        "{rows} rows: COPY TO {copy:?}, snapshot {snapshot:?}, streamed {streamed:?} (commit to confirmed)"
    );
    let copy_line = ("postgres_copy_to_rows_per_s", rate(copy));
    bench_line(
        "capture",
        "snapshot_rows_per_s",
        rate(snapshot),
        "rows/s",
        copy_line,
        "",
    );
    bench_line(
        "capture",
        "stream_rows_per_s",
        rate(streamed),
        "rows/s",
        copy_line,
        "",
    );

    let lags = end_to_end_lag(&uri, &c, &schema, dir.path(), lag_secs).await;
    let (p50, p99) = (percentile(&lags, 0.50), percentile(&lags, 0.99));
    eprintln!(
        "lag over {} transactions ({} row changes/s): p50 {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms",
        lags.len(),
        LAG_TXN_ROWS as u64 * 1000 / LAG_TICK.as_millis() as u64,
        lags.last().copied().unwrap_or(0.0)
    );
    bench_line(
        "capture",
        "e2e_lag_p50_at_1000_changes_per_s",
        p50,
        "ms",
        ("", 0.0),
        "",
    );
    bench_line(
        "capture",
        "e2e_lag_p99_at_1000_changes_per_s",
        p99,
        "ms",
        ("", 0.0),
        "",
    );
    c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop bench schema");
}

async fn connect(uri: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(uri, NoTls)
        .await
        .expect("connect to the PostgreSQL given");
    tokio::spawn(conn);
    client
}

/// Phase: the bench schema, the bulk table with `rows` rows, and the empty lag table.
async fn prepare(c: &Client, schema: &str, rows: usize) {
    c.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.bulk (id bigint PRIMARY KEY, n int, label text, amount numeric(12,2), at timestamptz);
         INSERT INTO {schema}.bulk SELECT i, i % 1000, 'label ' || i, i * 0.01, TIMESTAMPTZ '2024-01-01' + i * INTERVAL '1 second'
           FROM generate_series(1, {rows}) i;
         CREATE TABLE {schema}.lag (id bigserial PRIMARY KEY, v text, at timestamptz DEFAULT now());
         ANALYZE {schema}.bulk;"
    ))
    .await
    .expect("prepare the bench tables");
}

/// Phase: the baseline, PostgreSQL's own COPY of the bulk table to the client.
async fn copy_to(c: &Client, schema: &str) -> Duration {
    let start = Instant::now();
    let stream = c
        .copy_out(&format!("COPY {schema}.bulk TO STDOUT"))
        .await
        .expect("COPY TO");
    futures::pin_mut!(stream);
    let mut bytes = 0usize;
    while let Some(chunk) = stream.next().await {
        bytes += chunk.expect("COPY data").len();
    }
    assert!(bytes > 0, "COPY returned nothing");
    start.elapsed()
}

/// A capture of `tables` (a publication and slot of their own) into `storage`.
struct Capture {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<cdc_capture::Result<CaptureReport>>,
    slot: String,
    publication: String,
    sink_uri: String,
}

impl Capture {
    async fn start(uri: &str, c: &Client, name: &str, tables: &str, storage: &Path) -> Capture {
        let (slot, publication) = (format!("{name}_slot"), format!("{name}_pub"));
        c.batch_execute(&format!(
            "CREATE PUBLICATION {publication} FOR TABLE {tables}"
        ))
        .await
        .expect("create publication");
        let sink_uri = format!(
            "file://{}?protocol=csv&flush-interval=200ms&include-commit-ts=true",
            storage.display()
        );
        let cfg = CaptureConfig::from_args(&CaptureArgs {
            source: Some(uri.into()),
            publication: Some(publication.clone()),
            slot: Some(slot.clone()),
            sink_uri: Some(sink_uri.clone()),
            poll_interval: Some("100ms".into()),
            ..Default::default()
        })
        .expect("capture config");
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(cdc_capture::capture(cfg, rx));
        Capture {
            stop,
            task,
            slot,
            publication,
            sink_uri,
        }
    }

    /// Waits until the slot confirmed everything written so far.
    async fn wait_confirmed(&self, c: &Client) {
        let lsn: String = c
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .unwrap()
            .get(0);
        loop {
            let done: bool = c
                .query_one(
                    "SELECT coalesce(confirmed_flush_lsn >= $2::text::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1",
                    &[&self.slot, &lsn],
                )
                .await
                .expect("slot position")
                .get(0);
            if done {
                return;
            }
            assert!(!self.task.is_finished(), "capture stopped early");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn stop(self, c: &Client) -> CaptureReport {
        let _ = self.stop.send(true);
        let report = self.task.await.expect("capture task").expect("capture");
        c.batch_execute(&format!(
            "SELECT pg_drop_replication_slot('{}'); DROP PUBLICATION {};",
            self.slot, self.publication
        ))
        .await
        .expect("drop slot and publication");
        report
    }
}

/// Phase: capture's snapshot of the bulk table, then `rows` more rows in one streamed
/// transaction. Returns (snapshot, streamed) durations.
async fn capture_throughput(
    uri: &str,
    c: &Client,
    schema: &str,
    rows: usize,
    dir: &Path,
) -> (Duration, Duration) {
    let storage = dir.join("throughput");
    let start = Instant::now();
    let cap = Capture::start(
        uri,
        c,
        &format!("{schema}_tp"),
        &format!("{schema}.bulk"),
        &storage,
    )
    .await;
    // The first checkpoint is written once every snapshot row is durable.
    while !storage.join("metadata").exists() {
        assert!(
            !cap.task.is_finished(),
            "capture stopped during the snapshot"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let snapshot = start.elapsed();
    c.batch_execute(&format!(
        "INSERT INTO {schema}.bulk SELECT i, i % 1000, 'label ' || i, i * 0.01, TIMESTAMPTZ '2024-01-01' + i * INTERVAL '1 second'
           FROM generate_series({}, {}) i",
        rows + 1,
        2 * rows
    ))
    .await
    .expect("streamed insert");
    let committed = Instant::now();
    cap.wait_confirmed(c).await;
    let streamed = committed.elapsed();
    let report = cap.stop(c).await;
    assert_eq!(report.snapshot_rows, rows as u64, "{report:?}");
    assert!(report.rows >= 2 * rows as u64, "{report:?}");
    (snapshot, streamed)
}

/// Phase: capture and a consumer running, the steady writer, the SQLite poller. Returns
/// every transaction's lag in ms, sorted.
async fn end_to_end_lag(uri: &str, c: &Client, schema: &str, dir: &Path, secs: u64) -> Vec<f64> {
    let storage = dir.join("lag");
    let db = dir.join("lag.db");
    let cap = Capture::start(
        uri,
        c,
        &format!("{schema}_lag"),
        &format!("{schema}.lag"),
        &storage,
    )
    .await;
    while !storage.join("metadata").exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let consumer = start_consumer(&cap.sink_uri, &db);
    let table = format!("{schema}.lag");
    let (seen_tx, seen_rx) = watch::channel(0i64);
    let poller = {
        let db = db.clone();
        std::thread::spawn(move || poll_visible(&db, &table, seen_rx))
    };

    let writer = connect(uri).await;
    let insert = writer
        .prepare(&format!(
            "INSERT INTO {schema}.lag (v) SELECT 'row ' || g FROM generate_series(1, {LAG_TXN_ROWS}) g RETURNING id"
        ))
        .await
        .expect("prepare insert");
    let mut commits: Vec<(i64, Instant)> = Vec::new();
    let mut tick = tokio::time::interval(LAG_TICK);
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        tick.tick().await;
        let ids = writer.query(&insert, &[]).await.expect("insert");
        let last: i64 = ids.iter().map(|r| r.get::<_, i64>(0)).max().unwrap();
        commits.push((last, Instant::now()));
    }
    let last = commits.last().expect("no transaction written").0;
    seen_tx.send(last).expect("poller running");
    let seen = poller.join().expect("poller");
    consumer.abort();
    cap.stop(c).await;

    let mut lags: Vec<f64> = commits
        .iter()
        .map(|(id, at)| {
            let visible = seen
                .iter()
                .find(|(max, _)| max >= id)
                .unwrap_or_else(|| panic!("row {id} never became visible"))
                .1;
            visible.saturating_duration_since(*at).as_secs_f64() * 1000.0
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    lags
}

/// The consumer, replaying the lag run's storage into SQLite every 100 ms until aborted.
fn start_consumer(sink_uri: &str, db: &Path) -> tokio::task::JoinHandle<()> {
    let down = format!("sqlite://{}", db.display());
    let argv = [
        "storage-consumer",
        "--upstream-uri",
        sink_uri,
        "--downstream-uri",
        &down,
        "--interval",
        "100ms",
    ];
    let cfg = Config::from_args(&Args::parse_from(argv)).expect("consumer config");
    tokio::spawn(async move {
        let r = cdc_consumer::replayer(
            &cfg,
            Metrics::new(),
            Arc::new(Mutex::new(Health::default())),
        )
        .await
        .expect("replayer");
        cdc_consumer::run(&cfg, r).await.expect("consumer");
    })
}

/// Polls `max(id)` of the replicated table every 2 ms; records each new maximum with the
/// moment it was first seen, until the maximum reaches the id `last` announces (60 s limit
/// after the announcement).
fn poll_visible(db: &PathBuf, table: &str, last: watch::Receiver<i64>) -> Vec<(i64, Instant)> {
    let mut seen: Vec<(i64, Instant)> = Vec::new();
    let mut conn: Option<rusqlite::Connection> = None;
    let mut deadline: Option<Instant> = None;
    let sql = format!("SELECT coalesce(max(id), 0) FROM \"{table}\"");
    loop {
        let target = *last.borrow();
        if target > 0 && deadline.is_none() {
            deadline = Some(Instant::now() + Duration::from_secs(60));
        }
        if conn.is_none() && db.exists() {
            let c = rusqlite::Connection::open_with_flags(
                db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open the replica");
            c.busy_timeout(Duration::from_secs(1)).unwrap();
            conn = Some(c);
        }
        let max = conn
            .as_ref()
            .and_then(|c| c.query_row(&sql, [], |r| r.get::<_, i64>(0)).ok())
            .unwrap_or(0);
        let now = Instant::now();
        if max > seen.last().map_or(0, |s| s.0) {
            seen.push((max, now));
        }
        if target > 0 && max >= target {
            return seen;
        }
        if let Some(d) = deadline {
            assert!(
                now < d,
                "row {target} not visible in the replica within 60 s"
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The `q` quantile of sorted values (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
