//! The consumer on a realistic change stream, not only inserts: the demo's storage (its
//! default workload, about 216k row changes mixing inserts, updates, deletes and DDLs, written
//! by the sink with the demo's options) generated once and replayed into SQLite and, given
//! their URIs, PostgreSQL and MySQL/MariaDB, each into a fresh schema, each verified against
//! the workload's model afterwards (a replay that is fast and wrong fails the bench).
//!
//! ```text
//! cargo run --release --example mixed_bench -- [--postgres URI] [--mysql URI]
//! ```
//!
//! `BENCH` lines: each downstream's replay seconds; PostgreSQL's and MariaDB's beside SQLite's
//! from the same run, target "<= 2" (within 2x of SQLite). Rows/s go to stdout.
//! It lives in the root package because `cdc-harness` (the workload, `generate`, `verify`)
//! depends on `cdc-consumer`: a consumer example cannot use it.

use cdc_harness::demo::{consumer_query, replay};
use cdc_harness::generate::{generate, GenerateOptions};
use cdc_harness::verify::verify;
use cdc_harness::workload::{Workload, WorkloadConfig};
use mysql_async::prelude::Queryable;

/// The demo's default sink options (`cdc-storage demo --help`).
const SINK_OPTIONS: &str =
    "protocol=csv&flush-interval=200ms&date-separator=day&include-commit-ts=true";
/// The workload's schema: its own, so a run never meets another's tables or progress rows.
const SCHEMA: &str = "cdc_mixed_bench";

#[derive(Default)]
struct Cli {
    postgres: Option<String>,
    mysql: Option<String>,
}

fn cli() -> Cli {
    let mut c = Cli::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a URI"));
        match a.as_str() {
            "--postgres" => c.postgres = Some(value()),
            "--mysql" => c.mysql = Some(value()),
            _ => panic!("unexpected argument {a:?} (see the example's doc)"),
        }
    }
    c
}

/// Drops the schema and its progress rows in `uri`'s database (either may be missing).
async fn clean(uri: &str) {
    let progress = format!("DELETE FROM {{}}cdc_consumer_progress WHERE schema_name = '{SCHEMA}'");
    if uri.starts_with("postgres") {
        let (client, conn) = tokio_postgres::connect(uri, tokio_postgres::NoTls)
            .await
            .expect("postgres");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            .await
            .expect("drop schema");
        client
            .batch_execute(&progress.replace("{}", "public."))
            .await
            .ok();
    } else if uri.starts_with("mysql") {
        let opts = mysql_async::Opts::from_url(uri).expect("a mysql:// URI");
        let db = opts.db_name().unwrap_or("cdc_consumer").to_string();
        let mut conn = mysql_async::Conn::new(opts).await.expect("mysql");
        conn.query_drop(format!("DROP DATABASE IF EXISTS {SCHEMA}"))
            .await
            .expect("drop database");
        conn.query_drop(progress.replace("{}", &format!("`{db}`.")))
            .await
            .ok();
        conn.disconnect().await.ok();
    }
}

/// Replays `upstream` into `down` (fresh), verifies it against `model`, returns the seconds.
async fn measure(
    name: &str,
    upstream: &str,
    down: &str,
    model: &cdc_harness::workload::Model,
) -> f64 {
    clean(down).await;
    let r = replay(upstream, down, &|_| {}).await.expect("replay");
    let secs = r.elapsed.as_secs_f64();
    println!(
        "mixed   {name:<10}: {secs:7.2}s  {:10.0} rows/s  ({} rows, {} files, {} rounds)",
        r.rows as f64 / secs,
        r.rows,
        r.files,
        r.rounds
    );
    let diffs = verify(down, SCHEMA, model).await.expect("verify");
    assert!(
        diffs.is_empty(),
        "{name}: the replayed tables differ from the model in {} places, first: {:?}",
        diffs.len(),
        diffs.first()
    );
    clean(down).await;
    secs
}

#[tokio::main]
async fn main() {
    let cli = cli();
    let cfg = WorkloadConfig {
        schema: SCHEMA.into(),
        ..WorkloadConfig::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = dir.path().join("storage");
    let sink_uri = format!("file://{}?{SINK_OPTIONS}", storage.display());
    let g = generate(&sink_uri, &cfg, GenerateOptions::default(), &|_| {})
        .await
        .expect("generate");
    println!(
        "mixed   storage: {} row changes, {} DDLs, {} data files, {:.1} MB (generated in {:.1}s)",
        g.rows,
        g.ddls,
        g.files,
        g.bytes as f64 / 1e6,
        g.elapsed.as_secs_f64()
    );
    let upstream = format!(
        "file://{}?{}",
        storage.display(),
        consumer_query(SINK_OPTIONS)
    );
    let model = Workload::final_model(cfg.clone());
    let sqlite_db = dir.path().join("mixed.db");
    let sqlite = measure(
        "SQLite",
        &upstream,
        &format!("sqlite://{}", sqlite_db.display()),
        &model,
    )
    .await;
    cdc_common::testing::bench_line(
        "consumer",
        "mixed stream (demo's) into SQLite",
        sqlite,
        "s",
        ("", 0.0),
        "",
    );
    for (name, uri) in [("PostgreSQL", &cli.postgres), ("MariaDB", &cli.mysql)] {
        let Some(uri) = uri else { continue };
        let secs = measure(name, &upstream, uri, &model).await;
        println!("mixed   {name} / SQLite = {:.2}x", secs / sqlite);
        cdc_common::testing::bench_line(
            "consumer",
            &format!("mixed stream (demo's) into {name}"),
            secs,
            "s",
            ("SQLite replay of the same stream", sqlite),
            "<= 2",
        );
    }
}
