//! The initial snapshot: every published table read with COPY inside the slot's exported
//! snapshot, handed to the sink as one transaction at the snapshot's ts.
//!
//! ```text
//! BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '<exported>';
//!   published tables (pg_publication_tables, as of the snapshot), LOCK ... ACCESS SHARE
//!   per schema:  CREATE DATABASE ddl            at ts - 2
//!   per table:   CREATE TABLE ddl (synthesized) at ts - 1   (the table's first version)
//!                COPY t (cols) TO STDOUT -> DML events of SNAPSHOT_BATCH_ROWS inserts at ts
//! COMMIT
//! ```
//!
//! No gap, no overlap: the exported snapshot shows exactly the transactions committed before
//! the slot's consistent point, and the slot decodes exactly those after it. The snapshot's
//! events share one [`Ticket`]; the stream confirms the consistent point (and checkpoints
//! `ts`) only once all of them are durable, so a storage with a checkpoint has a complete
//! snapshot (`lib.rs` refuses to resume from a slot whose storage has none).

use crate::ack::Ticket;
use crate::catalog;
use crate::emit::Emitter;
use crate::error::{CaptureError, Result};
use crate::pgoutput::Datum;
use crate::relations::{Observed, Relations, SYNTHESIZED_MARK};
use crate::rows;
use bytes::Bytes;
use cdc_common::{DdlEvent, DdlKind, DmlEvent, RowChange, Ts};
use futures::StreamExt;
use std::collections::BTreeSet;
use tokio_postgres::Client;

/// Rows per snapshot DML event.
pub const SNAPSHOT_BATCH_ROWS: usize = 1024;

/// What the snapshot read.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotReport {
    /// Tables.
    pub tables: usize,
    /// Rows.
    pub rows: u64,
}

/// Reads every published table under `snapshot_name` into the sink at `ts`.
pub async fn take(
    client: &Client,
    snapshot_name: &str,
    publication: &str,
    relations: &mut Relations,
    emitter: &mut Emitter,
    ts: Ts,
    ticket: &Ticket,
) -> Result<SnapshotReport> {
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
            snapshot_name.replace('\'', "''")
        ))
        .await
        .map_err(|e| CaptureError::pg("importing the slot's snapshot", e))?;
    let oids = catalog::published_tables(client, publication).await?;
    lock_tables(client, &oids).await?;
    let mut report = SnapshotReport::default();
    let mut schemas = BTreeSet::new();
    let mut shapes = Vec::with_capacity(oids.len());
    for oid in oids {
        let rel = catalog::relation(client, oid).await?;
        schemas.insert(rel.namespace.clone());
        shapes.push(rel);
    }
    for schema in schemas {
        emitter
            .ddl(&create_schema(&schema, Ts(ts.0 - 2)), None)
            .await?;
    }
    for rel in shapes {
        let oid = rel.oid;
        if let Observed::Created(ddl) = relations.observe(client, rel, Ts(ts.0 - 1)).await? {
            let id = relations
                .get(oid)
                .expect("just observed")
                .dispatcher
                .clone();
            emitter.ddl(&ddl, Some(&id)).await?;
        }
        report.rows += copy_table(client, relations, oid, emitter, ts, ticket).await?;
        report.tables += 1;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| CaptureError::pg("ending the snapshot transaction", e))?;
    Ok(report)
}

/// Holds off ALTER/DROP of the published tables until the COPY is done (as pg_dump does):
/// COPY resolves columns with the current catalog, the snapshot with the exported one. A DDL
/// that committed between the slot's creation and this lock makes the COPY fail with the
/// server's error; the slot then has no finished snapshot, and the next start says so.
async fn lock_tables(client: &Client, oids: &[u32]) -> Result<()> {
    for oid in oids {
        let name: String = client
            .query_one("SELECT $1::oid::regclass::text", &[oid])
            .await
            .map_err(|e| CaptureError::pg("naming a published table", e))?
            .get(0);
        client
            .batch_execute(&format!("LOCK TABLE {name} IN ACCESS SHARE MODE"))
            .await
            .map_err(|e| CaptureError::pg(format!("locking {name} for the snapshot"), e))?;
    }
    Ok(())
}

fn create_schema(schema: &str, ts: Ts) -> DdlEvent {
    DdlEvent {
        commit_ts: ts,
        query: format!(
            "{SYNTHESIZED_MARK} CREATE DATABASE IF NOT EXISTS `{}`",
            schema.replace('`', "``")
        ),
        kind: DdlKind::CreateSchema,
        schema: schema.into(),
        tables: vec![],
        prev_tables: vec![],
    }
}

async fn copy_table(
    client: &Client,
    relations: &Relations,
    oid: u32,
    emitter: &mut Emitter,
    ts: Ts,
    ticket: &Ticket,
) -> Result<u64> {
    let rel = relations
        .get(oid)
        .expect("observed before the copy")
        .clone();
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let cols: Vec<String> = rel.def.columns.iter().map(|c| q(&c.name)).collect();
    let sql = format!(
        "COPY {}.{} ({}) TO STDOUT",
        q(&rel.def.schema),
        q(&rel.def.table),
        cols.join(", ")
    );
    let stream = client
        .copy_out(&sql)
        .await
        .map_err(|e| CaptureError::pg(format!("COPY of {}", rel.def.name()), e))?;
    futures::pin_mut!(stream);
    let mut pending = Vec::new();
    let mut batch = Vec::with_capacity(SNAPSHOT_BATCH_ROWS);
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk: Bytes = chunk.map_err(|e| CaptureError::pg("reading COPY data", e))?;
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            let line = &pending[start..start + end];
            let datums = copy_line(line)?;
            batch.push(RowChange::Insert {
                after: rows::values(&rel, &datums)?,
            });
            start += end + 1;
            if batch.len() == SNAPSHOT_BATCH_ROWS {
                total += batch.len() as u64;
                hand_in(emitter, &rel, ts, std::mem::take(&mut batch), ticket).await?;
            }
        }
        pending.drain(..start);
    }
    total += batch.len() as u64;
    if !batch.is_empty() {
        hand_in(emitter, &rel, ts, batch, ticket).await?;
    }
    Ok(total)
}

async fn hand_in(
    emitter: &mut Emitter,
    rel: &crate::relations::Rel,
    ts: Ts,
    rows: Vec<RowChange>,
    ticket: &Ticket,
) -> Result<()> {
    emitter.wait_for_room().await?;
    let event = DmlEvent {
        table: rel.def.clone(),
        partition_id: None,
        commit_ts: ts,
        rows,
    };
    emitter.dml(&rel.dispatcher, event, ticket)
}

/// One line of COPY's text format: tab-separated fields, `\N` for NULL, backslash escapes.
pub fn copy_line(line: &[u8]) -> Result<Vec<Datum>> {
    line.split(|&b| b == b'\t')
        .map(|field| {
            if field == b"\\N" {
                return Ok(Datum::Null);
            }
            let bytes = unescape(field);
            String::from_utf8(bytes)
                .map(Datum::Text)
                .map_err(|_| CaptureError::Protocol("COPY field is not UTF-8".into()))
        })
        .collect()
}

fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b != b'\\' || i + 1 == field.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = field[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < field.len() && (b'0'..=b'7').contains(&field[i]) {
                    v = v * 8 + u32::from(field[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            b'x' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < field.len() && field[i].is_ascii_hexdigit() {
                    v = v * 16 + (field[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_fields_unescape() {
        let d = copy_line(b"1\t\\N\ta\\tb\\\\c\\nd\t\\101\\x42\t\xc3\xbc").unwrap();
        assert_eq!(
            d,
            vec![
                Datum::Text("1".into()),
                Datum::Null,
                Datum::Text("a\tb\\c\nd".into()),
                Datum::Text("AB".into()),
                Datum::Text("ü".into()),
            ]
        );
    }
}
