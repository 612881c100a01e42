//! PostgreSQL's bulk path for a unit of a table with a key whose (reduced) operations are
//! deletes followed by at least [`COPY_MIN_ROWS`] upserts; the caller runs the deletes first.
//! The upserts, one (the last) image per key:
//! - when the unit deleted nothing (most likely new keys), are first `COPY`ed straight into
//!   the table (when none of its keys exists, an upsert is an insert); a unique violation
//!   aborts the unit's transaction, and the caller applies the unit again taking the path
//!   below (no savepoint: two round trips fewer for every unit that does not conflict);
//! - when it deleted keys (a change stream: its upserts most likely update existing rows, so
//!   the straight attempt would only fail first), or after that violation, go through `COPY`
//!   into a temporary table plus one `INSERT ... SELECT ... ON CONFLICT`.
//!
//! Both run inside the unit's transaction, with its progress row: exactly once as every path.

use super::apply::{prepared, Statements};
use super::dialect::Postgres;
use super::float::float_text;
use super::upsert::{columns, on_conflict};
use crate::backend::dialect::Dialect;
use crate::backend::escape::{escape_into, separators};
use crate::plan::{key_of, RowOp};
use bytes::BytesMut;
use cdc_common::{TableDef, Value};
use futures::SinkExt;

/// Consecutive upserts from which COPY + merge replaces multi-row INSERT statements.
pub const COPY_MIN_ROWS: usize = 512;

/// True when a unit's rows take the COPY path (see the module doc).
pub(super) fn takes_copy_path(def: &TableDef, rows: &[RowOp]) -> bool {
    let upserts = rows
        .iter()
        .filter(|r| matches!(r, RowOp::Upsert(_)))
        .count();
    let all_upserts = upserts == rows.len();
    all_upserts && upserts >= COPY_MIN_ROWS && !def.pk_indexes().is_empty()
}

/// The upserted rows of a unit, in order. The plan is each key's last state
/// (`Downstream::reduce` is `LastState` for PostgreSQL, see [`crate::plan`]), so every key
/// appears once: nothing to deduplicate.
pub(super) fn upserted_rows<'a>(def: &TableDef, unit_rows: &'a [RowOp]) -> Vec<&'a [Value]> {
    let rows: Vec<&[Value]> = unit_rows
        .iter()
        .filter_map(|r| match r {
            RowOp::Upsert(v) => Some(v.as_slice()),
            _ => None,
        })
        .collect();
    debug_assert!(
        {
            let pk = def.pk_indexes();
            let keys: std::collections::HashSet<_> = rows.iter().map(|r| key_of(&pk, r)).collect();
            keys.len() == rows.len()
        },
        "a reduced plan names each key once"
    );
    rows
}

/// COPY `rows` into `table` (any table with the definition's columns); the statement is
/// prepared once per table and column list.
async fn copy_rows(
    tx: &tokio_postgres::Transaction<'_>,
    statements: &mut Statements,
    def: &TableDef,
    table: &str,
    rows: &[&[Value]],
) -> std::result::Result<(), tokio_postgres::Error> {
    let cols = columns(def);
    let st = prepared(
        statements,
        tx,
        &format!("COPY {table} ({cols}) FROM STDIN"),
        &[],
    )
    .await?;
    let sink = tx.copy_in(&st).await?;
    send_rows(sink, def, rows).await
}

/// Streams `rows` in COPY's text format into an open `COPY ... FROM STDIN` and finishes it.
async fn send_rows(
    sink: tokio_postgres::CopyInSink<bytes::Bytes>,
    def: &TableDef,
    rows: &[&[Value]],
) -> std::result::Result<(), tokio_postgres::Error> {
    futures::pin_mut!(sink);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    for r in rows {
        for (i, v) in r.iter().enumerate() {
            if i > 0 {
                buf.extend_from_slice(b"\t");
            }
            copy_field(&mut buf, def, i, v);
        }
        buf.extend_from_slice(b"\n");
        if buf.len() >= 60 * 1024 {
            sink.send(buf.split().freeze()).await?;
        }
    }
    if !buf.is_empty() {
        sink.send(buf.split().freeze()).await?;
    }
    sink.finish().await?;
    Ok(())
}

/// Upserts many rows (keys distinct). Unless `merge`, `COPY` straight into the table (when no
/// key exists yet, an upsert *is* an insert): false when a key existed - the transaction is
/// then aborted and the caller applies the unit again with `merge`. With `merge`, `COPY` into
/// a temporary table and one `INSERT ... SELECT ... ON CONFLICT DO UPDATE`.
pub(super) async fn copy_upsert(
    tx: &tokio_postgres::Transaction<'_>,
    statements: &mut Statements,
    def: &TableDef,
    rows: &[&[Value]],
    merge: bool,
) -> std::result::Result<bool, tokio_postgres::Error> {
    let t = Postgres.table(&def.name());
    if !merge {
        return match copy_rows(tx, statements, def, &t, rows).await {
            Ok(()) => Ok(true),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                Ok(false)
            }
            Err(e) => Err(e),
        };
    }
    // A temporary table is dropped at commit: never cache a statement naming it.
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS cdc_consumer_stage (LIKE {t} INCLUDING DEFAULTS) ON COMMIT DROP; \
         TRUNCATE cdc_consumer_stage"
    ))
    .await?;
    let cols = columns(def);
    let sink = tx
        .copy_in(&format!("COPY cdc_consumer_stage ({cols}) FROM STDIN"))
        .await?;
    send_rows(sink, def, rows).await?;
    tx.batch_execute(&format!(
        "INSERT INTO {t} ({cols}) SELECT {cols} FROM cdc_consumer_stage{}; DROP TABLE cdc_consumer_stage",
        on_conflict(def)
    ))
    .await?;
    Ok(true)
}

/// One field in COPY's text format (`\N` for NULL; backslash, tab, newline, CR escaped;
/// bytea as `\\x<hex>`), written straight into `buf`: no allocation per field.
fn copy_field(buf: &mut BytesMut, def: &TableDef, col: usize, v: &Value) {
    let binary = def.columns.get(col).is_some_and(|c| c.ty.is_binary());
    match v {
        Value::Null => buf.extend_from_slice(b"\\N"),
        Value::Bytes(b) if binary => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            buf.reserve(3 + 2 * b.len());
            buf.extend_from_slice(b"\\\\x");
            for x in b {
                buf.extend_from_slice(&[HEX[usize::from(x >> 4)], HEX[usize::from(x & 15)]]);
            }
        }
        Value::Int(i) => buf.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::UInt(u) => buf.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes()),
        Value::Float(f) => {
            buf.extend_from_slice(float_text(&mut ryu::Buffer::new(), *f).as_bytes())
        }
        Value::Double(d) => {
            buf.extend_from_slice(float_text(&mut ryu::Buffer::new(), *d).as_bytes())
        }
        Value::Decimal(s) | Value::String(s) => escape_text(buf, s.as_bytes()),
        Value::Bytes(b) => escape_text(buf, String::from_utf8_lossy(b).as_bytes()),
    }
}

/// Text with COPY's escapes.
fn escape_text(buf: &mut BytesMut, s: &[u8]) {
    escape_into(buf, s, separators);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::{ColumnDef, ColumnType, Ts};

    fn def() -> TableDef {
        TableDef {
            schema: "s".into(),
            table: "t".into(),
            table_id: 0,
            version: Ts(1),
            columns: vec![
                ColumnDef::new("d", ColumnType::Double),
                ColumnDef::new("f", ColumnType::Float),
            ],
        }
    }

    fn field(col: usize, v: &Value) -> String {
        let mut buf = BytesMut::new();
        copy_field(&mut buf, &def(), col, v);
        String::from_utf8(buf.to_vec()).unwrap()
    }

    #[test]
    fn floats_are_written_as_text_that_reads_back_to_the_same_value() {
        let doubles = [
            0.5,
            -0.0,
            1e16,
            1.5e-7,
            0.1 + 0.2,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            123_456_789.125,
        ];
        for d in doubles {
            let text = field(0, &Value::Double(d));
            let back: f64 = text.parse().unwrap();
            assert_eq!(back.to_bits(), d.to_bits(), "{d} written as {text}");
        }
        for f in [1.1f32, -0.0, 3.4e38, 1e-45, 16_777_217.0] {
            let text = field(1, &Value::Float(f));
            let back: f32 = text.parse().unwrap();
            assert_eq!(back.to_bits(), f.to_bits(), "{f} written as {text}");
        }
        assert_eq!(field(0, &Value::Double(f64::NAN)), "NaN");
        assert_eq!(field(0, &Value::Double(f64::INFINITY)), "Infinity");
        assert_eq!(field(0, &Value::Double(f64::NEG_INFINITY)), "-Infinity");
        assert_eq!(field(0, &Value::Double(-0.0)), "-0.0");
        assert_eq!(field(0, &Value::Double(0.1 + 0.2)), "0.30000000000000004");
        assert_eq!(field(1, &Value::Float(f32::INFINITY)), "Infinity");
        assert_eq!(field(1, &Value::Float(-0.0)), "-0.0");
        assert_eq!(field(1, &Value::Null), "\\N");
    }
}
