//! Encode and decode throughput of every codec on a 10-column table of ~100-byte rows
//! (int pk, bigint, 3 varchars, decimal, double, datetime, tinyint, text), 1000 rows per
//! event (`cdc_common::testing::codec_fixture`). Throughput is bytes of encoded output.
//! `common/examples/decode_bench.rs` runs the same decodes a fixed number of times (for
//! instruction counts and profiles).
//!
//! `cargo bench --bench codecs -- --warm-up-time 1 --measurement-time 3`

use cdc_common::codec::codec_for;
use cdc_common::testing::codec_fixture::{orders_event, orders_table};
use cdc_common::{DmlEvent, Protocol, SinkOptions, TableDef};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;

const ROWS: usize = 1000;

fn table() -> TableDef {
    orders_table()
}

fn event(table: &Arc<TableDef>) -> DmlEvent {
    orders_event(table, ROWS)
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
