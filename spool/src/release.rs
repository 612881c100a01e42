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
        let mut entries: Vec<Entry> = entries.into_iter().collect();
        for e in &mut entries {
            if let Some(f) = e.flush.take() {
                f();
            }
        }
        self.inner.free_many(entries);
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

    /// [`Inner::free`] of many released entries under one lock. The locations are taken out of
    /// the entries only after the lock is dropped (so their bytes are freed outside it, and
    /// the entries' own `Drop` then has nothing left to free).
    fn free_many(self: &Arc<Self>, mut entries: Vec<Entry>) {
        entries.retain(|e| Arc::ptr_eq(self, &e.spool));
        if entries.is_empty() {
            return;
        }
        let mut actions = FileActions::default();
        let mut st = lock(&self.state);
        if st.closed {
            return;
        }
        // Consecutive entries of one segment release it with one table look-up.
        let mut run: Option<(u64, u64)> = None;
        for e in &entries {
            match e.loc() {
                Location::Memory(b) => st.acct.sub_memory(b.len() as u64),
                Location::Disk { segment, len, .. } => {
                    st.acct.sub_disk(record_len(*len));
                    let id = *segment;
                    match &mut run {
                        Some((seg, n)) if *seg == id => *n += 1,
                        _ => {
                            if let Some((seg, n)) = run.replace((id, 1)) {
                                st.segments.release_n(seg, n, &mut actions);
                            }
                        }
                    }
                }
            }
        }
        if let Some((seg, n)) = run {
            st.segments.release_n(seg, n, &mut actions);
        }
        let after = self.settle(st, entries.len() as u64);
        for e in &mut entries {
            e.location = None;
        }
        drop(entries);
        after.run(self, actions);
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
