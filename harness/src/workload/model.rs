//! The model: the expected final state of the downstream, one [`ModelTable`] per live table.
//!
//! The generator updates it with every step it draws (see `dml.rs` and `ddl.rs`), so after the
//! last step it is what a downstream that applied every event must hold; `verify` compares a
//! real database with it.

use cdc_common::{TableDef, TableName, Value};
use std::collections::BTreeMap;

/// The expected final state of one table.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelTable {
    /// Current definition.
    pub def: TableDef,
    /// Rows by primary key (column 0, `id BIGINT`).
    pub rows: BTreeMap<i64, Vec<Value>>,
}

/// The expected final state of the downstream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// Live tables by name.
    pub tables: BTreeMap<TableName, ModelTable>,
}
