//! Writer rule 7 (docs/format.md): a data file of a table without a primary key never ends
//! inside a commit ts, while a keyed table's files are still cut at `file-size`
//! (`sink/src/keyless_cut.rs`).

mod support;

use cdc_common::codec::DecodedRow;
use cdc_common::layout::DataFile;
use cdc_common::{ColumnDef, ColumnType, TableDef, Ts};
use cdc_sink::FileNaming;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// The warnings every test of this binary logged (one subscriber for the binary).
fn warnings() -> &'static Arc<Mutex<Vec<u8>>> {
    captured_logs(tracing_subscriber::filter::LevelFilter::WARN)
}

/// Hands dispatcher `d` one event per `e` in `events`, all at commit ts `at`, each of `rows`
/// rows numbered from `e * rows`, each with a flush callback from `flush`.
fn hand_in(
    h: &Harness,
    d: &str,
    t: &Arc<TableDef>,
    at: Ts,
    events: std::ops::Range<i64>,
    rows: usize,
    flush: &impl Fn() -> cdc_sink::Callback,
) {
    for e in events {
        h.sink
            .add_dml_event(
                d,
                event(t, at, d, e * rows as i64, rows),
                None,
                Some(flush()),
            )
            .unwrap();
    }
}

/// `s.<name>` with the columns of [`table`] but no primary key.
fn keyless(name: &str) -> Arc<TableDef> {
    Arc::new(TableDef {
        schema: "s".into(),
        table: name.into(),
        table_id: 2,
        version: ts(0),
        columns: vec![
            ColumnDef::new("id", ColumnType::BigInt),
            ColumnDef::new("d", ColumnType::VarChar),
            ColumnDef::new("seq", ColumnType::BigInt),
            ColumnDef::new("payload", ColumnType::VarChar),
        ],
    })
}

/// Per commit ts of `table`'s rows: the data files (by index) holding some of them.
fn files_per_ts(files: &[(DataFile, Vec<DecodedRow>)], table: &str) -> BTreeMap<Ts, BTreeSet<u64>> {
    let mut out: BTreeMap<Ts, BTreeSet<u64>> = BTreeMap::new();
    for (f, rows) in files.iter().filter(|(f, _)| f.dir.table == table) {
        for r in rows {
            let t = r.commit_ts.expect("include-commit-ts=true");
            out.entry(t).or_default().insert(f.index);
        }
    }
    out
}

/// Every data file `h` wrote of `tables`, decoded.
async fn written(h: &Harness, tables: &[&Arc<TableDef>]) -> Vec<(DataFile, Vec<DecodedRow>)> {
    let defs: BTreeMap<String, Arc<TableDef>> = tables
        .iter()
        .map(|t| (t.table.clone(), Arc::clone(t)))
        .collect();
    read_data_files(h.store.inner(), &h.options, &defs).await
}

/// The `seq` column of `table`'s rows, in file order.
fn seqs(files: &[(DataFile, Vec<DecodedRow>)], table: &str) -> Vec<i64> {
    files
        .iter()
        .filter(|(f, _)| f.dir.table == table)
        .flat_map(|(_, rows)| rows.iter().map(|r| row_key(r).1))
        .collect()
}

/// Four transactions of 30 events (3 rows each, about 4 file sizes per transaction), handed
/// in with pauses longer than the flush interval, to a keyless and a keyed table side by side.
/// The keyless table's files hold whole transactions; the keyed table's are cut inside them.
/// The last keyless transaction waits for the checkpoint that says it is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_tables_files_hold_whole_commit_ts_runs() {
    let h = harness(
        "protocol=csv&include-commit-ts=true&flush-interval=20ms&file-size=1KiB&date-separator=none",
    )
    .await;
    let k = keyless("k");
    let p = table("p", ts(0));
    h.sink.add_dispatcher("dk", FileNaming::Table).unwrap();
    h.sink.add_dispatcher("dp", FileNaming::Table).unwrap();
    let (flushed_k, flush_k) = counter();
    let (flushed_p, flush_p) = counter();
    const TXNS: u64 = 4;
    const EVENTS: i64 = 30;
    let mut seq = 0i64;
    for txn in 0..TXNS {
        let at = ts(10 + txn);
        for e in 0..EVENTS {
            h.sink
                .add_dml_event("dk", event(&k, at, "dk", seq, 3), None, Some(flush_k()))
                .unwrap();
            h.sink
                .add_dml_event("dp", event(&p, at, "dp", seq, 3), None, Some(flush_p()))
                .unwrap();
            seq += 3;
            if e % 6 == 5 {
                // Longer than the flush interval: interval flushes fall inside the transaction.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
    let total = (TXNS as usize) * EVENTS as usize;
    // The keyed table is published whole; the keyless table's last transaction is not known
    // complete (no later ts, no checkpoint at it), so it stays open over several intervals.
    assert!(wait_for(5, || flushed_p.load(Ordering::SeqCst) == total).await);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        flushed_k.load(Ordering::SeqCst),
        total - EVENTS as usize,
        "the keyless table's last transaction is kept open until known complete"
    );
    // The checkpoint at its ts says every event at or below it was handed in.
    h.sink.checkpoint(ts(10 + TXNS - 1)).await.unwrap();
    assert!(
        wait_for(5, || flushed_k.load(Ordering::SeqCst) == total).await,
        "published after the checkpoint reached its ts: {} of {total}",
        flushed_k.load(Ordering::SeqCst)
    );
    let deferred = metric(&h.registry, "cdc_sink_file_cut_deferred_total", &[]);
    assert!(deferred > 0.0, "some flush kept a run back");
    assert_eq!(
        metric(&h.registry, "cdc_sink_file_cut_forced_total", &[]),
        0.0
    );
    h.sink.close().await.unwrap();

    let files = written(&h, &[&k, &p]).await;
    let all: Vec<i64> = (0..seq).collect();
    assert_eq!(seqs(&files, "k"), all, "keyless rows: each once, in order");
    assert_eq!(seqs(&files, "p"), all, "keyed rows: each once, in order");

    let keyless_ts = files_per_ts(&files, "k");
    assert_eq!(keyless_ts.len(), TXNS as usize);
    for (t, in_files) in &keyless_ts {
        assert_eq!(in_files.len(), 1, "keyless ts {t} spans files {in_files:?}");
    }
    let keyed_ts = files_per_ts(&files, "p");
    assert!(
        keyed_ts.values().any(|f| f.len() > 1),
        "the keyed table is still cut at file-size: {keyed_ts:?}"
    );
    // A whole transaction is larger than file-size: its file is too.
    let keyless_files = files.iter().filter(|(f, _)| f.dir.table == "k").count();
    let keyed_files = files.iter().filter(|(f, _)| f.dir.table == "p").count();
    assert!(
        keyless_files <= TXNS as usize && keyed_files > 2 * TXNS as usize,
        "keyless files {keyless_files}, keyed files {keyed_files}"
    );
}

/// A later commit ts of the dispatcher closes the run before it: a file-size flush publishes
/// everything up to the new ts at once, without waiting for a checkpoint or an interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_commit_ts_completes_the_run_before_it() {
    let h = harness(
        "protocol=csv&include-commit-ts=true&flush-interval=600s&file-size=1KiB&date-separator=none",
    )
    .await;
    let k = keyless("k");
    h.sink.add_dispatcher("dk", FileNaming::Table).unwrap();
    let (flushed, flush) = counter();
    hand_in(&h, "dk", &k, ts(5), 0..20, 3, &flush);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        flushed.load(Ordering::SeqCst),
        0,
        "one transaction still arriving, past file-size: nothing published"
    );
    h.sink
        .add_dml_event("dk", event(&k, ts(6), "dk", 60, 3), None, Some(flush()))
        .unwrap();
    assert!(
        wait_for(5, || flushed.load(Ordering::SeqCst) == 20).await,
        "the run at ts 5 is published when ts 6 arrives: {}",
        flushed.load(Ordering::SeqCst)
    );
    assert_eq!(
        metric(&h.registry, "cdc_sink_file_cut_deferred_total", &[]),
        1.0,
        "one flush kept the new ts back"
    );
    // Close publishes only runs known complete.
    h.sink.mark_resolved(ts(6));
    h.sink.close().await.unwrap();
    let files = written(&h, &[&k]).await;
    let per_ts = files_per_ts(&files, "k");
    assert_eq!(per_ts.len(), 2);
    assert!(per_ts.values().all(|f| f.len() == 1), "{per_ts:?}");
    assert_eq!(seqs(&files, "k"), (0..63).collect::<Vec<_>>());
}

/// A transaction larger than the spool's high watermark, never completed (no later ts, no
/// checkpoint): keeping it back would hold the spool's wakes for good, so the writer publishes
/// it anyway, counted as a forced cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_pressure_publishes_a_kept_run() {
    let (h, _spool) = harness_with_small_spool(
        "protocol=csv&include-commit-ts=true&flush-interval=20ms&file-size=1KiB&date-separator=none",
        16 << 10,
        8 << 10,
        4 << 10,
    )
    .await;
    let k = keyless("k");
    h.sink.add_dispatcher("dk", FileNaming::Table).unwrap();
    let (flushed, flush) = counter();
    hand_in(&h, "dk", &k, ts(5), 0..100, 3, &flush);
    assert!(
        wait_for(5, || flushed.load(Ordering::SeqCst) == 100).await,
        "published under pressure: {}",
        flushed.load(Ordering::SeqCst)
    );
    assert!(metric(&h.registry, "cdc_sink_file_cut_forced_total", &[]) > 0.0);
    h.sink.close().await.unwrap();
}

mod model {
    //! Random interleavings of multi-event transactions, pauses (interval flushes), file-size
    //! flushes, checkpoints and drains, over two keyless and two keyed tables: every keyless
    //! commit ts lands in exactly one file, and every dispatcher's rows arrive once, in order,
    //! except a keyless dispatcher's last transaction not known complete at close (dropped).

    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Action {
        /// An event of dispatcher `d`; `same_ts`: in the transaction of the last ts when no
        /// checkpoint or drain sealed it.
        Add {
            d: usize,
            rows: usize,
            same_ts: bool,
        },
        Checkpoint,
        Drain {
            d: usize,
        },
        Pause {
            ms: u64,
        },
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            8 => (0..4usize, 1..8usize, prop::bool::weighted(0.8))
                .prop_map(|(d, rows, same_ts)| Action::Add { d, rows, same_ts }),
            1 => Just(Action::Checkpoint),
            1 => (0..4usize).prop_map(|d| Action::Drain { d }),
            2 => (0..25u64).prop_map(|ms| Action::Pause { ms }),
        ]
    }

    fn run(actions: Vec<Action>) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let h = harness(
                "protocol=csv&include-commit-ts=true&flush-interval=10ms&file-size=1KiB&date-separator=none",
            )
            .await;
            // d0, d1: keyless tables; d2, d3: keyed tables.
            let tables: Vec<Arc<TableDef>> = (0..4)
                .map(|i| {
                    if i < 2 {
                        keyless(&format!("t{i}"))
                    } else {
                        table(&format!("t{i}"), ts(0))
                    }
                })
                .collect();
            for d in 0..4 {
                h.sink
                    .add_dispatcher(&format!("d{d}"), FileNaming::Table)
                    .unwrap();
            }
            let mut sent = [0i64; 4];
            // Per dispatcher: the ts of its last event and the first seq at that ts, and
            // whether a drain of it came after that event (its run was published then).
            let mut last = [(ts(0), 0i64, true); 4];
            let mut checkpointed = ts(0);
            let mut clock = 1u64;
            let mut sealed = true;
            for a in actions {
                match a {
                    Action::Add { d, rows, same_ts } => {
                        if sealed || !same_ts {
                            clock += 1;
                            sealed = false;
                        }
                        let id = format!("d{d}");
                        let ev = event(&tables[d], ts(clock), &id, sent[d], rows);
                        h.sink.add_dml_event(&id, ev, None, None).unwrap();
                        if last[d].0 != ts(clock) || last[d].2 {
                            last[d] = (ts(clock), sent[d], false);
                        }
                        sent[d] += rows as i64;
                    }
                    Action::Checkpoint => {
                        h.sink.checkpoint(ts(clock)).await.unwrap();
                        checkpointed = ts(clock);
                        sealed = true;
                    }
                    Action::Drain { d } => {
                        clock += 1;
                        sealed = true;
                        let ddl = barrier_ddl(ts(clock));
                        h.sink
                            .pass_block_event(&ddl, &[&format!("d{d}")])
                            .await
                            .unwrap();
                        last[d].2 = true;
                    }
                    Action::Pause { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
                }
            }
            assert_eq!(
                metric(&h.registry, "cdc_sink_file_cut_forced_total", &[]),
                0.0,
                "the spool is large: no forced cut"
            );
            h.sink.close().await.unwrap();
            let files = written(&h, &tables.iter().collect::<Vec<_>>()).await;
            let mut per = seqs_per_dispatcher(&files);
            // Close drops a keyless dispatcher's last run unless it is known complete (a
            // checkpoint at or above it) or a drain published it.
            for (d, n) in sent.iter().enumerate() {
                let (at, first, drained) = last[d];
                let end = if d < 2 && *n > 0 && !drained && at > checkpointed {
                    first
                } else {
                    *n
                };
                let got = per.remove(&format!("d{d}")).unwrap_or_default();
                assert_eq!(got, (0..end).collect::<Vec<_>>(), "d{d}");
            }

            for t in &tables[..2] {
                for (at, in_files) in files_per_ts(&files, &t.table) {
                    assert_eq!(
                        in_files.len(),
                        1,
                        "keyless {} ts {at} spans files {in_files:?}",
                        t.table
                    );
                }
            }
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn keyless_files_hold_whole_commit_ts_under_random_flushes(
            actions in prop::collection::vec(action(), 1..80)
        ) {
            run(actions);
        }
    }
}

/// A caller that checkpoints only behind flush callbacks (the capture) says a transaction is
/// handed in whole with `mark_resolved`: the run is published at the next interval, and no
/// checkpoint is written for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_resolved_completes_a_run_without_a_checkpoint() {
    let h = harness(
        "protocol=csv&include-commit-ts=true&flush-interval=20ms&file-size=1KiB&date-separator=none",
    )
    .await;
    let k = keyless("k");
    h.sink.add_dispatcher("dk", FileNaming::Table).unwrap();
    let (flushed, flush) = counter();
    hand_in(&h, "dk", &k, ts(5), 0..10, 3, &flush);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(flushed.load(Ordering::SeqCst), 0, "not known complete yet");
    h.sink.mark_resolved(ts(4));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(flushed.load(Ordering::SeqCst), 0, "resolved below the run");
    h.sink.mark_resolved(ts(5));
    assert!(
        wait_for(5, || flushed.load(Ordering::SeqCst) == 10).await,
        "published once resolved: {}",
        flushed.load(Ordering::SeqCst)
    );
    assert_eq!(read_checkpoint(h.store.inner()).await, None);
    h.sink.close().await.unwrap();
}

/// Spool pressure from other tables does not cut a small kept run: with the run below the
/// spool's low watermark, publishing everything else resumes the wakes, so the run waits for
/// its transaction's end as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_kept_run_is_not_cut_by_other_tables_pressure() {
    let (h, _spool) = harness_with_small_spool(
        "protocol=csv&include-commit-ts=true&flush-interval=200ms&file-size=64KiB&date-separator=none",
        64 << 10,
        16 << 10,
        8 << 10,
    )
    .await;
    let k = keyless("k");
    let p = table("p", ts(0));
    h.sink.add_dispatcher("dk", FileNaming::Table).unwrap();
    h.sink.add_dispatcher("dp", FileNaming::Table).unwrap();
    let (flushed_k, flush_k) = counter();
    let (flushed_p, flush_p) = counter();
    hand_in(&h, "dk", &k, ts(5), 0..5, 3, &flush_k);
    // A burst of the keyed table, well above the high watermark: with files of 64 KiB and an
    // interval of 200 ms, only spool pressure can publish it in time, whatever the machine's
    // load.
    hand_in(&h, "dp", &p, ts(6), 0..300, 3, &flush_p);
    assert!(wait_for(10, || flushed_p.load(Ordering::SeqCst) == 300).await);
    assert!(
        metric(
            &h.registry,
            "cdc_sink_flushes_total",
            &[("reason", "spool-pressure")]
        ) > 0.0,
        "the burst put the spool under pressure"
    );
    // Past the run's deadline: an interval flush keeps it too.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        flushed_k.load(Ordering::SeqCst),
        0,
        "the small run stays open"
    );
    assert_eq!(
        metric(&h.registry, "cdc_sink_file_cut_forced_total", &[]),
        0.0
    );
    h.sink.mark_resolved(ts(6));
    assert!(wait_for(5, || flushed_k.load(Ordering::SeqCst) == 5).await);
    h.sink.close().await.unwrap();
}

/// Close in the middle of a keyless transaction: what comes before it is published, the
/// transaction's part is released unpublished (its flush callbacks never run), the checkpoint
/// stays below its ts. A keyed table's open events are published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_drops_an_incomplete_keyless_run_unacknowledged() {
    let h = harness(
        "protocol=csv&include-commit-ts=true&flush-interval=600s&file-size=1MiB&date-separator=none",
    )
    .await;
    let logs = warnings();
    let k = keyless("k_closed");
    let p = table("p", ts(0));
    h.sink.add_dispatcher("dk", FileNaming::Table).unwrap();
    h.sink.add_dispatcher("dp", FileNaming::Table).unwrap();
    let (whole, flush_whole) = counter();
    let (open, flush_open) = counter();
    let (keyed, flush_keyed) = counter();
    hand_in(&h, "dk", &k, ts(2), 0..4, 1, &flush_whole);
    // ts 2 is complete (checkpoint), ts 3 is still arriving when the sink closes.
    h.sink.checkpoint(ts(2)).await.unwrap();
    for e in 4..7i64 {
        h.sink
            .add_dml_event("dk", event(&k, ts(3), "dk", e, 1), None, Some(flush_open()))
            .unwrap();
        h.sink
            .add_dml_event(
                "dp",
                event(&p, ts(3), "dp", e, 1),
                None,
                Some(flush_keyed()),
            )
            .unwrap();
    }
    h.sink.close().await.unwrap();
    assert_eq!(whole.load(Ordering::SeqCst), 4, "ts 2 published");
    assert_eq!(
        open.load(Ordering::SeqCst),
        0,
        "no callback of the dropped run"
    );
    assert_eq!(
        keyed.load(Ordering::SeqCst),
        3,
        "a keyed table is published"
    );
    let cp = read_checkpoint(h.store.inner()).await;
    assert!(
        cp.is_some_and(|c| c < ts(3)),
        "checkpoint {cp:?} below the dropped ts 3"
    );
    // (The metric is checked in the remove test: close unregisters the metrics.)
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let want = [
        format!("table={}", k.name()),
        "dispatcher=dk".to_string(),
        format!("ts={}", ts(3)),
        "the upstream resends it from the checkpoint".to_string(),
    ];
    assert!(
        logged
            .lines()
            .any(|l| l.contains("WARN") && want.iter().all(|w| l.contains(w.as_str()))),
        "a warning naming table, dispatcher and ts: {logged}"
    );
    let files = written(&h, &[&k, &p]).await;
    assert_eq!(seqs(&files, "k_closed"), (0..4).collect::<Vec<_>>());
    assert_eq!(seqs(&files, "p"), (4..7).collect::<Vec<_>>());
}

/// Removing a dispatcher in the middle of a keyless transaction drops it like close (no
/// callback, nothing written) and gives its spool bytes back once; a transaction known
/// complete (`mark_resolved`) is published on remove.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_drops_an_incomplete_keyless_run_and_frees_its_spool_bytes() {
    let h = harness(
        "protocol=csv&include-commit-ts=true&flush-interval=600s&file-size=1MiB&date-separator=none",
    )
    .await;
    let k = keyless("k");
    let k2 = keyless("k2");
    h.sink.add_dispatcher("dk", FileNaming::Table).unwrap();
    h.sink.add_dispatcher("dk2", FileNaming::Table).unwrap();
    let (open, flush_open) = counter();
    let (resolved, flush_resolved) = counter();
    hand_in(&h, "dk", &k, ts(5), 0..5, 1, &flush_open);
    assert!(wait_for(5, || h.sink.spool_stats().entries == 5).await);
    h.sink.remove_dispatcher("dk").await.unwrap();
    assert_eq!(
        open.load(Ordering::SeqCst),
        0,
        "no callback of the dropped run"
    );
    let st = h.sink.spool_stats();
    assert_eq!(
        (st.entries, st.memory_bytes, st.disk_bytes),
        (0, 0, 0),
        "the dropped entries' bytes are given back"
    );
    assert_eq!(
        metric(&h.registry, "cdc_sink_incomplete_runs_dropped_total", &[]),
        1.0
    );
    hand_in(&h, "dk2", &k2, ts(6), 0..5, 1, &flush_resolved);
    h.sink.mark_resolved(ts(6));
    h.sink.remove_dispatcher("dk2").await.unwrap();
    assert_eq!(
        resolved.load(Ordering::SeqCst),
        5,
        "a complete run is published"
    );
    assert_eq!(h.sink.spool_stats().entries, 0);
    assert_eq!(
        metric(&h.registry, "cdc_sink_incomplete_runs_dropped_total", &[]),
        1.0
    );
    h.sink.close().await.unwrap();
    let files = written(&h, &[&k, &k2]).await;
    assert!(seqs(&files, "k").is_empty());
    assert_eq!(seqs(&files, "k2"), (0..5).collect::<Vec<_>>());
}
