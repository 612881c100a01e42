//! The bench's storage: 50 tables of 10 columns, rows of about 100 bytes, written as the sink
//! writes them (csv with commit ts, files of 5000 rows, one transaction per 100 rows), and the
//! same rows as plain csv, one file per table, for the databases' own bulk loaders.

use cdc_common::codec::codec_for;
use cdc_common::layout::{Checkpoint, DataDir, DataFile, DateDir, IndexFile, LayoutConfig};
use cdc_common::schema_file::SchemaFile;
use cdc_common::storage::StorageUri;
use cdc_common::{ColumnDef, ColumnType, DdlKind, DmlEvent, RowChange, TableDef, Ts, Value};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Tables in the storage.
pub const TABLES: usize = 50;
/// Rows per data file.
const FILE_ROWS: usize = 5000;
/// The consumer's options for this storage (the sink's, less the sink-only ones).
pub const QUERY: &str = "protocol=csv&include-commit-ts=true&date-separator=none";

/// The storage written, and where.
pub struct Fixture {
    /// Holds everything below; removed on drop.
    pub dir: tempfile::TempDir,
    /// The storage as an object store (local directory).
    pub store: Arc<dyn ObjectStore>,
    /// Its consumer URI (`file://...?<QUERY>`).
    pub uri: String,
    /// The plain csv files, `<table>.csv`.
    pub csv_dir: PathBuf,
    /// Rows in all.
    pub total: u64,
}

impl Fixture {
    /// The plain csv file of table `t`.
    pub fn csv(&self, t: usize) -> PathBuf {
        self.csv_dir.join(format!("{}.csv", def(t).table))
    }
}

/// Table `i`'s definition (schema `bench`, table `tNN`, key `id`).
pub fn def(i: usize) -> TableDef {
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
    let s = |k: u64| Value::String(format!("{:010x}", (h >> k) & 0xff_ffff_ffff).into());
    vec![
        Value::Int(i as i64),
        Value::Int((i * 7 % 100_000) as i64),
        s(0),
        s(4),
        s(8),
        s(12),
        s(16),
        Value::Double(i as f64 * 0.5),
        Value::Decimal(format!("{}.{:02}", i % 100_000, i % 100).into()),
        Value::String("2024-01-02 03:04:05".into()),
    ]
}

fn plain_csv(v: &[Value]) -> String {
    v.iter()
        .map(|x| match x {
            Value::Int(i) => i.to_string(),
            Value::Double(d) => d.to_string(),
            Value::Decimal(s) | Value::String(s) => s.to_string(),
            _ => String::new(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

async fn put(store: &Arc<dyn ObjectStore>, path: String, bytes: Vec<u8>) {
    store
        .put(&Path::parse(&path).expect("path"), PutPayload::from(bytes))
        .await
        .expect("put");
}

/// Writes `per_table` rows into each table's storage and plain csv file.
pub async fn write(per_table: u64) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("storage");
    std::fs::create_dir_all(&root).expect("mkdir");
    let uri = format!("file://{}?{QUERY}", root.display());
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
        put(
            &store,
            f.path().build().expect("path"),
            f.to_json().into_bytes(),
        )
        .await;
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
            put(&store, file.build(&cfg).expect("path"), out).await;
            put(
                &store,
                file.index_file().build().expect("path"),
                IndexFile::content(&file.file_name(&cfg).expect("name")).into_bytes(),
            )
            .await;
            next += n;
        }
    }
    let checkpoint = Checkpoint {
        checkpoint_ts: Ts::from_parts(1_800_000_000_000, 0),
    };
    put(&store, "metadata".into(), checkpoint.build().into_bytes()).await;
    let total = per_table * TABLES as u64;
    println!(
        "fixture: {TABLES} tables x {per_table} rows = {total} rows, {:.1} MB of csv data files ({:.0} B/row), written in {:.1}s",
        bytes as f64 / 1e6,
        bytes as f64 / total as f64,
        t0.elapsed().as_secs_f64()
    );
    Fixture {
        dir,
        store,
        uri,
        csv_dir,
        total,
    }
}
