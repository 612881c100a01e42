//! The checkpoint of a sink that is one node of several on one storage.
//!
//! A CDC service on N nodes runs one sink process per node, each serving its own tables (every
//! dispatcher of a table on one node, so a table's DDL drain stays local). No single process
//! knows what all the others made durable, so no node may write `metadata` from its own
//! progress. Instead:
//!
//! - node `i` writes its own durable progress to `metadata.node-<i>` (same content as
//!   `metadata`): every event of node `i` with commit ts at or below it is durable, data file
//!   and index entry;
//! - `metadata` gets the **minimum over all N node files**, and only once all N exist (a node
//!   that never reported may hold anything back). Every event of every node at or below that
//!   minimum is durable, which is exactly what `metadata` promises to a consumer.
//!
//! Every node computes the minimum after writing its own file; there is no owner to elect or
//! fail over. Both files are written with the conditional update of `checkpoint_update.rs`, so
//! neither ever decreases, whichever node writes and in whatever order. Safety: a node file only
//! grows and each value was a safe bound when written, so a minimum over values read at any
//! moment is at most the current true minimum. Progress: the node that writes its final value
//! last reads every other final value (each node writes before it reads), so `metadata` ends
//! at the minimum of the final values.
//!
//! One `advance(ts)` call, in order:
//! 1. a stopped sink writes nothing (its events may be lost);
//! 2. the node's value is `ts` clamped below the smallest commit ts this sink holds and has not
//!    made durable (the rule of `checkpoint.rs`);
//! 3. the node file is written when that value is above the last one (GET + conditional PUT);
//! 4. the N node files are read (N GETs); with all present, their minimum is written to
//!    `metadata` when above the last value seen there (GET + conditional PUT).
//!
//! The caller's part: `ts` is the node's position in the shared change stream - the commit ts
//! of the last change it has seen, its own or another node's - and every change of its own at
//! or below `ts` has been handed to this sink. An idle node thus still moves forward and does
//! not hold the others back. A node restarting after a crash resumes above
//! [`NodeCheckpoint::stored`], its own file.
//!
//! A node keeps no change summary (`summary_writer.rs`): at its first use it stops collecting
//! and deletes `changes.metadata`, so consumers do full rounds.
//!
//! A sink serves one checkpoint writer: once a `NodeCheckpoint` has used it,
//! [`Sink::checkpoint`] is refused (it would write `metadata` from this node's progress alone),
//! and a sink that wrote through [`Sink::checkpoint`] refuses a `NodeCheckpoint`. On a store
//! with neither conditional updates nor the local lock, writing `metadata` is refused (a node's
//! plain overwrite could move it back; `checkpoint_update.rs`).

use crate::checkpoint::clamp;
use crate::checkpoint_update::{self, Advanced, Writers};
use crate::error::{Result, SinkError};
use crate::sink::Sink;
use cdc_common::layout::Checkpoint;
use cdc_common::Ts;

/// What one [`NodeCheckpoint::advance`] left in storage.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NodeProgress {
    /// This node's file (`None`: not written yet, nothing durable).
    pub node: Option<Ts>,
    /// `metadata` as this call left or found it (`None`: some node has not reported yet).
    pub global: Option<Ts>,
}

/// The progress writer of node `node` of `nodes` (one per sink; see the module doc).
#[derive(Debug)]
pub struct NodeCheckpoint {
    node: u32,
    nodes: u32,
    path: String,
    loaded: bool,
    last_node: Option<Ts>,
    last_global: Option<Ts>,
}

impl NodeCheckpoint {
    /// The writer of node `node` (0-based) of `nodes`.
    pub fn new(node: u32, nodes: u32) -> Result<NodeCheckpoint> {
        if nodes == 0 || node >= nodes {
            return Err(SinkError::param(
                "node",
                format!("node {node} of {nodes}: needs 0 <= node < nodes"),
            ));
        }
        Ok(NodeCheckpoint {
            node,
            nodes,
            path: Checkpoint::node_path(node),
            loaded: false,
            last_node: None,
            last_global: None,
        })
    }

    /// This node's progress in storage: the last value written by this process or, before its
    /// first write, the one a previous run of this node left (`None` for a new node). A node
    /// restarting after a crash resends every change above it.
    pub async fn stored(&mut self, sink: &Sink) -> Result<Option<Ts>> {
        sink.claim_checkpoint_mode(true)?;
        if !self.loaded {
            let ctx = sink.ctx();
            // One process cannot summarise every node's writes: none is kept, and one left
            // by an earlier single-process run goes, so no consumer chains through it.
            ctx.changes.disable();
            crate::summary_writer::delete(&ctx.store, &ctx.config.retry, &ctx.metrics).await?;
            let stored =
                checkpoint_update::read(&ctx.store, &ctx.config.retry, &ctx.metrics, &self.path)
                    .await?;
            self.last_node = stored.ts;
            self.loaded = true;
        }
        Ok(self.last_node)
    }

    /// Steps 1 to 4 of the module doc for position `ts`.
    pub async fn advance(&mut self, sink: &Sink, ts: Ts) -> Result<NodeProgress> {
        sink.ctx().failure.check()?;
        self.stored(sink).await?;
        // The caller's part (module doc): every change of this node at or below `ts` has been
        // handed in, which closes keyless files at it (`keyless_cut.rs`).
        sink.ctx().note_handed_in(ts);
        // Taken after the stored value is known, right before deciding (as `checkpoint.rs`).
        let durable = clamp(ts, sink.min_pending());
        if self.last_node.is_none_or(|last| durable > last) {
            self.write_node(sink, durable).await?;
        }
        let global = match self.minimum_over_nodes(sink).await? {
            Some(min) if self.last_global.is_none_or(|g| min > g) => {
                Some(self.write_global(sink, min).await?)
            }
            _ => self.last_global,
        };
        Ok(NodeProgress {
            node: self.last_node,
            global,
        })
    }

    async fn write_node(&mut self, sink: &Sink, ts: Ts) -> Result<()> {
        let ctx = sink.ctx();
        let advanced = checkpoint_update::advance(
            &ctx.store,
            &ctx.config.retry,
            &ctx.metrics,
            &self.path,
            ts,
            ctx.config.local_root.as_deref(),
            Writers::One,
        )
        .await?;
        let now = match advanced {
            Advanced::Written(t) => t,
            // Only another process serving the same node number can be ahead: a
            // misconfiguration, but the file still never goes back.
            Advanced::AlreadyAt(t) => t,
        };
        ctx.metrics.node_checkpoint_ts.set(now.0 as i64);
        self.last_node = Some(now);
        Ok(())
    }

    /// The smallest value over every node's file; `None` while one is missing.
    async fn minimum_over_nodes(&self, sink: &Sink) -> Result<Option<Ts>> {
        let ctx = sink.ctx();
        let mut min: Option<Ts> = None;
        for n in 0..self.nodes {
            let value = if n == self.node {
                self.last_node
            } else {
                let path = Checkpoint::node_path(n);
                checkpoint_update::read(&ctx.store, &ctx.config.retry, &ctx.metrics, &path)
                    .await?
                    .ts
            };
            let Some(v) = value else {
                return Ok(None);
            };
            min = Some(min.map_or(v, |m| m.min(v)));
        }
        Ok(min)
    }

    async fn write_global(&mut self, sink: &Sink, min: Ts) -> Result<Ts> {
        let ctx = sink.ctx();
        let advanced = checkpoint_update::advance(
            &ctx.store,
            &ctx.config.retry,
            &ctx.metrics,
            Checkpoint::path(),
            min,
            ctx.config.local_root.as_deref(),
            Writers::Several,
        )
        .await?;
        let now = match advanced {
            Advanced::Written(t) | Advanced::AlreadyAt(t) => t,
        };
        ctx.metrics.checkpoint_ts.set(now.0 as i64);
        self.last_global = Some(now);
        Ok(now)
    }
}
