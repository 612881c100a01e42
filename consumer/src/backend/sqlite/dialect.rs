//! SQLite's dialect: `"x"` quoting, one namespace (`"schema.table"`), type affinities chosen
//! to keep every value exact, and the DDL texts (schema DDLs are no-ops but DROP SCHEMA; MODIFY
//! COLUMN is a no-op). See [`crate::backend::dialect`] for the shared translation choices.

use crate::backend::dialect::{quote_with, Dialect};
use crate::ddl::DdlOp;
use cdc_common::{ColumnDef, ColumnType, TableName};

/// SQLite: one namespace, `"schema.table"` names.
pub struct Sqlite;

impl Dialect for Sqlite {
    fn quote(&self, ident: &str) -> String {
        quote_with(ident, '"')
    }
    fn table(&self, name: &TableName) -> String {
        self.quote(&format!("{}.{}", name.schema, name.table))
    }
    fn column_type(&self, c: &ColumnDef) -> String {
        match c.ty {
            // No declared type (no affinity): values up to i64::MAX stay integers, larger ones
            // are kept exact as text instead of being rounded to REAL.
            ColumnType::BigInt if c.unsigned => "",
            ColumnType::Bit => "",
            t if t.is_integer() => "INTEGER",
            ColumnType::Year => "INTEGER",
            ColumnType::Float | ColumnType::Double => "REAL",
            t if t.is_binary() => "BLOB",
            // DECIMAL as text keeps every digit (NUMERIC affinity would round to REAL).
            _ => "TEXT",
        }
        .into()
    }
    fn ddl(&self, op: &DdlOp) -> Vec<String> {
        match op {
            DdlOp::CreateSchema(_) => Vec::new(),
            DdlOp::DropSchema { tables, .. } => tables
                .iter()
                .map(|t| format!("DROP TABLE IF EXISTS {}", self.table(t)))
                .collect(),
            DdlOp::CreateTable(def) => vec![self.create_table(def)],
            DdlOp::DropTable(t) => vec![format!("DROP TABLE IF EXISTS {}", self.table(t))],
            DdlOp::TruncateTable(t) => vec![format!("DELETE FROM {}", self.table(t))],
            DdlOp::RenameTable { from, to } => vec![format!(
                "ALTER TABLE {} RENAME TO {}",
                self.table(from),
                self.table(to)
            )],
            DdlOp::AddColumn { table, column } => vec![format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                self.table(table),
                self.quote(&column.name),
                self.column_type(column)
            )],
            DdlOp::DropColumn { table, column } => vec![format!(
                "ALTER TABLE {} DROP COLUMN {}",
                self.table(table),
                self.quote(column)
            )],
            DdlOp::ModifyColumn { .. } => Vec::new(),
            DdlOp::RenameColumn { table, from, to } => vec![format!(
                "ALTER TABLE {} RENAME COLUMN {} TO {}",
                self.table(table),
                self.quote(from),
                self.quote(to)
            )],
        }
    }
}
