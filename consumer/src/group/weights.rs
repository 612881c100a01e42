//! The universe of work a group balances and what each item weighs: every discovered table
//! and every schema with database-level schema files, each weighing its indexed data files not
//! yet applied (plus one, so an idle item still counts). The index does not carry file sizes;
//! pending files stand in for pending bytes (the sink cuts files at a size, so they are close).

use super::LeaseKey;
use crate::discovery::Catalog;
use crate::progress::{date_text, Progress, ProgressKey};
use std::collections::BTreeMap;

/// Every item of the catalog with its weight.
pub fn universe(cat: &Catalog, progress: &Progress) -> BTreeMap<LeaseKey, u64> {
    let mut out = BTreeMap::new();
    for (name, t) in &cat.tables {
        let current = progress.table_version(name);
        let mut pending = 0u64;
        for (v, ve) in &t.versions {
            if current.is_some_and(|c| *v < c) {
                continue;
            }
            for (dir, de) in &ve.dirs {
                let date = date_text(dir);
                for (dispatcher, newest) in &de.indexes {
                    let done = match progress.get(&ProgressKey::stream(dir, dispatcher)) {
                        Some(p) if p.version == *v && p.date == date => p.file_index,
                        Some(p) if p.cmp_file(*v, &date, 0).is_gt() => *newest,
                        _ => 0,
                    };
                    pending += newest.saturating_sub(done);
                }
            }
        }
        out.insert(LeaseKey::Table(name.clone()), pending + 1);
    }
    for schema in cat.databases.keys() {
        out.insert(LeaseKey::Schema(schema.clone()), 1);
    }
    out
}
