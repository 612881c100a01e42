//! Capture's metrics at `--metrics-addr`: a real capture of a few transactions, scraped over
//! HTTP, reports the transactions, rows, snapshot rows and confirmed ts it did, the slot's WAL
//! lag, and the sink's own metrics on the same endpoint. Needs CDC_TEST_POSTGRES_URI (under
//! CI=true a missing server fails the test).
use crate::support;

use std::io::{Read, Write};
use support::*;

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect /metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// The value of the series of `name` (one series expected), or None.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_serves_its_metrics_and_the_sinks() {
    let Some(uri) = pg_uri() else { return };
    let c = connect(&uri).await;
    let s = unique("cap_metrics");
    let (slot, publication) = (unique("slot_metrics"), unique("pub_metrics"));
    c.batch_execute(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.t (id int PRIMARY KEY, v text);
         INSERT INTO {s}.t VALUES (1, 'a'), (2, 'b'), (3, 'c');
         CREATE PUBLICATION {publication} FOR TABLES IN SCHEMA {s}"
    ))
    .await
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let mut cfg = config(&uri, &publication, &slot, &sink_uri(&storage));
    cfg.metrics_addr = Some(addr);
    let changefeed = cfg.changefeed.clone();
    let mut capture = start(cfg);
    tokio::select! {
        _ = wait_checkpoint(&storage) => {}
        _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => panic!("no snapshot"),
    }
    for i in 10..15 {
        c.batch_execute(&format!(
            "BEGIN; INSERT INTO {s}.t VALUES ({i}, 'x'); UPDATE {s}.t SET v = 'y' WHERE id = 1; COMMIT"
        ))
        .await
        .unwrap();
    }
    let end = current_lsn(&c).await;
    capture.wait_confirmed(&c, &slot, &end).await;
    let text = scrape(addr);
    let get = |n: &str| value(&text, n).unwrap_or_else(|| panic!("no series {n} in\n{text}"));
    assert!(
        text.contains(&format!(
            "cdc_capture_transactions_total{{changefeed=\"{changefeed}\"}}"
        )),
        "{text}"
    );
    assert_eq!(get("cdc_capture_snapshot_rows_total"), 3.0);
    assert_eq!(get("cdc_capture_transactions_total"), 5.0);
    assert_eq!(get("cdc_capture_rows_total"), 3.0 + 10.0);
    assert_eq!(get("cdc_capture_reconnects_total"), 0.0);
    assert!(get("cdc_capture_polls_total") >= 1.0);
    assert!(get("cdc_capture_confirmed_ts") > 0.0);
    assert!(get("cdc_capture_slot_lag_bytes") >= 0.0);
    assert!(
        get("cdc_sink_files_written_total") >= 1.0,
        "the sink's metrics too"
    );
    let report = capture.stop().await;
    assert_eq!(report.transactions, 5);
    drop_slot(&c, &slot).await;
}
