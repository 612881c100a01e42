//! The codec benchmarks' table and event: a 10-column table of ~100-byte rows (int pk,
//! bigint, 3 varchars, decimal, double, datetime, tinyint, text), shared by
//! `benches/codecs.rs` and `common/examples/decode_bench.rs` so both measure the same bytes.

use crate::{ColumnDef, ColumnType, DmlEvent, RowChange, TableDef, Ts, Value};
use std::sync::Arc;

/// The `bench`.`orders` table.
pub fn orders_table() -> TableDef {
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

/// One event of `rows` inserts into `table` (an [`orders_table`]), row `i` derived from `i`.
pub fn orders_event(table: &Arc<TableDef>, rows: usize) -> DmlEvent {
    let rows = (0..rows as i64)
        .map(|i| RowChange::Insert {
            after: vec![
                Value::Int(i),
                Value::Int(1_000_000 + i * 7),
                Value::String(format!("customer {i}").into()),
                Value::String(format!("user{i}@example.com").into()),
                Value::String("Amsterdam".into()),
                Value::Decimal(format!("{}.{:02}", i * 3, i % 100).into()),
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
