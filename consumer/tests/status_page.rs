//! `GET /`: the HTML status page, fetched over HTTP after replaying a fixture: freshness,
//! per-table progress, the last round and recent errors, with storage texts escaped.

use crate::support;

use cdc_common::DdlKind;
use cdc_consumer::freshness::{Health, TableProgress};
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::RoundOutcome;
use cdc_consumer::status_page::escape;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use support::*;

/// A plain HTTP/1.1 GET; returns the lower-cased head and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let (head, body) = http_get_raw(addr, path).await;
    (head.to_ascii_lowercase(), body)
}

fn assert_html_200(head: &str) {
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
}

async fn serve(health: Arc<Mutex<Health>>, metrics: Metrics) -> SocketAddr {
    cdc_consumer::http::serve("127.0.0.1:0".parse().unwrap(), health, metrics)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_after_replay() {
    let mut w = Writer::new("memory://status-page?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "orders", ts(1));
    // A name with markup (no `/`: it is a path segment in storage).
    let evil = two_cols("db", "<img src=x onerror=alert(1)>", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.schema(&evil, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a"), ins(2, "b")])]).await;
    w.file(&evil, &[(ts(2), vec![ins(1, "x")])]).await;
    w.checkpoint(ts(3)).await;

    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(Health::default()));
    let addr = serve(health.clone(), metrics.clone()).await;

    // Before any round: the page renders with nothing in it.
    let (head, body) = http_get(addr, "/").await;
    assert_html_200(&head);
    assert!(body.contains("No round has finished yet."), "{body}");

    let mut r = ReplayerBuilder::sqlite(&w.uri, &dir.path().join("out.db"))
        .metrics(metrics)
        .health(health)
        .replayer()
        .await
        .unwrap();
    let RoundOutcome { error: err, .. } = r.round().await;
    assert!(err.is_none(), "{err:?}");

    let (head, body) = http_get(addr, "/").await;
    assert_html_200(&head);
    assert!(
        body.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
        "{body}"
    );
    // Applied ts with its wall-clock time (ts(3): 2023-11-14 22:13:23 UTC).
    assert!(
        body.contains(&format!("{} (2023-11-14 22:13:23.000 UTC)", ts(3).0)),
        "{body}"
    );
    assert!(body.contains("<td rowspan=\"1\">db.orders</td>"), "{body}");
    assert!(body.contains("No fatal error."), "{body}");
    // The markup name is shown as text, never as an element.
    assert!(
        body.contains("db.&lt;img src=x onerror=alert(1)&gt;"),
        "{body}"
    );
    assert!(!body.contains("<img"), "{body}");

    // A corrupt file: the round's fatal error and the recent errors list show it, escaped.
    let broken = w.file(&t, &[(ts(4), vec![ins(3, "c")])]).await;
    w.put(&broken, b"\"I\",<b>broken".to_vec()).await;
    w.checkpoint(ts(9)).await;
    let RoundOutcome {
        record: rec,
        error: err,
        ..
    } = r.round().await;
    assert!(err.is_some());
    let fatal = rec.fatal.unwrap();
    let (head, body) = http_get(addr, "/").await;
    assert_html_200(&head);
    assert!(body.contains("id=\"fatal\""), "{body}");
    assert!(body.contains("id=\"recent-errors\""), "{body}");
    assert!(fatal.contains("CDC00000000000000000002.csv"), "{fatal}");
    assert!(body.contains(&escape(&fatal)), "{body}");
    assert!(!body.contains("<b>"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_escapes_a_script_table_name() {
    let name = "db.<script>alert(1)</script>";
    let mut h = Health::default();
    h.tables.insert(
        name.to_string(),
        TableProgress {
            applied_ts: ts(3).0,
            ..Default::default()
        },
    );
    let addr = serve(Arc::new(Mutex::new(h)), Metrics::new()).await;
    let (head, body) = http_get(addr, "/").await;
    assert_html_200(&head);
    assert!(!body.contains("<script"), "{body}");
    assert!(
        body.contains("db.&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
}
