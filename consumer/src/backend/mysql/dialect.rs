//! MySQL/MariaDB's dialect: `` `x` `` quoting, schemas as databases, MySQL's own column types
//! (bounded for key columns), and DDL texts written to be idempotent (`IF [NOT] EXISTS`), since
//! MySQL DDL autocommits. See [`crate::backend::dialect`] for the shared translation choices.

use crate::backend::dialect::{add_column_if_missing, drop_column_if_present, quote_with, Dialect};
use crate::ddl::DdlOp;
use cdc_common::{ColumnDef, ColumnType};

/// A non-key column's MySQL type from what a schema file says. TiCDC (tiflow) writes a
/// `ColumnPrecision` where MySQL accepts no length: `DOUBLE` "22" / `FLOAT` "12" without a scale
/// (`DOUBLE(22)` is a syntax error), the text and blob lengths of `TINYTEXT` .. `LONGBLOB`
/// (only `TEXT(M)` and `BLOB(M)` take one); and ENUM / SET without `ColumnElems`, which MySQL
/// cannot declare (`enum()`): a TEXT column holds what is replayed then, the raw index /
/// bitmask (canal-json) or the names (csv); see [`crate::enum_elems`].
fn ticdc_column_type(c: &ColumnDef) -> String {
    use ColumnType as T;
    let bare = |name: &str| {
        let mut s = name.to_string();
        if c.unsigned {
            s.push_str(" unsigned");
        }
        s
    };
    match c.ty {
        T::Float | T::Double => match (c.precision, c.scale) {
            (Some(p), Some(s)) => bare(&format!("{}({p},{s})", c.ty.name().to_lowercase())),
            _ => bare(&c.ty.name().to_lowercase()),
        },
        T::TinyText | T::MediumText | T::LongText | T::TinyBlob | T::MediumBlob | T::LongBlob => {
            c.ty.name().to_lowercase()
        }
        T::Enum | T::Set if c.elems.is_empty() => "TEXT".into(),
        _ => c.sql_type(),
    }
}

/// MySQL/MariaDB: schemas are databases; column types are MySQL's own.
pub struct Mysql;

impl Dialect for Mysql {
    fn quote(&self, ident: &str) -> String {
        quote_with(ident, '`')
    }
    fn column_type(&self, c: &ColumnDef) -> String {
        match c.ty {
            // A key column must have a bounded length in MySQL.
            ColumnType::Text
            | ColumnType::TinyText
            | ColumnType::MediumText
            | ColumnType::LongText
                if c.primary_key =>
            {
                "VARCHAR(768)".into()
            }
            ColumnType::Enum | ColumnType::Set if c.primary_key && c.elems.is_empty() => {
                "VARCHAR(768)".into()
            }
            t if t.is_binary()
                && c.primary_key
                && !matches!(t, ColumnType::Binary | ColumnType::VarBinary) =>
            {
                "VARBINARY(3072)".into()
            }
            _ => ticdc_column_type(c),
        }
    }
    fn ddl(&self, op: &DdlOp) -> Vec<String> {
        match op {
            DdlOp::CreateSchema(s) => vec![format!(
                "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4",
                self.quote(s)
            )],
            DdlOp::DropSchema { schema, .. } => {
                vec![format!("DROP DATABASE IF EXISTS {}", self.quote(schema))]
            }
            DdlOp::CreateTable(def) => vec![
                format!(
                    "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4",
                    self.quote(&def.schema)
                ),
                // Binary collation: keys compare as upstream TiDB's default utf8mb4_bin does.
                format!(
                    "{} DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
                    self.create_table(def)
                ),
            ],
            DdlOp::DropTable(t) => vec![format!("DROP TABLE IF EXISTS {}", self.table(t))],
            DdlOp::TruncateTable(t) => vec![format!("TRUNCATE TABLE {}", self.table(t))],
            DdlOp::RenameTable { from, to } => vec![
                format!(
                    "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4",
                    self.quote(&to.schema)
                ),
                format!("RENAME TABLE {} TO {}", self.table(from), self.table(to)),
            ],
            DdlOp::AddColumn { table, column } => vec![add_column_if_missing(self, table, column)],
            DdlOp::DropColumn { table, column } => {
                vec![drop_column_if_present(self, table, column)]
            }
            DdlOp::ModifyColumn { table, column } => vec![format!(
                "ALTER TABLE {} MODIFY COLUMN {} {}{}",
                self.table(table),
                self.quote(&column.name),
                self.column_type(column),
                if column.nullable && !column.primary_key {
                    ""
                } else {
                    " NOT NULL"
                }
            )],
            DdlOp::RenameColumn { table, from, to } => vec![format!(
                "ALTER TABLE {} RENAME COLUMN IF EXISTS {} TO {}",
                self.table(table),
                self.quote(from),
                self.quote(to)
            )],
        }
    }
}
