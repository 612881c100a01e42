//! A bounded soak for CI: the generator at a fixed rate with the consumer following for 15 s;
//! lag must not trend upwards, resident memory must stay flat, and the downstream must equal
//! the model. `cdc-storage soak --secs 600` runs the same for longer.

use cdc_harness::soak::{soak, SoakConfig};
use cdc_harness::workload::WorkloadConfig;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_soak_keeps_lag_bounded_and_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SoakConfig {
        dir: dir.path().join("soak"),
        duration: Duration::from_secs(15),
        tps: 150.0,
        sink_query: "protocol=canal-json&enable-tidb-extension=true&flush-interval=200ms".into(),
        workload: WorkloadConfig {
            dispatchers: 8,
            tables: 4,
            transactions: 0,
            rows_per_txn: 5,
            ddl_every: 500,
            seed: 7,
            schema: "soak".into(),
            start_ts: None,
            live_rows_cap: Some(300),
        },
        interval: Duration::from_millis(100),
        sample: Duration::from_millis(500),
        warmup: 0.25,
    };
    let r = soak(&cfg).await.expect("soak ran");
    let summary = serde_json::to_string_pretty(&{
        let mut s = r.clone();
        s.samples.clear();
        s
    })
    .unwrap();
    eprintln!("{summary}");
    assert!(r.samples.len() >= 20, "sampled {} times", r.samples.len());
    assert_eq!(
        r.rows, r.rows_applied,
        "every row handed in was applied once"
    );
    assert!(r.verified, "downstream differs from the model: {summary}");
    assert!(r.lag_bounded, "lag trends upwards: {summary}");
    assert!(r.memory_flat, "resident memory grows: {summary}");
}
