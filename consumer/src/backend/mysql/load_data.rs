//! MySQL/MariaDB's bulk path: a unit's upserts as one `LOAD DATA LOCAL INFILE ... REPLACE`
//! inside the unit's transaction, with its progress row (exactly once, as every path).
//!
//! When: a table with a key, at least [`LOAD_MIN_ROWS`] upserts after the unit's deletes (a
//! reduced plan: each key once, see [`crate::plan`]) and no NaN or infinite float (MySQL has
//! none). A BIT column is read into a variable and set with `CAST(@v AS UNSIGNED)`: loaded
//! directly, its decimal text would be stored as bytes.
//!
//! - `REPLACE` gives each key its last image, as `INSERT ... ON DUPLICATE KEY UPDATE` does for
//!   a table whose only unique key is its primary key (a table created ahead by an operator
//!   with another unique key could see REPLACE delete the row holding it; the statement path
//!   updates that row instead).
//! - The rows are sent as the file the server asks for: the driver's handler finds them under
//!   the unique name the statement gives (`cdc-unit-<n>`), so no file touches the disk.
//!   Format: fields separated by TAB, rows by LF, `\N` for NULL, `\` escaping itself, TAB, LF,
//!   CR and NUL; `CHARACTER SET binary` (no conversion: text is UTF-8 already, binary columns
//!   keep every byte).
//! - With `LOCAL`, the server turns data errors (a value out of range, a bad date) into
//!   warnings and loads a clipped value. A load that reports any warning is therefore not kept:
//!   the caller rolls the unit back and applies it with statements, which fail with the
//!   server's error naming the problem.
//! - Any other server error from the load (not a deadlock or lock wait) is treated the same
//!   way: the unit is rolled back and applied with statements, whose error names the problem.
//! - A server that refuses `LOCAL INFILE` (`local_infile=OFF`: MySQL 8's default; MariaDB's is
//!   ON) gets statements from then on; the refusal is logged once.

use crate::backend::escape::{escape_into, separators_and_nul};
use crate::plan::RowOp;
use bytes::{Bytes, BytesMut};
use cdc_common::table::ColumnType;
use cdc_common::{TableDef, Value};
use futures::{FutureExt, StreamExt};
use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Transaction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Upserts from which a unit takes LOAD DATA instead of multi-row statements.
pub const LOAD_MIN_ROWS: usize = 512;

/// Payloads waiting for the server to ask for them, by file name (shared with the driver's
/// handler, which takes each out once).
#[derive(Default)]
pub struct Infiles {
    next: AtomicU64,
    waiting: Mutex<HashMap<String, Bytes>>,
}

impl Infiles {
    /// Registers this connection's handler: the server's request for `cdc-unit-<n>` gets the
    /// payload stored under that name (an unknown name gets an error).
    pub fn install(self: &Arc<Self>, opts: OptsBuilder) -> OptsBuilder {
        let me = Arc::clone(self);
        opts.local_infile_handler(Some(move |name: &[u8]| {
            let name = String::from_utf8_lossy(name).into_owned();
            let found = me.waiting.lock().ok().and_then(|mut w| w.remove(&name));
            async move {
                let data = found.ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("no rows waiting under `{name}`"),
                    )
                })?;
                Ok(futures::stream::iter([Ok(data)]).boxed())
            }
            .boxed()
        }))
    }

    fn put(&self, payload: Bytes) -> String {
        let name = format!("cdc-unit-{}", self.next.fetch_add(1, Ordering::Relaxed));
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(name.clone(), payload);
        }
        name
    }

    fn forget(&self, name: &str) {
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(name);
        }
    }
}

/// True when the unit's upserts (after its deletes) take LOAD DATA (see the module doc).
pub fn takes_load_path(def: &TableDef, upserts: &[RowOp]) -> bool {
    upserts.len() >= LOAD_MIN_ROWS
        && !def.pk_indexes().is_empty()
        && upserts.iter().all(|r| match r {
            RowOp::Upsert(v) => v.iter().all(finite),
            _ => false,
        })
}

fn finite(v: &Value) -> bool {
    match v {
        Value::Float(f) => f.is_finite(),
        Value::Double(d) => d.is_finite(),
        _ => true,
    }
}

/// How a load ended.
pub enum Loaded {
    /// Every row loaded without a warning.
    Clean,
    /// The server warned (a value clipped or converted): the unit must not be kept.
    Warned(u16),
    /// The server refuses LOCAL INFILE: use statements.
    Refused(String),
    /// The server refused this load: roll back and apply the unit with statements.
    Failed(String),
}

/// The column list of the statement and its `SET` clause (BIT columns through a variable).
fn targets(def: &TableDef, quote: impl Fn(&str) -> String) -> (String, String) {
    let mut cols = Vec::with_capacity(def.columns.len());
    let mut set = Vec::new();
    for (i, c) in def.columns.iter().enumerate() {
        if c.ty == ColumnType::Bit {
            cols.push(format!("@cdc_bit{i}"));
            set.push(format!(
                "{} = CAST(@cdc_bit{i} AS UNSIGNED)",
                quote(&c.name)
            ));
        } else {
            cols.push(quote(&c.name));
        }
    }
    let set = if set.is_empty() {
        String::new()
    } else {
        format!(" SET {}", set.join(", "))
    };
    (cols.join(", "), set)
}

/// Loads `upserts` (each key once) into the table with `REPLACE`, inside `tx`; `quote` quotes
/// an identifier.
pub async fn load_upserts(
    tx: &mut Transaction<'_>,
    infiles: &Infiles,
    table_sql: &str,
    quote: impl Fn(&str) -> String,
    def: &TableDef,
    upserts: &[RowOp],
) -> std::result::Result<Loaded, mysql_async::Error> {
    let name = infiles.put(encode(def, upserts));
    let (columns, set) = targets(def, quote);
    // A raw TAB and LF inside the literals: the session runs with NO_BACKSLASH_ESCAPES,
    // where '\t' would be two characters and ESCAPED BY takes a single backslash.
    let sql = format!(
        "LOAD DATA LOCAL INFILE '{name}' REPLACE INTO TABLE {table_sql} CHARACTER SET binary \
         FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' ({columns}){set}"
    );
    let r = tx.query_drop(sql).await;
    infiles.forget(&name);
    match r {
        Ok(()) => match tx.get_warnings() {
            0 => Ok(Loaded::Clean),
            n => Ok(Loaded::Warned(n)),
        },
        // 1148: not allowed with this version/configuration; 3948 (MySQL) / 4166 (MariaDB):
        // loading local data is disabled.
        Err(mysql_async::Error::Server(e)) if matches!(e.code, 1148 | 3948 | 4166) => {
            Ok(Loaded::Refused(e.message))
        }
        // Deadlocks and lock waits are retried by the caller as for any statement; any other
        // refusal of the load (a column type it cannot fill from the file, say MySQL's JSON
        // from a binary string) is decided by statements, which name the real problem.
        Err(mysql_async::Error::Server(e)) if !matches!(e.code, 1205 | 1213) => {
            Ok(Loaded::Failed(format!("{} ({})", e.message, e.code)))
        }
        Err(e) => Err(e),
    }
}

/// The rows in the file format of the module doc.
fn encode(def: &TableDef, upserts: &[RowOp]) -> Bytes {
    let mut buf = BytesMut::with_capacity(upserts.len() * 16 * def.columns.len().max(1));
    for r in upserts {
        let RowOp::Upsert(row) = r else { continue };
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                buf.extend_from_slice(b"\t");
            }
            field(&mut buf, v);
        }
        buf.extend_from_slice(b"\n");
    }
    buf.freeze()
}

fn field(buf: &mut BytesMut, v: &Value) {
    use std::fmt::Write as _;
    match v {
        Value::Null => buf.extend_from_slice(b"\\N"),
        Value::Int(i) => buf.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::UInt(u) => buf.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes()),
        // Finite (takes_load_path): the shortest text that reads back to the same value.
        Value::Float(f) => {
            let _ = write!(buf, "{f}");
        }
        Value::Double(d) => {
            let _ = write!(buf, "{d}");
        }
        Value::Decimal(s) | Value::String(s) => escape(buf, s.as_bytes()),
        Value::Bytes(b) => escape(buf, b),
    }
}

fn escape(buf: &mut BytesMut, s: &[u8]) {
    escape_into(buf, s, separators_and_nul);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_byte_is_escaped_and_null_is_backslash_n() {
        let mut b = BytesMut::new();
        field(
            &mut b,
            &Value::Bytes(vec![b'a', b'\\', b'\t', b'\n', b'\r', 0, b'z']),
        );
        assert_eq!(&b[..], b"a\\\\\\t\\n\\r\\0z");
        let mut b = BytesMut::new();
        field(&mut b, &Value::Null);
        field(&mut b, &Value::Int(-42));
        field(&mut b, &Value::Double(0.1));
        assert_eq!(&b[..], b"\\N-420.1");
    }
}
