//! How values reach PostgreSQL: every value is sent as text (binary columns as `bytea`) into a
//! statement that casts each parameter to its column type (`$1::integer`); floats as `float`
//! writes them (PostgreSQL's spellings of NaN and the infinities), the same text as COPY's.

use super::dialect::Postgres;
use super::float::float_text;
use crate::backend::dialect::Dialect;
use bytes::BytesMut;
use cdc_common::{TableDef, Value};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// One parameter: text, or bytes for `bytea` columns.
#[derive(Debug)]
pub(super) enum Param {
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(t) => t.to_sql(ty, out),
            Param::Bytes(b) => b.to_sql(ty, out),
        }
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT || *ty == Type::BYTEA
    }
    to_sql_checked!();
}

/// Text form of a value as PostgreSQL's input functions read it.
pub(super) fn text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => float_text(&mut ryu::Buffer::new(), *f).to_owned(),
        Value::Double(d) => float_text(&mut ryu::Buffer::new(), *d).to_owned(),
        Value::Decimal(s) | Value::String(s) => s.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
    })
}

pub(super) fn param(def: &TableDef, col: usize, v: &Value) -> Param {
    let binary = def.columns.get(col).is_some_and(|c| c.ty.is_binary());
    if binary {
        Param::Bytes(match v {
            Value::Null => None,
            Value::Bytes(b) => Some(b.clone()),
            other => text(other).map(String::into_bytes),
        })
    } else {
        Param::Text(text(v))
    }
}

pub(super) fn param_type(def: &TableDef, col: usize) -> Type {
    if def.columns.get(col).is_some_and(|c| c.ty.is_binary()) {
        Type::BYTEA
    } else {
        Type::TEXT
    }
}

/// `$n::type` for column `col`.
pub(super) fn placeholder(def: &TableDef, col: usize, n: usize) -> String {
    match def.columns.get(col) {
        Some(c) if c.ty.is_binary() => format!("${n}"),
        Some(c) => format!("${n}::{}", Postgres.column_type(c)),
        None => format!("${n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::text;
    use cdc_common::Value;

    #[test]
    fn float_parameters_spell_what_copy_spells() {
        for (v, want) in [
            (Value::Double(f64::NAN), "NaN"),
            (Value::Double(f64::INFINITY), "Infinity"),
            (Value::Double(f64::NEG_INFINITY), "-Infinity"),
            (Value::Double(-0.0), "-0.0"),
            (Value::Double(0.1 + 0.2), "0.30000000000000004"),
            (Value::Float(f32::NEG_INFINITY), "-Infinity"),
            (Value::Float(-0.0), "-0.0"),
            (Value::Float(0.1 + 0.2), "0.3"),
        ] {
            assert_eq!(text(&v).as_deref(), Some(want), "{v:?}");
        }
    }
}
