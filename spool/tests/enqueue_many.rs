//! `Spool::enqueue_many`: a batch answers exactly as single enqueues of the same messages would
//! (placement, record addresses, wakes held and run in order, bytes read back, accounting),
//! stops at the first `WaitForDiskQuota` leaving the rest of the batch to the caller, and is
//! refused by a closed spool.

use crate::support;

use bytes::Bytes;
use cdc_spool::{Enqueued, EntryLocation, Offer, Spool, SpoolError};
use support::{open, spool_config, Log, H};

/// Payloads of varied sizes: over 2 MiB of small records (so chunks are sealed inside a batch
/// and the 1 MiB segments rotate), with one record large enough for a direct write.
fn payloads() -> Vec<Bytes> {
    (0..2400u32)
        .map(|i| {
            let len = if i == 1500 {
                300 * 1024
            } else {
                (i as usize * 37) % 2000 + 1
            };
            Bytes::from(vec![(i % 251) as u8; len])
        })
        .collect()
}

fn spool_in(dir: &std::path::Path) -> (Spool, prometheus::Registry) {
    // 64 KiB of memory, then disk; wakes held above 1 MiB until the total is back to 1 KiB.
    open(
        spool_config(dir, 64 * 1024, 64 << 20, 1 << 20, 1024)
            .segment_size(1 << 20)
            .build()
            .unwrap(),
    )
}

fn kind(e: &Enqueued) -> &'static str {
    e.kind()
}

#[test]
fn a_batch_answers_as_single_enqueues_of_the_same_messages() {
    let payloads = payloads();
    let (one_dir, many_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (one, _r1) = spool_in(one_dir.path());
    let (many, _r2) = spool_in(many_dir.path());
    let (one_log, many_log) = (Log::default(), Log::default());

    let mut singles = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        let e = one.try_enqueue(
            p.clone(),
            one_log.cb(format!("wake {i}")),
            one_log.cb(format!("flush {i}")),
        );
        singles.push(e.unwrap());
    }
    let mut batched = Vec::new();
    // Batches of 100: several critical sections per batch (sealed chunks, the direct write).
    for (b, chunk) in payloads.chunks(100).enumerate() {
        let mut offers = chunk.iter().enumerate().map(|(j, p)| {
            let i = b * 100 + j;
            Offer {
                data: p.clone(),
                wake: many_log.cb(format!("wake {i}")),
                flush: many_log.cb(format!("flush {i}")),
            }
        });
        many.enqueue_many(&mut offers, &mut batched).unwrap();
        assert!(offers.next().is_none(), "every offer of the batch is taken");
    }

    assert_eq!(batched.len(), singles.len());
    for (i, (s, m)) in singles.iter().zip(&batched).enumerate() {
        assert_eq!(kind(s), kind(m), "answer {i}");
    }
    let one_entries: Vec<_> = singles
        .into_iter()
        .map(|e| e.into_entry().unwrap())
        .collect();
    let many_entries: Vec<_> = batched
        .into_iter()
        .map(|e| e.into_entry().unwrap())
        .collect();
    let where_: Vec<EntryLocation> = many_entries.iter().map(|e| e.location()).collect();
    assert_eq!(
        one_entries.iter().map(|e| e.location()).collect::<Vec<_>>(),
        where_,
        "the same records at the same addresses"
    );
    assert!(where_
        .iter()
        .any(|l| matches!(l, EntryLocation::Memory { .. })));
    assert!(where_
        .iter()
        .any(|l| matches!(l, EntryLocation::Disk { segment: 2.., .. })));
    assert_eq!(one.stats(), many.stats(), "the same accounting");
    assert!(many.stats().holding && many.stats().held_wakes > 0);
    let wakes = many_log.take();
    assert_eq!(one_log.take(), wakes, "the same wakes run, in order");
    assert!(!wakes.is_empty());

    let read = many.read_many(&many_entries).unwrap();
    assert_eq!(read, payloads, "every payload reads back");
    let spilled = many_entries.iter().filter(|e| e.is_spilled()).count();
    assert!(spilled > 2000, "mostly spilled: {spilled}");

    one.release_many(one_entries);
    many.release_many(many_entries);
    assert_eq!(
        one_log.take(),
        many_log.take(),
        "flushes, then the held wakes"
    );
    assert_eq!(many.stats().entries, 0);
}

#[test]
fn a_batch_stops_at_the_first_wait_for_disk_quota_and_leaves_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    // One byte of memory; the disk holds two records of 100 bytes.
    let (spool, _r) = open(
        spool_config(tmp.path(), 1, 2 * (H + 100), 10_000, 1)
            .build()
            .unwrap(),
    );
    let log = Log::default();
    let mut offers = (0..5u8).map(|i| Offer {
        data: Bytes::from(vec![i; 100]),
        wake: log.cb(format!("wake {i}")),
        flush: log.cb(format!("flush {i}")),
    });
    let mut out = Vec::new();
    spool.enqueue_many(&mut offers, &mut out).unwrap();
    assert_eq!(
        out.iter().map(Enqueued::kind).collect::<Vec<_>>(),
        ["spilled", "spilled", "wait-for-disk-quota"]
    );
    let Some(Enqueued::WaitForDiskQuota {
        data, wake, flush, ..
    }) = out.pop()
    else {
        unreachable!()
    };
    assert_eq!(
        data,
        Bytes::from(vec![2u8; 100]),
        "the refused payload back"
    );
    assert!(
        wake.is_some() && flush.is_some(),
        "its callbacks back, unrun"
    );
    assert_eq!(log.take(), ["wake 0", "wake 1"]);
    let rest: Vec<u8> = offers.map(|o| o.data[0]).collect();
    assert_eq!(rest, [3, 4], "the offers after it stay with the caller");
}

#[test]
fn a_closed_spool_refuses_a_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = spool_in(tmp.path());
    spool.clone().close().unwrap();
    let mut offers = std::iter::once(Offer {
        data: Bytes::from_static(b"x"),
        wake: None,
        flush: None,
    });
    let mut out = Vec::new();
    assert!(matches!(
        spool.enqueue_many(&mut offers, &mut out),
        Err(SpoolError::Closed)
    ));
    assert!(out.is_empty());
}
