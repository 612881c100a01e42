//! The write buffer of a segment: records appended to a segment but not yet in its file.
//!
//! Writing each spilled record with its own system call costs more than the record for small
//! entries (a 1 KiB record takes about as long to `pwrite` as 64 KiB of a large write). So a
//! record up to [`DIRECT_WRITE_MIN`] bytes is not written on its own: its header and payload are
//! appended to the segment's **open chunk**, a memory buffer covering the bytes right after the
//! records before it. When the next record does not fit (or the segment rotates, or
//! `Spool::write_buffered` is called) the open chunk is **sealed** and the thread that sealed it
//! writes it with one positioned write, outside the spool's lock. Larger records are written
//! directly (after sealing the open chunk, so chunks stay contiguous runs of records).
//!
//! ```text
//!  segment file   [ records in the file ......... ][ sealed chunk ][ sealed chunk ][ open chunk ]
//!                 0                               ^                                            ^
//!                                   Segment::buffered_from                          next record
//! ```
//!
//! # Invariants
//!
//! - A chunk is a contiguous byte range of its segment holding whole records; chunks never
//!   overlap. The open chunk, when not empty, ends where the next record will be reserved.
//! - A record is in exactly one place that readers can trust: a chunk of this buffer, or the
//!   file. A sealed chunk leaves the buffer only after its whole range is in the file, so a read
//!   that does not find its record here may read the file.
//! - `Segment::buffered_from` is the lowest offset held here (`u64::MAX` when nothing is): a
//!   record that ends at or before it is in the file, and its read takes no lock.
//! - A sealed chunk is `Writing` (one thread writes it, outside the lock) or `Failed` (its write
//!   failed, e.g. on a full disk). A failed chunk keeps its records readable from memory; the
//!   next spill retries it before anything more is accepted on disk, and it is dropped unwritten
//!   once every record of its segment is released. Bytes a failed write left in the file are
//!   never read: the chunk's records are served from memory until a retry rewrites all of them.
//! - Memory: the open chunk holds at most [`WRITE_BUFFER_SIZE`] bytes; sealed chunks exist only
//!   while a thread writes them or while a failed one waits for its retry (during which spills
//!   are refused), so a spool's buffer stays within a few MiB of its memory quota.
//! - One buffer carries the records while the spool fills chunk after chunk: a written chunk's
//!   buffer takes over the records of the open chunk begun when it was sealed (usually the one
//!   record that did not fit; more if other threads spilled during the write) and becomes the
//!   open chunk again, so the next megabyte of copies lands in memory the CPU's cache still
//!   holds instead of alternating between two 1 MiB buffers. The records keep their offsets
//!   and stay readable throughout (the move happens under the spool's lock, so it is made
//!   only when the open chunk holds at most [`HANDOVER_MAX`] copied bytes).
//! - The segment offset is reset to 0 (a fully released active segment is reused) only when no
//!   chunk is being written, so a late write can never land on records written after it.

use crate::error::WriteFailure;
use crate::record::RECORD_HEADER_LEN;
use crate::segment::{Segment, MAX_IOVECS};
use bytes::Bytes;
use std::io::IoSlice;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Record bytes the open chunk collects before it is written: large enough that a write's fixed
/// cost is amortised over many records, small enough to stay a rounding error of the memory
/// quota (1 MiB measured best against 256 KiB and 4 MiB with `spool_bench`).
pub const WRITE_BUFFER_SIZE: u64 = 1024 * 1024;

/// Records at least this large (header included) skip the buffer: their system call is already
/// amortised over the payload, and holding them would only delay their write.
pub const DIRECT_WRITE_MIN: u64 = 256 * 1024;

/// Payloads up to this size are copied into the chunk behind their header, so that a run of
/// small records is one contiguous buffer for the kernel; larger payloads are kept as the
/// caller's bytes (no copy) and become buffers of their own in the vectored write. Measured
/// with `spool_bench`: copying beats an extra kernel buffer below a few KiB.
pub const COPY_MAX: usize = 4 * 1024;

/// Most copied bytes an open chunk may hold for its records to move into the buffer of a
/// chunk just written (see [`WriteBuffer::complete`]): the move is a copy made under the spool's
/// lock, so an open chunk that other threads filled further during the write keeps its own
/// buffer.
pub const HANDOVER_MAX: usize = 64 * 1024;

/// A piece of a chunk in write order.
#[derive(Debug)]
enum Part {
    /// A range of the chunk's own bytes (headers and small payloads).
    Copied(Range<usize>),
    /// A payload kept as given.
    Shared(Bytes),
}

/// Where a buffered record's payload is.
#[derive(Clone, Copy, Debug)]
enum Payload {
    /// In the chunk's own bytes.
    Copied { at: usize, len: usize },
    /// Part `i` of the chunk.
    Shared(usize),
}

/// A run of whole records, contiguous in the segment from `start`.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    start: u64,
    /// Record bytes (headers included).
    len: u64,
    /// Headers and small payloads, back to back.
    bytes: Vec<u8>,
    /// The chunk in write order.
    parts: Vec<Part>,
    /// Each record's offset and payload, in offset order (for reads).
    records: Vec<(u64, Payload)>,
}

impl Chunk {
    /// Offset of the first record.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// Offset just past the last record.
    pub(crate) fn end(&self) -> u64 {
        self.start + self.len
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn clear(&mut self) {
        self.len = 0;
        self.bytes.clear();
        self.parts.clear();
        self.records.clear();
    }

    /// Moves every record of `from` into this empty chunk (same offsets, same parts), leaving
    /// `from` empty with its allocations.
    fn take_records_of(&mut self, from: &mut Chunk) {
        debug_assert!(self.is_empty() && self.parts.is_empty() && self.bytes.is_empty());
        self.start = from.start;
        self.len = from.len;
        self.bytes.extend_from_slice(&from.bytes);
        self.parts.append(&mut from.parts);
        self.records.append(&mut from.records);
        from.clear();
    }

    fn copy(&mut self, b: &[u8]) {
        let from = self.bytes.len();
        self.bytes.extend_from_slice(b);
        match self.parts.last_mut() {
            Some(Part::Copied(r)) if r.end == from => r.end = self.bytes.len(),
            _ => self.parts.push(Part::Copied(from..self.bytes.len())),
        }
    }

    fn push(&mut self, offset: u64, header: &[u8; RECORD_HEADER_LEN as usize], payload: Bytes) {
        if self.records.is_empty() {
            self.start = offset;
        }
        debug_assert_eq!(self.end(), offset, "chunk records are contiguous");
        self.len += RECORD_HEADER_LEN + payload.len() as u64;
        self.copy(header);
        let at = if payload.len() <= COPY_MAX {
            let at = self.bytes.len();
            self.copy(&payload);
            Payload::Copied {
                at,
                len: payload.len(),
            }
        } else {
            self.parts.push(Part::Shared(payload));
            Payload::Shared(self.parts.len() - 1)
        };
        self.records.push((offset, at));
    }

    fn read(&self, offset: u64) -> Option<Bytes> {
        let i = self.records.partition_point(|r| r.0 < offset);
        match self.records.get(i)? {
            (o, _) if *o != offset => None,
            (_, Payload::Copied { at, len }) => {
                Some(Bytes::copy_from_slice(&self.bytes[*at..at + len]))
            }
            (_, Payload::Shared(p)) => match &self.parts[*p] {
                Part::Shared(b) => Some(b.clone()),
                Part::Copied(_) => unreachable!("a shared payload indexes a shared part"),
            },
        }
    }

    /// The chunk as buffers for a vectored write, in order.
    pub(crate) fn io_slices(&self) -> impl Iterator<Item = IoSlice<'_>> {
        self.parts.iter().map(|p| match p {
            Part::Copied(r) => IoSlice::new(&self.bytes[r.clone()]),
            Part::Shared(b) => IoSlice::new(b),
        })
    }

    /// Buffers [`Chunk::io_slices`] yields.
    pub(crate) fn io_slice_count(&self) -> usize {
        self.parts.len()
    }

    /// Writes this sealed chunk (whole records from its start) to `segment` with vectored
    /// positioned writes: one per [`MAX_IOVECS`] buffers, large payloads straight from the
    /// callers' bytes.
    pub(crate) fn write_to(&self, segment: &Segment) -> Result<(), WriteFailure> {
        let mut offset = self.start();
        let mut slices = Vec::with_capacity(self.io_slice_count().min(MAX_IOVECS));
        let mut it = self.io_slices().peekable();
        while it.peek().is_some() {
            slices.clear();
            slices.extend(it.by_ref().take(MAX_IOVECS));
            let n: u64 = slices.iter().map(|s| s.len() as u64).sum();
            segment.write_vectored_at(&mut slices, offset)?;
            offset += n;
        }
        debug_assert_eq!(offset, self.end());
        Ok(())
    }
}

/// State of a sealed chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// One thread is writing it, outside the lock.
    Writing,
    /// Its last write failed; a later spill retries it.
    Failed,
}

#[derive(Debug)]
struct Sealed {
    chunk: Arc<Chunk>,
    state: ChunkState,
}

/// A sealed chunk handed to a thread to write outside the lock (one vectored positioned write,
/// more only past the system's limit of buffers per call). Complete it through the segment
/// table once the write ended.
#[derive(Debug)]
pub(crate) struct WriteJob {
    pub(crate) segment: Arc<Segment>,
    pub(crate) chunk: Arc<Chunk>,
}

/// The write buffer of one segment. Kept in the segment table, under the spool's lock.
#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    /// Sealed chunks, in offset order.
    sealed: Vec<Sealed>,
    /// The open chunk.
    open: Chunk,
    /// A written chunk's allocations, kept to become the next open chunk.
    spare: Option<Chunk>,
}

impl WriteBuffer {
    /// Lowest offset held here, `u64::MAX` when nothing is.
    fn lowest(&self) -> u64 {
        let sealed = self.sealed.first().map_or(u64::MAX, |c| c.chunk.start);
        if self.open.is_empty() {
            sealed
        } else {
            sealed.min(self.open.start)
        }
    }

    /// Publishes [`WriteBuffer::lowest`] to the segment's lock-free read path.
    fn publish(&self, segment: &Segment) {
        segment
            .buffered_from
            .store(self.lowest(), Ordering::Release);
    }

    /// True while a thread writes one of this segment's chunks.
    pub(crate) fn is_writing(&self) -> bool {
        self.sealed.iter().any(|c| c.state == ChunkState::Writing)
    }

    /// True when a chunk waits for the retry of a failed write.
    pub(crate) fn has_failed(&self) -> bool {
        self.failed_count() > 0
    }

    /// Chunks waiting for the retry of a failed write.
    pub(crate) fn failed_count(&self) -> usize {
        self.sealed
            .iter()
            .filter(|c| c.state == ChunkState::Failed)
            .count()
    }

    /// Record bytes held (open and sealed chunks, headers included).
    pub(crate) fn buffered_bytes(&self) -> u64 {
        self.open.len + self.sealed.iter().map(|c| c.chunk.len).sum::<u64>()
    }

    /// Drops everything (every record of the segment was released, nothing is being written).
    pub(crate) fn clear(&mut self, segment: &Segment) {
        debug_assert!(!self.is_writing());
        self.sealed.clear();
        self.open.clear();
        self.publish(segment);
    }

    /// Appends the record reserved at `offset`. If the open chunk has no room for it, the open
    /// chunk is sealed first and returned as a job for the caller to write once the lock is
    /// dropped.
    pub(crate) fn append(
        &mut self,
        segment: &Arc<Segment>,
        offset: u64,
        header: [u8; RECORD_HEADER_LEN as usize],
        payload: Bytes,
    ) -> Option<WriteJob> {
        let rec = RECORD_HEADER_LEN + payload.len() as u64;
        let job = if self.open.len > 0 && self.open.len + rec > WRITE_BUFFER_SIZE {
            self.seal(segment)
        } else {
            None
        };
        if self.open.bytes.capacity() == 0 {
            if let Some(spare) = self.spare.take() {
                self.open = spare;
            }
        }
        let first = self.open.is_empty();
        self.open.push(offset, &header, payload);
        if first {
            self.publish(segment);
        }
        job
    }

    /// Seals the open chunk (if it holds anything) and returns it as a job to write.
    pub(crate) fn seal(&mut self, segment: &Arc<Segment>) -> Option<WriteJob> {
        if self.open.is_empty() {
            return None;
        }
        let next = self.spare.take().unwrap_or_default();
        let chunk = Arc::new(std::mem::replace(&mut self.open, next));
        debug_assert!(self
            .sealed
            .last()
            .is_none_or(|c| c.chunk.end() <= chunk.start));
        self.sealed.push(Sealed {
            chunk: Arc::clone(&chunk),
            state: ChunkState::Writing,
        });
        // `buffered_from` does not move: the sealed chunk still holds the same records.
        Some(WriteJob {
            segment: Arc::clone(segment),
            chunk,
        })
    }

    /// Hands every failed chunk back out for another write (they become `Writing`).
    pub(crate) fn take_failed(&mut self, segment: &Arc<Segment>, jobs: &mut Vec<WriteJob>) {
        for c in &mut self.sealed {
            if c.state == ChunkState::Failed {
                c.state = ChunkState::Writing;
                jobs.push(WriteJob {
                    segment: Arc::clone(segment),
                    chunk: Arc::clone(&c.chunk),
                });
            }
        }
    }

    /// Records the outcome of a chunk's write: a written chunk leaves the buffer (its
    /// allocations are kept for the next open chunk, or take over the open chunk's records
    /// when that one is smaller and holds at most [`HANDOVER_MAX`] copied bytes), a failed one
    /// stays for a retry. `chunk`
    /// is the job's handle, given back so that the allocations can be reused.
    pub(crate) fn complete(&mut self, segment: &Segment, chunk: Arc<Chunk>, written: bool) {
        let Some(i) = self
            .sealed
            .iter()
            .position(|c| Arc::ptr_eq(&c.chunk, &chunk))
        else {
            debug_assert!(false, "completion of an unknown chunk at {}", chunk.start);
            return;
        };
        debug_assert_eq!(self.sealed[i].state, ChunkState::Writing);
        if !written {
            self.sealed[i].state = ChunkState::Failed;
            return;
        }
        drop(self.sealed.remove(i));
        self.publish(segment);
        let Ok(mut written) = Arc::try_unwrap(chunk) else {
            return;
        };
        written.clear();
        if written.bytes.capacity() > self.open.bytes.capacity()
            && self.open.bytes.len() <= HANDOVER_MAX
        {
            // The open chunk began when this one was sealed and holds only what came since:
            // its records move into the written chunk's buffer, which the records of the next
            // megabyte then reuse while it is still in the CPU's cache.
            written.take_records_of(&mut self.open);
            std::mem::swap(&mut written, &mut self.open);
        }
        if self.spare.is_none() {
            self.spare = Some(written);
        }
    }

    /// The payload of the record at `offset` if a chunk holds it (large payloads shared, small
    /// ones copied); `None` when the record is in the file.
    pub(crate) fn read(&self, offset: u64) -> Option<Bytes> {
        if !self.open.is_empty() && self.open.start <= offset {
            return self.open.read(offset);
        }
        self.sealed
            .iter()
            .find(|c| c.chunk.start <= offset && offset < c.chunk.end())?
            .chunk
            .read(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::encode_header;

    fn segment(dir: &std::path::Path) -> Arc<Segment> {
        Arc::new(Segment::create(dir, 0).unwrap())
    }

    fn append(b: &mut WriteBuffer, seg: &Arc<Segment>, at: u64, p: &[u8]) -> Option<WriteJob> {
        b.append(seg, at, encode_header(p), Bytes::copy_from_slice(p))
    }

    #[test]
    fn records_appended_while_a_chunk_is_written_move_into_its_buffer_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment(dir.path());
        let mut b = WriteBuffer::default();
        let payload = |i: u64| vec![(i % 251) as u8; 1000 + (i % 7) as usize];
        let mut offset = 0;
        let mut written = Vec::new();
        let mut next = 0u64;
        // Two chunks' worth, so that the second seal finds a spare from the first write.
        for round in 0..2 {
            let job = loop {
                let p = payload(next);
                let job = append(&mut b, &seg, offset, &p);
                written.push((offset, p));
                offset += 8 + written.last().unwrap().1.len() as u64;
                next += 1;
                if let Some(job) = job {
                    break job;
                }
            };
            // While the sealed chunk is written, more records arrive (one large, shared).
            let big = Bytes::from(vec![0xabu8; COPY_MAX + 1]);
            assert!(b
                .append(&seg, offset, encode_header(&big), big.clone())
                .is_none());
            written.push((offset, big.to_vec()));
            offset += 8 + big.len() as u64;
            let p = payload(next);
            assert!(append(&mut b, &seg, offset, &p).is_none());
            written.push((offset, p));
            offset += 8 + written.last().unwrap().1.len() as u64;
            next += 1;

            let sealed_buffer = job.chunk.bytes.as_ptr();
            let open_from = b.open.start;
            job.chunk.write_to(&seg).unwrap();
            b.complete(&seg, job.chunk, true);
            assert_eq!(
                b.open.bytes.as_ptr(),
                sealed_buffer,
                "round {round}: the open chunk continues in the written chunk's buffer"
            );
            assert_eq!(b.open.start, open_from);
            assert_eq!(seg.buffered_from.load(Ordering::Acquire), open_from);
            for (at, p) in written.iter().filter(|(at, _)| *at >= open_from) {
                assert_eq!(b.read(*at).as_deref(), Some(&p[..]), "record at {at}");
            }
        }
        let job = b.seal(&seg).unwrap();
        job.chunk.write_to(&seg).unwrap();
        b.complete(&seg, job.chunk, true);
        assert_eq!(seg.buffered_from.load(Ordering::Acquire), u64::MAX);
        for (at, p) in &written {
            assert_eq!(seg.read_record(*at, p.len() as u64).unwrap(), &p[..]);
        }
        let found = crate::segment::scan_segment(seg.path(), 0, None).unwrap();
        assert_eq!(found.len(), written.len());
    }

    #[test]
    fn an_open_chunk_filled_past_the_handover_bound_keeps_its_own_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment(dir.path());
        let mut b = WriteBuffer::default();
        let p = vec![3u8; 1024];
        let mut offset = 0;
        let job = loop {
            let job = append(&mut b, &seg, offset, &p);
            offset += 8 + 1024;
            if let Some(job) = job {
                break job;
            }
        };
        let open_from = b.open.start;
        while b.open.bytes.len() <= HANDOVER_MAX {
            assert!(append(&mut b, &seg, offset, &p).is_none());
            offset += 8 + 1024;
        }
        let own = b.open.bytes.as_ptr();
        job.chunk.write_to(&seg).unwrap();
        b.complete(&seg, job.chunk, true);
        assert_eq!(b.open.bytes.as_ptr(), own, "no copy of more than the bound");
        assert_eq!(b.open.start, open_from);
        assert!(
            b.spare.is_some(),
            "the written chunk is kept for the next seal"
        );
        let mut at = open_from;
        while at < offset {
            assert_eq!(b.read(at).as_deref(), Some(&p[..]), "record at {at}");
            at += 8 + 1024;
        }
    }

    #[test]
    fn records_are_read_from_the_open_chunk_then_from_the_sealed_one_until_written() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment(dir.path());
        let mut b = WriteBuffer::default();
        assert_eq!(seg.buffered_from.load(Ordering::Acquire), u64::MAX);
        assert!(append(&mut b, &seg, 0, b"abc").is_none());
        assert!(append(&mut b, &seg, 11, b"de").is_none());
        assert_eq!(seg.buffered_from.load(Ordering::Acquire), 0);
        assert_eq!(b.read(11).as_deref(), Some(&b"de"[..]));
        assert_eq!(b.read(5), None, "not a record start");
        let job = b.seal(&seg).unwrap();
        assert_eq!((job.chunk.start(), job.chunk.len), (0, 21));
        assert_eq!(
            job.chunk.io_slice_count(),
            1,
            "small records are one buffer"
        );
        assert_eq!(b.buffered_bytes(), 21);
        assert!(b.is_writing());
        assert_eq!(b.read(0).as_deref(), Some(&b"abc"[..]), "still held");
        b.complete(&seg, job.chunk, false);
        assert!(b.has_failed() && !b.is_writing());
        assert_eq!(b.read(0).as_deref(), Some(&b"abc"[..]), "kept on failure");
        let mut jobs = Vec::new();
        b.take_failed(&seg, &mut jobs);
        assert_eq!(jobs.len(), 1);
        let job = jobs.pop().unwrap();
        b.complete(&seg, job.chunk, true);
        assert_eq!(b.read(0), None, "written: read from the file");
        assert_eq!(seg.buffered_from.load(Ordering::Acquire), u64::MAX);
        assert_eq!(b.buffered_bytes(), 0);
        assert!(b.spare.is_some(), "the allocations are reused");
    }

    #[test]
    fn large_payloads_are_shared_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment(dir.path());
        let mut b = WriteBuffer::default();
        let big = Bytes::from(vec![9u8; COPY_MAX + 1]);
        assert!(append(&mut b, &seg, 0, b"x").is_none());
        assert!(b
            .append(&seg, 9, encode_header(&big), big.clone())
            .is_none());
        assert!(append(&mut b, &seg, 9 + 8 + big.len() as u64, b"y").is_none());
        let got = b.read(9).unwrap();
        assert_eq!(got.as_ptr(), big.as_ptr(), "the caller's bytes, shared");
        let job = b.seal(&seg).unwrap();
        let slices: Vec<usize> = job.chunk.io_slices().map(|s| s.len()).collect();
        assert_eq!(slices, [8 + 1 + 8, COPY_MAX + 1, 8 + 1]);
    }

    #[test]
    fn a_chunk_of_more_buffers_than_one_pwritev_takes_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment(dir.path());
        let mut chunk = Chunk::default();
        let mut offset = 0;
        let mut payloads = Vec::new();
        for i in 0..600u32 {
            let p = Bytes::from(vec![(i % 251) as u8; COPY_MAX + 1 + i as usize]);
            chunk.push(offset, &encode_header(&p), p.clone());
            payloads.push((offset, p));
            offset = chunk.end();
        }
        assert!(chunk.io_slice_count() > MAX_IOVECS);
        chunk.write_to(&seg).unwrap();
        let found = crate::segment::scan_segment(seg.path(), 0, None).unwrap();
        assert_eq!(found.len(), 600);
        for ((offset, p), a) in payloads.iter().zip(&found) {
            assert_eq!(a.offset, *offset);
            assert_eq!(seg.read_record(*offset, p.len() as u64).unwrap(), p);
        }
    }

    #[test]
    fn a_record_that_does_not_fit_seals_the_open_chunk_first() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment(dir.path());
        let mut b = WriteBuffer::default();
        let big = vec![7u8; (WRITE_BUFFER_SIZE - 8 - 10) as usize];
        assert!(append(&mut b, &seg, 0, &big).is_none());
        let rec = WRITE_BUFFER_SIZE - 10;
        let job = append(&mut b, &seg, rec, b"0123456789x");
        let job = job.expect("11 + 8 bytes do not fit the last 10");
        assert_eq!((job.chunk.start(), job.chunk.records.len()), (0, 1));
        assert_eq!(b.open.start, rec);
        assert_eq!(seg.buffered_from.load(Ordering::Acquire), 0);
        b.complete(&seg, job.chunk, true);
        assert_eq!(seg.buffered_from.load(Ordering::Acquire), rec);
    }
}
