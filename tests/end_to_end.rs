//! End-to-end: workload -> cdc-sink -> storage -> cdc-consumer -> database, checked against the
//! workload's model by `verify`. A pairwise matrix covers every (codec, storage), (codec,
//! database) and (storage, database) pair at least once:
//!
//! | codec      | memory     | local      | S3 (s3s-fs) | Azurite    |
//! |------------|------------|------------|-------------|------------|
//! | csv        | SQLite     | PostgreSQL | MariaDB     | SQLite     |
//! | canal-json | PostgreSQL | MariaDB    | SQLite      | PostgreSQL |
//! | avro       | MariaDB    | SQLite     | PostgreSQL  | MariaDB    |
//!
//! `compression=gzip|zstd` (csv, canal-json) adds a row per downstream: csv+gzip local SQLite,
//! canal-json+zstd memory PostgreSQL, csv+zstd S3 MariaDB, canal-json+gzip Azurite SQLite; and
//! one test that the stored names carry the suffix and the index files name them.
//! `protocol=parquet` gets a row per downstream too (snappy local SQLite, zstd memory
//! PostgreSQL, uncompressed S3 MariaDB, snappy Azurite SQLite), with DDL barriers in the workload.
//!
//! Tests that need a server read its URI from the environment (`scripts/test.sh` starts them);
//! under `CI=true` a missing server fails the test.

use cdc_common::testing::server_uri;
use cdc_harness::demo::{consumer_query, replay};
use cdc_harness::generate::{generate, GenerateOptions};
use cdc_harness::verify::verify;
use cdc_harness::workload::{Workload, WorkloadConfig};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug)]
enum Storage {
    Memory,
    Local,
    S3,
    Azure,
}

#[derive(Clone, Copy, Debug)]
enum Db {
    Sqlite,
    Postgres,
    Mariadb,
}

fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    format!(
        "{tag}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Joins a storage base URI (maybe with a query) with a key prefix and the sink options.
fn storage_uri(base: &str, prefix: &str, options: &str) -> String {
    let (b, q) = base.split_once('?').unwrap_or((base, ""));
    let q = [q, options]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("&");
    format!("{}/{prefix}?{q}", b.trim_end_matches('/'))
}

async fn round_trip(protocol: &str, storage: Storage, db: Db, cfg: WorkloadConfig) {
    let tmp = tempfile::tempdir().unwrap();
    let base = match storage {
        Storage::Memory => format!("memory://{}", unique("mem")),
        Storage::Local => format!("file://{}", tmp.path().join("storage").display()),
        Storage::S3 => match server_uri("CDC_TEST_S3_URI") {
            Some(u) => u,
            None => return,
        },
        Storage::Azure => match server_uri("CDC_TEST_AZURE_URI") {
            Some(u) => u,
            None => return,
        },
    };
    let downstream = match db {
        Db::Sqlite => format!("sqlite://{}", tmp.path().join("down.db").display()),
        Db::Postgres => match server_uri("CDC_TEST_POSTGRES_URI") {
            Some(u) => u,
            None => return,
        },
        Db::Mariadb => match server_uri("CDC_TEST_MYSQL_URI") {
            Some(u) => u,
            None => return,
        },
    };
    let options = format!(
        "protocol={protocol}&flush-interval=50ms&file-size=65536&date-separator=day&file-index-width=6\
         &worker-count=2&include-commit-ts=true&enable-tidb-extension=true\
         &spool-dir={}",
        tmp.path().join("spool").display()
    );
    let prefix = unique("e2e");
    let sink_uri = storage_uri(&base, &prefix, &options);
    let upstream = storage_uri(&base, &prefix, &consumer_query(&options));

    let g = generate(&sink_uri, &cfg, GenerateOptions::default(), &|_| {})
        .await
        .expect("generate");
    assert_eq!(g.rows, g.rows_flushed, "every row handed in became durable");
    assert!(g.files > 0);
    let r = replay(&upstream, &downstream, &|_| {})
        .await
        .expect("replay");
    assert_eq!(
        r.applied_ts, g.checkpoint_ts.0,
        "the consumer applied up to the checkpoint"
    );
    let model = Workload::final_model(cfg.clone());
    let diffs = verify(&downstream, &cfg.schema, &model)
        .await
        .expect("verify");
    assert!(
        diffs.is_empty(),
        "{protocol} on {storage:?} into {db:?}: {} differences, first: {:#?}",
        diffs.len(),
        &diffs[..diffs.len().min(10)]
    );

    // A second replay finds nothing new and changes nothing (exactly-once in effect).
    let again = replay(&upstream, &downstream, &|_| {})
        .await
        .expect("second replay");
    assert_eq!(again.rows, 0, "a second replay applied rows again");
    assert!(verify(&downstream, &cfg.schema, &model)
        .await
        .expect("verify")
        .is_empty());
}

fn workload(tag: &str, seed: u64) -> WorkloadConfig {
    WorkloadConfig {
        dispatchers: 6,
        tables: 4,
        transactions: 600,
        rows_per_txn: 5,
        ddl_every: 60,
        seed,
        schema: unique(tag),
        start_ts: None,
        live_rows_cap: None,
    }
}

macro_rules! matrix {
    ($($name:ident: $proto:expr, $storage:expr, $db:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            round_trip($proto, $storage, $db, workload(stringify!($name), line!() as u64)).await;
        }
    )*};
}

matrix! {
    csv_memory_sqlite: "csv", Storage::Memory, Db::Sqlite;
    csv_local_postgres: "csv", Storage::Local, Db::Postgres;
    csv_s3_mariadb: "csv", Storage::S3, Db::Mariadb;
    csv_azure_sqlite: "csv", Storage::Azure, Db::Sqlite;
    canal_memory_postgres: "canal-json", Storage::Memory, Db::Postgres;
    canal_local_mariadb: "canal-json", Storage::Local, Db::Mariadb;
    canal_s3_sqlite: "canal-json", Storage::S3, Db::Sqlite;
    canal_azure_postgres: "canal-json", Storage::Azure, Db::Postgres;
    avro_memory_mariadb: "avro", Storage::Memory, Db::Mariadb;
    avro_local_sqlite: "avro", Storage::Local, Db::Sqlite;
    avro_s3_postgres: "avro", Storage::S3, Db::Postgres;
    avro_azure_mariadb: "avro", Storage::Azure, Db::Mariadb;
    csv_gzip_local_sqlite: "csv&compression=gzip", Storage::Local, Db::Sqlite;
    canal_zstd_memory_postgres: "canal-json&compression=zstd", Storage::Memory, Db::Postgres;
    csv_zstd_s3_mariadb: "csv&compression=zstd", Storage::S3, Db::Mariadb;
    canal_gzip_azure_sqlite: "canal-json&compression=gzip", Storage::Azure, Db::Sqlite;
    parquet_local_sqlite: "parquet", Storage::Local, Db::Sqlite;
    parquet_zstd_memory_postgres: "parquet&parquet-compression=zstd", Storage::Memory, Db::Postgres;
    parquet_none_s3_mariadb: "parquet&parquet-compression=none", Storage::S3, Db::Mariadb;
    parquet_azure_sqlite: "parquet", Storage::Azure, Db::Sqlite;
}

/// Every data file of a compressed run is named `CDC<n>.<ext>.<suffix>`, holds compressed
/// bytes (the format's magic number), and every index file names such a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_files_carry_the_suffix_and_the_index_names_them() {
    for (protocol, compression, ext, magic) in [
        ("csv", "gzip", ".csv.gz", &[0x1f, 0x8b][..]),
        (
            "canal-json",
            "zstd",
            ".json.zst",
            &[0x28, 0xb5, 0x2f, 0xfd][..],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("storage");
        let options = format!(
            "protocol={protocol}&compression={compression}&flush-interval=50ms&file-size=8192\
             &file-index-width=6&worker-count=2&spool-dir={}",
            tmp.path().join("spool").display()
        );
        let sink_uri = format!("file://{}?{options}", root.display());
        let cfg = WorkloadConfig {
            transactions: 120,
            ddl_every: 0,
            ..workload("suffix", 7)
        };
        let g = generate(&sink_uri, &cfg, GenerateOptions::default(), &|_| {})
            .await
            .expect("generate");
        let (mut data, mut indexes) = (Vec::new(), Vec::new());
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                if p.is_dir() {
                    stack.push(p);
                } else if name.starts_with("CDC") && name.ends_with(".index") {
                    indexes.push(std::fs::read_to_string(&p).unwrap());
                } else if name.starts_with("CDC") {
                    let bytes = std::fs::read(&p).unwrap();
                    assert!(name.ends_with(ext), "{name} lacks {ext}");
                    assert!(bytes.starts_with(magic), "{name} is not {compression}");
                    data.push(name);
                }
            }
        }
        assert_eq!(
            data.len() as u64,
            g.files,
            "{protocol}: every published file listed"
        );
        assert!(!indexes.is_empty());
        for i in &indexes {
            let named = i.trim_end();
            assert!(named.ends_with(ext), "index names `{named}`");
            assert!(
                data.iter().any(|d| d == named),
                "index names a missing `{named}`"
            );
        }
    }
}

/// 1000 dispatchers over 200 tables (five dispatchers write each table, with per-dispatcher
/// file and index names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_dispatchers_over_two_hundred_tables() {
    let cfg = WorkloadConfig {
        dispatchers: 1000,
        tables: 200,
        transactions: 4000,
        rows_per_txn: 2,
        ddl_every: 500,
        seed: 1000,
        schema: unique("k"),
        start_ts: None,
        live_rows_cap: None,
    };
    round_trip("csv", Storage::Local, Db::Sqlite, cfg).await;
}
