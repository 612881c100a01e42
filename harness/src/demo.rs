//! `demo`: the main job on the embedded defaults. Generates a workload into a local directory
//! through the sink, replays it with the consumer into a SQLite file, verifies the result
//! against the model, and prints a summary.

use crate::generate::{generate, GenerateOptions, GenerateReport};
use crate::verify::verify;
use crate::workload::{Workload, WorkloadConfig};
use anyhow::{bail, Context, Result};
use cdc_consumer::config::{Args as ConsumerArgs, Config as ConsumerConfig};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the consumer did.
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    /// Rows applied.
    pub rows: u64,
    /// Files applied.
    pub files: u64,
    /// Rounds run.
    pub rounds: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Applied ts at the end.
    pub applied_ts: u64,
    /// Upstream checkpoint ts at the end.
    pub checkpoint_ts: u64,
}

/// A consumer replayer from `upstream` into `downstream` with storage-consumer's defaults; the
/// caller drives its rounds (`demo` until nothing is left, `soak` while the generator runs).
pub async fn open_replayer(
    upstream: &str,
    downstream: &str,
) -> Result<cdc_consumer::replay::Replayer> {
    let args = ConsumerArgs {
        upstream_uri: upstream.into(),
        config: None,
        downstream_uri: downstream.into(),
        interval: "100ms".into(),
        once: false,
        unhealthy_after: None,
        stale_after: None,
        keep_rounds: cdc_consumer::audit::DEFAULT_KEEP_ROUNDS,
        until_ts: None,
        tables: None,
        metrics_addr: None,
        log_level: "warn".into(),
        batch_rows: cdc_consumer::config::DEFAULT_BATCH_ROWS,
        read_ahead: None,
        read_ahead_bytes: cdc_consumer::config::DEFAULT_READ_AHEAD_BYTES.into(),
        unit_files: cdc_consumer::replay::DEFAULT_UNIT_FILES,
        progress_file: None,
        on_bad_file: "stop".into(),
        quiet: true,
        group: None,
        member_id: None,
        lease_ttl: "10s".into(),
    };
    let cfg = ConsumerConfig::from_args(&args)?;
    let metrics = cdc_consumer::metrics::Metrics::new();
    let health = Arc::new(Mutex::new(cdc_consumer::freshness::Health::default()));
    Ok(cdc_consumer::replayer(&cfg, metrics, health).await?)
}

/// Replays `upstream` into `downstream` until nothing is left (the consumer's `--once`).
pub async fn replay(
    upstream: &str,
    downstream: &str,
    on_round: &(dyn Fn(&ReplayReport) + Sync),
) -> Result<ReplayReport> {
    let mut r = open_replayer(upstream, downstream).await?;
    let start = Instant::now();
    let mut report = ReplayReport::default();
    loop {
        let cdc_consumer::replay::RoundOutcome {
            record: rec,
            found_new,
            error: err,
        } = r.round().await;
        if let Some(e) = err {
            return Err(e).context("replay round failed");
        }
        report.rounds += 1;
        report.rows += rec.rows();
        report.files += rec.tables.values().map(|t| t.files).sum::<u64>();
        report.applied_ts = rec.applied_ts;
        report.checkpoint_ts = rec.checkpoint_ts;
        report.elapsed = start.elapsed();
        on_round(&report);
        if rec.round >= 2 && !found_new && !rec.applied_anything() {
            break;
        }
    }
    Ok(report)
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Runs the demo in `dir` (cleared first) and prints the summary.
pub async fn demo(dir: &Path, cfg: &WorkloadConfig, sink_query: &str) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let storage = dir.join("storage");
    let db = dir.join("demo.db");
    let sink_uri = format!("file://{}?{sink_query}", storage.display());
    let upstream = format!(
        "file://{}?{}",
        storage.display(),
        consumer_query(sink_query)
    );
    let downstream = format!("sqlite://{}", db.display());

    println!(
        "cdc-storage demo: {} dispatchers, {} tables, {} transactions x {} rows, a DDL every {}",
        cfg.dispatchers, cfg.tables, cfg.transactions, cfg.rows_per_txn, cfg.ddl_every
    );
    println!("  storage    {}", storage.display());
    println!("  downstream {}", db.display());

    let pb = bar(cfg.transactions, "generate");
    let g: GenerateReport = generate(&sink_uri, cfg, GenerateOptions::default(), &|n| {
        pb.set_position(n)
    })
    .await?;
    pb.finish_with_message("done");

    let pb = bar(g.rows, "replay");
    let r = replay(&upstream, &downstream, &|rep| {
        pb.set_position(rep.rows.min(g.rows))
    })
    .await?;
    pb.finish_with_message("done");

    let model = Workload::final_model(cfg.clone());
    let diffs = verify(&downstream, &cfg.schema, &model).await?;
    print_summary(&g, &r, &model, &diffs);
    if !diffs.is_empty() {
        bail!(
            "the downstream differs from the model in {} places",
            diffs.len()
        );
    }
    Ok(())
}

/// The options of a sink query the consumer needs (everything but the sink-only ones).
pub fn consumer_query(sink_query: &str) -> String {
    const SINK_ONLY: &[&str] = &[
        "worker-count",
        "flush-interval",
        "file-size",
        "file-expiration-days",
        "file-cleanup-interval",
        "spool-memory-quota",
        "spool-disk-quota",
        "spool-dir",
        "spool-high-watermark",
        "spool-low-watermark",
    ];
    sink_query
        .split('&')
        .filter(|kv| !kv.is_empty() && !SINK_ONLY.contains(&kv.split('=').next().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("&")
}

fn print_summary(
    g: &GenerateReport,
    r: &ReplayReport,
    model: &crate::workload::Model,
    diffs: &[String],
) {
    let avg = g.bytes.checked_div(g.files).unwrap_or(0);
    let lag_ms = (g.checkpoint_ts.0 >> 18).saturating_sub(r.applied_ts >> 18);
    println!();
    println!("sink");
    println!(
        "  events {:>10}   rows {:>10}   DDLs {:>6}   rows durable {:>10}",
        g.events, g.rows, g.ddls, g.rows_flushed
    );
    println!(
        "  files  {:>10}   bytes {:>9}   avg file {:>9} B",
        g.files, g.bytes, avg
    );
    let reasons: Vec<String> = g
        .flush_reasons
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!("  flush reasons: {}", reasons.join(", "));
    println!(
        "  {:.0} rows/s over {:.2}s (paused on backpressure {:.2}s)",
        g.rows_per_sec(),
        g.elapsed.as_secs_f64(),
        g.paused.as_secs_f64()
    );
    println!("consumer");
    println!(
        "  rows {:>10}   files {:>8}   rounds {:>4}   {:.0} rows/s over {:.2}s",
        r.rows,
        r.files,
        r.rounds,
        r.rows as f64 / r.elapsed.as_secs_f64().max(1e-9),
        r.elapsed.as_secs_f64()
    );
    println!(
        "  checkpoint-ts {}   applied-ts {}   lag {} ms",
        r.checkpoint_ts, r.applied_ts, lag_ms
    );
    let rows: usize = model.tables.values().map(|t| t.rows.len()).sum();
    println!("verify");
    if diffs.is_empty() {
        println!(
            "  OK: {} tables, {} rows equal the model",
            model.tables.len(),
            rows
        );
    } else {
        for d in diffs.iter().take(crate::verify::MAX_DIFFS) {
            println!("  DIFF {d}");
        }
        println!("  {} differences", diffs.len());
    }
}
