//! Listing results under faults: a delimiter listing rebuilt from the objects a filtered
//! recursive listing kept, truncation to the first entries in path order, and the error of a
//! listing cut after some entries (`FailListAfter`).

use object_store::path::Path;
use object_store::{ListResult, ObjectMeta};
use std::collections::BTreeSet;

/// A delimiter listing of `prefix` computed from the objects a filtered recursive listing kept:
/// a directory shows iff one of its kept objects shows.
pub(super) fn delimit(prefix: Option<&Path>, kept: Vec<ObjectMeta>) -> ListResult {
    let root = prefix.cloned().unwrap_or_default();
    let mut dirs = BTreeSet::new();
    let mut objects = Vec::new();
    for o in kept {
        let rest: Vec<_> = match o.location.prefix_match(&root) {
            Some(parts) => parts.collect(),
            None => continue,
        };
        match rest.len() {
            0 => {}
            1 => objects.push(o),
            _ => {
                dirs.insert(root.clone().join(rest[0].clone()));
            }
        }
    }
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    ListResult {
        common_prefixes: dirs.into_iter().collect(),
        objects,
        extensions: Default::default(),
    }
}

/// Keeps the first `keep` entries (directories and objects together) in path order.
pub(super) fn truncate(mut r: ListResult, keep: usize) -> ListResult {
    let mut names: Vec<Path> = r
        .common_prefixes
        .iter()
        .chain(r.objects.iter().map(|o| &o.location))
        .cloned()
        .collect();
    names.sort();
    names.truncate(keep);
    r.common_prefixes.retain(|p| names.contains(p));
    r.objects.retain(|o| names.contains(&o.location));
    r
}

/// The error of a listing of `prefix` that [`super::Fault::FailListAfter`] cuts after `n`
/// entries (retryable, as a dropped connection is).
pub(super) fn failed_after(prefix: &str, n: usize) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultStore",
        source: format!("injected failure of LIST {prefix} after {n} entries").into(),
    }
}
