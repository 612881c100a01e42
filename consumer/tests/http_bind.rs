//! The HTTP endpoints (`/`, `/health`, `/metrics`) are off unless `--metrics-addr` is given,
//! a bare port binds 127.0.0.1 only, and another interface is used only when an address says
//! so (`0.0.0.0:9100`).

use cdc_consumer::config::{parse_metrics_addr, Args, Config};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use clap::Parser;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

fn config(extra: &[&str]) -> Config {
    let mut argv = vec!["storage-consumer", "--upstream-uri", "memory://http-bind"];
    argv.extend_from_slice(extra);
    Config::from_args(&Args::parse_from(argv)).unwrap()
}

#[test]
fn endpoints_are_off_unless_asked_and_a_bare_port_means_loopback() {
    assert_eq!(config(&[]).metrics_addr, None);
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for (given, want) in [
        ("9100", SocketAddr::new(lo, 9100)),
        (":9100", SocketAddr::new(lo, 9100)),
        ("0", SocketAddr::new(lo, 0)),
        ("127.0.0.1:0", SocketAddr::new(lo, 0)),
        ("0.0.0.0:9100", "0.0.0.0:9100".parse().unwrap()),
        ("[::1]:9100", "[::1]:9100".parse().unwrap()),
    ] {
        assert_eq!(parse_metrics_addr(given).unwrap(), want, "{given}");
        assert_eq!(config(&["--metrics-addr", given]).metrics_addr, Some(want));
    }
    for bad in ["99999", "localhost:9100", "", ":", "1.2.3.4"] {
        let e = parse_metrics_addr(bad).unwrap_err();
        assert!(
            matches!(&e, cdc_consumer::Error::Config { name, .. } if name == "metrics-addr"),
            "{bad}: {e}"
        );
    }
}

async fn serve(addr: &str) -> SocketAddr {
    cdc_consumer::http::serve(
        parse_metrics_addr(addr).unwrap(),
        Arc::new(Mutex::new(Health::default())),
        Metrics::new(),
    )
    .await
    .unwrap()
}

async fn reachable(ip: [u8; 4], port: u16) -> bool {
    tokio::net::TcpStream::connect(SocketAddr::from((ip, port)))
        .await
        .is_ok()
}

/// Linux routes all of 127.0.0.0/8 to the loopback device: a listener on 0.0.0.0 answers on
/// 127.0.0.2, one bound to 127.0.0.1 does not (as it does not on any external interface).
#[tokio::test]
async fn a_loopback_listener_answers_on_127_0_0_1_only() {
    let bound = serve("0").await;
    assert_eq!(bound.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!(reachable([127, 0, 0, 1], bound.port()).await);
    assert!(!reachable([127, 0, 0, 2], bound.port()).await);
    // The check can tell: an explicit all-interfaces address is reachable there.
    let all = serve("0.0.0.0:0").await;
    assert!(all.ip().is_unspecified());
    assert!(reachable([127, 0, 0, 2], all.port()).await);
}

#[test]
fn the_binary_serves_on_loopback_for_a_bare_port() {
    let dir = tempfile::tempdir().unwrap();
    let progress = dir.path().join("p.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storage-consumer"))
        .args(["--upstream-uri", "memory://http-bind-bin", "--once"])
        .args(["--downstream-uri", "stdout://", "--metrics-addr", "0"])
        .arg("--progress-file")
        .arg(&progress)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("serving /health and /metrics"))
        .unwrap_or_else(|| panic!("no serving line in\n{stderr}"));
    assert!(line.contains("addr=127.0.0.1:"), "{line}");
}
