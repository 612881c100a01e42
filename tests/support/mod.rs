//! Helpers shared by the root package's process-level tests: the `cdc-storage` binary's
//! workload flags, children killed on drop, waiting for or killing a child, and the data
//! files a crash left above their index entry.
#![allow(dead_code)]

use cdc_common::layout::{DataFile, IndexFile, LayoutConfig};
use cdc_common::SinkOptions;
use cdc_harness::workload::WorkloadConfig;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// The `cdc-storage` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cdc-storage");

/// The `generate`/`verify` flags of `cfg` (with `--start-ts` when it has one).
pub fn workload_flags(cfg: &WorkloadConfig) -> Vec<String> {
    let mut flags: Vec<(&str, String)> = vec![
        ("--dispatchers", cfg.dispatchers.to_string()),
        ("--tables", cfg.tables.to_string()),
        ("--transactions", cfg.transactions.to_string()),
        ("--rows-per-txn", cfg.rows_per_txn.to_string()),
        ("--ddl-every", cfg.ddl_every.to_string()),
        ("--seed", cfg.seed.to_string()),
        ("--schema", cfg.schema.clone()),
    ];
    if let Some(ts) = cfg.start_ts {
        flags.push(("--start-ts", ts.0.to_string()));
    }
    flags
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
}

/// A name unique to this test process and moment (schemas, groups).
pub fn unique(tag: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    format!("{tag}_{}_{n}", std::process::id())
}

/// Kills the child when dropped (a failing test leaves no process behind).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A log file `<name>.log` in `dir` (appended to: restarts keep the earlier runs' lines).
pub fn log(dir: &Path, name: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .unwrap()
}

/// Waits up to `d` for the child; kills it (SIGKILL) if it is still running. True if killed.
pub fn kill_after(child: &mut Child, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// Waits up to 120 s for the child to exit successfully; `log` is shown when it does not.
pub fn wait_ok(child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(
                st.success(),
                "{what} failed ({st}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not finish in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Data files under `root` numbered above their writer's index entry (a missing index counts
/// as entry 0).
pub fn data_files_above_index(root: &Path, options: &SinkOptions) -> Vec<String> {
    let layout = LayoutConfig::from_options(options);
    let mut newest: BTreeMap<IndexFile, Vec<(u64, String)>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if let Ok(f) = DataFile::parse(&rel, &layout) {
                newest
                    .entry(f.index_file())
                    .or_default()
                    .push((f.index, rel));
            }
        }
    }
    let mut above = Vec::new();
    for (index, files) in newest {
        let path = index.build().unwrap();
        let indexed = std::fs::read(root.join(&path))
            .map(|b| index.parse_content(&path, &b, &layout).unwrap())
            .unwrap_or(0);
        above.extend(
            files
                .into_iter()
                .filter(|(i, _)| *i > indexed)
                .map(|(i, rel)| format!("{rel} (file {i} > index entry {indexed})")),
        );
    }
    above
}
