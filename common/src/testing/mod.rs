//! Test support shared by every crate's tests: where the real servers are, the benchmark line
//! format, [`FaultStore`], the recording, fault-injecting store wrapper (see [`fault_store`])
//! that drives both the sink and the consumer, and [`Tmpfs`], small file systems for disk-full
//! tests, and [`codec_fixture`], the table and event the codec benchmarks encode.
//!
//! `scripts/servers.sh` starts them and exports `CDC_TEST_S3_URI`, `CDC_TEST_AZURE_URI`,
//! `CDC_TEST_POSTGRES_URI` and `CDC_TEST_MYSQL_URI`. A test that needs one calls
//! [`server_uri`]: outside CI a missing server skips the test with a note on stderr; under
//! `CI=true` it fails the test, so CI can never pass by silently skipping. [`Tmpfs::mount`]
//! follows the same rule when it cannot mount (it needs root or `CAP_SYS_ADMIN`).

pub(crate) fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub mod codec_fixture;
pub mod fault_store;
mod tmpfs;

pub use fault_store::{Fault, FaultStore, Op, Record, Rule, SEED_ENV};
pub use tmpfs::Tmpfs;

/// The URI of a test server from the environment variable `var`.
///
/// # Panics
/// When the variable is unset and `CI` is `true` or `1`.
pub fn server_uri(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let ci = under_ci();
            assert!(!ci, "{var} is not set: under CI=true every server must be running (run scripts/test.sh)");
            eprintln!("note: {var} not set; skipping (run scripts/test.sh to start the servers)");
            None
        }
    }
}

/// Prints one benchmark figure as the machine-readable line `cdc-storage bench` collects:
/// `BENCH {"group","name","value","unit","baseline_name","baseline","ratio","target"}`.
/// `baseline` is the figure measured in the same run (or the limit the value is held to);
/// pass `("", 0.0)` when there is none.
pub fn bench_line(
    group: &str,
    name: &str,
    value: f64,
    unit: &str,
    baseline: (&str, f64),
    target: &str,
) {
    let ratio = if baseline.1 > 0.0 {
        value / baseline.1
    } else {
        0.0
    };
    let line = serde_json::json!({
        "group": group,
        "name": name,
        "value": value,
        "unit": unit,
        "baseline_name": baseline.0,
        "baseline": baseline.1,
        "ratio": ratio,
        "target": target,
    });
    println!("BENCH {line}");
}

/// CPU seconds (user + system, every thread) this process has used so far, from
/// `/proc/self/stat` (10 ms resolution); 0 where that file does not exist. Benchmarks print the
/// CPU a phase took beside its wall time: on a shared 2-core machine the CPU figure moves less.
pub fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    // Clock ticks are 100 per second on Linux.
    ticks as f64 / 100.0
}
