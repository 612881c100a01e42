//! Behaviour of the spool through its public API: placement, wake hysteresis, release and drop,
//! segment lifecycle, scratch directory, disk-quota waits, metrics.

use crate::support;

use bytes::Bytes;
use cdc_spool::segment::segment_file_name;
use cdc_spool::{Callback, Enqueued, EntryLocation, Spool, SpoolConfig, SpoolError};
use std::time::Duration;
use support::{open, segment_files, spool_config, Log, H};

fn config(dir: &std::path::Path, mem: u64, disk: u64, high: u64, low: u64) -> SpoolConfig {
    spool_config(dir, mem, disk, high, low)
        .segment_size(1 << 20)
        .build()
        .unwrap()
}

#[test]
fn entries_fill_memory_then_spill_then_ask_to_wait_for_disk_quota() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = open(config(tmp.path(), 100, 2 * (H + 50), 10_000, 1));
    let a = spool.try_enqueue(vec![1u8; 60], None, None).unwrap();
    let b = spool.try_enqueue(vec![2u8; 40], None, None).unwrap();
    assert!(matches!(a, Enqueued::InMemory(_)));
    assert!(
        matches!(b, Enqueued::InMemory(_)),
        "exactly at the memory quota"
    );
    let c = spool.try_enqueue(vec![3u8; 50], None, None).unwrap();
    let d = spool.try_enqueue(vec![4u8; 50], None, None).unwrap();
    assert!(matches!(c, Enqueued::Spilled(_)));
    assert!(
        matches!(d, Enqueued::Spilled(_)),
        "exactly at the disk quota"
    );
    let log = Log::default();
    let e = spool
        .try_enqueue(vec![5u8; 1], log.cb("wake"), log.cb("flush"))
        .unwrap();
    let Enqueued::WaitForDiskQuota {
        data,
        wake,
        flush,
        generation,
    } = e
    else {
        panic!("expected WaitForDiskQuota, got {e:?}")
    };
    assert_eq!(data, Bytes::from(vec![5u8; 1]));
    assert!(
        wake.is_some() && flush.is_some(),
        "callbacks are handed back"
    );
    assert!(log.take().is_empty(), "and not run");
    let s = spool.stats();
    assert_eq!((s.memory_bytes, s.disk_bytes), (100, 2 * (H + 50)));
    assert_eq!((s.memory_entries, s.disk_entries, s.entries), (2, 2, 4));

    let c = c.into_entry().unwrap();
    assert_eq!(
        c.location(),
        EntryLocation::Disk {
            segment: 0,
            offset: 0,
            len: 50
        }
    );
    assert_eq!(spool.read(&c).unwrap(), Bytes::from(vec![3u8; 50]));
    spool.release(c);
    assert!(spool.wait_for_space_since(generation, Duration::ZERO));
    let again = spool.try_enqueue(data, wake, flush).unwrap();
    assert!(matches!(again, Enqueued::Spilled(_)));
    drop((a, b, d, again));
    let s = spool.stats();
    assert_eq!((s.memory_bytes, s.disk_bytes, s.entries), (0, 0, 0));
}

#[test]
fn an_entry_larger_than_the_disk_quota_is_admitted_only_when_the_disk_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = open(config(tmp.path(), 10, 100, 10_000, 1));
    let small = spool.try_enqueue(vec![0u8; 20], None, None).unwrap();
    assert!(matches!(small, Enqueued::Spilled(_)));
    let big = spool.try_enqueue(vec![7u8; 500], None, None).unwrap();
    let Enqueued::WaitForDiskQuota { data, .. } = big else {
        panic!("disk not empty: must wait, got {big:?}")
    };
    spool.release(small.into_entry().unwrap());
    let big = spool.try_enqueue(data, None, None).unwrap();
    let Enqueued::Oversized(big) = big else {
        panic!("expected Oversized, got {big:?}")
    };
    assert_eq!(spool.stats().disk_bytes, 500 + H);
    assert_eq!(spool.stats().memory_bytes, 0, "never in memory");
    assert_eq!(spool.read(&big).unwrap(), Bytes::from(vec![7u8; 500]));
    let next = spool.try_enqueue(vec![1u8; 20], None, None).unwrap();
    assert!(matches!(next, Enqueued::WaitForDiskQuota { .. }));
}

#[test]
fn wakes_run_at_once_up_to_the_high_watermark_then_wait_for_the_low_one_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    // high 100, low 40; memory 1000 so nothing spills
    let (spool, _r) = open(config(tmp.path(), 1000, 1000, 100, 40));
    let log = Log::default();
    let e1 = spool.try_enqueue(vec![0; 60], log.cb("w1"), None).unwrap();
    let e2 = spool.try_enqueue(vec![0; 40], log.cb("w2"), None).unwrap();
    assert_eq!(
        log.take(),
        ["w1", "w2"],
        "total 100 = high: still runs at once"
    );
    let e3 = spool.try_enqueue(vec![0; 1], log.cb("w3"), None).unwrap();
    assert!(log.take().is_empty(), "101 > high: held");
    let s = spool.stats();
    assert!(s.holding);
    assert_eq!(s.held_wakes, 1);
    spool.release(e1.into_entry().unwrap()); // total 41
    let e4 = spool.try_enqueue(vec![0; 1], log.cb("w4"), None).unwrap();
    let e5 = spool.try_enqueue(vec![0; 1], None, None).unwrap();
    let e6 = spool.try_enqueue(vec![0; 1], log.cb("w6"), None).unwrap();
    assert!(
        log.take().is_empty(),
        "total 44 is below high but above low: hysteresis keeps holding"
    );
    assert_eq!(spool.stats().held_wakes, 3);
    drop(e3); // total 43
    drop(e5); // total 42
    assert!(log.take().is_empty());
    spool.release(e4.into_entry().unwrap()); // total 41
    assert!(log.take().is_empty());
    drop(e6); // total 40 = low
    assert_eq!(log.take(), ["w3", "w4", "w6"], "released in arrival order");
    let s = spool.stats();
    assert!(!s.holding);
    assert_eq!(s.held_wakes, 0);
    let _e7 = spool.try_enqueue(vec![0; 1], log.cb("w7"), None).unwrap();
    assert_eq!(log.take(), ["w7"], "flowing again");
    drop(e2);
}

#[test]
fn spilled_entries_count_towards_the_watermarks_with_their_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = open(config(tmp.path(), 10, 1000, 10 + 2 * (H + 20), 10));
    let log = Log::default();
    let _m = spool.try_enqueue(vec![0; 10], log.cb("m"), None).unwrap();
    let d1 = spool.try_enqueue(vec![0; 20], log.cb("d1"), None).unwrap();
    let d2 = spool.try_enqueue(vec![0; 20], log.cb("d2"), None).unwrap();
    assert_eq!(log.take(), ["m", "d1", "d2"]);
    let d3 = spool.try_enqueue(vec![0; 1], log.cb("d3"), None).unwrap();
    assert!(matches!(d3, Enqueued::Spilled(_)), "memory is full");
    assert!(
        log.take().is_empty(),
        "10 + 2 x 28 + 9 > high: the header counts"
    );
    drop((d1, d2));
    assert!(log.take().is_empty(), "total 19 > low 10");
    drop(d3);
    assert_eq!(log.take(), ["d3"]);
}

#[test]
fn release_runs_the_flush_callback_and_drop_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = open(config(tmp.path(), 10, 1000, 10_000, 1));
    let log = Log::default();
    let a = spool.try_enqueue(vec![0; 5], None, log.cb("fa")).unwrap();
    let b = spool.try_enqueue(vec![0; 50], None, log.cb("fb")).unwrap();
    let c = spool.try_enqueue(vec![0; 50], None, log.cb("fc")).unwrap();
    assert!(log.take().is_empty());
    spool.release(b.into_entry().unwrap());
    drop(a);
    spool.release(c.into_entry().unwrap());
    assert_eq!(log.take(), ["fb", "fc"]);
    let s = spool.stats();
    assert_eq!((s.memory_bytes, s.disk_bytes, s.entries), (0, 0, 0));
}

#[test]
fn release_many_runs_every_flush_then_frees_then_runs_the_held_wakes_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    // memory 50 so the batch mixes memory and disk entries; high 100, low 40
    let (spool, _r) = open(config(tmp.path(), 50, 10_000, 100, 40));
    let log = Log::default();
    let mut batch = Vec::new();
    for i in 0..4 {
        let e = spool
            .try_enqueue(
                vec![i as u8; 30],
                log.cb(format!("w{i}")),
                log.cb(format!("f{i}")),
            )
            .unwrap();
        batch.push(e.into_entry().unwrap());
    }
    assert!(!batch[0].is_spilled() && batch[3].is_spilled());
    assert_eq!(
        log.take(),
        ["w0", "w1"],
        "w2 takes the total past high (30 + 38 + 38): held with w3"
    );
    let keep = batch.pop().unwrap(); // total after the batch: 38 <= low
    assert_eq!(spool.stats().disk_entries, 3, "only the first fits memory");
    spool.release_many(batch);
    assert_eq!(
        log.take(),
        ["f0", "f1", "f2", "w2", "w3"],
        "flushes in batch order, then the held wakes in arrival order"
    );
    let s = spool.stats();
    assert_eq!(
        (
            s.memory_entries,
            s.disk_entries,
            s.disk_bytes,
            s.memory_bytes
        ),
        (0, 1, 30 + H, 0)
    );
    assert!(!s.holding);
    spool.release_many(Vec::new());
    spool.release_many([keep]);
    assert_eq!(log.take(), ["f3"]);
    let s = spool.stats();
    assert_eq!(
        (s.entries, s.total_bytes(), s.segments),
        (0, 0, 1),
        "active kept"
    );
}

#[test]
fn release_many_leaves_an_entry_of_another_spool_to_that_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let a = Spool::open(config(tmp.path(), 10, 1000, 1000, 10), "a", &registry).unwrap();
    let b = Spool::open(config(tmp.path(), 10, 1000, 1000, 10), "b", &registry).unwrap();
    let log = Log::default();
    let ea = a.try_enqueue(vec![1; 5], None, log.cb("fa")).unwrap();
    let eb = b.try_enqueue(vec![2; 20], None, log.cb("fb")).unwrap();
    a.release_many([ea.into_entry().unwrap(), eb.into_entry().unwrap()]);
    assert_eq!(log.take(), ["fa", "fb"], "both flush callbacks run");
    assert_eq!(a.stats().entries, 0);
    let sb = b.stats();
    assert_eq!((sb.entries, sb.disk_bytes), (0, 0), "b freed its own entry");
}

#[test]
fn segments_rotate_at_the_size_threshold_and_are_deleted_when_fully_released() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig::builder()
        .dir(tmp.path())
        .memory_quota(1)
        .disk_quota(10_000)
        .watermarks(100_000, 1)
        .segment_size(2 * (H + 100))
        .build()
        .unwrap();
    let (spool, _r) = open(cfg);
    let mut entries = Vec::new();
    for i in 0..5u8 {
        let e = spool.try_enqueue(vec![i; 100], None, None).unwrap();
        entries.push(e.into_entry().unwrap());
    }
    let segs: Vec<_> = entries
        .iter()
        .map(|e| match e.location() {
            EntryLocation::Disk {
                segment, offset, ..
            } => (segment, offset),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(segs, [(0, 0), (0, 108), (1, 0), (1, 108), (2, 0)]);
    assert_eq!(
        segment_files(&spool),
        [0, 1, 2].map(segment_file_name).to_vec()
    );
    let sealed = std::fs::metadata(spool.dir().join(segment_file_name(0))).unwrap();
    assert!(
        sealed.permissions().readonly(),
        "rotation seals the segment"
    );
    let mut it = entries.into_iter();
    let (e0, e1, e2, e3, e4) = (
        it.next().unwrap(),
        it.next().unwrap(),
        it.next().unwrap(),
        it.next().unwrap(),
        it.next().unwrap(),
    );
    spool.release(e0);
    assert_eq!(spool.stats().segments, 3, "segment 0 still holds e1");
    drop(e1);
    assert_eq!(
        segment_files(&spool),
        [1, 2].map(segment_file_name).to_vec()
    );
    spool.release(e4);
    assert_eq!(
        segment_files(&spool),
        [1, 2].map(segment_file_name).to_vec(),
        "the active segment stays"
    );
    let e5 = spool.try_enqueue(vec![5; 100], None, None).unwrap();
    assert_eq!(
        e5.into_entry().unwrap().location(),
        EntryLocation::Disk {
            segment: 2,
            offset: 0,
            len: 100
        },
        "an active segment without live entries is rewritten from offset 0"
    );
    spool.rotate();
    assert_eq!(
        segment_files(&spool),
        [segment_file_name(1)],
        "rotating an active segment with no live entry deletes it"
    );
    drop((e2, e3));
    assert!(segment_files(&spool).is_empty());
    assert_eq!(spool.stats().segments, 0);
}

#[test]
fn open_cleans_leftovers_and_close_removes_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 1, 10_000, 100_000, 1);
    let own = tmp.path().join("cf");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join(segment_file_name(0)), b"left by a crashed process").unwrap();
    std::fs::write(tmp.path().join("neighbour"), b"not ours").unwrap();
    let (spool, registry) = open(cfg.clone());
    assert_eq!(spool.dir(), own);
    assert!(segment_files(&spool).is_empty(), "scratch: cleaned at open");
    let e = spool
        .try_enqueue(vec![1; 10], None, None)
        .unwrap()
        .into_entry()
        .unwrap();
    assert!(e.is_spilled());
    let other = spool.clone();
    spool.close().unwrap();
    assert!(!own.exists(), "close removes the spool's directory");
    assert!(tmp.path().join("neighbour").exists(), "and nothing else");
    assert!(matches!(other.read(&e), Err(SpoolError::Closed)));
    assert!(matches!(
        other.try_enqueue(vec![1], None, None),
        Err(SpoolError::Closed)
    ));
    drop(e);
    // the metrics were unregistered, so the same changefeed can open again on the registry
    let again = Spool::open(cfg, "cf", &registry).unwrap();
    assert_eq!(again.stats().entries, 0);
}

#[test]
fn a_blocked_disk_quota_waiter_wakes_on_release() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = open(config(tmp.path(), 1, H + 10, 100_000, 1));
    let held = spool.try_enqueue(vec![0; 10], None, None).unwrap();
    let Enqueued::WaitForDiskQuota { generation, .. } =
        spool.try_enqueue(vec![0; 10], None, None).unwrap()
    else {
        panic!("disk quota is full")
    };
    assert!(!spool.wait_for_space_since(generation, Duration::from_millis(1)));
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = {
        let spool = spool.clone();
        std::thread::spawn(move || {
            let woke = spool.wait_for_space_since(generation, Duration::from_secs(30));
            let retry = spool.try_enqueue(vec![0; 10], None, None).unwrap();
            tx.send((woke, retry.kind())).unwrap();
        })
    };
    spool.release(held.into_entry().unwrap());
    let (woke, kind) = rx.recv().unwrap();
    waiter.join().unwrap();
    assert!(woke);
    assert_eq!(kind, "spilled");
}

#[test]
fn async_space_callbacks_fire_on_release_at_once_if_late_and_on_close() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = open(config(tmp.path(), 100, 100, 100_000, 1));
    let log = Log::default();
    let g = spool.space_generation();
    let e = spool.try_enqueue(vec![0; 10], None, None).unwrap();
    spool.notify_on_space(g, log.cb("space").unwrap());
    assert_eq!(spool.stats().disk_quota_waiters, 1);
    drop(e);
    assert_eq!(log.take(), ["space"]);
    spool.notify_on_space(g, log.cb("late").unwrap());
    assert_eq!(log.take(), ["late"], "the generation already passed");
    let g = spool.space_generation();
    spool.notify_on_space(g, log.cb("closing").unwrap());
    spool.clone().close().unwrap();
    assert_eq!(log.take(), ["closing"]);
    assert!(!spool.wait_for_space(Duration::from_secs(30)), "closed");
}

#[test]
fn metrics_carry_the_changefeed_label_and_follow_the_accounting() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let a = Spool::open(config(tmp.path(), 10, 1000, 20, 10), "cf-a", &registry).unwrap();
    let b = Spool::open(config(tmp.path(), 10, 1000, 20, 10), "cf-b", &registry).unwrap();
    // (in another directory: in the same one the directory lock refuses it first)
    let other_dir = tmp.path().join("other");
    let dup = Spool::open(config(&other_dir, 10, 1000, 20, 10), "cf-a", &registry);
    assert!(matches!(dup, Err(SpoolError::Metrics(_))));
    let _m = a.try_enqueue(vec![0; 10], None, None).unwrap();
    let _d = a
        .try_enqueue(vec![0; 30], Some(Box::new(|| ())), None)
        .unwrap();
    let value = |name: &str, cf: &str| -> f64 {
        let fam = registry
            .gather()
            .into_iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("{name} not registered"));
        let m = fam
            .get_metric()
            .iter()
            .find(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "changefeed" && l.value() == cf)
            })
            .unwrap_or_else(|| panic!("{name} has no series for {cf}"))
            .clone();
        if m.get_gauge().get_value() != 0.0 {
            m.get_gauge().get_value()
        } else if m.get_counter().get_value() != 0.0 {
            m.get_counter().get_value()
        } else {
            m.get_histogram().get_sample_count() as f64
        }
    };
    assert_eq!(value("cdc_spool_memory_bytes", "cf-a"), 10.0);
    assert_eq!(value("cdc_spool_disk_bytes", "cf-a"), (30 + H) as f64);
    assert_eq!(value("cdc_spool_entries", "cf-a"), 2.0);
    assert_eq!(value("cdc_spool_segments", "cf-a"), 1.0);
    assert_eq!(value("cdc_spool_held_wakes", "cf-a"), 1.0);
    assert_eq!(
        value("cdc_spool_spill_bytes_total", "cf-a"),
        (30 + H) as f64
    );
    assert_eq!(value("cdc_spool_memory_bytes", "cf-b"), 0.0);
    let full = SpoolConfig::builder()
        .dir(tmp.path())
        .memory_quota(1)
        .disk_quota(1)
        .watermarks(20, 10)
        .build()
        .unwrap();
    drop(b);
    let c = Spool::open(full, "cf-c", &registry).unwrap();
    let _big = c.try_enqueue(vec![0; 30], None, None).unwrap();
    let w = c.try_enqueue(vec![0; 30], None, None).unwrap();
    assert!(matches!(w, Enqueued::WaitForDiskQuota { .. }));
    assert!(!c.wait_for_space(Duration::from_millis(1)));
    assert_eq!(value("cdc_spool_disk_quota_rejections_total", "cf-c"), 1.0);
    assert_eq!(value("cdc_spool_disk_quota_wait_seconds", "cf-c"), 1.0);
    let names: Vec<String> = registry
        .gather()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    assert!(names.contains(&"cdc_spool_disk_quota_waiters".to_string()));
}

#[test]
fn an_entry_of_another_spool_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let a = Spool::open(config(tmp.path(), 10, 1000, 20, 10), "a", &registry).unwrap();
    let b = Spool::open(config(tmp.path(), 10, 1000, 20, 10), "b", &registry).unwrap();
    let e = a
        .try_enqueue(vec![1], None, None)
        .unwrap()
        .into_entry()
        .unwrap();
    assert!(matches!(
        b.read(&e),
        Err(SpoolError::InvalidParameter { .. })
    ));
}

#[test]
fn a_failed_spill_is_an_io_error_naming_the_file_and_leaves_the_accounting_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = open(config(tmp.path(), 10, 10_000, 100_000, 1));
    let log = Log::default();
    let m = spool.try_enqueue(vec![0; 10], None, None).unwrap();
    let before = spool.stats();
    // the directory vanishes under the spool: creating the first segment fails
    std::fs::remove_dir_all(spool.dir()).unwrap();
    let err = spool
        .try_enqueue(vec![1; 20], log.cb("wake"), log.cb("flush"))
        .unwrap_err();
    let want = spool.dir().join(segment_file_name(0));
    assert!(
        matches!(&err, SpoolError::Io { path, source }
            if *path == want && source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert_eq!(spool.stats(), before);
    assert!(
        log.take().is_empty(),
        "a refused entry is never acknowledged"
    );
    // the next spill retries the creation
    std::fs::create_dir_all(spool.dir()).unwrap();
    let e = spool
        .try_enqueue(vec![1; 20], log.cb("wake"), None)
        .unwrap();
    assert!(matches!(e, Enqueued::Spilled(_)));
    assert_eq!(log.take(), ["wake"]);
    drop((m, e));
    assert_eq!(spool.stats().total_bytes(), 0);
}

#[test]
fn callbacks_run_outside_the_lock_so_they_may_call_back_into_the_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = open(config(tmp.path(), 1000, 1000, 10, 5));
    let (tx, rx) = std::sync::mpsc::channel();
    let reentrant = |spool: &Spool, tx: &std::sync::mpsc::Sender<u64>| -> Option<Callback> {
        let (spool, tx) = (spool.clone(), tx.clone());
        Some(Box::new(move || {
            tx.send(spool.stats().total_bytes()).unwrap()
        }))
    };
    let a = spool
        .try_enqueue(vec![0; 8], reentrant(&spool, &tx), reentrant(&spool, &tx))
        .unwrap();
    assert_eq!(
        rx.try_recv(),
        Ok(8),
        "wake ran at once and could read the stats"
    );
    let b = spool
        .try_enqueue(vec![0; 8], reentrant(&spool, &tx), None)
        .unwrap();
    assert!(rx.try_recv().is_err(), "16 > high: held");
    spool.release(a.into_entry().unwrap());
    assert_eq!(
        rx.try_recv(),
        Ok(16),
        "the flush callback runs before the bytes are freed"
    );
    assert!(
        rx.try_recv().is_err(),
        "total 8 > low 5: the wake stays held"
    );
    drop(b);
    assert_eq!(
        rx.try_recv(),
        Ok(0),
        "the held wake runs after the lock is dropped and sees the freed total"
    );
}

#[test]
fn dropping_the_last_handle_and_entry_without_close_removes_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, registry) = open(config(tmp.path(), 1, 1000, 10_000, 1));
    let e = spool.try_enqueue(vec![1; 10], None, None).unwrap();
    let dir = spool.dir().to_path_buf();
    drop(spool);
    assert!(dir.exists(), "an entry still refers to the spool");
    drop(e);
    assert!(!dir.exists());
    assert!(
        Spool::open(config(tmp.path(), 1, 1000, 10_000, 1), "cf", &registry).is_ok(),
        "and its metrics were unregistered"
    );
}

/// Set in a child process (see [`a_second_process_cannot_take_a_live_spool_directory`]): the
/// directory the child opens its spool in.
const CHILD_SPOOL_DIR: &str = "CDC_SPOOL_TEST_CHILD_DIR";

/// Runs only as the child of the two-process test: opens the spool of changefeed `cf` in the
/// parent's directory and prints what happened.
#[test]
fn child_process_opens_the_spool() {
    let Ok(dir) = std::env::var(CHILD_SPOOL_DIR) else {
        return; // not the child: nothing to do
    };
    let cfg = config(std::path::Path::new(&dir), 1, 10_000, 100_000, 1);
    match Spool::open(cfg, "cf", &prometheus::Registry::new()) {
        Ok(_) => println!("CHILD-OPENED"),
        Err(e) if e.is_in_use() => println!("CHILD-IN-USE: {e}"),
        Err(e) => println!("CHILD-ERROR: {e}"),
    }
}

fn open_in_child_process(dir: &std::path::Path) -> String {
    // The test's name as libtest knows it: its module path without the crate's name.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let name = if module.is_empty() {
        "child_process_opens_the_spool".to_string()
    } else {
        format!("{module}::child_process_opens_the_spool")
    };
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(CHILD_SPOOL_DIR, dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_second_process_cannot_take_a_live_spool_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _r) = open(config(tmp.path(), 1, 10_000, 100_000, 1));
    let e = spool
        .try_enqueue(vec![7; 10], None, None)
        .unwrap()
        .into_entry()
        .unwrap();
    assert!(e.is_spilled());
    let before = segment_files(&spool);
    assert!(!before.is_empty());

    let child = open_in_child_process(tmp.path());
    assert!(
        child.contains("CHILD-IN-USE") && child.contains("spool-dir"),
        "the second process is refused with a clear error: {child}"
    );
    assert_eq!(
        segment_files(&spool),
        before,
        "the first process's segments are untouched"
    );
    assert_eq!(spool.read(&e).unwrap().as_ref(), &[7u8; 10][..]);
    // in the same process, a second open is refused the same way
    let second = Spool::open(
        config(tmp.path(), 1, 10_000, 100_000, 1),
        "cf",
        &prometheus::Registry::new(),
    );
    assert!(matches!(second, Err(SpoolError::InUse { .. })));
    assert_eq!(segment_files(&spool), before);

    // once the first spool is closed, the directory is free again
    drop(e);
    spool.close().unwrap();
    let child = open_in_child_process(tmp.path());
    assert!(child.contains("CHILD-OPENED"), "after close: {child}");
}

/// Holds `<dir>/cf.lock` the way a copy of a closed spool's descriptor does in a child that has
/// forked and not yet exec'd: the same lock, taken through another open file, let go after
/// `hold`. A `hold` of `None` keeps it for the test's life (a live owner).
fn hold_lock(dir: &std::path::Path, hold: Option<Duration>) -> std::thread::JoinHandle<()> {
    std::fs::create_dir_all(dir).unwrap();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("cf.lock"))
        .unwrap();
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    std::thread::spawn(move || {
        match hold {
            Some(d) => std::thread::sleep(d),
            None => std::thread::sleep(Duration::from_secs(3600)),
        }
        drop(file);
    })
}

#[test]
fn a_lock_let_go_within_moments_is_waited_for_and_a_kept_one_is_refused() {
    // Let go well inside the wait: the open takes the directory.
    let tmp = tempfile::tempdir().unwrap();
    let _holder = hold_lock(tmp.path(), Some(cdc_spool::LOCK_WAIT / 5));
    let opened = Spool::open(
        config(tmp.path(), 1, 10_000, 100_000, 1),
        "cf",
        &prometheus::Registry::new(),
    );
    assert!(opened.is_ok(), "{:?}", opened.err());
    opened.unwrap().close().unwrap();

    // Kept: refused once the wait is over, and not before it.
    let tmp = tempfile::tempdir().unwrap();
    let _holder = hold_lock(tmp.path(), None);
    let started = std::time::Instant::now();
    let refused = Spool::open(
        config(tmp.path(), 1, 10_000, 100_000, 1),
        "cf",
        &prometheus::Registry::new(),
    );
    assert!(matches!(refused, Err(SpoolError::InUse { .. })));
    assert!(started.elapsed() >= cdc_spool::LOCK_WAIT);
}
