//! PostgreSQL types -> the column types of the schema files, and text values -> [`Value`].
//!
//! pgoutput (and COPY) send every value in its type's text output form; the capture session
//! pins the settings that shape those forms (`DateStyle=ISO`, `TimeZone=UTC`,
//! `bytea_output=hex`, `extra_float_digits=3`, `IntervalStyle=postgres`), so the conversions
//! below see one spelling per type.
//!
//! | PostgreSQL | schema file `ColumnType` | precision, scale | value |
//! |------------|--------------------------|------------------|-------|
//! | `smallint` / `integer` / `bigint` / `oid` | `SMALLINT` / `INT` / `BIGINT` / `BIGINT` | | `Int` |
//! | `numeric(p,s)` | `DECIMAL` | p, s (none for bare `numeric`) | `Decimal` (exact text) |
//! | `real` / `double precision` | `FLOAT` / `DOUBLE` | | `Float` / `Double` |
//! | `boolean` | `TINYINT` | 1 | `Int` 1 / 0 |
//! | `text`, `varchar` without length, `citext`-like and unknown types | `LONGTEXT` | | `String` |
//! | `varchar(n)` / `char(n)` / `name` | `VARCHAR` / `CHAR` / `VARCHAR` | n / n / 64 | `String` (char: trailing blanks trimmed, as `::text` does) |
//! | `bytea` | `LONGBLOB` | | `Bytes` |
//! | `date` | `DATE` | | `String` `YYYY-MM-DD` |
//! | `timestamp(p)` | `DATETIME` | scale p (6 when unset) | `String` `YYYY-MM-DD hh:mm:ss[.ffffff]` |
//! | `timestamptz(p)` | `TIMESTAMP` | scale p (6 when unset) | `String`, the same form in UTC |
//! | `time(p)` | `TIME` | scale p (6 when unset) | `String` `hh:mm:ss[.ffffff]` |
//! | `timetz`, `interval`, `money`, `inet`, ... | `LONGTEXT` | | `String` (text form) |
//! | `json` / `jsonb` | `JSON` | | `String` |
//! | `uuid` | `CHAR` | 36 | `String` |
//! | arrays (any element type) | `JSON` | | `String`: a JSON array (numbers and booleans as such, `NULL` as `null`, the rest as strings) |
//! | enums, domains | `LONGTEXT` | | `String` (the label / the base type's text) |
//!
//! Invariant: a value that does not parse as its type is an error naming the type, never a
//! panic and never a silently different value.

use crate::error::{CaptureError, Result};
use cdc_common::{ColumnDef, ColumnType, Value};

/// How a column's values are read, from its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgType {
    /// int2 / int4 / int8 / oid.
    Int(ColumnType),
    /// numeric.
    Numeric,
    /// real.
    Float4,
    /// double precision.
    Float8,
    /// boolean.
    Bool,
    /// text and every type carried as its text form.
    Text,
    /// varchar(n).
    VarChar,
    /// char(n): blank-padded.
    Char,
    /// name.
    Name,
    /// bytea.
    Bytea,
    /// date.
    Date,
    /// timestamp without time zone.
    Timestamp,
    /// timestamp with time zone.
    TimestampTz,
    /// time without time zone.
    Time,
    /// json / jsonb.
    Json,
    /// uuid.
    Uuid,
    /// An array; the element kind says which elements are JSON numbers or booleans.
    Array(ElemKind),
}

/// How array elements become JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemKind {
    /// Numbers (ints, floats, numeric): JSON numbers when they are valid JSON numbers.
    Number,
    /// `t` / `f`: JSON booleans.
    Bool,
    /// Everything else: JSON strings.
    String,
}

/// The built-in type of an oid, if it is one we know without the catalog.
pub fn builtin(oid: u32) -> Option<PgType> {
    Some(match oid {
        21 => PgType::Int(ColumnType::SmallInt),
        23 => PgType::Int(ColumnType::Int),
        20 | 26 => PgType::Int(ColumnType::BigInt),
        1700 => PgType::Numeric,
        700 => PgType::Float4,
        701 => PgType::Float8,
        16 => PgType::Bool,
        25 => PgType::Text,
        1043 => PgType::VarChar,
        1042 => PgType::Char,
        19 => PgType::Name,
        17 => PgType::Bytea,
        1082 => PgType::Date,
        1114 => PgType::Timestamp,
        1184 => PgType::TimestampTz,
        1083 => PgType::Time,
        114 | 3802 => PgType::Json,
        2950 => PgType::Uuid,
        1005 | 1007 | 1016 | 1021 | 1022 | 1231 | 1028 => PgType::Array(ElemKind::Number),
        1000 => PgType::Array(ElemKind::Bool),
        1009 | 1015 | 1014 | 1182 | 1115 | 1185 | 1183 | 2951 | 199 | 3807 | 1001 | 1002 => {
            PgType::Array(ElemKind::String)
        }
        _ => return None,
    })
}

/// The type of a non-built-in oid from its `pg_type` row: arrays by category `A` (the element
/// kind from the element's oid), everything else (enums, domains, composites) as text.
pub fn from_catalog(category: u8, elem_oid: u32) -> PgType {
    if category == b'A' {
        let elem = match builtin(elem_oid) {
            Some(PgType::Int(_) | PgType::Numeric | PgType::Float4 | PgType::Float8) => {
                ElemKind::Number
            }
            Some(PgType::Bool) => ElemKind::Bool,
            _ => ElemKind::String,
        };
        return PgType::Array(elem);
    }
    PgType::Text
}

/// The schema-file column of a PostgreSQL column.
pub fn column_def(name: &str, ty: PgType, typmod: i32) -> ColumnDef {
    let modifier = (typmod >= 0).then_some(typmod as u32);
    let len = modifier.and_then(|m| m.checked_sub(4));
    let frac = |m: Option<u32>| Some(m.unwrap_or(6));
    let (cty, precision, scale) = match ty {
        PgType::Int(t) => (t, None, None),
        PgType::Numeric => match len {
            Some(l) => (ColumnType::Decimal, Some(l >> 16), Some(l & 0xffff)),
            None => (ColumnType::Decimal, None, None),
        },
        PgType::Float4 => (ColumnType::Float, None, None),
        PgType::Float8 => (ColumnType::Double, None, None),
        PgType::Bool => (ColumnType::TinyInt, Some(1), None),
        PgType::Text => (ColumnType::LongText, None, None),
        PgType::VarChar => match len {
            Some(l) => (ColumnType::VarChar, Some(l), None),
            None => (ColumnType::LongText, None, None),
        },
        PgType::Char => (ColumnType::Char, Some(len.unwrap_or(1)), None),
        PgType::Name => (ColumnType::VarChar, Some(64), None),
        PgType::Bytea => (ColumnType::LongBlob, None, None),
        PgType::Date => (ColumnType::Date, None, None),
        PgType::Timestamp => (ColumnType::DateTime, None, frac(modifier)),
        PgType::TimestampTz => (ColumnType::Timestamp, None, frac(modifier)),
        PgType::Time => (ColumnType::Time, None, frac(modifier)),
        PgType::Json | PgType::Array(_) => (ColumnType::Json, None, None),
        PgType::Uuid => (ColumnType::Char, Some(36), None),
    };
    ColumnDef::new(name, cty).with_precision(precision, scale)
}

fn bad(ty: PgType, text: &str, why: &str) -> CaptureError {
    let mut shown: String = text.chars().take(40).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    CaptureError::Value(format!("{ty:?} value {shown:?}: {why}"))
}

/// A value in its text output form -> the sink's value for the column.
pub fn to_value(ty: PgType, text: &str) -> Result<Value> {
    Ok(match ty {
        PgType::Int(_) => Value::Int(text.parse().map_err(|_| bad(ty, text, "not an integer"))?),
        PgType::Numeric => Value::Decimal(text.into()),
        PgType::Float4 => Value::Float(text.parse().map_err(|_| bad(ty, text, "not a real"))?),
        PgType::Float8 => Value::Double(text.parse().map_err(|_| bad(ty, text, "not a double"))?),
        PgType::Bool => match text {
            "t" => Value::Int(1),
            "f" => Value::Int(0),
            _ => return Err(bad(ty, text, "not t or f")),
        },
        PgType::Char => Value::String(text.trim_end_matches(' ').into()),
        PgType::Bytea => Value::Bytes(hex_bytea(text).ok_or_else(|| bad(ty, text, "not \\x hex"))?),
        PgType::TimestampTz => Value::String(strip_utc_offset(text).into()),
        PgType::Array(elem) => Value::String(
            array_to_json(text, elem)
                .ok_or_else(|| bad(ty, text, "not an array literal"))?
                .into(),
        ),
        PgType::Text
        | PgType::VarChar
        | PgType::Name
        | PgType::Date
        | PgType::Timestamp
        | PgType::Time
        | PgType::Json
        | PgType::Uuid => Value::String(text.into()),
    })
}

/// `\x0a0b` (bytea_output = hex) -> bytes.
fn hex_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    hex.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// `2024-01-02 03:04:05.5+00` (TimeZone = UTC) -> `2024-01-02 03:04:05.5`.
fn strip_utc_offset(text: &str) -> &str {
    text.strip_suffix("+00").unwrap_or(text)
}

/// A PostgreSQL array literal (`{1,2,NULL}`, `{"a b",c}`, `{{1,2},{3,4}}`, `[0:1]={1,2}`) ->
/// JSON text.
pub fn array_to_json(text: &str, elem: ElemKind) -> Option<String> {
    let body = match text.strip_prefix('[') {
        Some(_) => &text[text.find('=')? + 1..],
        None => text,
    };
    let mut p = ArrayParser {
        s: body.as_bytes(),
        pos: 0,
        elem,
    };
    let v = p.array()?;
    (p.pos == p.s.len()).then(|| v.to_string())
}

struct ArrayParser<'a> {
    s: &'a [u8],
    pos: usize,
    elem: ElemKind,
}

impl ArrayParser<'_> {
    fn array(&mut self) -> Option<serde_json::Value> {
        if self.s.get(self.pos) != Some(&b'{') {
            return None;
        }
        self.pos += 1;
        let mut items = Vec::new();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Some(serde_json::Value::Array(items));
        }
        loop {
            let item = match self.s.get(self.pos)? {
                b'{' => self.array()?,
                b'"' => serde_json::Value::String(self.quoted()?),
                _ => self.bare()?,
            };
            items.push(item);
            match self.s.get(self.pos)? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(serde_json::Value::Array(items));
                }
                _ => return None,
            }
        }
    }

    fn quoted(&mut self) -> Option<String> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match *self.s.get(self.pos)? {
                b'\\' => {
                    out.push(*self.s.get(self.pos + 1)?);
                    self.pos += 2;
                }
                b'"' => {
                    self.pos += 1;
                    return String::from_utf8(out).ok();
                }
                c => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn bare(&mut self) -> Option<serde_json::Value> {
        let start = self.pos;
        while !matches!(self.s.get(self.pos)?, b',' | b'}') {
            self.pos += 1;
        }
        let raw = std::str::from_utf8(&self.s[start..self.pos]).ok()?.trim();
        if raw.eq_ignore_ascii_case("NULL") {
            return Some(serde_json::Value::Null);
        }
        Some(match self.elem {
            ElemKind::Number => match serde_json::from_str::<serde_json::Number>(raw) {
                Ok(n) => serde_json::Value::Number(n),
                Err(_) => serde_json::Value::String(raw.to_string()),
            },
            ElemKind::Bool if raw == "t" => serde_json::Value::Bool(true),
            ElemKind::Bool if raw == "f" => serde_json::Value::Bool(false),
            _ => serde_json::Value::String(raw.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_carry_precision_and_scale() {
        let c = column_def("n", PgType::Numeric, ((12 << 16) | 3) + 4);
        assert_eq!(
            (c.ty, c.precision, c.scale),
            (ColumnType::Decimal, Some(12), Some(3))
        );
        let c = column_def("v", PgType::VarChar, 40 + 4);
        assert_eq!((c.ty, c.precision), (ColumnType::VarChar, Some(40)));
        let c = column_def("t", PgType::TimestampTz, -1);
        assert_eq!((c.ty, c.scale), (ColumnType::Timestamp, Some(6)));
        let c = column_def("a", builtin(1007).unwrap(), -1);
        assert_eq!(c.ty, ColumnType::Json);
    }

    #[test]
    fn text_forms_become_values() {
        assert_eq!(to_value(PgType::Bool, "t").unwrap(), Value::Int(1));
        assert_eq!(
            to_value(PgType::Bytea, "\\x00ff").unwrap(),
            Value::Bytes(vec![0, 255])
        );
        assert_eq!(
            to_value(PgType::TimestampTz, "2024-01-02 03:04:05.5+00").unwrap(),
            Value::String("2024-01-02 03:04:05.5".into())
        );
        assert_eq!(
            to_value(PgType::Char, "ab  ").unwrap(),
            Value::String("ab".into())
        );
        assert!(matches!(
            to_value(PgType::Int(ColumnType::Int), "x"),
            Err(CaptureError::Value(_))
        ));
        assert!(matches!(
            to_value(PgType::Bytea, "\\x0"),
            Err(CaptureError::Value(_))
        ));
    }

    #[test]
    fn arrays_become_json() {
        assert_eq!(
            array_to_json("{1,2,NULL}", ElemKind::Number).unwrap(),
            "[1,2,null]"
        );
        assert_eq!(
            array_to_json(r#"{"a b",c,"q\"x","NULL"}"#, ElemKind::String).unwrap(),
            r#"["a b","c","q\"x","NULL"]"#
        );
        assert_eq!(
            array_to_json("{{1,2},{3,4}}", ElemKind::Number).unwrap(),
            "[[1,2],[3,4]]"
        );
        assert_eq!(
            array_to_json("{t,f}", ElemKind::Bool).unwrap(),
            "[true,false]"
        );
        assert_eq!(
            array_to_json("[0:1]={1,2}", ElemKind::Number).unwrap(),
            "[1,2]"
        );
        assert_eq!(array_to_json("{}", ElemKind::Number).unwrap(), "[]");
        assert_eq!(
            array_to_json("{NaN}", ElemKind::Number).unwrap(),
            r#"["NaN"]"#
        );
        assert!(array_to_json("{1,2", ElemKind::Number).is_none());
    }
}
