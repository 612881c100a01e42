//! A real Prometheus scrapes a running sink (`cdc-storage generate --metrics-addr`, served by
//! `cdc_sink::serve_metrics`) and two running consumers (`cdc-storage consume --metrics-addr`):
//! every panel query of docs/grafana-dashboard.json returns data through Prometheus's HTTP API,
//! and the `CdcConsumerFailing` alert of docs/alerts.yml fires for the consumer pointed at a
//! broken storage (and only for it).
//!
//! Test settings, not product ones: scrapes and rule evaluation every second, Grafana's
//! `$__rate_interval` replaced by 30s and `$changefeed` by `.+`, and the rules' `for:` durations
//! shortened to 1s in a copy of docs/alerts.yml (the expressions are the file's own).
//!
//! Without the `prometheus` binary the test is skipped with a note, except under `CI=true`
//! where that is a failure (scripts/servers.sh installs the Debian package `prometheus`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cdc-storage");

/// A child process killed when the test ends, passing or not.
struct Running(&'static str, Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.1.kill();
        let _ = self.1.wait();
    }
}

impl Running {
    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.1.try_wait() {
            panic!("{} exited early: {status}", self.0);
        }
    }
}

fn prometheus_bin() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "prometheus is required under CI=true (Debian package `prometheus`, see scripts/servers.sh)"
        );
        eprintln!("prometheus not found: the dashboard and alerts were not checked against one");
    }
    found
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.1 GET: status code and body, or None when nothing listens yet.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    // Prometheus answers small JSON documents; decode a chunked body if it chose that.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((code, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every panel target's `expr` in the dashboard, rows' nested panels included.
fn dashboard_queries(root: &Path) -> Vec<(String, String)> {
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let q = expr
                        .replace("$__rate_interval", "30s")
                        .replace("$changefeed", ".+");
                    out.push((title.clone(), q));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let text = std::fs::read_to_string(root.join("docs/grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// docs/alerts.yml with every `for:` shortened to 1s.
fn test_rules(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join("docs/alerts.yml")).unwrap();
    let mut shortened = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => {
                shortened += 1;
                format!("{}for: 1s", &l[..l.len() - l.trim_start().len()])
            }
            None => l.to_string(),
        })
        .collect();
    assert!(shortened >= 1, "docs/alerts.yml has no `for:`");
    lines.join("\n") + "\n"
}

/// Result vector of an instant query (panics on an API error).
fn query(prom: SocketAddr, q: &str) -> Vec<serde_json::Value> {
    let (code, body) = http_get(prom, &format!("/api/v1/query?query={}", encode(q)))
        .unwrap_or_else(|| panic!("prometheus did not answer {q}"));
    assert_eq!(code, 200, "query {q}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{body}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// A child's stderr, kept in the test's directory (the broken consumer logs every round).
fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(format!("{name}.log"))).unwrap()
}

fn consume(upstream: &str, db: &Path, metrics: SocketAddr) -> Child {
    Command::new(BIN)
        .args(["--quiet", "--log-level", "error", "consume"])
        .args(["--upstream-uri", upstream])
        .arg("--downstream-uri")
        .arg(format!("sqlite://{}", db.display()))
        .args([
            "--metrics-addr",
            &metrics.to_string(),
            "--interval",
            "200ms",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start cdc-storage consume")
}

#[test]
fn prometheus_scrapes_sink_and_consumers_dashboard_and_alert_work() {
    let Some(prometheus) = prometheus_bin() else {
        return;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let (sink_addr, good_addr, broken_addr, prom_addr) =
        (free_addr(), free_addr(), free_addr(), free_addr());

    // The sink: a slow workload that keeps running while Prometheus scrapes it.
    let storage = dir.path().join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    // Its own spool directory: other tests of this binary run generators at the same time.
    let sink_uri = format!(
        "file://{}?protocol=csv&flush-interval=200ms&spool-dir={}",
        storage.display(),
        dir.path().join("spool").display()
    );
    let mut sink = Running(
        "generate",
        Command::new(BIN)
            .args(["--quiet", "--log-level", "error", "generate"])
            .args(["--sink-uri", &sink_uri, "--tps", "20"])
            .args([
                "--transactions",
                "100000",
                "--tables",
                "2",
                "--dispatchers",
                "2",
            ])
            .args(["--rows-per-txn", "2", "--ddl-every", "40"])
            .args(["--metrics-addr", &sink_addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(dir.path(), "generate"))
            .spawn()
            .expect("start cdc-storage generate"),
    );
    // A consumer replaying it, and one pointed at a storage whose metadata is garbage.
    let upstream = format!("file://{}?protocol=csv", storage.display());
    let mut good = Running(
        "consumer",
        consume(&upstream, &dir.path().join("good.db"), good_addr),
    );
    let broken_storage = dir.path().join("broken");
    std::fs::create_dir_all(&broken_storage).unwrap();
    std::fs::write(broken_storage.join("metadata"), b"{not json").unwrap();
    let broken_uri = format!("file://{}?protocol=csv", broken_storage.display());
    let mut broken = Running(
        "broken consumer",
        consume(&broken_uri, &dir.path().join("broken.db"), broken_addr),
    );

    let rules = dir.path().join("alerts.yml");
    std::fs::write(&rules, test_rules(&root)).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n\
             \x20 - job_name: cdc-sink\n    static_configs:\n      - targets: ['{sink_addr}']\n\
             \x20 - job_name: storage-consumer\n    static_configs:\n      - targets: ['{good_addr}', '{broken_addr}']\n",
            rules.display()
        ),
    )
    .unwrap();
    let _prom = Running(
        "prometheus",
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(dir.path(), "prometheus"))
            .spawn()
            .expect("start prometheus"),
    );
    wait_until("prometheus ready", 60, || {
        http_get(prom_addr, "/-/ready").is_some_and(|(c, _)| c == 200)
    });

    // Every target is up.
    wait_until("all three targets up", 60, || {
        let up = query(prom_addr, "up == 1");
        up.len() == 3
    });

    // Every dashboard query returns data.
    let queries = dashboard_queries(&root);
    assert!(
        queries.len() >= 20,
        "few dashboard queries: {}",
        queries.len()
    );
    let mut empty: Vec<(String, String)> = queries.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !empty.is_empty() && Instant::now() < deadline {
        sink.assert_alive();
        good.assert_alive();
        broken.assert_alive();
        empty.retain(|(_, q)| query(prom_addr, q).is_empty());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without data after 120s:\n{}",
        empty
            .iter()
            .map(|(t, q)| format!("  {t}: {q}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Data, not just series: the sink wrote rows and the good consumer applied them.
    let rate = |q: &str| -> f64 {
        query(prom_addr, q)
            .iter()
            .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
            .fold(0.0, f64::max)
    };
    wait_until("rows flowing through sink and consumer", 60, || {
        rate("sum(rate(cdc_sink_rows_written_total[30s]))") > 0.0
            && rate("sum(rate(cdc_consumer_rows_applied_total[30s]))") > 0.0
    });

    // The failing-consumer alert fires, for the broken consumer only.
    let firing = || -> Vec<String> {
        let (_, body) = http_get(prom_addr, "/api/v1/alerts").unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == "CdcConsumerFailing" && a["state"] == "firing")
            .map(|a| a["labels"]["instance"].as_str().unwrap_or("").to_string())
            .collect()
    };
    wait_until("CdcConsumerFailing firing", 60, || !firing().is_empty());
    assert_eq!(firing(), vec![broken_addr.to_string()]);
}
