//! Column values: the core columns every workload table starts with, and the random value the
//! generator draws for a column of any supported type.
//!
//! Values are chosen to round-trip exactly through every codec and downstream (binary fractions
//! for FLOAT/DOUBLE, dates every database accepts, texts with the separators, quotes and escapes
//! the codecs must survive). The primary key is never random: it is the key the caller owns.

use super::Workload;
use cdc_common::{ColumnDef, ColumnType, TableDef, Value};
use rand::RngExt;

/// The core columns: one of every type the codecs and downstreams support.
pub fn core_columns() -> Vec<ColumnDef> {
    use ColumnType as T;
    vec![
        ColumnDef::new("id", T::BigInt).pk(),
        ColumnDef::new("c_tinyint", T::TinyInt),
        ColumnDef::new("c_smallint_u", T::SmallInt).unsigned(),
        ColumnDef::new("c_int", T::Int),
        ColumnDef::new("c_bigint_u", T::BigInt).unsigned(),
        ColumnDef::new("c_decimal", T::Decimal).with_precision(Some(12), Some(3)),
        ColumnDef::new("c_float", T::Float),
        ColumnDef::new("c_double", T::Double),
        ColumnDef::new("c_varchar", T::VarChar).with_precision(Some(64), None),
        ColumnDef::new("c_char", T::Char).with_precision(Some(8), None),
        ColumnDef::new("c_text", T::Text),
        ColumnDef::new("c_binary", T::VarBinary).with_precision(Some(16), None),
        ColumnDef::new("c_blob", T::Blob),
        ColumnDef::new("c_date", T::Date),
        ColumnDef::new("c_time", T::Time),
        ColumnDef::new("c_datetime", T::DateTime),
        ColumnDef::new("c_timestamp", T::Timestamp),
        ColumnDef::new("c_year", T::Year),
        ColumnDef::new("c_enum", T::Enum).with_elems(["red", "green", "blue"]),
        ColumnDef::new("c_set", T::Set).with_elems(["a", "b", "c", "d"]),
        ColumnDef::new("c_json", T::Json),
        ColumnDef::new("c_bit", T::Bit).with_precision(Some(8), None),
    ]
}

const TEXTS: &[&str] = &[
    "plain",
    "comma, inside",
    "quote \" inside",
    "line\nbreak",
    "crlf\r\nbreak",
    "tab\tand|pipe",
    "naïve café",
    "表格数据",
    "back\\slash",
    "",
    "\\N",
    "'single'",
];

impl Workload {
    fn value_for(&mut self, col: &ColumnDef, key: i64) -> Value {
        use ColumnType as T;
        if col.primary_key {
            return Value::Int(key);
        }
        if col.nullable && self.rng.random_ratio(1, 12) {
            return Value::Null;
        }
        let r = &mut self.rng;
        match col.ty {
            T::TinyInt => Value::Int(r.random_range(-128..=127)),
            T::SmallInt if col.unsigned => Value::UInt(r.random_range(0..=65_535)),
            T::Int | T::SmallInt | T::MediumInt => {
                Value::Int(r.random_range(-2_000_000_000..=2_000_000_000))
            }
            T::BigInt if col.unsigned => Value::UInt(if r.random_ratio(1, 8) {
                u64::MAX
            } else {
                r.random()
            }),
            T::BigInt => Value::Int(r.random()),
            T::Decimal => {
                let v: i64 = r.random_range(-999_999_999_999..=999_999_999_999);
                let sign = if v < 0 { "-" } else { "" };
                let a = v.unsigned_abs();
                Value::Decimal(format!("{sign}{}.{:03}", a / 1000, a % 1000).into())
            }
            // Binary fractions survive every downstream's float rendering exactly.
            T::Float => Value::Float(r.random_range(-1_000_000i32..1_000_000) as f32 / 4.0),
            T::Double => {
                Value::Double(r.random_range(-1_000_000_000i64..1_000_000_000) as f64 / 1024.0)
            }
            T::VarChar | T::Text | T::TinyText | T::MediumText | T::LongText => {
                let t = TEXTS[r.random_range(0..TEXTS.len())];
                Value::String(format!("{t}#{key}").into())
            }
            T::Char => Value::String(format!("c{}", r.random_range(0..1_000_000u32)).into()),
            T::Binary | T::VarBinary | T::TinyBlob | T::Blob | T::MediumBlob | T::LongBlob => {
                let n = r.random_range(0..16);
                Value::Bytes((0..n).map(|_| r.random::<u8>()).collect())
            }
            T::Date => Value::String(
                format!(
                    "{:04}-{:02}-{:02}",
                    r.random_range(1000..=9999),
                    r.random_range(1..=12),
                    r.random_range(1..=28)
                )
                .into(),
            ),
            T::Time => Value::String(
                format!(
                    "{:02}:{:02}:{:02}",
                    r.random_range(0..=23),
                    r.random_range(0..=59),
                    r.random_range(0..=59)
                )
                .into(),
            ),
            T::DateTime | T::Timestamp => Value::String(
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                    r.random_range(1971..=2037),
                    r.random_range(1..=12),
                    r.random_range(1..=28),
                    r.random_range(0..=23),
                    r.random_range(0..=59),
                    r.random_range(0..=59)
                )
                .into(),
            ),
            T::Year => Value::Int(r.random_range(1901..=2155)),
            T::Enum => Value::String(
                col.elems[r.random_range(0..col.elems.len())]
                    .as_str()
                    .into(),
            ),
            T::Set => {
                let mask: u32 = r.random_range(0..(1u32 << col.elems.len()));
                let members: Vec<&str> = col
                    .elems
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, e)| e.as_str())
                    .collect();
                Value::String(members.join(",").into())
            }
            T::Json => Value::String(
                format!("{{\"k\":{},\"s\":\"v{}\"}}", r.random_range(0..1000), key).into(),
            ),
            T::Bit => Value::UInt(r.random_range(0..=255)),
        }
    }

    pub(super) fn row(&mut self, def: &TableDef, key: i64) -> Vec<Value> {
        def.columns.iter().map(|c| self.value_for(c, key)).collect()
    }
}
