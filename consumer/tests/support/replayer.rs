//! The consumer tests' prologue in one place: `storage-consumer` flags -> [`Config`] ->
//! replayer (or a whole `run`), as the binary builds them.
//!
//! ```ignore
//! ReplayerBuilder::sqlite(&w.uri, &db).once().run().await?;          // replay until drained
//! let mut r = ReplayerBuilder::new(&w.uri, &down).replayer().await?; // drive rounds by hand
//! ```
//!
//! Every replayer gets fresh [`Metrics`] and [`Health`] unless the test passes its own to read
//! them afterwards; [`start`] hands a consumer process's back with it. [`counted_round`] and
//! [`counted`] run a round and say how many storage requests it made.

use cdc_consumer::config::{Args, Config};
use cdc_consumer::freshness::{Health, RoundRecord};
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::{Replayer, RoundOutcome};
use clap::Parser;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Builds a consumer configuration and replayer from `storage-consumer` flags.
pub struct ReplayerBuilder {
    argv: Vec<String>,
    metrics: Metrics,
    health: Arc<Mutex<Health>>,
}

impl ReplayerBuilder {
    /// `storage-consumer --upstream-uri <upstream> --downstream-uri <downstream>`.
    pub fn new(upstream: &str, downstream: &str) -> ReplayerBuilder {
        ReplayerBuilder {
            argv: [
                "storage-consumer",
                "--upstream-uri",
                upstream,
                "--downstream-uri",
                downstream,
            ]
            .map(String::from)
            .to_vec(),
            metrics: Metrics::new(),
            health: Arc::new(Mutex::new(Health::default())),
        }
    }

    /// Replays into the SQLite database file `db`.
    pub fn sqlite(upstream: &str, db: &Path) -> ReplayerBuilder {
        Self::new(upstream, &sqlite_uri(db))
    }

    /// Adds `--once`: [`ReplayerBuilder::run`] returns once storage is drained.
    pub fn once(self) -> ReplayerBuilder {
        self.args(&["--once"])
    }

    /// Adds more flags.
    pub fn args(mut self, extra: &[&str]) -> ReplayerBuilder {
        self.argv.extend(extra.iter().map(|a| a.to_string()));
        self
    }

    /// Uses `metrics` (a clone of which the test keeps to read them).
    pub fn metrics(mut self, metrics: Metrics) -> ReplayerBuilder {
        self.metrics = metrics;
        self
    }

    /// Uses `health` (a clone of which the test keeps to read it).
    pub fn health(mut self, health: Arc<Mutex<Health>>) -> ReplayerBuilder {
        self.health = health;
        self
    }

    /// The configuration the flags give (the flags must parse; the configuration may fail).
    pub fn config(&self) -> cdc_consumer::Result<Config> {
        Config::from_args(&Args::parse_from(&self.argv))
    }

    /// The configuration and a replayer built from it, as `storage-consumer` builds them.
    pub async fn build(self) -> cdc_consumer::Result<(Config, Replayer)> {
        let cfg = self.config()?;
        let r = cdc_consumer::replayer(&cfg, self.metrics, self.health).await?;
        Ok((cfg, r))
    }

    /// A replayer built from the flags (rounds are driven by the test).
    pub async fn replayer(self) -> cdc_consumer::Result<Replayer> {
        Ok(self.build().await?.1)
    }

    /// Builds the replayer and runs it as `storage-consumer` does ([`cdc_consumer::run`]).
    pub async fn run(self) -> cdc_consumer::Result<()> {
        let (cfg, r) = self.build().await?;
        cdc_consumer::run(&cfg, r).await
    }
}

/// The downstream URI of the SQLite database file `db`.
pub fn sqlite_uri(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

/// A consumer process on `down` with `extra` flags: its replayer, and the fresh metrics and
/// health it reports into.
pub async fn start(
    upstream: &str,
    down: &str,
    extra: &[&str],
) -> (Replayer, Metrics, Arc<Mutex<Health>>) {
    let m = Metrics::new();
    let h = Arc::new(Mutex::new(Health::default()));
    let r = ReplayerBuilder::new(upstream, down)
        .args(extra)
        .metrics(m.clone())
        .health(h.clone())
        .replayer()
        .await
        .unwrap();
    (r, m, h)
}

/// One round of `r` that must succeed.
pub async fn ok_round(r: &mut Replayer) -> RoundOutcome {
    let out = r.round().await;
    assert!(out.error.is_none(), "{:?}", out.record.fatal);
    out
}

/// `n` rounds of `r`, each one that must succeed.
pub async fn ok_rounds(r: &mut Replayer, n: usize) {
    for _ in 0..n {
        ok_round(r).await;
    }
}

/// A replayer of `upstream` into a fresh SQLite file `out.db`: the temporary directory holding
/// it (kept alive by the caller), the file and the replayer.
pub async fn sqlite_replayer(upstream: &str) -> (tempfile::TempDir, std::path::PathBuf, Replayer) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let r = ReplayerBuilder::sqlite(upstream, &db)
        .replayer()
        .await
        .unwrap();
    (dir, db, r)
}

/// One round of `r` and the requests it made: (outcome, LIST calls, GET calls).
pub async fn counted_round(r: &mut Replayer, m: &Metrics) -> (RoundOutcome, u64, u64) {
    let (l0, g0) = (m.list_calls.get(), m.get_calls.get());
    let out = r.round().await;
    (out, m.list_calls.get() - l0, m.get_calls.get() - g0)
}

/// [`counted_round`] of a round that must succeed.
pub async fn counted(r: &mut Replayer, m: &Metrics) -> (RoundOutcome, u64, u64) {
    let (out, lists, gets) = counted_round(r, m).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    (out, lists, gets)
}

/// Asserts that one of the round record's warnings is `what` (a predicate on its text).
#[track_caller]
pub fn assert_warned(rec: &RoundRecord, what: impl Fn(&str) -> bool) {
    assert!(rec.warnings.iter().any(|w| what(w)), "{:?}", rec.warnings);
}
