//! Encode and decode throughput of every codec on a 10-column table of ~100-byte rows
//! (int pk, bigint, 3 varchars, decimal, double, datetime, tinyint, text), 1000 rows per
//! event. Throughput is bytes of encoded output.
//!
//! `cargo bench --bench codecs -- --warm-up-time 1 --measurement-time 3`

use cdc_common::codec::codec_for;
use cdc_common::{
    ColumnDef, ColumnType, DmlEvent, Protocol, RowChange, SinkOptions, TableDef, Ts, Value,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;

const ROWS: usize = 1000;

fn table() -> TableDef {
    use ColumnType::*;
    TableDef {
        schema: "bench".into(),
        table: "orders".into(),
        table_id: 1,
        version: Ts::from_parts(1_700_000_000_000, 0),
        columns: vec![
            ColumnDef::new("id", Int).pk(),
            ColumnDef::new("customer_id", BigInt),
            ColumnDef::new("name", VarChar),
            ColumnDef::new("email", VarChar),
            ColumnDef::new("city", VarChar),
            ColumnDef::new("amount", Decimal).with_precision(Some(12), Some(2)),
            ColumnDef::new("score", Double),
            ColumnDef::new("created_at", DateTime),
            ColumnDef::new("status", TinyInt),
            ColumnDef::new("note", Text),
        ],
    }
}

fn event(table: &Arc<TableDef>) -> DmlEvent {
    let rows = (0..ROWS as i64)
        .map(|i| RowChange::Insert {
            after: vec![
                Value::Int(i),
                Value::Int(1_000_000 + i * 7),
                Value::String(format!("customer {i}")),
                Value::String(format!("user{i}@example.com")),
                Value::String("Amsterdam".into()),
                Value::Decimal(format!("{}.{:02}", i * 3, i % 100)),
                Value::Double(i as f64 * 0.37),
                Value::String("2024-01-02 03:04:05".into()),
                Value::Int(i % 4),
                Value::String("shipped, \"fast\"".into()),
            ],
        })
        .collect();
    DmlEvent {
        table: table.clone(),
        partition_id: None,
        commit_ts: Ts::from_parts(1_700_000_001_000, 1),
        rows,
    }
}

fn bench(c: &mut Criterion) {
    let t = Arc::new(table());
    let ev = event(&t);
    for protocol in [Protocol::Csv, Protocol::CanalJson, Protocol::Avro] {
        let options = SinkOptions {
            protocol,
            ..SinkOptions::default()
        };
        let tc = codec_for(&options).unwrap().prepare(&t).unwrap();
        let mut file = Vec::new();
        tc.file_header(&mut file);
        tc.encode(&ev, &mut file).unwrap();
        let bytes = file.len() as u64;

        let mut g = c.benchmark_group("encode");
        g.throughput(Throughput::Bytes(bytes));
        let mut out = Vec::with_capacity(file.len() * 2);
        g.bench_function(BenchmarkId::from_parameter(protocol.name()), |b| {
            b.iter(|| {
                out.clear();
                tc.encode(black_box(&ev), &mut out).unwrap();
                black_box(out.len())
            })
        });
        g.finish();

        let mut g = c.benchmark_group("decode");
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(BenchmarkId::from_parameter(protocol.name()), |b| {
            b.iter(|| black_box(tc.decode("bench", black_box(&file)).unwrap().len()))
        });
        g.finish();
        println!(
            "{}: {} rows, {} bytes, {:.0} bytes/row",
            protocol.name(),
            ROWS,
            bytes,
            bytes as f64 / ROWS as f64
        );
    }
}

/// Whole files as stored: encode + the whole-file step (compression, parquet), per variant;
/// throughput in rows, and the stored bytes per row printed beside it.
fn bench_files(c: &mut Criterion) {
    let t = Arc::new(table());
    let ev = event(&t);
    let variants = [
        "protocol=csv",
        "protocol=csv&compression=gzip",
        "protocol=csv&compression=zstd",
        "protocol=canal-json",
        "protocol=canal-json&compression=gzip",
        "protocol=canal-json&compression=zstd",
        "protocol=avro",
        "protocol=parquet",
        "protocol=parquet&parquet-compression=zstd",
        "protocol=parquet&parquet-compression=none",
    ];
    let mut g = c.benchmark_group("file");
    g.throughput(Throughput::Elements(ROWS as u64));
    for query in variants {
        let options = SinkOptions::from_query(query).unwrap();
        let tc = codec_for(&options).unwrap().prepare(&t).unwrap();
        let whole = || {
            let mut file = Vec::new();
            tc.file_header(&mut file);
            tc.encode(&ev, &mut file).unwrap();
            tc.finish_file("bench", vec![file.into()]).unwrap().concat()
        };
        let stored = whole();
        let name = query.trim_start_matches("protocol=").replace('&', ",");
        g.bench_function(BenchmarkId::new("encode", &name), |b| {
            b.iter(|| black_box(whole().len()))
        });
        g.bench_function(BenchmarkId::new("decode", &name), |b| {
            b.iter(|| black_box(tc.decode("bench", black_box(&stored)).unwrap().len()))
        });
        println!(
            "file {name}: {} rows, {} bytes stored, {:.1} bytes/row",
            ROWS,
            stored.len(),
            stored.len() as f64 / ROWS as f64
        );
    }
    g.finish();
}

criterion_group!(benches, bench, bench_files);
criterion_main!(benches);
