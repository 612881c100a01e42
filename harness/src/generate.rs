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
//!
//! # Several nodes (`node`: node I of N)
//!
//! N `generate` processes on one storage play the shares of N nodes of one CDC service. Each
//! walks the whole (deterministic) workload and plays only its own share: the dispatchers `d`
//! with `d % N == I`, every one writing dispatcher-named files. Table slots must be a multiple
//! of N: dispatcher `d` serves slot `d % M`, so with `N | M` every dispatcher of a slot is on
//! node `slot % N`, and the slot's DDLs (drains) are played by that node alone. The
//! `CREATE DATABASE` that starts the workload is written by every node (schema files are
//! create-only and accept identical bytes). Progress goes through [`NodeCheckpoint`]: each node
//! writes its own durable position (advanced past other nodes' steps too, so an idle node does
//! not hold the others back) and `metadata` becomes the minimum over all nodes, as a CDC
//! service's owner would compute it. `resume` restarts a node from its own file. Only node 0
//! runs retention cleanup; each node's spool is its own (changefeed `generate-node-<I>`).

use crate::workload::{Step, Workload, WorkloadConfig};
use anyhow::{Context, Result};
use cdc_common::testing::{Fault, FaultStore, Op, Rule};
use cdc_common::{DdlEvent, DdlKind, Ts};
use cdc_sink::{FileNaming, NodeCheckpoint, Sink, SinkConfig};
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
    /// With `node`: steps that belong to other nodes (not played here).
    pub others: u64,
    /// With `node`: this node's progress file at the end.
    pub node_progress: Option<Ts>,
}

/// Node `index` of `count` (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeShare {
    /// 0-based.
    pub index: u32,
    /// Nodes in the cluster.
    pub count: u32,
}

impl NodeShare {
    /// Parses `I/N`.
    pub fn parse(s: &str) -> Result<NodeShare> {
        let (i, n) = s
            .split_once('/')
            .with_context(|| format!("node `{s}`: expected I/N, such as 0/2"))?;
        let share = NodeShare {
            index: i.trim().parse().with_context(|| format!("node `{s}`: I"))?,
            count: n.trim().parse().with_context(|| format!("node `{s}`: N"))?,
        };
        if share.count == 0 || share.index >= share.count {
            anyhow::bail!("node `{s}`: needs 0 <= I < N");
        }
        Ok(share)
    }

    fn owns(&self, dispatcher: usize) -> bool {
        dispatcher % self.count as usize == self.index as usize
    }
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
    /// Play node I of N's share (see the module doc); `None`: the whole workload.
    pub node: Option<NodeShare>,
}

impl GenerateReport {
    /// Rows per second handed in.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `--resume` replays the steps above the stored checkpoint, which needs a workload whose
/// commit ts do not depend on the clock; so do several nodes, which must all see the same
/// steps. A node's share needs whole table slots (see the module doc).
fn check_options(cfg: &WorkloadConfig, opts: GenerateOptions) -> Result<()> {
    if opts.resume && cfg.start_ts.is_none() {
        anyhow::bail!("resuming needs a workload with a fixed start ts (--start-ts)");
    }
    if let Some(n) = opts.node {
        if cfg.start_ts.is_none() {
            anyhow::bail!(
                "--node needs a fixed start ts (--start-ts): every node must play the same commit ts"
            );
        }
        if cfg.tables % n.count as usize != 0 {
            anyhow::bail!(
                "--node {}/{}: --tables ({}) must be a multiple of the node count, so that every dispatcher of a table is on one node",
                n.index,
                n.count,
                cfg.tables
            );
        }
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
    check_options(cfg, opts)?;
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
    let config = match opts.node {
        None => SinkConfig::new("generate"),
        // Each node's spool is its own; only node 0 runs retention cleanup.
        Some(n) => {
            SinkConfig::new(format!("generate-node-{}", n.index)).with_cleanup_owner(n.index == 0)
        }
    };
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
    check_options(cfg, opts)?;
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

/// Where the generator's position goes: the sink's own `metadata`, or this node's progress
/// file (and from there `metadata` as the minimum over every node).
enum Progress {
    Single,
    Node(NodeShare, NodeCheckpoint),
}

impl Progress {
    fn new(node: Option<NodeShare>) -> Result<Progress> {
        Ok(match node {
            None => Progress::Single,
            Some(n) => Progress::Node(n, NodeCheckpoint::new(n.index, n.count)?),
        })
    }

    /// Whether this process plays dispatcher `d`.
    fn owns(&self, d: usize) -> bool {
        match self {
            Progress::Single => true,
            Progress::Node(n, _) => n.owns(d),
        }
    }

    /// The position a restart resumes above.
    async fn stored(&mut self, sink: &Sink) -> Result<Option<Ts>> {
        Ok(match self {
            Progress::Single => sink.stored_checkpoint().await?,
            Progress::Node(_, cp) => cp.stored(sink).await?,
        })
    }

    /// Advances towards `ts` (the sink clamps it below every event not yet durable); returns
    /// `metadata`'s value as far as known, and this node's.
    async fn advance(&mut self, sink: &Sink, ts: Ts) -> Result<(Option<Ts>, Option<Ts>)> {
        Ok(match self {
            Progress::Single => match sink.checkpoint(ts).await? {
                cdc_sink::CheckpointOutcome::Written(t)
                | cdc_sink::CheckpointOutcome::Deferred(t) => (Some(t), None),
                cdc_sink::CheckpointOutcome::Unchanged => (Some(ts), None),
            },
            Progress::Node(_, cp) => {
                let p = cp.advance(sink, ts).await?;
                (p.global, p.node)
            }
        })
    }
}

async fn drive(
    sink: &Arc<Sink>,
    cfg: &WorkloadConfig,
    opts: GenerateOptions,
    on_progress: &(dyn Fn(u64) + Sync),
) -> Result<GenerateReport> {
    let start = Instant::now();
    let tps = opts.tps;
    let mut progress = Progress::new(opts.node)?;
    let resumed_from = if opts.resume {
        progress.stored(sink).await?
    } else {
        None
    };
    // Durable before the crash: the upstream does not send it again.
    let covered = |ts: Ts| resumed_from.is_some_and(|c| ts <= c);
    let mut skipped = 0u64;
    let mut others = 0u64;
    let mut workload = Workload::new(cfg.clone());
    let ids: Vec<String> = (0..cfg.dispatchers).map(|i| format!("d{i}")).collect();
    let own_ids: Vec<&String> = (0..cfg.dispatchers)
        .filter(|d| progress.owns(*d))
        .map(|d| &ids[d])
        .collect();
    for (i, id) in ids.iter().enumerate() {
        if !progress.owns(i) {
            continue;
        }
        // Several nodes: dispatcher-named files always, as each node's dispatchers write them.
        let shared = opts.node.is_some() || workload.slot_dispatchers(i % cfg.tables).len() > 1;
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

    // The DDLs that created the schema and the tables before the first transaction (every
    // node writes the CREATE DATABASE; a table's CREATE is its node's).
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
        if covered(def.version) || !progress.owns(slot) {
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
        let (ts, owner) = match &step {
            Step::Dml { event, dispatcher } => (event.commit_ts, *dispatcher),
            // Every dispatcher of a slot is on one node (module doc): the first names it.
            Step::Ddl { event, dispatchers } => {
                (event.commit_ts, dispatchers.first().copied().unwrap_or(0))
            }
        };
        if covered(ts) {
            skipped += 1;
            last_ts = ts;
            txn += 1;
            continue;
        }
        last_ts = ts;
        if !progress.owns(owner) {
            others += 1;
        } else {
            match step {
                Step::Dml { dispatcher, event } => {
                    while unwoken.load(Ordering::Acquire) >= MAX_UNWOKEN {
                        let t = Instant::now();
                        let _ =
                            tokio::time::timeout(Duration::from_millis(50), woken.notified()).await;
                        paused += t.elapsed();
                        sink.error().map_or(Ok(()), Err)?;
                    }
                    let rows = event.rows.len() as u64;
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
                    debug_assert!(dispatchers.iter().all(|d| progress.owns(*d)));
                    let refs: Vec<&str> = dispatchers.iter().map(|d| ids[*d].as_str()).collect();
                    sink.write_block_event(&event, &refs).await?;
                    report.ddls += 1;
                }
            }
        }
        txn += 1;
        if txn % 256 == 0 {
            on_progress(txn);
            if last_checkpoint.elapsed() >= Duration::from_millis(200) {
                progress.advance(sink, last_ts).await?;
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
    // Every event is handed in: say so first, so that removing a dispatcher publishes the
    // last transaction of a table without a primary key instead of dropping it (format rule
    // 7). Then drain every dispatcher (their flush callbacks have run when this returns), then
    // the checkpoint may reach the last commit ts.
    sink.mark_resolved(last_ts);
    for id in own_ids {
        sink.remove_dispatcher(id).await?;
    }
    let (global, node) = progress.advance(sink, last_ts).await?;
    report.checkpoint_ts = global.unwrap_or(Ts(0));
    report.node_progress = node;
    report.rows_flushed = flushed.load(Ordering::Relaxed);
    report.resumed_from = resumed_from;
    report.skipped = skipped;
    report.others = others;
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
