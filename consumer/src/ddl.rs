//! DDL: from schema files to structured operations (dialect-free; each backend's `dialect.rs`
//! turns an operation into its SQL, see [`crate::backend::dialect`]).
//!
//! DDL is never replayed from the upstream query text. The operation list comes from the
//! structured definitions: the previous and the new version's columns are compared (add, drop,
//! modify); the query text is only consulted for what the definitions cannot tell, the
//! *pairing* of a RENAME COLUMN (Type 12) and the source of a RENAME TABLE (Type 14).
//!
//! The translation choices (quoting, namespaces, defaults, what is a no-op) are listed in
//! [`crate::backend::dialect`].

use cdc_common::schema_file::SchemaFile;
use cdc_common::{ColumnDef, TableDef, TableName};
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

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::{ColumnType, Ts};

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
