//! What `/group` (and the `group` section of `/health`) shows: the group's name, this member,
//! every member with its tables, and every lease with its age (time since its last renewal
//! on the downstream's clock). Built by the heartbeat from the rows it just read.

use super::store::{LeaseRow, MemberRow};
use std::collections::BTreeMap;

/// The group as one member last saw it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct GroupView {
    /// The group's name (`--group`).
    pub group: String,
    /// This member's id.
    pub member: String,
    /// The lease TTL in milliseconds.
    pub lease_ttl_ms: u64,
    /// The leases this member holds now (tables as `schema.table`, schemas as `schema.*`).
    pub owned: Vec<String>,
    /// Every member row, live or not.
    pub members: Vec<MemberView>,
    /// Every lease row.
    pub leases: Vec<LeaseView>,
    /// The last heartbeat's error, if it failed.
    pub heartbeat_error: Option<String>,
}

/// One member.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct MemberView {
    /// Its id.
    pub member: String,
    /// Its row has not expired.
    pub live: bool,
    /// Its pending work (indexed files not yet applied in its tables).
    pub pending: i64,
    /// The leases it holds.
    pub tables: Vec<String>,
}

/// One lease.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct LeaseView {
    /// The table (`schema.table`) or schema (`schema.*`).
    pub table: String,
    /// Its owner (`""`: released).
    pub owner: String,
    /// Its epoch.
    pub epoch: i64,
    /// Milliseconds since its last renewal.
    pub age_ms: i64,
    /// Not expired and held.
    pub live: bool,
}

/// The short name of a lease key in the view.
pub fn short(key: &super::LeaseKey) -> String {
    match key {
        super::LeaseKey::Table(t) => t.to_string(),
        super::LeaseKey::Schema(s) => format!("{s}.*"),
    }
}

/// Builds the view from the rows a heartbeat read.
pub fn view(
    group: &str,
    me: &str,
    ttl_ms: i64,
    members: &[MemberRow],
    leases: &[LeaseRow],
) -> GroupView {
    let mut by_owner: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for l in leases.iter().filter(|l| l.is_live()) {
        by_owner.entry(&l.owner).or_default().push(short(&l.key));
    }
    GroupView {
        group: group.to_string(),
        member: me.to_string(),
        lease_ttl_ms: ttl_ms.max(0) as u64,
        owned: by_owner.get(me).cloned().unwrap_or_default(),
        members: members
            .iter()
            .map(|m| MemberView {
                member: m.member.clone(),
                live: m.expires_in_ms > 0,
                pending: m.pending,
                tables: by_owner.get(m.member.as_str()).cloned().unwrap_or_default(),
            })
            .collect(),
        leases: leases
            .iter()
            .map(|l| LeaseView {
                table: short(&l.key),
                owner: l.owner.clone(),
                epoch: l.epoch,
                age_ms: (ttl_ms - l.expires_in_ms).max(0),
                live: l.is_live(),
            })
            .collect(),
        heartbeat_error: None,
    }
}
