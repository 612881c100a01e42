//! PostgreSQL's bulk path for a unit of a table with a key whose (reduced) operations are
//! deletes followed by at least [`COPY_MIN_ROWS`] upserts; the caller runs the deletes first.
//! The upserts, one (the last) image per key:
//! - when the unit deleted nothing (most likely new keys), are first `COPY`ed straight into
//!   the table inside a savepoint (when none of its keys exists, an upsert is an insert); on a
//!   unique violation it rolls back to the savepoint and takes the path below;
//! - when it deleted keys (a change stream: its upserts most likely update existing rows, so
//!   the straight attempt would only fail first), or after that violation, go through `COPY`
//!   into a temporary table plus one `INSERT ... SELECT ... ON CONFLICT`.
//!
//! Both run inside the unit's transaction, with its progress row: exactly once as every path.

use super::dialect::Postgres;
use super::params::text;
use super::upsert::{columns, on_conflict};
use crate::backend::dialect::Dialect;
use crate::plan::{key_of, KeyRef, RowOp};
use bytes::BytesMut;
use cdc_common::{TableDef, Value};
use futures::SinkExt;
use std::collections::HashMap;

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

/// The upserted rows of a unit, one (the last) image per key, in order.
pub(super) fn last_images<'a>(def: &TableDef, unit_rows: &'a [RowOp]) -> Vec<&'a [Value]> {
    // One key may appear several times: keep its last image.
    let mut last: HashMap<KeyRef<'_>, usize> = HashMap::new();
    let pk = def.pk_indexes();
    let rows: Vec<&[Value]> = unit_rows
        .iter()
        .filter_map(|r| match r {
            RowOp::Upsert(v) => Some(v.as_slice()),
            _ => None,
        })
        .collect();
    for (i, r) in rows.iter().enumerate() {
        last.insert(key_of(&pk, r), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| rows[i]).collect()
}

/// COPY `rows` into `table` (any table with the definition's columns).
async fn copy_rows(
    tx: &tokio_postgres::Transaction<'_>,
    def: &TableDef,
    table: &str,
    rows: &[&[Value]],
) -> std::result::Result<(), tokio_postgres::Error> {
    let cols = columns(def);
    let sink = tx
        .copy_in(&format!("COPY {table} ({cols}) FROM STDIN"))
        .await?;
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

/// Upserts many rows (keys distinct). Unless `keys_likely_exist`, first optimistically `COPY`
/// straight into the table inside a savepoint (when no key exists yet, an upsert *is* an
/// insert); otherwise, or on a unique violation (rolled back to the savepoint), `COPY` into a
/// temporary table and merge with one `INSERT ... SELECT ... ON CONFLICT DO UPDATE`.
pub(super) async fn copy_upsert(
    tx: &tokio_postgres::Transaction<'_>,
    def: &TableDef,
    rows: &[&[Value]],
    keys_likely_exist: bool,
) -> std::result::Result<(), tokio_postgres::Error> {
    let t = Postgres.table(&def.name());
    if !keys_likely_exist && copy_as_inserts(tx, def, &t, rows).await? {
        return Ok(());
    }
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS cdc_consumer_stage (LIKE {t} INCLUDING DEFAULTS) ON COMMIT DROP; \
         TRUNCATE cdc_consumer_stage"
    ))
    .await?;
    copy_rows(tx, def, "cdc_consumer_stage", rows).await?;
    let cols = columns(def);
    tx.batch_execute(&format!(
        "INSERT INTO {t} ({cols}) SELECT {cols} FROM cdc_consumer_stage{}; DROP TABLE cdc_consumer_stage",
        on_conflict(def)
    ))
    .await?;
    Ok(())
}

/// `COPY` straight into the table inside a savepoint: true when it took every row, false when
/// a key already existed (the savepoint rolled back, nothing of it kept).
async fn copy_as_inserts(
    tx: &tokio_postgres::Transaction<'_>,
    def: &TableDef,
    t: &str,
    rows: &[&[Value]],
) -> std::result::Result<bool, tokio_postgres::Error> {
    tx.batch_execute("SAVEPOINT cdc_consumer_copy").await?;
    match copy_rows(tx, def, t, rows).await {
        Ok(()) => {
            tx.batch_execute("RELEASE SAVEPOINT cdc_consumer_copy")
                .await?;
            Ok(true)
        }
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT cdc_consumer_copy")
                .await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// One field in COPY's text format (`\N` for NULL; backslash, tab, newline, CR escaped;
/// bytea as `\\x<hex>`).
fn copy_field(buf: &mut BytesMut, def: &TableDef, col: usize, v: &Value) {
    let binary = def.columns.get(col).is_some_and(|c| c.ty.is_binary());
    match v {
        Value::Null => buf.extend_from_slice(b"\\N"),
        Value::Bytes(b) if binary => {
            buf.extend_from_slice(b"\\\\x");
            for x in b {
                buf.extend_from_slice(format!("{x:02x}").as_bytes());
            }
        }
        other => {
            let s = text(other).unwrap_or_default();
            for ch in s.bytes() {
                match ch {
                    b'\\' => buf.extend_from_slice(b"\\\\"),
                    b'\t' => buf.extend_from_slice(b"\\t"),
                    b'\n' => buf.extend_from_slice(b"\\n"),
                    b'\r' => buf.extend_from_slice(b"\\r"),
                    c => buf.extend_from_slice(&[c]),
                }
            }
        }
    }
}
