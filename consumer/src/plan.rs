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

/// Turns row changes into operations (see the module doc). Returns the operations and the
/// number of updates that had no before image on a table without a key (a warning).
pub fn plan_rows(def: &TableDef, rows: impl IntoIterator<Item = RowChange>) -> (Vec<RowOp>, u64) {
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

/// The key columns of a row, hashable (floats by their bits), to find repeated keys.
#[derive(PartialEq)]
pub struct KeyRef<'a>(pub Vec<Option<&'a Value>>);

impl Eq for KeyRef<'_> {}

impl std::hash::Hash for KeyRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        for v in &self.0 {
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
pub fn key_of<'a>(pk: &[usize], row: &'a [Value]) -> KeyRef<'a> {
    KeyRef(pk.iter().map(|i| row.get(*i)).collect())
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
        let mut seen: HashMap<KeyRef<'a>, usize> = HashMap::new();
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
