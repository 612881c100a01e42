//! The parts of PostgreSQL's upsert statement that both apply paths build (the multi-row
//! `INSERT ... ON CONFLICT` of [`super::apply`] and the COPY-staged upsert of [`super::copy`]):
//! the quoted column list and the `ON CONFLICT (key) DO UPDATE SET ...` clause. A table whose
//! every column is in its key gets `DO NOTHING` (there is nothing to update).

use super::dialect::Postgres;
use crate::backend::dialect::Dialect;
use cdc_common::TableDef;

/// The table's columns, quoted, in definition order.
pub(super) fn columns(def: &TableDef) -> String {
    def.columns
        .iter()
        .map(|c| Postgres.quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The primary-key columns, quoted, in definition order.
pub(super) fn pk_cols(def: &TableDef) -> Vec<String> {
    def.columns
        .iter()
        .filter(|c| c.primary_key)
        .map(|c| Postgres.quote(&c.name))
        .collect()
}

/// The `ON CONFLICT` clause of an upsert keyed by the primary key.
pub(super) fn on_conflict(def: &TableDef) -> String {
    let set: Vec<String> = def
        .columns
        .iter()
        .filter(|c| !c.primary_key)
        .map(|c| format!("{0} = EXCLUDED.{0}", Postgres.quote(&c.name)))
        .collect();
    let pk = pk_cols(def).join(", ");
    if set.is_empty() {
        format!(" ON CONFLICT ({pk}) DO NOTHING")
    } else {
        format!(" ON CONFLICT ({pk}) DO UPDATE SET {}", set.join(", "))
    }
}
