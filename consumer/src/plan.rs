//! The row-operation plan every SQL backend shares: from row changes to [`RowOp`]s, and from
//! operations to [`Batch`]es of one statement each. Dialect-free; the backends turn batches
//! into their own statements (see [`crate::backend`]).
//!
//! # Row operations
//!
//! [`plan_rows`] turns row changes into [`RowOp`]s:
//!
//! - tables with a primary key: insert and update become an **upsert** of the after image
//!   (an update whose key changed first deletes the old key); delete deletes **by key**;
//! - tables without a primary key: insert is a plain **insert**; delete removes **one row**
//!   equal on every column (NULL-safe); an update is that delete of the before image followed
//!   by an insert (an update without a before image is applied as an insert and a warning).
//!
//! [`batches`] groups consecutive operations of one kind into multi-row statements of at most
//! `batch_rows` rows; an upsert batch keeps only the last image of a key, which keeps the
//! statement valid for PostgreSQL's `ON CONFLICT` (a row may not be hit twice).
//!
//! # Last state per key ([`Reduce::LastState`], every SQL downstream)
//!
//! An interleaved stream (insert, update, delete, insert, ...) cut at every change of kind is
//! one statement per row or two. For a table with a primary key, the operations of one data
//! file (applied in one transaction) reduce to each key's **last** operation: first one
//! multi-row delete of the keys whose last operation is a delete, then one multi-row upsert of
//! the last images of the others, each in the order of the keys' last operations.
//!
//! Why the result is the same table: every operation of a keyed table touches exactly one key
//! (a key-changing update is a delete of the old key and an upsert of the new one), so keys
//! evolve independently; an upsert sets its key's row to the image whatever was there, and a
//! delete removes it whatever was there, so only a key's last operation decides its final row.
//! Deleting before upserting matters only for keys that are the same to the database but
//! differ in bytes (a case-insensitive collation); a key's delete and upsert in one file are
//! then a case-changing update, and the delete must come first, as it does. What it does not
//! keep: intermediate states (a downstream trigger sees fewer operations) and, for a
//! downstream table given an extra unique index by hand, the order that avoided a transient
//! violation of it (the consumer creates only primary keys). Tables without a key and the
//! stdout downstream (a change log) stay exact ([`Reduce::Exact`]).
//!
//! When no key occurs twice and nothing is deleted (an insert-only unit, the common case of a
//! bulk load), every operation is already its key's last and there is no delete to move
//! first: the plan is the operations in their order, found with one pass over the keys and
//! no reordering. When the one integer key column strictly increases from each upsert to the
//! next, no key can occur twice, and that pass compares neighbours instead of hashing keys.

use cdc_common::{RowChange, TableDef, Value};
use std::collections::HashMap;

/// One row operation.
#[derive(Clone, Debug, PartialEq)]
pub enum RowOp {
    /// Insert or replace by primary key (full after image).
    Upsert(Vec<Value>),
    /// Delete by primary key (the full before image; key columns are picked from it).
    Delete(Vec<Value>),
    /// Plain insert (table without a primary key).
    Insert(Vec<Value>),
    /// Delete one row equal on every column (table without a primary key).
    DeleteOne(Vec<Value>),
}

impl RowOp {
    fn kind(&self) -> u8 {
        match self {
            RowOp::Upsert(_) => 0,
            RowOp::Delete(_) => 1,
            RowOp::Insert(_) => 2,
            RowOp::DeleteOne(_) => 3,
        }
    }
}

/// Whether [`plan_rows`] keeps every operation or only each key's last state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Every operation, in order (stdout: a change log).
    Exact,
    /// Tables with a primary key: deletes, then upserts, of each key's last operation (see the
    /// module doc); tables without a key stay exact.
    LastState,
}

/// Turns row changes into operations (see the module doc). Returns the operations and the
/// number of updates that had no before image on a table without a key (a warning).
pub fn plan_rows(
    def: &TableDef,
    rows: impl IntoIterator<Item = RowChange>,
    reduce: Reduce,
) -> (Vec<RowOp>, u64) {
    let (ops, no_before) = plan_exact(def, rows);
    match reduce {
        Reduce::LastState => (last_states(def, ops), no_before),
        Reduce::Exact => (ops, no_before),
    }
}

/// Each key's last operation: the deletes, then the upserts, each in the order of the keys'
/// last operations. Operations of a table without a key come back unchanged.
fn last_states(def: &TableDef, ops: Vec<RowOp>) -> Vec<RowOp> {
    let pk = def.pk_indexes();
    if pk.is_empty() || ops.len() < 2 {
        return ops;
    }
    if keys_increase(&pk, &ops) {
        return ops;
    }
    let mut last: KeyMap<'_, usize> = key_map(ops.len());
    let mut repeated = false;
    let mut deletes = false;
    for (i, op) in ops.iter().enumerate() {
        match op {
            RowOp::Upsert(r) => repeated |= last.insert(key_of(&pk, r), i).is_some(),
            RowOp::Delete(r) => {
                deletes = true;
                repeated |= last.insert(key_of(&pk, r), i).is_some();
            }
            // keyless operations never occur on a keyed table; keep such a plan exact
            RowOp::Insert(_) | RowOp::DeleteOne(_) => return ops,
        }
    }
    if !repeated && !deletes {
        // Every key occurs once, so every operation is its key's last, and there is no delete
        // to move first: the plan is the operations as they are (an insert-only unit).
        return ops;
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    let mut slots: Vec<Option<RowOp>> = ops.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(keep.len());
    for want_delete in [true, false] {
        for &i in &keep {
            if matches!(slots[i], Some(RowOp::Delete(_))) == want_delete {
                if let Some(op) = slots[i].take() {
                    out.push(op);
                }
            }
        }
    }
    out
}

/// True when `ops` are upserts whose one integer key column strictly increases from each
/// to the next: then no key repeats and nothing is deleted, so the plan is `ops` as they are,
/// found without hashing a key (a bulk load of ascending keys). Any other plan answers false.
fn keys_increase(pk: &[usize], ops: &[RowOp]) -> bool {
    let [col] = pk else { return false };
    let mut prev: Option<&Value> = None;
    for op in ops {
        let RowOp::Upsert(r) = op else { return false };
        let Some(v) = r.get(*col) else { return false };
        let increases = match (prev, v) {
            (None, Value::Int(_) | Value::UInt(_)) => true,
            (Some(Value::Int(a)), Value::Int(b)) => a < b,
            (Some(Value::UInt(a)), Value::UInt(b)) => a < b,
            _ => false,
        };
        if !increases {
            return false;
        }
        prev = Some(v);
    }
    true
}

/// Every row change as its operations, in order.
fn plan_exact(def: &TableDef, rows: impl IntoIterator<Item = RowChange>) -> (Vec<RowOp>, u64) {
    let pk = def.pk_indexes();
    let mut ops = Vec::new();
    let mut no_before = 0;
    for r in rows {
        match (pk.is_empty(), r) {
            (false, RowChange::Insert { after }) => ops.push(RowOp::Upsert(after)),
            (false, RowChange::Update { before, after }) => {
                if let Some(b) = before {
                    if pk.iter().any(|i| b.get(*i) != after.get(*i)) {
                        ops.push(RowOp::Delete(b));
                    }
                }
                ops.push(RowOp::Upsert(after));
            }
            (false, RowChange::Delete { before }) => ops.push(RowOp::Delete(before)),
            (true, RowChange::Insert { after }) => ops.push(RowOp::Insert(after)),
            (true, RowChange::Update { before, after }) => {
                match before {
                    Some(b) => ops.push(RowOp::DeleteOne(b)),
                    None => no_before += 1,
                }
                ops.push(RowOp::Insert(after));
            }
            (true, RowChange::Delete { before }) => ops.push(RowOp::DeleteOne(before)),
        }
    }
    (ops, no_before)
}

/// A run of operations of one kind, applied by one statement.
#[derive(Debug, PartialEq)]
pub enum Batch<'a> {
    /// Multi-row upsert (keys distinct).
    Upsert(Vec<&'a [Value]>),
    /// Multi-row delete by key.
    Delete(Vec<&'a [Value]>),
    /// Multi-row insert.
    Insert(Vec<&'a [Value]>),
    /// Single-row delete by full match.
    DeleteOne(&'a [Value]),
}

impl Batch<'_> {
    /// The statement kind, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Batch::Upsert(_) => "upsert",
            Batch::Delete(_) => "delete",
            Batch::Insert(_) => "insert",
            Batch::DeleteOne(_) => "delete (no primary key)",
        }
    }
}

/// The key columns of a row, hashable (floats by their bits), to find repeated keys. Borrows
/// the key column indexes and the row: finding a key allocates nothing.
#[derive(Clone, Copy)]
pub struct KeyRef<'a> {
    pk: &'a [usize],
    row: &'a [Value],
}

impl<'a> KeyRef<'a> {
    fn cols(&self) -> impl Iterator<Item = Option<&'a Value>> + '_ {
        self.pk.iter().map(|i| self.row.get(*i))
    }
}

impl PartialEq for KeyRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cols().eq(other.cols())
    }
}

impl Eq for KeyRef<'_> {}

impl std::hash::Hash for KeyRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        for v in self.cols() {
            match v {
                None | Some(Value::Null) => 0u8.hash(h),
                Some(Value::Int(i)) => (1u8, i).hash(h),
                Some(Value::UInt(u)) => (2u8, u).hash(h),
                Some(Value::Float(f)) => (3u8, f.to_bits()).hash(h),
                Some(Value::Double(d)) => (4u8, d.to_bits()).hash(h),
                Some(Value::Decimal(s)) | Some(Value::String(s)) => (5u8, s).hash(h),
                Some(Value::Bytes(b)) => (6u8, b).hash(h),
            }
        }
    }
}

/// The key of a row.
pub fn key_of<'a>(pk: &'a [usize], row: &'a [Value]) -> KeyRef<'a> {
    KeyRef { pk, row }
}

/// A map from keys (the per-file key maps: fast hashing, keys are the rows' own).
pub type KeyMap<'a, V> = HashMap<KeyRef<'a>, V, foldhash::fast::RandomState>;

fn key_map<'a, V>(capacity: usize) -> KeyMap<'a, V> {
    HashMap::with_capacity_and_hasher(capacity, Default::default())
}

/// Groups operations into batches of at most `max` rows (see the module doc).
pub fn batches<'a>(def: &TableDef, ops: &'a [RowOp], max: usize) -> Vec<Batch<'a>> {
    let pk = def.pk_indexes();
    let max = max.max(1);
    let mut out = Vec::new();
    let mut i = 0;
    while i < ops.len() {
        let kind = ops[i].kind();
        let mut rows: Vec<&'a [Value]> = Vec::new();
        let mut seen: KeyMap<'_, usize> = key_map(0);
        while i < ops.len() && ops[i].kind() == kind && rows.len() < max {
            match &ops[i] {
                RowOp::DeleteOne(r) => {
                    if rows.is_empty() {
                        rows.push(r);
                        i += 1;
                    }
                    break;
                }
                RowOp::Upsert(r) | RowOp::Delete(r) => {
                    let k = key_of(&pk, r);
                    match seen.get(&k) {
                        Some(at) => rows[*at] = r,
                        None => {
                            seen.insert(k, rows.len());
                            rows.push(r);
                        }
                    }
                }
                RowOp::Insert(r) => rows.push(r),
            }
            i += 1;
        }
        out.push(match kind {
            0 => Batch::Upsert(rows),
            1 => Batch::Delete(rows),
            2 => Batch::Insert(rows),
            _ => match rows.first() {
                Some(r) => Batch::DeleteOne(r),
                None => continue,
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::{ColumnDef, ColumnType, Ts};

    fn def(pk: bool) -> TableDef {
        let mut a = ColumnDef::new("a", ColumnType::Int);
        if pk {
            a = a.pk();
        }
        TableDef {
            schema: "s".into(),
            table: "t".into(),
            table_id: 0,
            version: Ts(1),
            columns: vec![a, ColumnDef::new("b", ColumnType::Text)],
        }
    }

    fn row(a: i64, b: &str) -> Vec<Value> {
        vec![Value::Int(a), Value::String(b.into())]
    }

    #[test]
    fn key_changing_update_deletes_the_old_key_first() {
        let (ops, _) = plan_rows(
            &def(true),
            [RowChange::Update {
                before: Some(row(1, "x")),
                after: row(2, "x"),
            }],
            Reduce::Exact,
        );
        assert_eq!(
            ops,
            vec![RowOp::Delete(row(1, "x")), RowOp::Upsert(row(2, "x"))]
        );
    }

    #[test]
    fn upsert_batches_keep_the_last_image_of_a_key_and_respect_order() {
        let d = def(true);
        let ops = vec![
            RowOp::Upsert(row(1, "a")),
            RowOp::Upsert(row(2, "b")),
            RowOp::Upsert(row(1, "c")),
            RowOp::Delete(row(2, "b")),
            RowOp::Upsert(row(2, "d")),
        ];
        let b = batches(&d, &ops, 10);
        assert_eq!(
            b,
            vec![
                Batch::Upsert(vec![&row(1, "c")[..], &row(2, "b")[..]]),
                Batch::Delete(vec![&row(2, "b")[..]]),
                Batch::Upsert(vec![&row(2, "d")[..]]),
            ]
        );
        assert_eq!(batches(&d, &ops[..3], 1).len(), 3);
    }

    /// Applies operations to a map keyed like the database (the reference semantics).
    fn apply_ops(table: &mut std::collections::BTreeMap<i64, String>, ops: &[RowOp]) {
        for op in ops {
            match op {
                RowOp::Upsert(r) => {
                    let (Value::Int(k), Value::String(v)) = (&r[0], &r[1]) else {
                        panic!("{r:?}")
                    };
                    table.insert(*k, v.to_string());
                }
                RowOp::Delete(r) => {
                    let Value::Int(k) = &r[0] else {
                        panic!("{r:?}")
                    };
                    table.remove(k);
                }
                other => panic!("keyed table got {other:?}"),
            }
        }
    }

    #[test]
    fn last_state_is_one_delete_then_one_upsert_and_the_same_table() {
        let d = def(true);
        let ins = |a, b: &str| RowChange::Insert { after: row(a, b) };
        let upd = |a0, b0: &str, a, b: &str| RowChange::Update {
            before: Some(row(a0, b0)),
            after: row(a, b),
        };
        let del = |a, b: &str| RowChange::Delete { before: row(a, b) };
        let stream = vec![
            ins(1, "a"),
            upd(1, "a", 1, "b"),
            ins(2, "x"),
            del(1, "b"),
            ins(3, "y"),
            upd(2, "x", 4, "x"), // key change
            del(3, "y"),
            ins(1, "again"),
            upd(5, "old", 5, "new"), // a row from before the file
            del(6, "gone"),          // a row from before the file
        ];
        let (exact, _) = plan_rows(&d, stream.clone(), Reduce::Exact);
        let (reduced, _) = plan_rows(&d, stream, Reduce::LastState);
        let kinds: Vec<u8> = reduced.iter().map(RowOp::kind).collect();
        assert_eq!(kinds, vec![1, 1, 1, 0, 0, 0], "{reduced:?}");
        assert_eq!(batches(&d, &reduced, 100).len(), 2);
        assert!(batches(&d, &exact, 100).len() >= 8);
        let before: std::collections::BTreeMap<i64, String> = [
            (5, "old".to_string()),
            (6, "gone".to_string()),
            (7, "kept".to_string()),
        ]
        .into();
        let (mut a, mut b) = (before.clone(), before);
        apply_ops(&mut a, &exact);
        apply_ops(&mut b, &reduced);
        assert_eq!(a, b);
        assert_eq!(
            b.into_iter().collect::<Vec<_>>(),
            vec![
                (1, "again".to_string()),
                (4, "x".to_string()),
                (5, "new".to_string()),
                (7, "kept".to_string())
            ]
        );
    }

    #[test]
    fn distinct_keys_without_deletes_keep_their_order_and_a_repeat_or_a_delete_reduces() {
        let d = def(true);
        let ins = |k: i64, v: &str| RowChange::Insert { after: row(k, v) };
        // an insert-only unit: the plan is its upserts, in order
        let (ops, _) = plan_rows(
            &d,
            [ins(3, "a"), ins(1, "b"), ins(2, "c")],
            Reduce::LastState,
        );
        assert_eq!(
            ops,
            vec![
                RowOp::Upsert(row(3, "a")),
                RowOp::Upsert(row(1, "b")),
                RowOp::Upsert(row(2, "c"))
            ]
        );
        // a repeated key: only its last image, at its last place
        let (ops, _) = plan_rows(
            &d,
            [ins(3, "a"), ins(1, "b"), ins(3, "c")],
            Reduce::LastState,
        );
        assert_eq!(
            ops,
            vec![RowOp::Upsert(row(1, "b")), RowOp::Upsert(row(3, "c"))]
        );
        // distinct keys with a delete among them: the delete goes first
        let del = RowChange::Delete {
            before: row(9, "z"),
        };
        let (ops, _) = plan_rows(&d, [ins(3, "a"), del, ins(1, "b")], Reduce::LastState);
        assert_eq!(
            ops,
            vec![
                RowOp::Delete(row(9, "z")),
                RowOp::Upsert(row(3, "a")),
                RowOp::Upsert(row(1, "b"))
            ]
        );
    }

    #[test]
    fn ascending_integer_keys_are_kept_as_they_are_and_anything_else_is_reduced() {
        let d = def(true);
        let ins = |k: i64, v: &str| RowChange::Insert { after: row(k, v) };
        let (ops, _) = plan_rows(
            &d,
            [ins(1, "a"), ins(2, "b"), ins(7, "c")],
            Reduce::LastState,
        );
        assert_eq!(ops.len(), 3);
        // equal neighbours are a repeat, not an increase
        let (ops, _) = plan_rows(
            &d,
            [ins(1, "a"), ins(2, "b"), ins(2, "c")],
            Reduce::LastState,
        );
        assert_eq!(
            ops,
            vec![RowOp::Upsert(row(1, "a")), RowOp::Upsert(row(2, "c"))]
        );
        // a repeat after a descent
        let (ops, _) = plan_rows(
            &d,
            [ins(5, "a"), ins(2, "b"), ins(5, "c")],
            Reduce::LastState,
        );
        assert_eq!(
            ops,
            vec![RowOp::Upsert(row(2, "b")), RowOp::Upsert(row(5, "c"))]
        );
        // ascending keys with a delete last: the delete still goes first
        let (ops, _) = plan_rows(
            &d,
            [
                ins(1, "a"),
                ins(2, "b"),
                RowChange::Delete {
                    before: row(3, "z"),
                },
            ],
            Reduce::LastState,
        );
        assert_eq!(ops[0], RowOp::Delete(row(3, "z")));
    }

    #[test]
    fn last_state_matches_exact_on_random_streams() {
        let d = def(true);
        // a small deterministic generator: keys 0..8, any mix of operations
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..500 {
            let mut live: std::collections::BTreeMap<i64, String> =
                (0..4).map(|k| (k, format!("v{k}"))).collect();
            let start = live.clone();
            let mut stream = Vec::new();
            for step in 0..(1 + next(30)) {
                let k = next(8) as i64;
                let v = format!("s{step}");
                match (live.get(&k).cloned(), next(3)) {
                    (None, _) => {
                        stream.push(RowChange::Insert { after: row(k, &v) });
                        live.insert(k, v);
                    }
                    (Some(old), 0) => {
                        stream.push(RowChange::Delete {
                            before: row(k, &old),
                        });
                        live.remove(&k);
                    }
                    (Some(old), 1) => {
                        let k2 = next(8) as i64;
                        if k2 != k && live.contains_key(&k2) {
                            continue;
                        }
                        stream.push(RowChange::Update {
                            before: Some(row(k, &old)),
                            after: row(k2, &v),
                        });
                        live.remove(&k);
                        live.insert(k2, v);
                    }
                    (Some(old), _) => {
                        stream.push(RowChange::Update {
                            before: Some(row(k, &old)),
                            after: row(k, &v),
                        });
                        live.insert(k, v);
                    }
                }
            }
            let (reduced, _) = plan_rows(&d, stream, Reduce::LastState);
            let mut got = start;
            apply_ops(&mut got, &reduced);
            assert_eq!(got, live);
        }
    }

    #[test]
    fn tables_without_key_delete_one_row_and_insert() {
        let d = def(false);
        let (ops, missing) = plan_rows(
            &d,
            [
                RowChange::Update {
                    before: Some(row(1, "x")),
                    after: row(1, "y"),
                },
                RowChange::Update {
                    before: None,
                    after: row(3, "z"),
                },
            ],
            Reduce::LastState,
        );
        assert_eq!(missing, 1);
        assert_eq!(
            ops,
            vec![
                RowOp::DeleteOne(row(1, "x")),
                RowOp::Insert(row(1, "y")),
                RowOp::Insert(row(3, "z"))
            ]
        );
        let b = batches(&d, &ops, 10);
        assert_eq!(b.len(), 2);
    }
}
