//! `docs/grafana-dashboard.json` uses only metric names the code really exports.
//!
//! Every `cdc_*` identifier in a panel target's `expr` (and in a template variable's query) is
//! looked up against the real registries: the one a `cdc_sink::Sink` (with its spool) registers
//! on, and the consumer's `cdc_consumer::metrics::Metrics`. Histogram series (`_bucket`, `_sum`,
//! `_count`) are checked by their family name, which must then be a histogram.
//!
//! Why not `gather()` alone: a `*Vec` family (`cdc_sink_storage_errors_total{op}`, for one)
//! only appears in `gather()` once a label value has been used, and a fresh sink has had no
//! storage error. So a name missing from `gather()` is looked up among the registered
//! descriptors instead: registering a probe collector under that name fails exactly when a
//! collector with that name is already registered (same name and const labels: `AlreadyReg`;
//! same name, other labels or help: a dimension mismatch). The probe is unregistered when it
//! succeeds, i.e. when the name is unknown. The consumer keeps its registry private, so its
//! families come from `Metrics::render()` after its one vec (`errors{kind}`) has been touched.

use prometheus::core::Collector;
use prometheus::proto::MetricType;
use prometheus::{IntCounter, Opts, Registry};
use std::collections::{BTreeMap, BTreeSet};

const CHANGEFEED: &str = "dash";
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

/// Every `cdc_[a-z_]+` identifier in `text` (not preceded by an identifier character).
fn metric_names(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find("cdc_") {
        let start = i + pos;
        let preceded = start > 0 && {
            let c = bytes[start - 1];
            c.is_ascii_alphanumeric() || c == b'_' || c == b':'
        };
        let mut end = start + 4;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        if !preceded && end > start + 4 {
            out.push(text[start..end].to_string());
        }
        i = end;
    }
    out
}

/// (panel title, expression) for every target of every panel, rows' nested panels included,
/// plus the template variables' queries.
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("<untitled>").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((title.clone(), expr.to_string()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = match &var["query"] {
            serde_json::Value::String(s) => Some(s.clone()),
            q => q["query"].as_str().map(str::to_string),
        };
        if let Some(q) = query {
            let name = var["name"].as_str().unwrap_or("?");
            out.push((format!("variable ${name}"), q));
        }
    }
    out
}

/// Whether a collector named `name` is registered on `registry` (whatever its labels).
fn registered(registry: &Registry, name: &str) -> bool {
    let probe = IntCounter::with_opts(
        Opts::new(name, "dashboard_metrics probe").const_label("changefeed", CHANGEFEED),
    )
    .expect("probe metric is valid");
    assert_eq!(probe.desc().len(), 1);
    match registry.register(Box::new(probe.clone())) {
        Ok(()) => {
            registry
                .unregister(Box::new(probe))
                .expect("probe was just registered");
            false
        }
        Err(_) => true,
    }
}

/// Family name -> type of what `gather()` returns for the sink's registry.
fn gathered(registry: &Registry) -> BTreeMap<String, MetricType> {
    registry
        .gather()
        .into_iter()
        .map(|f| (f.name().to_string(), f.get_field_type()))
        .collect()
}

/// Family name -> `# TYPE` of the consumer's rendered metrics.
fn consumer_families() -> BTreeMap<String, String> {
    let metrics = cdc_consumer::metrics::Metrics::new();
    // The only vec family: without a label value it is not rendered.
    metrics.errors.with_label_values(&["warning"]);
    metrics
        .render()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn dashboard_uses_only_exported_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-dashboard.json");
    let text = std::fs::read_to_string(path).expect("read docs/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&text).expect("docs/grafana-dashboard.json is JSON");

    let spool_dir = tempfile::tempdir().unwrap();
    let registry = Registry::new();
    let config = cdc_sink::SinkConfig::new(CHANGEFEED).with_spool(
        cdc_spool::SpoolConfig::builder()
            .dir(spool_dir.path())
            .memory_quota(64 << 20)
            .disk_quota(256 << 20)
            .build()
            .unwrap(),
    );
    let unique = format!(
        "dashboard-metrics-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let sink = cdc_sink::Sink::open(&format!("memory://{unique}"), config, &registry)
        .await
        .expect("open sink");
    let sink_gathered = gathered(&registry);
    let consumer = consumer_families();
    assert!(
        sink_gathered.keys().any(|n| n.starts_with("cdc_sink_"))
            && sink_gathered.keys().any(|n| n.starts_with("cdc_spool_"))
            && consumer.keys().any(|n| n.starts_with("cdc_consumer_")),
        "registries look empty: sink {sink_gathered:?}, consumer {consumer:?}"
    );

    // Some(is_histogram) when the family is exported, None when it is not.
    let lookup = |name: &str| -> Option<Option<bool>> {
        if let Some(t) = sink_gathered.get(name) {
            return Some(Some(*t == MetricType::HISTOGRAM));
        }
        if let Some(t) = consumer.get(name) {
            return Some(Some(t == "histogram"));
        }
        // Registered but not gathered: a vec family with no label value used yet. Vecs here
        // are counters and gauges, never histograms.
        registered(&registry, name).then_some(None)
    };

    let exprs = dashboard_exprs(&dashboard);
    assert!(
        exprs.len() >= 8,
        "expected panel targets, found {}",
        exprs.len()
    );
    let mut used = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for (title, expr) in &exprs {
        let names = metric_names(expr);
        assert!(
            !names.is_empty() || title.starts_with("variable"),
            "panel {title:?} has a target with no cdc_* metric: {expr}"
        );
        for name in names {
            let ok = match lookup(&name) {
                Some(_) => true,
                None => HISTOGRAM_SUFFIXES.iter().any(|s| {
                    name.strip_suffix(s)
                        .is_some_and(|base| lookup(base) == Some(Some(true)))
                }),
            };
            if ok {
                used.insert(name);
            } else {
                unknown.insert(format!("{name} (panel {title:?})"));
            }
        }
    }
    sink.close().await.expect("close sink");

    assert!(
        unknown.is_empty(),
        "docs/grafana-dashboard.json uses metrics the code does not export: {}",
        unknown.into_iter().collect::<Vec<_>>().join(", ")
    );
    assert!(!used.is_empty());
}

#[test]
fn metric_name_extraction() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le) (rate(cdc_sink_flush_bytes_bucket{changefeed=\"$changefeed\"}[5m]))) + xcdc_no + cdc_consumer_lag_seconds"
        ),
        vec!["cdc_sink_flush_bytes_bucket", "cdc_consumer_lag_seconds"]
    );
}
