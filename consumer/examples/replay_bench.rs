//! Replay throughput beside the databases' own bulk loaders, on the same rows.
//!
//! ```text
//! cargo run --release -p cdc-consumer --example replay_bench -- [ROWS_PER_TABLE] [POSTGRES_URI]
//! ```
//!
//! 50 tables of 10 columns, rows of about 100 bytes, written as the sink writes them (csv with
//! commit ts, files of 5000 rows). Measured, each in one run:
//!
//! - `storage-consumer` (library, `--once`) into a fresh SQLite file, beside the sqlite3 shell's
//!   `.import` of the same rows as plain csv into the same table definitions;
//! - when a PostgreSQL URI is given: the consumer into fresh schemas, beside `psql` `\copy` of the
//!   same rows.

use cdc_common::codec::codec_for;
use cdc_common::layout::{Checkpoint, DataDir, DataFile, DateDir, IndexFile, LayoutConfig};
use cdc_common::schema_file::SchemaFile;
use cdc_common::storage::StorageUri;
use cdc_common::{ColumnDef, ColumnType, DdlKind, DmlEvent, RowChange, TableDef, Ts, Value};
use cdc_consumer::config::{Args, Config};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use clap::Parser;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const TABLES: usize = 50;
const FILE_ROWS: usize = 5000;

fn def(i: usize) -> TableDef {
    let s = |n: &str| ColumnDef::new(n, ColumnType::VarChar).with_precision(Some(16), None);
    TableDef {
        schema: "bench".into(),
        table: format!("t{i:02}"),
        table_id: 0,
        version: Ts::from_parts(1_700_000_000_000, 0),
        columns: vec![
            ColumnDef::new("id", ColumnType::BigInt).pk(),
            ColumnDef::new("qty", ColumnType::Int),
            s("a"),
            s("b"),
            s("c"),
            s("d"),
            s("e"),
            ColumnDef::new("price", ColumnType::Double),
            ColumnDef::new("amount", ColumnType::Decimal).with_precision(Some(12), Some(2)),
            ColumnDef::new("at", ColumnType::DateTime),
        ],
    }
}

fn row(i: u64) -> Vec<Value> {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let s = |k: u64| Value::String(format!("{:010x}", (h >> k) & 0xff_ffff_ffff));
    vec![
        Value::Int(i as i64),
        Value::Int((i * 7 % 100_000) as i64),
        s(0),
        s(4),
        s(8),
        s(12),
        s(16),
        Value::Double(i as f64 * 0.5),
        Value::Decimal(format!("{}.{:02}", i % 100_000, i % 100)),
        Value::String("2024-01-02 03:04:05".into()),
    ]
}

fn plain_csv(v: &[Value]) -> String {
    v.iter()
        .map(|x| match x {
            Value::Int(i) => i.to_string(),
            Value::Double(d) => d.to_string(),
            Value::Decimal(s) | Value::String(s) => s.clone(),
            _ => String::new(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn sqlite_type(c: &ColumnDef) -> &'static str {
    match c.ty {
        ColumnType::BigInt | ColumnType::Int => "INTEGER",
        ColumnType::Double => "REAL",
        _ => "TEXT",
    }
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let per_table: u64 = argv.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let pg = argv.get(2).cloned();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("storage");
    std::fs::create_dir_all(&root).expect("mkdir");
    let uri = format!(
        "file://{}?protocol=csv&include-commit-ts=true&date-separator=none",
        root.display()
    );
    let (s, opts) = StorageUri::parse_sink(&uri).expect("uri");
    let store = s.build().expect("store");
    let cfg = LayoutConfig::from_options(&opts);
    let codec = codec_for(&opts).expect("codec");
    let csv_dir = dir.path().join("plain");
    std::fs::create_dir_all(&csv_dir).expect("mkdir");
    let mut bytes = 0usize;
    let t0 = Instant::now();
    for t in 0..TABLES {
        let d = def(t);
        let f = SchemaFile::for_table(&d, "", &DdlKind::CreateTable);
        let put = |p: String, b: Vec<u8>| {
            let store = store.clone();
            async move {
                store
                    .put(&Path::parse(&p).expect("path"), PutPayload::from(b))
                    .await
                    .expect("put")
            }
        };
        put(f.path().build().expect("path"), f.to_json().into_bytes()).await;
        let tc = codec.prepare(&d).expect("prepare");
        let mut plain = std::io::BufWriter::new(
            std::fs::File::create(csv_dir.join(format!("{}.csv", d.table))).expect("csv"),
        );
        let table = Arc::new(d.clone());
        let mut index = 0;
        let mut next = 0u64;
        while next < per_table {
            let n = (per_table - next).min(FILE_ROWS as u64);
            let mut out = Vec::new();
            tc.file_header(&mut out);
            // One transaction per 100 rows.
            let mut rows = Vec::new();
            for i in next..next + n {
                let r = row(i);
                writeln!(plain, "{}", plain_csv(&r)).expect("write");
                rows.push(RowChange::Insert { after: r });
                if rows.len() == 100 || i + 1 == next + n {
                    let ts = Ts::from_parts(1_700_000_001_000 + i, 0);
                    tc.encode(
                        &DmlEvent {
                            table: table.clone(),
                            partition_id: None,
                            commit_ts: ts,
                            rows: std::mem::take(&mut rows),
                        },
                        &mut out,
                    )
                    .expect("encode");
                }
            }
            bytes += out.len();
            index += 1;
            let file = DataFile {
                dir: DataDir {
                    schema: d.schema.clone(),
                    table: d.table.clone(),
                    version: d.version,
                    partition_id: None,
                    date: DateDir::for_ts(opts.date_separator, d.version),
                },
                dispatcher_id: None,
                index,
            };
            put(file.build(&cfg).expect("path"), out).await;
            put(
                file.index_file().build().expect("path"),
                IndexFile::content(&file.file_name(&cfg).expect("name")).into_bytes(),
            )
            .await;
            next += n;
        }
    }
    store
        .put(
            &Path::from("metadata"),
            PutPayload::from(
                Checkpoint {
                    checkpoint_ts: Ts::from_parts(1_800_000_000_000, 0),
                }
                .build()
                .into_bytes(),
            ),
        )
        .await
        .expect("metadata");
    let total = per_table * TABLES as u64;
    println!(
        "fixture: {TABLES} tables x {per_table} rows = {total} rows, {:.1} MB of csv data files ({:.0} B/row), written in {:.1}s",
        bytes as f64 / 1e6,
        bytes as f64 / total as f64,
        t0.elapsed().as_secs_f64()
    );

    // SQLite: the consumer.
    let db = dir.path().join("consumer.db");
    let secs = replay(&uri, &format!("sqlite://{}", db.display())).await;
    let consumer_rate = total as f64 / secs;
    println!("sqlite  storage-consumer : {secs:7.2}s  {consumer_rate:10.0} rows/s");
    // SQLite: the shell's .import into the same table definitions.
    let db2 = dir.path().join("import.db");
    let mut script =
        String::from("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n.mode csv\n");
    for t in 0..TABLES {
        let d = def(t);
        let cols: Vec<String> = d
            .columns
            .iter()
            .map(|c| format!("\"{}\" {}", c.name, sqlite_type(c)))
            .collect();
        script.push_str(&format!(
            "CREATE TABLE \"bench.{0}\" ({1}, PRIMARY KEY (\"id\"));\n.import {2} \"bench.{0}\"\n",
            d.table,
            cols.join(", "),
            csv_dir.join(format!("{}.csv", d.table)).display()
        ));
    }
    let script_path = dir.path().join("import.sql");
    std::fs::write(&script_path, script).expect("script");
    let t = Instant::now();
    let st = Command::new("sqlite3")
        .arg(&db2)
        .arg(format!(".read {}", script_path.display()))
        .status()
        .expect("sqlite3");
    assert!(st.success(), "sqlite3 .import failed");
    let secs = t.elapsed().as_secs_f64();
    let import_rate = total as f64 / secs;
    println!("sqlite  sqlite3 .import  : {secs:7.2}s  {import_rate:10.0} rows/s");
    println!(
        "sqlite  ratio consumer/.import = {:.2}",
        consumer_rate / import_rate
    );
    cdc_common::testing::bench_line(
        "consumer",
        "replay into SQLite",
        consumer_rate,
        "rows/s",
        ("sqlite3 .import of the same rows", import_rate),
        ">= 0.5",
    );

    if let Some(pg) = pg {
        let (client, conn) = tokio_postgres::connect(&pg, tokio_postgres::NoTls)
            .await
            .expect("postgres");
        tokio::spawn(conn);
        client
            .batch_execute("DROP SCHEMA IF EXISTS bench CASCADE; DROP SCHEMA IF EXISTS bench_copy CASCADE; DELETE FROM public.cdc_consumer_progress WHERE schema_name = 'bench'")
            .await
            .ok();
        let secs = replay(&uri, &pg).await;
        let consumer_rate = total as f64 / secs;
        println!("pg      storage-consumer : {secs:7.2}s  {consumer_rate:10.0} rows/s");
        let mut script = String::from("CREATE SCHEMA bench_copy;\n");
        for t in 0..TABLES {
            let d = def(t);
            script.push_str(&format!(
                "CREATE TABLE bench_copy.{0} (id BIGINT PRIMARY KEY, qty INTEGER, a VARCHAR(16), b VARCHAR(16), c VARCHAR(16), d VARCHAR(16), e VARCHAR(16), price DOUBLE PRECISION, amount NUMERIC(12,2), at TIMESTAMP);\n\\copy bench_copy.{0} FROM '{1}' WITH (FORMAT csv)\n",
                d.table,
                csv_dir.join(format!("{}.csv", d.table)).display()
            ));
        }
        let script_path = dir.path().join("copy.sql");
        std::fs::write(&script_path, script).expect("script");
        let t = Instant::now();
        let st = Command::new("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &pg, "-f"])
            .arg(&script_path)
            .status()
            .expect("psql");
        assert!(st.success(), "psql \\copy failed");
        let secs = t.elapsed().as_secs_f64();
        let copy_rate = total as f64 / secs;
        println!("pg      psql \\copy       : {secs:7.2}s  {copy_rate:10.0} rows/s");
        println!(
            "pg      ratio consumer/COPY = {:.2}",
            consumer_rate / copy_rate
        );
        cdc_common::testing::bench_line(
            "consumer",
            "replay into PostgreSQL",
            consumer_rate,
            "rows/s",
            ("psql \\copy of the same rows", copy_rate),
            ">= 0.5",
        );
        client
            .batch_execute("DROP SCHEMA IF EXISTS bench CASCADE; DROP SCHEMA IF EXISTS bench_copy CASCADE; DELETE FROM public.cdc_consumer_progress WHERE schema_name = 'bench'")
            .await
            .ok();
    }
}

async fn replay(uri: &str, down: &str) -> f64 {
    let argv = [
        "storage-consumer",
        "--upstream-uri",
        uri,
        "--downstream-uri",
        down,
        "--once",
        "--log-level",
        "warn",
    ];
    let cfg = Config::from_args(&Args::parse_from(argv)).expect("config");
    let t = Instant::now();
    let r = cdc_consumer::replayer(
        &cfg,
        Metrics::new(),
        Arc::new(Mutex::new(Health::default())),
    )
    .await
    .expect("replayer");
    cdc_consumer::run(&cfg, r).await.expect("replay");
    t.elapsed().as_secs_f64()
}
