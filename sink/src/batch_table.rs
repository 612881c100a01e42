//! The batch table of one writer: the open [`Batch`]es by key, and their flush deadlines.
//!
//! ```text
//!  append(key, event) --> batches[key] (opened on first event: id, created, deadline pushed)
//!  deadlines: min-heap of (created + flush-interval, id)    keys_by_id: id -> key
//!  take(key) / take_due(now) / take_all() / take_dispatcher(id) / take_earlier_days(key)
//!                                                              --> batches to flush
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
    /// Open batches with a date directory, per stream ([`BatchKey::stream`]): only a stream
    /// with more than one has earlier days to take along ([`BatchTable::take_earlier_days`]).
    dated_per_stream: HashMap<BatchKey, u32>,
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
            dated_per_stream: HashMap::new(),
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
        let b = self.open(key, table, dispatcher);
        b.push(pending);
        b.bytes
    }

    /// Puts a batch kept back from a flush (a trailing run, `keyless_cut.rs`) back as the open
    /// batch of its key, under a new id with a new deadline one flush interval from now. The
    /// flush took the key's batch out before any new event could reach it, so the key has no
    /// open batch. Costs a heap push, whatever the batch holds.
    pub fn put_back(&mut self, mut batch: Batch) {
        debug_assert!(!self.batches.contains_key(&batch.key));
        let (id, created) = self.register(&batch.key);
        batch.id = id;
        batch.created = created;
        self.batches.insert(batch.key.clone(), batch);
    }

    /// The batch of `key`, if open.
    pub fn get(&self, key: &BatchKey) -> Option<&Batch> {
        self.batches.get(key)
    }

    /// Opens an empty batch for `key` (which has none).
    fn open(
        &mut self,
        key: BatchKey,
        table: Arc<TableDef>,
        dispatcher: Arc<DispatcherState>,
    ) -> &mut Batch {
        let (id, created) = self.register(&key);
        // The test the consumer uses to pick its rule at `done_ts` (no column of the key).
        let keyless = !table.columns.iter().any(|c| c.primary_key);
        self.batches.entry(key.clone()).or_insert(Batch {
            id,
            key,
            table,
            dispatcher,
            items: Vec::new(),
            bytes: 0,
            rows: 0,
            created,
            keyless,
            run_start: 0,
            kept_weight: 0,
        })
    }

    /// A new batch id for `key`, its creation time and its deadline in the heap.
    fn register(&mut self, key: &BatchKey) -> (u64, Instant) {
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        let created = Instant::now();
        self.deadlines
            .push(Reverse((created + self.flush_interval, id)));
        self.keys_by_id.insert(id, key.clone());
        if key.date.is_some() {
            *self.dated_per_stream.entry(key.stream()).or_insert(0) += 1;
        }
        (id, created)
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
        if key.date.is_some() {
            let stream = key.stream();
            if let Some(n) = self.dated_per_stream.get_mut(&stream) {
                *n -= 1;
                if *n == 0 {
                    self.dated_per_stream.remove(&stream);
                }
            }
        }
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

    /// Takes the batches of `key`'s stream in date directories before `key`'s (they must be
    /// published before it, see "Streams across date directories" in `writer.rs`). Costs a
    /// look-up unless the stream has another dated batch open (around a date change), then a
    /// walk of the open batches.
    pub fn take_earlier_days(&mut self, key: &BatchKey) -> Vec<Batch> {
        if key.date.is_none()
            || self
                .dated_per_stream
                .get(&key.stream())
                .is_none_or(|n| *n == 0)
        {
            return Vec::new();
        }
        let keys: Vec<BatchKey> = self
            .batches
            .keys()
            .filter(|k| k.same_stream(key) && k.date < key.date)
            .cloned()
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::FileNaming;
    use cdc_common::{ColumnDef, ColumnType, Ts};
    use cdc_spool::{Spool, SpoolConfig};

    /// A spool to hold the entries, one table and one dispatcher per id.
    struct Fixture {
        _dir: tempfile::TempDir,
        spool: Spool,
        table: Arc<TableDef>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let config = SpoolConfig::builder()
                .dir(dir.path())
                .memory_quota(1 << 20)
                .build()
                .unwrap();
            let spool = Spool::open(config, "cf", &prometheus::Registry::new()).unwrap();
            let table = Arc::new(TableDef {
                schema: "s".into(),
                table: "t".into(),
                table_id: 1,
                version: Ts(1),
                columns: vec![ColumnDef::new("id", ColumnType::BigInt)],
            });
            Fixture {
                _dir: dir,
                spool,
                table,
            }
        }

        fn pending(&self, bytes: usize) -> Pending {
            self.pending_at(bytes, Ts(1))
        }

        fn pending_at(&self, bytes: usize, commit_ts: Ts) -> Pending {
            let entry = self
                .spool
                .try_enqueue(vec![0u8; bytes], None, None)
                .unwrap()
                .into_entry()
                .unwrap();
            Pending {
                entry,
                commit_ts,
                rows: 1,
            }
        }

        fn append(&self, t: &mut BatchTable, dispatcher: &str, table: &str, bytes: usize) -> u64 {
            let d = Arc::new(DispatcherState::new(dispatcher, FileNaming::Table, 1, 1));
            let pending = self.pending(bytes);
            t.append(key(dispatcher, table), Arc::clone(&self.table), d, pending)
        }
    }

    fn key(dispatcher: &str, table: &str) -> BatchKey {
        BatchKey {
            dispatcher: Arc::from(dispatcher),
            schema: "s".into(),
            table: table.into(),
            version: Ts(1),
            partition_id: None,
            date: None,
        }
    }

    #[test]
    fn appends_to_one_key_share_one_open_batch() {
        let f = Fixture::new();
        let mut t = BatchTable::new(Duration::from_secs(3600));
        assert!(t.is_empty());
        assert_eq!(f.append(&mut t, "d", "t", 10), 10);
        assert_eq!(f.append(&mut t, "d", "t", 20), 30);
        let b = t.take(&key("d", "t")).unwrap();
        assert_eq!((b.items.len(), b.rows, b.bytes), (2, 2, 30));
        assert!(t.take(&key("d", "t")).is_none());
        assert!(t.is_empty());
        assert_eq!(
            t.next_deadline(),
            None,
            "a taken batch leaves no live deadline"
        );
    }

    #[test]
    fn batches_come_due_in_deadline_order_and_a_taken_one_never_does() {
        let f = Fixture::new();
        let mut t = BatchTable::new(Duration::ZERO);
        f.append(&mut t, "d", "a", 1);
        f.append(&mut t, "d", "b", 1);
        f.append(&mut t, "d", "c", 1);
        let first = t.next_deadline().unwrap();
        t.take(&key("d", "a")).unwrap();
        assert!(
            t.next_deadline().unwrap() >= first,
            "the stale deadline of `a` is skipped"
        );
        let due: Vec<String> = t
            .take_due(Instant::now())
            .into_iter()
            .map(|b| b.key.table)
            .collect();
        assert_eq!(due, ["b", "c"]);
        assert!(t.is_empty());
        // A later batch of a taken key gets a new id: the old heap entry cannot name it.
        f.append(&mut t, "d", "a", 1);
        assert_eq!(t.take_due(Instant::now()).len(), 1);
    }

    #[test]
    fn nothing_is_due_before_its_deadline() {
        let f = Fixture::new();
        let mut t = BatchTable::new(Duration::from_secs(3600));
        f.append(&mut t, "d", "t", 1);
        assert!(t.take_due(Instant::now()).is_empty());
        assert!(t.next_deadline().unwrap() > Instant::now());
        assert_eq!(t.take_all().len(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn take_earlier_days_takes_only_the_same_streams_earlier_dates() {
        use cdc_common::layout::DateDir;
        use cdc_common::DateSeparator;
        let f = Fixture::new();
        let mut t = BatchTable::new(Duration::from_secs(3600));
        let dated = |dispatcher: &str, table: &str, day: &str| BatchKey {
            date: DateDir::parse(DateSeparator::Day, day),
            ..key(dispatcher, table)
        };
        let keys = [
            dated("d", "t", "2023-11-13"),
            dated("d", "t", "2023-11-14"),
            dated("d", "t", "2023-11-15"),
            dated("d", "t", "2023-11-16"),
            dated("e", "t", "2023-11-14"),
            dated("d", "u", "2023-11-14"),
        ];
        for k in &keys {
            let d = Arc::new(DispatcherState::new(&k.dispatcher, FileNaming::Table, 1, 1));
            t.append(k.clone(), Arc::clone(&f.table), d, f.pending(1));
        }
        let mut taken: Vec<BatchKey> = t
            .take_earlier_days(&keys[2])
            .into_iter()
            .map(|b| b.key)
            .collect();
        taken.sort_by_key(|k| k.date);
        assert_eq!(taken, [keys[0].clone(), keys[1].clone()]);
        // The later day and the other streams stay open.
        assert_eq!(t.take_all().len(), 4);
    }

    #[test]
    fn take_dispatcher_takes_only_that_dispatchers_batches() {
        let f = Fixture::new();
        let mut t = BatchTable::new(Duration::from_secs(3600));
        f.append(&mut t, "d1", "a", 1);
        f.append(&mut t, "d1", "b", 1);
        f.append(&mut t, "d2", "a", 1);
        let mut taken: Vec<String> = t
            .take_dispatcher(&Arc::from("d1"))
            .into_iter()
            .map(|b| b.key.table)
            .collect();
        taken.sort();
        assert_eq!(taken, ["a", "b"]);
        let rest = t.take_all();
        assert_eq!(rest.len(), 1);
        assert_eq!(&*rest[0].key.dispatcher, "d2");
    }

    #[test]
    fn the_trailing_run_splits_off_and_goes_back_with_a_new_deadline() {
        let f = Fixture::new();
        let mut t = BatchTable::new(Duration::from_secs(3600));
        let d = Arc::new(DispatcherState::new("d", FileNaming::Table, 1, 1));
        let k = key("d", "t");
        for (bytes, at) in [(1, 1), (2, 1), (4, 2), (8, 3), (16, 3)] {
            t.append(
                k.clone(),
                Arc::clone(&f.table),
                Arc::clone(&d),
                f.pending_at(bytes, Ts(at)),
            );
        }
        let b = t.get(&k).unwrap();
        assert!(b.keyless, "the fixture's table has no primary key");
        assert_eq!((b.run_start, b.last_ts()), (3, Some(Ts(3))));
        let first_deadline = t.next_deadline().unwrap();
        let mut head = t.take(&k).unwrap();
        let run = head.split_trailing_run();
        assert_eq!((head.items.len(), head.bytes, head.rows), (3, 7, 3));
        assert_eq!((run.items.len(), run.bytes, run.rows), (2, 24, 2));
        assert!(run.items.iter().all(|p| p.commit_ts == Ts(3)));
        let old_id = run.id;
        t.put_back(run);
        let back = t.get(&k).unwrap();
        assert_ne!(back.id, old_id, "a new id: the old heap entry stays stale");
        assert_eq!(back.run_start, 0);
        assert!(t.next_deadline().unwrap() >= first_deadline);
        // An event at the same ts extends the run; a later one starts a new run.
        t.append(
            k.clone(),
            Arc::clone(&f.table),
            Arc::clone(&d),
            f.pending_at(1, Ts(3)),
        );
        assert_eq!(t.get(&k).unwrap().run_start, 0);
        t.append(
            k.clone(),
            Arc::clone(&f.table),
            Arc::clone(&d),
            f.pending_at(1, Ts(4)),
        );
        assert_eq!(t.get(&k).unwrap().run_start, 3);
        assert_eq!(t.take_all().len(), 1);
    }
}
