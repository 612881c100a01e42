//! `generate`: plays the workload into the real `cdc-sink` API as a CDC service would.
//!
//! - one sink dispatcher per workload dispatcher (`d<i>`); tables served by several
//!   dispatchers use per-dispatcher file names;
//! - every DML goes through `add_dml_event` with a wake callback (the generator stops handing
//!   in events while too many are un-woken: that is the sink's backpressure) and a flush
//!   callback (which counts durable rows);
//! - DDLs go through `write_block_event` (drain, then schema files);
//! - the checkpoint advances every 200 ms and, at the end, after every dispatcher is drained,
//!   to the last commit ts;
//! - with `resume` (after a crash), it asks the sink for the checkpoint in storage and resends
//!   only the steps above it, as a CDC service restarting from its checkpoint does. That needs
//!   a workload with a fixed `start_ts`: the same steps with the same commit ts on every run.

use crate::workload::{Step, Workload, WorkloadConfig};
use anyhow::{Context, Result};
use cdc_common::testing::{Fault, FaultStore, Op, Rule};
use cdc_common::{DdlEvent, DdlKind, Ts};
use cdc_sink::{FileNaming, Sink, SinkConfig};
use prometheus::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events handed in but not yet woken beyond which the generator pauses (a dispatcher's
/// in-flight window).
pub const MAX_UNWOKEN: u64 = 50_000;

/// What `generate` did.
#[derive(Clone, Debug, Default)]
pub struct GenerateReport {
    /// DML events (one table's share of a transaction) handed in.
    pub events: u64,
    /// Row changes handed in.
    pub rows: u64,
    /// Row changes whose flush callback ran (durable).
    pub rows_flushed: u64,
    /// DDLs.
    pub ddls: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Last checkpoint ts written.
    pub checkpoint_ts: Ts,
    /// Time the generator spent paused on backpressure.
    pub paused: Duration,
    /// Data files written.
    pub files: u64,
    /// Bytes of data files written.
    pub bytes: u64,
    /// Flushes by reason.
    pub flush_reasons: BTreeMap<String, u64>,
    /// With `resume`: the checkpoint found in storage, and the steps at or below it skipped.
    pub resumed_from: Option<Ts>,
    /// Steps (DML events and DDLs) skipped because the checkpoint covered them.
    pub skipped: u64,
}

/// How `generate` plays the workload.
#[derive(Clone, Copy, Debug, Default)]
pub struct GenerateOptions {
    /// Transactions per second; 0 runs as fast as the sink takes them.
    pub tps: f64,
    /// Resume after a crash: skip the steps the checkpoint in storage covers.
    pub resume: bool,
    /// Delay every index file put by this much (crash testing): widens the window between a
    /// data file and its index entry, where a crash leaves a file without its entry.
    pub index_put_delay: Option<Duration>,
    /// Serve the sink's registry at `http://<addr>/metrics` while the workload runs
    /// ([`cdc_sink::serve_metrics`]), as an embedder without its own endpoint would.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl GenerateReport {
    /// Rows per second handed in.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `--resume` replays the steps above the stored checkpoint, which needs a workload whose
/// commit ts do not depend on the clock.
fn check_resume(cfg: &WorkloadConfig, opts: GenerateOptions) -> Result<()> {
    if opts.resume && cfg.start_ts.is_none() {
        anyhow::bail!("resuming needs a workload with a fixed start ts (--start-ts)");
    }
    Ok(())
}

/// Runs the workload into a sink at `sink_uri`. `on_progress` is called with the number of
/// transactions done.
pub async fn generate(
    sink_uri: &str,
    cfg: &WorkloadConfig,
    opts: GenerateOptions,
    on_progress: &(dyn Fn(u64) + Sync),
) -> Result<GenerateReport> {
    check_resume(cfg, opts)?;
    let registry = Registry::new();
    // Held until the workload is done: Prometheus can scrape the run while it lasts.
    let _endpoint = match opts.metrics_addr {
        None => None,
        Some(addr) => {
            let server = cdc_sink::serve_metrics(registry.clone(), addr).await?;
            tracing::info!(addr = %server.local_addr(), "sink metrics at http://{}/metrics", server.local_addr());
            Some(server)
        }
    };
    let config = SinkConfig::new("generate");
    let sink = match opts.index_put_delay {
        None => Sink::open(sink_uri, config, &registry).await,
        Some(delay) => {
            let (storage, options) = cdc_common::storage::StorageUri::parse_sink(sink_uri)?;
            let store = FaultStore::new(storage.build()?);
            // Index files are `<dir>/meta/CDC[_<dispatcher>].index`; schema files are not hit.
            store.add_rule(Rule::new(Op::Put, "/meta/CDC", Fault::Delay(delay)));
            let config = config.for_storage(&storage.kind);
            Sink::with_store(Arc::new(store), options, config, &registry).await
        }
    }
    .context("opening the sink")?;
    generate_into(sink, &registry, cfg, opts, on_progress).await
}

/// Runs the workload into an open sink and closes it. `registry` is the one the sink was opened
/// with (the report reads the sink's metrics from it). Tests open the sink over an injected store
/// with [`Sink::with_store`].
pub async fn generate_into(
    sink: Sink,
    registry: &Registry,
    cfg: &WorkloadConfig,
    opts: GenerateOptions,
    on_progress: &(dyn Fn(u64) + Sync),
) -> Result<GenerateReport> {
    check_resume(cfg, opts)?;
    let sink = Arc::new(sink);
    let mut report = match drive(&sink, cfg, opts, on_progress).await {
        Ok(r) => r,
        Err(e) => {
            let _ = sink.close().await;
            return Err(e);
        }
    };
    // Every dispatcher is drained by now; close() unregisters the metrics, so read them first.
    read_metrics(registry, &mut report);
    sink.close().await.context("closing the sink")?;
    Ok(report)
}

async fn drive(
    sink: &Arc<Sink>,
    cfg: &WorkloadConfig,
    opts: GenerateOptions,
    on_progress: &(dyn Fn(u64) + Sync),
) -> Result<GenerateReport> {
    let start = Instant::now();
    let tps = opts.tps;
    let resumed_from = if opts.resume {
        sink.stored_checkpoint().await?
    } else {
        None
    };
    // Durable before the crash: the upstream does not send it again.
    let covered = |ts: Ts| resumed_from.is_some_and(|c| ts <= c);
    let mut skipped = 0u64;
    let mut workload = Workload::new(cfg.clone());
    let ids: Vec<String> = (0..cfg.dispatchers).map(|i| format!("d{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let shared = workload.slot_dispatchers(i % cfg.tables).len() > 1;
        let naming = if shared {
            FileNaming::Dispatcher
        } else {
            FileNaming::Table
        };
        sink.add_dispatcher(id, naming)?;
    }
    let slot_ids = |w: &Workload, slot: usize| -> Vec<String> {
        w.slot_dispatchers(slot)
            .into_iter()
            .map(|d| ids[d].clone())
            .collect()
    };

    // The DDLs that created the schema and the tables before the first transaction.
    let initial = workload.initial_tables();
    let first = initial.iter().map(|t| t.version).min().unwrap_or(Ts::now());
    let create_schema = DdlEvent {
        commit_ts: Ts(first.0 - 1),
        query: format!("CREATE DATABASE `{}`", cfg.schema),
        kind: DdlKind::CreateSchema,
        schema: cfg.schema.clone(),
        tables: vec![],
        prev_tables: vec![],
    };
    if !covered(create_schema.commit_ts) {
        sink.write_block_event(&create_schema, &[]).await?;
    }
    for (slot, def) in initial.iter().enumerate() {
        if covered(def.version) {
            continue;
        }
        let cols: Vec<String> = def
            .columns
            .iter()
            .map(|c| format!("`{}` {}", c.name, c.sql_type()))
            .collect();
        let ev = DdlEvent {
            commit_ts: def.version,
            query: format!(
                "CREATE TABLE `{}`.`{}` ({}, PRIMARY KEY (`id`))",
                def.schema,
                def.table,
                cols.join(", ")
            ),
            kind: DdlKind::CreateTable,
            schema: def.schema.clone(),
            tables: vec![def.clone()],
            prev_tables: vec![],
        };
        let ds = slot_ids(&workload, slot);
        let refs: Vec<&str> = ds.iter().map(String::as_str).collect();
        sink.write_block_event(&ev, &refs).await?;
    }

    let unwoken = Arc::new(AtomicU64::new(0));
    let woken = Arc::new(tokio::sync::Notify::new());
    let flushed = Arc::new(AtomicU64::new(0));
    let mut report = GenerateReport::default();
    let mut last_ts = first;
    let mut last_checkpoint = Instant::now();
    let mut txn = 0u64;
    let mut paused = Duration::ZERO;
    for step in workload.by_ref() {
        let ts = match &step {
            Step::Dml { event, .. } => event.commit_ts,
            Step::Ddl { event, .. } => event.commit_ts,
        };
        if covered(ts) {
            skipped += 1;
            last_ts = ts;
            txn += 1;
            continue;
        }
        match step {
            Step::Dml { dispatcher, event } => {
                while unwoken.load(Ordering::Acquire) >= MAX_UNWOKEN {
                    let t = Instant::now();
                    let _ = tokio::time::timeout(Duration::from_millis(50), woken.notified()).await;
                    paused += t.elapsed();
                    sink.error().map_or(Ok(()), Err)?;
                }
                let rows = event.rows.len() as u64;
                last_ts = event.commit_ts;
                unwoken.fetch_add(1, Ordering::AcqRel);
                let (u, n) = (Arc::clone(&unwoken), Arc::clone(&woken));
                let wake = Box::new(move || {
                    u.fetch_sub(1, Ordering::AcqRel);
                    n.notify_one();
                });
                let f = Arc::clone(&flushed);
                let flush = Box::new(move || {
                    f.fetch_add(rows, Ordering::Relaxed);
                });
                sink.add_dml_event(&ids[dispatcher], event, Some(wake), Some(flush))?;
                report.events += 1;
                report.rows += rows;
            }
            Step::Ddl { dispatchers, event } => {
                last_ts = event.commit_ts;
                let refs: Vec<&str> = dispatchers.iter().map(|d| ids[*d].as_str()).collect();
                sink.write_block_event(&event, &refs).await?;
                report.ddls += 1;
            }
        }
        txn += 1;
        if txn % 256 == 0 {
            on_progress(txn);
            if last_checkpoint.elapsed() >= Duration::from_millis(200) {
                // The sink clamps this below every event not yet durable.
                sink.checkpoint(last_ts).await?;
                last_checkpoint = Instant::now();
            }
        }
        if tps > 0.0 {
            // Paced by the steps sent in this run (a resumed run does not rush skipped ones).
            let due = start + Duration::from_secs_f64((txn - skipped) as f64 / tps);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        } else if txn % 1024 == 0 {
            tokio::task::yield_now().await;
        }
    }
    on_progress(txn);
    // Drain every dispatcher (their flush callbacks have run when this returns), then the
    // checkpoint may reach the last commit ts.
    for id in &ids {
        sink.remove_dispatcher(id).await?;
    }
    report.checkpoint_ts = match sink.checkpoint(last_ts).await? {
        cdc_sink::CheckpointOutcome::Written(ts) | cdc_sink::CheckpointOutcome::Deferred(ts) => ts,
        cdc_sink::CheckpointOutcome::Unchanged => last_ts,
    };
    report.rows_flushed = flushed.load(Ordering::Relaxed);
    report.resumed_from = resumed_from;
    report.skipped = skipped;
    report.elapsed = start.elapsed();
    report.paused = paused;
    Ok(report)
}

fn read_metrics(registry: &Registry, r: &mut GenerateReport) {
    for family in registry.gather() {
        for m in family.get_metric() {
            let value = m.get_counter().get_value() as u64;
            match family.name() {
                "cdc_sink_files_written_total" => r.files += value,
                "cdc_sink_bytes_written_total" => r.bytes += value,
                "cdc_sink_flushes_total" => {
                    let reason = m
                        .get_label()
                        .iter()
                        .find(|l| l.name() == "reason")
                        .map(|l| l.value().to_string());
                    *r.flush_reasons
                        .entry(reason.unwrap_or_default())
                        .or_default() += value;
                }
                _ => {}
            }
        }
    }
}
