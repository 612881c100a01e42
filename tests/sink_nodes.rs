//! Several sink processes on one storage, as the nodes of one CDC service: three
//! `generate --node I/3` processes write one local storage while a consumer follows it into
//! SQLite. Node 1 is killed with SIGKILL mid-run (its index puts lag their data files, so the
//! kill leaves files without an index entry) and restarted with `--resume` from its own
//! progress file. While it is down, `metadata` (the minimum over the nodes) must not pass what
//! node 1 had made durable; at the end the downstream must equal the workload's model and no
//! data file may remain above its index entry.

use crate::support;

use cdc_common::layout::Checkpoint;
use cdc_common::{SinkOptions, Ts};
use cdc_harness::demo::consumer_query;
use cdc_harness::verify::verify;
use cdc_harness::workload::{Workload, WorkloadConfig};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{data_files_above_index, log, wait_ok, workload_flags, Proc, BIN};

const NODES: u32 = 3;

fn node(uri: &str, cfg: &WorkloadConfig, i: u32, dir: &Path) -> Child {
    Command::new(BIN)
        .args(["--quiet", "generate", "--sink-uri", uri, "--tps", "1500"])
        .args(["--node", &format!("{i}/{NODES}"), "--resume"])
        .args(["--delay-index-puts-ms", "40"])
        .args(workload_flags(cfg))
        .stdout(log(dir, &format!("node-{i}")))
        .stderr(log(dir, &format!("node-{i}")))
        .spawn()
        .expect("spawn generate --node")
}

fn consumer(uri: &str, db: &Path, once: bool, dir: &Path) -> Child {
    let (base, query) = uri.split_once('?').unwrap();
    let uri = format!("{base}?{}", consumer_query(query));
    let down = format!("sqlite://{}", db.display());
    let mut c = Command::new(BIN);
    c.args(["--quiet", "consume", "--upstream-uri", &uri])
        .args(["--downstream-uri", &down, "--interval", "50ms"]);
    if once {
        c.arg("--once");
    }
    c.stdout(Stdio::null())
        .stderr(log(dir, "consume"))
        .spawn()
        .expect("spawn consume")
}

/// A checkpoint file's value (`None` while it does not exist).
fn read_ts(root: &Path, name: &str) -> Option<Ts> {
    let b = std::fs::read(root.join(name)).ok()?;
    Some(Checkpoint::parse(name, &b).unwrap().checkpoint_ts)
}

#[test]
fn three_sink_nodes_one_killed_and_resumed_reproduce_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let root = dir.join("storage");
    let db = dir.join("down.db");
    let query = format!(
        "protocol=csv&flush-interval=50ms&file-size=8KiB&date-separator=none&spool-dir={}",
        dir.join("spool").display()
    );
    let uri = format!("file://{}?{query}", root.display());
    let cfg = WorkloadConfig {
        dispatchers: 12,
        tables: 6,
        transactions: 4_000,
        rows_per_txn: 4,
        ddl_every: 250,
        seed: 11,
        schema: "nodes".into(),
        start_ts: Some(Ts(410_000_000_000_000_000)),
        live_rows_cap: None,
    };
    let mut nodes: Vec<Proc> = (0..NODES).map(|i| Proc(node(&uri, &cfg, i, dir))).collect();
    let mut follower = Proc(consumer(&uri, &db, false, dir));

    // Once every node has reported (so `metadata` exists), kill node 1 (SIGKILL).
    let until = Instant::now() + Duration::from_secs(30);
    while read_ts(&root, "metadata").is_none() {
        assert!(Instant::now() < until, "no checkpoint after 30 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        nodes[1].0.try_wait().unwrap().is_none(),
        "node 1 finished before the kill; make the workload longer"
    );
    nodes[1].0.kill().unwrap();
    nodes[1].0.wait().unwrap();
    let dead = read_ts(&root, &Checkpoint::node_path(1));
    // While node 1 is down the others go on; `metadata` cannot pass node 1's durable progress.
    let until = Instant::now() + Duration::from_millis(700);
    let mut seen = 0;
    while Instant::now() < until {
        if let (Some(global), Some(n1)) = (read_ts(&root, "metadata"), dead) {
            assert!(
                global <= n1,
                "metadata {global} passed the killed node's progress {n1}"
            );
            seen += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(seen > 0, "no checkpoint was written before the kill");

    nodes[1] = Proc(node(&uri, &cfg, 1, dir));
    for (i, n) in nodes.iter_mut().enumerate() {
        wait_ok(
            &mut n.0,
            &format!("node {i}"),
            &dir.join(format!("node-{i}.log")),
        );
    }
    let log1 = std::fs::read_to_string(dir.join("node-1.log")).unwrap();
    if let Some(n1) = dead {
        assert!(
            log1.contains(&format!("resumed from checkpoint-ts {n1}")),
            "node 1 did not resume from its own progress {n1}: {log1}"
        );
    }
    eprintln!(
        "node 1 killed at progress {dead:?}; {} unindexed file(s) deleted by its restart",
        log1.matches("published without its index entry").count()
    );

    // Every node reported its last position: `metadata` is the workload's last commit ts.
    let finals: Vec<Option<Ts>> = (0..NODES)
        .map(|i| read_ts(&root, &Checkpoint::node_path(i)))
        .collect();
    let min = finals.iter().map(|t| t.expect("every node file")).min();
    assert_eq!(read_ts(&root, "metadata"), min, "node files {finals:?}");

    drop(follower.0.kill());
    follower.0.wait().unwrap();
    let mut last = consumer(&uri, &db, true, dir);
    wait_ok(&mut last, "consume --once", &dir.join("consume.log"));

    let options = SinkOptions::from_query(&query).unwrap();
    let stale = data_files_above_index(&root, &options);
    assert!(
        stale.is_empty(),
        "files above their index entry: {stale:#?}"
    );
    let model = Workload::final_model(cfg.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let diffs = rt
        .block_on(verify(
            &format!("sqlite://{}", db.display()),
            &cfg.schema,
            &model,
        ))
        .unwrap();
    assert!(
        diffs.is_empty(),
        "downstream differs from the model: {:#?}",
        &diffs[..diffs.len().min(20)]
    );
}
