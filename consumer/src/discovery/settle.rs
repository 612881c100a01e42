//! Listing-lag settling: which sightings are old enough to draw conclusions from, and data
//! directories held back until they are (see "Eventually consistent listings" in
//! [`crate::discovery`]).
//!
//! Invariants: with a listing lag `D`, a listing started at `listed` is trusted only about
//! what was first seen at or before `listed - D`; a newly listed data directory waits in
//! `unsettled` until then, and also while a younger-seen directory of an earlier date of its
//! version and partition waits (that one's stream is read first). With `D = 0` everything is
//! settled at once and no directory waits.

use super::catalog::DirEntry;
use super::Discovery;
use cdc_common::layout::DataDir;
use cdc_common::{TableName, Ts};
use std::collections::BTreeMap;
use std::time::Instant;

/// The versions of `name` with a listed directory that is not in the catalog yet (waiting to
/// settle), lowest first: `unsettled` sorts by table, then version, so they are one range.
pub(super) fn waiting_versions<'a>(
    unsettled: &'a BTreeMap<DataDir, Instant>,
    name: &'a TableName,
) -> impl Iterator<Item = Ts> + 'a {
    // no key to build where nothing waits (always, without a listing lag)
    let first = (!unsettled.is_empty()).then(|| DataDir {
        schema: name.schema.clone(),
        table: name.table.clone(),
        version: Ts::ZERO,
        partition_id: None,
        date: None,
    });
    first.into_iter().flat_map(move |from| {
        unsettled
            .range(from..)
            .take_while(move |(d, _)| d.schema == name.schema && d.table == name.table)
            .map(|(d, _)| d.version)
    })
}

/// True when a directory of `name` below version `v` waits to settle.
pub(super) fn waiting_below(
    unsettled: &BTreeMap<DataDir, Instant>,
    name: &TableName,
    v: Ts,
) -> bool {
    waiting_versions(unsettled, name)
        .next()
        .is_some_and(|w| w < v)
}

impl Discovery {
    /// True when something first seen at `seen` is old enough that a listing started at
    /// `listed` shows everything written before it.
    fn settled(&self, seen: Instant, listed: Instant) -> bool {
        self.listing_lag.is_zero() || seen + self.listing_lag <= listed
    }

    pub(super) fn version_settled(&self, name: &TableName, v: Ts, listed: Instant) -> bool {
        if self.listing_lag.is_zero() {
            return true;
        }
        let key = (name.schema.clone(), Some(name.table.clone()), v);
        self.first_seen
            .get(&key)
            .is_some_and(|at| self.settled(*at, listed))
    }

    pub(super) fn database_settled(&self, schema: &str, v: Ts, listed: Instant) -> bool {
        if self.listing_lag.is_zero() {
            return true;
        }
        let key = (schema.to_string(), None, v);
        self.first_seen
            .get(&key)
            .is_some_and(|at| self.settled(*at, listed))
    }

    /// True when a listed directory of `name` below version `v` is not in the catalog yet.
    pub(super) fn unsettled_below(&self, name: &TableName, v: Ts) -> bool {
        waiting_below(&self.unsettled, name, v)
    }

    /// The largest checkpoint-ts read long enough before `listed` (all of it, without a lag).
    pub(super) fn settled_checkpoint(&mut self, listed: Instant) -> Option<Ts> {
        let lag = self.listing_lag;
        let ok = |at: Instant| lag.is_zero() || at + lag <= listed;
        // Keep the newest settled entry and everything after it.
        while self.checkpoints.len() > 1 && ok(self.checkpoints[1].0) {
            self.checkpoints.pop_front();
        }
        self.checkpoints
            .iter()
            .filter(|(at, _)| ok(*at))
            .map(|(_, ts)| *ts)
            .max()
    }

    /// Records a data directory found by a listing: straight into the catalog without a lag,
    /// else held until it is settled (see [`Discovery::promote`]). True when it is new.
    pub(super) fn note_dir(&mut self, dir: DataDir) -> bool {
        if self.dir_entry(&dir).is_some() || self.unsettled.contains_key(&dir) {
            return false;
        }
        if self.listing_lag.is_zero() {
            let (schema, table, version) = (dir.schema.clone(), dir.table.clone(), dir.version);
            self.version_mut(&schema, &table, version)
                .dirs
                .insert(dir, DirEntry::default());
            self.grew = true;
        } else {
            self.unsettled.insert(dir, Instant::now());
        }
        true
    }

    /// Moves settled directories into the catalog, except one with an unsettled directory of an
    /// earlier date in the same version and partition (its stream must read that one first).
    /// Returns how many moved.
    pub(super) fn promote(&mut self, listed: Instant) -> u64 {
        let young: Vec<DataDir> = self
            .unsettled
            .iter()
            .filter(|(_, at)| !self.settled(**at, listed))
            .map(|(d, _)| d.clone())
            .collect();
        let ready: Vec<DataDir> = self
            .unsettled
            .iter()
            .filter(|(d, at)| {
                self.settled(**at, listed)
                    && !young.iter().any(|y| {
                        y.schema == d.schema
                            && y.table == d.table
                            && y.version == d.version
                            && y.partition_id == d.partition_id
                            && y.date < d.date
                    })
            })
            .map(|(d, _)| d.clone())
            .collect();
        for d in &ready {
            self.unsettled.remove(d);
            let (schema, table, version) = (d.schema.clone(), d.table.clone(), d.version);
            self.version_mut(&schema, &table, version)
                .dirs
                .insert(d.clone(), DirEntry::default());
            self.grew = true;
        }
        ready.len() as u64
    }

    /// With a listing lag: the ts through which every data file is in the catalog (the
    /// settled checkpoint, below any directory still waiting to settle).
    pub(super) fn update_discovered_through(&mut self, listed: Instant) {
        // Rows of a waiting directory are at or above its version.
        let settled = self.settled_checkpoint(listed).unwrap_or(Ts::ZERO);
        let through = self
            .unsettled
            .keys()
            .map(|d| Ts(d.version.0.saturating_sub(1)))
            .fold(settled, Ts::min);
        self.catalog_mut().discovered_through = Some(through);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(schema: &str, table: &str, version: u64, partition_id: Option<i64>) -> DataDir {
        DataDir {
            schema: schema.into(),
            table: table.into(),
            version: Ts(version),
            partition_id,
            date: None,
        }
    }

    #[test]
    fn a_tables_waiting_versions_are_its_own_and_no_neighbours() {
        let now = Instant::now();
        let unsettled: BTreeMap<DataDir, Instant> = [
            dir("d", "s", 1, None),
            dir("d", "t", 7, None),
            dir("d", "t", 3, Some(2)),
            dir("d", "t", 3, None),
            dir("d", "t1", 2, None),
            dir("d", "t.x", 1, None),
            dir("d1", "t", 1, None),
            dir("da", "t", 1, None),
        ]
        .into_iter()
        .map(|d| (d, now))
        .collect();
        let t = TableName::new("d", "t");
        let got: Vec<Ts> = waiting_versions(&unsettled, &t).collect();
        assert_eq!(
            got,
            vec![Ts(3), Ts(3), Ts(7)],
            "one per waiting directory, lowest first"
        );
        assert!(waiting_below(&unsettled, &t, Ts(4)));
        assert!(
            !waiting_below(&unsettled, &t, Ts(3)),
            "none below its lowest"
        );
        let none = TableName::new("d", "r");
        assert_eq!(waiting_versions(&unsettled, &none).count(), 0);
        assert!(!waiting_below(&unsettled, &none, Ts(100)));
        assert_eq!(waiting_versions(&BTreeMap::new(), &t).count(), 0);
    }
}
