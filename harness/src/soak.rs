//! `soak`: the generator at a fixed rate with the consumer following, for a bounded time, in one
//! process; reports whether lag stays bounded and memory flat, then verifies the downstream.
//!
//! - The generator plays a clock-stamped workload (commit ts = now) at `tps` transactions per
//!   second into a local directory through the real sink; the consumer runs a replay round every
//!   `interval` into SQLite, as `storage-consumer` does.
//! - Every `sample` the soak records the consumer's lag (now minus the physical time of the ts up
//!   to which every table is applied: flush interval + checkpoint + round interval when healthy)
//!   and the process's resident memory (both sides together).
//! - The first `warmup` share of the run is left out of the verdict (caches, pools and the
//!   SQLite page cache fill there). Lag is *bounded* when the steady window's second half peaks
//!   no higher than its first half plus a slack (no upward trend); memory is *flat* when
//!   resident memory at the end exceeds the steady window's start by at most a slack.
//! - When the generator is done the consumer catches up and the downstream is verified against
//!   the workload's model: a soak that loses or duplicates a row fails whatever the figures.

use crate::generate::{generate, GenerateOptions};
use crate::verify::verify;
use crate::workload::{Workload, WorkloadConfig};
use anyhow::{bail, Context, Result};
use cdc_common::Ts;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Lag may peak this much higher in the second half of the steady window than in the first.
pub const LAG_SLACK: Duration = Duration::from_secs(2);
/// Resident memory may grow this much over the steady window.
pub const RSS_SLACK_BYTES: u64 = 48 << 20;

/// Live rows per dispatcher when the workload sets no cap.
pub const DEFAULT_LIVE_ROWS_CAP: usize = 1_000;

/// What to soak.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// Directory for the storage and the SQLite file (cleared first).
    pub dir: PathBuf,
    /// How long the generator runs.
    pub duration: Duration,
    /// Transactions per second.
    pub tps: f64,
    /// Sink options (storage URI query).
    pub sink_query: String,
    /// The workload; `transactions` is replaced by `tps * duration`, commit ts come from the
    /// clock (`start_ts` is cleared) so that lag is meaningful, and `live_rows_cap` defaults
    /// to [`DEFAULT_LIVE_ROWS_CAP`] so that the tables reach a steady size.
    pub workload: WorkloadConfig,
    /// Pause between consumer rounds.
    pub interval: Duration,
    /// Time between samples.
    pub sample: Duration,
    /// Share of the run left out of the verdict.
    pub warmup: f64,
}

/// One sample.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Sample {
    /// Seconds since the start.
    pub at_secs: f64,
    /// Consumer lag in milliseconds (`None` before anything was applied).
    pub lag_ms: Option<u64>,
    /// Resident memory of the process in bytes.
    pub rss_bytes: u64,
}

/// The soak's figures and verdict.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SoakReport {
    /// Rows handed to the sink.
    pub rows: u64,
    /// Rows the consumer applied.
    pub rows_applied: u64,
    /// Every sample.
    pub samples: Vec<Sample>,
    /// Median lag over the steady window.
    pub lag_p50_ms: u64,
    /// 99th percentile lag over the steady window.
    pub lag_p99_ms: u64,
    /// Peak lag in the first and the second half of the steady window.
    pub lag_max_first_half_ms: u64,
    /// See `lag_max_first_half_ms`.
    pub lag_max_second_half_ms: u64,
    /// Resident memory when the steady window starts, at its end, and at its peak.
    pub rss_start_bytes: u64,
    /// See `rss_start_bytes`.
    pub rss_end_bytes: u64,
    /// See `rss_start_bytes`.
    pub rss_max_bytes: u64,
    /// Time the consumer needed to catch up once the generator stopped.
    pub catch_up_secs: f64,
    /// Lag bounded (see the module doc).
    pub lag_bounded: bool,
    /// Memory flat (see the module doc).
    pub memory_flat: bool,
    /// The downstream equals the model.
    pub verified: bool,
}

/// Resident memory of this process (Linux `/proc/self/status`; 0 where unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn lag_ms(applied: Ts) -> Option<u64> {
    (applied > Ts::ZERO).then(|| {
        Ts::now()
            .physical_ms()
            .saturating_sub(applied.physical_ms())
    })
}

/// Runs the soak.
pub async fn soak(cfg: &SoakConfig) -> Result<SoakReport> {
    if cfg.tps <= 0.0 || cfg.duration.is_zero() {
        bail!("soak needs a positive --tps and --secs");
    }
    if cfg.dir.exists() {
        std::fs::remove_dir_all(&cfg.dir)
            .with_context(|| format!("clearing {}", cfg.dir.display()))?;
    }
    std::fs::create_dir_all(&cfg.dir)?;
    let storage = cfg.dir.join("storage");
    let sink_uri = format!("file://{}?{}", storage.display(), cfg.sink_query);
    let upstream = format!(
        "file://{}?{}",
        storage.display(),
        crate::demo::consumer_query(&cfg.sink_query)
    );
    let db = cfg.dir.join("soak.db");
    let downstream = format!("sqlite://{}", db.display());
    let mut workload = cfg.workload.clone();
    workload.transactions = (cfg.tps * cfg.duration.as_secs_f64()).ceil() as u64;
    workload.start_ts = None;
    // A steady state: tables stop growing, so what grows is the pipeline's own memory.
    workload.live_rows_cap.get_or_insert(DEFAULT_LIVE_ROWS_CAP);

    let opts = GenerateOptions {
        tps: cfg.tps,
        ..GenerateOptions::default()
    };
    let (w, uri) = (workload.clone(), sink_uri.clone());
    let mut gen = tokio::spawn(async move { generate(&uri, &w, opts, &|_| {}).await });

    std::fs::create_dir_all(&storage)?;
    let mut replayer = crate::demo::open_replayer(&upstream, &downstream)
        .await
        .context("opening the consumer")?;

    let start = Instant::now();
    let mut report = SoakReport::default();
    let mut next_sample = start;
    let mut generated = None;
    let mut done_at = None;
    loop {
        let cdc_consumer::replay::RoundOutcome {
            record: rec,
            found_new,
            error: err,
        } = replayer.round().await;
        if let Some(e) = err {
            // A round may fail while storage is being written (for example before the first
            // schema file); the next round retries, as storage-consumer does.
            tracing::warn!(error = %e, "soak: replay round failed; retrying");
        }
        report.rows_applied += rec.rows();
        let now = Instant::now();
        if now >= next_sample && generated.is_none() {
            report.samples.push(Sample {
                at_secs: (now - start).as_secs_f64(),
                lag_ms: lag_ms(replayer.applied_ts()),
                rss_bytes: rss_bytes(),
            });
            next_sample += cfg.sample;
        }
        if generated.is_none() && gen.is_finished() {
            let g = (&mut gen).await.context("generator task")??;
            done_at = Some(Instant::now());
            generated = Some(g);
        }
        if let Some(g) = &generated {
            let caught_up = replayer.applied_ts() >= g.checkpoint_ts;
            if caught_up && !found_new && !rec.applied_anything() {
                break;
            }
            if done_at.is_some_and(|d| d.elapsed() > Duration::from_secs(120)) {
                bail!("the consumer did not catch up within 120 s of the generator's end");
            }
        }
        tokio::time::sleep(cfg.interval).await;
    }
    let g = generated.expect("generator finished");
    report.rows = g.rows;
    report.catch_up_secs = done_at.map_or(0.0, |d| d.elapsed().as_secs_f64());
    summarize(&mut report, cfg.warmup);

    let model = Workload::final_model(workload.clone());
    let diffs = verify(&downstream, &workload.schema, &model).await?;
    report.verified = diffs.is_empty();
    for d in diffs.iter().take(crate::verify::MAX_DIFFS) {
        eprintln!("DIFF {d}");
    }
    Ok(report)
}

/// Fills the figures and the verdict from the samples after the warm-up share.
pub fn summarize(r: &mut SoakReport, warmup: f64) {
    let skip = ((r.samples.len() as f64) * warmup).ceil() as usize;
    let steady = &r.samples[skip.min(r.samples.len())..];
    let mut lags: Vec<u64> = steady.iter().filter_map(|s| s.lag_ms).collect();
    let half = steady.len() / 2;
    let peak = |s: &[Sample]| s.iter().filter_map(|x| x.lag_ms).max().unwrap_or(0);
    r.lag_max_first_half_ms = peak(&steady[..half]);
    r.lag_max_second_half_ms = peak(&steady[half..]);
    lags.sort_unstable();
    let pct = |p: f64| {
        lags.get(((lags.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    r.lag_p50_ms = pct(0.5);
    r.lag_p99_ms = pct(0.99);
    r.rss_start_bytes = steady.first().map_or(0, |s| s.rss_bytes);
    r.rss_end_bytes = steady.last().map_or(0, |s| s.rss_bytes);
    r.rss_max_bytes = steady.iter().map(|s| s.rss_bytes).max().unwrap_or(0);
    r.lag_bounded = !lags.is_empty()
        && r.lag_max_second_half_ms <= r.lag_max_first_half_ms + LAG_SLACK.as_millis() as u64;
    r.memory_flat = r.rss_end_bytes <= r.rss_start_bytes + RSS_SLACK_BYTES;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, lag: u64, rss: u64) -> Sample {
        Sample {
            at_secs: at,
            lag_ms: Some(lag),
            rss_bytes: rss,
        }
    }

    #[test]
    fn the_verdict_follows_the_steady_window() {
        let mut r = SoakReport {
            samples: vec![
                sample(0.0, 9_000, 1 << 30), // warm-up: ignored
                sample(1.0, 300, 100 << 20),
                sample(2.0, 500, 101 << 20),
                sample(3.0, 400, 102 << 20),
                sample(4.0, 600, 103 << 20),
            ],
            ..SoakReport::default()
        };
        summarize(&mut r, 0.2);
        assert_eq!(
            (r.lag_max_first_half_ms, r.lag_max_second_half_ms),
            (500, 600)
        );
        assert!(r.lag_bounded && r.memory_flat);
        assert_eq!(r.rss_start_bytes, 100 << 20);

        r.samples.push(sample(5.0, 5_000, 200 << 20));
        summarize(&mut r, 0.2);
        assert!(!r.lag_bounded, "a rising lag is not bounded");
        assert!(!r.memory_flat, "100 MiB of growth is not flat");
    }

    #[test]
    fn resident_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(rss_bytes() > 1 << 20);
        }
    }
}
