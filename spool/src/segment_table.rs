//! The segment table of one spool: which segment files exist, which one is active, how many
//! live entries each holds, where the next record goes, and each segment's write buffer.
//!
//! The table is kept under the spool's lock and decides; it does not write. What must happen to
//! files once the lock is dropped is collected in [`FileActions`] (chunks to write, segments to
//! make read-only, segments to delete), which the caller runs outside the lock.
//!
//! # Rules
//!
//! - a spill reserves `record_len` bytes at the active segment's end; if the active segment
//!   already holds bytes and the record would cross `segment_size`, the active segment is
//!   rotated first (a record larger than `segment_size` gets a segment of its own);
//! - the active segment is created lazily by the first spill after open or rotation;
//! - **deletion follows release**: a segment counts its live entries (reserved regions
//!   included); one that is not active is deleted as soon as its last entry is released, with
//!   whatever its buffer still held; the active one is kept and reused from offset 0;
//! - the only I/O under the lock is creating a new, empty segment file and, after a failed
//!   direct write, cutting the file back to where that record started.
//!
//! See [`Segments`] for the full list and [`crate::write_buffer`] for the buffers' invariants.

use crate::error::{SpoolError, WriteFailure};
use crate::open_segments::OpenSegments;
use crate::record::RECORD_HEADER_LEN;
use crate::segment::Segment;
use crate::write_buffer::{WriteBuffer, WriteJob};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;

/// Bookkeeping of one live segment.
#[derive(Debug)]
struct Slot {
    segment: Arc<Segment>,
    /// Entries addressing this segment that are not released yet (including reserved regions
    /// whose write is still in flight).
    live: u64,
    /// Next write offset (end of the last reserved record).
    end: u64,
    /// Records appended but not yet in the file.
    buffer: WriteBuffer,
}

/// What the caller must do with segment files once the spool lock is dropped.
#[derive(Debug, Default)]
#[must_use]
pub(crate) struct FileActions {
    /// Sealed chunks of write buffers to write (then complete under the lock).
    pub(crate) write: Vec<WriteJob>,
    /// Segments that stopped being active: make them read-only.
    pub(crate) seal: Vec<Arc<Segment>>,
    /// Segments fully released and not active: delete their files.
    pub(crate) delete: Vec<Arc<Segment>>,
}

impl FileActions {
    /// True when there is nothing to do (most small spills: their chunk is still open).
    pub(crate) fn is_empty(&self) -> bool {
        self.write.is_empty() && self.seal.is_empty() && self.delete.is_empty()
    }

    /// Seals and deletes files; errors are logged (a leftover file is removed with the
    /// directory at close or at the next open). The `write` jobs must have been taken out and
    /// run by the spool first, since they need its lock to complete.
    pub(crate) fn run(self) {
        debug_assert!(self.write.is_empty(), "chunk writes left unrun");
        for s in self.seal {
            s.seal();
        }
        for s in self.delete {
            if let Err(e) = std::fs::remove_file(s.path()) {
                if e.kind() != ErrorKind::NotFound {
                    tracing::warn!(path = %s.path().display(), error = %e, "cannot delete spool segment");
                }
            }
        }
    }
}

/// The table of segment files of one spool: creation, reservation of write regions, the write
/// buffers, rotation and deletion decisions. Kept under the spool's lock.
///
/// Rules:
/// - a spill reserves `record_len` bytes at the active segment's end; if the active segment
///   already holds bytes and the record would cross `segment_size`, the active segment is
///   rotated first (a record larger than `segment_size` gets a segment of its own);
/// - the active segment is created lazily by the first spill after open or rotation;
/// - when the active segment has no live entry, none of its chunks is being written and no
///   batched read maps it (`mapped_read.rs`: payloads read back may still be slices of its
///   pages), its next write starts again at offset 0 and its buffer is emptied (the bytes there
///   belong to released entries, nobody can address them any more), so a spool that spills and
///   drains in turn reuses one file instead of growing it;
/// - rotation seals the open chunk of the segment it ends (the rotating thread writes it);
/// - a segment that is not active is deleted as soon as its last entry is released, with
///   whatever its buffer still held.
#[derive(Debug)]
pub(crate) struct Segments {
    dir: PathBuf,
    segment_size: u64,
    slots: BTreeMap<u64, Slot>,
    active: Option<u64>,
    next_id: u64,
    /// Failed chunks over all write buffers, so that a spill learns whether it must retry one
    /// without looking at every segment.
    failed_chunks: usize,
    /// The segments of `slots`, by id, for readers outside the lock: kept in step with
    /// `slots` (inserted at creation, removed with the slot).
    open: Arc<OpenSegments>,
}

/// Runs `f` on a slot's write buffer and keeps the table's count of failed chunks in step.
fn on_buffer<R>(
    failed_chunks: &mut usize,
    slot: &mut Slot,
    f: impl FnOnce(&mut WriteBuffer, &Arc<Segment>) -> R,
) -> R {
    let before = slot.buffer.failed_count();
    let r = f(&mut slot.buffer, &slot.segment);
    *failed_chunks = *failed_chunks + slot.buffer.failed_count() - before;
    r
}

impl Segments {
    pub(crate) fn new(dir: PathBuf, segment_size: u64, open: Arc<OpenSegments>) -> Segments {
        Segments {
            dir,
            segment_size,
            slots: BTreeMap::new(),
            active: None,
            next_id: 0,
            failed_chunks: 0,
            open,
        }
    }

    /// The file of segment `id`, while the table tracks it.
    pub(crate) fn segment(&self, id: u64) -> Option<Arc<Segment>> {
        self.slots.get(&id).map(|s| Arc::clone(&s.segment))
    }

    /// Drops the slot of segment `id` and queues its file for deletion.
    fn forget(&mut self, id: u64, actions: &mut FileActions) {
        let slot = self.slots.remove(&id).expect("slot exists");
        self.failed_chunks -= slot.buffer.failed_count();
        self.open.remove(id);
        actions.delete.push(slot.segment);
    }

    /// Segment files that exist.
    pub(crate) fn count(&self) -> usize {
        self.slots.len()
    }

    /// Id of the active segment, if one exists.
    pub(crate) fn active(&self) -> Option<u64> {
        self.active
    }

    /// Reserves a region of `rec_len` bytes for a new record, creating or rotating the active
    /// segment as needed. Returns the segment's id and the record's offset; the entry counts
    /// as live from now on. The only I/O under the lock is creating a new (empty) file at
    /// rotation.
    pub(crate) fn reserve(
        &mut self,
        rec_len: u64,
        actions: &mut FileActions,
    ) -> Result<(u64, u64), WriteFailure> {
        if let Some(id) = self.active {
            let slot = self.slots.get_mut(&id).expect("active segment has a slot");
            if slot.live == 0 && !slot.buffer.is_writing() && !slot.segment.is_mapped() {
                slot.end = 0;
                on_buffer(&mut self.failed_chunks, slot, |b, s| b.clear(s));
            }
            if slot.end > 0 && slot.end.saturating_add(rec_len) > self.segment_size {
                self.rotate(actions);
            }
        }
        let id = match self.active {
            Some(id) => id,
            None => {
                let id = self.next_id;
                let segment = match Segment::create(&self.dir, id) {
                    Ok(s) => Arc::new(s),
                    Err(SpoolError::Io { path, source }) => {
                        return Err(WriteFailure {
                            segment: id,
                            path,
                            source,
                        })
                    }
                    Err(other) => unreachable!("segment creation fails only with I/O: {other}"),
                };
                self.next_id += 1;
                self.open.insert(&segment);
                self.slots.insert(
                    id,
                    Slot {
                        segment,
                        live: 0,
                        end: 0,
                        buffer: WriteBuffer::default(),
                    },
                );
                self.active = Some(id);
                id
            }
        };
        let slot = self.slots.get_mut(&id).expect("active segment has a slot");
        let offset = slot.end;
        slot.end += rec_len;
        slot.live += 1;
        Ok((id, offset))
    }

    /// Appends the record just reserved at `offset` of segment `id` to that segment's write
    /// buffer; a chunk the append sealed is queued in `actions` for the caller to write.
    pub(crate) fn buffer_record(
        &mut self,
        id: u64,
        offset: u64,
        header: [u8; RECORD_HEADER_LEN as usize],
        payload: Bytes,
        actions: &mut FileActions,
    ) {
        let slot = self
            .slots
            .get_mut(&id)
            .expect("a reserved segment has a slot");
        actions
            .write
            .extend(slot.buffer.append(&slot.segment, offset, header, payload));
    }

    /// Seals the open chunk of segment `id` (before a record written directly, so that chunks
    /// stay contiguous runs of records); the chunk is queued in `actions`.
    pub(crate) fn seal_open(&mut self, id: u64, actions: &mut FileActions) {
        if let Some(slot) = self.slots.get_mut(&id) {
            actions.write.extend(slot.buffer.seal(&slot.segment));
        }
    }

    /// Seals every open chunk and hands out every failed one: all buffered records go to
    /// their files (`Spool::write_buffered`).
    pub(crate) fn seal_all(&mut self, actions: &mut FileActions) {
        for slot in self.slots.values_mut() {
            actions.write.extend(slot.buffer.seal(&slot.segment));
            on_buffer(&mut self.failed_chunks, slot, |b, s| {
                b.take_failed(s, &mut actions.write)
            });
        }
    }

    /// True when a chunk whose write failed waits for its retry.
    pub(crate) fn has_failed(&self) -> bool {
        debug_assert_eq!(
            self.failed_chunks,
            self.slots
                .values()
                .map(|s| s.buffer.failed_count())
                .sum::<usize>()
        );
        self.failed_chunks > 0
    }

    /// Hands out every failed chunk of a segment that still has live entries for another
    /// write; failed chunks of a fully released segment are dropped unwritten.
    pub(crate) fn take_failed(&mut self, actions: &mut FileActions) {
        if self.failed_chunks == 0 {
            return;
        }
        for slot in self.slots.values_mut() {
            if !slot.buffer.has_failed() {
                continue;
            }
            let drop_unwritten = slot.live == 0 && !slot.buffer.is_writing();
            on_buffer(&mut self.failed_chunks, slot, |b, s| {
                if drop_unwritten {
                    b.clear(s)
                } else {
                    b.take_failed(s, &mut actions.write)
                }
            });
        }
    }

    /// Records the outcome of a chunk write. Nothing to do if the segment was deleted meanwhile
    /// (every entry in it was released while it was written).
    pub(crate) fn complete(&mut self, job: WriteJob, written: bool) {
        let id = job.segment.id();
        if let Some(slot) = self.slots.get_mut(&id) {
            on_buffer(&mut self.failed_chunks, slot, |b, s| {
                b.complete(s, job.chunk, written)
            });
        }
    }

    /// The payload of the record at `offset` of segment `id` if the write buffer holds it.
    pub(crate) fn read_buffered(&self, id: u64, offset: u64) -> Option<Bytes> {
        self.slots.get(&id)?.buffer.read(offset)
    }

    /// Bytes held in write buffers.
    pub(crate) fn buffered_bytes(&self) -> u64 {
        self.slots.values().map(|s| s.buffer.buffered_bytes()).sum()
    }

    /// Undoes the reservation of a record at `offset` of segment `id` whose direct write failed:
    /// the entry stops being live and, if no record was reserved after it, the segment's next
    /// write offset goes back to `offset` and the file is cut there, so no partial record stays
    /// in the file and its space is given back. (If another record was reserved after it, the
    /// region stays a hole that nothing addresses.)
    pub(crate) fn roll_back(
        &mut self,
        id: u64,
        offset: u64,
        rec_len: u64,
        actions: &mut FileActions,
    ) {
        if let Some(slot) = self.slots.get_mut(&id) {
            if slot.end == offset + rec_len {
                slot.end = offset;
                // Error path only: the one I/O besides file creation made under the lock, so
                // that no other record can be reserved at `offset` before the cut. A file that
                // ends before `offset` (the chunk before failed too) is left as it is.
                let file = slot.segment.file();
                let cut = file.metadata().and_then(|m| {
                    if m.len() > offset {
                        file.set_len(offset)
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = cut {
                    tracing::warn!(path = %slot.segment.path().display(), offset, error = %e,
                        "cannot cut spool segment back after a failed write");
                }
            }
        }
        self.release(id, actions);
    }

    /// Ends the active segment: it becomes read-only (its open chunk sealed, for the caller to
    /// write), or is deleted at once if nothing in it is live. No-op when there is no active
    /// segment or it holds no bytes.
    pub(crate) fn rotate(&mut self, actions: &mut FileActions) {
        let Some(id) = self.active else { return };
        let slot = self.slots.get_mut(&id).expect("active segment has a slot");
        if slot.end == 0 {
            return;
        }
        self.active = None;
        if slot.live == 0 {
            self.forget(id, actions);
        } else {
            actions.write.extend(slot.buffer.seal(&slot.segment));
            actions.seal.push(Arc::clone(&slot.segment));
        }
    }

    /// One entry of segment `id` is released; the segment is queued for deletion when that was
    /// its last live entry and it is not the active one. The active segment's write buffer is
    /// emptied then (unless a chunk is being written): its records are all released, and a
    /// chunk kept after a failed write must not be retried for nothing.
    pub(crate) fn release(&mut self, id: u64, actions: &mut FileActions) {
        self.release_n(id, 1, actions);
    }

    /// [`Segments::release`] of `n` entries of segment `id` at once.
    pub(crate) fn release_n(&mut self, id: u64, n: u64, actions: &mut FileActions) {
        let Some(slot) = self.slots.get_mut(&id) else {
            debug_assert!(false, "release of an entry in unknown segment {id}");
            return;
        };
        debug_assert!(
            slot.live >= n,
            "release of more entries than segment {id} holds"
        );
        slot.live = slot.live.saturating_sub(n);
        if slot.live > 0 {
            return;
        }
        if self.active != Some(id) {
            self.forget(id, actions);
        } else if !slot.buffer.is_writing() {
            on_buffer(&mut self.failed_chunks, slot, |b, s| b.clear(s));
        }
    }

    /// Forgets every segment (the spool is closing and removes the directory as a whole).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.open.clear();
        self.failed_chunks = 0;
        self.active = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn a_failed_last_record_is_rolled_back_and_cut_from_the_file_but_not_one_before_another() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Segments::new(dir.path().to_path_buf(), 1 << 20, Arc::default());
        let mut a = FileActions::default();
        let (id, o0) = t.reserve(100, &mut a).unwrap();
        let s = t.segment(id).unwrap();
        let (_, o1) = t.reserve(300, &mut a).unwrap();
        assert_eq!((o0, o1), (0, 100));
        // the second record's write got 150 bytes out before failing
        s.file().write_all_at(&[1; 250], 0).unwrap();
        t.roll_back(s.id(), o1, 300, &mut a);
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), 100, "cut back");
        let (_, again) = t.reserve(40, &mut a).unwrap();
        assert_eq!(again, 100, "the next record takes the rolled-back offset");
        // a record with another reserved after it cannot move the end: it stays a hole
        let (_, o3) = t.reserve(50, &mut a).unwrap();
        t.roll_back(s.id(), again, 40, &mut a);
        assert_eq!(t.reserve(10, &mut a).unwrap().1, o3 + 50);
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), 100, "no cut");
        assert!(a.write.is_empty() && a.delete.is_empty());
    }

    #[test]
    fn reserve_rotates_at_segment_size_and_deletes_released_sealed_segments() {
        let dir = tempfile::tempdir().unwrap();
        let open = Arc::new(OpenSegments::default());
        let mut t = Segments::new(dir.path().to_path_buf(), 20, Arc::clone(&open));
        let mut a = FileActions::default();
        assert_eq!(t.reserve(12, &mut a).unwrap(), (0, 0));
        assert_eq!(
            t.reserve(12, &mut a).unwrap(),
            (1, 0),
            "12 + 12 crosses 20: rotated"
        );
        assert_eq!(a.seal.len(), 1);
        assert_eq!(t.count(), 2);
        assert!(
            open.get(0).is_some() && open.get(1).is_some(),
            "readers find both"
        );
        t.release(0, &mut a);
        assert_eq!(a.delete.len(), 1, "sealed and fully released");
        assert!(open.get(0).is_none(), "readers forget a deleted segment");
        t.release(1, &mut a);
        assert_eq!(t.count(), 1, "the active segment stays");
        assert!(open.get(1).is_some());
        let (s, o) = t.reserve(12, &mut a).unwrap();
        assert_eq!((s, o), (1, 0), "an empty active segment is reused from 0");
        a.run();
        t.clear();
        assert!(open.get(1).is_none(), "close forgets every segment");
    }
}
