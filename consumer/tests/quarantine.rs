//! `--on-bad-file stop|quarantine`: under `stop` (the default) a data file that does not decode
//! ends the round with progress before it; under `quarantine` it is recorded (path, reason,
//! time) in the same transaction that moves its stream past it, none of its rows are applied,
//! replay continues, and neither a restart nor a later repair of the file re-reads or applies
//! it. Missing files, bad schema/index/metadata files always stop. Run against every downstream.

use crate::support;

use cdc_common::{ColumnDef, ColumnType, DdlKind, TableName};
use cdc_consumer::backend::stdout::StdoutDownstream;
use cdc_consumer::backend::{self, Access, Downstream};
use cdc_consumer::config::{Args, Config, DownstreamUri, TableFilter};
use cdc_consumer::discovery::{Discovery, Upstream};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::quarantine::{BadFilePolicy, QuarantinedFile};
use cdc_consumer::replay::Replayer;
use cdc_consumer::replay::RoundOutcome;
use cdc_consumer::Error;
use clap::Parser;
use std::io::Write;
use std::sync::{Arc, Mutex};
use support::*;

fn config(uri: &str, down: &str, policy: &str) -> Config {
    policy_builder(uri, down, policy).config().unwrap()
}

/// `--once --on-bad-file <policy>`.
fn policy_builder(uri: &str, down: &str, policy: &str) -> ReplayerBuilder {
    ReplayerBuilder::new(uri, down)
        .once()
        .args(&["--on-bad-file", policy])
}

/// What one `--once` run left behind.
struct Run {
    result: cdc_consumer::Result<()>,
    metrics: Metrics,
    health: Health,
}

/// The value of a counter without labels.
fn metric(m: &Metrics, name: &str) -> u64 {
    {
        let text = m.render();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// Runs `--once` with `down` as the downstream (built by the caller, so stdout can be captured).
async fn run_once(cfg: &Config, down: Box<dyn Downstream>) -> Run {
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(Health::default()));
    let up = Upstream::new(cfg.upstream.build().unwrap(), metrics.clone());
    let disc = Discovery::new(up, cfg.layout, TableFilter::all());
    let r = Replayer::new(
        disc,
        down,
        &cfg.sink,
        cfg.on_bad_file,
        cdc_consumer::replay::ProgressRead::Settled,
        metrics.clone(),
        health.clone(),
    )
    .await
    .unwrap();
    let result = cdc_consumer::run(cfg, r).await;
    let health = health.lock().unwrap().clone();
    Run {
        result,
        metrics,
        health,
    }
}

/// Storage of schema `s`: file 1 (id 1), file 2 garbage (ids 2, 3 when repaired), file 3
/// (id 4). Returns the writer, file 2's path and its good bytes.
async fn storage(s: &str) -> (Writer, String, Vec<u8>) {
    let mut w = Writer::new(&format!("memory://{s}?protocol=csv&include-commit-ts=true"));
    let t = two_cols(s, "t", ts(1));
    w.schema(&t, "", DdlKind::CreateTable).await;
    w.file(&t, &[(ts(2), vec![ins(1, "a")])]).await;
    let second = w.file(&t, &[(ts(3), vec![ins(2, "b"), ins(3, "c")])]).await;
    w.file(&t, &[(ts(4), vec![ins(4, "d")])]).await;
    w.checkpoint(ts(10)).await;
    let good = w.get(&second).await;
    w.put(&second, b"I,\"unterminated\n\xff\xfe".to_vec()).await;
    (w, second, good)
}

/// Unique schema names: the servers are shared between runs.
fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), n % 1_000_000_000)
}

/// A `Write` whose bytes the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One downstream under test: how to open it and how to read `id`s of `<s>.t` back.
enum Target {
    Sqlite(std::path::PathBuf),
    Postgres(String),
    Mysql(String),
    Stdout(std::path::PathBuf, Captured),
}

impl Target {
    fn uri(&self) -> String {
        match self {
            Target::Sqlite(p) => format!("sqlite://{}", p.display()),
            Target::Postgres(u) | Target::Mysql(u) => u.clone(),
            Target::Stdout(p, _) => format!("stdout://?{}", p.display()),
        }
    }

    async fn open(&self, cfg: &Config) -> Box<dyn Downstream> {
        match self {
            Target::Stdout(p, out) => Box::new(StdoutDownstream::with_writer(
                p.clone(),
                Box::new(out.clone()),
            )),
            _ => cdc_consumer::open_downstream(cfg).await.unwrap(),
        }
    }

    async fn ids(&self, s: &str) -> Vec<i64> {
        match self {
            Target::Sqlite(_) | Target::Postgres(_) | Target::Mysql(_) => {
                let uri = DownstreamUri::parse(&self.uri(), None).unwrap();
                let mut d = backend::open(&uri, 1, Access::ReadBack).await.unwrap();
                let id = [ColumnDef::new("id", ColumnType::BigInt).pk()];
                d.read_rows(&TableName::new(s, "t"), &id)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r[0].as_deref().unwrap().parse().unwrap())
                    .collect()
            }
            Target::Stdout(_, out) => {
                let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
                let mut ids: Vec<i64> = text
                    .lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .filter(|v| v["op"] == "upsert")
                    .map(|v| v["row"]["id"].as_i64().unwrap())
                    .collect();
                ids.sort_unstable();
                ids
            }
        }
    }
}

fn of_schema<'a>(q: &'a [QuarantinedFile], s: &str) -> Vec<&'a QuarantinedFile> {
    q.iter().filter(|f| f.key.schema == s).collect()
}

/// The whole policy on one downstream.
async fn quarantine_scenario(target: Target) {
    let s = unique("cdcq");
    let (w, second, good) = storage(&s).await;
    let down = target.uri();

    // Default policy: stop before the bad file, nothing recorded.
    let stop = config(&w.uri, &down, "stop");
    assert_eq!(stop.on_bad_file, BadFilePolicy::Stop);
    let run = run_once(&stop, target.open(&stop).await).await;
    let e = run.result.unwrap_err();
    assert!(
        matches!(&e, Error::Contract(cdc_common::Error::Corrupt { object, .. }) if *object == second),
        "{e}"
    );
    assert_eq!(target.ids(&s).await, vec![1]);
    assert_eq!(
        metric(&run.metrics, "cdc_consumer_quarantined_files_total"),
        0
    );
    let mut d = target.open(&stop).await;
    assert!(of_schema(&d.load_quarantine(false).await.unwrap(), &s).is_empty());

    // Quarantine: file 2 recorded and skipped, file 3 applied.
    let before_ms = cdc_consumer::freshness::now_ms();
    let q = config(&w.uri, &down, "quarantine");
    let run = run_once(&q, target.open(&q).await).await;
    run.result.unwrap();
    let after_ms = cdc_consumer::freshness::now_ms();
    assert_eq!(target.ids(&s).await, vec![1, 4]);
    assert_eq!(
        metric(&run.metrics, "cdc_consumer_quarantined_files_total"),
        1
    );
    let mut d = target.open(&q).await;
    let all = d.load_quarantine(false).await.unwrap();
    let rec = of_schema(&all, &s);
    assert_eq!(rec.len(), 1, "{all:?}");
    let f = rec[0];
    assert_eq!(f.path, second);
    assert_eq!((f.key.table.as_str(), f.file_index), ("t", 2));
    assert_eq!(f.commit_ts_before, ts(2).0);
    assert!(
        f.reason.contains("corrupt object") && f.reason.contains(&second),
        "{}",
        f.reason
    );
    assert!((before_ms..=after_ms).contains(&f.quarantined_at_ms));
    // /health lists it and the round that did it says so.
    assert!(run.health.quarantined.iter().any(|x| x.path == second));
    assert!(run.health.quarantined_files_total >= 1);
    // Restart, with the file repaired in storage: not re-read, not re-quarantined, not applied.
    w.put(&second, good).await;
    let run = run_once(&q, target.open(&q).await).await;
    run.result.unwrap();
    assert_eq!(
        metric(&run.metrics, "cdc_consumer_quarantined_files_total"),
        0
    );
    assert_eq!(target.ids(&s).await, vec![1, 4]);
    assert!(run.health.quarantined.iter().any(|x| x.path == second));
    let mut d = target.open(&q).await;
    assert_eq!(
        of_schema(&d.load_quarantine(false).await.unwrap(), &s).len(),
        1
    );
    // Back under `stop`, earlier quarantines are still listed.
    let run = run_once(&stop, target.open(&stop).await).await;
    run.result.unwrap();
    assert!(run.health.quarantined.iter().any(|x| x.path == second));
}

#[tokio::test]
async fn quarantine_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    quarantine_scenario(Target::Sqlite(dir.path().join("out.db"))).await;
}

#[tokio::test]
async fn quarantine_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    quarantine_scenario(Target::Stdout(
        dir.path().join("progress.json"),
        Captured::default(),
    ))
    .await;
}

#[tokio::test]
async fn quarantine_on_postgres() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI") else {
        return;
    };
    quarantine_scenario(Target::Postgres(uri)).await;
}

#[tokio::test]
async fn quarantine_on_mariadb() {
    let Some(uri) = cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI") else {
        return;
    };
    quarantine_scenario(Target::Mysql(uri)).await;
}

#[tokio::test]
async fn the_quarantining_round_reports_it_in_its_record_and_on_the_status_page() {
    let (w, second, _) = storage("quarantine-round").await;
    let dir = tempfile::tempdir().unwrap();
    let down = format!("sqlite://{}", dir.path().join("out.db").display());
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(Health::default()));
    let mut r = policy_builder(&w.uri, &down, "quarantine")
        .metrics(metrics.clone())
        .health(health.clone())
        .replayer()
        .await
        .unwrap();
    let RoundOutcome {
        record: rec,
        error: err,
        ..
    } = r.round().await;
    assert!(err.is_none(), "{err:?}");
    assert_warned(&rec, |w| w.starts_with(&format!("quarantined `{second}`")));
    let t = &rec.tables["quarantine-round.t"];
    assert_eq!((t.files, t.rows, t.quarantined), (2, 2, 1));
    let h = health.lock().unwrap().clone();
    assert_eq!(h.quarantined_files_total, 1);
    let page = cdc_consumer::status_page::render(&h, 0);
    assert!(page.contains("1 data file quarantined"), "{page}");
    assert!(page.contains(&second));
    let json = serde_json::to_value(&h).unwrap();
    assert_eq!(json["quarantined_files_total"], 1);
    assert_eq!(json["quarantined"][0]["path"], second.as_str());
    assert!(metrics
        .render()
        .contains("cdc_consumer_quarantined_files_total 1"));
}

#[tokio::test]
async fn stop_is_the_default_and_creates_no_quarantine_table() {
    let (w, second, _) = storage("quarantine-default").await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let cfg = ReplayerBuilder::sqlite(&w.uri, &db)
        .once()
        .config()
        .unwrap();
    assert_eq!(cfg.on_bad_file, BadFilePolicy::Stop);
    let run = run_once(&cfg, cdc_consumer::open_downstream(&cfg).await.unwrap()).await;
    assert!(run.result.unwrap_err().to_string().contains(&second));
    let c = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'cdc_consumer_quarantine'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    let argv = [
        "storage-consumer",
        "--upstream-uri",
        &w.uri,
        "--on-bad-file",
        "skip",
    ];
    let e = Config::from_args(&Args::parse_from(argv)).unwrap_err();
    assert!(
        matches!(&e, Error::Config { name, .. } if name == "on-bad-file"),
        "{e}"
    );
}

/// Under `quarantine`, what is not one data file's content still stops the round: a missing
/// data file, a schema file that fails its checksum, a corrupt index file, a corrupt
/// `metadata`. Nothing is recorded and progress stays.
#[tokio::test]
async fn quarantine_never_skips_missing_files_or_bad_schema_index_or_metadata_files() {
    let (w, second, good) = storage("quarantine-limits").await;
    w.put(&second, good).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let down = format!("sqlite://{}", db.display());
    let cfg = config(&w.uri, &down, "quarantine");
    let schema = SchemaPathOf::table(&w, "quarantine-limits", "t").await;
    let index = format!("{}/meta/CDC.index", second.rsplit_once('/').unwrap().0);

    let mut bad_schema = w.get(&schema).await;
    let at = bad_schema.len() - 10;
    bad_schema[at] = b'x';
    let cases: Vec<(String, Option<Vec<u8>>, &str)> = vec![
        (second.clone(), None, "missing data file"),
        (schema.clone(), Some(bad_schema), "corrupt object"),
        (index.clone(), Some(b"garbage\n".to_vec()), "corrupt object"),
        (
            "metadata".into(),
            Some(b"{\"checkpoint-ts\":".to_vec()),
            "corrupt object",
        ),
    ];
    for (path, bytes, want) in cases {
        let keep = w.get(&path).await;
        match bytes {
            Some(b) => w.put(&path, b).await,
            None => w.delete(&path).await,
        }
        let run = run_once(&cfg, cdc_consumer::open_downstream(&cfg).await.unwrap()).await;
        let e = run.result.unwrap_err().to_string();
        assert!(e.contains(&path) && e.contains(want), "{path}: {e}");
        assert_eq!(
            metric(&run.metrics, "cdc_consumer_quarantined_files_total"),
            0
        );
        w.put(&path, keep).await;
    }
    let mut d = cdc_consumer::open_downstream(&cfg).await.unwrap();
    assert!(d.load_quarantine(false).await.unwrap().is_empty());
    let run = run_once(&cfg, cdc_consumer::open_downstream(&cfg).await.unwrap()).await;
    run.result.unwrap();
    let n = Target::Sqlite(db.clone())
        .ids("quarantine-limits")
        .await
        .len();
    assert_eq!(n, 4);
}

/// Finds a table's schema file path by listing its `meta/` directory.
struct SchemaPathOf;

impl SchemaPathOf {
    async fn table(w: &Writer, schema: &str, table: &str) -> String {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let prefix = object_store::path::Path::parse(format!("{schema}/{table}/meta")).unwrap();
        let all: Vec<object_store::ObjectMeta> =
            w.store.list(Some(&prefix)).try_collect().await.unwrap();
        all.into_iter()
            .map(|m| m.location.to_string())
            .find(|p| p.rsplit('/').next().unwrap().starts_with("schema_"))
            .unwrap()
    }
}
