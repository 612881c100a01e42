//! The change summary end to end: the real sink writes a workload (DML across many tables, DDL
//! barriers) while a consumer runs rounds against the same storage; once the sink has settled
//! at its final checkpoint and the consumer drained, the downstream equals the workload's model,
//! and rounds in between were summary rounds (refreshing only the tables named in the sink's
//! `changes.metadata`). A summary that named too few tables would leave rows out.

use cdc_harness::demo::{consumer_query, open_replayer};
use cdc_harness::generate::{generate, GenerateOptions};
use cdc_harness::verify::verify;
use cdc_harness::workload::{Workload, WorkloadConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_running_beside_the_sink_stays_exact_through_summary_rounds() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("storage");
    std::fs::create_dir_all(&root).unwrap();
    let options = format!(
        "protocol=csv&flush-interval=50ms&file-size=65536&date-separator=day&file-index-width=6\
         &worker-count=2&include-commit-ts=true&spool-dir={}",
        tmp.path().join("spool").display()
    );
    let sink_uri = format!("file://{}?{options}", root.display());
    let upstream = format!("file://{}?{}", root.display(), consumer_query(&options));
    let downstream = format!("sqlite://{}", tmp.path().join("down.db").display());
    let cfg = WorkloadConfig {
        dispatchers: 24,
        tables: 24,
        transactions: 900,
        rows_per_txn: 3,
        ddl_every: 150,
        seed: 17,
        schema: "summary_e2e".into(),
        start_ts: None,
        live_rows_cap: None,
    };

    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (cfg, done) = (cfg.clone(), done.clone());
        tokio::spawn(async move {
            let opts = GenerateOptions {
                tps: 200.0,
                ..GenerateOptions::default()
            };
            let g = generate(&sink_uri, &cfg, opts, &|_| {}).await;
            done.store(true, Ordering::Release);
            g
        })
    };
    let mut r = open_replayer(&upstream, &downstream).await.unwrap();
    let (mut summary, mut summary_tables, mut rows) = (0u64, 0u64, 0u64);
    let mut quiet = 0;
    // Rounds while the sink writes, then until two in a row find nothing after it finished.
    while quiet < 2 {
        let finished = done.load(Ordering::Acquire);
        let out = r.round().await;
        assert!(out.error.is_none(), "{:?}", out.error);
        let d = &out.record.discovery;
        if d.summary {
            summary += 1;
            summary_tables += d.summary_tables;
        }
        rows += out.record.rows();
        let busy = out.found_new || out.record.applied_anything();
        quiet = if finished && !busy { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let g = writer.await.unwrap().expect("generate");
    assert_eq!(g.rows, g.rows_flushed);
    assert!(rows > 0);
    assert!(
        summary >= 2,
        "no summary rounds ran beside the sink ({summary})"
    );
    eprintln!("summary rounds {summary}, tables refreshed by them {summary_tables}");
    let model = Workload::final_model(cfg.clone());
    let diffs = verify(&downstream, &cfg.schema, &model).await.unwrap();
    assert!(
        diffs.is_empty(),
        "{} differences, first: {:#?}",
        diffs.len(),
        &diffs[..diffs.len().min(10)]
    );
}
