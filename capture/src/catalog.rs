//! Catalog look-ups on the source's normal connection, with caches: the type of a
//! non-built-in oid, a table's primary key, a published table's shape (as a pgoutput Relation
//! would describe it), and the SQL type names of key columns (for TOAST look-ups).
//!
//! Invariant: a shape read here equals the Relation message pgoutput sends for the same table
//! definition (same columns, same key flags), so the snapshot's table definitions and the
//! stream's compare equal and no spurious table version appears.

use crate::error::{CaptureError, Result};
use crate::pgoutput::{RelColumn, Relation};
use crate::types::{self, PgType};
use std::collections::HashMap;
use tokio_postgres::Client;

/// Cached catalog answers.
#[derive(Default)]
pub struct Catalog {
    types: HashMap<u32, PgType>,
}

impl Catalog {
    /// The value kind of a type oid.
    pub async fn pg_type(&mut self, client: &Client, oid: u32) -> Result<PgType> {
        if let Some(t) = types::builtin(oid) {
            return Ok(t);
        }
        if let Some(t) = self.types.get(&oid) {
            return Ok(*t);
        }
        let row = client
            .query_opt(
                "SELECT typcategory::text, typelem FROM pg_type WHERE oid = $1",
                &[&oid],
            )
            .await
            .map_err(|e| CaptureError::pg("reading pg_type", e))?;
        let t = match row {
            Some(r) => {
                let cat: String = r.get(0);
                let elem: u32 = r.get(1);
                types::from_catalog(cat.bytes().next().unwrap_or(b'U'), elem)
            }
            None => PgType::Text,
        };
        self.types.insert(oid, t);
        Ok(t)
    }
}

/// The primary-key column names of a table (empty when it has none).
pub async fn primary_key(client: &Client, oid: u32) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1 AND i.indisprimary ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(|e| CaptureError::pg("reading a primary key", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A table's shape as pgoutput's Relation message describes it: live columns in order, key
/// flags from the replica identity (all columns for FULL).
pub async fn relation(client: &Client, oid: u32) -> Result<Relation> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, c.relreplident::text, a.attname::text, \
                    a.atttypid, a.atttypmod, \
                    CASE c.relreplident \
                      WHEN 'f' THEN true \
                      WHEN 'd' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid \
                                            AND i.indisprimary AND a.attnum = ANY(i.indkey)) \
                      WHEN 'i' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid \
                                            AND i.indisreplident AND a.attnum = ANY(i.indkey)) \
                      ELSE false END \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             WHERE c.oid = $1 ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(|e| CaptureError::pg("reading a table's columns", e))?;
    let first = rows
        .first()
        .ok_or_else(|| CaptureError::Protocol(format!("table oid {oid} has no columns")))?;
    let ident: String = first.get(2);
    Ok(Relation {
        oid,
        namespace: first.get(0),
        name: first.get(1),
        replica_identity: ident.bytes().next().unwrap_or(b'd'),
        columns: rows
            .iter()
            .map(|r| RelColumn {
                name: r.get(3),
                type_oid: r.get(4),
                typmod: r.get(5),
                key: r.get(6),
            })
            .collect(),
    })
}

/// The published tables (oids) of a publication, as of the transaction's snapshot.
pub async fn published_tables(client: &Client, publication: &str) -> Result<Vec<u32>> {
    let rows = client
        .query(
            "SELECT c.oid FROM pg_publication_tables p \
             JOIN pg_namespace n ON n.nspname = p.schemaname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
             WHERE p.pubname = $1 ORDER BY 1",
            &[&publication],
        )
        .await
        .map_err(|e| CaptureError::pg("listing the publication's tables", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `format_type` of each named column of a table (for casts in TOAST look-ups).
pub async fn column_sql_types(client: &Client, oid: u32, names: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let row = client
            .query_one(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = $1 AND attname = $2 AND NOT attisdropped",
                &[&oid, name],
            )
            .await
            .map_err(|e| CaptureError::pg("reading a column type", e))?;
        out.push(row.get(0));
    }
    Ok(out)
}
