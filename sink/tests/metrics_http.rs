//! `serve_metrics`: a running sink's registry scraped over HTTP shows the rows it published,
//! other paths and methods are refused, and the endpoint stops when its handle is dropped.

use crate::support;

use cdc_sink::{serve_metrics, FileNaming};
use std::sync::atomic::Ordering;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one raw HTTP/1.1 request and returns (status code, body).
async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP answer");
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

/// The value of the sample line `name{...changefeed="test"...} value` in a text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_sinks_metrics_are_scraped_over_http() {
    let h = harness("protocol=csv&flush-interval=10ms").await;
    let server = serve_metrics(h.registry.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let t = table("t", ts(0));
    h.sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let (flushed, flush_cb) = counter();
    h.sink
        .add_dml_event("d", event(&t, ts(1), "d", 0, 3), None, Some(flush_cb()))
        .unwrap();
    assert!(wait_for(5, || flushed.load(Ordering::SeqCst) == 1).await);

    let (code, body) = request(addr, "GET", "/metrics").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        sample(&body, "cdc_sink_rows_written_total"),
        Some(3.0),
        "{body}"
    );
    assert_eq!(sample(&body, "cdc_sink_files_written_total"), Some(1.0));
    assert!(
        body.contains("changefeed=\"test\""),
        "labels carried: {body}"
    );
    assert!(
        body.lines().any(|l| l.starts_with("cdc_spool_")),
        "the spool's family is on the same registry: {body}"
    );

    let (code, _) = request(addr, "GET", "/").await;
    assert_eq!(code, 404);
    let (code, _) = request(addr, "POST", "/metrics").await;
    assert_eq!(code, 405);

    h.sink.close().await.unwrap();
    server.shutdown();
    // Stopped: the accept loop exits and the listener closes.
    let closed = wait_for(5, || std::net::TcpStream::connect(addr).is_err()).await;
    assert!(closed, "the endpoint still accepts after shutdown");
}

#[tokio::test]
async fn a_busy_address_is_an_error_naming_it() {
    let first = serve_metrics(prometheus::Registry::new(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let err = serve_metrics(prometheus::Registry::new(), first.local_addr())
        .await
        .err()
        .expect("second bind on the same port");
    let text = err.to_string();
    assert!(
        text.contains(&first.local_addr().to_string()) && text.contains("metrics endpoint"),
        "{text}"
    );
}
