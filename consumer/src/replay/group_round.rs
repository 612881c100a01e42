//! The replay loop's side of a consumer group (see [`crate::group`]): at the start of a round
//! the leases held are snapshotted as this round's fences, the progress record is reloaded
//! from the downstream (other members move it), and the universe of work with its weights is
//! handed to the heartbeat. During the round only leased tables and schemas are applied, each
//! unit under its lease's fence.
//!
//! The snapshot is taken **before** the progress reload: a lease claimed by this member
//! committed after the previous owner's last commit, so the reload sees everything that owner
//! applied; a lease lost or re-claimed after the snapshot has another epoch, and the fence
//! check fails instead of applying from a stale position.

use super::{ProgressRead, Replayer};
use crate::discovery::Catalog;
use crate::error::{Error, Result};
use crate::group::{weights, Fence, Group, LeaseKey};
use crate::progress::{Progress, ProgressKey};

impl Replayer {
    /// Makes this replayer a member of a group: from the next round on it applies only what
    /// it holds leases on, and it reads progress plain at reopen ([`ProgressRead::Plain`]).
    pub fn set_group(&mut self, group: Group) {
        self.group = Some(group);
        self.read = ProgressRead::Plain;
        // leases and other members' progress change what this member can apply
        self.disc.disable_idle_rounds();
        self.quiet.forget();
    }

    /// Snapshots the fences, reloads progress, publishes the universe (see the module doc).
    pub(super) async fn begin_group_round(&mut self, cat: &Catalog) -> Result<()> {
        let Some(g) = &self.group else {
            return Ok(());
        };
        self.fences = g.fences().into_iter().map(|f| (f.key.clone(), f)).collect();
        let rows = self.down.load_progress().await?;
        self.progress = Progress::from_rows(rows);
        g.shared
            .set_universe(weights::universe(cat, &self.progress));
        Ok(())
    }

    /// True when this member applies `key` this round (always outside a group).
    pub(super) fn owns(&self, key: &LeaseKey) -> bool {
        self.group.is_none() || self.fences.contains_key(key)
    }

    /// [`Self::owns`] of a table's lease, without building its key outside a group (asked per
    /// table, per file step of the read-ahead).
    pub(super) fn owns_table(&self, schema: &str, table: &str) -> bool {
        self.group.is_none()
            || self
                .fences
                .contains_key(&LeaseKey::Table(cdc_common::TableName::new(schema, table)))
    }

    /// The fence of a unit whose (first) progress row is `pk`; `None` outside a group. Inside
    /// one, a unit without a lease gets a fence no lease row matches, so it can never commit.
    pub(super) fn fence_for(&self, pk: &ProgressKey) -> Option<Fence> {
        let g = self.group.as_ref()?;
        let key = if pk.table.is_empty() {
            LeaseKey::Schema(pk.schema.clone())
        } else {
            LeaseKey::Table(cdc_common::TableName::new(&pk.schema, &pk.table))
        };
        Some(self.fences.get(&key).cloned().unwrap_or(Fence {
            group: g.cfg.group.clone(),
            key,
            owner: g.cfg.member.clone(),
            epoch: -1,
        }))
    }

    /// Counts a unit rolled back by its fence.
    pub(super) fn note_fenced(&self, e: &Error) {
        if matches!(e, Error::Fenced { .. }) {
            self.metrics.group_fenced.inc();
        }
    }
}
