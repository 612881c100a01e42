//! Consumer groups (`storage-consumer --group NAME`): several processes share one storage and
//! one downstream, each applying the tables it holds a lease on.
//!
//! # Protocol
//!
//! ```text
//!  member A                     downstream                         member B
//!  heartbeat ── register/renew ─> cdc_consumer_members, _leases <── heartbeat
//!            ── claim (epoch+1) ─> lease (t1, A, e=1)
//!  round: snapshot leases {t1:1}, reload progress
//!  apply t1 file: BEGIN; rows; fence UPDATE lease WHERE owner=A AND epoch=1; progress; COMMIT
//!  ... A paused past the TTL ...
//!                                lease (t1, -, expired)  <── claim (epoch 2), reload progress
//!                                                             apply t1 under epoch 2
//!  A resumes: fence (A, 1) matches no row -> Fenced, ROLLBACK (rows and progress)
//!  next round: snapshot {} -> A applies nothing of t1
//! ```
//!
//! Invariants:
//! - **Leases live in the downstream** (see [`store`]): per group, one row per table and per
//!   schema with database-level DDL ([`LeaseKey`]), with owner, epoch and an expiry on the
//!   downstream's clock, renewed by the heartbeat ([`member`]) every third of the TTL.
//! - **Fencing** ([`fence`]): every unit a member applies carries the epoch of its lease as
//!   snapshotted at the start of the round; the backend checks it inside the unit's
//!   transaction. A member that lost the lease commits nothing.
//! - **Fresh progress**: at the start of each round a member snapshots its leases, then reloads
//!   the progress record from the downstream, so it continues exactly where the previous owner
//!   committed (a claim commits after the previous owner's last commit, because both lock the
//!   lease row).
//! - **Cross-table DDL barrier**: the ordering rules ([`crate::ordering`]) are a pure function of
//!   the catalog and the progress record; in a group the progress record is the shared one in
//!   the downstream, reloaded every round. A database-level DDL waits (on whichever member owns
//!   the schema's lease) until every table of the schema reached it, whoever owns them; a
//!   table's version above it waits until the DDL's progress row says it is applied; a RENAME
//!   waits for its source table. Each DDL is applied once: only under its lease, and its
//!   progress row makes a second apply a no-op.
//! - **Balancing** ([`balance`]): by item count, with pending work deciding who gets the
//!   remainder and which items move first.
//!
//! Files: [`lease_key`], [`fence`], [`store`] (the trait the PostgreSQL and MySQL backends
//! implement in `backend/*/leases.rs`), [`balance`], [`shared`], [`member`], [`status`]
//! (`/group`), [`weights`] (pending work per item).

pub mod balance;
pub mod fence;
pub mod lease_key;
pub mod member;
pub mod shared;
pub mod status;
pub mod store;
pub mod weights;

pub use fence::Fence;
pub use lease_key::LeaseKey;
pub use shared::Shared;
pub use status::GroupView;
pub use store::LeaseStore;

use std::sync::Arc;
use std::time::Duration;

/// `--lease-ttl`'s default: long enough that a slow round or a GC pause does not lose a
/// lease, short enough that a dead member's tables move within seconds.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// A member's group settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// The group's name (`--group`).
    pub group: String,
    /// This member's id (`--member-id`, default host name and process id).
    pub member: String,
    /// The lease TTL (`--lease-ttl`).
    pub ttl: Duration,
}

impl GroupConfig {
    /// The TTL in milliseconds.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl.as_millis().min(i64::MAX as u128) as i64
    }

    /// Time between heartbeats: a third of the TTL, so two beats may fail before a lease
    /// expires.
    pub fn heartbeat_period(&self) -> Duration {
        self.ttl / 3
    }
}

/// A default member id: the host name and the process id.
pub fn default_member_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{}", std::process::id())
}

/// A member's side of the group as the replayer sees it.
#[derive(Clone)]
pub struct Group {
    /// Settings.
    pub cfg: GroupConfig,
    /// State shared with the heartbeat.
    pub shared: Arc<Shared>,
}

impl Group {
    /// The fences of a round: every lease held now.
    pub fn fences(&self) -> Vec<Fence> {
        self.shared
            .held()
            .into_iter()
            .map(|(key, epoch)| Fence {
                group: self.cfg.group.clone(),
                key,
                owner: self.cfg.member.clone(),
                epoch,
            })
            .collect()
    }
}
