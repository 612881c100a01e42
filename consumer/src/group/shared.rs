//! The state the heartbeat task and the replayer share: the leases held (with their epochs,
//! written by the heartbeat, snapshotted by the replayer at the start of each round) and the
//! universe of work with its weights (written by the replayer after discovery, read by the
//! heartbeat to balance).

use super::LeaseKey;
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Shared between one member's heartbeat and its replayer.
#[derive(Default)]
pub struct Shared {
    held: Mutex<BTreeMap<LeaseKey, i64>>,
    universe: Mutex<BTreeMap<LeaseKey, u64>>,
    /// Wakes the heartbeat early (the universe changed).
    pub wake: Notify,
}

impl Shared {
    /// The leases held and their epochs.
    pub fn held(&self) -> BTreeMap<LeaseKey, i64> {
        self.held.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Replaces the leases held.
    pub fn set_held(&self, held: BTreeMap<LeaseKey, i64>) {
        if let Ok(mut h) = self.held.lock() {
            *h = held;
        }
    }

    /// The work to balance and its weights.
    pub fn universe(&self) -> BTreeMap<LeaseKey, u64> {
        self.universe.lock().map(|u| u.clone()).unwrap_or_default()
    }

    /// Replaces the universe; wakes the heartbeat when the set of items changed.
    pub fn set_universe(&self, u: BTreeMap<LeaseKey, u64>) {
        let changed = match self.universe.lock() {
            Ok(mut cur) => {
                let changed = !cur.keys().eq(u.keys());
                *cur = u;
                changed
            }
            Err(_) => false,
        };
        if changed {
            self.wake.notify_one();
        }
    }
}
