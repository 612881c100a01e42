//! Read-back by mapping: a batched run of records spanning at least [`MAPPED_MIN_SPAN`] is not
//! copied out of the page cache into a buffer but mapped read-only (`mmap`, shared) from its
//! segment file, and its payloads are slices of that mapping.
//!
//! Why: the payloads of a batched read stay alive until the caller is done with them (the
//! sink's writer keeps a data file's worth, 8 MiB by default, until its upload ends), so a copy
//! out of the page cache lands in memory the CPU's cache no longer holds, and that copy was the
//! largest single cost of reading 1 KiB records back (about 30% of `spool_bench`'s batched
//! case). A mapping costs a system call each way and a page fault per 16 pages instead.
//!
//! # Invariants
//!
//! - **Mapped bytes never change while mapped.** A spool rewrites a segment's bytes only when
//!   it reuses the active segment from offset 0 (no live entry left) and cuts a file back only
//!   after the last reserved record; a [`Mapping`] counts itself on its segment
//!   ([`Segment::pin_mapping`]) before the `mmap`, while the caller still holds the live
//!   entries of the mapped records, and the segment table does not reuse a segment that has a
//!   mapping ([`Segment::is_mapped`]). Deleting a mapped file (release of its last entry,
//!   close) leaves the mapping valid: the kernel keeps the pages until `munmap`.
//! - **Nothing past the end of the file is touched**: the mapping covers only the bytes the
//!   file holds from the run's start (its size is read first), so a file cut short before the
//!   read gives the same `Truncated` error as a short positioned read, never a `SIGBUS`.
//! - A range that cannot be mapped (nothing left in the file, `mmap` refused) is read with a
//!   positioned read instead, with the same results and errors as before mapping existed.
//! - Memory: a mapping covers the run's span plus less than a page before it; its pages are
//!   the page cache's (counted in the process's RSS while mapped), freed from the process at
//!   the drop of the last payload sliced from it.
//! - Disk: a mapping holds its segment's file open, so a segment deleted while mapped keeps its
//!   space until the last payload of the mapping is dropped. A caller that drops the payloads
//!   before releasing their entries (the sink's writer does: upload, then release) never keeps
//!   a deleted segment alive this way, nor blocks a reuse that would otherwise happen.

// The one module of the crate with unsafe code: `mmap`/`munmap` and the slice over the mapping
// have no safe form. Each block states what keeps it sound.
#![allow(unsafe_code)]

use crate::segment::Segment;
use std::ptr::NonNull;
use std::sync::Arc;

/// Smallest run span that is mapped instead of read into a buffer: below it a positioned read
/// into a buffer of the run's size costs less than the `mmap` and `munmap` system calls.
pub const MAPPED_MIN_SPAN: u64 = 256 * 1024;

/// A read-only shared mapping of part of a segment file; unmapped on drop.
pub(crate) struct Mapping {
    base: NonNull<u8>,
    /// Length of the mapping (from a page boundary).
    map_len: usize,
    /// Where the requested range starts in the mapping.
    shift: usize,
    /// Bytes of the requested range the file holds (less than asked when the file is shorter).
    len: usize,
    segment: Arc<Segment>,
}

// SAFETY: the mapping is read-only memory that stays valid until `Drop` unmaps it; sharing
// `&[u8]` views of it between threads is sound, and nothing writes through it.
unsafe impl Send for Mapping {}
// SAFETY: as above, only shared reads.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `span` bytes of `segment`'s file from `start`, or as many as the file holds. `None`
    /// when there is nothing to map (the file holds no byte from `start`) or the mapping cannot
    /// be made (its size unreadable, `mmap` refused, e.g. by a file system without it): the
    /// caller then reads the range with a positioned read, which reports what is wrong. The
    /// caller holds live entries of records in the range.
    pub(crate) fn map(segment: &Arc<Segment>, start: u64, span: usize) -> Option<Mapping> {
        let size = segment.file().metadata().ok()?.len();
        let len = size.saturating_sub(start).min(span as u64) as usize;
        if len == 0 {
            return None;
        }
        let page = rustix::param::page_size() as u64;
        let from = start - start % page;
        let shift = (start - from) as usize;
        let map_len = shift + len;
        segment.pin_mapping();
        // SAFETY: a fresh read-only mapping at an address the kernel picks, of a range the file
        // holds (checked above); the segment is pinned, so the bytes are not rewritten or cut
        // while it exists (see the module doc).
        let mapped = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                map_len,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED,
                segment.file(),
                from,
            )
        };
        match mapped {
            Ok(p) => Some(Mapping {
                base: NonNull::new(p.cast::<u8>()).expect("mmap never returns null on success"),
                map_len,
                shift,
                len,
                segment: Arc::clone(segment),
            }),
            Err(e) => {
                segment.unpin_mapping();
                tracing::debug!(path = %segment.path().display(), error = %e,
                    "cannot map a spool segment range; reading it instead");
                None
            }
        }
    }
}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `shift + len == map_len` bytes are mapped readable until `Drop`.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(self.shift), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no slice of it outlives `self`
        // (payloads hold the `Mapping` through their `Bytes` owner).
        if let Err(e) = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.map_len) } {
            tracing::warn!(path = %self.segment.path().display(), error = %e,
                "cannot unmap a spool read mapping");
        }
        self.segment.unpin_mapping();
    }
}
