//! Schema files: the structured table definition of one table version (or a database-level
//! record), written as exact JSON, plus the checksum that names the file.
//!
//! # Frozen format
//!
//! WARNING: the byte layout below is a storage contract shared with TiCDC. Do not add, remove,
//! rename or reorder fields; golden and checksum tests fail when a byte changes.
//!
//! ```text
//! {
//!     "Table": "table1",              "" for a database-level file
//!     "Schema": "schema1",
//!     "Version": 1,                   format version, always 1 in files
//!     "TableVersion": 100,            commit ts of the DDL
//!     "Query": "CREATE TABLE ...",
//!     "Type": 3,                      TiDB ActionType of the DDL
//!     "TableColumns": [               [] when none
//!         {
//!             "ColumnName": "Id",
//!             "ColumnType": "INT",            upper case, " UNSIGNED" appended when unsigned
//!             "ColumnDefault": 10,            omitted when none (JSON number or string)
//!             "ColumnPrecision": "11",        omitted when none
//!             "ColumnScale": "2",             omitted when none
//!             "ColumnNullable": "false",      only when NOT NULL
//!             "ColumnIsPk": "true",           only for primary-key columns
//!             "ColumnElems": ["a", "b"]       only for ENUM/SET
//!         }
//!     ],
//!     "TableColumnsTotal": 1
//! }
//! ```
//!
//! JSON is rendered as Go's `json.MarshalIndent(v, "", "    ")` renders it (4-space indent,
//! `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`...), with no trailing newline.
//!
//! **Checksum** = CRC-32 (IEEE) of the same rendering of exactly `{Table, Schema, Version: 0,
//! TableColumns sorted by name, TableColumnsTotal}` (no TableVersion, Query or Type): it
//! depends on the table's name and columns only, so re-creating a table with an identical
//! definition yields the same checksum, which is how a restarted writer reuses a version.

use crate::error::{Error, Position, Result};
use crate::event::DdlKind;
use crate::layout::SchemaFilePath;
use crate::table::{ColumnDef, ColumnType, TableDef};
use crate::ts::Ts;
use serde_json::{Map, Value as Json};

/// Format version written in the `Version` field.
pub const FORMAT_VERSION: u64 = 1;
/// Largest schema file accepted when reading (a definition of thousands of columns fits).
pub const MAX_SCHEMA_FILE_BYTES: usize = 16 * 1024 * 1024;

/// The content of one schema file.
#[derive(Clone, Debug, PartialEq)]
pub struct SchemaFile {
    /// Table name; empty for a database-level file.
    pub table: String,
    /// Database name.
    pub schema: String,
    /// Table version: commit ts of the DDL.
    pub table_version: Ts,
    /// DDL text.
    pub query: String,
    /// TiDB ActionType of the DDL.
    pub ddl_type: u32,
    /// Columns in table order.
    pub columns: Vec<ColumnDef>,
}

impl SchemaFile {
    /// The table-level file for a table definition produced by a DDL.
    pub fn for_table(def: &TableDef, query: &str, kind: &DdlKind) -> SchemaFile {
        SchemaFile {
            table: def.table.clone(),
            schema: def.schema.clone(),
            table_version: def.version,
            query: query.to_string(),
            ddl_type: kind.action_type(),
            columns: def.columns.clone(),
        }
    }

    /// A database-level file (schema DDLs).
    pub fn for_database(schema: &str, version: Ts, query: &str, kind: &DdlKind) -> SchemaFile {
        SchemaFile {
            table: String::new(),
            schema: schema.to_string(),
            table_version: version,
            query: query.to_string(),
            ddl_type: kind.action_type(),
            columns: Vec::new(),
        }
    }

    /// True for a database-level file.
    pub fn is_database_level(&self) -> bool {
        self.table.is_empty()
    }

    /// The table definition this file describes (table id 0: ids are not stored).
    pub fn to_table_def(&self) -> TableDef {
        TableDef {
            schema: self.schema.clone(),
            table: self.table.clone(),
            table_id: 0,
            version: self.table_version,
            columns: self.columns.clone(),
        }
    }

    /// The exact file content.
    pub fn to_json(&self) -> String {
        render(self, false)
    }

    /// The checksum in the file name.
    pub fn checksum(&self) -> u32 {
        crc32fast::hash(render(self, true).as_bytes())
    }

    /// The path of this file.
    pub fn path(&self) -> SchemaFilePath {
        SchemaFilePath {
            schema: self.schema.clone(),
            table: (!self.is_database_level()).then(|| self.table.clone()),
            version: self.table_version,
            checksum: self.checksum(),
        }
    }

    /// Parses file content; `object` names the file in errors.
    pub fn parse(object: &str, bytes: &[u8]) -> Result<SchemaFile> {
        let bad = |reason: String| Error::corrupt(object, Position::None, reason);
        if bytes.len() > MAX_SCHEMA_FILE_BYTES {
            return Err(bad(format!(
                "schema file of {} bytes exceeds {MAX_SCHEMA_FILE_BYTES}",
                bytes.len()
            )));
        }
        let root: Json = serde_json::from_slice(bytes).map_err(|e| {
            Error::corrupt(
                object,
                Position::Line(e.line() as u64),
                format!("invalid JSON: {e}"),
            )
        })?;
        let obj = root
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        let str_field = |name: &str| -> Result<String> {
            match obj.get(name) {
                Some(Json::String(s)) => Ok(s.clone()),
                Some(_) => Err(bad(format!("field `{name}` is not a string"))),
                None => Err(bad(format!("field `{name}` is missing"))),
            }
        };
        let num_field = |name: &str| -> Result<u64> {
            obj.get(name)
                .ok_or_else(|| bad(format!("field `{name}` is missing")))?
                .as_u64()
                .ok_or_else(|| bad(format!("field `{name}` is not a non-negative integer")))
        };
        let version = num_field("Version")?;
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "format Version {version} is not supported (expected {FORMAT_VERSION})"
            )));
        }
        let ddl_type = u32::try_from(num_field("Type")?)
            .map_err(|_| bad("field `Type` is out of range".into()))?;
        let columns = match obj.get("TableColumns") {
            Some(Json::Array(cols)) => cols
                .iter()
                .enumerate()
                .map(|(i, c)| parse_column(c).map_err(|r| bad(format!("column {i}: {r}"))))
                .collect::<Result<Vec<_>>>()?,
            Some(Json::Null) | None => Vec::new(),
            Some(_) => return Err(bad("field `TableColumns` is not an array".into())),
        };
        let total = num_field("TableColumnsTotal")?;
        if total != columns.len() as u64 {
            return Err(bad(format!(
                "TableColumnsTotal is {total} but {} columns are listed",
                columns.len()
            )));
        }
        Ok(SchemaFile {
            table: str_field("Table")?,
            schema: str_field("Schema")?,
            table_version: Ts(num_field("TableVersion")?),
            query: str_field("Query")?,
            ddl_type,
            columns,
        })
    }

    /// Parses a file and checks that its content matches the checksum and version in its path.
    pub fn parse_verified(path: &str, bytes: &[u8]) -> Result<SchemaFile> {
        let p = SchemaFilePath::parse(path)?;
        let f = SchemaFile::parse(path, bytes)?;
        let bad = |reason: String| Error::corrupt(path, Position::None, reason);
        if f.schema != p.schema || f.table != p.table.clone().unwrap_or_default() {
            // Names from the content are escaped: they may hold NUL, newlines or `/`.
            return Err(bad(format!(
                "file describes `{}`.`{}`, its path another table",
                f.schema.escape_debug(),
                f.table.escape_debug()
            )));
        }
        if f.table_version != p.version {
            return Err(bad(format!(
                "TableVersion {} does not match the path's {}",
                f.table_version, p.version
            )));
        }
        let sum = f.checksum();
        if sum != p.checksum {
            return Err(bad(format!(
                "checksum of content is {sum:010}, path says {:010}",
                p.checksum
            )));
        }
        Ok(f)
    }
}

fn parse_column(c: &Json) -> std::result::Result<ColumnDef, String> {
    let o = c.as_object().ok_or("expected an object")?;
    let s = |name: &str| -> std::result::Result<Option<&str>, String> {
        match o.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{name}` is not a string")),
        }
    };
    let name = s("ColumnName")?
        .ok_or("`ColumnName` is missing")?
        .to_string();
    let ty_text = s("ColumnType")?.ok_or("`ColumnType` is missing")?;
    let (ty_base, unsigned) = match ty_text.strip_suffix(" UNSIGNED") {
        Some(b) => (b, true),
        None => (ty_text, false),
    };
    let ty: ColumnType = ty_base.parse()?;
    let num = |name: &str| -> std::result::Result<Option<u32>, String> {
        s(name)?
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| format!("`{name}` value `{v}` is not a number"))
            })
            .transpose()
    };
    let flag =
        |name: &str, set: &str| -> std::result::Result<bool, String> { Ok(s(name)? == Some(set)) };
    let elems = match o.get("ColumnElems") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(a)) => a
            .iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "`ColumnElems` holds a non-string".to_string())
            })
            .collect::<std::result::Result<_, _>>()?,
        Some(_) => return Err("`ColumnElems` is not an array".into()),
    };
    Ok(ColumnDef {
        name,
        ty,
        unsigned,
        default: o.get("ColumnDefault").filter(|v| !v.is_null()).cloned(),
        precision: num("ColumnPrecision")?,
        scale: num("ColumnScale")?,
        nullable: !flag("ColumnNullable", "false")?,
        primary_key: flag("ColumnIsPk", "true")?,
        elems,
    })
}

fn column_json(c: &ColumnDef) -> Json {
    let mut m = Map::new();
    m.insert("ColumnName".into(), Json::String(c.name.clone()));
    let ty = if c.unsigned {
        format!("{} UNSIGNED", c.ty.name())
    } else {
        c.ty.name().to_string()
    };
    m.insert("ColumnType".into(), Json::String(ty));
    if let Some(d) = &c.default {
        m.insert("ColumnDefault".into(), d.clone());
    }
    if let Some(p) = c.precision {
        m.insert("ColumnPrecision".into(), Json::String(p.to_string()));
    }
    if let Some(s) = c.scale {
        m.insert("ColumnScale".into(), Json::String(s.to_string()));
    }
    if !c.nullable {
        m.insert("ColumnNullable".into(), Json::String("false".into()));
    }
    if c.primary_key {
        m.insert("ColumnIsPk".into(), Json::String("true".into()));
    }
    if !c.elems.is_empty() {
        m.insert(
            "ColumnElems".into(),
            Json::Array(c.elems.iter().cloned().map(Json::String).collect()),
        );
    }
    Json::Object(m)
}

fn render(f: &SchemaFile, for_checksum: bool) -> String {
    let mut cols: Vec<&ColumnDef> = f.columns.iter().collect();
    if for_checksum {
        cols.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let mut m = Map::new();
    m.insert("Table".into(), Json::String(f.table.clone()));
    m.insert("Schema".into(), Json::String(f.schema.clone()));
    if for_checksum {
        m.insert("Version".into(), Json::from(0));
    } else {
        m.insert("Version".into(), Json::from(FORMAT_VERSION));
        m.insert("TableVersion".into(), Json::from(f.table_version.0));
        m.insert("Query".into(), Json::String(f.query.clone()));
        m.insert("Type".into(), Json::from(f.ddl_type));
    }
    m.insert(
        "TableColumns".into(),
        Json::Array(cols.into_iter().map(column_json).collect()),
    );
    m.insert("TableColumnsTotal".into(), Json::from(f.columns.len()));
    let mut out = String::with_capacity(256 + 160 * f.columns.len());
    write_go_json(&Json::Object(m), 0, &mut out);
    out
}

/// Renders JSON as Go's `json.MarshalIndent(v, "", "    ")` does.
fn write_go_json(v: &Json, depth: usize, out: &mut String) {
    let indent = |out: &mut String, d: usize| {
        out.push('\n');
        for _ in 0..d {
            out.push_str("    ");
        }
    };
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(&n.to_string()),
        Json::String(s) => write_go_string(s, out),
        Json::Array(a) if a.is_empty() => out.push_str("[]"),
        Json::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_go_json(e, depth + 1, out);
            }
            indent(out, depth);
            out.push(']');
        }
        Json::Object(o) if o.is_empty() => out.push_str("{}"),
        Json::Object(o) => {
            out.push('{');
            for (i, (k, e)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_go_string(k, out);
                out.push_str(": ");
                write_go_json(e, depth + 1, out);
            }
            indent(out, depth);
            out.push('}');
        }
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn brief_table() -> SchemaFile {
        let mut id = ColumnDef::new("Id", ColumnType::Int)
            .pk()
            .with_precision(Some(11), None);
        id.default = Some(json!(10));
        let mut last = ColumnDef::new("LastName", ColumnType::VarChar)
            .not_null()
            .with_precision(Some(128), None);
        last.default = Some(json!("Default LastName"));
        let mut first =
            ColumnDef::new("FirstName", ColumnType::VarChar).with_precision(Some(64), None);
        first.default = Some(json!("Default FirstName"));
        let mut birthday = ColumnDef::new("Birthday", ColumnType::DateTime);
        birthday.default = Some(json!(12345678));
        SchemaFile {
            table: "table1".into(),
            schema: "schema1".into(),
            table_version: Ts(100),
            query: String::new(),
            ddl_type: 0,
            columns: vec![id, last, first, birthday],
        }
    }

    #[test]
    fn table_checksum_vector_from_the_brief() {
        let f = brief_table();
        assert_eq!(f.checksum(), 3_752_767_265);
        assert_eq!(
            f.path().build().unwrap(),
            "schema1/table1/meta/schema_100_3752767265.json"
        );
    }

    #[test]
    fn database_checksum_vector_from_the_brief() {
        let f = SchemaFile::for_database("schema1", Ts(100), "", &DdlKind::Other);
        assert_eq!(f.checksum(), 3_233_644_819);
        assert_eq!(
            f.path().build().unwrap(),
            "schema1/meta/schema_100_3233644819.json"
        );
    }

    #[test]
    fn exact_json_rendering() {
        let mut f = brief_table();
        f.query = "CREATE TABLE t (<&>)".into();
        f.ddl_type = 3;
        f.columns.truncate(1);
        let expected = r#"{
    "Table": "table1",
    "Schema": "schema1",
    "Version": 1,
    "TableVersion": 100,
    "Query": "CREATE TABLE t (\u003c\u0026\u003e)",
    "Type": 3,
    "TableColumns": [
        {
            "ColumnName": "Id",
            "ColumnType": "INT",
            "ColumnDefault": 10,
            "ColumnPrecision": "11",
            "ColumnNullable": "false",
            "ColumnIsPk": "true"
        }
    ],
    "TableColumnsTotal": 1
}"#;
        assert_eq!(f.to_json(), expected);
        let db = SchemaFile::for_database("d", Ts(5), "CREATE DATABASE d", &DdlKind::CreateSchema);
        assert!(db.to_json().contains("\"TableColumns\": [],"));
    }

    #[test]
    fn json_round_trips_with_every_field() {
        let mut f = brief_table();
        f.columns
            .push(ColumnDef::new("u", ColumnType::BigInt).unsigned());
        f.columns
            .push(ColumnDef::new("d", ColumnType::Decimal).with_precision(Some(10), Some(2)));
        f.columns
            .push(ColumnDef::new("e", ColumnType::Enum).with_elems(["a", "b\"c"]));
        let parsed = SchemaFile::parse("x", f.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, f);
        let path = f.path().build().unwrap();
        assert_eq!(
            SchemaFile::parse_verified(&path, f.to_json().as_bytes()).unwrap(),
            f
        );
    }

    #[test]
    fn rejects_bad_files_naming_them() {
        let f = brief_table();
        let path = f.path().build().unwrap();
        let wrong_sum = path.replace("3752767265", "0000000001");
        assert!(matches!(
            SchemaFile::parse_verified(&wrong_sum, f.to_json().as_bytes()),
            Err(Error::Corrupt { ref object, ref reason, .. }) if object == &wrong_sum && reason.contains("checksum")
        ));
        assert!(matches!(
            SchemaFile::parse("p", b"{not json"),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            SchemaFile::parse("p", b"[]"),
            Err(Error::Corrupt { .. })
        ));
        let mut j = f.to_json();
        j = j.replace("\"TableColumnsTotal\": 4", "\"TableColumnsTotal\": 5");
        assert!(matches!(
            SchemaFile::parse("p", j.as_bytes()),
            Err(Error::Corrupt { .. })
        ));
        let j = f.to_json().replace("\"INT\"", "\"GEOMETRY\"");
        assert!(
            matches!(SchemaFile::parse("p", j.as_bytes()), Err(Error::Corrupt { ref reason, .. }) if reason.contains("GEOMETRY"))
        );
    }
}
