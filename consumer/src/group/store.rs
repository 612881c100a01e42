//! The lease store: what the group protocol asks of the downstream, implemented by the
//! PostgreSQL and MySQL/MariaDB backends (`backend/*/leases.rs`) on a connection of its own,
//! so a heartbeat never waits behind a long apply transaction.
//!
//! Two tables in the downstream, created by the first member:
//!
//! ```text
//! cdc_consumer_leases   (group_name, table_key) PRIMARY KEY, owner, epoch, expiry_ms
//! cdc_consumer_members  (group_name, member)    PRIMARY KEY, expiry_ms, pending, tables
//! ```
//!
//! Every time is the **downstream's clock** in milliseconds (`expiry_ms`), so members on
//! machines with skewed clocks agree on who expired. An `owner` of `''` is a released lease.
//!
//! Invariants the implementations keep:
//! - [`LeaseStore::claim`] succeeds only on a lease that is missing, released or expired, and
//!   then sets the owner and **increments the epoch** in one statement (a row lock orders it
//!   against any apply transaction's fence check on that row).
//! - [`LeaseStore::renew`] extends only rows that still name this member; it never changes
//!   an epoch, so renewing cannot revive a lease someone else claimed.
//! - [`LeaseStore::release`] clears a lease only at the epoch this member holds.

use super::LeaseKey;
use crate::error::Result;

/// One lease row as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    /// What it covers.
    pub key: LeaseKey,
    /// The member holding it (`""` when released).
    pub owner: String,
    /// Incremented by every claim.
    pub epoch: i64,
    /// Milliseconds until it expires on the downstream's clock (negative: expired).
    pub expires_in_ms: i64,
}

impl LeaseRow {
    /// Held by a member and not expired.
    pub fn is_live(&self) -> bool {
        !self.owner.is_empty() && self.expires_in_ms > 0
    }
}

/// One member row as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    /// The member's id.
    pub member: String,
    /// Milliseconds until it expires (negative: gone).
    pub expires_in_ms: i64,
    /// The work pending in the tables it owns (indexed files not yet applied).
    pub pending: i64,
    /// How many leases it holds.
    pub tables: i64,
}

/// What the group protocol needs from the downstream.
#[async_trait::async_trait]
pub trait LeaseStore: Send {
    /// Creates the two tables when missing (safe when several members start at once).
    async fn init(&mut self) -> Result<()>;
    /// Writes this member's row with a new expiry `ttl_ms` ahead.
    async fn heartbeat(
        &mut self,
        group: &str,
        me: &str,
        ttl_ms: i64,
        pending: i64,
        tables: i64,
    ) -> Result<()>;
    /// Extends every lease this member holds by `ttl_ms`; returns them (key, epoch).
    async fn renew(&mut self, group: &str, me: &str, ttl_ms: i64) -> Result<Vec<(LeaseKey, i64)>>;
    /// Every member row of the group.
    async fn members(&mut self, group: &str) -> Result<Vec<MemberRow>>;
    /// Every lease row of the group.
    async fn leases(&mut self, group: &str) -> Result<Vec<LeaseRow>>;
    /// Takes a missing, released or expired lease: `Some(new epoch)`, or `None` when another
    /// member holds it.
    async fn claim(
        &mut self,
        group: &str,
        key: &LeaseKey,
        me: &str,
        ttl_ms: i64,
    ) -> Result<Option<i64>>;
    /// Gives a lease up (only at `epoch`, only when still ours).
    async fn release(&mut self, group: &str, key: &LeaseKey, me: &str, epoch: i64) -> Result<()>;
    /// Leaves the group: releases every lease of this member and deletes its row.
    async fn leave(&mut self, group: &str, me: &str) -> Result<()>;
}

/// The lease table's name in the downstream.
pub const LEASES_TABLE: &str = "cdc_consumer_leases";
/// The member table's name in the downstream.
pub const MEMBERS_TABLE: &str = "cdc_consumer_members";
