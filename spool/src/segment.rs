//! Segment files: append-only `segment-<id>.log` files holding framed records, and the I/O on
//! them.
//!
//! A record's bytes are framed as `record.rs` describes (frozen; its items are re-exported
//! here). This module creates a segment file, writes records and buffers of records into it
//! with positioned (vectored) writes, reads one record back with one positioned read, verified,
//! and scans a file for diagnostics. Which segments exist, how many live entries each holds and
//! when a file is deleted is the segment table's business (`segment_table.rs`).
//!
//! Invariants:
//! - a segment file is created empty and only ever written at offsets reserved for it by the
//!   segment table; nothing here decides an offset;
//! - a read never scans: it reads `8 + len` bytes at the addressed offset and reports a
//!   [`SpoolError::Corrupt`] naming the segment and offset when the stored length differs, the
//!   file holds less than the whole record, or the checksum does not match;
//! - a `Segment` needs no lock to be read: it is shared (`Arc`) by the table and by every
//!   entry stored in it, and `buffered_from` tells a reader whether its record is in the file
//!   yet (see [`crate::write_buffer`]).
//!
//! The record framing items are re-exported here under their earlier paths
//! (`cdc_spool::segment::RECORD_HEADER_LEN`, ...), which tests and tools use.

use crate::error::{CorruptReason, Result, SpoolError, WriteFailure};
use crate::record::verify_record;
pub use crate::record::{
    checksum, encode_header, record_len, MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN,
};
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Alignment (a cache line) the read buffer is matched to, see [`read_span`].
pub(crate) const READ_ALIGN: usize = 64;

/// The file name of segment `id`: `segment-<id>.log`, the id zero-padded to 20 digits so that
/// a directory listing sorts in creation order.
pub fn segment_file_name(id: u64) -> String {
    format!("segment-{id:020}.log")
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
    /// Live read mappings of this file (`mapped_read`): while any exists the segment is not
    /// reused from offset 0, so mapped bytes are never rewritten or cut.
    mappings: AtomicUsize,
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
            mappings: AtomicUsize::new(0),
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
    /// `offset`, a region reserved through
    /// [`Segments::reserve`](crate::segment_table::Segments::reserve), with one vectored positioned
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

    /// Writes `slices` back to back from `offset` with positioned vectored writes (repeated
    /// until every byte is in). The write buffer writes its sealed chunks through this, at
    /// most [`MAX_IOVECS`] slices per call.
    pub(crate) fn write_vectored_at(
        &self,
        slices: &mut [IoSlice<'_>],
        offset: u64,
    ) -> Result<(), WriteFailure> {
        write_all_vectored_at(&self.file, slices, offset).map_err(|e| self.failure(e))
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

    /// Counts a read mapping of this file that is about to be made; taken while the caller
    /// holds live entries of the mapped records, so the segment cannot be reused meanwhile.
    pub(crate) fn pin_mapping(&self) {
        self.mappings.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets a read mapping once it is unmapped.
    pub(crate) fn unpin_mapping(&self) {
        self.mappings.fetch_sub(1, Ordering::AcqRel);
    }

    /// True while a read mapping of this file exists (checked under the spool's lock before
    /// the segment is reused from offset 0).
    pub(crate) fn is_mapped(&self) -> bool {
        self.mappings.load(Ordering::Acquire) > 0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_file_names_are_pinned() {
        // FROZEN with the record framing (moved here from `record_framing_bytes_are_pinned`).
        assert_eq!(segment_file_name(7), "segment-00000000000000000007.log");
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
}
