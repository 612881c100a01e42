//! Batched reads of large runs map the segment file (`mapped_read.rs`): the payloads are slices
//! of the file's pages, so the spool must not rewrite or cut mapped bytes, and a file shorter
//! than the run must give the same `Truncated` error as a short positioned read (never touch a
//! page past the end of the file).

mod support;

use cdc_spool::{CorruptReason, Entry, EntryLocation, Spool, SpoolError};
use std::fs::OpenOptions;
use support::H;

/// Payload bytes of the entries here: 512 of them span 516 KiB, a run that is mapped.
const LEN: usize = 1024;

fn payload(round: u8, i: usize) -> Vec<u8> {
    (0..LEN).map(|j| (i * 7 + j) as u8 ^ round).collect()
}

fn spool(dir: &std::path::Path) -> (Spool, prometheus::Registry) {
    support::open(
        support::spool_config(dir, 1, 64 << 20, 1 << 40, 1)
            .build()
            .unwrap(),
    )
}

/// Spills `n` entries of round `round` and puts them in the file.
fn spill(spool: &Spool, round: u8, n: usize) -> Vec<Entry> {
    let entries: Vec<Entry> = (0..n)
        .map(|i| {
            spool
                .try_enqueue(payload(round, i), None, None)
                .unwrap()
                .into_entry()
                .unwrap()
        })
        .collect();
    spool.write_buffered().unwrap();
    entries
}

fn offset(e: &Entry) -> u64 {
    match e.location() {
        EntryLocation::Disk { offset, .. } => offset,
        other => panic!("not spilled: {other:?}"),
    }
}

#[test]
fn a_segment_is_not_reused_while_payloads_of_a_mapped_read_are_alive() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = spool(tmp.path());
    let first = spill(&spool, 0, 512);
    assert_eq!(offset(&first[0]), 0);
    let payloads = spool.read_many(&first).unwrap();
    spool.release_many(first);
    assert_eq!(spool.stats().entries, 0);

    // Nothing is live, but the payloads still map the file's first 516 KiB: the next records
    // go after them instead of over them.
    let second = spill(&spool, 0xff, 512);
    assert_eq!(offset(&second[0]), 512 * (H + LEN as u64));
    for (i, p) in payloads.iter().enumerate() {
        assert_eq!(&p[..], &payload(0, i)[..], "payload {i} after later writes");
    }
    let again = spool.read_many(&second).unwrap();
    for (i, p) in again.iter().enumerate() {
        assert_eq!(&p[..], &payload(0xff, i)[..], "second round payload {i}");
    }

    // Once every mapping is gone, a fully released segment is reused from offset 0 again.
    drop(payloads);
    drop(again);
    spool.release_many(second);
    let third = spill(&spool, 1, 1);
    assert_eq!(offset(&third[0]), 0);
    assert_eq!(&spool.read(&third[0]).unwrap()[..], &payload(1, 0)[..]);
}

#[test]
fn a_mapped_run_cut_short_by_the_end_of_the_file_fails_as_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = spool(tmp.path());
    let entries = spill(&spool, 0, 512);
    let rec = H + LEN as u64;
    // The file ends 100 bytes into record 300.
    OpenOptions::new()
        .write(true)
        .open(support::segment_path(&spool, 0))
        .unwrap()
        .set_len(300 * rec + 100)
        .unwrap();
    match spool.read_many(&entries) {
        Err(SpoolError::Corrupt {
            segment: 0,
            offset,
            reason: CorruptReason::Truncated { needed, available },
        }) => {
            assert_eq!(offset, 300 * rec);
            assert_eq!(needed, rec);
            assert_eq!(available, 100);
        }
        other => panic!("expected Truncated at record 300, got {other:?}"),
    }
    // The records before the cut (a run long enough to be mapped) read back whole.
    let before = spool.read_many(&entries[..300]).unwrap();
    for (i, p) in before.iter().enumerate() {
        assert_eq!(&p[..], &payload(0, i)[..], "payload {i}");
    }
    // A run that starts past the end of the file: nothing to map, the first record fails.
    match spool.read_many(&entries[301..]) {
        Err(SpoolError::Corrupt {
            offset,
            reason: CorruptReason::Truncated { available: 0, .. },
            ..
        }) => assert_eq!(offset, 301 * rec),
        other => panic!("expected Truncated at record 301, got {other:?}"),
    }
}

#[test]
fn a_damaged_record_in_a_mapped_run_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = spool(tmp.path());
    let entries = spill(&spool, 0, 512);
    let rec = H + LEN as u64;
    damage_payload(&spool, 400 * rec);
    match spool.read_many(&entries) {
        Err(SpoolError::Corrupt {
            segment: 0,
            offset,
            reason: CorruptReason::ChecksumMismatch { .. },
        }) => assert_eq!(offset, 400 * rec),
        other => panic!("expected a checksum mismatch at record 400, got {other:?}"),
    }
}

/// Flips a bit in the payload of the record at `offset` of segment 0; the open file, for more
/// damage.
fn damage_payload(spool: &Spool, offset: u64) -> std::fs::File {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(support::segment_path(spool, 0))
        .unwrap();
    let at = offset + H + 5;
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, at).unwrap();
    file.write_all_at(&[b[0] ^ 0x10], at).unwrap();
    file
}

/// Live mappings of `spool`'s segment files in this process (`/proc/self/maps` lines naming a
/// file of its directory; a deleted file keeps its path there with a " (deleted)" suffix).
fn mappings_of(spool: &Spool) -> usize {
    let dir = spool.dir().to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&dir))
        .count()
}

#[test]
fn a_failed_mapped_read_unpins_its_segment_and_unmaps() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = spool(tmp.path());
    let entries = spill(&spool, 0, 512);
    let rec = H + LEN as u64;
    // A checksum failure inside a mapped run (record 400 of 512).
    let file = damage_payload(&spool, 400 * rec);
    assert!(spool.read_many(&entries).is_err());
    assert_eq!(mappings_of(&spool), 0, "the failed run is unmapped");
    // A mapping shorter than its run (the file ends inside record 300).
    file.set_len(300 * rec + 100).unwrap();
    assert!(spool.read_many(&entries).is_err());
    assert_eq!(mappings_of(&spool), 0, "the short run is unmapped");
    // No pin is left behind: once everything is released the segment is reused from 0.
    spool.release_many(entries);
    let next = spill(&spool, 3, 1);
    assert_eq!(
        offset(&next[0]),
        0,
        "a leaked pin keeps the segment from reuse"
    );
    assert_eq!(&spool.read(&next[0]).unwrap()[..], &payload(3, 0)[..]);
}

#[test]
fn mapped_payloads_are_unmapped_when_the_last_slice_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = spool(tmp.path());
    let entries = spill(&spool, 0, 2048);
    let payloads = spool.read_many(&entries).unwrap();
    // 2048 records of 1 KiB span about 2 MiB: two runs of 1 MiB are mapped (the kernel may
    // merge adjacent mappings of one file into one line).
    let mapped = mappings_of(&spool);
    assert!(
        mapped >= 1,
        "expected the runs to be mapped, found {mapped}"
    );
    let kept = payloads[5].clone();
    drop(payloads);
    assert_eq!(
        mappings_of(&spool),
        1,
        "only the run of the kept slice stays"
    );
    assert_eq!(&kept[..], &payload(0, 5)[..]);
    drop(kept);
    assert_eq!(mappings_of(&spool), 0);
    spool.release_many(entries);
}

#[test]
fn mapped_payloads_stay_readable_after_release_and_close() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = spool(tmp.path());
    let dir = spool.dir().to_path_buf();
    let entries = spill(&spool, 0, 512);
    let payloads = spool.read_many(&entries).unwrap();
    assert!(mappings_of(&spool) >= 1);
    spool.release_many(entries);
    spool.close().unwrap();
    assert!(!dir.exists(), "close removes the directory");
    // A later spool in the same directory writes new files, not the mapped (deleted) one.
    let (again, _r2) = self::spool(tmp.path());
    assert_eq!(again.dir(), dir);
    assert_eq!(offset(&spill(&again, 0xaa, 1)[0]), 0);
    let other = spill(&again, 0xaa, 512);
    for (i, p) in payloads.iter().enumerate() {
        assert_eq!(
            &p[..],
            &payload(0, i)[..],
            "payload {i} after close and reopen"
        );
    }
    again.release_many(other);
}

/// Open descriptors of this process on files of `spool`'s directory.
fn open_files_of(spool: &Spool) -> usize {
    let dir = spool.dir().to_string_lossy().into_owned();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|f| std::fs::read_link(f.path()).ok())
        .filter(|p| p.to_string_lossy().contains(&dir))
        .count()
}

#[test]
fn a_deleted_segment_keeps_its_file_only_until_its_mapped_payloads_are_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = spool(tmp.path());
    // Files the spool holds open besides its segments (its lock file).
    let base = open_files_of(&spool);
    let first = spill(&spool, 0, 512);
    spool.rotate();
    let later = spill(&spool, 1, 1);
    assert_eq!(support::segment_files(&spool).len(), 2);
    let payloads = spool.read_many(&first).unwrap();
    assert_eq!(open_files_of(&spool), base + 2);
    // Releasing the last entry of a segment that is not active deletes its file; the mapping
    // keeps the (unlinked) file open and its bytes readable.
    spool.release_many(first);
    assert_eq!(support::segment_files(&spool).len(), 1);
    assert_eq!(
        open_files_of(&spool),
        base + 2,
        "the mapping holds the deleted file"
    );
    assert_eq!(&payloads[511][..], &payload(0, 511)[..]);
    // The last payload gone, the file is closed and its space freed.
    drop(payloads);
    assert_eq!(mappings_of(&spool), 0);
    assert_eq!(
        open_files_of(&spool),
        base + 1,
        "the deleted segment's file is closed"
    );
    spool.release_many(later);
}

#[test]
fn payloads_mapped_by_several_threads_survive_release_and_later_writes() {
    const THREADS: usize = 3;
    const ROUNDS: usize = 12;
    const N: usize = 300;
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = spool(tmp.path());
    let barrier = std::sync::Barrier::new(THREADS);
    // Failures are collected, not panicked on, so that no thread leaves the others waiting at
    // the barrier.
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (spool, barrier, failures) = (&spool, &barrier, &failures);
            s.spawn(move || {
                let fail = |m: String| failures.lock().unwrap().push(m);
                let tag = |r: usize| (t * ROUNDS + r) as u8;
                let mut prev: Option<(u8, Vec<bytes::Bytes>)> = None;
                for r in 0..ROUNDS {
                    // Every thread spills while the others' earlier payloads are still mapped
                    // and all their entries are released: a segment reused from offset 0 here
                    // would overwrite those payloads.
                    let entries = spill(spool, tag(r), N);
                    barrier.wait();
                    if let Some((old, payloads)) = prev.take() {
                        let bad = (0..N).filter(|&i| payloads[i][..] != payload(old, i)[..]);
                        if let Some(i) = bad.clone().next() {
                            fail(format!(
                                "thread {t} round {r}: {} payloads of round {old} changed after \
                                 release, first {i}",
                                bad.count()
                            ));
                        }
                    }
                    let payloads = match spool.read_many(&entries) {
                        Ok(p) => p,
                        Err(e) => {
                            fail(format!("thread {t} round {r}: read_many failed: {e}"));
                            Vec::new()
                        }
                    };
                    if payloads.len() == N
                        && (0..N).any(|i| payloads[i][..] != payload(tag(r), i)[..])
                    {
                        fail(format!("thread {t} round {r}: read back wrong bytes"));
                    }
                    barrier.wait();
                    spool.release_many(entries);
                    if payloads.len() == N {
                        prev = Some((tag(r), payloads));
                    }
                    barrier.wait();
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(spool.stats().entries, 0);
}
