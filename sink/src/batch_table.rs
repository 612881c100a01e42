//! The batch table of one writer: the open [`Batch`]es by key, and their flush deadlines.
//!
//! ```text
//!  append(key, event) --> batches[key] (opened on first event: id, created, deadline pushed)
//!  deadlines: min-heap of (created + flush-interval, id)    keys_by_id: id -> key
//!  take(key) / take_due(now) / take_all() / take_dispatcher(id) --> batches to flush
//! ```
//!
//! Each batch has its own deadline, `created + flush-interval`: batches of different tables that
//! started at different times flush at different times, so there is no global sweep that cuts
//! every table's file at the same tick.
//!
//! Invariants: a key has at most one open batch; a batch taken out is gone from the table (its
//! id leaves `keys_by_id`), and its heap entry, if still there, is stale and skipped by
//! [`BatchTable::next_deadline`] and [`BatchTable::take_due`]; ids are never reused, so a stale
//! entry can never name a later batch of the same key.

use crate::batch::{Batch, BatchKey, Pending};
use crate::router::DispatcherState;
use cdc_common::TableDef;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The open batches of one writer.
pub(crate) struct BatchTable {
    flush_interval: Duration,
    batches: HashMap<BatchKey, Batch>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    keys_by_id: HashMap<u64, BatchKey>,
    next_batch_id: u64,
}

impl BatchTable {
    /// An empty table whose batches are due `flush_interval` after their first event.
    pub fn new(flush_interval: Duration) -> BatchTable {
        BatchTable {
            flush_interval,
            batches: HashMap::new(),
            deadlines: BinaryHeap::new(),
            keys_by_id: HashMap::new(),
            next_batch_id: 0,
        }
    }

    /// True when no batch is open.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Appends `pending` to the batch of `key`, opening it (with its deadline) when there is
    /// none. Returns the batch's encoded bytes after the append.
    pub fn append(
        &mut self,
        key: BatchKey,
        table: Arc<TableDef>,
        dispatcher: Arc<DispatcherState>,
        pending: Pending,
    ) -> u64 {
        if let Some(b) = self.batches.get_mut(&key) {
            b.push(pending);
            return b.bytes;
        }
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        let created = Instant::now();
        let mut b = Batch {
            id,
            key: key.clone(),
            table,
            dispatcher,
            items: Vec::new(),
            bytes: 0,
            rows: 0,
            created,
        };
        b.push(pending);
        let bytes = b.bytes;
        self.deadlines
            .push(Reverse((created + self.flush_interval, id)));
        self.keys_by_id.insert(id, key.clone());
        self.batches.insert(key, b);
        bytes
    }

    /// The earliest deadline of an open batch (stale heap entries are dropped on the way).
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if self.keys_by_id.contains_key(&id) {
                return Some(at);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Takes the batch of `key` out of the table.
    pub fn take(&mut self, key: &BatchKey) -> Option<Batch> {
        let b = self.batches.remove(key)?;
        self.keys_by_id.remove(&b.id);
        Some(b)
    }

    /// Takes every batch whose deadline is at or before `now`, earliest deadline first.
    pub fn take_due(&mut self, now: Instant) -> Vec<Batch> {
        let mut due = Vec::new();
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if let Some(key) = self.keys_by_id.get(&id).cloned() {
                if let Some(b) = self.take(&key) {
                    due.push(b);
                }
            }
        }
        due
    }

    /// Takes every open batch.
    pub fn take_all(&mut self) -> Vec<Batch> {
        let keys: Vec<BatchKey> = self.batches.keys().cloned().collect();
        keys.iter().filter_map(|k| self.take(k)).collect()
    }

    /// Takes every open batch of the dispatcher `id`.
    pub fn take_dispatcher(&mut self, id: &Arc<str>) -> Vec<Batch> {
        let keys: Vec<BatchKey> = self
            .batches
            .keys()
            .filter(|k| &k.dispatcher == id)
            .cloned()
            .collect();
        keys.iter().filter_map(|k| self.take(k)).collect()
    }
}
