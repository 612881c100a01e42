//! Batches: the encoded chunks one writer accumulates for one future data file.
//!
//! A batch is keyed by (dispatcher, table, table version, partition, date directory): everything
//! that decides which data file and which index file its bytes go to. Its chunks stay in the
//! spool (an [`Entry`] each) until the file is published; the batch only holds the handles, the
//! byte count and its own creation time, from which its flush deadline is derived.
//!
//! A batch also knows where its trailing run starts: the items at its last commit ts
//! (`run_start`, kept up to date by [`Batch::push`] in O(1)), which is what a file of a table
//! without a primary key must not be cut inside (`keyless_cut.rs`).

use crate::router::DispatcherState;
use cdc_common::layout::DateDir;
use cdc_common::{TableDef, Ts};
use cdc_spool::Entry;
use std::sync::Arc;
use std::time::Instant;

/// What decides a batch's data file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BatchKey {
    pub dispatcher: Arc<str>,
    pub schema: String,
    pub table: String,
    pub version: Ts,
    pub partition_id: Option<i64>,
    pub date: Option<DateDir>,
}

impl BatchKey {
    /// True when `other` goes to the same stream as this key (dispatcher, table version,
    /// partition), whatever its date directory: a consumer reads one stream's date directories
    /// in date order (see "Streams across date directories" in `writer.rs`).
    pub fn same_stream(&self, other: &BatchKey) -> bool {
        self.dispatcher == other.dispatcher
            && self.schema == other.schema
            && self.table == other.table
            && self.version == other.version
            && self.partition_id == other.partition_id
    }

    /// The key of this key's stream: the same key without its date directory (keys of one
    /// stream map to equal stream keys, so it can key a map).
    pub fn stream(&self) -> BatchKey {
        BatchKey {
            date: None,
            ..self.clone()
        }
    }
}

/// One accepted event waiting in a batch.
pub(crate) struct Pending {
    pub entry: Entry,
    pub commit_ts: Ts,
    pub rows: usize,
}

/// The chunks of one future data file.
pub(crate) struct Batch {
    pub id: u64,
    pub key: BatchKey,
    pub table: Arc<TableDef>,
    pub dispatcher: Arc<DispatcherState>,
    pub items: Vec<Pending>,
    pub bytes: u64,
    pub rows: usize,
    pub created: Instant,
    /// The table has no primary key: its files are not cut inside a commit ts
    /// (`keyless_cut.rs`). Decided once when the batch opens.
    pub keyless: bool,
    /// Index of the first item at the last commit ts (`items[run_start..]` is the trailing
    /// run; 0 when empty).
    pub run_start: usize,
    /// What this batch added to the writers' count of kept-back bytes when a flush put it back
    /// (`keyless_cut.rs`); 0 when it was not kept back. Taken off when a flush takes it again.
    pub kept_weight: u64,
}

impl Batch {
    pub fn push(&mut self, p: Pending) {
        if self
            .items
            .last()
            .is_some_and(|l| l.commit_ts != p.commit_ts)
        {
            self.run_start = self.items.len();
        }
        self.bytes += p.entry.len() as u64;
        self.rows += p.rows;
        self.items.push(p);
    }

    /// The commit ts of the trailing run (`None` when empty).
    pub fn last_ts(&self) -> Option<Ts> {
        self.items.last().map(|p| p.commit_ts)
    }

    /// Splits off the trailing run as a batch of its own (same key, table and dispatcher;
    /// its id and deadline are given when it goes back into the table): `self` keeps the items
    /// before it. Costs the run's length (its items move), not the batch's.
    pub fn split_trailing_run(&mut self) -> Batch {
        let items = self.items.split_off(self.run_start);
        let mut bytes = 0u64;
        let mut rows = 0usize;
        for p in &items {
            bytes += p.entry.len() as u64;
            rows += p.rows;
        }
        self.bytes -= bytes;
        self.rows -= rows;
        // What is left ends at an earlier commit ts and is published, never split again; its
        // own run start would need a walk back, so it is not kept.
        self.run_start = 0;
        Batch {
            id: self.id,
            key: self.key.clone(),
            table: Arc::clone(&self.table),
            dispatcher: Arc::clone(&self.dispatcher),
            items,
            bytes,
            rows,
            created: self.created,
            keyless: self.keyless,
            run_start: 0,
            kept_weight: 0,
        }
    }
}
