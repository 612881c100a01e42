//! Damage a segment file under a live spool (its directory is scratch, so "reopen" would wipe
//! it: the damage is done while the entries still address it) and assert the exact error.

use crate::support;

use cdc_spool::segment::{scan_segment, RecordAddress};
use cdc_spool::{CorruptReason, Entry, EntryLocation, Spool, SpoolConfig, SpoolError};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use support::H;

struct Fixture {
    _tmp: tempfile::TempDir,
    _registry: prometheus::Registry,
    spool: Spool,
    entries: Vec<Entry>,
}

fn payload(i: usize) -> Vec<u8> {
    (0..100).map(|j| (i * 31 + j) as u8).collect()
}

/// Three spilled entries of 100 bytes in segment 0, at offsets 0, 108, 216, written to the file.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig::builder()
        .dir(tmp.path())
        .memory_quota(1)
        .disk_quota(1 << 20)
        .watermarks(1 << 21, 1)
        .build()
        .unwrap();
    let (spool, registry) = support::open(cfg);
    let entries: Vec<Entry> = (0..3)
        .map(|i| {
            spool
                .try_enqueue(payload(i), None, None)
                .unwrap()
                .into_entry()
                .unwrap()
        })
        .collect();
    // Small records wait in the segment's write buffer; put them in the file to damage them.
    assert_eq!(spool.stats().buffered_bytes, 3 * (H + 100));
    spool.write_buffered().unwrap();
    assert_eq!(spool.stats().buffered_bytes, 0);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e.location(),
            EntryLocation::Disk {
                segment: 0,
                offset: i as u64 * (H + 100),
                len: 100
            }
        );
    }
    Fixture {
        _tmp: tmp,
        _registry: registry,
        spool,
        entries,
    }
}

impl Fixture {
    fn segment_path(&self) -> PathBuf {
        support::segment_path(&self.spool, 0)
    }

    fn damage(&self, f: impl FnOnce(&std::fs::File)) {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.segment_path())
            .unwrap();
        f(&file);
    }

    fn xor_byte(&self, offset: u64, mask: u8) {
        self.damage(|file| {
            let mut b = [0u8];
            file.read_exact_at(&mut b, offset).unwrap();
            b[0] ^= mask;
            file.write_all_at(&b, offset).unwrap();
        });
    }
}

#[test]
fn a_segment_truncated_mid_record_is_reported_at_that_record() {
    let f = fixture();
    let cut = 2 * (H + 100) + H + 40;
    f.damage(|file| file.set_len(cut).unwrap());
    let err = f.spool.read(&f.entries[2]).unwrap_err();
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 216,
                reason: CorruptReason::Truncated {
                    needed: 108,
                    available: 48
                }
            }
        ),
        "{err:?}"
    );
    assert!(err.is_corruption());
    assert_eq!(
        err.to_string(),
        "corrupt spool segment 0 at offset 216: truncated record: needs 108 bytes, the file holds 48"
    );
    assert_eq!(
        f.spool.read(&f.entries[1]).unwrap(),
        payload(1),
        "earlier records are intact"
    );

    let err = scan_segment(&f.segment_path(), 0, None).unwrap_err();
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 216,
                reason: CorruptReason::Truncated {
                    needed: 108,
                    available: 48
                }
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_flipped_checksum_bit_is_a_checksum_mismatch() {
    let f = fixture();
    f.xor_byte(108 + 4, 0x01);
    let err = f.spool.read(&f.entries[1]).unwrap_err();
    let computed = crc32c::crc32c(&payload(1));
    let expected_stored = computed ^ 0x01;
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 108,
                reason: CorruptReason::ChecksumMismatch { stored, computed: c }
            } if stored == expected_stored && c == computed
        ),
        "{err:?}"
    );
    assert_eq!(f.spool.read(&f.entries[0]).unwrap(), payload(0));
    assert_eq!(f.spool.read(&f.entries[2]).unwrap(), payload(2));
}

#[test]
fn a_flipped_payload_bit_is_a_checksum_mismatch() {
    let f = fixture();
    f.xor_byte(H + 50, 0x80);
    let err = f.spool.read(&f.entries[0]).unwrap_err();
    let mut damaged = payload(0);
    damaged[50] ^= 0x80;
    let (want_stored, want_computed) = (crc32c::crc32c(&payload(0)), crc32c::crc32c(&damaged));
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 0,
                reason: CorruptReason::ChecksumMismatch { stored, computed }
            } if stored == want_stored && computed == want_computed
        ),
        "{err:?}"
    );
}

#[test]
fn a_damaged_length_field_is_a_length_mismatch() {
    let f = fixture();
    f.xor_byte(216, 0x02); // len 100 -> 102
    let err = f.spool.read(&f.entries[2]).unwrap_err();
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 216,
                reason: CorruptReason::LengthMismatch {
                    expected: 100,
                    found: 102
                }
            }
        ),
        "{err:?}"
    );
}

#[test]
fn garbage_appended_after_the_last_record_is_never_decoded() {
    let f = fixture();
    let end = 3 * (H + 100);
    assert_eq!(
        scan_segment(&f.segment_path(), 0, None).unwrap(),
        vec![
            RecordAddress {
                offset: 0,
                len: 100
            },
            RecordAddress {
                offset: 108,
                len: 100
            },
            RecordAddress {
                offset: 216,
                len: 100
            }
        ]
    );
    // a partial header
    f.damage(|file| file.write_all_at(&[0xff, 0xff, 0xff], end).unwrap());
    let err = scan_segment(&f.segment_path(), 0, None).unwrap_err();
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 324,
                reason: CorruptReason::Truncated {
                    needed: 8,
                    available: 3
                }
            }
        ),
        "{err:?}"
    );
    // a whole header claiming 4 bytes, with a wrong checksum and the 4 bytes present
    f.damage(|file| {
        file.write_all_at(&[4, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4], end)
            .unwrap()
    });
    let err = scan_segment(&f.segment_path(), 0, None).unwrap_err();
    let want = crc32c::crc32c(&[1, 2, 3, 4]);
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 324,
                reason: CorruptReason::ChecksumMismatch { stored: 0xefbe_adde, computed }
            } if computed == want
        ),
        "{err:?}"
    );
    // a header claiming more bytes than the file holds
    f.damage(|file| file.write_all_at(&[0, 0, 1, 0], end).unwrap());
    let err = scan_segment(&f.segment_path(), 0, None).unwrap_err();
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 324,
                reason: CorruptReason::Truncated {
                    needed: 65_544,
                    available: 12
                }
            }
        ),
        "{err:?}"
    );
    // the addressed entries do not scan, so they still read back exactly
    for (i, e) in f.entries.iter().enumerate() {
        assert_eq!(f.spool.read(e).unwrap(), payload(i));
    }
}

#[test]
fn a_segment_emptied_under_the_spool_reads_as_truncated_not_as_stale_data() {
    let f = fixture();
    // the spool reads through its open handle: the damage done through the path is seen
    f.damage(|file| file.set_len(0).unwrap());
    let err = f.spool.read(&f.entries[0]).unwrap_err();
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 0,
                reason: CorruptReason::Truncated {
                    needed: 108,
                    available: 0
                }
            }
        ),
        "{err:?}"
    );
}

// Batched reads: the fixture's three records are adjacent, so `read_many` reads them with one
// positioned read of the covering range; damage inside that range must give the error a single
// read of the damaged record gives, and nothing is appended to the caller's vector.

/// `read_many_into` of all three entries onto a vector already holding one item: returns the
/// error and checks the vector was left as it was.
fn batched_error(f: &Fixture) -> SpoolError {
    let mut out = vec![bytes::Bytes::from_static(b"earlier")];
    let err = f
        .spool
        .read_many_into(f.entries.iter(), &mut out)
        .unwrap_err();
    assert_eq!(
        out,
        vec![bytes::Bytes::from_static(b"earlier")],
        "left as it was"
    );
    err
}

#[test]
fn adjacent_records_are_read_back_as_slices_of_one_buffer() {
    let f = fixture();
    let got = f.spool.read_many(&f.entries).unwrap();
    assert_eq!(got, vec![payload(0), payload(1), payload(2)]);
    // one coalesced read: the payloads sit one record apart in the same buffer
    let base = got[0].as_ptr() as usize;
    assert_eq!(got[1].as_ptr() as usize - base, (H + 100) as usize);
    assert_eq!(got[2].as_ptr() as usize - base, 2 * (H + 100) as usize);
}

#[test]
fn a_flipped_bit_inside_a_coalesced_range_names_its_record() {
    let f = fixture();
    f.xor_byte(108 + H + 7, 0x10);
    let single = f.spool.read(&f.entries[1]).unwrap_err();
    let err = batched_error(&f);
    let mut damaged = payload(1);
    damaged[7] ^= 0x10;
    let (want_stored, want_computed) = (crc32c::crc32c(&payload(1)), crc32c::crc32c(&damaged));
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 108,
                reason: CorruptReason::ChecksumMismatch { stored, computed }
            } if stored == want_stored && computed == want_computed
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), single.to_string(), "as a single read says");
    // the batch without the damaged record still reads
    let rest = f.spool.read_many([&f.entries[0], &f.entries[2]]).unwrap();
    assert_eq!(rest, vec![payload(0), payload(2)]);
}

#[test]
fn a_damaged_length_inside_a_coalesced_range_is_a_length_mismatch_at_its_record() {
    let f = fixture();
    f.xor_byte(216, 0x02); // len 100 -> 102
    let err = batched_error(&f);
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 216,
                reason: CorruptReason::LengthMismatch {
                    expected: 100,
                    found: 102
                }
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_truncation_inside_a_coalesced_range_is_reported_at_the_first_record_cut() {
    let f = fixture();
    // cut inside record 1: records 1 and 2 are both missing bytes, record 1 is reported
    f.damage(|file| file.set_len(108 + 50).unwrap());
    let single = f.spool.read(&f.entries[1]).unwrap_err();
    let err = batched_error(&f);
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 108,
                reason: CorruptReason::Truncated {
                    needed: 108,
                    available: 50
                }
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), single.to_string(), "as a single read says");
    assert_eq!(
        f.spool.read_many(&f.entries[..1]).unwrap(),
        vec![payload(0)],
        "the record before the cut is intact"
    );
    // cut before record 2 starts: nothing of it is left
    f.damage(|file| file.set_len(0).unwrap());
    f.damage(|file| file.set_len(216).unwrap());
    let err = f.spool.read_many(&f.entries[2..]).unwrap_err();
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                segment: 0,
                offset: 216,
                reason: CorruptReason::Truncated {
                    needed: 108,
                    available: 0
                }
            }
        ),
        "{err:?}"
    );
}
