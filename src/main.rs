//! `cdc-storage`: demo, generate, verify, soak, consume, capture and bench commands in one binary.
//!
//! This file is argument parsing and dispatch only: the jobs live in `cdc-harness` (workload,
//! generate, verify, soak, demo), `cdc-consumer` (consume) and `cdc-capture` (capture);
//! `bench.rs` runs the benchmark harnesses.
#![deny(unsafe_code)]

mod bench;

use anyhow::{bail, Result};
use cdc_consumer::progress_bar::{Bar, LogWriter};
use cdc_harness::workload::{Workload, WorkloadConfig};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cdc-storage",
    version,
    about = "CDC cloud-storage sink and consumer: demo, generate, verify"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (error, warn, info, debug, or a tracing env-filter directive).
    #[arg(long, global = true, default_value = "warn", env = "RUST_LOG")]
    log_level: String,
    /// No progress bars (they are drawn only when stderr is a terminal anyway).
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Args, Clone, Debug)]
struct WorkloadArgs {
    /// Dispatchers (N).
    #[arg(long, default_value_t = 16)]
    dispatchers: usize,
    /// Tables (M); dispatcher d serves table d % M.
    #[arg(long, default_value_t = 8)]
    tables: usize,
    /// Transactions.
    #[arg(long, default_value_t = 20_000)]
    transactions: u64,
    /// Row changes per transaction.
    #[arg(long, default_value_t = 10)]
    rows_per_txn: usize,
    /// A DDL every K transactions (0 = none).
    #[arg(long, default_value_t = 2_000)]
    ddl_every: u64,
    /// Seed: the same flags and seed give the same workload.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Schema (database) of the workload's tables.
    #[arg(long, default_value = cdc_harness::workload::SCHEMA)]
    schema: String,
    /// Commit ts (TSO) of the first table; later steps take the next ts. Without it commit ts
    /// come from the clock. `generate --resume` needs it (the same steps on every run).
    #[arg(long)]
    start_ts: Option<u64>,
    /// Live rows a dispatcher may own; at the cap inserts become deletes (tables stop growing).
    #[arg(long)]
    live_rows_cap: Option<usize>,
}

impl WorkloadArgs {
    fn config(&self) -> Result<WorkloadConfig> {
        if self.dispatchers == 0 || self.tables == 0 || self.rows_per_txn == 0 {
            bail!("--dispatchers, --tables and --rows-per-txn must be at least 1");
        }
        Ok(WorkloadConfig {
            dispatchers: self.dispatchers,
            tables: self.tables,
            transactions: self.transactions,
            rows_per_txn: self.rows_per_txn,
            ddl_every: self.ddl_every,
            seed: self.seed,
            schema: self.schema.clone(),
            start_ts: self.start_ts.map(cdc_common::Ts),
            live_rows_cap: self.live_rows_cap,
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Generate a workload into a local directory, replay it into SQLite, verify, summarize.
    Demo {
        /// Working directory (cleared first): storage/ and demo.db go here.
        #[arg(long, default_value = "cdc-demo")]
        dir: PathBuf,
        /// Sink options as a URI query (protocol, flush-interval, file-size, ...).
        #[arg(
            long,
            default_value = "protocol=csv&flush-interval=200ms&date-separator=day&include-commit-ts=true"
        )]
        sink_options: String,
        #[command(flatten)]
        workload: WorkloadArgs,
    },
    /// Soak: the generator at a fixed rate with the consumer following, in one process, for a
    /// bounded time; reports lag and resident memory over time, then verifies the downstream.
    /// Exits 1 when lag grows, memory grows or a row differs.
    Soak {
        /// Directory for the storage and the SQLite file (cleared first).
        #[arg(long, default_value = "cdc-soak")]
        dir: PathBuf,
        /// How long the generator runs, in seconds (CI runs a short soak; give 600+ by hand).
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Transactions per second.
        #[arg(long, default_value_t = 500.0)]
        tps: f64,
        /// Sink options (storage URI query).
        #[arg(
            long,
            default_value = "protocol=csv&flush-interval=200ms&date-separator=day&include-commit-ts=true"
        )]
        sink_options: String,
        /// Print the report (with every sample) as one JSON line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        workload: WorkloadArgs,
    },
    /// Run storage-consumer (the same flags, e.g. `consume --upstream-uri file:///dir
    /// --downstream-uri sqlite:///x.db --once`), so that one binary does every job.
    Consume {
        /// storage-consumer's flags (see `storage-consumer --help`); the log level is this
        /// command's `--log-level` given before `consume`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Play a workload into a sink, as a CDC service embedding the sink would.
    Generate {
        /// Storage URI with sink options as query parameters.
        #[arg(long)]
        sink_uri: String,
        /// Transactions per second (0 = as fast as possible).
        #[arg(long, default_value_t = 0.0)]
        tps: f64,
        /// Restart after a crash: send only the steps above the checkpoint in storage (as a
        /// CDC service restarting from its checkpoint). Needs --start-ts.
        #[arg(long)]
        resume: bool,
        /// Delay every index file put by this many milliseconds (crash testing: widens the
        /// window in which a kill leaves a data file without its index entry).
        #[arg(long)]
        delay_index_puts_ms: Option<u64>,
        /// Serve the sink's metrics at http://ADDR/metrics while generating (`9100` binds
        /// 127.0.0.1:9100; `0.0.0.0:9100` every interface), as an embedder would with
        /// `cdc_sink::serve_metrics`.
        #[arg(long)]
        metrics_addr: Option<String>,
        /// Play node I's share of N nodes of one CDC service (`0/2`): dispatchers d with
        /// d % N == I, dispatcher-named files, progress in `metadata.node-I`, and `metadata` the
        /// minimum over every node. Run N processes on one storage. Needs --start-ts and
        /// --tables a multiple of N.
        #[arg(long)]
        node: Option<String>,
        #[command(flatten)]
        workload: WorkloadArgs,
    },
    /// Run the spool, sink and consumer benchmarks and print one table of figures, each beside
    /// its baseline from the same run (needs this source tree and cargo).
    Bench {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Shorter runs (smaller data sets), for a quick look.
        #[arg(long)]
        quick: bool,
        /// Also measure replay into PostgreSQL beside COPY, and capture from it (snapshot and
        /// stream rows/s beside COPY TO, end-to-end lag); a postgres:// URI, wal_level=logical.
        #[arg(long)]
        postgres_uri: Option<String>,
        /// Measure only against the servers given (`--postgres-uri`, the CDC_TEST_*_URI
        /// variables) instead of starting the missing ones with scripts/servers.sh.
        #[arg(long)]
        no_servers: bool,
    },
    /// Replicate a PostgreSQL database (logical replication, pgoutput) into storage: snapshot,
    /// then changes, until Ctrl-C. See `cdc-capture --help` for every flag.
    Capture(cdc_capture::CaptureArgs),
    /// Compare a downstream database with the model of a workload (same flags and seed).
    Verify {
        /// sqlite:///path.db, postgres://..., mysql://...
        #[arg(long)]
        downstream_uri: String,
        #[command(flatten)]
        workload: WorkloadArgs,
    },
}

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Log lines go above any progress bar, never into it.
        .with_writer(LogWriter)
        // Colour codes only for a person at a terminal, never into log files or shippers.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = rt.block_on(run(cli.command, cli.quiet)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cmd: Command, quiet: bool) -> Result<()> {
    match cmd {
        Command::Demo {
            dir,
            sink_options,
            workload,
        } => cdc_harness::demo::demo(&dir, &workload.config()?, &sink_options).await,
        Command::Soak {
            dir,
            secs,
            tps,
            sink_options,
            json,
            workload,
        } => {
            let cfg = cdc_harness::soak::SoakConfig {
                dir,
                duration: std::time::Duration::from_secs(secs),
                tps,
                sink_query: sink_options,
                workload: workload.config()?,
                interval: std::time::Duration::from_millis(100),
                sample: std::time::Duration::from_secs(1),
                warmup: 0.25,
            };
            let r = cdc_harness::soak::soak(&cfg).await?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            }
            let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
            println!(
                "soak {secs}s at {tps} tps: {} rows, {} applied; lag p50 {} ms, p99 {} ms, peak {} ms (first half) / {} ms (second half); RSS {:.1} -> {:.1} MiB (peak {:.1}); caught up {:.1}s after the end",
                r.rows,
                r.rows_applied,
                r.lag_p50_ms,
                r.lag_p99_ms,
                r.lag_max_first_half_ms,
                r.lag_max_second_half_ms,
                mib(r.rss_start_bytes),
                mib(r.rss_end_bytes),
                mib(r.rss_max_bytes),
                r.catch_up_secs
            );
            println!(
                "lag bounded: {}, memory flat: {}, downstream equals the model: {}",
                r.lag_bounded, r.memory_flat, r.verified
            );
            if !(r.lag_bounded && r.memory_flat && r.verified) {
                bail!("soak failed");
            }
            Ok(())
        }
        Command::Consume { args } => {
            let argv = std::iter::once("storage-consumer".to_string())
                .chain(args)
                .chain(quiet.then(|| "--quiet".to_string()));
            let args = cdc_consumer::config_file::parse_args(argv)?;
            // The error text comes back with the URIs' secrets redacted.
            cdc_consumer::main_with(&args)
                .await
                .map_err(anyhow::Error::msg)
        }
        Command::Generate {
            sink_uri,
            tps,
            resume,
            delay_index_puts_ms,
            metrics_addr,
            node,
            workload,
        } => {
            let cfg = workload.config()?;
            let node = node
                .as_deref()
                .map(cdc_harness::generate::NodeShare::parse)
                .transpose()?;
            let metrics_addr = metrics_addr
                .as_deref()
                .map(cdc_consumer::config::parse_metrics_addr)
                .transpose()?;
            let opts = cdc_harness::generate::GenerateOptions {
                tps,
                resume,
                index_put_delay: delay_index_puts_ms.map(std::time::Duration::from_millis),
                metrics_addr,
                node,
            };
            let bar = Bar::new(quiet, cfg.transactions, "generate", "txns");
            let r =
                cdc_harness::generate::generate(&sink_uri, &cfg, opts, &|n| bar.set_position(n))
                    .await;
            if r.is_ok() {
                bar.finish("done");
            } else {
                bar.fail("failed");
            }
            let r = r?;
            if let Some(c) = r.resumed_from {
                println!(
                    "resumed from checkpoint-ts {c}: {} steps skipped",
                    r.skipped
                );
            }
            println!(
                "events {} rows {} (durable {}) ddls {} files {} bytes {} checkpoint-ts {} in {:.2}s ({:.0} rows/s)",
                r.events,
                r.rows,
                r.rows_flushed,
                r.ddls,
                r.files,
                r.bytes,
                r.checkpoint_ts,
                r.elapsed.as_secs_f64(),
                r.rows_per_sec()
            );
            let reasons: Vec<String> = r
                .flush_reasons
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!("flush reasons: {}", reasons.join(", "));
            if let (Some(n), Some(p)) = (node, r.node_progress) {
                println!(
                    "node {}/{}: progress {p} in metadata.node-{}; {} steps of other nodes",
                    n.index, n.count, n.index, r.others
                );
            }
            Ok(())
        }
        Command::Bench {
            json,
            quick,
            postgres_uri,
            no_servers,
        } => {
            tokio::task::spawn_blocking(move || {
                bench::bench(quick, json, postgres_uri.as_deref(), quiet, no_servers)
            })
            .await?
        }
        Command::Capture(args) => Ok(cdc_capture::run(args).await?),
        Command::Verify {
            downstream_uri,
            workload,
        } => {
            let cfg = workload.config()?;
            let model = Workload::final_model(cfg.clone());
            let bar = Bar::new(quiet, model.tables.len() as u64, "verify", "tables");
            let diffs =
                cdc_harness::verify::verify_observed(&downstream_uri, &cfg.schema, &model, &|n| {
                    bar.set_position(n)
                })
                .await;
            if diffs.is_ok() {
                bar.finish("done");
            } else {
                bar.fail("failed");
            }
            let diffs = diffs?;
            if diffs.is_empty() {
                let rows: usize = model.tables.values().map(|t| t.rows.len()).sum();
                println!(
                    "OK: {} tables, {rows} rows equal the model",
                    model.tables.len()
                );
                Ok(())
            } else {
                for d in diffs.iter().take(cdc_harness::verify::MAX_DIFFS) {
                    println!("DIFF {d}");
                }
                bail!("{} differences", diffs.len())
            }
        }
    }
}
