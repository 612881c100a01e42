//! The heartbeat: one task per member, on its own downstream connection, every third of the
//! lease TTL (or at once when the replayer found new tables). Each beat runs four phases:
//!
//! 1. `register`: write this member's row (expiry one TTL ahead, pending work, lease count);
//! 2. `renew`: extend every lease still ours and learn their epochs;
//! 3. `observe`: read every member and lease row of the group;
//! 4. `rebalance`: release what [`super::balance::plan`] says is too much, claim what it says
//!    is missing.
//!
//! The next beat comes after a third of the TTL, or just after the first lease another member
//! holds expires, whichever is sooner (a healthy member renews long before that).
//!
//! When the member is stopped (a graceful stop of the process), it leaves: every lease
//! released and its member row deleted, so the others claim its tables at their next beat.
//!
//! The leases held after the beat are published to the [`Shared`] state the replayer takes
//! its round's fences from. A failed beat keeps the last published set: the fence check in
//! each apply transaction, not this task, is what makes a lost lease harmless.

use super::balance::plan;
use super::shared::Shared;
use super::status::view;
use super::store::LeaseStore;
use super::GroupConfig;
use crate::error::Result;
use crate::freshness::Health;
use crate::metrics::Metrics;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long after another member's lease expires this member's next beat comes (clock steps
/// between the downstream's clock readings).
const EXPIRY_MARGIN_MS: u64 = 20;

/// One member's heartbeat state.
pub struct Member {
    cfg: GroupConfig,
    store: Box<dyn LeaseStore>,
    shared: Arc<Shared>,
    health: Arc<Mutex<Health>>,
    metrics: Metrics,
    /// Time until the first lease another member holds expires, as last read: the next beat
    /// comes no later than just after it, so a dead member's tables move within about one
    /// TTL rather than one TTL plus a heartbeat period.
    next_expiry: Option<Duration>,
}

impl Member {
    /// A member of `cfg.group` using `store` (already initialised).
    pub fn new(
        cfg: GroupConfig,
        store: Box<dyn LeaseStore>,
        shared: Arc<Shared>,
        health: Arc<Mutex<Health>>,
        metrics: Metrics,
    ) -> Member {
        Member {
            cfg,
            store,
            shared,
            health,
            metrics,
            next_expiry: None,
        }
    }

    /// Beats until `stop` fires (then leaves the group and returns how that went) or the
    /// task is aborted (then the leases expire after the TTL).
    pub async fn run(mut self, stop: tokio::sync::oneshot::Receiver<()>) -> Result<()> {
        let period = self.cfg.heartbeat_period();
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.beat().await {
                self.metrics.group_heartbeat_failures.inc();
                tracing::warn!(group = %self.cfg.group, error = %e, "group heartbeat failed");
                if let Ok(mut h) = self.health.lock() {
                    if let Some(g) = h.group.as_mut() {
                        g.heartbeat_error = Some(e.to_string());
                    }
                }
            }
            let wait = self.next_expiry.map_or(period, |e| period.min(e));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.shared.wake.notified() => {}
                _ = &mut stop => break,
            }
        }
        let left = self.leave().await;
        match &left {
            Ok(()) => {
                tracing::info!(group = %self.cfg.group, member = %self.cfg.member, "left the group")
            }
            Err(e) => {
                tracing::warn!(group = %self.cfg.group, error = %e, "leaving the group failed; the leases expire after the TTL")
            }
        }
        left
    }

    /// One heartbeat (see the module doc).
    pub async fn beat(&mut self) -> Result<()> {
        let (g, me, ttl) = (
            self.cfg.group.clone(),
            self.cfg.member.clone(),
            self.cfg.ttl_ms(),
        );
        let universe = self.shared.universe();
        // register
        let held_before = self.shared.held();
        let pending: u64 = held_before
            .keys()
            .map(|k| universe.get(k).copied().unwrap_or(0))
            .sum();
        self.store
            .heartbeat(&g, &me, ttl, pending as i64, held_before.len() as i64)
            .await?;
        // renew
        let mut held: BTreeMap<_, _> = self.store.renew(&g, &me, ttl).await?.into_iter().collect();
        // observe
        let members = self.store.members(&g).await?;
        let leases = self.store.leases(&g).await?;
        self.next_expiry = leases
            .iter()
            .filter(|l| l.is_live() && l.owner != me)
            .map(|l| Duration::from_millis(l.expires_in_ms.max(0) as u64 + EXPIRY_MARGIN_MS))
            .min();
        // rebalance
        let p = plan(&me, &universe, &members, &leases);
        for k in &p.release {
            if let Some(epoch) = held.remove(k) {
                self.store.release(&g, k, &me, epoch).await?;
                self.metrics.group_releases.inc();
                tracing::info!(group = %g, lease = %k, epoch, "released (rebalance)");
            }
        }
        for k in &p.claim {
            // A claim that fails (a lock wait timed out on a row a paused member holds) is
            // retried next beat; the renewals above already happened.
            match self.store.claim(&g, k, &me, ttl).await {
                Ok(Some(epoch)) => {
                    self.metrics.group_claims.inc();
                    tracing::info!(group = %g, lease = %k, epoch, "claimed");
                    held.insert(k.clone(), epoch);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(group = %g, lease = %k, error = %e, "claim failed"),
            }
        }
        self.metrics.group_leases_held.set(held.len() as i64);
        self.shared.set_held(held);
        // The view shows the rows as read plus this beat's own moves.
        let (members, leases) = if p.claim.is_empty() && p.release.is_empty() {
            (members, leases)
        } else {
            (self.store.members(&g).await?, self.store.leases(&g).await?)
        };
        let v = view(&g, &me, ttl, &members, &leases);
        if let Ok(mut h) = self.health.lock() {
            h.group = Some(v);
        }
        Ok(())
    }

    /// Leaves the group (releases every lease, deletes the member row).
    pub async fn leave(&mut self) -> Result<()> {
        self.shared.set_held(BTreeMap::new());
        self.store.leave(&self.cfg.group, &self.cfg.member).await
    }
}
