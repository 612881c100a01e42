//! Entry types and addressing: the answer of [`Spool::try_enqueue`] ([`Enqueued`]) and the
//! accepted message it hands out ([`Entry`]), whose bytes are in memory or, spilled, a record
//! addressed as `(segment, offset, payload length)` in a segment file ([`EntryLocation`]).
//!
//! # Invariants
//!
//! - An entry's location is set from acceptance until its bytes are freed; only the free
//!   (release, drop, batch release) takes it, so every other method may rely on it.
//! - An entry holds one reference count: its spool's shared state (`Arc<Inner>`). A spilled
//!   entry addresses its segment by id; while the entry is live its segment is tracked by the
//!   segment table and found by readers in `OpenSegments` (`open_segments.rs`) without the
//!   spool's lock. (An `Arc<Segment>` per entry cost two more atomic updates per entry.)
//! - Accounting never leaks: dropping an entry frees its bytes, but never runs its flush
//!   callback. That `Drop` lives in `release.rs`, with the release it is a form of.

use crate::shared::Inner;
#[cfg(doc)]
use crate::shared::Spool;
use crate::watermark::Callback;
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// The answer of [`Spool::try_enqueue`]. Every variant but `WaitForDiskQuota` carries the
/// accepted entry.
pub enum Enqueued {
    /// Accepted and held in memory.
    InMemory(Entry),
    /// Accepted and written to a segment file (memory quota reached).
    Spilled(Entry),
    /// Accepted and written to disk although its record is larger than the whole disk quota
    /// (admitted only when the disk held nothing, so it cannot wait forever).
    Oversized(Entry),
    /// Not accepted: memory is full and the disk quota has no room for it, or the spool
    /// directory's file system has no room while entries are held whose release can make some.
    /// Everything is handed back, no callback has run. The caller flushes what it can, waits
    /// for space
    /// ([`Spool::wait_for_space_since`] or [`Spool::notify_on_space`] with `generation`), and
    /// retries.
    WaitForDiskQuota {
        /// The payload, handed back.
        data: Bytes,
        /// The wake callback, not run.
        wake: Option<Callback>,
        /// The flush callback, not run.
        flush: Option<Callback>,
        /// The space generation seen by this call: a wait for a later generation cannot miss
        /// a release that happens between this answer and the wait.
        generation: u64,
    },
}

impl Enqueued {
    /// The accepted entry, or `None` for `WaitForDiskQuota`.
    pub fn into_entry(self) -> Option<Entry> {
        match self {
            Enqueued::InMemory(e) | Enqueued::Spilled(e) | Enqueued::Oversized(e) => Some(e),
            Enqueued::WaitForDiskQuota { .. } => None,
        }
    }

    /// A short name of the outcome (`in-memory`, `spilled`, `oversized`,
    /// `wait-for-disk-quota`), for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Enqueued::InMemory(_) => "in-memory",
            Enqueued::Spilled(_) => "spilled",
            Enqueued::Oversized(_) => "oversized",
            Enqueued::WaitForDiskQuota { .. } => "wait-for-disk-quota",
        }
    }
}

impl fmt::Debug for Enqueued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Enqueued::InMemory(e) => f.debug_tuple("InMemory").field(e).finish(),
            Enqueued::Spilled(e) => f.debug_tuple("Spilled").field(e).finish(),
            Enqueued::Oversized(e) => f.debug_tuple("Oversized").field(e).finish(),
            Enqueued::WaitForDiskQuota {
                data, generation, ..
            } => f
                .debug_struct("WaitForDiskQuota")
                .field("len", &data.len())
                .field("generation", generation)
                .finish_non_exhaustive(),
        }
    }
}

/// Where an entry's bytes are.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EntryLocation {
    /// In memory.
    Memory {
        /// Payload length.
        len: u64,
    },
    /// In a segment file.
    Disk {
        /// Segment id (`segment-<id>.log`).
        segment: u64,
        /// Offset of the record start.
        offset: u64,
        /// Payload length.
        len: u64,
    },
}

/// Where an entry's bytes are, as the spool holds them (the payload, or its record's address).
pub(crate) enum Location {
    Memory(Bytes),
    Disk {
        /// Segment id.
        segment: u64,
        offset: u64,
        len: u64,
    },
}

/// One accepted message: owned, `Send`, addressing its bytes in memory or on disk.
///
/// Release it with [`Spool::release`] once its data is durable in storage: that runs its flush
/// callback and frees its bytes. Dropping an entry without releasing it frees its bytes too
/// (accounting never leaks) but does **not** run the flush callback: a dropped entry was not
/// flushed, so nothing may acknowledge it.
pub struct Entry {
    pub(crate) spool: Arc<Inner>,
    pub(crate) location: Option<Location>,
    pub(crate) flush: Option<Callback>,
}

impl Entry {
    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        match self.location() {
            EntryLocation::Memory { len } | EntryLocation::Disk { len, .. } => len as usize,
        }
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the bytes are in a segment file.
    pub fn is_spilled(&self) -> bool {
        matches!(self.location(), EntryLocation::Disk { .. })
    }

    /// Where the bytes are.
    pub fn location(&self) -> EntryLocation {
        match self
            .location
            .as_ref()
            .expect("entry location is taken only when consumed")
        {
            Location::Memory(b) => EntryLocation::Memory {
                len: b.len() as u64,
            },
            Location::Disk {
                segment,
                offset,
                len,
            } => EntryLocation::Disk {
                segment: *segment,
                offset: *offset,
                len: *len,
            },
        }
    }
}

impl Entry {
    /// Where the bytes are, as held.
    pub(crate) fn loc(&self) -> &Location {
        self.location
            .as_ref()
            .expect("entry location is taken only when consumed")
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("location", &self.location())
            .field("flush", &self.flush.is_some())
            .finish()
    }
}
