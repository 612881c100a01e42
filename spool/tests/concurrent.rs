//! Producers enqueue while consumers read and release, all at once: every byte read back equals
//! what was written, every wake and flush callback runs exactly once, and the accounting returns
//! to zero. Two shapes: small segments (chunks of the write buffer are sealed by rotation, most
//! reads are served from the buffer) and large ones (1 MiB chunks fill and are written by
//! producers while consumers read records from the file, from sealed chunks and from the open
//! chunk; payloads above the copy threshold are shared, a few are large enough to be written
//! directly). A third runs the large shape with consumers reading batches
//! (`read_many_into`, runs coalesced across the gaps the other consumers' entries leave) and
//! releasing them together (`release_many`) while the others read and release entries one by
//! one.

use cdc_spool::{Enqueued, Entry, Spool, SpoolConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 3;
const PER_PRODUCER: u64 = 1500;

/// Payload lengths of a test: `(producer, seq) -> len`.
type Lengths = fn(u64, u64) -> usize;

fn small(producer: u64, seq: u64) -> usize {
    ((producer * 7919 + seq * 104_729) % 3000) as usize
}

fn mixed(producer: u64, seq: u64) -> usize {
    if seq % 500 == 7 {
        300_000 + producer as usize
    } else {
        ((producer * 7919 + seq * 104_729) % 12_000) as usize
    }
}

fn payload(len: Lengths, producer: u64, seq: u64) -> Vec<u8> {
    let len = len(producer, seq);
    let seed = producer << 32 | seq;
    (0..len)
        .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 17) >> 3) as u8)
        .collect()
}

#[test]
fn concurrent_producers_and_consumers_read_back_every_byte_and_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig::builder()
        .dir(tmp.path())
        .memory_quota(32 * 1024)
        .disk_quota(256 * 1024)
        .watermarks(128 * 1024, 32 * 1024)
        .segment_size(64 * 1024)
        .build()
        .unwrap();
    run(cfg, small, Reads::Single);
}

#[test]
fn concurrent_spills_through_full_buffer_chunks_and_direct_writes_read_back_every_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig::builder()
        .dir(tmp.path())
        .memory_quota(64 * 1024)
        .disk_quota(12 * 1024 * 1024)
        .watermarks(8 * 1024 * 1024, 2 * 1024 * 1024)
        .segment_size(4 * 1024 * 1024)
        .build()
        .unwrap();
    run(cfg, mixed, Reads::Single);
}

#[test]
fn concurrent_batched_reads_while_others_release_read_back_every_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig::builder()
        .dir(tmp.path())
        .memory_quota(64 * 1024)
        .disk_quota(12 * 1024 * 1024)
        .watermarks(8 * 1024 * 1024, 2 * 1024 * 1024)
        .segment_size(4 * 1024 * 1024)
        .build()
        .unwrap();
    run(cfg, mixed, Reads::Batched);
}

/// How consumers read back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// Every consumer reads one entry at a time.
    Single,
    /// Consumer 0 reads one at a time; the others take what the channel holds (up to 64
    /// entries) and read it with one `read_many_into`.
    Batched,
}

/// Largest batch a batched consumer reads at once.
const BATCH: usize = 64;

fn run(cfg: SpoolConfig, len: Lengths, reads: Reads) {
    let registry = prometheus::Registry::new();
    let spool = Spool::open(cfg, "concurrent", &registry).unwrap();
    let wakes = Arc::new(AtomicU64::new(0));
    let flushes = Arc::new(AtomicU64::new(0));
    let spilled = Arc::new(AtomicU64::new(0));
    let waits = Arc::new(AtomicU64::new(0));
    // bounded, so producers run ahead of consumers only so far; a full channel only blocks the
    // producer thread of this test, never the spool
    let (tx, rx) = crossbeam_channel::bounded::<(u64, u64, Entry)>(256);

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (spool, tx) = (spool.clone(), tx.clone());
            let (wakes, flushes) = (Arc::clone(&wakes), Arc::clone(&flushes));
            let (spilled, waits) = (Arc::clone(&spilled), Arc::clone(&waits));
            std::thread::spawn(move || {
                for seq in 0..PER_PRODUCER {
                    let w = Arc::clone(&wakes);
                    let f = Arc::clone(&flushes);
                    let mut data: bytes::Bytes = payload(len, p, seq).into();
                    let mut wake: Option<cdc_spool::Callback> = Some(Box::new(move || {
                        w.fetch_add(1, Ordering::Relaxed);
                    }));
                    let mut flush: Option<cdc_spool::Callback> = Some(Box::new(move || {
                        f.fetch_add(1, Ordering::Relaxed);
                    }));
                    let entry = loop {
                        match spool.try_enqueue(data, wake, flush).unwrap() {
                            Enqueued::WaitForDiskQuota {
                                data: d,
                                wake: w,
                                flush: f,
                                generation,
                            } => {
                                waits.fetch_add(1, Ordering::Relaxed);
                                (data, wake, flush) = (d, w, f);
                                // consumers keep releasing, so space comes; the timeout only
                                // bounds a bug
                                assert!(
                                    spool.wait_for_space_since(generation, Duration::from_secs(20)),
                                    "no space released within 20 s"
                                );
                            }
                            Enqueued::Spilled(e) | Enqueued::Oversized(e) => {
                                spilled.fetch_add(1, Ordering::Relaxed);
                                break e;
                            }
                            Enqueued::InMemory(e) => break e,
                        }
                    };
                    tx.send((p, seq, entry)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);

    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            let (spool, rx) = (spool.clone(), rx.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                if reads == Reads::Batched && c > 0 {
                    let mut batch = Vec::with_capacity(BATCH);
                    let mut got = Vec::with_capacity(BATCH);
                    while let Ok(first) = rx.recv() {
                        batch.push(first);
                        // never waits for more: producers may wait for the space we hold
                        batch.extend(rx.try_iter().take(BATCH - 1));
                        got.clear();
                        spool
                            .read_many_into(batch.iter().map(|(_, _, e)| e), &mut got)
                            .unwrap();
                        assert_eq!(got.len(), batch.len());
                        for ((p, seq, _), b) in batch.iter().zip(got.drain(..)) {
                            assert_eq!(&b[..], &payload(len, *p, *seq)[..], "entry {p}/{seq}");
                            n += 1;
                        }
                        spool.release_many(batch.drain(..).map(|(_, _, e)| e));
                    }
                    return n;
                }
                for (p, seq, entry) in rx {
                    let got = spool.read(&entry).unwrap();
                    assert_eq!(&got[..], &payload(len, p, seq)[..], "entry {p}/{seq}");
                    spool.release(entry);
                    n += 1;
                }
                n
            })
        })
        .collect();

    for p in producers {
        p.join().unwrap();
    }
    let consumed: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    let total = PRODUCERS * PER_PRODUCER;
    assert_eq!(consumed, total);
    assert_eq!(
        flushes.load(Ordering::Relaxed),
        total,
        "every flush ran once"
    );
    assert_eq!(
        wakes.load(Ordering::Relaxed),
        total,
        "every wake ran once (held ones when the total fell to the low watermark)"
    );
    assert!(
        spilled.load(Ordering::Relaxed) > 0,
        "the test must exercise the disk path"
    );
    let s = spool.stats();
    assert_eq!(
        (
            s.memory_bytes,
            s.disk_bytes,
            s.entries,
            s.held_wakes,
            s.disk_quota_waiters
        ),
        (0, 0, 0, 0, 0)
    );
    assert!(
        s.buffered_bytes <= 1024 * 1024,
        "at most one open chunk of released records stays buffered: {s:?}"
    );
    assert!(!s.holding);
    assert!(s.segments <= 1, "only the active segment may remain: {s:?}");
    eprintln!(
        "spilled {} of {total}, {} disk-quota waits",
        spilled.load(Ordering::Relaxed),
        waits.load(Ordering::Relaxed)
    );
    spool.close().unwrap();
}
