//! cdc-consumer: replays cdc-storage (TiCDC-compatible) storage into a downstream database.
//!
//! ```text
//!  storage ──> discovery ──> ordering ──> decode ──> plan ──> backend
//!  (metadata,   (incremental  (barriers,   (codec per  (row ops,  (rows + progress
//!   index,       listings)     checkpoint)  schema      batches)   in one transaction)
//!   schema files)                            version)
//! ```
//!
//! - [`discovery`]: what is new in storage, without re-listing the tree every round.
//! - [`ordering`]: per-table file order, schema-version barriers, multi-table DDL waits.
//! - [`decode`]: data files to row changes with their schema file's definition.
//! - [`plan`]: row changes to row operations and multi-row batches (dialect-free).
//! - [`backend`]: one folder per downstream (SQLite, PostgreSQL, MySQL/MariaDB, stdout), each
//!   owning its quoting, types, DDL text, bookkeeping tables, apply path and read-back.
//! - [`ddl`]: structured DDL operations from schema files (dialect-free).
//! - [`progress`]: the per-stream progress record, committed with the rows it covers.
//! - [`quarantine`]: the bad-file policy and the record of quarantined data files.
//! - [`settled`]: the settled mark, which lets a restart with nothing new skip the catalog.
//! - [`secrets`]: keeping URI secrets out of logs, errors, `/health` and the status page.
//! - [`group`]: consumer groups (leases, fencing, balancing) for several processes on one
//!   storage and one downstream.
//! - [`replay`]: the round loop tying them together; [`freshness`], [`metrics`], [`http`] and
//!   [`status_page`] report; [`wait`] answers read-your-writes waiters; [`progress_bar`] draws
//!   `--once` (and the harness's long jobs) on a terminal.
//!
//! Invariants: storage is the source of truth (all state here is rebuilt from storage plus the
//! downstream's progress record); nothing above the sink's checkpoint-ts is applied when rows
//! carry their commit ts; no bytes from storage can make the consumer panic.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod backend;
pub mod config;
pub mod config_file;
pub mod ddl;
pub mod decode;
pub mod discovery;
pub mod enum_elems;
pub mod error;
pub mod freshness;
pub mod group;
pub mod http;
pub mod metrics;
pub mod ordering;
pub mod plan;
pub mod progress;
pub mod progress_bar;
pub mod quarantine;
pub mod replay;
pub mod secrets;
pub mod settled;
pub mod shutdown;
pub mod status_page;
pub mod wait;

pub use error::{Error, Result};

use crate::backend::{Access, Downstream};
use crate::config::Config;
use crate::discovery::{Discovery, Upstream};
use crate::freshness::Health;
use crate::metrics::Metrics;
use crate::replay::{ProgressRead, Replayer};
use std::sync::{Arc, Mutex};

/// Opens the configured downstream to apply to (see [`backend::open`]).
pub async fn open_downstream(cfg: &Config) -> Result<Box<dyn Downstream>> {
    let mut down = backend::open(&cfg.downstream, cfg.batch_rows, Access::Apply).await?;
    if let Some(g) = &cfg.group {
        // A lease TTL, but above three round pauses: MySQL's limit also ends a session idle
        // between rounds.
        down.limit_idle_transactions(g.ttl.max(cfg.interval * 3))
            .await?;
    }
    Ok(down)
}

/// Builds a replayer for a configuration.
pub async fn replayer(
    cfg: &Config,
    metrics: Metrics,
    health: Arc<Mutex<Health>>,
) -> Result<Replayer> {
    let store = cfg.upstream.build()?;
    let mut up = Upstream::new(store, metrics.clone());
    if let Some(root) = cfg.upstream.local_root() {
        up = up.with_local_root(&root)?;
    }
    let disc = Discovery::new(up, cfg.layout, cfg.tables.clone())
        .with_listing_lag(cfg.listing_lag)
        .with_idle_rounds(cfg.sink.rows_carry_commit_ts());
    let down = open_downstream(cfg).await?;
    let (sink, policy) = (&cfg.sink, cfg.on_bad_file);
    // decided once: a process about to join a group reads progress plain and so never stands
    // on a settled mark (see `ProgressRead`)
    let read = match cfg.group {
        Some(_) => ProgressRead::Plain,
        None => ProgressRead::Settled,
    };
    let mut r = Replayer::new(disc, down, sink, policy, read, metrics, health).await?;
    r.set_secrets(cfg.secrets.clone());
    r.set_keep_rounds(cfg.keep_rounds);
    r.set_read_ahead(cfg.read_ahead);
    r.set_read_ahead_bytes(cfg.read_ahead_bytes);
    r.set_unit_files(cfg.unit_files);
    r.set_scope(&settled_scope(cfg), cfg.tables.clone());
    Ok(r)
}

/// The scope a settled mark is written under (see [`settled`]): the storage location and its
/// options (the redacted upstream URI: no secret is hashed), the table filter, the layout and
/// the protocol options. Any change makes the stored mark not hold, and the start lists.
fn settled_scope(cfg: &Config) -> String {
    format!(
        "{}\n{:?}\n{:?}\n{:?}",
        cfg.upstream_redacted, cfg.tables, cfg.layout, cfg.sink
    )
}

/// What `storage-consumer` does with its parsed flags once logging is set up: builds the
/// configuration, serves `/health` and `/metrics` when asked, and runs rounds (see [`run`]).
/// Shared by the `storage-consumer` binary and `cdc-storage consume`. An error comes back as
/// its text with every secret of the two URIs replaced by `***` (a driver's error may quote
/// them), ready to print.
pub async fn main_with(args: &config::Args) -> std::result::Result<(), String> {
    let secrets = secrets::Secrets::from_uris(&[&args.upstream_uri, &args.downstream_uri]);
    serve(args)
        .await
        .map_err(|e| secrets.redact(&e.to_string()).into_owned())
}

async fn serve(args: &config::Args) -> Result<()> {
    let cfg = Config::from_args(args)?;
    tracing::info!(
        upstream = %cfg.upstream_redacted,
        downstream = %cfg.downstream_redacted,
        protocol = cfg.sink.protocol.name(),
        "storage-consumer starting"
    );
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(Health::new(cfg.health_policy)));
    if let Some(addr) = cfg.metrics_addr {
        let bound = http::serve(addr, health.clone(), metrics.clone()).await?;
        tracing::info!(addr = %bound, "serving /health and /metrics");
    }
    let bar = if cfg.once {
        progress_bar::ReplayBar::start(&metrics, args.quiet)
    } else {
        None
    };
    let mut r = replayer(&cfg, metrics.clone(), health.clone()).await?;
    let stop = shutdown::Shutdown::on_signals().map_err(|e| Error::Io {
        path: "signal handlers (SIGTERM, SIGINT)".into(),
        source: e,
    })?;
    let heartbeat = match &cfg.group {
        Some(g) => Some(join_group(&cfg, g, &mut r, health, metrics).await?),
        None => None,
    };
    let result = run_until(&cfg, r, &stop).await;
    if let Some(b) = bar {
        b.finish(result.is_ok());
    }
    // A member stopping on a signal hands its tables over now rather than after the TTL.
    if let Some(h) = heartbeat {
        if stop.requested() {
            let _ = h.leave().await;
        }
    }
    result
}

/// Joins the consumer group `g`: opens the lease store on its own connection, creates the
/// lease tables, starts the heartbeat task and makes `r` a member. The returned guard stops
/// the heartbeat when dropped.
pub async fn join_group(
    cfg: &Config,
    g: &group::GroupConfig,
    r: &mut Replayer,
    health: Arc<Mutex<Health>>,
    metrics: Metrics,
) -> Result<HeartbeatGuard> {
    let mut store = backend::open_lease_store(&cfg.downstream).await?;
    store.init().await?;
    metrics
        .group_info
        .with_label_values(&[g.group.as_str(), g.member.as_str()])
        .set(1);
    let shared = Arc::new(group::Shared::default());
    let member = group::member::Member::new(g.clone(), store, shared.clone(), health, metrics);
    tracing::info!(group = %g.group, member = %g.member, ttl = ?g.ttl, "joining consumer group");
    r.set_group(group::Group {
        cfg: g.clone(),
        shared,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel();
    Ok(HeartbeatGuard {
        task: tokio::spawn(member.run(stopped)),
        stop: Some(stop),
    })
}

/// A group member's heartbeat. [`HeartbeatGuard::leave`] stops it and leaves the group;
/// dropping it only stops it (its leases then expire after the TTL, as after a crash).
pub struct HeartbeatGuard {
    task: tokio::task::JoinHandle<Result<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl HeartbeatGuard {
    /// Stops the heartbeat and leaves the group: releases every lease and deletes the member
    /// row, so the other members take the tables over at their next beat. Call it only after
    /// the last round has ended (a round after it would find no fences and apply nothing).
    pub async fn leave(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(Error::Io {
                path: "group heartbeat task".into(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

impl Drop for HeartbeatGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs rounds until `--once` has nothing left, `--until-ts` is applied, or forever.
/// In `--once` mode a failed round is returned as the error; otherwise it is logged, shown in
/// `/health`, the downstream is reopened (progress reloaded from it) and the next round retries.
pub async fn run(cfg: &Config, r: Replayer) -> Result<()> {
    run_until(cfg, r, &shutdown::Shutdown::manual()).await
}

/// [`run`], also ending after the round in flight when `stop` is requested: `Ok` for a
/// service (it stopped as asked), [`Error::Stopped`] with `--once` (it did not finish).
pub async fn run_until(cfg: &Config, mut r: Replayer, stop: &shutdown::Shutdown) -> Result<()> {
    let mut applied = 0;
    loop {
        if stop.requested() {
            tracing::info!(applied_ts = applied, "stopped on request");
            if cfg.once {
                return Err(Error::Stopped {
                    applied: cdc_common::Ts(applied),
                });
            }
            return Ok(());
        }
        let replay::RoundOutcome {
            record: rec,
            found_new,
            error: err,
        } = r.round().await;
        applied = rec.applied_ts;
        if let Some(until) = cfg.until_ts {
            if err.is_none() && rec.applied_ts >= until.0 {
                tracing::info!(applied_ts = rec.applied_ts, "--until-ts reached");
                return Ok(());
            }
        }
        if cfg.once {
            if let Some(e) = err {
                return Err(e);
            }
            // An idle round proves nothing at or below the checkpoint is left (on the first
            // round too, when it stands on a settled mark); a round that listed proves it
            // from the second round on (with a listing lag the first round's listing proves
            // nothing yet; without one the second round is the idle one, a single GET).
            let settled = rec.round >= 2 || rec.discovery.idle;
            if settled && !found_new && !rec.applied_anything() {
                if let Some(until) = cfg.until_ts {
                    return Err(Error::UntilNotReached {
                        until,
                        applied: cdc_common::Ts(rec.applied_ts),
                    });
                }
                return Ok(());
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval) => {}
            _ = stop.wait() => continue,
        }
        if err.is_some() {
            // The downstream may have lost its connection: open a new one and reload the
            // progress record from it before the next round.
            match open_downstream(cfg).await {
                Ok(d) => {
                    if let Err(e) = r.reopen(d).await {
                        let e = cfg.secrets.redact(&e.to_string()).into_owned();
                        tracing::warn!(error = %e, "reopening the downstream failed");
                    }
                }
                Err(e) => {
                    let e = cfg.secrets.redact(&e.to_string()).into_owned();
                    tracing::warn!(error = %e, "reconnecting to the downstream failed")
                }
            }
        }
    }
}
