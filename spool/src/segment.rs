//! Segment files: append-only `segment-<id>.log` files holding framed records.
//!
//! # Record layout (FROZEN)
//!
//! ```text
//! offset  size  field
//! 0       4     len    payload length in bytes, u32 little-endian
//! 4       4     crc    CRC-32C (Castagnoli) of the payload, u32 little-endian
//! 8       len   payload
//! ```
//!
//! Records follow each other with no padding. An entry is addressed by
//! `(segment id, offset of the record start, payload length)` and read back with one positioned
//! read of `8 + len` bytes; the reader checks that the stored `len` equals the addressed length,
//! that the file holds the whole record and that the checksum matches, and reports a
//! [`SpoolError::Corrupt`] naming the segment and offset otherwise.
//!
//! **Warning:** do not change the field order, widths or endianness. Segment files are scratch
//! (never read across process restarts), but the diagnostics scanner ([`scan_segment`]) and the
//! byte-pinning test `record_framing_bytes_are_pinned` rely on this exact layout.
//!
//! This module holds the file-level operations and the table of live segments (`Segments`):
//! which segment is active, how many live entries each holds, the next write offset, and each
//! segment's write buffer ([`crate::write_buffer`]: small records are appended there and reach
//! the file in chunks). The table is kept under the spool's lock; the I/O itself (positioned
//! writes and reads) happens outside it, except creating a segment file and, after a failed
//! direct write, cutting the file back to where that record started.

use crate::error::{CorruptReason, Result, SpoolError, WriteFailure};
use crate::write_buffer::{Chunk, WriteBuffer, WriteJob};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes of the record header: `len: u32 LE` then `crc: u32 LE`.
pub const RECORD_HEADER_LEN: u64 = 8;

/// Largest payload a record can frame (the `len` field is a u32).
pub const MAX_RECORD_PAYLOAD: u64 = u32::MAX as u64;

/// Alignment (a cache line) the read buffer is matched to, see [`read_span`].
pub(crate) const READ_ALIGN: usize = 64;

/// The file name of segment `id`: `segment-<id>.log`, the id zero-padded to 20 digits so that
/// a directory listing sorts in creation order.
pub fn segment_file_name(id: u64) -> String {
    format!("segment-{id:020}.log")
}

/// Bytes a payload of `payload_len` bytes occupies on disk.
pub fn record_len(payload_len: u64) -> u64 {
    RECORD_HEADER_LEN + payload_len
}

/// CRC-32C (Castagnoli, the same function as CRC-32/ISCSI) of `bytes`, as stored in record
/// headers. `crc-fast` picks the widest SIMD the CPU offers at run time.
pub fn checksum(bytes: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

/// The 8-byte header framing `payload`.
pub fn encode_header(payload: &[u8]) -> [u8; RECORD_HEADER_LEN as usize] {
    let mut h = [0u8; RECORD_HEADER_LEN as usize];
    h[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..].copy_from_slice(&checksum(payload).to_le_bytes());
    h
}

/// Verifies a whole record buffer (`header + payload`) read at `offset` of `segment`: `Ok` when
/// it is intact. `buf` must hold exactly `8 + expected_len` bytes.
pub(crate) fn verify_record(
    segment: u64,
    offset: u64,
    expected_len: u64,
    buf: &[u8],
) -> Result<()> {
    let found = u64::from(u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]));
    if found != expected_len {
        return Err(SpoolError::Corrupt {
            segment,
            offset,
            reason: CorruptReason::LengthMismatch {
                expected: expected_len,
                found,
            },
        });
    }
    let stored = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let computed = checksum(&buf[RECORD_HEADER_LEN as usize..]);
    if stored != computed {
        return Err(SpoolError::Corrupt {
            segment,
            offset,
            reason: CorruptReason::ChecksumMismatch { stored, computed },
        });
    }
    Ok(())
}

/// One open segment file. Shared (`Arc`) by the segment table and by every entry stored in it,
/// so a read of a record in the file needs no lock.
#[derive(Debug)]
pub(crate) struct Segment {
    id: u64,
    path: PathBuf,
    file: File,
    /// Lowest offset still held by the segment's write buffer (`u64::MAX` when none): a record
    /// ending at or before it is in the file. Set under the spool's lock by the buffer.
    pub(crate) buffered_from: AtomicU64,
}

impl Segment {
    /// Creates `segment-<id>.log` in `dir`; fails if it already exists.
    pub(crate) fn create(dir: &Path, id: u64) -> Result<Segment> {
        let path = dir.join(segment_file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| SpoolError::io(&path, e))?;
        Ok(Segment {
            id,
            path,
            file,
            buffered_from: AtomicU64::new(u64::MAX),
        })
    }

    /// The segment id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The segment file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open segment file (positioned reads need no lock).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Writes one framed record (its `header` from [`encode_header`], then `payload`) at
    /// `offset`, a region reserved through [`Segments::reserve`], with one vectored positioned
    /// write. Small records go through the write buffer instead.
    pub(crate) fn write_record(
        &self,
        offset: u64,
        header: &[u8; RECORD_HEADER_LEN as usize],
        payload: &[u8],
    ) -> Result<(), WriteFailure> {
        let mut slices = [IoSlice::new(header), IoSlice::new(payload)];
        write_all_vectored_at(&self.file, &mut slices, offset).map_err(|e| self.failure(e))
    }

    /// Writes a sealed chunk of the write buffer (whole records from its start) with vectored
    /// positioned writes: one per [`MAX_IOVECS`] buffers, large payloads straight from the
    /// callers' bytes.
    pub(crate) fn write_chunk(&self, chunk: &Chunk) -> Result<(), WriteFailure> {
        let mut offset = chunk.start();
        let mut slices = Vec::with_capacity(chunk.io_slice_count().min(MAX_IOVECS));
        let mut it = chunk.io_slices().peekable();
        while it.peek().is_some() {
            slices.clear();
            slices.extend(it.by_ref().take(MAX_IOVECS));
            let n: u64 = slices.iter().map(|s| s.len() as u64).sum();
            write_all_vectored_at(&self.file, &mut slices, offset).map_err(|e| self.failure(e))?;
            offset += n;
        }
        debug_assert_eq!(offset, chunk.end());
        Ok(())
    }

    fn failure(&self, source: std::io::Error) -> WriteFailure {
        WriteFailure {
            segment: self.id,
            path: self.path.clone(),
            source,
        }
    }

    /// Reads and verifies the record at `offset` whose payload is `len` bytes from the file:
    /// one positioned read, no scanning. The caller has checked that the record is not in the
    /// write buffer any more.
    pub(crate) fn read_record(&self, offset: u64, len: u64) -> Result<Bytes> {
        read_record_at(&self.file, &self.path, self.id, offset, len)
    }

    /// True when the record at `offset` with a payload of `len` bytes lies wholly before the
    /// write buffer's lowest offset, i.e. in the file (read without the lock).
    pub(crate) fn is_written(&self, offset: u64, len: u64) -> bool {
        offset + record_len(len) <= self.buffered_from.load(Ordering::Acquire)
    }

    /// Makes the file read-only once it is no longer the active segment. Open handles keep
    /// their access (writes already reserved still land); the mode documents that no new
    /// record will be appended and stops anything else from writing to it.
    pub(crate) fn seal(&self) {
        let res = self.file.metadata().and_then(|m| {
            let mut p = m.permissions();
            p.set_readonly(true);
            self.file.set_permissions(p)
        });
        if let Err(e) = res {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot make spool segment read-only");
        }
    }
}

/// Buffers passed to one `pwritev` call: Linux's `IOV_MAX`.
pub(crate) const MAX_IOVECS: usize = 1024;

/// `pwritev` until every buffer is written (a file system may take a write in parts).
fn write_all_vectored_at(
    file: &File,
    mut slices: &mut [IoSlice<'_>],
    mut offset: u64,
) -> std::io::Result<()> {
    while !slices.is_empty() {
        match rustix::io::pwritev(file, slices, offset) {
            Ok(0) => return Err(std::io::Error::from(ErrorKind::WriteZero)),
            Ok(n) => {
                offset += n as u64;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn file_len(file: &File, path: &Path) -> Result<u64> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| SpoolError::io(path, e))
}

/// Reads up to `span` bytes of `file` from `offset` into a fresh buffer, placed at an index that
/// matches the file offset modulo [`READ_ALIGN`]: the kernel copies from the page cache fastest
/// when source and destination share their alignment within a cache line, and records sit at
/// arbitrary offsets. The buffer is not zeroed first (the bytes land in its spare capacity).
/// Positioned reads repeat until `span` bytes are in or the file ends.
///
/// Returns the buffer, the index where the bytes start and how many were read (fewer than `span`
/// only when the file ends first).
pub(crate) fn read_span(
    file: &File,
    path: &Path,
    offset: u64,
    span: usize,
) -> Result<(Vec<u8>, usize, usize)> {
    let mut buf: Vec<u8> = Vec::with_capacity(span + READ_ALIGN);
    let shift = (offset as usize).wrapping_sub(buf.as_ptr() as usize) % READ_ALIGN;
    buf.resize(shift, 0);
    let want = shift + span;
    while buf.len() < want {
        let at = offset + (buf.len() - shift) as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(SpoolError::io(path, e.into())),
        }
    }
    // The spare capacity may reach past the span (at most `READ_ALIGN` bytes): not ours.
    buf.truncate(want);
    let got = buf.len() - shift;
    Ok((buf, shift, got))
}

/// Fills `dst` from `offset` of `file` with positioned reads (repeated if the kernel returns
/// less); returns the bytes read, fewer than `dst.len()` only when the file ends first.
pub(crate) fn read_exact_or_eof(
    file: &File,
    path: &Path,
    offset: u64,
    dst: &mut [u8],
) -> Result<usize> {
    let mut got = 0;
    while got < dst.len() {
        match file.read_at(&mut dst[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(SpoolError::io(path, e)),
        }
    }
    Ok(got)
}

/// One positioned read of the record at `offset`, verified.
fn read_record_at(file: &File, path: &Path, segment: u64, offset: u64, len: u64) -> Result<Bytes> {
    let total = record_len(len);
    let (buf, shift, got) = read_span(file, path, offset, total as usize)?;
    if (got as u64) < total {
        return Err(SpoolError::Corrupt {
            segment,
            offset,
            reason: CorruptReason::Truncated {
                needed: total,
                available: got as u64,
            },
        });
    }
    verify_record(segment, offset, len, &buf[shift..shift + total as usize])?;
    let start = shift + RECORD_HEADER_LEN as usize;
    Ok(Bytes::from(buf).slice(start..start + len as usize))
}

/// Address of one record found by [`scan_segment`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordAddress {
    /// Offset of the record start.
    pub offset: u64,
    /// Payload length.
    pub len: u64,
}

/// Diagnostics: walks a segment file from offset 0 to `end` (or the end of the file) and checks
/// every record. The spool itself never scans (entries carry their address); this exists for
/// tests and for inspecting a segment by hand. Garbage after the last record is reported as
/// [`SpoolError::Corrupt`] at the garbage's offset, never skipped.
pub fn scan_segment(path: &Path, segment: u64, end: Option<u64>) -> Result<Vec<RecordAddress>> {
    let file = File::open(path).map_err(|e| SpoolError::io(path, e))?;
    let end = match end {
        Some(e) => e,
        None => file_len(&file, path)?,
    };
    let mut out = Vec::new();
    let mut offset = 0u64;
    while offset < end {
        let available = end - offset;
        if available < RECORD_HEADER_LEN {
            return Err(SpoolError::Corrupt {
                segment,
                offset,
                reason: CorruptReason::Truncated {
                    needed: RECORD_HEADER_LEN,
                    available,
                },
            });
        }
        let mut header = [0u8; RECORD_HEADER_LEN as usize];
        file.read_exact_at(&mut header, offset)
            .map_err(|e| SpoolError::io(path, e))?;
        let len = u64::from(u32::from_le_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        if record_len(len) > available {
            return Err(SpoolError::Corrupt {
                segment,
                offset,
                reason: CorruptReason::Truncated {
                    needed: record_len(len),
                    available,
                },
            });
        }
        read_record_at(&file, path, segment, offset, len)?;
        out.push(RecordAddress { offset, len });
        offset += record_len(len);
    }
    Ok(out)
}

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
/// - when the active segment has no live entry and none of its chunks is being written, its
///   next write starts again at offset 0 and its buffer is emptied (the bytes there belong to
///   released entries, nobody can address them any more), so a spool that spills and drains in
///   turn reuses one file instead of growing it;
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
    pub(crate) fn new(dir: PathBuf, segment_size: u64) -> Segments {
        Segments {
            dir,
            segment_size,
            slots: BTreeMap::new(),
            active: None,
            next_id: 0,
            failed_chunks: 0,
        }
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
    /// segment as needed. Returns the segment and the record's offset; the entry counts as live
    /// from now on. The only I/O under the lock is creating a new (empty) file at rotation.
    pub(crate) fn reserve(
        &mut self,
        rec_len: u64,
        actions: &mut FileActions,
    ) -> Result<(Arc<Segment>, u64), WriteFailure> {
        if let Some(id) = self.active {
            let slot = self.slots.get_mut(&id).expect("active segment has a slot");
            if slot.live == 0 && !slot.buffer.is_writing() {
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
        Ok((Arc::clone(&slot.segment), offset))
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
                let file = &slot.segment.file;
                let cut = file.metadata().and_then(|m| {
                    if m.len() > offset {
                        file.set_len(offset)
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = cut {
                    tracing::warn!(path = %slot.segment.path.display(), offset, error = %e,
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
            let slot = self.slots.remove(&id).expect("slot exists");
            self.failed_chunks -= slot.buffer.failed_count();
            actions.delete.push(slot.segment);
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
            let slot = self.slots.remove(&id).expect("slot exists");
            self.failed_chunks -= slot.buffer.failed_count();
            actions.delete.push(slot.segment);
        } else if !slot.buffer.is_writing() {
            on_buffer(&mut self.failed_chunks, slot, |b, s| b.clear(s));
        }
    }

    /// Forgets every segment (the spool is closing and removes the directory as a whole).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.failed_chunks = 0;
        self.active = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_framing_bytes_are_pinned() {
        // FROZEN: if this test fails, the on-disk record layout changed.
        let h = encode_header(b"hello");
        assert_eq!(h, [5, 0, 0, 0, 0x4c, 0xbb, 0x71, 0x9a]);
        // the standard CRC-32C check value: the checksum is Castagnoli, not IEEE
        assert_eq!(checksum(b"123456789"), 0xe306_9283);
        assert_eq!(encode_header(b""), [0; 8]);
        assert_eq!(segment_file_name(7), "segment-00000000000000000007.log");
    }

    #[test]
    fn checksum_agrees_with_an_independent_crc32c_at_every_length() {
        let data: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in (0..600).chain([4095, 4096, 4097, 65_535, 65_536, 70_000]) {
            assert_eq!(
                checksum(&data[..len]),
                crc32c::crc32c(&data[..len]),
                "len {len}"
            );
        }
        for start in 1..64 {
            assert_eq!(checksum(&data[start..]), crc32c::crc32c(&data[start..]));
        }
    }

    #[test]
    fn written_record_reads_back_and_scans() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 3).unwrap();
        for (offset, payload) in [(0, &b"abc"[..]), (11, b""), (19, b"xyzw")] {
            seg.write_record(offset, &encode_header(payload), payload)
                .unwrap();
        }
        assert_eq!(&seg.read_record(0, 3).unwrap()[..], b"abc");
        assert_eq!(&seg.read_record(11, 0).unwrap()[..], b"");
        assert_eq!(&seg.read_record(19, 4).unwrap()[..], b"xyzw");
        let raw = std::fs::read(seg.path()).unwrap();
        assert_eq!(
            &raw[..11],
            &[3, 0, 0, 0, 0xb7, 0x3f, 0x4b, 0x36, b'a', b'b', b'c']
        );
        let found = scan_segment(seg.path(), 3, None).unwrap();
        assert_eq!(
            found,
            vec![
                RecordAddress { offset: 0, len: 3 },
                RecordAddress { offset: 11, len: 0 },
                RecordAddress { offset: 19, len: 4 }
            ]
        );
    }

    #[test]
    fn a_failed_last_record_is_rolled_back_and_cut_from_the_file_but_not_one_before_another() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Segments::new(dir.path().to_path_buf(), 1 << 20);
        let mut a = FileActions::default();
        let (s, o0) = t.reserve(100, &mut a).unwrap();
        let (_, o1) = t.reserve(300, &mut a).unwrap();
        assert_eq!((o0, o1), (0, 100));
        // the second record's write got 150 bytes out before failing
        s.file.write_all_at(&[1; 250], 0).unwrap();
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
        let mut t = Segments::new(dir.path().to_path_buf(), 20);
        let mut a = FileActions::default();
        let (s0, o0) = t.reserve(12, &mut a).unwrap();
        assert_eq!((s0.id(), o0), (0, 0));
        let (s1, o1) = t.reserve(12, &mut a).unwrap();
        assert_eq!((s1.id(), o1), (1, 0), "12 + 12 crosses 20: rotated");
        assert_eq!(a.seal.len(), 1);
        assert_eq!(t.count(), 2);
        t.release(0, &mut a);
        assert_eq!(a.delete.len(), 1, "sealed and fully released");
        t.release(1, &mut a);
        assert_eq!(t.count(), 1, "the active segment stays");
        let (s, o) = t.reserve(12, &mut a).unwrap();
        assert_eq!(
            (s.id(), o),
            (1, 0),
            "an empty active segment is reused from 0"
        );
        a.run();
    }
}
