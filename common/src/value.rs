//! The typed column value carried by row changes.
//!
//! One variant per physical representation, not per SQL type: the column's [`ColumnType`]
//! says how a value is rendered by each codec. The mapping is fixed:
//!
//! | SQL types                                         | variant            |
//! |---------------------------------------------------|--------------------|
//! | TINYINT..BIGINT (signed), YEAR                    | `Int`              |
//! | TINYINT..BIGINT UNSIGNED, BIT                     | `UInt`             |
//! | FLOAT                                             | `Float`            |
//! | DOUBLE                                            | `Double`           |
//! | DECIMAL                                           | `Decimal` (text)   |
//! | CHAR, VARCHAR, *TEXT, JSON                        | `String`           |
//! | DATE, TIME, DATETIME, TIMESTAMP                   | `String` (MySQL text form, e.g. `2024-01-02 03:04:05.123`) |
//! | ENUM, SET                                         | `String` (element name; set members comma-joined) |
//! | BINARY, VARBINARY, *BLOB                          | `Bytes`            |
//!
//! Text (`Decimal`, `String`) is a [`Text`]: a string of up to 24 bytes is stored inside the
//! value itself, a longer one on the heap. Decoders produce a value per column of every row,
//! and most text columns (dates, names, codes, decimals) are short, so a decoded row costs one
//! allocation (its image vector) instead of one more per text value. `Text` dereferences to
//! `str`; `From<String>` keeps a long string's buffer and `Text::into_string` gives a `String`
//! back. It serializes as a plain string.
//!
//! [`ColumnType`]: crate::table::ColumnType

use serde::{Deserialize, Serialize};

/// The text of a `Decimal` or `String` value: inline up to 24 bytes, else on the heap.
pub type Text = compact_str::CompactString;

/// One column's value in a row image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Signed integers and YEAR.
    Int(i64),
    /// Unsigned integers and BIT.
    UInt(u64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL, as its exact decimal text.
    Decimal(Text),
    /// Character, JSON, temporal, ENUM and SET columns, as text.
    String(Text),
    /// Binary columns.
    Bytes(Vec<u8>),
}

impl Value {
    /// The name of the variant, for error messages (never the value itself).
    pub fn variant_name(&self) -> &'static str {
        match self {
            Value::Null => "Null",
            Value::Int(_) => "Int",
            Value::UInt(_) => "UInt",
            Value::Float(_) => "Float",
            Value::Double(_) => "Double",
            Value::Decimal(_) => "Decimal",
            Value::String(_) => "String",
            Value::Bytes(_) => "Bytes",
        }
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Approximate encoded size in bytes, used for batching and quota estimates.
    pub fn approx_size(&self) -> usize {
        match self {
            Value::Null => 2,
            Value::Int(_) | Value::UInt(_) | Value::Double(_) => 8,
            Value::Float(_) => 4,
            Value::Decimal(s) | Value::String(s) => s.len(),
            Value::Bytes(b) => b.len(),
        }
    }
}
