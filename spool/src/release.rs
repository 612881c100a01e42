//! Release: [`Spool::release`] and [`Spool::release_many`] run the flush callbacks of entries
//! whose data is durable and give their bytes back; dropping an entry gives its bytes back
//! without the flush callback. Disk-quota waiters and held wakes are let go here.
//!
//! # Order of a release
//!
//! ```text
//!  flush callback(s), in order                                        [no lock]
//!  free:   accounting, live entries per segment; a segment whose      [lock]
//!          last entry this was is queued for deletion unless active
//!  settle: space generation += entries freed, take the space          [same lock]
//!          callbacks, the watermark machine picks the held wakes to
//!          run, gauges published
//!  after:  notify blocked waiters, seal/delete files, run the space   [no lock]
//!          callbacks, then the released held wakes, oldest first
//! ```
//!
//! # Invariants
//!
//! - Deletion follows release: a segment file is deleted only once every entry in it is
//!   released or dropped, and never while it is the active segment.
//! - A flush callback runs only through a release, never on drop: a dropped entry was not
//!   flushed, so nothing may acknowledge it.
//! - Held wakes run on the releasing thread, in arrival order, once the total falls to the low
//!   watermark ([`crate::watermark`]); no held wake runs between two flush callbacks of one
//!   `release_many`.
//! - Callbacks run after the lock is dropped, so they may call back into the spool.
//! - A spill whose direct write failed is undone through the same free (`Freed::RolledBack`):
//!   its region is rolled back instead of released.

use crate::entry::{Entry, Location};
use crate::record::record_len;
use crate::segment_table::FileActions;
use crate::shared::{lock, Inner, Spool, State};
use crate::watermark::Callback;
use std::sync::{Arc, MutexGuard};

impl Spool {
    /// Releases an entry whose data is durable: runs its flush callback, then frees its bytes,
    /// deletes its segment if that was the segment's last entry and the segment is not active,
    /// wakes disk-quota waiters, and runs the held wakes (in order) if the total fell to the low
    /// watermark. Callbacks run on this thread, after the spool's lock is dropped.
    pub fn release(&self, mut entry: Entry) {
        if let Some(f) = entry.flush.take() {
            f();
        }
        drop(entry);
    }

    /// Releases a batch of entries whose data is durable (a published file's entries): as
    /// [`Spool::release`] on each in turn, with one critical section for the whole batch
    /// instead of one per entry. Every flush callback runs first, in order; then all the
    /// entries' bytes are freed together (segments whose last entry this was are deleted); then
    /// disk-quota waiters are woken and, if the total fell to the low watermark, the held wakes
    /// run in order. Observable order is that of releasing the entries one by one, except that
    /// no held wake runs between two of the batch's flush callbacks. The space generation
    /// advances once per entry. An entry of another spool is freed by its own spool as it is
    /// dropped (its flush callback still runs).
    pub fn release_many(&self, entries: impl IntoIterator<Item = Entry>) {
        // One pass: each flush callback runs, then the entry's location is tallied and the
        // entry dropped (it has nothing left to free); the tally is freed under one lock.
        let mut freed = Tally::default();
        let mut foreign = Vec::new();
        for mut e in entries {
            if let Some(f) = e.flush.take() {
                f();
            }
            if !Arc::ptr_eq(&self.inner, &e.spool) {
                foreign.push(e);
            } else if let Some(loc) = e.location.take() {
                freed.add(loc);
            }
        }
        self.inner.free_tally(freed);
        // Entries of another spool are freed by their own spool, after every flush callback.
        drop(foreign);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(loc) = self.location.take() {
            self.spool.free(loc, Freed::Released);
        }
    }
}

impl Inner {
    /// Gives an entry's bytes back: release and drop end here, and so does a spill whose
    /// direct write failed (its region is rolled back, see
    /// [`Segments::roll_back`](crate::segment_table::Segments::roll_back)).
    pub(crate) fn free(&self, loc: Location, how: Freed) {
        let mut actions = FileActions::default();
        let mut st = lock(&self.state);
        if st.closed {
            return;
        }
        match &loc {
            Location::Memory(b) => st.acct.sub_memory(b.len() as u64),
            Location::Disk {
                segment,
                offset,
                len,
            } => {
                let rec = record_len(*len);
                st.acct.sub_disk(rec);
                match how {
                    Freed::Released => st.segments.release(*segment, &mut actions),
                    Freed::RolledBack => {
                        st.segments.roll_back(*segment, *offset, rec, &mut actions)
                    }
                }
            }
        }
        let after = self.settle(st, 1);
        drop(loc);
        after.run(self, actions);
    }

    /// Ends the critical section of a free of `freed` entries whose accounting is done:
    /// advances the space generation, takes the space callbacks, lets the watermark machine
    /// decide which held wakes run, publishes the gauges and drops the lock. What it returns
    /// runs once the freed bytes are dropped.
    fn settle(&self, mut st: MutexGuard<'_, State>, freed: u64) -> Settled {
        st.space_generation += freed;
        let space_callbacks = std::mem::take(&mut st.space_callbacks);
        let total = st.acct.total();
        let wakes = st.watermark.on_release(total);
        let notify = st.blocked_waiters > 0;
        self.publish(&st);
        Settled {
            space_callbacks,
            wakes,
            notify,
        }
    }

    /// [`Inner::free`] of many released entries, tallied, under one lock.
    fn free_tally(&self, t: Tally) {
        let entries = t.memory_entries + t.disk_entries;
        if entries == 0 {
            return;
        }
        let mut actions = FileActions::default();
        let mut st = lock(&self.state);
        if st.closed {
            return;
        }
        st.acct.sub_memory_n(t.memory_bytes, t.memory_entries);
        st.acct.sub_disk_n(t.disk_bytes, t.disk_entries);
        for &(segment, n) in &t.segments {
            st.segments.release_n(segment, n, &mut actions);
        }
        let after = self.settle(st, entries);
        after.run(self, actions);
    }
}

/// What a batch release frees, summed entry by entry without the lock: bytes and entries in
/// memory and on disk, and live entries per segment (consecutive entries of one segment
/// counted together, so a published file's entries are mostly one segment's run).
#[derive(Debug, Default)]
struct Tally {
    memory_bytes: u64,
    memory_entries: u64,
    disk_bytes: u64,
    disk_entries: u64,
    segments: Vec<(u64, u64)>,
}

impl Tally {
    /// Counts a freed entry's location (a memory payload is dropped here, outside the lock).
    fn add(&mut self, loc: Location) {
        match loc {
            Location::Memory(b) => {
                self.memory_bytes += b.len() as u64;
                self.memory_entries += 1;
            }
            Location::Disk { segment, len, .. } => {
                self.disk_bytes += record_len(len);
                self.disk_entries += 1;
                match self.segments.last_mut() {
                    Some((s, n)) if *s == segment => *n += 1,
                    _ => self.segments.push((segment, 1)),
                }
            }
        }
    }
}

/// What a free runs after its critical section (see [`Inner::settle`]).
struct Settled {
    space_callbacks: Vec<(u64, Callback)>,
    wakes: std::collections::VecDeque<Callback>,
    notify: bool,
}

impl Settled {
    /// Wakes blocked disk-quota waiters, seals and deletes the files in `actions`, then runs
    /// the space callbacks and the released wakes, in order, on this thread.
    fn run(self, inner: &Inner, actions: FileActions) {
        if self.notify {
            inner.space.notify_all();
        }
        actions.run();
        for (_, cb) in self.space_callbacks {
            cb();
        }
        for w in self.wakes {
            w();
        }
    }
}

/// How an entry's bytes are given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freed {
    /// Released or dropped after it was accepted.
    Released,
    /// Never accepted: its direct write failed and its reservation is undone.
    RolledBack,
}
