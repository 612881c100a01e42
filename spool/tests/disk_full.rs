//! The spool directory on a file system that fills up: a real tmpfs of 2 MiB mounted by the test
//! ([`Tmpfs`]: root, or CAP_SYS_ADMIN, is needed; under `CI=true` a failed mount fails the test,
//! elsewhere the test prints a note and returns; the drop guard unmounts, also on panic).
//!
//! What must hold: a write that finds no room never leaves a partial record addressable (the
//! segment is cut back), never loses an accepted entry (buffered records stay readable), and the
//! refused entry is handed back whole with its callbacks unrun, as `WaitForDiskQuota` while
//! entries are held or as `SpoolError::DiskFull` naming the directory and the segment when
//! nothing is; once space is freed, enqueue works again and the accounting returns to zero.

use crate::support;

use bytes::Bytes;
use cdc_common::testing::Tmpfs;
use cdc_spool::write_buffer::{DIRECT_WRITE_MIN, WRITE_BUFFER_SIZE};
use cdc_spool::{Enqueued, Entry, EntryLocation, Spool, SpoolError};
use std::path::{Path, PathBuf};
use support::{segment_path, spool_config, Log, H};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// Size of the test file system.
const FS_SIZE: u64 = 2 * MIB;

/// A 2 MiB tmpfs on a fresh temporary directory (`None`: not mountable outside CI). The
/// directory outlives the mount: the pair drops in reverse order.
fn mount() -> Option<(tempfile::TempDir, Tmpfs)> {
    let dir = tempfile::tempdir().expect("temporary mount point");
    let fs = Tmpfs::mount(dir.path(), FS_SIZE)?;
    Some((dir, fs))
}

/// Every entry spills (memory quota 1 byte); the disk quota is far above the file system, so
/// only the file system can say no; wakes always run at once.
fn open(dir: &Path, segment_size: u64) -> (Spool, prometheus::Registry) {
    let cfg = spool_config(dir, 1, 64 * MIB, 1 << 40, 1)
        .segment_size(segment_size)
        .build()
        .unwrap();
    support::open(cfg)
}

fn payload(tag: usize, len: usize) -> Bytes {
    (0..len)
        .map(|i| (tag * 131 + i * 7 + i / 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Fills the file system, leaving `leave` bytes free.
fn fill(fs: &Tmpfs, leave: u64) -> PathBuf {
    let path = fs.path().join("filler");
    let len = fs.free() - leave;
    std::fs::write(&path, vec![0u8; len as usize]).unwrap();
    assert_eq!(fs.free(), leave, "the filler leaves exactly {leave} bytes");
    path
}

#[test]
fn a_direct_write_that_finds_no_room_is_rolled_back_and_refused_with_a_clear_error() {
    let Some((_dir, fs)) = mount() else {
        return;
    };
    let (spool, _r) = open(fs.path(), 64 * MIB);
    let log = Log::default();
    let filler = fill(&fs, 256 * KIB);

    // Nothing is held, so nothing can free space: DiskFull, naming directory and segment.
    let big = payload(1, (DIRECT_WRITE_MIN + 150 * KIB) as usize);
    let err = spool
        .try_enqueue(big.clone(), log.cb("wake big"), log.cb("flush big"))
        .unwrap_err();
    let seg0 = segment_path(&spool, 0);
    assert!(
        matches!(&err, SpoolError::DiskFull { dir, segment: 0, path, source }
            if dir == spool.dir() && *path == seg0
                && source.kind() == std::io::ErrorKind::StorageFull),
        "{err:?}"
    );
    assert!(err.is_disk_full());
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "no space left on device for the spool directory `{}`: cannot write segment 0 (`{}`): ",
            spool.dir().display(),
            seg0.display()
        )),
        "{msg}"
    );
    assert!(
        msg.contains("No space left on device"),
        "the OS error follows: {msg}"
    );
    assert_eq!(
        file_len(&seg0),
        0,
        "the partial record is cut from the file"
    );
    assert_eq!(fs.free(), 256 * KIB, "and its space given back");
    let s = spool.stats();
    assert_eq!((s.memory_bytes, s.disk_bytes, s.entries), (0, 0, 0));
    assert!(
        log.take().is_empty(),
        "a refused entry is never acknowledged"
    );

    // The rolled-back offset is reused: small records start at 0 and fit.
    let mut held: Vec<(Entry, Bytes)> = Vec::new();
    for i in 0..10 {
        let p = payload(100 + i, 1000);
        let e = spool
            .try_enqueue(
                p.clone(),
                log.cb(format!("wake {i}")),
                log.cb(format!("flush {i}")),
            )
            .unwrap();
        let Enqueued::Spilled(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            e.location(),
            EntryLocation::Disk {
                segment: 0,
                offset: i as u64 * (H + 1000),
                len: 1000
            }
        );
        held.push((e, p));
    }
    spool.write_buffered().unwrap();
    let small_end = 10 * (H + 1000);
    assert_eq!(file_len(&seg0), small_end);

    // Entries are held now: the same failure asks to wait, handing everything back unrun.
    let (data, wake, flush) = match spool
        .try_enqueue(big.clone(), log.cb("wake big"), log.cb("flush big"))
        .unwrap()
    {
        Enqueued::WaitForDiskQuota {
            data, wake, flush, ..
        } => (data, wake, flush),
        other => panic!("{other:?}"),
    };
    assert_eq!(data, big, "the payload comes back whole");
    assert!(
        wake.is_some() && flush.is_some(),
        "callbacks come back unrun"
    );
    assert_eq!(
        file_len(&seg0),
        small_end,
        "cut back behind the last record"
    );
    assert_eq!(spool.stats().disk_bytes, small_end);
    for (i, (e, p)) in held.iter().enumerate() {
        assert_eq!(spool.read(e).unwrap(), p, "entry {i} reads back");
    }

    // Space is freed: the retry succeeds where the refused record would have gone.
    std::fs::remove_file(&filler).unwrap();
    let e = spool.try_enqueue(data, wake, flush).unwrap();
    let Enqueued::Spilled(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(
        e.location(),
        EntryLocation::Disk {
            segment: 0,
            offset: small_end,
            len: big.len() as u64
        }
    );
    assert_eq!(spool.read(&e).unwrap(), big);
    held.push((e, big));
    let mut want: Vec<String> = (0..10).map(|i| format!("wake {i}")).collect();
    want.push("wake big".into());
    assert_eq!(log.take(), want, "exactly the stored entries were woken");

    for (e, _) in held {
        spool.release(e);
    }
    let mut want: Vec<String> = (0..10).map(|i| format!("flush {i}")).collect();
    want.push("flush big".into());
    assert_eq!(log.take(), want);
    let s = spool.stats();
    assert_eq!(
        (s.memory_bytes, s.disk_bytes, s.entries, s.buffered_bytes),
        (0, 0, 0, 0)
    );
    spool.close().unwrap();
}

#[test]
fn buffered_records_survive_a_full_disk_and_enqueue_waits_until_releases_make_room() {
    let Some((_dir, fs)) = mount() else {
        return;
    };
    // 512 KiB segments: releasing the oldest entries deletes a whole segment file.
    let segment_size = 512 * KIB;
    let (spool, _r) = open(fs.path(), segment_size);
    let log = Log::default();

    // Spill until the file system says no. Sizes alternate between copied and shared payloads.
    let mut held: Vec<(usize, Entry, Bytes)> = Vec::new();
    let refused = loop {
        let tag = held.len();
        assert!(
            (tag as u64) < 2 * FS_SIZE / 3000,
            "never refused after {tag} entries"
        );
        let p = payload(tag, if tag % 3 == 0 { 9000 } else { 3000 });
        match spool
            .try_enqueue(
                p.clone(),
                log.cb(format!("wake {tag}")),
                log.cb(format!("flush {tag}")),
            )
            .unwrap()
        {
            Enqueued::Spilled(e) => held.push((tag, e, p)),
            Enqueued::WaitForDiskQuota {
                data,
                wake,
                flush,
                generation,
            } => {
                assert_eq!(data, p, "the payload comes back whole");
                assert!(wake.is_some() && flush.is_some());
                break (tag, data, wake, flush, generation);
            }
            other => panic!("{other:?}"),
        }
    };
    let (tag, data, wake, flush, generation) = refused;
    assert!(
        !log.has(&format!("wake {tag}")),
        "the refused entry is not woken"
    );
    let accepted: u64 = held.iter().map(|(_, _, p)| H + p.len() as u64).sum();
    let s = spool.stats();
    assert_eq!((s.entries, s.disk_bytes), (held.len() as u64, accepted));
    assert!(
        s.buffered_bytes > 0 && s.buffered_bytes <= 2 * WRITE_BUFFER_SIZE,
        "the chunk that found no room is kept in memory: {s:?}"
    );
    assert!(
        fs.free() < segment_size,
        "refused only once the file system is full: {} bytes free",
        fs.free()
    );
    // Every accepted byte reads back: from the segment files or from the kept chunk.
    for (t, e, p) in &held {
        assert_eq!(&spool.read(e).unwrap(), p, "entry {t}");
    }
    assert!(
        matches!(
            spool.try_enqueue(data.clone(), None, None).unwrap(),
            Enqueued::WaitForDiskQuota { .. }
        ),
        "still full: the retry of the kept chunk fails again"
    );
    assert!(
        matches!(spool.write_buffered(), Err(SpoolError::DiskFull { segment, .. })
            if segment > 0),
        "writing the buffer out names the segment and the lack of space"
    );

    // Release the entries of the two oldest segments: their files are deleted, space comes back.
    let oldest = held
        .iter()
        .take_while(
            |(_, e, _)| matches!(e.location(), EntryLocation::Disk { segment, .. } if segment < 2),
        )
        .count();
    assert!(oldest > 0);
    for (_, e, _) in held.drain(..oldest) {
        spool.release(e);
    }
    assert!(!segment_path(&spool, 0).exists() && !segment_path(&spool, 1).exists());
    assert!(fs.free() >= 2 * segment_size - 64 * KIB);
    assert!(
        spool.space_generation() > generation,
        "the waiter of the refusal is woken"
    );
    let e = spool.try_enqueue(data.clone(), wake, flush).unwrap();
    let Enqueued::Spilled(e) = e else {
        panic!("{e:?}")
    };
    assert!(log.has(&format!("wake {tag}")), "accepted now, and woken");
    assert_eq!(spool.read(&e).unwrap(), data);
    held.push((tag, e, data));
    spool.write_buffered().unwrap();
    assert_eq!(
        spool.stats().buffered_bytes,
        0,
        "the kept chunk reached its file"
    );
    for (t, e, p) in &held {
        assert_eq!(&spool.read(e).unwrap(), p, "entry {t} after the retry");
    }

    // Release everything: every stored entry is flushed once, nothing else; nothing is left.
    let stored = tag + 1;
    for (_, e, _) in held {
        spool.release(e);
    }
    let mut flushed: Vec<usize> = log
        .take()
        .iter()
        .filter_map(|n| n.strip_prefix("flush ").map(|t| t.parse().unwrap()))
        .collect();
    flushed.sort_unstable();
    assert_eq!(flushed, (0..stored).collect::<Vec<_>>());
    let s = spool.stats();
    assert_eq!(
        (
            s.memory_bytes,
            s.disk_bytes,
            s.entries,
            s.disk_quota_waiters
        ),
        (0, 0, 0, 0)
    );
    spool.close().unwrap();
    assert_eq!(
        fs.free(),
        FS_SIZE,
        "close leaves nothing on the file system"
    );
}

#[test]
fn a_spool_that_was_refused_for_space_works_again_once_everything_is_released() {
    let Some((_dir, fs)) = mount() else {
        return;
    };
    // One segment for everything: releasing some entries frees no file space, only releasing
    // all of them does (the buffer of a fully released segment is dropped unwritten).
    let (spool, _r) = open(fs.path(), 64 * MIB);
    let filler = fill(&fs, 0);
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() < 2000, "never refused");
        let p = payload(held.len(), 2000);
        match spool.try_enqueue(p.clone(), None, None).unwrap() {
            Enqueued::Spilled(e) => held.push((e, p)),
            Enqueued::WaitForDiskQuota { data, .. } => break data,
            other => panic!("{other:?}"),
        }
    };
    assert!(
        !held.is_empty(),
        "records are taken into the write buffer before the disk is touched"
    );
    for (e, p) in &held {
        assert_eq!(&spool.read(e).unwrap(), p, "served from memory");
    }
    let (first, _) = held.remove(0);
    spool.release(first);
    assert!(
        matches!(
            spool.try_enqueue(refused.clone(), None, None).unwrap(),
            Enqueued::WaitForDiskQuota { .. }
        ),
        "releasing one of many frees no file space: still waiting"
    );
    for (e, _) in held.drain(..) {
        spool.release(e);
    }
    assert_eq!(
        spool.stats().buffered_bytes,
        0,
        "the kept chunk of released records is dropped unwritten, not retried"
    );
    // Still full, but nothing is left to retry: the record is taken into the buffer again.
    let e = spool.try_enqueue(refused.clone(), None, None).unwrap();
    let Enqueued::Spilled(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(
        e.location(),
        EntryLocation::Disk {
            segment: 0,
            offset: 0,
            len: refused.len() as u64
        },
        "the released segment is reused from offset 0"
    );
    assert!(
        matches!(
            spool.write_buffered(),
            Err(SpoolError::DiskFull { segment: 0, .. })
        ),
        "the file system is still full"
    );
    assert_eq!(spool.read(&e).unwrap(), refused, "served from memory");
    std::fs::remove_file(&filler).unwrap();
    spool.write_buffered().unwrap();
    assert_eq!(spool.stats().buffered_bytes, 0);
    assert_eq!(file_len(&segment_path(&spool, 0)), H + refused.len() as u64);
    assert_eq!(spool.read(&e).unwrap(), refused);
    spool.release(e);
    let s = spool.stats();
    assert_eq!((s.memory_bytes, s.disk_bytes, s.entries), (0, 0, 0));
    spool.close().unwrap();
}
