//! Replay throughput beside the databases' own bulk loaders, on the same rows.
//!
//! ```text
//! cargo run --release -p cdc-consumer --example replay_bench -- [ROWS_PER_TABLE] \
//!     [--postgres URI] [--mysql URI] [--s3 URI]
//! ```
//!
//! (`ROWS_PER_TABLE POSTGRES_URI`, the older form, still works; `REPLAY_BENCH_CONSUMER_ARGS`
//! adds consumer flags, e.g. `--read-ahead 8`, to every replay.) The storage is
//! [`fixture`]'s: 50 tables of 10 columns written as the sink writes them. Measured, each in
//! one run, every figure a `BENCH` line with its ratio and target:
//!
//! - [`sqlite`]: `storage-consumer` (library, `--once`) into a fresh SQLite file, beside the
//!   sqlite3 shell's `.import` of the same rows as plain csv into the same table definitions;
//! - [`s3`], given an S3-compatible URI: the same storage put on that server and replayed into
//!   a fresh SQLite file, beside the replay from local disk;
//! - [`postgres`], given a URI: the consumer into fresh schemas, beside `psql` `\copy`;
//! - [`mysql`], given a MySQL/MariaDB URI: the consumer into a fresh database, beside the
//!   `mariadb` client's `LOAD DATA LOCAL INFILE` of the same rows.

mod fixture;
mod mysql;
mod postgres;
mod s3;
mod sqlite;

use cdc_consumer::config::{Args, Config};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use clap::Parser;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What to measure against.
#[derive(Default)]
struct Cli {
    per_table: Option<u64>,
    postgres: Option<String>,
    mysql: Option<String>,
    s3: Option<String>,
}

fn cli() -> Cli {
    let mut c = Cli::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a URI"));
        match a.as_str() {
            "--postgres" => c.postgres = Some(value()),
            "--mysql" => c.mysql = Some(value()),
            "--s3" => c.s3 = Some(value()),
            _ if c.per_table.is_none() => {
                c.per_table = Some(a.parse().unwrap_or_else(|_| {
                    panic!("ROWS_PER_TABLE must be a number of rows, not {a:?}")
                }))
            }
            _ if c.postgres.is_none() => c.postgres = Some(a),
            _ => panic!("unexpected argument {a:?} (see the example's doc)"),
        }
    }
    c
}

#[tokio::main]
async fn main() {
    let cli = cli();
    let fx = fixture::write(cli.per_table.unwrap_or(20_000)).await;
    let local_rate = sqlite::bench(&fx).await;
    if let Some(uri) = &cli.s3 {
        s3::bench(&fx, uri, local_rate).await;
    }
    if let Some(uri) = &cli.postgres {
        postgres::bench(&fx, uri).await;
    }
    if let Some(uri) = &cli.mysql {
        mysql::bench(&fx, uri).await;
    }
}

/// Seconds the consumer (`storage-consumer --once`, as a library) takes to replay `uri` into
/// `down`. `REPLAY_BENCH_CONSUMER_ARGS` (whitespace-separated flags, e.g. `--read-ahead 8`) is
/// added to its command line, to compare settings with one binary.
pub async fn replay(uri: &str, down: &str) -> f64 {
    let mut argv: Vec<String> = [
        "storage-consumer",
        "--upstream-uri",
        uri,
        "--downstream-uri",
        down,
        "--once",
        "--log-level",
        "warn",
    ]
    .map(String::from)
    .to_vec();
    if let Ok(extra) = std::env::var("REPLAY_BENCH_CONSUMER_ARGS") {
        argv.extend(extra.split_whitespace().map(String::from));
    }
    let cfg = Config::from_args(&Args::parse_from(argv)).expect("config");
    let metrics = Metrics::new();
    let t = Instant::now();
    let cpu = cdc_common::testing::process_cpu_secs();
    let r = cdc_consumer::replayer(
        &cfg,
        metrics.clone(),
        Arc::new(Mutex::new(Health::default())),
    )
    .await
    .expect("replayer");
    cdc_consumer::run(&cfg, r).await.expect("replay");
    let secs = t.elapsed().as_secs_f64();
    // What limits a replay: the consumer's own CPU, or waiting on the database.
    println!(
        "        (the consumer's CPU: {:.2} s in {secs:.2} s of replay)",
        cdc_common::testing::process_cpu_secs() - cpu
    );
    // Or waiting on storage: its requests, and how long the replay waited for data files.
    let gets = metrics.get_duration.get_sample_count();
    println!(
        "        (storage: {gets} GETs and {} LISTs, a GET {:.1} ms on average; the replay waited {:.2} s for data files)",
        metrics.list_calls.get(),
        metrics.get_duration.get_sample_sum() * 1000.0 / gets.max(1) as f64,
        metrics.read_wait_seconds.get()
    );
    secs
}

/// Prints a timed step's seconds and rows/s and returns the rate.
pub fn report(what: &str, total: u64, secs: f64) -> f64 {
    let rate = total as f64 / secs;
    println!("{what:<32}: {secs:7.2}s  {rate:10.0} rows/s");
    rate
}
