//! cdc-capture: replicates a PostgreSQL database into the cloud-storage sink through logical
//! replication (`pgoutput`), as a reference embedder of `cdc-sink`.
//!
//! ```text
//!  PostgreSQL ──slot (pgoutput)──> peek ──> decode ──> relations / rows / ts ──> Sink
//!      ^  pg_replication_slot_advance(end_lsn)                                    │
//!      └──────────────── ack.rs: only the flushed prefix ◄── flush callbacks ─────┘
//! ```
//!
//! # Protocol route, and why
//!
//! tokio-postgres cannot open a walsender (`replication=database`) connection, and streaming
//! with `START_REPLICATION` would need a full CopyBoth client. Capture uses the walsender only
//! where nothing else works: `CREATE_REPLICATION_SLOT <slot> LOGICAL pgoutput
//! EXPORT_SNAPSHOT` (`walsender.rs`, framed with tokio-postgres's own `postgres-protocol`
//! crate, no new dependency), whose exported snapshot is imported by a REPEATABLE READ
//! transaction on a normal connection for the COPY of every published table (`snapshot.rs`).
//! Changes are then read on the normal connection with
//! `pg_logical_slot_peek_binary_changes(slot, NULL, n, 'proto_version', '1',
//! 'publication_names', pub)`, which does **not** consume, and the position is moved with
//! `pg_replication_slot_advance(slot, lsn)` only once the sink has flushed everything up to
//! that LSN (`ack.rs`). That makes the two-stage acknowledgement a plain SQL call, keeps one
//! driver for everything, and costs latency of one poll interval (100 ms by default) plus the
//! re-decoding of unconfirmed transactions on each peek (bounded by the sink's flush
//! interval). The `pgwire-replication` crate would stream instead of polling but is another
//! protocol stack to trust for the exported snapshot; this route needs none.
//!
//! No gap, no overlap: the exported snapshot holds exactly the transactions committed before
//! the slot's consistent point, and the slot decodes exactly those after it.
//!
//! # Start-up phases ([`capture`])
//!
//! 1. `connect` + `preflight::check` (wal_level, publication, REPLICATION, replica identities);
//! 2. `open_sink` (checkpoint interval 0: every confirmation writes the checkpoint);
//! 3. `position`: slot and stored checkpoint together decide — no slot and no checkpoint:
//!    create the slot and take the snapshot; slot and checkpoint: resume; one without the
//!    other: an error saying what to do;
//! 4. `stream::Stream::run` until stopped, then drain, confirm, close.
//!
//! # Modules (one concept each)
//!
//! | module | concept |
//! |--------|---------|
//! | [`config`] | flags, TOML, validated [`CaptureConfig`] (secrets redacted) |
//! | [`preflight`] | set-up checks with errors that say what to do |
//! | [`source`] | the normal connection and the session settings the text forms rely on |
//! | [`walsender`] | the replication connection for CREATE_REPLICATION_SLOT |
//! | [`slot`] | inspect, create, hold (advisory lock), advance |
//! | [`snapshot`] | the COPY of the published tables under the exported snapshot |
//! | [`pgoutput`] | decoder of pgoutput messages |
//! | [`catalog`] | catalog look-ups (types, keys, table shapes) |
//! | [`types`] | PostgreSQL types -> schema-file column types and values |
//! | [`relations`] | relations -> table definitions, versions and synthesized DDL |
//! | [`rows`] | tuples -> row images |
//! | [`toast`] | unchanged TOAST values, never NULL |
//! | [`ts`] | commit time -> TSO ts |
//! | [`emit`] | dispatchers, wake window, DDL hand-off |
//! | [`ack`] | the confirmed position behind the flush acknowledgement |
//! | [`stream`] | the change stream loop |
//! | [`error`] | [`CaptureError`] |
//! | [`metrics`] | capture's metrics beside the sink's, served at `--metrics-addr` |
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod ack;
pub mod catalog;
pub mod config;
pub mod emit;
pub mod error;
pub mod metrics;
pub mod pgoutput;
pub mod preflight;
pub mod relations;
pub mod rows;
pub mod slot;
pub mod snapshot;
pub mod source;
pub mod stream;
pub mod toast;
pub mod ts;
pub mod types;
pub mod walsender;

pub use config::{CaptureArgs, CaptureConfig};
pub use error::{CaptureError, Result};

use crate::ack::{Acks, Confirm, Ticket};
use crate::emit::Emitter;
use crate::relations::Relations;
use crate::ts::TsClock;
use cdc_common::Ts;
use cdc_sink::{Sink, SinkConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What a capture run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct CaptureReport {
    /// True when this run created the slot and took the snapshot.
    pub snapshot_taken: bool,
    /// Snapshot rows.
    pub snapshot_rows: u64,
    /// Transactions streamed.
    pub transactions: u64,
    /// Row changes handed to the sink (snapshot included).
    pub rows: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// The last confirmed commit ts.
    pub confirmed_ts: Option<Ts>,
}

/// The command: runs until Ctrl-C / SIGTERM, then stops cleanly.
pub async fn run(args: CaptureArgs) -> Result<()> {
    let cfg = CaptureConfig::from_args(&args)?;
    tracing::info!(config = ?cfg, "capture starting");
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    let r = capture(cfg, rx).await?;
    println!(
        "capture stopped: snapshot rows {}, transactions {}, rows {}, reconnects {}, confirmed ts {}",
        r.snapshot_rows,
        r.transactions,
        r.rows,
        r.reconnects,
        r.confirmed_ts.map_or("-".into(), |t| t.to_string())
    );
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Captures until `stop` turns true.
pub async fn capture(cfg: CaptureConfig, stop: watch::Receiver<bool>) -> Result<CaptureReport> {
    let mut pg: tokio_postgres::Config =
        cfg.source
            .parse()
            .map_err(|e| CaptureError::InvalidParameter {
                name: "source",
                reason: format!("{e}"),
            })?;
    if pg.get_application_name().is_none() {
        pg.application_name(source::application_name(&cfg.slot));
    }
    let client = source::connect(&pg).await?;
    preflight::check(&client, &cfg.publication).await?;
    let registry = prometheus::Registry::new();
    let metrics = metrics::CaptureMetrics::register(&registry, &cfg.changefeed)
        .map_err(|e| CaptureError::Metrics(e.to_string()))?;
    let sink = Arc::new(open_sink(&cfg, &registry).await?);
    let _server = match cfg.metrics_addr {
        Some(addr) => {
            let s = cdc_sink::serve_metrics(registry.clone(), addr)
                .await
                .map_err(|e| CaptureError::Metrics(e.to_string()))?;
            tracing::info!(addr = %s.local_addr(), "serving /metrics");
            Some(s)
        }
        None => None,
    };
    let result = start_and_stream(&cfg, pg, client, Arc::clone(&sink), metrics, stop).await;
    let closed = sink.close().await;
    let report = result?;
    closed?;
    Ok(report)
}

async fn open_sink(cfg: &CaptureConfig, registry: &prometheus::Registry) -> Result<Sink> {
    // Every confirmation writes the checkpoint: it moves with the slot (ack.rs).
    let config = SinkConfig::new(cfg.changefeed.clone()).with_checkpoint_interval(Duration::ZERO);
    Ok(Sink::open(&cfg.sink_uri, config, registry).await?)
}

async fn start_and_stream(
    cfg: &CaptureConfig,
    pg: tokio_postgres::Config,
    client: tokio_postgres::Client,
    sink: Arc<Sink>,
    metrics: metrics::CaptureMetrics,
    stop: watch::Receiver<bool>,
) -> Result<CaptureReport> {
    let mut report = CaptureReport::default();
    let mut emitter = Emitter::new(Arc::clone(&sink), metrics.rows.clone());
    let mut acks = Acks::default();
    let stored = sink.stored_checkpoint().await?;
    let info = slot::inspect(&client, &cfg.slot).await?;
    slot::hold(&client, &cfg.slot, info.as_ref()).await?;
    let (relations, clock) = match (&info, stored) {
        (Some(i), Some(c)) => {
            if i.plugin != "pgoutput" {
                return Err(CaptureError::WrongPlugin {
                    slot: cfg.slot.clone(),
                    plugin: i.plugin.clone(),
                });
            }
            tracing::info!(checkpoint = %c, "resuming from the slot's confirmed position");
            (Relations::new(false), TsClock::after(c))
        }
        (Some(_), None) => {
            return Err(CaptureError::SnapshotIncomplete {
                slot: cfg.slot.clone(),
            })
        }
        (None, Some(_)) => {
            return Err(CaptureError::SlotLost {
                slot: cfg.slot.clone(),
            })
        }
        (None, None) => {
            let mut relations = Relations::new(true);
            let (ts, rows) =
                initial_snapshot(cfg, &pg, &client, &mut relations, &mut emitter, &mut acks)
                    .await?;
            report.snapshot_taken = true;
            report.snapshot_rows = rows;
            metrics.snapshot_rows.inc_by(rows);
            (relations, TsClock::after(ts))
        }
    };
    let stream = stream::Stream::new(cfg.clone(), pg, client, relations, emitter, acks, clock)
        .with_metrics(metrics);
    let (s, emitter) = stream.run(stop).await?;
    report.transactions = s.transactions;
    report.reconnects = s.reconnects;
    report.confirmed_ts = s.confirmed.map(|c| c.ts);
    report.rows = emitter.rows;
    Ok(report)
}

/// Creates the slot, reads the snapshot at the server's current time, and queues the
/// consistent point for confirmation. Returns the snapshot's ts and row count.
async fn initial_snapshot(
    cfg: &CaptureConfig,
    pg: &tokio_postgres::Config,
    client: &tokio_postgres::Client,
    relations: &mut Relations,
    emitter: &mut Emitter,
    acks: &mut Acks,
) -> Result<(Ts, u64)> {
    let new = slot::create(pg, &cfg.slot).await?;
    let now_us: i64 = client
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8",
            &[],
        )
        .await
        .map_err(|e| CaptureError::pg("reading the server clock", e))?
        .get(0);
    let ts = Ts::from_parts((now_us / 1000) as u64, 0);
    let ticket = Ticket::new();
    let r = snapshot::take(
        client,
        &new.snapshot_name,
        &cfg.publication,
        relations,
        emitter,
        ts,
        &ticket,
    )
    .await;
    new.conn.close().await;
    let r = r?;
    // The snapshot is one transaction at `ts`, handed in whole: a keyless table's file may
    // close at it (docs/format.md, writer rule 7).
    emitter.sink().mark_resolved(ts);
    tracing::info!(tables = r.tables, rows = r.rows, ts = %ts, "initial snapshot handed in");
    acks.push(
        Confirm {
            ts,
            lsn: new.consistent_point,
        },
        ticket,
        0,
    );
    Ok((ts, r.rows))
}
