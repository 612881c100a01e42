//! Decode throughput of one codec on one core, without criterion: a fixed number of decodes
//! of the codec benchmarks' file (1000 rows of `testing::codec_fixture`), so that an
//! instruction count (`valgrind --tool=callgrind`) or a profile (`perf record`) of old and new
//! code covers the same work. `benches/codecs.rs` is the reference figure; this is its quick,
//! countable twin.
//!
//! ```text
//! cargo run --release -p cdc-common --example decode_bench -- [csv|canal-json|avro ...] [-n ITERATIONS]
//! ```
//!
//! Prints one line per protocol: bytes per file, iterations, seconds and MiB/s of encoded input.

use cdc_common::codec::codec_for;
use cdc_common::testing::codec_fixture::{orders_event, orders_table};
use cdc_common::{Protocol, SinkOptions};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const ROWS: usize = 1000;

fn main() {
    let mut protocols = Vec::new();
    let mut iterations = 200usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-n" => {
                iterations = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("-n takes a number of iterations")
            }
            "csv" => protocols.push(Protocol::Csv),
            "canal-json" => protocols.push(Protocol::CanalJson),
            "avro" => protocols.push(Protocol::Avro),
            other => panic!("unknown argument `{other}` (csv, canal-json, avro, -n N)"),
        }
    }
    if protocols.is_empty() {
        protocols = vec![Protocol::Csv, Protocol::CanalJson];
    }
    let table = Arc::new(orders_table());
    let event = orders_event(&table, ROWS);
    for protocol in protocols {
        let options = SinkOptions {
            protocol,
            ..SinkOptions::default()
        };
        let codec = codec_for(&options)
            .and_then(|c| c.prepare(&table))
            .expect("the fixture table prepares");
        let mut file = Vec::new();
        codec.file_header(&mut file);
        codec
            .encode(&event, &mut file)
            .expect("the fixture encodes");
        let start = Instant::now();
        let mut rows = 0;
        for _ in 0..iterations {
            rows += codec
                .decode("bench", black_box(&file))
                .expect("the fixture decodes")
                .len();
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(rows, ROWS * iterations);
        println!(
            "decode {}: {} bytes x {iterations} in {secs:.3} s = {:.1} MiB/s",
            protocol.name(),
            file.len(),
            (file.len() * iterations) as f64 / secs / (1024.0 * 1024.0)
        );
    }
}
