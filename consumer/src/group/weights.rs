//! The universe of work a group balances and what each item weighs: every discovered table
//! and every schema with database-level schema files, each weighing its indexed data files not
//! yet applied (plus one, so an idle item still counts). The index does not carry file sizes;
//! pending files stand in for pending bytes (the sink cuts files at a size, so they are close).

use super::LeaseKey;
use crate::discovery::Catalog;
use crate::ordering::table_pending;
use crate::progress::Progress;
use std::collections::BTreeMap;

/// Every item of the catalog with its weight.
pub fn universe(cat: &Catalog, progress: &Progress) -> BTreeMap<LeaseKey, u64> {
    let mut out = BTreeMap::new();
    for (name, t) in &cat.tables {
        let pending = table_pending(name, t, progress);
        out.insert(LeaseKey::Table(name.clone()), pending + 1);
    }
    for schema in cat.databases.keys() {
        out.insert(LeaseKey::Schema(schema.clone()), 1);
    }
    out
}
