//! Batched enqueue: [`Spool::enqueue_many`] offers a run of messages with one critical section
//! for all of those that go to memory or to a segment's write buffer, instead of one each.
//!
//! A small spilled entry's own bookkeeping (placement, reservation, buffer append, wake
//! decision) is short; what one critical section per entry adds is the lock and unlock, two
//! atomic operations that each wait for the record's copy to leave the store buffer, and
//! publishing the gauges. A batch pays them once.
//!
//! ```text
//!  offers ──▶ [lock] for each offer, in order:
//!               placement Memory                      -> accounted, entry
//!               placement Spill, record < 256 KiB,    -> header (CRC-32C), reserve, append to
//!               no failed chunk waiting                  the open chunk, entry
//!               anything else                         -> ends the section
//!             the wake of each decided as try_enqueue decides it (run now or held)
//!             a chunk the appends sealed                -> ends the section
//!            [unlock] wakes run in order; the sealed chunk is written
//!          ──▶ the offer that ended the section goes through Spool::try_enqueue (direct
//!              writes, rotation failures, full disk: every rule of the single path)
//! ```
//!
//! # Invariants
//!
//! - Same answers, same order: the answers are those of calling [`Spool::try_enqueue`] on each
//!   offer in turn, and the call stops after the first `WaitForDiskQuota` (the offers after it
//!   are not taken from the iterator). Wakes run in offer order, after the critical section
//!   that accepted them and before the next one starts; a wake held above the high watermark
//!   is held exactly as a single enqueue would hold it.
//! - Every rule of the single path holds: memory within its quota, disk within its quota, at
//!   most one sealed chunk per critical section, written by this thread right after it,
//!   nothing written under the lock (the CRC-32C of a spilled record is computed under it).
//! - On an error the answers so far stay in `out`: accepted entries are never lost.

use crate::entry::{Enqueued, Location};
use crate::error::{Result, SpoolError};
use crate::quota::Placement;
use crate::record::{encode_header, record_len, MAX_RECORD_PAYLOAD};
use crate::segment_table::FileActions;
use crate::shared::{lock, Spool};
use crate::watermark::Callback;
use crate::write_buffer::DIRECT_WRITE_MIN;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One message of a batch for [`Spool::enqueue_many`]: what [`Spool::try_enqueue`] takes.
pub struct Offer {
    /// The payload.
    pub data: Bytes,
    /// The enqueue acknowledgement (see [`Spool::try_enqueue`]).
    pub wake: Option<Callback>,
    /// Runs when the entry is released.
    pub flush: Option<Callback>,
}

impl std::fmt::Debug for Offer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offer")
            .field("len", &self.data.len())
            .field("wake", &self.wake.is_some())
            .field("flush", &self.flush.is_some())
            .finish()
    }
}

impl Spool {
    /// Offers the messages of `offers`, in order, and appends one answer per message taken to
    /// `out`: exactly what [`Spool::try_enqueue`] would answer for each in turn, with one
    /// critical section for every run of messages that go to memory or to a segment's write
    /// buffer. Stops after the first [`Enqueued::WaitForDiskQuota`] (its data and callbacks
    /// handed back, as from `try_enqueue`); the messages after it stay in `offers`. Wakes run
    /// in order as their entries are accepted, or are held above the high watermark.
    ///
    /// On an error (as `try_enqueue` fails) the answers for the messages before it are in
    /// `out`; the failed message's callbacks are dropped unrun.
    pub fn enqueue_many<I>(&self, offers: &mut I, out: &mut Vec<Enqueued>) -> Result<()>
    where
        I: Iterator<Item = Offer>,
    {
        let mut wakes: Vec<Callback> = Vec::new();
        loop {
            match self.enqueue_run(offers, out, &mut wakes)? {
                Section::Done => return Ok(()),
                Section::ChunkSealed => {}
                Section::Single(offer) => {
                    let answer = self.try_enqueue(offer.data, offer.wake, offer.flush)?;
                    let refused = matches!(answer, Enqueued::WaitForDiskQuota { .. });
                    out.push(answer);
                    if refused {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// One critical section of [`Spool::enqueue_many`]: accepts offers while they go to memory
    /// or to a write buffer and no chunk was sealed; runs their wakes and writes a sealed chunk
    /// after it. Says why it ended.
    fn enqueue_run<I>(
        &self,
        offers: &mut I,
        out: &mut Vec<Enqueued>,
        wakes: &mut Vec<Callback>,
    ) -> Result<Section>
    where
        I: Iterator<Item = Offer>,
    {
        let inner = &self.inner;
        let mut actions = FileActions::default();
        let mut st = lock(&inner.state);
        if st.closed {
            return Err(SpoolError::Closed);
        }
        let mut spilled = 0u64;
        let mut taken = 0usize;
        let mut end = Section::Done;
        for offer in offers.by_ref() {
            let len = offer.data.len() as u64;
            let rec = record_len(len);
            let placement = if len > MAX_RECORD_PAYLOAD {
                Placement::WaitForDiskQuota // the single path names the error
            } else {
                st.acct.place(len, rec)
            };
            let entry_location = match placement {
                Placement::Memory => {
                    st.acct.add_memory(len);
                    Location::Memory(offer.data)
                }
                Placement::Spill if rec < DIRECT_WRITE_MIN && !st.segments.has_failed() => {
                    let header = encode_header(&offer.data);
                    let Ok((segment, offset)) = st.segments.reserve(rec, &mut actions) else {
                        // Creating a segment failed: the single path retries and answers.
                        end = Section::Single(offer);
                        break;
                    };
                    st.acct.add_disk(rec);
                    st.segments
                        .buffer_record(segment, offset, header, offer.data, &mut actions);
                    spilled += rec;
                    Location::Disk {
                        segment,
                        offset,
                        len,
                    }
                }
                _ => {
                    end = Section::Single(offer);
                    break;
                }
            };
            inner
                .spilling
                .store(placement != Placement::Memory, Ordering::Relaxed);
            let total = st.acct.total();
            wakes.extend(st.watermark.on_enqueue(total, offer.wake));
            let entry = crate::entry::Entry {
                spool: Arc::clone(inner),
                location: Some(entry_location),
                flush: offer.flush,
            };
            out.push(match placement {
                Placement::Memory => Enqueued::InMemory(entry),
                _ => Enqueued::Spilled(entry),
            });
            taken += 1;
            if !actions.write.is_empty() {
                end = Section::ChunkSealed;
                break;
            }
        }
        if spilled > 0 {
            inner.metrics.spill_bytes_total.add_locked(spilled);
        }
        if taken > 0 {
            inner.publish(&st);
        }
        drop(st);
        for w in wakes.drain(..) {
            w();
        }
        if !actions.is_empty() {
            if let Err(f) = inner.run_actions(actions) {
                inner.note_write_failure(&f);
            }
        }
        Ok(end)
    }
}

/// Why a critical section of [`Spool::enqueue_many`] ended.
enum Section {
    /// Every offer is answered.
    Done,
    /// An append sealed a chunk, now written: the next offers take a new section.
    ChunkSealed,
    /// This offer needs the single path (a direct write, a failed chunk to retry, no room,
    /// a segment that could not be created, a payload too large to frame).
    Single(Offer),
}
