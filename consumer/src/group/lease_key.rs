//! What a lease covers: one table (all its partitions and dispatchers) or one schema's
//! database-level DDL, and the text it is stored under in `cdc_consumer_leases.table_key`.
//!
//! The text is a JSON array, `["schema","table"]` for a table and `["schema"]` for a schema's
//! database-level schema files, so no schema or table name (dots, quotes, anything) can make
//! two keys collide. **Frozen**: members of different versions share the lease table; do not
//! change the text of a key.

use cdc_common::TableName;

/// The unit of work a lease covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LeaseKey {
    /// A table's schema files and data files.
    Table(TableName),
    /// A schema's database-level schema files (CREATE/DROP DATABASE).
    Schema(String),
}

impl LeaseKey {
    /// The stored text (see the module doc).
    pub fn text(&self) -> String {
        let parts: Vec<&str> = match self {
            LeaseKey::Table(t) => vec![&t.schema, &t.table],
            LeaseKey::Schema(s) => vec![s],
        };
        serde_json::to_string(&parts).unwrap_or_default()
    }

    /// Parses a stored text; `None` for a text no member writes.
    pub fn parse(text: &str) -> Option<LeaseKey> {
        let parts: Vec<String> = serde_json::from_str(text).ok()?;
        match parts.as_slice() {
            [s] => Some(LeaseKey::Schema(s.clone())),
            [s, t] => Some(LeaseKey::Table(TableName::new(s, t))),
            _ => None,
        }
    }
}

impl std::fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseKey::Table(t) => write!(f, "table `{t}`"),
            LeaseKey::Schema(s) => write!(f, "schema `{s}` (database-level DDL)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_is_frozen_and_round_trips() {
        let t = LeaseKey::Table(TableName::new("a.b", "c\"d"));
        assert_eq!(t.text(), r#"["a.b","c\"d"]"#);
        assert_eq!(LeaseKey::parse(&t.text()), Some(t));
        let s = LeaseKey::Schema("a".into());
        assert_eq!(s.text(), r#"["a"]"#);
        assert_eq!(LeaseKey::parse(&s.text()), Some(s));
        assert_eq!(LeaseKey::parse("a.b"), None);
        // A schema with a dot never reads as a table.
        assert_ne!(
            LeaseKey::Table(TableName::new("a", "b")).text(),
            LeaseKey::Schema("a.b".into()).text()
        );
    }
}
