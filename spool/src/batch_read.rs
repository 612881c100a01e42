//! Batched read-back: records that lie close together in one segment file are read with one
//! positioned read of the range covering them, then each record is verified and its payload
//! sliced out of that buffer (shared, not copied).
//!
//! A *run* is a sequence of consecutive entries of one batch (in the caller's order) that
//! - address the same segment and are wholly in its file (not in its write buffer),
//! - ascend: each record starts at or after the end of the previous one,
//! - leave gaps of at most [`MAX_GAP`] bytes between records (records of other batches or
//!   released ones), and gaps adding up to at most an eighth of the run's payload bytes,
//! - span at most [`MAX_RUN_BYTES`] from the first record's start to the last one's end (a
//!   single record larger than that is a run of its own and is read whole).
//!
//! # Read buffers
//!
//! The payloads of a batch live until the caller is done with them (the sink: until the upload
//! of their data file ends), so a buffer they were copied into is rarely in the CPU's cache by
//! the time the next batch is read, and a fresh one costs a page fault per 4 KiB as well. A
//! run spanning at least 256 KiB (`mapped_read::MAPPED_MIN_SPAN`) is therefore not copied at
//! all: it is mapped from the segment file (`mapped_read.rs`) and the payloads are slices of
//! the mapping (`Bytes::from_owner`), unmapped when the last of them is dropped. Smaller runs
//! are read into a buffer of their own size.
//!
//! Invariants:
//! - memory: the buffer of a run holds its records (headers included), its gaps (at most 1/8 of
//!   its payload) and at most 64 bytes of alignment; a mapping holds the same plus less than a
//!   page before the run. Either lives as long as any payload sliced from it, so a caller that
//!   bounds the payload bytes it reads back bounds the memory: at most 3/2 of the payload plus
//!   11 bytes per record and a page per run;
//! - verification: every record is checked exactly as a single read checks it
//!   ([`verify_record`]), in the caller's order, and the first bad record fails the whole call
//!   with the same [`SpoolError::Corrupt`] (segment, record offset, reason) a single read of it
//!   gives. A range cut short by the end of the file fails at the first record that does not
//!   fit, as `Truncated` with the bytes the file holds from that record's offset.

use crate::error::{CorruptReason, Result, SpoolError};
use crate::mapped_read::{Mapping, MAPPED_MIN_SPAN};
use crate::record::{record_len, verify_record, RECORD_HEADER_LEN};
use crate::segment::{read_span, Segment};
use bytes::Bytes;
use std::sync::Arc;

/// Largest range one batched positioned read covers: bounds the buffer of a run.
pub const MAX_RUN_BYTES: u64 = 1024 * 1024;

/// Largest hole between two records of a run. Reading a hole costs a copy of its bytes; a
/// separate `pread` costs about as much as copying a few KiB, so larger holes end the run.
pub const MAX_GAP: u64 = 4 * 1024;

/// The records of one run being planned: `(offset, payload length)` in the caller's order.
/// Its vector is reused from run to run within a batched read.
#[derive(Debug, Default)]
pub(crate) struct Run {
    records: Vec<(u64, u64)>,
    start: u64,
    end: u64,
    payload: u64,
    gaps: u64,
}

impl Run {
    /// Starts a new run with the record at `offset` whose payload is `len` bytes.
    pub(crate) fn begin(&mut self, offset: u64, len: u64) {
        self.records.clear();
        self.records.push((offset, len));
        self.start = offset;
        self.end = offset + record_len(len);
        self.payload = len;
        self.gaps = 0;
    }

    /// Adds the record at `offset` (payload `len` bytes) if it continues the run (see the module
    /// doc); false leaves the run as it was.
    pub(crate) fn try_push(&mut self, offset: u64, len: u64) -> bool {
        if offset < self.end {
            return false;
        }
        let gap = offset - self.end;
        let end = offset + record_len(len);
        if gap > MAX_GAP
            || end - self.start > MAX_RUN_BYTES
            || (self.gaps + gap) * 8 > self.payload + len
        {
            return false;
        }
        self.records.push((offset, len));
        self.end = end;
        self.payload += len;
        self.gaps += gap;
        true
    }

    /// Reads the run from `segment` (mapped when it spans at least [`MAPPED_MIN_SPAN`], else
    /// with one positioned read, repeated only if the kernel returns less), verifies every
    /// record in order and appends the payloads to `out`.
    pub(crate) fn read(&self, segment: &Arc<Segment>, out: &mut Vec<Bytes>) -> Result<()> {
        let span = (self.end - self.start) as usize;
        let mapped = if span as u64 >= MAPPED_MIN_SPAN {
            Mapping::map(segment, self.start, span)
        } else {
            None
        };
        let (buf, shift, got) = match mapped {
            Some(m) => {
                let got = m.as_ref().len();
                (Bytes::from_owner(m), 0, got)
            }
            None => {
                let (buf, shift, got) =
                    read_span(segment.file(), segment.path(), self.start, span)?;
                (Bytes::from(buf), shift, got)
            }
        };
        for &(offset, len) in &self.records {
            let rel = (offset - self.start) as usize;
            let rec = record_len(len);
            if rel as u64 + rec > got as u64 {
                return Err(SpoolError::Corrupt {
                    segment: segment.id(),
                    offset,
                    reason: CorruptReason::Truncated {
                        needed: rec,
                        available: (got as u64).saturating_sub(rel as u64),
                    },
                });
            }
            let at = shift + rel;
            verify_record(segment.id(), offset, len, &buf[at..at + rec as usize])?;
            let payload = at + RECORD_HEADER_LEN as usize;
            out.push(buf.slice(payload..payload + len as usize));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(records: &[(u64, u64)]) -> (Run, usize) {
        let mut r = Run::default();
        r.begin(records[0].0, records[0].1);
        let taken = 1 + records[1..]
            .iter()
            .take_while(|&&(o, l)| r.try_push(o, l))
            .count();
        (r, taken)
    }

    #[test]
    fn adjacent_records_join_until_the_span_limit() {
        let n = MAX_RUN_BYTES / 1032;
        let records: Vec<(u64, u64)> = (0..n + 5).map(|i| (i * 1032, 1024)).collect();
        let (r, taken) = run(&records);
        assert_eq!(taken as u64, n);
        assert!(r.end - r.start <= MAX_RUN_BYTES);
    }

    #[test]
    fn overlaps_descents_and_wide_gaps_end_a_run() {
        assert_eq!(run(&[(100, 10), (100, 10)]).1, 1, "same record twice");
        assert_eq!(run(&[(100, 10), (0, 10)]).1, 1, "descending");
        assert_eq!(run(&[(0, 64 * 1024), (65_544 + MAX_GAP + 1, 10)]).1, 1);
        assert_eq!(run(&[(0, 64 * 1024), (65_544 + MAX_GAP, 10)]).1, 2);
    }

    #[test]
    fn gaps_stay_within_an_eighth_of_the_payload() {
        // 1 KiB payloads: a gap of 256 bytes is 1/8 of two payloads, one more byte is not.
        assert_eq!(run(&[(0, 1024), (1032 + 256, 1024)]).1, 2);
        assert_eq!(run(&[(0, 1024), (1032 + 257, 1024)]).1, 1);
    }

    #[test]
    fn a_record_larger_than_the_span_limit_is_a_run_of_its_own() {
        let (r, taken) = run(&[(0, 2 * MAX_RUN_BYTES), (2 * MAX_RUN_BYTES + 8, 1)]);
        assert_eq!(taken, 1);
        assert_eq!(r.end, 2 * MAX_RUN_BYTES + 8);
    }
}
