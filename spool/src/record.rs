//! The record framing of segment files: how one payload is laid out on disk (FROZEN).
//!
//! ```text
//! offset  size  field
//! 0       4     len    payload length in bytes, u32 little-endian
//! 4       4     crc    CRC-32C (Castagnoli) of the payload, u32 little-endian
//! 8       len   payload
//!
//!  +----------------+----------------+---------------------+----------------+---
//!  | len: u32 LE    | crc: u32 LE    | payload (len bytes) | len: u32 LE    | ...
//!  +----------------+----------------+---------------------+----------------+---
//!  ^ record offset                                          ^ next record = offset + 8 + len
//! ```
//!
//! Records follow each other with no padding. An entry is addressed by
//! `(segment id, offset of the record start, payload length)` and read back with one positioned
//! read of `8 + len` bytes ([`crate::segment`]); [`verify_record`] then checks that the stored
//! `len` equals the addressed length and that the checksum matches.
//!
//! **Frozen format: do not add, remove or reorder fields**, and do not change their widths or
//! endianness. Segment files are scratch (never read across process restarts), but the
//! diagnostics scanner ([`crate::segment::scan_segment`]) and the byte-pinning test
//! `record_framing_bytes_are_pinned` below rely on this exact layout.
//!
//! Invariants: a header is always [`RECORD_HEADER_LEN`] bytes; a payload is at most
//! [`MAX_RECORD_PAYLOAD`] bytes (what `len` can hold); a record occupies [`record_len`] bytes.
//! This module does no I/O and depends on nothing else in the crate but its error type.

use crate::error::{CorruptReason, Result, SpoolError};

/// Bytes of the record header: `len: u32 LE` then `crc: u32 LE`.
pub const RECORD_HEADER_LEN: u64 = 8;

/// Largest payload a record can frame (the `len` field is a u32).
pub const MAX_RECORD_PAYLOAD: u64 = u32::MAX as u64;

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
    }

    #[test]
    fn a_framed_record_verifies_and_any_damage_is_named() {
        let payload = b"round trip";
        let mut rec = encode_header(payload).to_vec();
        rec.extend_from_slice(payload);
        assert_eq!(rec.len() as u64, record_len(payload.len() as u64));
        assert!(verify_record(4, 96, payload.len() as u64, &rec).is_ok());

        let wrong_len = verify_record(4, 96, 3, &rec[..11]).unwrap_err();
        assert!(matches!(
            wrong_len,
            SpoolError::Corrupt {
                segment: 4,
                offset: 96,
                reason: CorruptReason::LengthMismatch {
                    expected: 3,
                    found: 10
                }
            }
        ));

        rec[RECORD_HEADER_LEN as usize] ^= 1;
        let flipped = verify_record(4, 96, payload.len() as u64, &rec).unwrap_err();
        assert!(matches!(
            flipped,
            SpoolError::Corrupt {
                segment: 4,
                offset: 96,
                reason: CorruptReason::ChecksumMismatch { stored, computed }
            } if stored == checksum(payload) && computed != stored
        ));
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
}
