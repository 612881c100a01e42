//! Reads: [`Spool::read`] of one entry, [`Spool::read_many`] and [`Spool::read_many_into`] of a
//! batch.
//!
//! # Invariants
//!
//! - A read never scans. A memory entry is a clone of its bytes; a spilled record is copied (or
//!   shared) from its segment's write buffer while it is there, else read with one positioned
//!   read of `8 + len` bytes at its offset and verified (length and CRC-32C, see
//!   [`crate::record`]). Damage is [`SpoolError::Corrupt`], never decoded.
//! - The spool's lock is taken only for a record still in a write buffer; a record in the file
//!   is read without it (`Segment::is_written`). An entry names its segment by id: the file is
//!   looked up in `OpenSegments` once per run of a batch (once per single read), never under
//!   the spool's lock.
//! - A batch gives the same bytes and the same first error as reading its entries one by one;
//!   consecutive records close together in one file are read with one positioned read
//!   ([`crate::batch_read`]). On error the output is left as it was.
//! - An entry is read only through its own spool, and only while the spool is open.

use crate::batch_read::Run;
use crate::entry::{Entry, Location};
use crate::error::{Result, SpoolError};
use crate::segment::Segment;
use crate::shared::{lock, Spool};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Spool {
    /// Reads an entry's payload: a clone of the memory bytes, a copy from its segment's write
    /// buffer if the record has not reached the file yet, or one positioned read of its record,
    /// length- and CRC-32C-verified ([`SpoolError::Corrupt`] names segment and offset).
    pub fn read(&self, entry: &Entry) -> Result<Bytes> {
        self.check_readable(entry)?;
        match entry.loc() {
            Location::Memory(b) => Ok(b.clone()),
            Location::Disk {
                segment,
                offset,
                len,
            } => self.read_disk(&*self.segment(*segment)?, *offset, *len),
        }
    }

    /// Reads the payloads of `entries` (a batch, in order) and returns them in the same order.
    /// See [`Spool::read_many_into`].
    pub fn read_many<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<Vec<Bytes>> {
        let mut out = Vec::new();
        self.read_many_into(entries, &mut out)?;
        Ok(out)
    }

    /// Reads the payloads of `entries` (a batch, in order) and appends them to `out` in the
    /// same order. Memory entries and records still in a write buffer are served as by
    /// [`Spool::read`]; consecutive entries whose records lie close together in one segment
    /// file (ascending, small gaps, at most 1 MiB from the first record's start to the last
    /// one's end) are read with one positioned read of the range covering them (or, from 256
    /// KiB, by mapping that range of the file), and each payload is a slice of that buffer or
    /// mapping (no copy). Every record is verified as
    /// [`Spool::read`] verifies it, and the first bad one fails the call with the same
    /// [`SpoolError::Corrupt`] (its segment and offset); on any error `out` is left as it was.
    ///
    /// Memory: the returned payloads keep their read buffers or mappings alive; these hold at
    /// most 3/2 of the payload bytes read from files plus 11 bytes per record and a page per
    /// read (see [`crate::batch_read`]), so bounding the payload bytes a caller reads back
    /// bounds the memory. While a mapping is alive its segment is not reused from offset 0
    /// (the spool appends after it instead), so mapped payloads never change.
    pub fn read_many_into<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Entry>,
        out: &mut Vec<Bytes>,
    ) -> Result<()> {
        let base = out.len();
        let res = self.read_batch(entries, out);
        if res.is_err() {
            out.truncate(base);
        }
        res
    }

    fn read_batch<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Entry>,
        out: &mut Vec<Bytes>,
    ) -> Result<()> {
        let mut entries = entries.into_iter().peekable();
        let mut run = Run::default();
        // The segment of the previous record: consecutive records mostly share one.
        let mut current: Option<Arc<Segment>> = None;
        while let Some(entry) = entries.next() {
            self.check_readable(entry)?;
            let (id, offset, len) = match entry.loc() {
                Location::Memory(b) => {
                    out.push(b.clone());
                    continue;
                }
                Location::Disk {
                    segment,
                    offset,
                    len,
                } => (*segment, *offset, *len),
            };
            let segment = match current.take() {
                Some(s) if s.id() == id => s,
                _ => self.segment(id)?,
            };
            let segment: &Arc<Segment> = current.insert(segment);
            if !segment.is_written(offset, len) {
                out.push(self.read_disk(segment, offset, len)?);
                continue;
            }
            run.begin(offset, len);
            while let Some(next) = entries.peek() {
                let joins = Arc::ptr_eq(&self.inner, &next.spool)
                    && matches!(next.loc(), Location::Disk { segment: s, offset: o, len: l }
                        if *s == id && segment.is_written(*o, *l) && run.try_push(*o, *l));
                if !joins {
                    break;
                }
                entries.next();
            }
            run.read(segment, out)?;
        }
        Ok(())
    }

    /// The file of segment `id`, which a live entry of this open spool addresses.
    fn segment(&self, id: u64) -> Result<Arc<Segment>> {
        match self.inner.open_segments.get(id) {
            Some(s) => Ok(s),
            // Only a close (racing this read) forgets the segment of a live entry.
            None if self.inner.closed.load(Ordering::Acquire) => Err(SpoolError::Closed),
            None => Err(SpoolError::param(
                "entry",
                format!("addresses segment {id}, which this spool no longer has"),
            )),
        }
    }

    /// Fails unless the spool is open and `entry` is one of its entries.
    fn check_readable(&self, entry: &Entry) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(SpoolError::Closed);
        }
        if !Arc::ptr_eq(&self.inner, &entry.spool) {
            return Err(SpoolError::param(
                "entry",
                "belongs to another spool (or an earlier open of this one)",
            ));
        }
        Ok(())
    }

    /// One spilled record: from its segment's write buffer while it is there, else one
    /// positioned read of the file.
    fn read_disk(&self, segment: &Segment, offset: u64, len: u64) -> Result<Bytes> {
        if !segment.is_written(offset, len) {
            let st = lock(&self.inner.state);
            if let Some(b) = st.segments.read_buffered(segment.id(), offset) {
                return Ok(b);
            }
        }
        segment.read_record(offset, len)
    }
}
