//! SQLite downstream (bundled SQLite through rusqlite).
//!
//! - One database file; table `s.t` is the single quoted identifier `"s.t"` (see
//!   [`dialect`]).
//! - WAL journal with `synchronous=NORMAL`: a power loss may lose the last transactions, but
//!   rows and progress are in the same transaction, so they are lost *together* and replayed.
//! - Statements are prepared once per SQL text (rusqlite's statement cache): one text per
//!   (table, operation, batch size).
//! - SQLite is built with `SQLITE_MALLOC_SOFT_LIMIT=0` (`.cargo/config.toml`): its default
//!   caps the schema's table-name hash at 64 buckets, so every name look-up walked a chain
//!   of tables/64 entries (O(tables) per statement prepared in a file of many tables).
//!
//! Files: [`dialect`] (quoting, types, DDL text), `apply` (the transaction of a unit and its
//! row statements), `bookkeeping` (progress and quarantine tables), `read_back` (tables,
//! columns and rows as canonical text).

mod apply;
mod bookkeeping;
pub mod dialect;
mod read_back;

use super::{Downstream, TextRows, Unit};
use crate::error::{Error, Result};
use crate::freshness::RoundRecord;
use crate::progress::{Position, ProgressKey};
use crate::quarantine::QuarantinedFile;
use apply::SqlCache;
use cdc_common::{ColumnDef, TableName};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::path::Path;

/// The SQLite downstream.
pub struct SqliteDownstream {
    conn: Connection,
    batch_rows: usize,
    /// SQL texts by (table, version, statement kind, rows), built once.
    sql: SqlCache,
}

impl SqliteDownstream {
    /// Opens (creating) the database file.
    pub fn open(path: &Path, batch_rows: usize) -> Result<SqliteDownstream> {
        let conn = Connection::open(path).map_err(|e| Error::Connect {
            uri: format!("sqlite://{}", path.display()),
            reason: e.to_string(),
        })?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )
        .map_err(|e| Error::Connect {
            uri: format!("sqlite://{}", path.display()),
            reason: e.to_string(),
        })?;
        conn.set_prepared_statement_cache_capacity(512);
        Ok(SqliteDownstream {
            conn,
            batch_rows,
            sql: HashMap::new(),
        })
    }

    /// Opens an existing database file read-only, for the read-back only (applying through it
    /// fails with the database's error).
    pub fn open_read_only(path: &Path) -> Result<SqliteDownstream> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| {
                Error::Connect {
                    uri: format!("sqlite://{}", path.display()),
                    reason: e.to_string(),
                }
            })?;
        Ok(SqliteDownstream {
            conn,
            batch_rows: 1,
            sql: HashMap::new(),
        })
    }
}

#[async_trait::async_trait]
impl Downstream for SqliteDownstream {
    fn transactional_ddl(&self) -> bool {
        true
    }

    async fn load_progress(&mut self) -> Result<Vec<(ProgressKey, Position)>> {
        bookkeeping::load_progress(&self.conn)
    }

    async fn table_exists(&mut self, name: &TableName) -> Result<bool> {
        // `pragma_table_info` finds the table through SQLite's in-memory schema (a hash
        // lookup); a query of `sqlite_master` by name scans every table's row, which made a
        // replay creating N tables cost O(N^2). A view of that name counts as existing (the
        // consumer creates no views; a CREATE TABLE over one would fail either way).
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info(?)",
                [format!("{}.{}", name.schema, name.table)],
                |r| r.get(0),
            )
            .map_err(|e| super::downstream_error(&name.to_string(), "-", "table lookup", e))?;
        Ok(n > 0)
    }

    async fn apply(&mut self, unit: Unit<'_>) -> Result<()> {
        apply::apply(&mut self.conn, &mut self.sql, self.batch_rows, unit)
    }

    async fn load_quarantine(&mut self, create: bool) -> Result<Vec<QuarantinedFile>> {
        bookkeeping::load_quarantine(&self.conn, create)
    }

    async fn save_round(&mut self, rec: &RoundRecord, keep: u64) -> Result<()> {
        bookkeeping::save_round(&self.conn, rec, keep)
    }

    async fn load_rounds(&mut self, limit: usize) -> Result<Vec<RoundRecord>> {
        bookkeeping::load_rounds(&self.conn, limit)
    }

    async fn read_tables(&mut self, schema: &str) -> Result<Vec<String>> {
        read_back::tables(&self.conn, schema)
    }

    async fn read_columns(&mut self, table: &TableName) -> Result<Vec<String>> {
        read_back::columns(&self.conn, table)
    }

    async fn read_rows(&mut self, table: &TableName, columns: &[ColumnDef]) -> Result<TextRows> {
        read_back::rows(&self.conn, table, columns)
    }
}

#[cfg(test)]
mod tests {
    /// The build setting of `.cargo/config.toml` reached the bundled SQLite: without it a
    /// file of 20,000 tables looks each table name up in a chain of about 300.
    #[test]
    fn sqlite_is_built_without_the_soft_allocation_limit() {
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        let mut stmt = conn.prepare("PRAGMA compile_options").expect("pragma");
        let opts: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert!(
            opts.iter().any(|o| o == "MALLOC_SOFT_LIMIT=0"),
            "SQLite built with {opts:?}"
        );
    }
}
