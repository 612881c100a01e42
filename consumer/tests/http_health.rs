//! `/health` and `/metrics`: freshness figures, the last round's audit record (warnings kept
//! apart from the fatal error), per-table progress, recent errors and the `cdc_consumer_*`
//! metrics.

use crate::support;

use cdc_common::DdlKind;
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::RoundOutcome;
use std::sync::{Arc, Mutex};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_freshness_and_the_last_round() {
    let mut w = Writer::new("memory://http-health?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a"), ins(2, "b")])]).await;
    w.file(&t, &[(ts(5), vec![ins(3, "c")])]).await;
    w.put("stray-object.txt", b"not part of the layout".to_vec())
        .await;
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
        .metrics(metrics)
        .health(health)
        .replayer()
        .await
        .unwrap();
    let RoundOutcome {
        record: rec,
        error: err,
        ..
    } = r.round().await;
    assert!(err.is_none());
    assert!(rec.warnings.iter().any(|w| w.contains("stray-object.txt")));
    assert!(rec.fatal.is_none());

    let h: serde_json::Value = serde_json::from_str(&http_get_ok(addr, "/health").await).unwrap();
    assert_eq!(h["checkpoint_ts"], ts(3).0);
    // Second file (ts 5) waits: applied up to the checkpoint through partial application.
    assert_eq!(h["applied_ts"], ts(3).0);
    assert_eq!(h["lag_ts"], 0);
    assert_eq!(h["lag_ms"], 0);
    assert_eq!(h["files_pending"], 1);
    let last = &h["last_round"];
    assert_eq!(last["tables"]["db.t"]["rows"], 2);
    assert_eq!(last["tables"]["db.t"]["files"], 1);
    assert_eq!(last["tables"]["db.t"]["ddls"], 1);
    assert!(last["fatal"].is_null());
    assert_eq!(last["warnings"].as_array().unwrap().len(), 1);
    assert!(last["started_at_ms"].as_u64().unwrap() <= last["ended_at_ms"].as_u64().unwrap());
    // Per-table progress: the DDL row's version and the one stream, at file 1 (rows at ts 2).
    let tp = &h["tables"]["db.t"];
    assert_eq!(tp["applied_ts"], ts(3).0);
    assert_eq!(tp["version"], ts(1).0);
    assert_eq!(tp["streams"].as_array().unwrap().len(), 1);
    assert_eq!(tp["streams"][0]["file_index"], 1);
    assert_eq!(tp["streams"][0]["commit_ts"], ts(2).0);
    assert_eq!(h["recent_errors"].as_array().unwrap().len(), 0);

    let m = http_get_ok(addr, "/metrics").await;
    for name in [
        "cdc_consumer_rows_applied_total 2",
        "cdc_consumer_files_applied_total 1",
        "cdc_consumer_data_units_total 1",
        "cdc_consumer_bytes_read_total",
        "cdc_consumer_apply_duration_seconds_bucket",
        "cdc_consumer_lag_seconds 0",
        "cdc_consumer_list_calls_total 1",
        "cdc_consumer_get_calls_total",
        "cdc_consumer_errors_total{kind=\"warning\"} 1",
        "cdc_consumer_files_pending 1",
    ] {
        assert!(m.contains(name), "missing `{name}` in\n{m}");
    }

    // A corrupt file: the fatal error is in the record, apart from warnings.
    let third = w.file(&t, &[(ts(6), vec![ins(4, "d")])]).await;
    w.put(&third, b"\"I\",broken".to_vec()).await;
    w.checkpoint(ts(9)).await;
    let RoundOutcome {
        record: rec,
        error: err,
        ..
    } = r.round().await;
    assert!(err.is_some());
    let fatal = rec.fatal.clone().unwrap();
    assert!(fatal.contains("CDC00000000000000000003.csv"), "{fatal}");
    // The warnings only name the table the error stopped (issue 20: stuck tables are named).
    assert_eq!(rec.warnings.len(), 1, "{:?}", rec.warnings);
    assert!(rec.warnings[0].starts_with("table `db.t` is stuck"));
    let (code, body) = http_get_status(addr, "/health").await;
    // The last round failed: failing, 503.
    assert_eq!(code, 503, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["status"], "failing");
    assert_eq!(h["freshness"]["consecutive_failed_rounds"], 1);
    assert_eq!(h["last_round"]["fatal"], fatal.as_str());
    let errors = h["recent_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["message"], fatal.as_str());
    assert_eq!(errors[0]["round"], 2);
    // The second file was applied before the broken third one.
    assert_eq!(h["last_round"]["tables"]["db.t"]["rows"], 1);
    assert!(h["lag_ts"].as_u64().unwrap() > 0);
}

/// Issue 14's case: csv storage read with `protocol=canal-json`. Every round fails; `/health`
/// must say so (failing, 503), the applied ts is unknown (null, not the checkpoint's) and the
/// lag metric is not 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_protocol_reads_as_failing_not_fresh() {
    let mut w = Writer::new("memory://http-wrong-protocol?protocol=csv&include-commit-ts=true");
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
    let uri = "memory://http-wrong-protocol?protocol=canal-json&enable-tidb-extension=true";
    let mut r = ReplayerBuilder::sqlite(uri, &dir.path().join("out.db"))
        .metrics(metrics)
        .health(health)
        .replayer()
        .await
        .unwrap();
    for _ in 0..2 {
        let RoundOutcome { error, .. } = r.round().await;
        assert!(
            error.is_some(),
            "a csv file read as canal-json must fail the round"
        );
    }
    let (code, body) = http_get_status(addr, "/health").await;
    assert_eq!(code, 503, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["status"], "failing", "{h}");
    let f = &h["freshness"];
    assert_eq!(f["checkpoint_ts"], ts(3).0, "{h}");
    assert!(f["applied_ts"].is_null(), "applied ts borrowed: {h}");
    assert!(f["lag"].is_null() && f["lag_ms"].is_null(), "{h}");
    assert!(h["applied_ts"].is_null(), "{h}");
    assert_eq!(f["consecutive_failed_rounds"], 2);
    assert!(f["last_success_ms_ago"].is_null());
    assert!(f["checkpoint_age_ms"].as_u64().unwrap() > 0);
    let m = http_get_ok(addr, "/metrics").await;
    assert!(!m.contains("cdc_consumer_lag_seconds 0\n"), "{m}");
    assert!(
        m.contains("cdc_consumer_consecutive_failed_rounds 2"),
        "{m}"
    );
    assert!(m.contains("cdc_consumer_checkpoint_age_seconds "), "{m}");
    let page = http_get_status(addr, "/").await.1;
    assert!(
        page.contains("status-failing\" id=\"status\">failing<"),
        "{page}"
    );
}
