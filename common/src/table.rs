//! Table definitions: the structured schema every codec, writer and consumer works from.
//!
//! A [`TableDef`] is one version of one table. Its `version` is the commit ts of the DDL that
//! produced it (the `<table-version>` directory of the layout); a new version starts a new
//! directory. Column order is the table's column order and the order of values in a row image.

use crate::ts::Ts;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The SQL type of a column (MySQL/TiDB families). Rendered upper case in schema files,
/// e.g. `INT`, `VARCHAR`, `DECIMAL`; unsignedness is a separate flag on the column.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum ColumnType {
    TinyInt,
    SmallInt,
    MediumInt,
    Int,
    BigInt,
    Decimal,
    Float,
    Double,
    Bit,
    Year,
    Date,
    Time,
    DateTime,
    Timestamp,
    Char,
    VarChar,
    TinyText,
    Text,
    MediumText,
    LongText,
    Binary,
    VarBinary,
    TinyBlob,
    Blob,
    MediumBlob,
    LongBlob,
    Enum,
    Set,
    Json,
}

const TYPE_NAMES: &[(ColumnType, &str)] = &[
    (ColumnType::TinyInt, "TINYINT"),
    (ColumnType::SmallInt, "SMALLINT"),
    (ColumnType::MediumInt, "MEDIUMINT"),
    (ColumnType::Int, "INT"),
    (ColumnType::BigInt, "BIGINT"),
    (ColumnType::Decimal, "DECIMAL"),
    (ColumnType::Float, "FLOAT"),
    (ColumnType::Double, "DOUBLE"),
    (ColumnType::Bit, "BIT"),
    (ColumnType::Year, "YEAR"),
    (ColumnType::Date, "DATE"),
    (ColumnType::Time, "TIME"),
    (ColumnType::DateTime, "DATETIME"),
    (ColumnType::Timestamp, "TIMESTAMP"),
    (ColumnType::Char, "CHAR"),
    (ColumnType::VarChar, "VARCHAR"),
    (ColumnType::TinyText, "TINYTEXT"),
    (ColumnType::Text, "TEXT"),
    (ColumnType::MediumText, "MEDIUMTEXT"),
    (ColumnType::LongText, "LONGTEXT"),
    (ColumnType::Binary, "BINARY"),
    (ColumnType::VarBinary, "VARBINARY"),
    (ColumnType::TinyBlob, "TINYBLOB"),
    (ColumnType::Blob, "BLOB"),
    (ColumnType::MediumBlob, "MEDIUMBLOB"),
    (ColumnType::LongBlob, "LONGBLOB"),
    (ColumnType::Enum, "ENUM"),
    (ColumnType::Set, "SET"),
    (ColumnType::Json, "JSON"),
];

/// Which [`crate::value::Value`] variant a column of a type carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `Value::Int`
    Int,
    /// `Value::UInt`
    UInt,
    /// `Value::Float`
    Float,
    /// `Value::Double`
    Double,
    /// `Value::Decimal`
    Decimal,
    /// `Value::String`
    String,
    /// `Value::Bytes`
    Bytes,
}

impl ColumnType {
    /// Every type, in a fixed order (for tests and generators).
    pub fn all() -> impl Iterator<Item = ColumnType> {
        TYPE_NAMES.iter().map(|(t, _)| *t)
    }

    /// The upper-case SQL name, as written in schema files (`VARCHAR`).
    pub fn name(self) -> &'static str {
        TYPE_NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, n)| *n)
            .unwrap_or("UNKNOWN")
    }

    /// True for the integer families (which may be UNSIGNED).
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            ColumnType::TinyInt
                | ColumnType::SmallInt
                | ColumnType::MediumInt
                | ColumnType::Int
                | ColumnType::BigInt
        )
    }

    /// True for types whose values are raw bytes.
    pub fn is_binary(self) -> bool {
        matches!(
            self,
            ColumnType::Binary
                | ColumnType::VarBinary
                | ColumnType::TinyBlob
                | ColumnType::Blob
                | ColumnType::MediumBlob
                | ColumnType::LongBlob
        )
    }

    /// The value variant a column of this type carries, given its unsigned flag.
    pub fn value_kind(self, unsigned: bool) -> ValueKind {
        match self {
            t if t.is_integer() => {
                if unsigned {
                    ValueKind::UInt
                } else {
                    ValueKind::Int
                }
            }
            ColumnType::Year => ValueKind::Int,
            ColumnType::Bit => ValueKind::UInt,
            ColumnType::Float => ValueKind::Float,
            ColumnType::Double => ValueKind::Double,
            ColumnType::Decimal => ValueKind::Decimal,
            t if t.is_binary() => ValueKind::Bytes,
            _ => ValueKind::String,
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ColumnType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let upper = s.trim().to_ascii_uppercase();
        let alias = match upper.as_str() {
            "INTEGER" => "INT",
            "BOOL" | "BOOLEAN" => "TINYINT",
            "REAL" => "DOUBLE",
            "NUMERIC" => "DECIMAL",
            other => other,
        };
        TYPE_NAMES
            .iter()
            .find(|(_, n)| *n == alias)
            .map(|(t, _)| *t)
            .ok_or_else(|| format!("unknown column type `{s}`"))
    }
}

/// One column of a table version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// SQL type family.
    pub ty: ColumnType,
    /// UNSIGNED (integer types only).
    pub unsigned: bool,
    /// Default value as the schema file carries it (a JSON number or string), if any.
    pub default: Option<serde_json::Value>,
    /// Display width / length / precision, where the type has one.
    pub precision: Option<u32>,
    /// Scale (DECIMAL) or fractional-second digits (TIME, DATETIME, TIMESTAMP).
    pub scale: Option<u32>,
    /// NULL allowed.
    pub nullable: bool,
    /// Part of the primary key.
    pub primary_key: bool,
    /// ENUM/SET elements in declaration order; empty for other types.
    pub elems: Vec<String>,
}

impl ColumnDef {
    /// A nullable, non-key column of `ty` with no extras.
    pub fn new(name: impl Into<String>, ty: ColumnType) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            ty,
            unsigned: false,
            default: None,
            precision: None,
            scale: None,
            nullable: true,
            primary_key: false,
            elems: Vec::new(),
        }
    }

    /// Marks the column part of the primary key (and NOT NULL).
    pub fn pk(mut self) -> ColumnDef {
        self.primary_key = true;
        self.nullable = false;
        self
    }

    /// Marks the column NOT NULL.
    pub fn not_null(mut self) -> ColumnDef {
        self.nullable = false;
        self
    }

    /// Marks the column UNSIGNED.
    pub fn unsigned(mut self) -> ColumnDef {
        self.unsigned = true;
        self
    }

    /// Sets precision and scale.
    pub fn with_precision(mut self, precision: Option<u32>, scale: Option<u32>) -> ColumnDef {
        self.precision = precision;
        self.scale = scale;
        self
    }

    /// Sets ENUM/SET elements.
    pub fn with_elems<I: IntoIterator<Item = S>, S: Into<String>>(mut self, elems: I) -> ColumnDef {
        self.elems = elems.into_iter().map(Into::into).collect();
        self
    }

    /// The value variant this column carries.
    pub fn value_kind(&self) -> crate::table::ValueKind {
        self.ty.value_kind(self.unsigned)
    }

    /// The full SQL type text as MySQL writes it, e.g. `decimal(10,2)`, `enum('a','b')`,
    /// `int unsigned` (used by canal-json's `mysqlType` and by DDL translation).
    pub fn sql_type(&self) -> String {
        let base = self.ty.name().to_ascii_lowercase();
        let mut s = match self.ty {
            ColumnType::Enum | ColumnType::Set => {
                let elems: Vec<String> = self
                    .elems
                    .iter()
                    .map(|e| format!("'{}'", e.replace('\'', "''")))
                    .collect();
                format!("{base}({})", elems.join(","))
            }
            ColumnType::Decimal => match (self.precision, self.scale) {
                (Some(p), Some(s)) => format!("{base}({p},{s})"),
                (Some(p), None) => format!("{base}({p})"),
                _ => base,
            },
            ColumnType::Time | ColumnType::DateTime | ColumnType::Timestamp => match self.scale {
                Some(s) if s > 0 => format!("{base}({s})"),
                _ => base,
            },
            _ => match self.precision {
                Some(p) => format!("{base}({p})"),
                None => base,
            },
        };
        if self.unsigned {
            s.push_str(" unsigned");
        }
        s
    }
}

/// Fully qualified table name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableName {
    /// Database (schema) name.
    pub schema: String,
    /// Table name.
    pub table: String,
}

impl TableName {
    /// Builds a name.
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> TableName {
        TableName {
            schema: schema.into(),
            table: table.into(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// One version of one table's definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Database (schema) name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Upstream table id (not stored in schema files; 0 when read back from storage).
    pub table_id: i64,
    /// Table version: commit ts of the DDL that produced this definition.
    pub version: Ts,
    /// Columns in table order.
    pub columns: Vec<ColumnDef>,
}

impl TableDef {
    /// The qualified name.
    pub fn name(&self) -> TableName {
        TableName::new(self.schema.clone(), self.table.clone())
    }

    /// Index of a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Indexes of the primary-key columns, in table order.
    pub fn pk_indexes(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.primary_key)
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for t in ColumnType::all() {
            assert_eq!(t.name().parse::<ColumnType>().unwrap(), t);
        }
        assert!("GEOMETRY".parse::<ColumnType>().is_err());
    }

    #[test]
    fn sql_type_text() {
        let c = ColumnDef::new("d", ColumnType::Decimal).with_precision(Some(10), Some(2));
        assert_eq!(c.sql_type(), "decimal(10,2)");
        let c = ColumnDef::new("e", ColumnType::Enum).with_elems(["a", "b'c"]);
        assert_eq!(c.sql_type(), "enum('a','b''c')");
        let c = ColumnDef::new("i", ColumnType::Int)
            .unsigned()
            .with_precision(Some(10), None);
        assert_eq!(c.sql_type(), "int(10) unsigned");
    }
}
