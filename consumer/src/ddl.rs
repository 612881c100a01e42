//! DDL: from schema files to structured operations, and from operations to each dialect's SQL.
//!
//! DDL is never replayed from the upstream query text. The operation list comes from the
//! structured definitions: the previous and the new version's columns are compared (add, drop,
//! modify); the query text is only consulted for what the definitions cannot tell, the
//! *pairing* of a RENAME COLUMN (Type 12) and the source of a RENAME TABLE (Type 14).
//!
//! Translation choices (see also docs/consumer.md):
//!
//! - Identifiers are always quoted (`"x"` with `"` doubled; MySQL `` `x` `` with `` ` `` doubled).
//! - SQLite has one namespace: table `s.t` becomes the single identifier `"s.t"`; schema DDLs
//!   are no-ops except DROP SCHEMA, which drops the schema's tables.
//! - Column defaults are not carried over (every row image is complete); columns added later
//!   are nullable downstream, since rows written before have no value for them.
//! - Indexes other than the primary key are not replicated (ADD/DROP INDEX are no-ops).
//! - SQLite: BIGINT UNSIGNED and BIT columns have no declared type, so values above i64::MAX
//!   are stored exactly (as text) rather than rounded by INTEGER affinity.
//! - SQLite cannot modify a column's type in place: MODIFY COLUMN is a no-op there (SQLite
//!   stores values by their own type); nullability changes are not enforced.

use cdc_common::schema_file::SchemaFile;
use cdc_common::{ColumnDef, ColumnType, TableDef, TableName};
use std::collections::HashSet;

/// TiDB ActionType of CREATE SCHEMA.
pub const ACTION_CREATE_SCHEMA: u32 = 1;
/// TiDB ActionType of DROP SCHEMA.
pub const ACTION_DROP_SCHEMA: u32 = 2;
/// TiDB ActionType of CREATE TABLE.
pub const ACTION_CREATE_TABLE: u32 = 3;
/// TiDB ActionType of DROP TABLE.
pub const ACTION_DROP_TABLE: u32 = 4;
/// TiDB ActionType of TRUNCATE TABLE.
pub const ACTION_TRUNCATE_TABLE: u32 = 11;
/// TiDB ActionType of MODIFY/CHANGE/RENAME COLUMN.
pub const ACTION_MODIFY_COLUMN: u32 = 12;
/// TiDB ActionType of RENAME TABLE.
pub const ACTION_RENAME_TABLE: u32 = 14;

/// One structured DDL operation.
#[derive(Clone, Debug, PartialEq)]
pub enum DdlOp {
    /// CREATE SCHEMA IF NOT EXISTS.
    CreateSchema(String),
    /// DROP SCHEMA (and every table in it).
    DropSchema {
        /// The schema.
        schema: String,
        /// Its tables known to the consumer (SQLite drops them one by one).
        tables: Vec<TableName>,
    },
    /// CREATE TABLE IF NOT EXISTS.
    CreateTable(TableDef),
    /// DROP TABLE IF EXISTS.
    DropTable(TableName),
    /// Remove every row.
    TruncateTable(TableName),
    /// Rename a table (possibly into another schema).
    RenameTable {
        /// Old name.
        from: TableName,
        /// New name.
        to: TableName,
    },
    /// ADD COLUMN (nullable downstream).
    AddColumn {
        /// Table.
        table: TableName,
        /// The new column.
        column: ColumnDef,
    },
    /// DROP COLUMN.
    DropColumn {
        /// Table.
        table: TableName,
        /// Column name.
        column: String,
    },
    /// Change a column's type or nullability.
    ModifyColumn {
        /// Table.
        table: TableName,
        /// The new definition.
        column: ColumnDef,
    },
    /// RENAME COLUMN.
    RenameColumn {
        /// Table.
        table: TableName,
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
}

impl DdlOp {
    /// A short name for errors and the audit record.
    pub fn kind(&self) -> &'static str {
        match self {
            DdlOp::CreateSchema(_) => "create schema",
            DdlOp::DropSchema { .. } => "drop schema",
            DdlOp::CreateTable(_) => "create table",
            DdlOp::DropTable(_) => "drop table",
            DdlOp::TruncateTable(_) => "truncate table",
            DdlOp::RenameTable { .. } => "rename table",
            DdlOp::AddColumn { .. } => "add column",
            DdlOp::DropColumn { .. } => "drop column",
            DdlOp::ModifyColumn { .. } => "modify column",
            DdlOp::RenameColumn { .. } => "rename column",
        }
    }

    /// The object the operation acts on, for errors: the schema for schema DDLs, the table
    /// (after a rename, its new name) otherwise.
    pub fn target(&self) -> String {
        match self {
            DdlOp::CreateSchema(s) | DdlOp::DropSchema { schema: s, .. } => s.clone(),
            DdlOp::CreateTable(d) => d.name().to_string(),
            DdlOp::DropTable(t) | DdlOp::TruncateTable(t) => t.to_string(),
            DdlOp::RenameTable { to, .. } => to.to_string(),
            DdlOp::AddColumn { table, .. }
            | DdlOp::DropColumn { table, .. }
            | DdlOp::ModifyColumn { table, .. }
            | DdlOp::RenameColumn { table, .. } => table.to_string(),
        }
    }
}

/// The operations that turn `prev` into `next` (same table name), using `query` to pair
/// renamed columns.
pub fn diff_columns(prev: &TableDef, next: &TableDef, query: &str) -> Vec<DdlOp> {
    let table = next.name();
    let mut ops = Vec::new();
    let mut renamed: Vec<(String, String)> = rename_columns(query)
        .into_iter()
        .filter(|(f, t)| prev.column_index(f).is_some() && next.column_index(t).is_some())
        .filter(|(f, t)| next.column_index(f).is_none() && prev.column_index(t).is_none())
        .collect();
    renamed.dedup();
    let old_names: HashSet<&str> = renamed.iter().map(|(f, _)| f.as_str()).collect();
    let new_names: HashSet<&str> = renamed.iter().map(|(_, t)| t.as_str()).collect();
    for (from, to) in &renamed {
        ops.push(DdlOp::RenameColumn {
            table: table.clone(),
            from: from.clone(),
            to: to.clone(),
        });
    }
    for c in &prev.columns {
        if next.column_index(&c.name).is_none() && !old_names.contains(c.name.as_str()) {
            ops.push(DdlOp::DropColumn {
                table: table.clone(),
                column: c.name.clone(),
            });
        }
    }
    for c in &next.columns {
        let before = match renamed.iter().find(|(_, t)| t == &c.name) {
            Some((f, _)) => prev.columns.iter().find(|p| &p.name == f),
            None => prev.columns.iter().find(|p| p.name == c.name),
        };
        match before {
            None if !new_names.contains(c.name.as_str()) => ops.push(DdlOp::AddColumn {
                table: table.clone(),
                column: c.clone(),
            }),
            Some(b) if !same_type(b, c) => ops.push(DdlOp::ModifyColumn {
                table: table.clone(),
                column: c.clone(),
            }),
            _ => {}
        }
    }
    ops
}

fn same_type(a: &ColumnDef, b: &ColumnDef) -> bool {
    a.ty == b.ty
        && a.unsigned == b.unsigned
        && a.precision == b.precision
        && a.scale == b.scale
        && a.nullable == b.nullable
        && a.elems == b.elems
}

/// Splits SQL text into identifiers/words (backquoted identifiers unquoted, `.` and `,` kept as
/// tokens). Enough to find `RENAME COLUMN a TO b`, `CHANGE a b` and `RENAME TABLE a.b TO c.d`.
fn tokens(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' | '"' => {
                let mut s = String::new();
                while let Some(n) = chars.next() {
                    if n == c {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            s.push(c);
                            continue;
                        }
                        break;
                    }
                    s.push(n);
                }
                out.push(format!("`{s}"));
            }
            '.' | ',' | ';' | '(' | ')' => out.push(c.to_string()),
            c if c.is_whitespace() => {}
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || ".,;()`\"".contains(n) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    out
}

fn ident(t: &str) -> String {
    t.strip_prefix('`').unwrap_or(t).to_string()
}

fn is_kw(t: &str, kw: &str) -> bool {
    !t.starts_with('`') && t.eq_ignore_ascii_case(kw)
}

/// Column renames named by a query: `RENAME COLUMN a TO b` and `CHANGE [COLUMN] a b ...`.
pub fn rename_columns(query: &str) -> Vec<(String, String)> {
    let t = tokens(query);
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if is_kw(&t[i], "RENAME") && t.get(i + 1).is_some_and(|x| is_kw(x, "COLUMN")) {
            if let (Some(a), Some(to), Some(b)) = (t.get(i + 2), t.get(i + 3), t.get(i + 4)) {
                if is_kw(to, "TO") {
                    out.push((ident(a), ident(b)));
                    i += 5;
                    continue;
                }
            }
        }
        if is_kw(&t[i], "CHANGE") {
            let j = if t.get(i + 1).is_some_and(|x| is_kw(x, "COLUMN")) {
                i + 2
            } else {
                i + 1
            };
            if let (Some(a), Some(b)) = (t.get(j), t.get(j + 1)) {
                if ident(a) != ident(b) {
                    out.push((ident(a), ident(b)));
                }
                i = j + 2;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Parses `name` or `schema . name` at `t[i..]`; returns the name and the next index.
fn qualified(t: &[String], i: usize, default_schema: &str) -> Option<(TableName, usize)> {
    let a = t.get(i)?;
    if t.get(i + 1).map(String::as_str) == Some(".") {
        let b = t.get(i + 2)?;
        Some((TableName::new(ident(a), ident(b)), i + 3))
    } else {
        Some((TableName::new(default_schema, ident(a)), i + 1))
    }
}

/// The source of a RENAME TABLE schema file: the pair of `RENAME TABLE a TO b[, c TO d]` or
/// `ALTER TABLE a RENAME [TO|AS] b` whose target is the file's table.
pub fn rename_source(file: &SchemaFile) -> Option<TableName> {
    let t = tokens(&file.query);
    let target = TableName::new(&file.schema, &file.table);
    let mut i = 0;
    while i < t.len() {
        if is_kw(&t[i], "RENAME") && t.get(i + 1).is_some_and(|x| is_kw(x, "TABLE")) {
            let mut j = i + 2;
            while let Some((from, k)) = qualified(&t, j, &file.schema) {
                if !t.get(k).is_some_and(|x| is_kw(x, "TO")) {
                    break;
                }
                let (to, k2) = qualified(&t, k + 1, &file.schema)?;
                if to == target {
                    return Some(from);
                }
                if t.get(k2).map(String::as_str) != Some(",") {
                    break;
                }
                j = k2 + 1;
            }
        }
        if is_kw(&t[i], "ALTER") && t.get(i + 1).is_some_and(|x| is_kw(x, "TABLE")) {
            if let Some((from, k)) = qualified(&t, i + 2, &file.schema) {
                if t.get(k).is_some_and(|x| is_kw(x, "RENAME")) {
                    let k = if t
                        .get(k + 1)
                        .is_some_and(|x| is_kw(x, "TO") || is_kw(x, "AS"))
                    {
                        k + 2
                    } else {
                        k + 1
                    };
                    if let Some((to, _)) = qualified(&t, k, &file.schema) {
                        if to == target {
                            return Some(from);
                        }
                    }
                }
            }
        }
        i += 1;
    }
    None
}

/// A SQL dialect: quoting, type mapping and DDL text.
pub trait Dialect: Send + Sync {
    /// Quotes an identifier.
    fn quote(&self, ident: &str) -> String;
    /// The downstream reference of a table: `schema.table`, each part quoted (SQLite, which
    /// has no schemas, overrides it).
    fn table(&self, name: &TableName) -> String {
        format!("{}.{}", self.quote(&name.schema), self.quote(&name.table))
    }
    /// The downstream column type.
    fn column_type(&self, c: &ColumnDef) -> String;
    /// The statements of one operation.
    fn ddl(&self, op: &DdlOp) -> Vec<String>;

    /// `CREATE TABLE IF NOT EXISTS` text shared by the dialects.
    fn create_table(&self, def: &TableDef) -> String {
        let mut cols: Vec<String> = def
            .columns
            .iter()
            .map(|c| {
                let mut s = format!("{} {}", self.quote(&c.name), self.column_type(c));
                let s_trim = s.trim_end().len();
                s.truncate(s_trim);
                if !c.nullable || c.primary_key {
                    s.push_str(" NOT NULL");
                }
                s
            })
            .collect();
        let pk: Vec<String> = def
            .columns
            .iter()
            .filter(|c| c.primary_key)
            .map(|c| self.quote(&c.name))
            .collect();
        if !pk.is_empty() {
            cols.push(format!("PRIMARY KEY ({})", pk.join(", ")));
        }
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            self.table(&def.name()),
            cols.join(", ")
        )
    }
}

fn quote_with(ident: &str, q: char) -> String {
    let mut s = String::with_capacity(ident.len() + 2);
    s.push(q);
    for c in ident.chars() {
        if c == q {
            s.push(q);
        }
        s.push(c);
    }
    s.push(q);
    s
}

/// `ADD COLUMN IF NOT EXISTS`, the same text in PostgreSQL and MariaDB: running it again is
/// harmless.
fn add_column_if_missing(d: &impl Dialect, table: &TableName, column: &ColumnDef) -> String {
    format!(
        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}",
        d.table(table),
        d.quote(&column.name),
        d.column_type(column)
    )
}

/// `DROP COLUMN IF EXISTS`, for the same reason as [`add_column_if_missing`].
fn drop_column_if_present(d: &impl Dialect, table: &TableName, column: &str) -> String {
    format!(
        "ALTER TABLE {} DROP COLUMN IF EXISTS {}",
        d.table(table),
        d.quote(column)
    )
}

/// SQLite: one namespace, `"schema.table"` names.
pub struct Sqlite;

impl Dialect for Sqlite {
    fn quote(&self, ident: &str) -> String {
        quote_with(ident, '"')
    }
    fn table(&self, name: &TableName) -> String {
        self.quote(&format!("{}.{}", name.schema, name.table))
    }
    fn column_type(&self, c: &ColumnDef) -> String {
        match c.ty {
            // No declared type (no affinity): values up to i64::MAX stay integers, larger ones
            // are kept exact as text instead of being rounded to REAL.
            ColumnType::BigInt if c.unsigned => "",
            ColumnType::Bit => "",
            t if t.is_integer() => "INTEGER",
            ColumnType::Year => "INTEGER",
            ColumnType::Float | ColumnType::Double => "REAL",
            t if t.is_binary() => "BLOB",
            // DECIMAL as text keeps every digit (NUMERIC affinity would round to REAL).
            _ => "TEXT",
        }
        .into()
    }
    fn ddl(&self, op: &DdlOp) -> Vec<String> {
        match op {
            DdlOp::CreateSchema(_) => Vec::new(),
            DdlOp::DropSchema { tables, .. } => tables
                .iter()
                .map(|t| format!("DROP TABLE IF EXISTS {}", self.table(t)))
                .collect(),
            DdlOp::CreateTable(def) => vec![self.create_table(def)],
            DdlOp::DropTable(t) => vec![format!("DROP TABLE IF EXISTS {}", self.table(t))],
            DdlOp::TruncateTable(t) => vec![format!("DELETE FROM {}", self.table(t))],
            DdlOp::RenameTable { from, to } => vec![format!(
                "ALTER TABLE {} RENAME TO {}",
                self.table(from),
                self.table(to)
            )],
            DdlOp::AddColumn { table, column } => vec![format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                self.table(table),
                self.quote(&column.name),
                self.column_type(column)
            )],
            DdlOp::DropColumn { table, column } => vec![format!(
                "ALTER TABLE {} DROP COLUMN {}",
                self.table(table),
                self.quote(column)
            )],
            DdlOp::ModifyColumn { .. } => Vec::new(),
            DdlOp::RenameColumn { table, from, to } => vec![format!(
                "ALTER TABLE {} RENAME COLUMN {} TO {}",
                self.table(table),
                self.quote(from),
                self.quote(to)
            )],
        }
    }
}

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
            t if t.is_binary()
                && c.primary_key
                && !matches!(t, ColumnType::Binary | ColumnType::VarBinary) =>
            {
                "VARBINARY(3072)".into()
            }
            _ => c.sql_type(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::Ts;

    fn def(cols: Vec<ColumnDef>) -> TableDef {
        TableDef {
            schema: "s".into(),
            table: "t".into(),
            table_id: 0,
            version: Ts(1),
            columns: cols,
        }
    }

    #[test]
    fn identifiers_are_quoted_with_doubling() {
        assert_eq!(Sqlite.table(&TableName::new("a\"b", "c")), "\"a\"\"b.c\"");
        assert_eq!(Mysql.quote("x`y"), "`x``y`");
        assert_eq!(
            Postgres.table(&TableName::new("s", "t\"")),
            "\"s\".\"t\"\"\""
        );
    }

    #[test]
    fn column_diff_finds_add_drop_modify_and_rename() {
        let a = ColumnDef::new("a", ColumnType::Int).pk();
        let b = ColumnDef::new("b", ColumnType::VarChar);
        let c = ColumnDef::new("c", ColumnType::Int);
        let prev = def(vec![a.clone(), b.clone(), c.clone()]);
        let mut b2 = b.clone();
        b2.name = "bb".into();
        let c2 = ColumnDef::new("c", ColumnType::BigInt);
        let d = ColumnDef::new("d", ColumnType::Text);
        let next = def(vec![a, b2, c2.clone(), d.clone()]);
        let ops = diff_columns(&prev, &next, "ALTER TABLE t RENAME COLUMN `b` TO bb");
        let t = TableName::new("s", "t");
        assert_eq!(
            ops,
            vec![
                DdlOp::RenameColumn {
                    table: t.clone(),
                    from: "b".into(),
                    to: "bb".into()
                },
                DdlOp::ModifyColumn {
                    table: t.clone(),
                    column: c2
                },
                DdlOp::AddColumn {
                    table: t,
                    column: d
                },
            ]
        );
    }

    #[test]
    fn rename_sources_are_parsed_from_the_query() {
        let mut f = SchemaFile::for_table(&def(vec![]), "", &cdc_common::DdlKind::RenameTable);
        f.schema = "s2".into();
        f.table = "n".into();
        f.query = "RENAME TABLE `s`.`o` TO `s2`.`n`".into();
        assert_eq!(rename_source(&f), Some(TableName::new("s", "o")));
        f.query = "rename table x to y, o to n".into();
        assert_eq!(rename_source(&f), Some(TableName::new("s2", "o")));
        f.query = "ALTER TABLE o RENAME AS n".into();
        assert_eq!(rename_source(&f), Some(TableName::new("s2", "o")));
        f.query = "garbage".into();
        assert_eq!(rename_source(&f), None);
    }
}
