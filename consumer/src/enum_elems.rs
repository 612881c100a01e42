//! Recovering ENUM and SET elements that a schema file does not carry.
//!
//! TiCDC's schema files (tiflow v6.5.3 up to v8.5) have no `ColumnElems`; ours do. Without the
//! elements a canal-json ENUM value (its 1-based index) or SET value (its bitmask) cannot be
//! named, and MySQL cannot declare the column (`enum()` is a syntax error). The elements are
//! recovered, in this order, from:
//!
//! 1. `ColumnElems` (nothing to do);
//! 2. the schema file's `Query` text: the `CREATE TABLE` / `ALTER TABLE` that defined the
//!    column (`c ENUM('a','b')`, quotes doubled or backslash-escaped);
//! 3. the previous version of the same table, whose column of that name and type was
//!    recovered (a later DDL's `Query` is about another column);
//! 4. the downstream's existing definition of the table
//!    ([`crate::backend::Downstream::read_elems`]), read when a data file of a table with a
//!    column still without elements is decoded ([`fill_from_downstream`]): a table the user
//!    loaded before the changefeed started (dumpling, Lightning) has `ENUM('a','b')` in
//!    MySQL/MariaDB. PostgreSQL and SQLite columns this project creates are plain text and
//!    give none.
//!
//! (canal-json's `mysqlType` with `content-compatible=true` is read per message by the
//! codec, for columns the sources above left without elements.)
//!
//! A column still without elements is replayed as its raw index / bitmask (text columns hold
//! it in every downstream), with a warning naming table and column in the round record of the
//! first file decoded so ([`unknown_warnings`], once per table version); the replay never
//! stops on it.
//!
//! Invariants: elements are only ever added to an ENUM/SET column whose list is empty; what
//! the `Query` text or the downstream gives must parse completely (every element quoted),
//! else it is not used.

use cdc_common::codec::elems::parse_list;
use cdc_common::schema_file::SchemaFile;
use cdc_common::{ColumnType, TableDef};

/// True when `def` has an ENUM/SET column without elements (only then is the downstream
/// asked).
pub fn lacks_elems(def: &TableDef) -> bool {
    def.columns
        .iter()
        .any(|c| matches!(c.ty, ColumnType::Enum | ColumnType::Set) && c.elems.is_empty())
}

/// Fills `def`'s element-less ENUM/SET columns from the downstream's existing definition
/// (`found`: column name and elements, as [`crate::backend::Downstream::read_elems`] gives
/// them); returns how many columns got elements.
pub fn fill_from_downstream(def: &mut TableDef, found: &[(String, Vec<String>)]) -> usize {
    let mut filled = 0;
    for c in &mut def.columns {
        if !matches!(c.ty, ColumnType::Enum | ColumnType::Set) || !c.elems.is_empty() {
            continue;
        }
        if let Some((_, elems)) = found.iter().find(|(n, e)| *n == c.name && !e.is_empty()) {
            c.elems = elems.clone();
            filled += 1;
        }
    }
    filled
}

/// Fills the missing elements of `file`'s ENUM/SET columns from its query or the previous
/// version (sources 2 and 3 of the module doc).
pub fn recover(file: &mut SchemaFile, previous: Option<&SchemaFile>) {
    for i in 0..file.columns.len() {
        let c = &file.columns[i];
        if !matches!(c.ty, ColumnType::Enum | ColumnType::Set) || !c.elems.is_empty() {
            continue;
        }
        let from_query = elems_in_query(&file.query, &c.name, c.ty);
        let from_previous = || {
            previous?
                .columns
                .iter()
                .find(|p| p.name == c.name && p.ty == c.ty && !p.elems.is_empty())
                .map(|p| p.elems.clone())
        };
        if let Some(elems) = from_query.or_else(from_previous) {
            file.columns[i].elems = elems;
        }
    }
}

/// One warning per ENUM/SET column of `def` that every source left without elements (given
/// once the downstream was asked too).
pub fn unknown_warnings(def: &TableDef) -> Vec<String> {
    def.columns
        .iter()
        .filter(|c| matches!(c.ty, ColumnType::Enum | ColumnType::Set) && c.elems.is_empty())
        .map(|c| {
            format!(
                "table `{}.{}` column `{}`: the {} elements are unknown (the schema file \
                 carries none, its query does not define them and the downstream's table does \
                 not declare them); values are replayed as the raw {} into a text column, \
                 unless a canal-json `mysqlType` names the elements (content-compatible=true)",
                def.schema,
                def.table,
                c.name,
                c.ty.name(),
                if c.ty == ColumnType::Enum {
                    "1-based index"
                } else {
                    "bitmask"
                }
            )
        })
        .collect()
}

/// The elements `query` declares for column `name` of type `ty`: the first
/// `` `name` ENUM(...) `` (or unquoted `name`), matched without regard to case.
fn elems_in_query(query: &str, name: &str, ty: ColumnType) -> Option<Vec<String>> {
    let keyword = ty.name().to_ascii_lowercase();
    let lower = query.to_lowercase();
    if lower.len() != query.len() {
        // Lower-casing changed byte offsets (rare non-ASCII case mappings): match as written.
        return scan(query, query, name, &keyword);
    }
    scan(query, &lower, name, &keyword)
}

fn scan(query: &str, lower: &str, name: &str, keyword: &str) -> Option<Vec<String>> {
    let quoted = format!("`{}`", name.replace('`', "``"));
    let mut candidates = vec![quoted];
    if name
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
    {
        candidates.push(name.to_string());
    }
    for cand in candidates {
        let cand_lower = cand.to_lowercase();
        let mut from = 0;
        while let Some(at) = lower[from..].find(&cand_lower) {
            let start = from + at;
            let end = start + cand_lower.len();
            from = end;
            let before_ok = lower[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '`'));
            if !before_ok {
                continue;
            }
            let rest = lower[end..].trim_start();
            let Some(after_kw) = rest.strip_prefix(keyword) else {
                continue;
            };
            let Some(args) = after_kw.trim_start().strip_prefix('(') else {
                continue;
            };
            let offset = query.len() - args.len();
            if let Some(elems) = parse_list(&query[offset..]) {
                return Some(elems);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::{ColumnDef, Ts};

    #[test]
    fn the_downstream_fills_only_element_less_enum_and_set_columns() {
        let mut def = TableDef {
            schema: "d".into(),
            table: "t".into(),
            table_id: 0,
            version: Ts(1),
            columns: vec![
                ColumnDef::new("e", ColumnType::Enum),
                ColumnDef::new("s", ColumnType::Set).with_elems(["kept"]),
                ColumnDef::new("x", ColumnType::Text),
                ColumnDef::new("gone", ColumnType::Enum),
            ],
        };
        assert!(lacks_elems(&def));
        let found = vec![
            ("e".to_string(), vec!["a".to_string(), "b".to_string()]),
            ("s".to_string(), vec!["other".to_string()]),
            ("x".to_string(), vec!["never".to_string()]),
        ];
        assert_eq!(fill_from_downstream(&mut def, &found), 1);
        assert_eq!(def.columns[0].elems, vec!["a", "b"]);
        assert_eq!(def.columns[1].elems, vec!["kept"]);
        assert!(def.columns[2].elems.is_empty());
        assert!(lacks_elems(&def), "`gone` is still without elements");
    }

    #[test]
    fn elements_come_from_the_defining_query() {
        let q = "CREATE TABLE t (id INT PRIMARY KEY, `c_enum` ENUM('small','a,b','x\"y','中', 'it''s'), \
                 c_set set(\"a\",'b\\'c') NOT NULL)";
        assert_eq!(
            elems_in_query(q, "c_enum", ColumnType::Enum).unwrap(),
            vec!["small", "a,b", "x\"y", "中", "it's"]
        );
        assert_eq!(
            elems_in_query(q, "c_set", ColumnType::Set).unwrap(),
            vec!["a", "b'c"]
        );
        assert_eq!(elems_in_query(q, "enum", ColumnType::Enum), None);
        assert_eq!(elems_in_query(q, "c_set", ColumnType::Enum), None);
        assert_eq!(
            elems_in_query(
                "ALTER TABLE t ADD COLUMN e enum('x')",
                "e",
                ColumnType::Enum
            )
            .unwrap(),
            vec!["x"]
        );
        assert_eq!(
            elems_in_query("CREATE TABLE t (e ENUM())", "e", ColumnType::Enum),
            None
        );
    }
}
