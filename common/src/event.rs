//! Change events handed to the sink by dispatchers and decoded back by the consumer.
//!
//! A [`DmlEvent`] is one table's share of one upstream transaction: every row change in it has
//! the same commit ts and table version. A [`DdlEvent`] carries both the query text (for humans
//! and for TiCDC compatibility) and a structured [`DdlKind`] plus the table definitions that
//! result from it, so that consumers translate DDL from structure, never by parsing SQL.

use crate::table::{TableDef, TableName};
use crate::ts::Ts;
use crate::value::Value;
use std::sync::Arc;

/// One row change. Row images hold one value per column of the event's table, in table order.
#[derive(Clone, Debug, PartialEq)]
pub enum RowChange {
    /// A new row.
    Insert {
        /// The row after the insert.
        after: Vec<Value>,
    },
    /// A changed row. `before` is present when the upstream captured the old image.
    Update {
        /// The row before the update, when known.
        before: Option<Vec<Value>>,
        /// The row after the update.
        after: Vec<Value>,
    },
    /// A removed row, carrying its before image.
    Delete {
        /// The row before the delete.
        before: Vec<Value>,
    },
}

impl RowChange {
    /// The image that identifies the row after the change (`after`, or `before` for deletes).
    pub fn image(&self) -> &[Value] {
        match self {
            RowChange::Insert { after } | RowChange::Update { after, .. } => after,
            RowChange::Delete { before } => before,
        }
    }

    /// Approximate encoded size in bytes.
    pub fn approx_size(&self) -> usize {
        let sum = |v: &[Value]| v.iter().map(Value::approx_size).sum::<usize>() + v.len();
        match self {
            RowChange::Insert { after } => sum(after),
            RowChange::Update { before, after } => {
                sum(after) + before.as_deref().map(sum).unwrap_or(0)
            }
            RowChange::Delete { before } => sum(before),
        }
    }
}

/// One table's share of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct DmlEvent {
    /// Definition of the table version the rows were written under.
    pub table: Arc<TableDef>,
    /// Physical partition id, for partitioned tables.
    pub partition_id: Option<i64>,
    /// Commit ts of the transaction.
    pub commit_ts: Ts,
    /// The row changes, in transaction order.
    pub rows: Vec<RowChange>,
}

impl DmlEvent {
    /// Approximate encoded size in bytes.
    pub fn approx_size(&self) -> usize {
        self.rows.iter().map(RowChange::approx_size).sum()
    }
}

/// The structured kind of a DDL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DdlKind {
    /// CREATE DATABASE.
    CreateSchema,
    /// DROP DATABASE (every table in it goes too).
    DropSchema,
    /// CREATE TABLE.
    CreateTable,
    /// DROP TABLE.
    DropTable,
    /// TRUNCATE TABLE.
    TruncateTable,
    /// RENAME TABLE: `prev_tables[i]` became `tables[i]`.
    RenameTable,
    /// ALTER TABLE ADD COLUMN.
    AddColumn,
    /// ALTER TABLE DROP COLUMN.
    DropColumn,
    /// ALTER TABLE MODIFY COLUMN (type, nullability, default).
    ModifyColumn,
    /// ALTER TABLE RENAME COLUMN `from` TO `to`.
    RenameColumn {
        /// Old column name.
        from: String,
        /// New column name.
        to: String,
    },
    /// CREATE INDEX / ADD INDEX.
    AddIndex,
    /// DROP INDEX.
    DropIndex,
    /// Anything else; carried for its query text and resulting definitions only.
    Other,
}

impl DdlKind {
    /// The TiDB `ActionType` number written as `Type` in schema files.
    pub fn action_type(&self) -> u32 {
        match self {
            DdlKind::CreateSchema => 1,
            DdlKind::DropSchema => 2,
            DdlKind::CreateTable => 3,
            DdlKind::DropTable => 4,
            DdlKind::AddColumn => 5,
            DdlKind::DropColumn => 6,
            DdlKind::AddIndex => 7,
            DdlKind::DropIndex => 8,
            DdlKind::TruncateTable => 11,
            DdlKind::ModifyColumn | DdlKind::RenameColumn { .. } => 12,
            DdlKind::RenameTable => 14,
            DdlKind::Other => 0,
        }
    }

    /// True for DDLs that act on a whole schema (database-level schema files).
    pub fn is_schema_level(&self) -> bool {
        matches!(self, DdlKind::CreateSchema | DdlKind::DropSchema)
    }
}

/// A schema change.
#[derive(Clone, Debug, PartialEq)]
pub struct DdlEvent {
    /// Commit ts of the DDL; it becomes the version of every table definition it produces.
    pub commit_ts: Ts,
    /// The DDL text as executed upstream.
    pub query: String,
    /// What the DDL does.
    pub kind: DdlKind,
    /// The schema the DDL acts in (for schema DDLs, the schema itself).
    pub schema: String,
    /// Table definitions after the DDL, one per affected table (empty for schema DDLs; for
    /// DROP TABLE the dropped definition, whose files stay readable).
    pub tables: Vec<TableDef>,
    /// For RENAME TABLE, the names before, aligned with `tables`; empty otherwise.
    pub prev_tables: Vec<TableName>,
}
