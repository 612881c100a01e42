//! Synchronous checks of a DML event before the sink accepts it.
//!
//! `add_dml_event` runs these on the caller's thread; an event that fails is **refused**: the
//! call returns a typed error naming the dispatcher, table, row and column, nothing of the event
//! enters the pipeline (no spool entry, no pending ts, no callback), and the sink keeps working.
//! Errors found later inside the pipeline (a codec that still cannot encode, storage, spool)
//! stop the sink as before (sticky).
//!
//! Rows against the table definition (`cdc_common::value` has the type -> variant table):
//!
//! | check | refused when |
//! |-------|--------------|
//! | arity | an image does not have one value per column |
//! | variant | a value is not the variant its column's type carries (`Int` for `INT`, ...) |
//! | NOT NULL | `Null` in a NOT NULL or primary-key column |
//! | range | an integer outside its SQL type (`TINYINT` -128..=127, `INT UNSIGNED` 0..=2^32-1, `YEAR` 0 or 1901..=2155, `BIT(p)` below 2^p) |
//! | ENUM / SET | a value (or set member) that is not one of the column's elements (`""` allowed) |
//! | DECIMAL | text that is not `[+-]digits[.digits]` |
//! | identity | an update without its before image in a table without a primary key |
//!
//! The primary key of an update's or delete's identifying image is non-NULL by the NOT NULL
//! check. Every check reads the event in place: nothing is allocated unless an error is returned.
//!
//! Commit-ts order per dispatcher is checked by [`crate::router::DispatcherState`]: a DML below
//! the dispatcher's last DML or below the last DDL it passed, and a DDL below the dispatcher's
//! last DML or last DDL, are refused with [`SinkError::OutOfOrder`] (equal ts are accepted).

use crate::error::{Result, SinkError};
use cdc_common::{ColumnDef, ColumnType, DmlEvent, RowChange, TableDef, Value};

/// Checks every row of `event` against its table definition.
pub(crate) fn check_rows(dispatcher: &str, event: &DmlEvent) -> Result<()> {
    let table = &event.table;
    for (i, row) in event.rows.iter().enumerate() {
        let bad = |column: Option<&ColumnDef>, reason: String| SinkError::InvalidRow {
            dispatcher: dispatcher.to_string(),
            table: format!("{}.{}", table.schema, table.table),
            row: i,
            column: column.map(|c| c.name.clone()),
            reason,
        };
        match row {
            RowChange::Insert { after } => {
                check_image(table, after, "after").map_err(|(c, r)| bad(c, r))?
            }
            RowChange::Update { before, after } => {
                check_image(table, after, "after").map_err(|(c, r)| bad(c, r))?;
                match before {
                    Some(b) => check_image(table, b, "before").map_err(|(c, r)| bad(c, r))?,
                    None if !table.columns.iter().any(|c| c.primary_key) => {
                        return Err(bad(
                            None,
                            "an update without its before image needs a primary key to \
                             identify the row"
                                .into(),
                        ))
                    }
                    None => {}
                }
            }
            RowChange::Delete { before } => {
                check_image(table, before, "before").map_err(|(c, r)| bad(c, r))?
            }
        }
    }
    Ok(())
}

type ImageError<'a> = (Option<&'a ColumnDef>, String);

fn check_image<'a>(
    table: &'a TableDef,
    image: &[Value],
    which: &str,
) -> Result<(), ImageError<'a>> {
    if image.len() != table.columns.len() {
        return Err((
            None,
            format!(
                "the {which} image has {} values but the table has {} columns",
                image.len(),
                table.columns.len()
            ),
        ));
    }
    for (col, v) in table.columns.iter().zip(image) {
        if let Some(reason) = check_value(col, v) {
            return Err((Some(col), format!("{which} image: {reason}")));
        }
    }
    Ok(())
}

/// Why `v` cannot be a value of `col`, or `None`.
fn check_value(col: &ColumnDef, v: &Value) -> Option<String> {
    use cdc_common::table::ValueKind as K;
    let kind = col.value_kind();
    let ok = match (kind, v) {
        (_, Value::Null) => {
            return (!col.nullable || col.primary_key).then(|| {
                format!(
                    "NULL in a {} column",
                    if col.primary_key {
                        "primary-key"
                    } else {
                        "NOT NULL"
                    }
                )
            })
        }
        (K::Int, Value::Int(x)) => return check_int(col, *x),
        (K::UInt, Value::UInt(x)) => return check_uint(col, *x),
        (K::Float, Value::Float(_))
        | (K::Double, Value::Double(_))
        | (K::Bytes, Value::Bytes(_)) => true,
        (K::Decimal, Value::Decimal(s)) => {
            return (!is_decimal(s)).then(|| "DECIMAL text is not a number".to_string())
        }
        (K::String, Value::String(s)) => return check_text(col, s),
        _ => false,
    };
    (!ok).then(|| {
        format!(
            "a {} column takes {kind:?} values, got {}",
            col.sql_type(),
            v.variant_name()
        )
    })
}

fn out_of_range(col: &ColumnDef, x: impl std::fmt::Display) -> Option<String> {
    Some(format!("{x} is out of range for {}", col.sql_type()))
}

fn check_int(col: &ColumnDef, x: i64) -> Option<String> {
    let (lo, hi) = match col.ty {
        ColumnType::TinyInt => (i8::MIN as i64, i8::MAX as i64),
        ColumnType::SmallInt => (i16::MIN as i64, i16::MAX as i64),
        ColumnType::MediumInt => (-(1 << 23), (1 << 23) - 1),
        ColumnType::Int => (i32::MIN as i64, i32::MAX as i64),
        ColumnType::Year if x == 0 => return None,
        ColumnType::Year => (1901, 2155),
        _ => return None,
    };
    if (lo..=hi).contains(&x) {
        None
    } else {
        out_of_range(col, x)
    }
}

fn check_uint(col: &ColumnDef, x: u64) -> Option<String> {
    let hi: u64 = match col.ty {
        ColumnType::TinyInt => u8::MAX as u64,
        ColumnType::SmallInt => u16::MAX as u64,
        ColumnType::MediumInt => (1 << 24) - 1,
        ColumnType::Int => u32::MAX as u64,
        ColumnType::Bit => match col.precision {
            Some(p @ 1..=63) => (1u64 << p) - 1,
            _ => u64::MAX,
        },
        _ => u64::MAX,
    };
    if x <= hi {
        None
    } else {
        out_of_range(col, x)
    }
}

fn check_text(col: &ColumnDef, s: &str) -> Option<String> {
    let member = |m: &str| m.is_empty() || col.elems.iter().any(|e| e == m);
    let ok = match col.ty {
        ColumnType::Enum => member(s),
        ColumnType::Set => s.is_empty() || s.split(',').all(|m| !m.is_empty() && member(m)),
        _ => true,
    };
    (!ok).then(|| {
        format!(
            "`{}` is not a value of {}",
            s.chars().take(64).collect::<String>(),
            col.sql_type()
        )
    })
}

/// `[+-]digits[.digits]` with at least one digit.
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let b = match b.first() {
        Some(b'+' | b'-') => &b[1..],
        _ => b,
    };
    let (int, frac) = match b.iter().position(|c| *c == b'.') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[..0]),
    };
    let digits = |p: &[u8]| p.iter().all(u8::is_ascii_digit);
    !(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::Ts;
    use std::sync::Arc;

    fn table() -> Arc<TableDef> {
        Arc::new(TableDef {
            schema: "s".into(),
            table: "t".into(),
            table_id: 1,
            version: Ts(1),
            columns: vec![
                ColumnDef::new("id", ColumnType::Int).pk(),
                ColumnDef::new("tiny", ColumnType::TinyInt).unsigned(),
                ColumnDef::new("d", ColumnType::Decimal),
                ColumnDef::new("e", ColumnType::Enum).with_elems(["a", "b"]),
                ColumnDef::new("s", ColumnType::Set).with_elems(["x", "y"]),
                ColumnDef::new("name", ColumnType::VarChar).not_null(),
                ColumnDef::new("bit", ColumnType::Bit).with_precision(Some(3), None),
            ],
        })
    }

    fn row() -> Vec<Value> {
        vec![
            Value::Int(1),
            Value::UInt(255),
            Value::Decimal("-12.50".into()),
            Value::String("b".into()),
            Value::String("x,y".into()),
            Value::String("n".into()),
            Value::UInt(7),
        ]
    }

    fn check(rows: Vec<RowChange>) -> Result<()> {
        check_rows(
            "d",
            &DmlEvent {
                table: table(),
                partition_id: None,
                commit_ts: Ts(2),
                rows,
            },
        )
    }

    fn refused(change: impl FnOnce(&mut Vec<Value>)) -> (usize, Option<String>, String) {
        let mut bad = row();
        change(&mut bad);
        match check(vec![
            RowChange::Insert { after: row() },
            RowChange::Insert { after: bad },
        ]) {
            Err(SinkError::InvalidRow {
                dispatcher,
                table,
                row,
                column,
                reason,
            }) => {
                assert_eq!((dispatcher.as_str(), table.as_str()), ("d", "s.t"));
                (row, column, reason)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_matching_row_passes() {
        check(vec![
            RowChange::Insert { after: row() },
            RowChange::Update {
                before: None,
                after: row(),
            },
            RowChange::Delete { before: row() },
        ])
        .unwrap();
        let mut empty = row();
        empty[3] = Value::String(String::new().into());
        empty[4] = Value::String(String::new().into());
        empty[1] = Value::Null;
        check(vec![RowChange::Insert { after: empty }]).unwrap();
    }

    #[test]
    fn each_mismatch_names_row_and_column() {
        let col = |r: (usize, Option<String>, String)| (r.0, r.1);
        assert_eq!(col(refused(|r| r.truncate(3))), (1, None));
        assert_eq!(col(refused(|r| r[0] = Value::Null)), (1, Some("id".into())));
        assert_eq!(
            col(refused(|r| r[5] = Value::Null)),
            (1, Some("name".into()))
        );
        assert_eq!(
            col(refused(|r| r[0] = Value::String("1".into()))),
            (1, Some("id".into()))
        );
        assert_eq!(
            col(refused(|r| r[1] = Value::UInt(256))),
            (1, Some("tiny".into()))
        );
        assert_eq!(
            col(refused(|r| r[6] = Value::UInt(8))),
            (1, Some("bit".into()))
        );
        for d in ["", ".", "1e5", "1.2.3", "--1", "a"] {
            assert_eq!(
                col(refused(|r| r[2] = Value::Decimal(d.into()))),
                (1, Some("d".into())),
                "{d}"
            );
        }
        assert_eq!(
            col(refused(|r| r[3] = Value::String("c".into()))),
            (1, Some("e".into()))
        );
        assert_eq!(
            col(refused(|r| r[4] = Value::String("x,,y".into()))),
            (1, Some("s".into()))
        );
        let (_, _, reason) = refused(|r| r[0] = Value::Int(1 << 40));
        assert!(reason.contains("out of range for int"), "{reason}");
    }

    #[test]
    fn an_update_without_before_image_needs_a_key() {
        let mut t = (*table()).clone();
        for c in &mut t.columns {
            c.primary_key = false;
        }
        let r = check_rows(
            "d",
            &DmlEvent {
                table: Arc::new(t),
                partition_id: None,
                commit_ts: Ts(2),
                rows: vec![RowChange::Update {
                    before: None,
                    after: row(),
                }],
            },
        );
        assert!(
            matches!(
                r,
                Err(SinkError::InvalidRow {
                    row: 0,
                    column: None,
                    ..
                })
            ),
            "{r:?}"
        );
    }

    #[test]
    fn decimals() {
        for ok in ["0", "-1", "+1.5", "12.", ".5", "00012.3400"] {
            assert!(is_decimal(ok), "{ok}");
        }
    }
}
