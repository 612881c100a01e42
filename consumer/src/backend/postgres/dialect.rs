//! PostgreSQL's dialect: `"x"` quoting, schemas as schemas, the column type mapping (also
//! used to cast bound text parameters), and transactional DDL texts. See
//! [`crate::backend::dialect`] for the shared translation choices.

use crate::backend::dialect::{add_column_if_missing, drop_column_if_present, quote_with, Dialect};
use crate::ddl::DdlOp;
use cdc_common::{ColumnDef, ColumnType, TableName};

/// PostgreSQL: schemas are schemas.
pub struct Postgres;

impl Dialect for Postgres {
    fn quote(&self, ident: &str) -> String {
        quote_with(ident, '"')
    }
    fn column_type(&self, c: &ColumnDef) -> String {
        use ColumnType as T;
        match (c.ty, c.unsigned) {
            (T::TinyInt, _) | (T::SmallInt, false) | (T::Year, _) => "SMALLINT".into(),
            (T::SmallInt, true) | (T::MediumInt, _) | (T::Int, false) => "INTEGER".into(),
            (T::Int, true) | (T::BigInt, false) => "BIGINT".into(),
            (T::BigInt, true) | (T::Bit, _) => "NUMERIC(20)".into(),
            (T::Decimal, _) => match (c.precision, c.scale) {
                (Some(p), Some(s)) => format!("NUMERIC({p},{s})"),
                (Some(p), None) => format!("NUMERIC({p})"),
                _ => "NUMERIC".into(),
            },
            (T::Float, _) => "REAL".into(),
            (T::Double, _) => "DOUBLE PRECISION".into(),
            (T::Date, _) => "DATE".into(),
            (T::DateTime, _) | (T::Timestamp, _) => "TIMESTAMP".into(),
            (T::Json, _) => "JSONB".into(),
            (t, _) if t.is_binary() => "BYTEA".into(),
            // TIME (MySQL's range exceeds PostgreSQL's), ENUM, SET and text types.
            (T::Char, _) | (T::VarChar, _) => match c.precision {
                Some(p) if p > 0 => format!("VARCHAR({p})"),
                _ => "TEXT".into(),
            },
            _ => "TEXT".into(),
        }
    }
    fn ddl(&self, op: &DdlOp) -> Vec<String> {
        match op {
            DdlOp::CreateSchema(s) => {
                vec![format!("CREATE SCHEMA IF NOT EXISTS {}", self.quote(s))]
            }
            DdlOp::DropSchema { schema, .. } => {
                vec![format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    self.quote(schema)
                )]
            }
            DdlOp::CreateTable(def) => vec![
                format!("CREATE SCHEMA IF NOT EXISTS {}", self.quote(&def.schema)),
                self.create_table(def),
            ],
            DdlOp::DropTable(t) => vec![format!("DROP TABLE IF EXISTS {}", self.table(t))],
            DdlOp::TruncateTable(t) => vec![format!("TRUNCATE TABLE {}", self.table(t))],
            DdlOp::RenameTable { from, to } => {
                let mut v = Vec::new();
                let mut cur = from.clone();
                if from.schema != to.schema {
                    v.push(format!(
                        "CREATE SCHEMA IF NOT EXISTS {}",
                        self.quote(&to.schema)
                    ));
                    v.push(format!(
                        "ALTER TABLE {} SET SCHEMA {}",
                        self.table(from),
                        self.quote(&to.schema)
                    ));
                    cur = TableName::new(&to.schema, &from.table);
                }
                if cur.table != to.table {
                    v.push(format!(
                        "ALTER TABLE {} RENAME TO {}",
                        self.table(&cur),
                        self.quote(&to.table)
                    ));
                }
                v
            }
            DdlOp::AddColumn { table, column } => vec![add_column_if_missing(self, table, column)],
            DdlOp::DropColumn { table, column } => {
                vec![drop_column_if_present(self, table, column)]
            }
            DdlOp::ModifyColumn { table, column } => {
                let t = self.column_type(column);
                let q = self.quote(&column.name);
                vec![
                    format!(
                        "ALTER TABLE {} ALTER COLUMN {q} TYPE {t} USING {q}::text::{t}",
                        self.table(table)
                    ),
                    format!(
                        "ALTER TABLE {} ALTER COLUMN {q} {} NOT NULL",
                        self.table(table),
                        if column.nullable && !column.primary_key {
                            "DROP"
                        } else {
                            "SET"
                        }
                    ),
                ]
            }
            DdlOp::RenameColumn { table, from, to } => vec![format!(
                "ALTER TABLE {} RENAME COLUMN {} TO {}",
                self.table(table),
                self.quote(from),
                self.quote(to)
            )],
        }
    }
}
