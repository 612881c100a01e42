//! Secrets of the URIs (S3 `secret-access-key`, Azure `account-key`, the
//! PostgreSQL and MySQL passwords of the downstream URI) never appear in the consumer's logs,
//! errors, `/health`, status page or `/metrics`, on the error paths where they are most likely
//! to leak: an upstream that refuses the credentials and a downstream that cannot be reached
//! or refuses the password. Checked in-process (a tracing subscriber capturing every log line
//! at trace level) and through the binary's stderr.

mod support;

use cdc_common::DdlKind;
use cdc_consumer::backend::sqlite::SqliteDownstream;
use cdc_consumer::config::{Config, TableFilter};
use cdc_consumer::discovery::{Discovery, Upstream};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::replay::Replayer;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use support::*;

/// Every log line of this test binary, at trace level.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = buf.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(w.clone()))
            .init();
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// The secrets, as the store or database sees them (the URIs carry them percent-encoded).
const S3_SECRET: &str = "S3cretAccessValue/42+x";
const S3_SECRET_ENC: &str = "S3cretAccessValue%2F42%2Bx";
const AZ_KEY: &str = "QXp1cmVTZWNyZXRLZXlWYWx1ZTEyMzQ1Njc4OTA=";
const AZ_KEY_ENC: &str = "QXp1cmVTZWNyZXRLZXlWYWx1ZTEyMzQ1Njc4OTA%3D";
const PG_PASSWORD: &str = "PgPassw0rd-secret/x";
const PG_PASSWORD_ENC: &str = "PgPassw0rd-secret%2Fx";
const MY_PASSWORD: &str = "MyPassw0rd-secret";

const SECRETS: &[&str] = &[
    S3_SECRET,
    S3_SECRET_ENC,
    AZ_KEY,
    AZ_KEY_ENC,
    PG_PASSWORD,
    PG_PASSWORD_ENC,
    MY_PASSWORD,
];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "secret `{s}` in {what}:\n{text}");
    }
}

/// Upstream URIs whose credentials the servers refuse (skipped outside CI when a server is not
/// running, like every server test).
fn bad_upstreams() -> Vec<String> {
    let mut v = Vec::new();
    if let Some(s3) = cdc_common::testing::server_uri("CDC_TEST_S3_URI") {
        let (base, query) = s3.split_once('?').unwrap();
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some(("secret-access-key", _)) => format!("secret-access-key={S3_SECRET_ENC}"),
                _ => kv.to_string(),
            })
            .collect();
        v.push(format!("{base}/secrets?{}&protocol=csv", query.join("&")));
    }
    if let Some(az) = cdc_common::testing::server_uri("CDC_TEST_AZURE_URI") {
        v.push(format!("{az}&account-key={AZ_KEY_ENC}&protocol=csv"));
    }
    v
}

/// Downstream URIs that fail: a closed port, and the real servers with a wrong password.
fn bad_downstreams() -> Vec<String> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut v = vec![
        format!(
            "postgres://cdc:{PG_PASSWORD_ENC}@127.0.0.1:{closed}/db?password={PG_PASSWORD_ENC}"
        ),
        format!("mysql://cdc:{MY_PASSWORD}@127.0.0.1:{closed}/db"),
    ];
    if let Some(pg) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") {
        // A role that does not exist, with a password (trust or password auth both refuse).
        let (_, rest) = pg.split_once('@').unwrap();
        v.push(format!("postgres://nosuchrole:{PG_PASSWORD_ENC}@{rest}"));
    }
    if let Some(my) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") {
        let (_, rest) = my.split_once('@').unwrap();
        v.push(format!("mysql://cdc:{MY_PASSWORD}@{rest}"));
    }
    v
}

fn config(up: &str, down: &str) -> Config {
    builder(up, down).config().unwrap()
}

/// Rounds every 10 ms.
fn builder(up: &str, down: &str) -> ReplayerBuilder {
    ReplayerBuilder::new(up, down).args(&["--interval", "10ms"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_errors_health_status_page_or_metrics() {
    let logs = logs();
    let ups = bad_upstreams();
    let downs = bad_downstreams();
    let dir = tempfile::tempdir().unwrap();
    let mut shown = Vec::new();
    // A good upstream with a failing downstream, and every failing upstream.
    let mut good = Writer::new("memory://secrets-good?protocol=csv&include-commit-ts=true");
    let t = two_cols("db", "t", ts(1));
    w_setup(&mut good, &t).await;
    let mut pairs: Vec<(String, String)> = downs
        .iter()
        .map(|d| (good.uri.clone(), d.clone()))
        .collect();
    for (i, u) in ups.iter().enumerate() {
        pairs.push((u.clone(), downs[i % downs.len()].clone()));
    }
    for (up, down) in &pairs {
        let cfg = config(up, down);
        shown.push(format!("{cfg:?}"));
        // The downstream connection error, as `storage-consumer` would print it.
        match builder(up, down).replayer().await {
            Ok(_) => panic!("`{}` connected", cfg.downstream_redacted),
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("downstream"), "{text}");
                shown.push(cfg.secrets.redact(&text).into_owned());
                // The structured error itself is already clean.
                shown.push(text);
            }
        }
        // Rounds against the upstream (failing when its credentials are refused), with the
        // reconnect to the failing downstream after each failed round.
        let metrics = Metrics::new();
        let health = Arc::new(Mutex::new(Health::default()));
        let store = cfg.upstream.build().unwrap();
        let disc = Discovery::new(
            Upstream::new(store, metrics.clone()),
            cfg.layout,
            TableFilter::all(),
        );
        let down = SqliteDownstream::open(&dir.path().join("s.db"), 16).unwrap();
        let mut r = Replayer::new(
            disc,
            Box::new(down),
            &cfg.sink,
            cfg.on_bad_file,
            cdc_consumer::replay::ProgressRead::Settled,
            metrics.clone(),
            health.clone(),
        )
        .await
        .unwrap();
        r.set_secrets(cfg.secrets.clone());
        let upstream_fails = *up != good.uri;
        let task = {
            let cfg = cfg.clone();
            tokio::spawn(async move { cdc_consumer::run(&cfg, r).await })
        };
        // Bounded wait for a few rounds (never a timing assertion: the bound only ends a hang).
        let want_errors = if upstream_fails { 2 } else { 0 };
        let mut rounds = 0;
        for _ in 0..2000 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let h = health.lock().unwrap();
            rounds = h.last_round.as_ref().map(|r| r.round).unwrap_or(0);
            if rounds >= 3 && h.recent_errors.len() >= want_errors {
                break;
            }
        }
        task.abort();
        assert!(rounds >= 3, "rounds did not run for `{up}`");
        let h = health.lock().unwrap().clone();
        if upstream_fails {
            assert!(!h.recent_errors.is_empty(), "`{up}` was accepted");
        }
        shown.push(serde_json::to_string(&h).unwrap());
        shown.push(cdc_consumer::status_page::render(&h, 0));
        shown.push(metrics.render());
    }
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    if !ups.is_empty() {
        assert!(
            logged.contains("reconnecting to the downstream failed"),
            "the reconnect path did not run:\n{logged}"
        );
    }
    assert_clean("logs", &logged);
    for (i, s) in shown.iter().enumerate() {
        assert_clean(&format!("shown text {i}"), s);
    }
}

async fn w_setup(w: &mut Writer, t: &cdc_common::TableDef) {
    w.schema(t, "", DdlKind::CreateTable).await;
    w.file(t, &[(ts(2), vec![ins(1, "a")])]).await;
    w.checkpoint(ts(3)).await;
}

#[test]
fn the_binary_prints_no_secret_when_a_connection_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    std::fs::create_dir_all(&root).unwrap();
    let good = format!("file://{}?protocol=csv", root.display());
    let ups = bad_upstreams();
    let mut pairs: Vec<(String, String)> = bad_downstreams()
        .into_iter()
        .map(|d| (good.clone(), d))
        .collect();
    for u in ups {
        pairs.push((u, format!("sqlite://{}", dir.path().join("b.db").display())));
    }
    for (up, down) in pairs {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_storage-consumer"))
            .args(["--upstream-uri", &up, "--downstream-uri", &down, "--once"])
            .args(["--log-level", "trace"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{up} -> {down}: {stderr}");
        assert!(stderr.contains("storage-consumer: "), "{stderr}");
        assert_clean("stderr", &stderr);
        assert_clean("stdout", &stdout);
    }
}
