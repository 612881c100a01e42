//! `/wait?ts=N&timeout=...`: read-your-writes. Many concurrent waiters are answered 200 by the
//! round that applies N (woken, not polling: no storage call while they wait), a waiter past
//! its timeout gets 504 with the same freshness document, and a malformed request 400.

use crate::support;

use cdc_common::DdlKind;
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use std::sync::{Arc, Mutex};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_answered_by_the_round_that_applies_their_ts() {
    let mut w = Writer::new("memory://wait-many?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(3)).await;

    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(Health::default()));
    let addr = cdc_consumer::http::serve(
        "127.0.0.1:0".parse().unwrap(),
        health.clone(),
        metrics.clone(),
    )
    .await
    .unwrap();
    let mut r = ReplayerBuilder::sqlite(&w.uri, &dir.path().join("out.db"))
        .metrics(metrics.clone())
        .health(health)
        .replayer()
        .await
        .unwrap();
    assert!(r.round().await.error.is_none());

    // Already applied: answered at once.
    let (code, body) = http_get_status(addr, &format!("/wait?ts={}&timeout=5s", ts(3).0)).await;
    assert_eq!(code, 200, "{body}");
    let a: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(a["reached"], true);
    assert_eq!(a["freshness"]["applied_ts"], ts(3).0);

    // Not applied yet: 200 waiters wait; storage is not read while they do.
    let target = ts(6).0;
    let calls = |m: &Metrics| m.list_calls.get() + m.get_calls.get();
    let before = calls(&metrics);
    let waiters: Vec<_> = (0..200)
        .map(|_| {
            tokio::spawn(async move {
                http_get_status(addr, &format!("/wait?ts={target}&timeout=30s")).await
            })
        })
        .collect();
    // A short waiter times out first: 504 with the same document.
    let (code, body) = http_get_status(addr, &format!("/wait?ts={target}&timeout=300ms")).await;
    assert_eq!(code, 504, "{body}");
    let a: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(a["reached"], false);
    assert_eq!(a["freshness"]["applied_ts"], ts(3).0);
    assert_eq!(a["status"], "ready");
    assert_eq!(calls(&metrics), before, "waiters must not read storage");
    assert!(waiters.iter().all(|h| !h.is_finished()));

    // The round that applies ts 6 answers every waiter.
    w.file(&t, &[(ts(5), vec![ins(2, "b")])]).await;
    w.checkpoint(ts(7)).await;
    let started = std::time::Instant::now();
    assert!(r.round().await.error.is_none());
    for h in waiters {
        let (code, body) = h.await.unwrap();
        assert_eq!(code, 200, "{body}");
        let a: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(a["reached"], true);
        assert!(a["freshness"]["applied_ts"].as_u64().unwrap() >= target);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let (code, _) = http_get_status(addr, "/wait?timeout=1s").await;
    assert_eq!(code, 400);
    let (code, _) = http_get_status(addr, "/wait?ts=abc").await;
    assert_eq!(code, 400);
}
