//! Routing: which encoder thread and which writer shard serve a dispatcher.
//!
//! Both are a pure function of the dispatcher id (FNV-1a, stable across processes and Rust
//! versions), so a dispatcher always reaches the same encoder thread (its events are encoded in
//! arrival order) and the same writer shard (one writer per shard consumes its entries in that
//! order). Because a dispatcher's data files are named after its table (or after itself) and
//! only its shard writes them, one index file has exactly one writer.
//!
//! ```text
//! add_dml_event(d) --> encoder[fnv(d) % workers] --> spool --> writer[fnv(d) % shards]
//! ```

use crate::error::SinkError;
use cdc_common::codec::TableCodec;
use cdc_common::Ts;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How a dispatcher's data and index files are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FileNaming {
    /// `CDC<index>.<ext>` and `meta/CDC.index`: the dispatcher is the table's only writer.
    #[default]
    Table,
    /// `CDC_<dispatcher-id>_<index>.<ext>` and `meta/CDC_<dispatcher-id>.index`: several
    /// dispatchers (table shards) write one table. The id must be `[A-Za-z0-9-]{1,128}`.
    Dispatcher,
}

/// FNV-1a 64-bit hash: stable, fast on short ids.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The slot of `id` among `n` (encoder threads or writer shards).
pub fn slot_of(id: &str, n: usize) -> usize {
    (stable_hash(id) % n.max(1) as u64) as usize
}

/// A registered dispatcher: its route and its in-flight commit timestamps.
pub(crate) struct DispatcherState {
    /// The dispatcher id.
    pub id: Arc<str>,
    /// The id written in file names (`FileNaming::Dispatcher`), or `None`.
    pub file_id: Option<String>,
    /// Encoder thread.
    pub encoder: usize,
    /// Writer shard.
    pub shard: usize,
    /// Commit ts -> events accepted but not yet durable. The checkpoint never passes the
    /// smallest key (see `checkpoint.rs`). Touched by the dispatcher's thread and its writer
    /// only, so the lock is uncontended.
    pending: Mutex<BTreeMap<Ts, usize>>,
    /// Tasks of this dispatcher in the encoding pool (queued or being handled), plus one while
    /// an inline encode runs. The inline path needs it at zero (see `encoder_pool.rs`).
    queued: AtomicUsize,
    /// The codec of the inline path: table key, codec, last chunk size.
    inline_codec: Mutex<Option<InlineCodec>>,
    /// Tables this dispatcher owns under `FileNaming::Table` (checked once per table).
    pub owned_tables: Mutex<Vec<cdc_common::TableName>>,
    /// Commit ts of the last DML accepted (0 before any).
    last_dml: AtomicU64,
    /// Commit ts of the last DDL passed (0 before any): the lowest DML ts allowed.
    last_ddl: AtomicU64,
    /// Events accepted by `add_dml_event` that the writer has not received yet (increased on
    /// acceptance, decreased by the writer; an event dropped on the way to a stopped sink leaves
    /// it above zero, which only makes `keyless_cut.rs` keep runs back longer).
    in_transit: AtomicUsize,
    /// Largest commit ts the writer has received from this dispatcher (0 before any). Written
    /// by the dispatcher's writer only.
    arrived: AtomicU64,
}

/// The inline path's cached codec: (schema, table, version), codec, last chunk size.
pub(crate) type InlineCodec = ((String, String, Ts), Box<dyn TableCodec>, usize);

impl DispatcherState {
    pub fn new(id: &str, naming: FileNaming, encoders: usize, shards: usize) -> DispatcherState {
        DispatcherState {
            id: Arc::from(id),
            file_id: (naming == FileNaming::Dispatcher).then(|| id.to_string()),
            encoder: slot_of(id, encoders),
            shard: slot_of(id, shards),
            pending: Mutex::new(BTreeMap::new()),
            queued: AtomicUsize::new(0),
            inline_codec: Mutex::new(None),
            owned_tables: Mutex::new(Vec::new()),
            last_dml: AtomicU64::new(0),
            last_ddl: AtomicU64::new(0),
            in_transit: AtomicUsize::new(0),
            arrived: AtomicU64::new(0),
        }
    }

    /// Refuses a DML at `ts` below the last DML or below the last DDL (a dispatcher hands in
    /// its events in commit-ts order; several events may share a ts).
    pub fn check_dml_ts(&self, ts: Ts) -> Result<(), SinkError> {
        self.check_ts("DML", ts)
    }

    /// Records an accepted DML at `ts`.
    pub fn note_dml(&self, ts: Ts) {
        self.last_dml.fetch_max(ts.0, Ordering::AcqRel);
    }

    /// Refuses a DDL at `ts` below the last DML or the last DDL of this dispatcher.
    pub fn check_ddl_ts(&self, ts: Ts) -> Result<(), SinkError> {
        self.check_ts("DDL", ts)
    }

    /// One rule for both kinds: nothing below the last DML or the last DDL.
    fn check_ts(&self, what: &'static str, ts: Ts) -> Result<(), SinkError> {
        let last = self.last_dml.load(Ordering::Acquire);
        let ddl = self.last_ddl.load(Ordering::Acquire);
        let reason = if ts.0 < last {
            format!("is below the last DML at ts {last}")
        } else if ts.0 < ddl {
            format!("is below the last DDL at ts {ddl}")
        } else {
            return Ok(());
        };
        Err(self.out_of_order(what, ts, reason))
    }

    /// Records a DDL at `ts` passed by this dispatcher.
    pub fn note_ddl(&self, ts: Ts) {
        self.last_ddl.fetch_max(ts.0, Ordering::AcqRel);
    }

    fn out_of_order(&self, what: &'static str, ts: Ts, reason: String) -> SinkError {
        SinkError::OutOfOrder {
            dispatcher: self.id.to_string(),
            what,
            ts,
            reason,
        }
    }

    /// Claims the inline path: true when nothing of this dispatcher is in the pool.
    pub fn try_claim_inline(&self) -> bool {
        self.queued
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// A task of this dispatcher enters the pool.
    pub fn enter(&self) {
        self.queued.fetch_add(1, Ordering::AcqRel);
    }

    /// A task (or the inline claim) is done.
    pub fn leave(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// The inline path's codec cache (locked only by the dispatcher's own calls).
    pub fn inline_codec(&self) -> std::sync::MutexGuard<'_, Option<InlineCodec>> {
        self.inline_codec.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Ts, usize>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An event at `ts` was accepted (pending until durable, in transit until its writer has
    /// it).
    pub fn track(&self, ts: Ts) {
        self.in_transit.fetch_add(1, Ordering::AcqRel);
        *self.lock().entry(ts).or_insert(0) += 1;
    }

    /// An accepted event at `ts` never reaches the writer (its queue is gone): no longer
    /// pending nor in transit.
    pub fn untrack(&self, ts: Ts) {
        self.in_transit.fetch_sub(1, Ordering::AcqRel);
        self.done(ts);
    }

    /// The writer received an event at `ts` (called by the dispatcher's writer only, in the
    /// order the dispatcher's events were accepted).
    pub fn note_arrived(&self, ts: Ts) {
        self.arrived.fetch_max(ts.0, Ordering::AcqRel);
        self.in_transit.fetch_sub(1, Ordering::AcqRel);
    }

    /// Largest commit ts the writer has received from this dispatcher.
    pub fn arrived(&self) -> Ts {
        Ts(self.arrived.load(Ordering::Acquire))
    }

    /// True when every event accepted so far has reached the writer.
    pub fn nothing_in_transit(&self) -> bool {
        self.in_transit.load(Ordering::Acquire) == 0
    }

    /// An event at `ts` is durable.
    pub fn done(&self, ts: Ts) {
        self.done_all([ts]);
    }

    /// Events at each of `ts` are durable (one lock for the lot).
    pub fn done_all(&self, ts: impl IntoIterator<Item = Ts>) {
        let mut p = self.lock();
        for ts in ts {
            if let Some(n) = p.get_mut(&ts) {
                *n -= 1;
                if *n == 0 {
                    p.remove(&ts);
                }
            }
        }
    }

    /// The smallest commit ts accepted and not yet durable.
    pub fn min_pending(&self) -> Option<Ts> {
        self.lock().keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_stable_and_spread() {
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        let mut counts = [0usize; 4];
        for i in 0..1000 {
            let id = format!("dispatcher-{i}");
            assert_eq!(slot_of(&id, 4), slot_of(&id, 4));
            counts[slot_of(&id, 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
    }

    #[test]
    fn pending_tracks_the_smallest_unflushed_ts() {
        let d = DispatcherState::new("d", FileNaming::Table, 2, 2);
        d.track(Ts(5));
        d.track(Ts(3));
        d.track(Ts(3));
        assert_eq!(d.min_pending(), Some(Ts(3)));
        d.done(Ts(3));
        assert_eq!(d.min_pending(), Some(Ts(3)));
        d.done(Ts(3));
        assert_eq!(d.min_pending(), Some(Ts(5)));
        d.done(Ts(5));
        assert_eq!(d.min_pending(), None);
    }
}
