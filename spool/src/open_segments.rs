//! The open segment files of one spool, by id, for the read path.
//!
//! A spilled [`Entry`](crate::Entry) addresses its record by segment id, offset and length; it
//! does not hold the segment file itself. Holding it (an `Arc<Segment>` per entry) cost two
//! atomic reference-count updates per entry, once at enqueue and once at release, on top of the
//! spool's own; an id costs nothing, and a read looks the file up here once per run of
//! records (`read_many`) or per single read.
//!
//! # Invariants
//!
//! - The segment table (under the spool's lock) is the only writer: it inserts a segment when
//!   it creates its file and removes it when it stops tracking the segment (its last entry
//!   released while not active, rotation of a fully released active segment, close). So a
//!   segment is here exactly while the table has a slot for it.
//! - An entry that is neither released nor dropped counts as live in its segment's slot, so
//!   its segment is here for as long as the entry can be read (until close).
//! - Lock order: the spool's lock, then this one; readers take only this one, for a look-up
//!   and a reference-count increment, never across I/O.

use crate::segment::Segment;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Segment files by id (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct OpenSegments {
    by_id: RwLock<BTreeMap<u64, Arc<Segment>>>,
}

impl OpenSegments {
    /// The segment `id`, if the table still tracks it.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<Segment>> {
        self.read().get(&id).cloned()
    }

    /// Registers a segment the table has just created.
    pub(crate) fn insert(&self, segment: &Arc<Segment>) {
        self.write().insert(segment.id(), Arc::clone(segment));
    }

    /// Forgets segment `id` (the table dropped its slot).
    pub(crate) fn remove(&self, id: u64) {
        self.write().remove(&id);
    }

    /// Forgets every segment (close).
    pub(crate) fn clear(&self) {
        self.write().clear();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Arc<Segment>>> {
        // Nothing panics while holding it (a look-up, an insert, a removal).
        self.by_id.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, Arc<Segment>>> {
        self.by_id.write().unwrap_or_else(|e| e.into_inner())
    }
}
