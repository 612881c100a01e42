//! pgoutput tuples -> the sink's row images.
//!
//! A tuple has one datum per live column, in table order (the Relation's order). Each text
//! datum becomes a [`Value`] through `types.rs`; NULL stays NULL; an unchanged-TOAST marker
//! must have been resolved (`toast.rs`) before, and is an error here, so it can never turn
//! into NULL.
//!
//! | change | row image |
//! |--------|-----------|
//! | Insert | `after` = new tuple |
//! | Update | `after` = new tuple; `before` = the old row (FULL) or `None` (DEFAULT: only the key, which the new tuple carries unless it changed) |
//! | Update with a changed key (DEFAULT) | Delete of the old key + Insert of the new row, so the downstream finds the old row |
//! | Delete | `before` = the old row (FULL) or the key with NULL elsewhere (DEFAULT) |

use crate::error::{CaptureError, Result};
use crate::pgoutput::{Datum, OldTuple};
use crate::relations::Rel;
use crate::types;
use cdc_common::{RowChange, Value};

/// One tuple's values.
pub fn values(rel: &Rel, datums: &[Datum]) -> Result<Vec<Value>> {
    if datums.len() != rel.types.len() {
        return Err(CaptureError::Protocol(format!(
            "{}: a tuple of {} columns for a table of {}",
            rel.def.name(),
            datums.len(),
            rel.types.len()
        )));
    }
    datums
        .iter()
        .zip(&rel.types)
        .map(|(d, ty)| match d {
            Datum::Null => Ok(Value::Null),
            Datum::Text(t) => types::to_value(*ty, t),
            Datum::UnchangedToast => Err(CaptureError::Protocol(format!(
                "{}: an unchanged TOAST value reached the row image unresolved",
                rel.def.name()
            ))),
            Datum::Binary(_) => Err(CaptureError::Protocol(
                "binary tuple data (capture asks for text)".into(),
            )),
        })
        .collect()
}

/// An insert.
pub fn insert(rel: &Rel, new: &[Datum]) -> Result<Vec<RowChange>> {
    Ok(vec![RowChange::Insert {
        after: values(rel, new)?,
    }])
}

/// An update (the new tuple's TOAST markers resolved).
pub fn update(rel: &Rel, old: Option<&OldTuple>, new: &[Datum]) -> Result<Vec<RowChange>> {
    let after = values(rel, new)?;
    match old {
        Some(OldTuple::Full(o)) => Ok(vec![RowChange::Update {
            before: Some(values(rel, o)?),
            after,
        }]),
        // The key changed: the old row is known by its key only.
        Some(OldTuple::Key(o)) => Ok(vec![
            RowChange::Delete {
                before: values(rel, o)?,
            },
            RowChange::Insert { after },
        ]),
        None => Ok(vec![RowChange::Update {
            before: None,
            after,
        }]),
    }
}

/// A delete.
pub fn delete(rel: &Rel, old: &OldTuple) -> Result<Vec<RowChange>> {
    Ok(vec![RowChange::Delete {
        before: values(rel, old.values())?,
    }])
}
