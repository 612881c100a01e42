//! Parquet read back by a reader nobody here wrote: the sink writes a workload as
//! `protocol=parquet` to a local directory, and pyarrow (`tests/parquet_readback.py`, installed
//! by `scripts/servers.sh` into a venv, path in `CDC_TEST_PYARROW_PYTHON`) checks the row count,
//! the Arrow type of every typed column and the final value of sampled columns of every live
//! row against the workload's model. Under `CI=true` a missing pyarrow fails the test.

use cdc_common::testing::server_uri;
use cdc_common::Value;
use cdc_harness::generate::{generate, GenerateOptions};
use cdc_harness::workload::{Workload, WorkloadConfig};
use serde_json::{json, Map};

/// The Arrow type pyarrow must read for each column (the mapping in docs/format.md).
const TYPES: &[(&str, &str)] = &[
    ("_cdc_op", "string"),
    ("_cdc_commit_ts", "uint64"),
    ("id", "int64"),
    ("c_tinyint", "int8"),
    ("c_smallint_u", "uint16"),
    ("c_int", "int32"),
    ("c_bigint_u", "uint64"),
    ("c_decimal", "decimal128(12, 3)"),
    ("c_float", "float"),
    ("c_double", "double"),
    ("c_varchar", "string"),
    ("c_binary", "binary"),
    ("c_date", "date32[day]"),
    ("c_time", "time64[us]"),
    ("c_datetime", "timestamp[us]"),
    ("c_year", "int16"),
    ("c_json", "string"),
    ("c_bit", "uint64"),
    ("_cdc_before_c_int", "int32"),
];

/// Columns whose model text pyarrow's `str()` reproduces exactly.
const SAMPLED: &[&str] = &[
    "c_tinyint",
    "c_int",
    "c_bigint_u",
    "c_decimal",
    "c_varchar",
    "c_binary",
    "c_date",
    "c_time",
    "c_datetime",
    "c_enum",
    "c_bit",
];

fn text(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Int(i) => json!(i.to_string()),
        Value::UInt(u) => json!(u.to_string()),
        Value::Decimal(s) | Value::String(s) => json!(s),
        Value::Bytes(b) => json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        Value::Float(f) => json!(f.to_string()),
        Value::Double(f) => json!(f.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_reads_the_sinks_parquet_as_the_model_says() {
    let Some(python) = server_uri("CDC_TEST_PYARROW_PYTHON") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("storage");
    let cfg = WorkloadConfig {
        dispatchers: 3,
        tables: 2,
        transactions: 300,
        rows_per_txn: 4,
        ddl_every: 0,
        seed: 17,
        schema: "pq".into(),
        start_ts: None,
        live_rows_cap: None,
    };
    let uri = format!(
        "file://{}?protocol=parquet&flush-interval=50ms&file-size=16384&file-index-width=6\
         &worker-count=2&spool-dir={}",
        root.display(),
        tmp.path().join("spool").display()
    );
    let g = generate(&uri, &cfg, GenerateOptions::default(), &|_| {})
        .await
        .expect("generate");
    assert!(g.files > 1, "the workload should span several files");
    let model = Workload::final_model(cfg.clone());
    let mut tables = Map::new();
    for (name, t) in &model.tables {
        let mut rows = Map::new();
        for (id, values) in &t.rows {
            let mut cols = Map::new();
            for (c, v) in t.def.columns.iter().zip(values) {
                if SAMPLED.contains(&c.name.as_str()) {
                    cols.insert(c.name.clone(), text(v));
                }
            }
            rows.insert(id.to_string(), serde_json::Value::Object(cols));
        }
        tables.insert(
            format!("{}.{}", name.schema, name.table),
            serde_json::Value::Object(rows),
        );
    }
    let expected = json!({
        "rows": g.rows,
        "types": TYPES.iter().map(|(c, t)| (c.to_string(), json!(t))).collect::<Map<_, _>>(),
        "tables": tables,
    });
    let expected_path = tmp.path().join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parquet_readback.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(&root)
        .arg(&expected_path)
        .output()
        .expect("run pyarrow");
    assert!(
        out.status.success(),
        "pyarrow check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}
