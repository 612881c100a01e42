//! Balancing: which leases this member should claim and which it should give up, as a pure
//! function of what every member reads from the lease store, so each member computes its own
//! share without talking to the others.
//!
//! Rules:
//! - The work is every discovered table and every schema with database-level schema files
//!   (the *universe*); each item weighs its pending work (indexed files not yet applied).
//! - With `n` items and `m` live members each member's target is `n / m`, and the `n % m`
//!   members with the least pending work (ties by id) get one more: a member busy with a
//!   backlog takes fewer new tables.
//! - A member over its target releases the excess, heaviest item first (the backlog moves to
//!   a member with room); a member under its target claims free items (never claimed,
//!   released, expired, or held by a member that is no longer live), heaviest first.
//! - Leases are sticky: a member at its target neither claims nor releases, so a steady
//!   group moves nothing.

use super::store::{LeaseRow, MemberRow};
use super::LeaseKey;
use std::collections::BTreeMap;

/// What this member should do this heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Free items to claim, in order.
    pub claim: Vec<LeaseKey>,
    /// Held items to release.
    pub release: Vec<LeaseKey>,
    /// This member's target count.
    pub target: usize,
}

/// The plan of member `me` (see the module doc). `universe` maps each item to its weight;
/// `members` and `leases` are the store's rows (`me` counts as live even when its own row is
/// not yet written).
pub fn plan(
    me: &str,
    universe: &BTreeMap<LeaseKey, u64>,
    members: &[MemberRow],
    leases: &[LeaseRow],
) -> Plan {
    let mut live: Vec<&MemberRow> = members.iter().filter(|m| m.expires_in_ms > 0).collect();
    let me_row = MemberRow {
        member: me.to_string(),
        expires_in_ms: 1,
        pending: 0,
        tables: 0,
    };
    if !live.iter().any(|m| m.member == me) {
        live.push(&me_row);
    }
    live.sort_by(|a, b| (a.pending, &a.member).cmp(&(b.pending, &b.member)));
    let n = universe.len();
    let m = live.len().max(1);
    let rank = live.iter().position(|x| x.member == me).unwrap_or(0);
    let target = n / m + usize::from(rank < n % m);
    let live_ids: Vec<&str> = live.iter().map(|x| x.member.as_str()).collect();
    let held_by_live = |l: &LeaseRow| l.is_live() && live_ids.contains(&l.owner.as_str());
    let weight = |k: &LeaseKey| universe.get(k).copied().unwrap_or(0);
    let by_weight = |mut v: Vec<LeaseKey>| {
        v.sort_by(|a, b| weight(b).cmp(&weight(a)).then_with(|| a.cmp(b)));
        v
    };
    let mine: Vec<LeaseKey> = leases
        .iter()
        .filter(|l| l.owner == me && l.is_live() && universe.contains_key(&l.key))
        .map(|l| l.key.clone())
        .collect();
    let taken: Vec<&LeaseKey> = leases
        .iter()
        .filter(|l| held_by_live(l))
        .map(|l| &l.key)
        .collect();
    let mut plan = Plan {
        target,
        ..Plan::default()
    };
    if mine.len() > target {
        plan.release = by_weight(mine.clone())
            .into_iter()
            .take(mine.len() - target)
            .collect();
    } else {
        let free: Vec<LeaseKey> = universe
            .keys()
            .filter(|k| !taken.contains(k))
            .cloned()
            .collect();
        plan.claim = by_weight(free)
            .into_iter()
            .take(target - mine.len())
            .collect();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::TableName;

    fn t(n: usize) -> LeaseKey {
        LeaseKey::Table(TableName::new("s", format!("t{n:02}")))
    }

    fn member(id: &str, pending: i64, live: bool) -> MemberRow {
        MemberRow {
            member: id.into(),
            expires_in_ms: if live { 5000 } else { -1 },
            pending,
            tables: 0,
        }
    }

    fn lease(k: LeaseKey, owner: &str, live: bool) -> LeaseRow {
        LeaseRow {
            key: k,
            owner: owner.into(),
            epoch: 1,
            expires_in_ms: if live { 5000 } else { -1 },
        }
    }

    fn universe(n: usize) -> BTreeMap<LeaseKey, u64> {
        (0..n).map(|i| (t(i), i as u64)).collect()
    }

    #[test]
    fn a_lone_member_claims_everything_heaviest_first() {
        let p = plan("a", &universe(3), &[], &[]);
        assert_eq!(p.claim, vec![t(2), t(1), t(0)]);
        assert_eq!(p.target, 3);
    }

    #[test]
    fn a_joining_member_makes_the_holder_release_its_excess() {
        let u = universe(4);
        let members = [member("a", 0, true), member("b", 0, true)];
        let leases: Vec<LeaseRow> = (0..4).map(|i| lease(t(i), "a", true)).collect();
        let pa = plan("a", &u, &members, &leases);
        assert_eq!(pa.target, 2);
        assert_eq!(pa.release, vec![t(3), t(2)]);
        // b waits until a released: nothing is free yet.
        let pb = plan("b", &u, &members, &leases);
        assert!(pb.claim.is_empty());
        assert_eq!(pb.target, 2);
    }

    #[test]
    fn a_dead_members_tables_are_free_to_the_survivors() {
        let u = universe(4);
        let members = [member("a", 0, true), member("b", 0, false)];
        let leases = vec![
            lease(t(0), "a", true),
            lease(t(1), "a", true),
            lease(t(2), "b", true), // not yet expired, but its member is gone
            lease(t(3), "b", false),
        ];
        let p = plan("a", &u, &members, &leases);
        assert_eq!(p.target, 4);
        assert_eq!(p.claim, vec![t(3), t(2)]);
    }

    #[test]
    fn the_extra_item_goes_to_the_member_with_least_pending_work() {
        let u = universe(3);
        let members = [member("a", 100, true), member("b", 0, true)];
        assert_eq!(plan("a", &u, &members, &[]).target, 1);
        assert_eq!(plan("b", &u, &members, &[]).target, 2);
    }

    #[test]
    fn targets_always_sum_to_the_universe_and_a_steady_group_moves_nothing() {
        for n in 0..10 {
            for m in 1..5 {
                let u = universe(n);
                let ids: Vec<String> = (0..m).map(|i| format!("m{i}")).collect();
                let members: Vec<MemberRow> = ids.iter().map(|i| member(i, 0, true)).collect();
                let sum: usize = ids.iter().map(|i| plan(i, &u, &members, &[]).target).sum();
                assert_eq!(sum, n, "n={n} m={m}");
                // Assign by targets, then nobody wants to change anything.
                let mut leases = Vec::new();
                let mut next = 0;
                for i in &ids {
                    for _ in 0..plan(i, &u, &members, &[]).target {
                        leases.push(lease(t(next), i, true));
                        next += 1;
                    }
                }
                for i in &ids {
                    let p = plan(i, &u, &members, &leases);
                    assert!(p.claim.is_empty() && p.release.is_empty(), "n={n} m={m}");
                }
            }
        }
    }
}
