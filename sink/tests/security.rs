//! Security of the sink: object keys never escape the configured prefix, hostile names are
//! refused with a typed error (and stop nothing), and secrets from storage URIs never appear in
//! errors, `Debug` output, logs or metrics, also when the store refuses the credentials.
//!
//! Logs are captured by one process-wide subscriber at TRACE for every target (ours and the
//! object store clients'), so this file is its own test binary.

mod support;

use cdc_common::testing::server_uri;
use cdc_common::testing::FaultStore;
use cdc_common::{DdlEvent, DdlKind, SinkOptions, TableDef};
use cdc_sink::{FileNaming, RetryPolicy, Sink, SinkConfig, SinkError};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const PREFIX: &str = "tenant-a/feed-1";

fn create(def: &TableDef) -> DdlEvent {
    DdlEvent {
        commit_ts: def.version,
        query: "CREATE TABLE x (id BIGINT PRIMARY KEY)".into(),
        kind: DdlKind::CreateTable,
        schema: def.schema.clone(),
        tables: vec![def.clone()],
        prev_tables: vec![],
    }
}

fn named(schema: &str, name: &str) -> Arc<TableDef> {
    let mut t = (*table(name, ts(0))).clone();
    t.schema = schema.into();
    Arc::new(t)
}

/// A sink whose store is `PrefixStore(PREFIX, FaultStore(memory))`: the fault store records
/// every key as the bucket sees it.
async fn prefixed_sink(spool: &std::path::Path) -> (Sink, FaultStore) {
    let bucket = FaultStore::new(Arc::new(InMemory::new()));
    let store = PrefixStore::new(bucket.clone(), Path::from(PREFIX));
    let options =
        SinkOptions::from_query("protocol=csv&flush-interval=10ms&date-separator=day").unwrap();
    let config = SinkConfig::new("security")
        .with_writer_count(2)
        .with_retry(fast_retry())
        .with_spool(spool_config(spool, 16 << 20, 64 << 20));
    let sink = Sink::with_store(
        Arc::new(store),
        options,
        config,
        &prometheus::Registry::new(),
    )
    .await
    .unwrap();
    (sink, bucket)
}

fn assert_under_prefix(keys: &[String]) {
    for k in keys {
        assert!(
            k.starts_with(&format!("{PREFIX}/")),
            "key `{k}` escapes the prefix"
        );
        assert!(
            !k.split('/').any(|s| s == ".." || s == "." || s.is_empty()),
            "key `{k}` has a relative or empty segment"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_refused_and_write_nothing() {
    let spool = tempfile::tempdir().unwrap();
    let (sink, bucket) = prefixed_sink(spool.path()).await;
    sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let long = "x".repeat(256);
    let hostile = [
        "..",
        ".",
        "",
        "a/b",
        "../etc",
        "a\0b",
        "tab\tname",
        "new\nline",
        "\u{7f}",
        &long,
    ];
    for name in hostile {
        for (schema, table) in [("s", name), (name, "t")] {
            let t = named(schema, table);
            let r = sink.add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, None);
            assert!(
                matches!(&r, Err(SinkError::Layout(e)) if matches!(**e, cdc_common::Error::InvalidName { .. })),
                "{schema:?}.{table:?}: {r:?}"
            );
            let r = sink.write_block_event(&create(&t), &["d"]).await;
            assert!(
                matches!(&r, Err(SinkError::Layout(_))),
                "{schema:?}.{table:?}: {r:?}"
            );
        }
    }
    for id in ["../x", "a/b", "a b", "", "x\0"] {
        assert!(
            matches!(
                sink.add_dispatcher(id, FileNaming::Dispatcher),
                Err(SinkError::InvalidParameter { .. })
            ),
            "{id:?}"
        );
    }
    // Nothing stopped the sink; a good table still works.
    assert!(sink.error().is_none());
    let t = named("s", "ok");
    sink.write_block_event(&create(&t), &["d"]).await.unwrap();
    sink.add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, None)
        .unwrap();
    sink.close().await.unwrap();
    let keys = bucket.completed_puts();
    assert_eq!(keys.len(), 3, "{keys:?}"); // schema file, data file, index file
    assert_under_prefix(&keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backslash_in_a_name_is_refused_on_azure_and_kept_elsewhere() {
    let Some(uri) = server_uri("CDC_TEST_AZURE_URI") else {
        return;
    };
    let spool = tempfile::tempdir().unwrap();
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let uri = match uri.split_once('?') {
        Some((base, q)) => format!("{base}/backslash-{n}?{q}&protocol=csv&flush-interval=10ms"),
        None => format!("{uri}/backslash-{n}?protocol=csv&flush-interval=10ms"),
    };
    let config = SinkConfig::new("backslash")
        .with_retry(fast_retry())
        .with_spool(spool_config(spool.path(), 16 << 20, 64 << 20));
    let sink = Sink::open(&uri, config, &prometheus::Registry::new())
        .await
        .unwrap();
    sink.add_dispatcher("d", FileNaming::Table).unwrap();
    for (schema, table) in [("s", "a\\b"), ("x\\y", "t")] {
        let t = named(schema, table);
        let r = sink.write_block_event(&create(&t), &["d"]).await;
        assert!(
            matches!(&r, Err(SinkError::Layout(e)) if e.to_string().contains("turns into `/`")),
            "{schema:?}.{table:?}: {r:?}"
        );
        let r = sink.add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, None);
        assert!(matches!(&r, Err(SinkError::Layout(_))), "{r:?}");
    }
    assert!(sink.error().is_none(), "a refused name stops nothing");
    sink.close().await.unwrap();

    // Any other store keeps the name as it is (see every_key_stays_under_the_configured_prefix).
    let spool = tempfile::tempdir().unwrap();
    let (sink, bucket) = prefixed_sink(spool.path()).await;
    sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let t = named("s", "a\\b");
    sink.write_block_event(&create(&t), &["d"]).await.unwrap();
    sink.add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, None)
        .unwrap();
    sink.close().await.unwrap();
    let keys = bucket.completed_puts();
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("{PREFIX}/s/a\\b/"))),
        "{keys:?}"
    );
}

/// Names the layout accepts, biased towards path-like and percent-encoded characters.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._%~ \\\\#?*-]{1,12}",
        "[a-z\"`{}<>|^\\[\\]%]{1,8}",
        "\\.{1,3}[a-z]{0,3}",
        "[a-z]{1,4}\\.\\.[a-z]{0,4}",
        "\\PC{1,8}",
    ]
    .prop_filter("accepted by the layout", |n| {
        cdc_common::layout::validate_name(n).is_ok()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_key_stays_under_the_configured_prefix(
        names in proptest::collection::vec((name(), name()), 1..4)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let keys = rt.block_on(async {
            let spool = tempfile::tempdir().unwrap();
            let (sink, bucket) = prefixed_sink(spool.path()).await;
            for (i, (schema, table)) in names.iter().enumerate() {
                let id = format!("d{i}");
                sink.add_dispatcher(&id, FileNaming::Dispatcher).unwrap();
                let t = named(schema, table);
                sink.write_block_event(&create(&t), &[&id]).await.unwrap();
                sink.add_dml_event(&id, event(&t, ts(1 + i as u64), &id, 0, 1), None, None)
                    .unwrap();
            }
            sink.checkpoint(ts(0)).await.unwrap();
            sink.close().await.unwrap();
            bucket.completed_puts()
        });
        // Per table: a schema file, a data file and an index file; plus `metadata`.
        prop_assert!(keys.len() > 3 * names.len(), "{:?}", keys);
        assert_under_prefix(&keys);
        // Names are stored verbatim, as the layout (and TiCDC) writes them and the consumer
        // reads them back: nothing percent-encoded.
        for (schema, table) in &names {
            let dir = format!("{PREFIX}/{schema}/{table}/");
            prop_assert!(
                keys.iter().any(|k| k.starts_with(&dir) && k.ends_with(".csv")),
                "no data file under `{}`: {:?}", dir, keys
            );
            prop_assert!(
                keys.iter().any(|k| k.starts_with(&dir) && k.contains("/meta/schema_")),
                "no schema file under `{}`: {:?}", dir, keys
            );
        }
    }
}

/// Every log line of the process, captured at TRACE for every target.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    captured_logs(tracing_subscriber::filter::LevelFilter::TRACE)
}

/// A secret that can be told apart from anything else in the output.
fn secret(tag: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}{n:x}")
}

/// An Azure account key (base64 of 66 bytes) carrying a marker.
fn azure_key(marker: &str) -> String {
    let mut k = marker
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>();
    while k.len() < 88 {
        k.push('A');
    }
    k.truncate(88);
    k
}

/// Opens a sink at `uri`, makes it fail against the store, and returns every text it showed:
/// errors (Display and Debug), the error callback's, the sink's Debug and the metrics.
async fn everything_shown(uri: &str) -> (Vec<String>, Option<SinkError>) {
    let spool = tempfile::tempdir().unwrap();
    let shown: Arc<Mutex<Vec<String>>> = Arc::default();
    let cb = Arc::clone(&shown);
    let config = SinkConfig::new("secrets")
        .with_writer_count(1)
        .with_retry(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(10),
            request_timeout: Duration::from_millis(400),
        })
        .with_spool(spool_config(spool.path(), 16 << 20, 64 << 20))
        .with_on_error(Arc::new(move |e: &SinkError| {
            cb.lock().unwrap().push(format!("{e} {e:?}"))
        }));
    let registry = prometheus::Registry::new();
    let mut out = Vec::new();
    let sink = match Sink::open(uri, config, &registry).await {
        Ok(s) => s,
        Err(e) => {
            out.push(format!("{e} {e:?}"));
            return (out, Some(e));
        }
    };
    out.push(format!("{sink:?}"));
    sink.add_dispatcher("d", FileNaming::Table).unwrap();
    let t = table("t", ts(0));
    let first = sink.write_block_event(&create(&t), &["d"]).await.err();
    if let Some(e) = &first {
        out.push(format!("{e} {e:?}"));
    }
    let r = sink.add_dml_event("d", event(&t, ts(1), "d", 0, 1), None, None);
    out.push(format!("{r:?}"));
    out.push(format!("{:?}", sink.checkpoint(ts(2)).await));
    out.push(format!("{:?}", sink.error()));
    out.push(
        prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap(),
    );
    out.push(format!("{:?}", sink.close().await));
    out.extend(shown.lock().unwrap().iter().cloned());
    (out, first)
}

fn assert_hidden(what: &str, shown: &[String], secrets: &[&str]) {
    let logs = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(!logs.is_empty(), "no log captured");
    for s in secrets {
        for text in shown {
            assert!(!text.contains(s), "{what}: secret `{s}` shown in: {text}");
        }
        assert!(!logs.contains(s), "{what}: secret `{s}` in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_show_when_the_store_is_unreachable() {
    logs();
    let (key, token, sig) = (secret("s3key"), secret("s3token"), secret("sasSig"));
    let account_key = azure_key(&secret("azkey"));
    let cases = [
        format!(
            "s3://bucket/prefix?endpoint=http://127.0.0.1:1&access-key=AKID&secret-access-key={key}\
             &session-token={token}&protocol=csv&flush-interval=10ms"
        ),
        format!(
            "azure://container/prefix?endpoint=http://127.0.0.1:1&account-name=acct\
             &account-key={}&protocol=csv",
            account_key.replace('+', "%2B").replace('/', "%2F")
        ),
        format!(
            "azure://container/prefix?endpoint=http://127.0.0.1:1&account-name=acct\
             &sas-token=sv%3D2022-11-02%26ss%3Db%26sig%3D{sig}&protocol=csv"
        ),
    ];
    for uri in &cases {
        let (shown, first) = everything_shown(uri).await;
        assert!(first.is_some(), "the unreachable store accepted a write");
        assert_hidden(
            uri.split('?').next().unwrap(),
            &shown,
            &[&key, &token, &sig, &account_key],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_show_when_the_store_refuses_the_credentials() {
    logs();
    let key = secret("wrongS3key");
    let account_key = azure_key(&secret("wrongAzKey"));
    let sig = secret("bogusSig");
    let mut cases = Vec::new();
    if let Some(s3) = server_uri("CDC_TEST_S3_URI") {
        let (base, query) = s3.split_once('?').unwrap();
        let query: Vec<&str> = query
            .split('&')
            .filter(|kv| !kv.starts_with("secret-access-key="))
            .collect();
        cases.push(format!(
            "{base}/auth-test?{}&secret-access-key={key}&protocol=csv",
            query.join("&")
        ));
    }
    if let Some(az) = server_uri("CDC_TEST_AZURE_URI") {
        let (base, query) = az.split_once('?').unwrap();
        cases.push(format!(
            "{base}/auth-test?{query}&account-key={account_key}&protocol=csv"
        ));
        let endpoint = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("endpoint="))
            .unwrap();
        cases.push(format!(
            "{base}/auth-test?endpoint={endpoint}/devstoreaccount1&account-name=devstoreaccount1\
             &sas-token=sv%3D2022-11-02%26ss%3Db%26srt%3Dco%26sp%3Drwdlc%26se%3D2099-01-01%26sig%3D{sig}\
             &protocol=csv"
        ));
    }
    for uri in &cases {
        let (shown, first) = everything_shown(uri).await;
        let first = first.expect("the store accepted wrong credentials");
        assert!(
            matches!(&first, SinkError::Storage { source, .. }
                if matches!(**source, object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::Generic { .. })),
            "{first:?}"
        );
        eprintln!("refused as expected: {first}");
        assert_hidden(
            uri.split('?').next().unwrap(),
            &shown,
            &[&key, &account_key, &sig],
        );
    }
}
