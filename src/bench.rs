//! `bench`: runs the spool, sink, consumer (and, given PostgreSQL, capture) benchmark harnesses (release builds, through
//! cargo, from this source tree) and prints their figures as one table, each beside the
//! baseline the harness measured in the same run and the ratio (or `--json`).
//!
//! # Servers
//!
//! The consumer's figures beside each database's bulk path need PostgreSQL, MariaDB and the
//! S3-compatible server. They come from `--postgres-uri` and the `CDC_TEST_POSTGRES_URI`,
//! `CDC_TEST_MYSQL_URI` and `CDC_TEST_S3_URI` variables `scripts/servers.sh` exports; when one
//! is missing (and `--no-servers` is not given), `bench` says so and runs itself again under
//! `bash -c 'source scripts/servers.sh; trap servers_stop EXIT; servers_start; <bench>'`, so
//! the servers it started are stopped when it ends, however it ends. The re-run carries
//! [`SERVERS_STARTED`] so it never starts servers twice.
//!
//! Harnesses report with lines `BENCH {"group", "name", "value", "unit", "baseline_name",
//! "baseline", "ratio", "target"}` on stdout; everything else they print is passed through
//! to stderr for the curious.

use anyhow::{bail, Context, Result};
use cdc_consumer::progress_bar::Bar;
use serde_json::Value as Json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// One harness run: a cargo command line and its environment.
struct Harness {
    group: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

/// A harness of the `cdc-sink` crate's benches: `cargo bench -q -p cdc-sink --bench <args>`
/// (`args` is the bench name, then `--` and the scenario where it has several).
fn sink_bench(args: &[&str], env: Vec<(&'static str, String)>) -> Harness {
    let mut all = vec!["bench", "-q", "-p", "cdc-sink", "--bench"];
    all.extend_from_slice(args);
    Harness {
        group: "sink",
        args: all.into_iter().map(String::from).collect(),
        env,
    }
}

/// Set in the environment of the bench that `bench` re-runs under `scripts/servers.sh`.
const SERVERS_STARTED: &str = "CDC_BENCH_SERVERS_STARTED";

/// The servers the consumer and capture harnesses measure against (`None`: not measured).
#[derive(Clone, Debug, Default)]
pub struct Servers {
    /// A PostgreSQL URI with `wal_level=logical`.
    pub postgres: Option<String>,
    /// A MySQL/MariaDB URI (`mysql://user:password@host:port/db`).
    pub mysql: Option<String>,
    /// An S3-compatible storage URI (`s3://bucket?endpoint=...`).
    pub s3: Option<String>,
}

impl Servers {
    /// `--postgres-uri` first, then the variables `scripts/servers.sh` exports.
    pub fn from_env(postgres: Option<&str>) -> Servers {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Servers {
            postgres: postgres
                .map(String::from)
                .or_else(|| var("CDC_TEST_POSTGRES_URI")),
            mysql: var("CDC_TEST_MYSQL_URI"),
            s3: var("CDC_TEST_S3_URI"),
        }
    }

    /// The servers not given, by name.
    fn missing(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        for (name, v) in [
            ("PostgreSQL", &self.postgres),
            ("MariaDB", &self.mysql),
            ("S3-compatible", &self.s3),
        ] {
            if v.is_none() {
                m.push(name);
            }
        }
        m
    }
}

/// Runs this very command again under `scripts/servers.sh` (see the module doc) and returns
/// when it has ended and the servers are stopped.
fn rerun_with_servers(root: &str, missing: &[&str]) -> Result<()> {
    eprintln!(
        "bench: no {} server given (--postgres-uri, CDC_TEST_*_URI): starting PostgreSQL, MariaDB and the S3-compatible server with scripts/servers.sh; they are stopped when the bench ends (--no-servers measures without them)",
        missing.join(", ")
    );
    let exe = std::env::current_exe().context("locating the running cdc-storage binary")?;
    let status = Command::new("bash")
        .arg("-c")
        .arg(r#"source scripts/servers.sh; trap servers_stop EXIT; servers_start; "$@""#)
        .arg("bash")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(SERVERS_STARTED, "1")
        .current_dir(root)
        .status()
        .context("running bash with scripts/servers.sh")?;
    if !status.success() {
        bail!("the bench under scripts/servers.sh failed: {status}");
    }
    Ok(())
}

fn harnesses(quick: bool, dir: &std::path::Path, servers: &Servers) -> Vec<Harness> {
    let d = dir.display().to_string();
    let postgres = servers.postgres.as_deref();
    let rows_per_table = if quick { "2000" } else { "20000" };
    let mut consumer = vec![
        "run",
        "--release",
        "-q",
        "-p",
        "cdc-consumer",
        "--example",
        "replay_bench",
        "--",
        rows_per_table,
    ];
    for (flag, uri) in [
        ("--postgres", &servers.postgres),
        ("--mysql", &servers.mysql),
        ("--s3", &servers.s3),
    ] {
        if let Some(uri) = uri {
            consumer.push(flag);
            consumer.push(uri);
        }
    }
    // The demo's mixed stream into each downstream (issue 16 item 3), the same size in
    // --quick: the figure is about that stream.
    let mut mixed = vec!["run", "--release", "-q", "--example", "mixed_bench", "--"];
    for (flag, uri) in [
        ("--postgres", &servers.postgres),
        ("--mysql", &servers.mysql),
    ] {
        if let Some(uri) = uri {
            mixed.push(flag);
            mixed.push(uri);
        }
    }
    let own = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
    let mut all = vec![
        Harness {
            group: "spool",
            args: own(vec![
                "run",
                "--release",
                "-q",
                "-p",
                "cdc-spool",
                "--example",
                "spool_bench",
                "--",
                "--dir",
                &d,
                "--mib",
                if quick { "128" } else { "1024" },
            ]),
            env: vec![],
        },
        // Events built before the clock starts: the figure is the sink's, not the producer's.
        sink_bench(
            &["sink", "--", "throughput"],
            vec![
                (
                    "BENCH_ROWS",
                    if quick { "500000" } else { "4000000" }.into(),
                ),
                ("BENCH_PREBUILT", "1".into()),
                ("BENCH_DIR", d.clone()),
            ],
        ),
        // The whole pipeline, the producer's event building included (issue 16 item 1).
        sink_bench(
            &["sink", "--", "throughput"],
            vec![
                (
                    "BENCH_ROWS",
                    if quick { "500000" } else { "4000000" }.into(),
                ),
                ("BENCH_PREBUILT", "0".into()),
                ("BENCH_DIR", d.clone()),
            ],
        ),
        sink_bench(
            &["sink", "--", "memory"],
            vec![
                ("BENCH_SECS", if quick { "8" } else { "30" }.into()),
                ("BENCH_DIR", d.clone()),
            ],
        ),
        // Rows/s and peak RSS by dispatcher count (issue 16 item 4).
        sink_bench(
            &["dispatchers"],
            vec![
                ("BENCH_QUICK", if quick { "1" } else { "0" }.into()),
                ("BENCH_DIR", d.clone()),
            ],
        ),
        // New tables over storage with a round trip per request: the first flush's look-ups
        // overlap (sink/src/plan_lookup.rs).
        sink_bench(
            &["sink", "--", "first-flush"],
            vec![
                ("BENCH_TABLES", if quick { "500" } else { "2000" }.into()),
                ("BENCH_DIR", d.clone()),
            ],
        ),
        sink_bench(
            &["sink", "--", "low-traffic"],
            vec![
                ("BENCH_SECS", if quick { "8" } else { "15" }.into()),
                ("BENCH_DIR", d.clone()),
            ],
        ),
        Harness {
            group: "consumer",
            args: own(consumer),
            env: vec![],
        },
        Harness {
            group: "consumer",
            args: own(mixed),
            env: vec![],
        },
        // Cost curves by table count (issue 16 item 4): cold replay, restart and requests per
        // round at 100 to 20,000 tables of one tiny file each (--quick: 100 and 1,000).
        Harness {
            group: "scale",
            args: own([
                "run",
                "--release",
                "-q",
                "-p",
                "cdc-consumer",
                "--example",
                "scale_bench",
                "--",
            ]
            .into_iter()
            .chain(quick.then_some("--quick"))
            .collect()),
            env: vec![],
        },
    ];
    // PostgreSQL capture (issue 18): snapshot and stream rows/s beside COPY TO, and the
    // end-to-end lag into SQLite at 1,000 row changes/s (needs wal_level=logical).
    if let Some(pg) = postgres {
        all.push(Harness {
            group: "capture",
            args: own(vec![
                "run",
                "--release",
                "-q",
                "-p",
                "cdc-capture",
                "--example",
                "capture_bench",
                "--",
                if quick { "20000" } else { "200000" },
                pg,
                if quick { "5" } else { "20" },
            ]),
            env: vec![],
        });
        // Consumer groups of 1, 2 and 4 members and the takeover time (issue 15 item 4).
        all.push(Harness {
            group: "consumer",
            args: own(vec![
                "run",
                "--release",
                "-q",
                "-p",
                "cdc-consumer",
                "--example",
                "group_bench",
                "--",
                pg,
                if quick { "2000" } else { "16000" },
            ]),
            env: vec![],
        });
    }
    all
}

/// Runs every harness and prints the table (or JSON), against the servers of [`Servers::from_env`]
/// (`postgres` is `--postgres-uri`), started first when one is missing and `no_servers` is
/// false (see the module doc).
pub fn bench(
    quick: bool,
    json: bool,
    postgres: Option<&str>,
    quiet: bool,
    no_servers: bool,
) -> Result<()> {
    let root = env!("CARGO_MANIFEST_DIR");
    let servers = Servers::from_env(postgres);
    let missing = servers.missing();
    if !missing.is_empty() && !no_servers && std::env::var_os(SERVERS_STARTED).is_none() {
        return rerun_with_servers(root, &missing);
    }
    if !missing.is_empty() {
        eprintln!(
            "bench: measuring without {} (their figures are left out)",
            missing.join(", ")
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("cdc-bench")
        .tempdir()
        .context("creating a bench directory")?;
    let mut figures: Vec<Json> = Vec::new();
    let mut failures = Vec::new();
    let all = harnesses(quick, dir.path(), &servers);
    let total = all.len() as u64;
    let bar = std::sync::Arc::new(Bar::new(quiet, total, "bench", "harnesses"));
    for (done, h) in all.into_iter().enumerate() {
        bar.set_position(done as u64);
        bar.set_message(h.group.to_string());
        bar.println(&format!("== {}: cargo {}", h.group, h.args.join(" ")));
        let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(&h.args)
            .envs(h.env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(root)
            .stdout(Stdio::piped())
            // cargo's own output goes above the bar too
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "starting cargo for the {} harness (bench runs from a source tree)",
                    h.group
                )
            })?;
        let err = child.stderr.take().context("harness stderr")?;
        let err_bar = std::sync::Arc::clone(&bar);
        let err_lines = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(std::io::Result::ok) {
                err_bar.println(&line);
            }
        });
        let out = child.stdout.take().context("harness stdout")?;
        for line in BufReader::new(out).lines() {
            let line = line?;
            match line.strip_prefix("BENCH ") {
                Some(j) => match serde_json::from_str::<Json>(j) {
                    Ok(v) => figures.push(v),
                    Err(e) => bar.println(&format!("unreadable BENCH line ({e}): {j}")),
                },
                None => bar.println(&format!("  {line}")),
            }
        }
        let status = child.wait()?;
        let _ = err_lines.join();
        if !status.success() {
            failures.push(format!(
                "{} harness `cargo {}` failed: {status}",
                h.group,
                h.args.join(" ")
            ));
        }
    }
    bar.set_position(total);
    figures.extend(spool_vs_sink(&figures));
    if failures.is_empty() {
        bar.finish("done");
    } else {
        bar.fail("failed");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures);
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

/// The spool's spilled throughput beside the sink's (issue 16 item 5): the spool is not the
/// sink's bottleneck while the spool moves spilled 1 KiB entries (about the size of an encoded
/// event) at least 5x as fast as the sink writes files. Both figures are MiB/s of the same kind
/// of bytes (encoded events), measured in this run; `None` unless both harnesses reported.
fn spool_vs_sink(figures: &[Json]) -> Option<Json> {
    let value = |group: &str, name: &str| {
        figures.iter().find_map(|v| {
            (v.get("group")?.as_str()? == group && v.get("name")?.as_str()? == name)
                .then(|| v.get("value")?.as_f64())?
        })
    };
    let spool = value("spool", SPOOL_SPILLED_FIGURE)?;
    let sink = value("sink", SINK_THROUGHPUT_FIGURE)?;
    (sink > 0.0).then(|| {
        serde_json::json!({
            "group": "spool",
            "name": "spilled 1K batched vs the sink's throughput",
            "value": spool,
            "unit": "MiB/s",
            "baseline_name": "sink throughput, events pre-built",
            "baseline": sink,
            "ratio": spool / sink,
            "target": ">= 5",
        })
    })
}

/// The spool harness's figure for spilled 1 KiB entries read back in batches
/// (`spool/examples/spool_bench.rs`).
const SPOOL_SPILLED_FIGURE: &str = "spilled 1K enqueue+read_many+release";

/// The sink harness's throughput figure with events built before the clock starts
/// (`sink/benches/sink.rs`).
const SINK_THROUGHPUT_FIGURE: &str =
    "throughput, csv to local fs, 1000 dispatchers (events pre-built)";

fn print_table(figures: &[Json]) {
    let s = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).unwrap_or("").to_string();
    let f = |v: &Json, k: &str| v.get(k).and_then(Json::as_f64).unwrap_or(0.0);
    println!(
        "{:<9} {:<46} {:>14} {:<38} {:>14} {:>7} {:>8}",
        "group", "figure", "value", "baseline (same run)", "baseline", "ratio", "target"
    );
    for v in figures {
        let unit = s(v, "unit");
        let base = s(v, "baseline_name");
        let (b, r) = if base.is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            (
                format!("{:.1} {unit}", f(v, "baseline")),
                format!("{:.2}", f(v, "ratio")),
            )
        };
        println!(
            "{:<9} {:<46} {:>14} {:<38} {:>14} {:>7} {:>8}",
            s(v, "group"),
            s(v, "name"),
            format!("{:.1} {unit}", f(v, "value")),
            base,
            b,
            r,
            s(v, "target")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(group: &str, name: &str, value: f64) -> Json {
        serde_json::json!({"group": group, "name": name, "value": value, "unit": "MiB/s"})
    }

    #[test]
    fn the_spool_is_set_beside_the_sink_when_both_reported() {
        let figures = vec![
            line("spool", "in-memory 1K enqueue+read+release", 9000.0),
            line("spool", SPOOL_SPILLED_FIGURE, 2400.0),
            line(
                "sink",
                "peak RSS, storage 100x slower than the producer",
                300.0,
            ),
            line("sink", SINK_THROUGHPUT_FIGURE, 160.0),
        ];
        let v = spool_vs_sink(&figures).expect("both figures present");
        assert_eq!(v["value"].as_f64(), Some(2400.0));
        assert_eq!(v["baseline"].as_f64(), Some(160.0));
        assert_eq!(v["ratio"].as_f64(), Some(15.0));
        assert_eq!(v["target"].as_str(), Some(">= 5"));
        assert!(spool_vs_sink(&figures[..3]).is_none(), "no sink figure");
        assert!(spool_vs_sink(&figures[2..]).is_none(), "no spool figure");
    }

    #[test]
    fn the_figure_names_are_the_ones_the_harnesses_print() {
        // The harnesses build these names with format!; a rename there must show up here.
        let spool = include_str!("../spool/examples/spool_bench.rs");
        assert!(spool.contains("\"spilled {}K enqueue+read_many+release\""));
        let sink = include_str!("../sink/benches/sink.rs");
        assert!(sink.contains("\"throughput, csv to local fs, {DISPATCHERS} dispatchers ({})\""));
        assert!(sink.contains("const DISPATCHERS: usize = 1000;"));
        assert!(sink.contains("\"events pre-built\""));
    }
}
