//! Model-based property test: random sequences of events, drains, checkpoints and pauses
//! against a plain model of what must hold - per-dispatcher order in the files, drains that
//! return only after the dispatcher's earlier events are durable, and a checkpoint that never
//! reaches an event whose flush callback has not run.

use crate::support;

use cdc_common::Ts;
use cdc_sink::{CheckpointOutcome, FileNaming};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

#[derive(Clone, Debug)]
enum Action {
    Add { d: usize, rows: usize },
    Drain { d: usize },
    Checkpoint,
    Pause { ms: u64 },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        // Small events take the inline path, big ones (over 16 rows) the encoding pool.
        6 => (0..4usize, prop_oneof![1..4usize, 17..20usize])
            .prop_map(|(d, rows)| Action::Add { d, rows }),
        1 => (0..4usize).prop_map(|d| Action::Drain { d }),
        1 => Just(Action::Checkpoint),
        1 => (0..15u64).prop_map(|ms| Action::Pause { ms }),
    ]
}

fn run(actions: Vec<Action>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let h =
            harness("protocol=csv&flush-interval=10ms&file-size=1KiB&date-separator=none").await;
        let tables: Vec<_> = (0..2).map(|i| table(&format!("t{i}"), ts(0))).collect();
        let mut defs = BTreeMap::new();
        for t in &tables {
            defs.insert(t.table.clone(), Arc::clone(t));
        }
        for d in 0..4 {
            h.sink
                .add_dispatcher(&format!("d{d}"), FileNaming::Dispatcher)
                .unwrap();
        }
        // Model: rows sent per dispatcher; commit ts not yet flushed (shared with callbacks).
        let mut sent = [0i64; 4];
        let unflushed: Arc<Mutex<BTreeSet<(Ts, usize)>>> = Arc::default();
        let flushed_rows: Arc<Mutex<[i64; 4]>> = Arc::default();
        let mut clock = 1u64;
        let mut last_checkpoint = Ts::ZERO;
        for a in actions {
            match a {
                Action::Add { d, rows } => {
                    clock += 1;
                    let at = ts(clock);
                    let id = format!("d{d}");
                    let ev = event(&tables[d % 2], at, &id, sent[d], rows);
                    unflushed.lock().unwrap().insert((at, d));
                    let (u, f) = (Arc::clone(&unflushed), Arc::clone(&flushed_rows));
                    h.sink
                        .add_dml_event(
                            &id,
                            ev,
                            None,
                            Some(Box::new(move || {
                                u.lock().unwrap().remove(&(at, d));
                                f.lock().unwrap()[d] += rows as i64;
                            })),
                        )
                        .unwrap();
                    sent[d] += rows as i64;
                }
                Action::Drain { d } => {
                    clock += 1;
                    let ddl = barrier_ddl(ts(clock));
                    h.sink
                        .pass_block_event(&ddl, &[&format!("d{d}")])
                        .await
                        .unwrap();
                    assert_eq!(flushed_rows.lock().unwrap()[d], sent[d], "drain of d{d}");
                }
                Action::Checkpoint => match h.sink.checkpoint(ts(clock)).await.unwrap() {
                    CheckpointOutcome::Written(w) => {
                        assert!(w > last_checkpoint);
                        last_checkpoint = w;
                        let u = unflushed.lock().unwrap();
                        if let Some((first, _)) = u.iter().next() {
                            assert!(*first > w, "checkpoint {w} passes unflushed {first}");
                        }
                    }
                    CheckpointOutcome::Unchanged => {}
                    CheckpointOutcome::Deferred(_) => panic!("interval is zero"),
                },
                Action::Pause { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            }
        }
        h.sink.close().await.unwrap();
        assert!(unflushed.lock().unwrap().is_empty());
        let files = read_data_files(h.store.inner(), &h.options, &defs).await;
        let mut per = seqs_per_dispatcher(&files);
        for (d, n) in sent.iter().enumerate() {
            let got = per.remove(&format!("d{d}")).unwrap_or_default();
            assert_eq!(got, (0..*n).collect::<Vec<_>>(), "d{d}");
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn order_drains_and_checkpoints_follow_the_model(actions in prop::collection::vec(action(), 1..60)) {
        run(actions);
    }
}
