//! Test support for cdc-capture: the source servers, unique names, running capture, replaying
//! storage into a downstream with the consumer, and comparing tables row by row through the
//! consumer backends' read-back (`Downstream::read_columns` / `read_rows`).
#![allow(dead_code)]

use cdc_capture::{CaptureConfig, CaptureReport};
use cdc_common::{ColumnDef, ColumnType, TableName};
use cdc_consumer::backend::{self, Access};
use cdc_consumer::config::DownstreamUri;
use cdc_consumer::config::{Args, Config};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use clap::Parser;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_postgres::{Client, NoTls};

/// The source server's URI, or `None` (skip) outside CI.
pub fn pg_uri() -> Option<String> {
    cdc_common::testing::server_uri("CDC_TEST_POSTGRES_URI")
}

/// The MariaDB downstream's URI, or `None` (skip) outside CI.
pub fn mysql_uri() -> Option<String> {
    cdc_common::testing::server_uri("CDC_TEST_MYSQL_URI")
}

/// The URI of database `db` on the server of `uri` (a postgres:// URI with a database path).
pub fn database_uri(uri: &str, db: &str) -> String {
    let (server, _) = uri
        .rsplit_once('/')
        .expect("a postgres:// URI with a database");
    format!("{server}/{db}")
}

/// The downstream URI of an SQLite file.
pub fn sqlite_down(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

/// A name unique to this process and call (schemas, slots, publications).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A connected client.
pub async fn connect(uri: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(uri, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// A capture configuration for a test.
pub fn config(uri: &str, publication: &str, slot: &str, sink_uri: &str) -> CaptureConfig {
    CaptureConfig::from_args(&cdc_capture::CaptureArgs {
        source: Some(uri.into()),
        publication: Some(publication.into()),
        slot: Some(slot.into()),
        sink_uri: Some(sink_uri.into()),
        poll_interval: Some("50ms".into()),
        ..Default::default()
    })
    .expect("config")
}

/// The sink URI of a local directory.
pub fn sink_uri(dir: &Path) -> String {
    format!(
        "file://{}?protocol=csv&flush-interval=100ms&include-commit-ts=true",
        dir.display()
    )
}

/// A capture running in this process.
pub struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<cdc_capture::Result<CaptureReport>>,
}

/// Starts capture in this process.
pub fn start(cfg: CaptureConfig) -> Running {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(cdc_capture::capture(cfg, rx));
    Running { stop, task }
}

impl Running {
    /// Stops it cleanly (drain, confirm, close).
    pub async fn stop(self) -> CaptureReport {
        let _ = self.stop.send(true);
        self.task.await.expect("capture task").expect("capture")
    }

    /// True once it ended (with an error, in the tests that look).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until the slot confirmed `lsn`; panics with capture's error if it stopped.
    pub async fn wait_confirmed(&mut self, c: &Client, slot: &str, lsn: &str) {
        let wait = wait_confirmed(c, slot, lsn, Duration::from_secs(60));
        tokio::select! {
            _ = wait => {}
            r = &mut self.task => panic!("capture ended early: {r:?}"),
        }
    }

    /// Waits for it to end on its own (an error, in the tests that call this).
    pub async fn result(self) -> cdc_capture::Result<CaptureReport> {
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("capture did not stop")
            .expect("capture task")
    }
}

/// The server's current WAL position.
pub async fn current_lsn(c: &Client) -> String {
    c.query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0)
}

/// Waits until the slot's confirmed position reaches `lsn` (everything before it is durable
/// in storage and checkpointed).
pub async fn wait_confirmed(c: &Client, slot: &str, lsn: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        let done: Option<bool> = c
            .query_opt(
                "SELECT confirmed_flush_lsn >= $2::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot, &lsn],
            )
            .await
            .unwrap()
            .and_then(|r| r.get(0));
        if done == Some(true) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "slot {slot} did not confirm {lsn} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the sink wrote its first checkpoint (the snapshot is durable).
pub async fn wait_checkpoint(storage: &Path) {
    let start = Instant::now();
    while !storage.join("metadata").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint in {}",
            storage.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Drops a slot if it exists (test clean-up).
pub async fn drop_slot(c: &Client, slot: &str) {
    let _ = c
        .execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await;
}

/// Replays storage into the downstream `down` (a consumer URI) with the consumer, once.
pub async fn replay(sink_uri: &str, down: &str) {
    let argv = vec![
        "storage-consumer",
        "--upstream-uri",
        sink_uri,
        "--downstream-uri",
        down,
        "--once",
    ];
    let cfg = Config::from_args(&Args::parse_from(argv)).expect("consumer config");
    let r = cdc_consumer::replayer(
        &cfg,
        Metrics::new(),
        Arc::new(Mutex::new(Health::default())),
    )
    .await
    .expect("replayer");
    cdc_consumer::run(&cfg, r).await.expect("replay");
}

/// A row as comparable text (NULL = `None`).
pub type Row = Vec<Option<String>>;

/// A source column: its name and how both sides render it.
#[derive(Clone, Debug)]
pub struct SourceColumn {
    pub name: String,
    /// `format_type` of the column (`timestamp(3) without time zone`, `bytea`, ...).
    pub ty: String,
}

impl SourceColumn {
    /// The column definition the read-back needs: binary columns come back as hex and floats
    /// through DOUBLE; everything else is read as text. `key` orders the rows.
    fn read_back_def(&self, key: bool) -> ColumnDef {
        let ty = match self.ty.as_str() {
            "bytea" => ColumnType::LongBlob,
            "real" | "double precision" => ColumnType::Double,
            _ => ColumnType::LongText,
        };
        let def = ColumnDef::new(&self.name, ty);
        if key {
            def.pk()
        } else {
            def
        }
    }

    /// True for the date-time types whose fractional seconds a downstream may pad with zeros
    /// to the column's scale (MariaDB's DATETIME(3) prints `.250` where PostgreSQL prints `.25`).
    fn is_json(&self) -> bool {
        matches!(self.ty.as_str(), "json" | "jsonb") || self.ty.ends_with("[]")
    }

    fn has_fraction(&self) -> bool {
        self.ty.starts_with("timestamp") || self.ty.starts_with("time")
    }
}

/// The one text form both sides are compared in: fractional seconds without trailing zeros
/// (and without a bare `.`); JSON (json, jsonb, arrays) re-serialized compactly, since a
/// PostgreSQL jsonb replica prints `[1, null]` where the source's array prints `[1,null]`;
/// every other value as read.
fn canonical(col: &SourceColumn, v: Option<String>) -> Option<String> {
    let v = v?;
    if col.is_json() {
        let parsed: serde_json::Value = serde_json::from_str(&v)
            .unwrap_or_else(|e| panic!("column {}: not JSON ({e}): {v}", col.name));
        return Some(parsed.to_string());
    }
    if !col.has_fraction() {
        return Some(v);
    }
    Some(match v.rfind('.') {
        Some(dot) if v[dot + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            v.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        _ => v,
    })
}

/// The source table's columns and its rows, each column rendered the way the replica stores
/// it (booleans as 0/1, bytea as hex, timestamptz in UTC, arrays as JSON), ordered by
/// `order_by`.
pub async fn source_rows(
    c: &Client,
    schema: &str,
    table: &str,
    order_by: &str,
) -> (Vec<SourceColumn>, Vec<Row>) {
    let cols = c
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typcategory::text \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = format('%I.%I', $1::text, $2::text)::regclass AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await
        .unwrap();
    let mut columns = Vec::new();
    let mut exprs = Vec::new();
    for r in &cols {
        let name: String = r.get(0);
        let ty: String = r.get(1);
        let cat: String = r.get(2);
        let q = format!("\"{name}\"");
        exprs.push(match (ty.as_str(), cat.as_str()) {
            ("boolean", _) => format!("({q}::int)::text"),
            ("bytea", _) => format!("encode({q}, 'hex')"),
            (t, _) if t.starts_with("timestamp") && t.ends_with("with time zone") => {
                format!("({q} AT TIME ZONE 'UTC')::text")
            }
            (_, "A") => format!("array_to_json({q})::text"),
            ("real" | "double precision", _) => format!("{q}::float8::text"),
            _ => format!("{q}::text"),
        });
        columns.push(SourceColumn { name, ty });
    }
    let sql = format!(
        "SELECT {} FROM \"{schema}\".\"{table}\" AS src ORDER BY src.{order_by}",
        exprs.join(", ")
    );
    let rows = c
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            columns
                .iter()
                .enumerate()
                .map(|(i, col)| canonical(col, r.get::<_, Option<String>>(i)))
                .collect()
        })
        .collect();
    (columns, rows)
}

/// The replica's rows of `schema.table` in downstream `down`, read back through the
/// consumer's backend: the replica must have exactly the source's columns, in the same
/// order; the rows come in `order_by` (the key) order, in the canonical text form.
pub async fn replica_rows(
    down: &str,
    schema: &str,
    table: &str,
    cols: &[SourceColumn],
    order_by: &str,
) -> Vec<Row> {
    let uri = DownstreamUri::parse(down, None).expect("downstream uri");
    let mut d = backend::open(&uri, 1, Access::ReadBack)
        .await
        .expect("open read-back");
    let name = TableName::new(schema, table);
    let have = d.read_columns(&name).await.expect("read columns");
    let want: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(have, want, "{down}: columns of {schema}.{table}");
    let defs: Vec<ColumnDef> = cols
        .iter()
        .map(|c| c.read_back_def(c.name == order_by))
        .collect();
    d.read_rows(&name, &defs)
        .await
        .expect("read rows")
        .into_iter()
        .map(|r| {
            cols.iter()
                .zip(r)
                .map(|(col, v)| canonical(col, v))
                .collect()
        })
        .collect()
}

/// Asserts the replica's table in downstream `down` equals the source's, row by row; returns
/// the source's rows (for further checks).
pub async fn assert_same_table(
    c: &Client,
    down: &str,
    schema: &str,
    table: &str,
    order_by: &str,
) -> (Vec<SourceColumn>, Vec<Row>) {
    let (cols, want) = source_rows(c, schema, table, order_by).await;
    let got = replica_rows(down, schema, table, &cols, order_by).await;
    assert_eq!(got.len(), want.len(), "{down}: {schema}.{table}: row count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let differ: Vec<String> = cols
            .iter()
            .zip(g.iter().zip(w))
            .filter(|(_, (g, w))| g != w)
            .map(|(c, (g, w))| format!("{} ({}): replica {g:?}, source {w:?}", c.name, c.ty))
            .collect();
        assert!(
            differ.is_empty(),
            "{down}: {schema}.{table} row {i} (key {:?}) differs: {differ:#?}",
            w[0]
        );
    }
    (cols, want)
}
