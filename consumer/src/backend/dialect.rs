//! The SQL dialect a backend speaks: identifier quoting, the downstream column type, and the
//! text of each DDL operation, with the parts the dialects share as default methods.
//!
//! Each SQL backend implements [`Dialect`] in its own folder (`sqlite/dialect.rs`,
//! `postgres/dialect.rs`, `mysql/dialect.rs`); every statement a backend builds quotes its
//! identifiers through its dialect, so quoting is written once per backend.
//!
//! Translation choices (see also docs/consumer.md):
//!
//! - Identifiers are always quoted (`"x"` with `"` doubled; MySQL `` `x` `` with `` ` `` doubled).
//! - SQLite has one namespace: table `s.t` becomes the single identifier `"s.t"`; schema DDLs
//!   are no-ops except DROP SCHEMA, which drops the schema's tables.
//! - Column defaults are not carried over (every row image is complete); columns added later
//!   are nullable downstream, since rows written before have no value for them.
//! - Indexes other than the primary key are not replicated (ADD/DROP INDEX are no-ops).
//! - SQLite: BIGINT UNSIGNED and BIT columns have no declared type, so values above i64::MAX
//!   are stored exactly (as text) rather than rounded by INTEGER affinity.
//! - SQLite cannot modify a column's type in place: MODIFY COLUMN is a no-op there (SQLite
//!   stores values by their own type); nullability changes are not enforced.

use crate::ddl::DdlOp;
use cdc_common::{ColumnDef, TableDef, TableName};

/// A SQL dialect: quoting, type mapping and DDL text.
pub trait Dialect: Send + Sync {
    /// Quotes an identifier.
    fn quote(&self, ident: &str) -> String;
    /// The downstream reference of a table: `schema.table`, each part quoted (SQLite, which
    /// has no schemas, overrides it).
    fn table(&self, name: &TableName) -> String {
        format!("{}.{}", self.quote(&name.schema), self.quote(&name.table))
    }
    /// The downstream column type.
    fn column_type(&self, c: &ColumnDef) -> String;
    /// The statements of one operation.
    fn ddl(&self, op: &DdlOp) -> Vec<String>;

    /// `CREATE TABLE IF NOT EXISTS` text shared by the dialects.
    fn create_table(&self, def: &TableDef) -> String {
        let mut cols: Vec<String> = def
            .columns
            .iter()
            .map(|c| {
                let mut s = format!("{} {}", self.quote(&c.name), self.column_type(c));
                let s_trim = s.trim_end().len();
                s.truncate(s_trim);
                if !c.nullable || c.primary_key {
                    s.push_str(" NOT NULL");
                }
                s
            })
            .collect();
        let pk: Vec<String> = def
            .columns
            .iter()
            .filter(|c| c.primary_key)
            .map(|c| self.quote(&c.name))
            .collect();
        if !pk.is_empty() {
            cols.push(format!("PRIMARY KEY ({})", pk.join(", ")));
        }
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            self.table(&def.name()),
            cols.join(", ")
        )
    }
}

pub(crate) fn quote_with(ident: &str, q: char) -> String {
    let mut s = String::with_capacity(ident.len() + 2);
    s.push(q);
    for c in ident.chars() {
        if c == q {
            s.push(q);
        }
        s.push(c);
    }
    s.push(q);
    s
}

/// `ADD COLUMN IF NOT EXISTS`, the same text in PostgreSQL and MariaDB: running it again is
/// harmless.
pub(crate) fn add_column_if_missing(
    d: &impl Dialect,
    table: &TableName,
    column: &ColumnDef,
) -> String {
    format!(
        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}",
        d.table(table),
        d.quote(&column.name),
        d.column_type(column)
    )
}

/// `DROP COLUMN IF EXISTS`, for the same reason as [`add_column_if_missing`].
pub(crate) fn drop_column_if_present(d: &impl Dialect, table: &TableName, column: &str) -> String {
    format!(
        "ALTER TABLE {} DROP COLUMN IF EXISTS {}",
        d.table(table),
        d.quote(column)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::mysql::dialect::Mysql;
    use crate::backend::postgres::dialect::Postgres;
    use crate::backend::sqlite::dialect::Sqlite;

    #[test]
    fn identifiers_are_quoted_with_doubling() {
        assert_eq!(Sqlite.table(&TableName::new("a\"b", "c")), "\"a\"\"b.c\"");
        assert_eq!(Mysql.quote("x`y"), "`x``y`");
        assert_eq!(
            Postgres.table(&TableName::new("s", "t\"")),
            "\"s\".\"t\"\"\""
        );
    }
}
