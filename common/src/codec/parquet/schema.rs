//! The Parquet schema of a table version: the change columns, one typed column per table
//! column, then the before-image columns; and the check that a file's schema is that schema.

use crate::table::{ColumnDef, ColumnType, TableDef, ValueKind};
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::schema::types::{SchemaDescriptor, Type, TypePtr};
use std::sync::Arc;

/// The operation column: `I`, `U` or `D`.
pub const OP_COLUMN: &str = "_cdc_op";
/// The commit ts column (the TSO as an unsigned 64-bit integer).
pub const COMMIT_TS_COLUMN: &str = "_cdc_commit_ts";
/// Prefix of the before-image columns (`_cdc_before_<column>`), set for updates only.
pub const BEFORE_PREFIX: &str = "_cdc_before_";

/// How one table column is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// INT32 with an INT(bits, signed) logical type (unsigned values bit-cast).
    I32 { bits: i8, signed: bool },
    /// INT64 with an INT(64, signed) logical type (unsigned values bit-cast).
    I64 { signed: bool },
    /// FLOAT.
    Float,
    /// DOUBLE.
    Double,
    /// FIXED_LEN_BYTE_ARRAY(len) DECIMAL(precision, scale).
    Decimal {
        precision: u32,
        scale: u32,
        len: usize,
    },
    /// INT32 DATE.
    Date,
    /// INT64 TIME(MICROS), fractional digits `fsp` when read back as text.
    Time { fsp: u32 },
    /// INT64 TIMESTAMP(MICROS, not adjusted to UTC).
    Timestamp { fsp: u32 },
    /// BYTE_ARRAY STRING (text, ENUM, SET, JSON).
    Text,
    /// BYTE_ARRAY without a logical type.
    Binary,
}

/// MySQL's DECIMAL without a precision is DECIMAL(10,0).
const DEFAULT_DECIMAL_PRECISION: u32 = 10;

/// The storage kind of `column`.
pub fn kind_of(column: &ColumnDef) -> Kind {
    use ColumnType as T;
    let fsp = column.scale.unwrap_or(0).min(6);
    match (column.value_kind(), column.ty) {
        (ValueKind::Int, T::TinyInt) => Kind::I32 {
            bits: 8,
            signed: true,
        },
        (ValueKind::Int, T::SmallInt | T::Year) => Kind::I32 {
            bits: 16,
            signed: true,
        },
        (ValueKind::Int, T::MediumInt | T::Int) => Kind::I32 {
            bits: 32,
            signed: true,
        },
        (ValueKind::Int, _) => Kind::I64 { signed: true },
        (ValueKind::UInt, T::TinyInt) => Kind::I32 {
            bits: 8,
            signed: false,
        },
        (ValueKind::UInt, T::SmallInt) => Kind::I32 {
            bits: 16,
            signed: false,
        },
        (ValueKind::UInt, T::MediumInt | T::Int) => Kind::I32 {
            bits: 32,
            signed: false,
        },
        (ValueKind::UInt, _) => Kind::I64 { signed: false },
        (ValueKind::Float, _) => Kind::Float,
        (ValueKind::Double, _) => Kind::Double,
        (ValueKind::Decimal, _) => {
            let precision = column
                .precision
                .unwrap_or(DEFAULT_DECIMAL_PRECISION)
                .clamp(1, 76);
            let scale = column.scale.unwrap_or(0).min(precision);
            Kind::Decimal {
                precision,
                scale,
                len: super::values::decimal_len(precision),
            }
        }
        (ValueKind::String, T::Date) => Kind::Date,
        (ValueKind::String, T::Time) => Kind::Time { fsp },
        (ValueKind::String, T::DateTime | T::Timestamp) => Kind::Timestamp { fsp },
        (ValueKind::String, _) => Kind::Text,
        (ValueKind::Bytes, _) => Kind::Binary,
    }
}

/// The Parquet field for a column of `kind`.
fn field(name: &str, kind: Kind, optional: bool) -> parquet::errors::Result<TypePtr> {
    let (physical, logical) = match kind {
        Kind::I32 { bits, signed } => (Physical::INT32, Some(LogicalType::integer(bits, signed))),
        Kind::I64 { signed } => (Physical::INT64, Some(LogicalType::integer(64, signed))),
        Kind::Float => (Physical::FLOAT, None),
        Kind::Double => (Physical::DOUBLE, None),
        Kind::Decimal {
            precision, scale, ..
        } => (
            Physical::FIXED_LEN_BYTE_ARRAY,
            Some(LogicalType::decimal(scale as i32, precision as i32)),
        ),
        Kind::Date => (Physical::INT32, Some(LogicalType::Date)),
        Kind::Time { .. } => (
            Physical::INT64,
            Some(LogicalType::time(false, TimeUnit::MICROS)),
        ),
        Kind::Timestamp { .. } => (
            Physical::INT64,
            Some(LogicalType::timestamp(false, TimeUnit::MICROS)),
        ),
        Kind::Text => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
        Kind::Binary => (Physical::BYTE_ARRAY, None),
    };
    let mut b = Type::primitive_type_builder(name, physical)
        .with_repetition(if optional {
            Repetition::OPTIONAL
        } else {
            Repetition::REQUIRED
        })
        .with_logical_type(logical);
    if let Kind::Decimal {
        precision,
        scale,
        len,
    } = kind
    {
        b = b
            .with_length(len as i32)
            .with_precision(precision as i32)
            .with_scale(scale as i32);
    }
    Ok(Arc::new(b.build()?))
}

/// The file schema of `table` with column kinds `kinds`:
/// `_cdc_op, _cdc_commit_ts, <columns...>, _cdc_before_<column>...`.
pub fn file_schema(table: &TableDef, kinds: &[Kind]) -> parquet::errors::Result<TypePtr> {
    let mut fields = Vec::with_capacity(2 + 2 * kinds.len());
    fields.push(field(OP_COLUMN, Kind::Text, false)?);
    fields.push(field(COMMIT_TS_COLUMN, Kind::I64 { signed: false }, false)?);
    for (c, k) in table.columns.iter().zip(kinds) {
        fields.push(field(&c.name, *k, c.nullable)?);
    }
    for (c, k) in table.columns.iter().zip(kinds) {
        fields.push(field(&format!("{BEFORE_PREFIX}{}", c.name), *k, true)?);
    }
    Ok(Arc::new(
        Type::group_type_builder("cdc_event")
            .with_fields(fields)
            .build()?,
    ))
}

/// Why `found` (a file's schema) is not `expected`; `None` when every column matches in name,
/// physical type, logical type, length and nullability, and nothing is nested.
pub fn mismatch(expected: &SchemaDescriptor, found: &SchemaDescriptor) -> Option<String> {
    if found.num_columns() != expected.num_columns() {
        return Some(format!(
            "the file has {} columns, the schema file's table needs {}",
            found.num_columns(),
            expected.num_columns()
        ));
    }
    for (e, f) in expected.columns().iter().zip(found.columns()) {
        let same = e.path() == f.path()
            && e.physical_type() == f.physical_type()
            && e.logical_type_ref() == f.logical_type_ref()
            && e.type_length() == f.type_length()
            && e.max_def_level() == f.max_def_level()
            && f.max_rep_level() == 0;
        if !same {
            return Some(format!(
                "column `{}` is {} {:?}{} in the file, the schema file says `{}` {} {:?}{}",
                f.path().string(),
                f.physical_type(),
                f.logical_type_ref(),
                if f.max_def_level() > 0 {
                    " nullable"
                } else {
                    ""
                },
                e.path().string(),
                e.physical_type(),
                e.logical_type_ref(),
                if e.max_def_level() > 0 {
                    " nullable"
                } else {
                    ""
                },
            ));
        }
    }
    None
}
