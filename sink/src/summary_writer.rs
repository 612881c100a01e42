//! The writer of the change summary `changes.metadata` (format and the consumer's reading in
//! `cdc_common::layout::ChangeSummary`), driven by the checkpoint writer (`checkpoint.rs`).
//!
//! One checkpoint write of `to`, the last written being `from`:
//!
//! ```text
//! take the touched set (changes.rs) --> fold into the open step (from, to]
//!   --> put changes.metadata (history + open step)   [a failed put: warning, counted]
//!   --> conditional write of metadata = to           (checkpoint_update.rs)
//!   --> written: the open step joins the history
//!       stored above `to` (another writer): the step restarts at the stored value, incomplete
//!       failed: the step stays open; the next attempt adds to it and keeps its `from`
//! ```
//!
//! Invariants:
//! - The summary naming a step `(from, to]` is stored **before** `metadata` moves to `to`, so a
//!   consumer that read `metadata = to` and then the summary finds the step (or the summary
//!   written before a later checkpoint, whose history still holds it).
//! - The set is taken before the `metadata` write starts: a file put concurrently with that
//!   write lands in the next step, the safe side (its rows are above `to`: `to` was clamped
//!   below every commit ts not yet durable, and a file's events become durable only once its
//!   index entry is put).
//! - A process's first step is incomplete: it cannot know what a crashed predecessor wrote
//!   after the last checkpoint. So is a step with more than [`MAX_STEP_TABLES`] tables (its
//!   list is dropped; a full round costs the consumer about as much).
//! - The summary is written by one process: a sink that is one node of several deletes it at
//!   its first use and writes none (`node_checkpoint.rs`).
//! - `cdc_sink_change_summary_writes_total` / `_failures_total` count the puts.

use crate::changes::{ChangeLog, Touched};
use crate::checkpoint_update::Advanced;
use crate::metrics::SinkMetrics;
use crate::retry::{retry, RetryPolicy};
use cdc_common::layout::{ChangeStep, ChangeSummary};
use cdc_common::storage::key;
use cdc_common::Ts;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

/// Tables one step may name; above this the step is stored incomplete with no list.
pub const MAX_STEP_TABLES: usize = 1024;

/// The summary state of one sink (inside the checkpoint writer's lock).
#[derive(Debug)]
pub(crate) struct SummaryWriter {
    changes: Arc<ChangeLog>,
    /// The history as last put (without the open step).
    file: ChangeSummary,
    /// The step taken for a `metadata` write that has not succeeded yet.
    open: Option<ChangeStep>,
    /// A step was begun by this process (later steps are complete).
    begun: bool,
}

impl SummaryWriter {
    /// A writer recording what `changes` collects, as a new incarnation.
    pub fn new(changes: Arc<ChangeLog>) -> SummaryWriter {
        SummaryWriter {
            changes,
            file: ChangeSummary::new(incarnation_id()),
            open: None,
            begun: false,
        }
    }

    /// Before `metadata` moves from `from` to `to`: takes the touched set into the open step
    /// and puts the summary. A failed put is a warning: `metadata` still moves, and a consumer
    /// that finds no step reaching it does a full round.
    pub async fn before_metadata(
        &mut self,
        store: &Arc<dyn ObjectStore>,
        policy: &RetryPolicy,
        metrics: &Arc<SinkMetrics>,
        from: Option<Ts>,
        to: Ts,
    ) {
        if !self.changes.enabled() {
            return;
        }
        let complete = self.begun;
        self.begun = true;
        let mut step = self.open.take().unwrap_or(ChangeStep {
            from,
            to,
            complete,
            tables: Vec::new(),
            schemas: Vec::new(),
        });
        fold(&mut step, self.changes.take());
        step.to = to;
        let mut file = self.file.clone();
        file.push(step.clone());
        self.open = Some(step);
        let body = bytes::Bytes::from(file.build());
        let path = ChangeSummary::path();
        let put = async {
            let location = key(path)?;
            retry(policy, metrics, "put", path, 1, || {
                store.put(&location, PutPayload::from(body.clone()))
            })
            .await?;
            Ok::<(), crate::error::SinkError>(())
        };
        match put.await {
            Ok(()) => metrics.change_summary_writes_total.inc(),
            Err(e) => {
                metrics.change_summary_failures_total.inc();
                tracing::warn!(error = %e, path, "change summary not written; consumers do full rounds until the next one");
            }
        }
    }

    /// After the `metadata` write: `Some` what it did, `None` if it failed.
    pub fn after_metadata(&mut self, outcome: Option<Advanced>) {
        let Some(outcome) = outcome else { return };
        let Some(mut step) = self.open.take() else {
            return;
        };
        match outcome {
            Advanced::Written(t) | Advanced::AlreadyAt(t) if t == step.to => self.file.push(step),
            Advanced::Written(t) | Advanced::AlreadyAt(t) => {
                // Another writer moved `metadata` to `t`: what happened in between is not ours
                // to summarise; the touched tables go on, in a step from `t` nobody chains.
                step.from = Some(t);
                step.complete = false;
                self.open = Some(step);
            }
        }
    }
}

/// Adds `touched` to `step`'s sorted lists, or drops them once the step names too many.
fn fold(step: &mut ChangeStep, touched: Touched) {
    for (schema, tables) in touched.tables {
        for t in tables {
            step.tables.push((schema.clone(), t));
        }
    }
    step.schemas.extend(touched.schemas);
    step.tables.sort();
    step.tables.dedup();
    step.schemas.sort();
    step.schemas.dedup();
    if step.tables.len() + step.schemas.len() > MAX_STEP_TABLES {
        step.complete = false;
        step.tables = Vec::new();
        step.schemas = Vec::new();
    }
}

/// A random id for this process's steps (the std hasher's keys are random per process).
fn incarnation_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    format!("{:016x}", h.finish())
}

/// Deletes the change summary (a sink that is one node of several keeps none).
pub(crate) async fn delete(
    store: &Arc<dyn ObjectStore>,
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
) -> crate::error::Result<()> {
    let path = ChangeSummary::path();
    let location = key(path)?;
    retry(policy, metrics, "delete", path, 1, || async {
        match store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await?;
    Ok(())
}
