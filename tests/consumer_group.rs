//! A consumer group end to end: two sink nodes (`generate --node 0/2` and `1/2`, each a sink
//! process playing its node's tables, `metadata` the minimum of both) write one local storage
//! while three `consume --group` members replay it into PostgreSQL or MariaDB; one member is
//! killed with SIGKILL mid-run and a fourth starts later. The downstream must equal the
//! workload's model (`verify`): no duplicate and no missing row, every DDL applied once (the
//! `CREATE DATABASE` both nodes wrote included).
//!
//! Needs the servers (`scripts/test.sh` starts them); under `CI=true` a missing server fails.

use cdc_common::testing::server_uri;
use cdc_harness::demo::consumer_query;
use cdc_harness::verify::verify;
use cdc_harness::workload::{Workload, WorkloadConfig};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{log, unique, workload_flags, Proc, BIN};

use crate::support;

fn member(upstream: &str, down: &str, group: &str, id: &str, dir: &Path) -> Proc {
    Proc(
        Command::new(BIN)
            .args(["--log-level", "warn", "consume", "--upstream-uri", upstream])
            .args([
                "--downstream-uri",
                down,
                "--group",
                group,
                "--member-id",
                id,
            ])
            .args(["--lease-ttl", "1s", "--interval", "100ms"])
            .stdout(Stdio::null())
            .stderr(log(dir, id))
            .spawn()
            .expect("spawn consume"),
    )
}

async fn group_of_three(down: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = WorkloadConfig {
        dispatchers: 8,
        tables: 8,
        transactions: 3_000,
        rows_per_txn: 4,
        ddl_every: 300,
        seed: 7,
        schema: unique("grp"),
        // Both nodes must play the same commit ts.
        start_ts: Some(cdc_common::Ts(445_000_000_000_000_000)),
        live_rows_cap: None,
    };
    let options = format!(
        "protocol=csv&flush-interval=100ms&date-separator=day&include-commit-ts=true&spool-dir={}",
        tmp.path().join("spool").display()
    );
    let root = format!("file://{}", tmp.path().join("storage").display());
    let sink_uri = format!("{root}?{options}");
    let upstream = format!("{root}?{}", consumer_query(&options));
    let group = unique("g");
    let node = |i: u32| {
        Proc(
            Command::new(BIN)
                .args(["generate", "--sink-uri", &sink_uri, "--tps", "1000"])
                .args(["--node", &format!("{i}/2")])
                .args(workload_flags(&cfg))
                .stdout(Stdio::null())
                .stderr(log(tmp.path(), &format!("generate-{i}")))
                .spawn()
                .expect("spawn generate"),
        )
    };
    let mut nodes = [node(0), node(1)];
    let _a = member(&upstream, down, &group, "a", tmp.path());
    let mut b = member(&upstream, down, &group, "b", tmp.path());
    let _c = member(&upstream, down, &group, "c", tmp.path());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    b.0.kill().unwrap(); // SIGKILL
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _d = member(&upstream, down, &group, "d", tmp.path());
    for n in &mut nodes {
        let st = n.0.wait().unwrap();
        assert!(st.success(), "generate failed: see {:?}", tmp.path());
    }
    let model = Workload::final_model(cfg.clone());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let diffs = verify(down, &cfg.schema, &model).await.expect("verify");
        if diffs.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} differences after 90 s, first: {:#?}",
            diffs.len(),
            &diffs[..diffs.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_with_one_killed_and_one_late_equals_the_model_on_postgres() {
    let Some(uri) = server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    group_of_three(&uri).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_with_one_killed_and_one_late_equals_the_model_on_mariadb() {
    let Some(uri) = server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    group_of_three(&uri).await;
}
