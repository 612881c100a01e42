//! Relations -> table definitions and their versions.
//!
//! pgoutput describes a table with a Relation message before its first change in every
//! decoding session and again after its shape changed. Each one is turned into a
//! [`TableDef`] (columns through `types.rs`; primary key = the replica identity's key
//! columns, or the real primary key for REPLICA IDENTITY FULL, which flags every column) and
//! compared with the definition this process knows:
//!
//! | known? | same definition | outcome |
//! |--------|-----------------|---------|
//! | yes | yes | [`Observed::Unchanged`] (pgoutput repeats Relation messages) |
//! | yes | no  | [`Observed::Altered`]: a new table version at the transaction's ts and a DDL whose query is synthesized (ADD / DROP / MODIFY / RENAME COLUMN, RENAME TABLE) |
//! | no, this run took the snapshot | - | [`Observed::Created`]: a table created after capture started, with a synthesized CREATE TABLE |
//! | no, this run resumed | - | [`Observed::Restored`]: no DDL; the sink reuses the stored version when the definition is unchanged, or writes the new definition's schema file |
//!
//! Synthesized queries start with [`SYNTHESIZED_MARK`]: they describe the definitions'
//! difference in MySQL syntax, not the statement that ran upstream (pgoutput does not carry
//! DDL). Consumers read the definitions; the query only pairs column renames.

use crate::catalog::{self, Catalog};
use crate::error::Result;
use crate::pgoutput::Relation;
use crate::types::{self, PgType};
use cdc_common::{ColumnDef, DdlEvent, DdlKind, TableDef, TableName, Ts};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::Client;

/// Prefix of every query text capture makes up.
pub const SYNTHESIZED_MARK: &str =
    "/* synthesized by cdc-capture from a pgoutput Relation message */";

/// One table as the stream currently describes it.
#[derive(Clone, Debug)]
pub struct Rel {
    /// The sink dispatcher of this table (`rel<oid>`).
    pub dispatcher: String,
    /// The current table version.
    pub def: Arc<TableDef>,
    /// How each column's values are read.
    pub types: Vec<PgType>,
    /// The replica identity (`d`, `f`, `i`, `n`).
    pub replica_identity: u8,
}

/// What a Relation message changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// Nothing.
    Unchanged,
    /// First seen after a restart: no DDL.
    Restored,
    /// A new table: write this CREATE TABLE.
    Created(DdlEvent),
    /// A changed table: write this DDL.
    Altered(DdlEvent),
}

/// The relations of one capture run.
pub struct Relations {
    rels: HashMap<u32, Rel>,
    catalog: Catalog,
    /// True when this run took the snapshot (every table it has not seen is new).
    fresh: bool,
}

impl Relations {
    /// An empty map; `fresh` says whether this run took the initial snapshot.
    pub fn new(fresh: bool) -> Relations {
        Relations {
            rels: HashMap::new(),
            catalog: Catalog::default(),
            fresh,
        }
    }

    /// The table of an oid, once its Relation was observed.
    pub fn get(&self, oid: u32) -> Option<&Rel> {
        self.rels.get(&oid)
    }

    /// Every known table.
    pub fn all(&self) -> impl Iterator<Item = &Rel> {
        self.rels.values()
    }

    /// Takes in a Relation (from the stream, or read from the catalog for the snapshot) whose
    /// changes commit at `ts`.
    pub async fn observe(&mut self, client: &Client, rel: Relation, ts: Ts) -> Result<Observed> {
        let (def, types) = self.definition(client, &rel, ts).await?;
        let entry = Rel {
            dispatcher: format!("rel{}", rel.oid),
            def: Arc::new(def),
            types,
            replica_identity: rel.replica_identity,
        };
        let outcome = match self.rels.get(&rel.oid) {
            Some(known) if same_definition(&known.def, &entry.def) => {
                return Ok(Observed::Unchanged)
            }
            Some(known) => Observed::Altered(alter_ddl(&known.def, &entry.def)),
            None if self.fresh => Observed::Created(create_ddl(&entry.def)),
            None => Observed::Restored,
        };
        self.rels.insert(rel.oid, entry);
        Ok(outcome)
    }

    /// A TRUNCATE at `ts`: a new version of the same definition, and its DDL.
    pub fn truncate(&mut self, oid: u32, ts: Ts) -> Option<DdlEvent> {
        let rel = self.rels.get_mut(&oid)?;
        let mut def = (*rel.def).clone();
        def.version = ts;
        rel.def = Arc::new(def.clone());
        Some(DdlEvent {
            commit_ts: ts,
            query: format!("{SYNTHESIZED_MARK} TRUNCATE TABLE {}", quoted(&def.name())),
            kind: DdlKind::TruncateTable,
            schema: def.schema.clone(),
            tables: vec![def],
            prev_tables: vec![],
        })
    }

    async fn definition(
        &mut self,
        client: &Client,
        rel: &Relation,
        ts: Ts,
    ) -> Result<(TableDef, Vec<PgType>)> {
        // FULL flags every column as key; the downstream key is the real primary key.
        let full_pk = if rel.replica_identity == b'f' {
            Some(catalog::primary_key(client, rel.oid).await?)
        } else {
            None
        };
        let mut columns = Vec::with_capacity(rel.columns.len());
        let mut kinds = Vec::with_capacity(rel.columns.len());
        for c in &rel.columns {
            let ty = self.catalog.pg_type(client, c.type_oid).await?;
            let mut col = types::column_def(&c.name, ty, c.typmod);
            let key = match &full_pk {
                Some(pk) => pk.contains(&c.name),
                None => c.key,
            };
            if key {
                col = col.pk();
            }
            columns.push(col);
            kinds.push(ty);
        }
        let def = TableDef {
            schema: rel.namespace.clone(),
            table: rel.name.clone(),
            table_id: i64::from(rel.oid),
            version: ts,
            columns,
        };
        Ok((def, kinds))
    }
}

fn same_definition(a: &TableDef, b: &TableDef) -> bool {
    a.schema == b.schema && a.table == b.table && a.columns == b.columns
}

fn quoted(name: &TableName) -> String {
    format!("{}.{}", ident(&name.schema), ident(&name.table))
}

fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn column_text(c: &ColumnDef) -> String {
    let null = if c.nullable { "" } else { " NOT NULL" };
    format!("{} {}{null}", ident(&c.name), c.sql_type())
}

/// CREATE TABLE of a definition.
pub fn create_ddl(def: &TableDef) -> DdlEvent {
    let mut parts: Vec<String> = def.columns.iter().map(column_text).collect();
    let pk: Vec<String> = def
        .pk_indexes()
        .iter()
        .map(|&i| ident(&def.columns[i].name))
        .collect();
    if !pk.is_empty() {
        parts.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    }
    DdlEvent {
        commit_ts: def.version,
        query: format!(
            "{SYNTHESIZED_MARK} CREATE TABLE {} ({})",
            quoted(&def.name()),
            parts.join(", ")
        ),
        kind: DdlKind::CreateTable,
        schema: def.schema.clone(),
        tables: vec![def.clone()],
        prev_tables: vec![],
    }
}

/// The DDL that turns `prev` into `next` (same oid), at `next.version`.
pub fn alter_ddl(prev: &TableDef, next: &TableDef) -> DdlEvent {
    let base = DdlEvent {
        commit_ts: next.version,
        query: String::new(),
        kind: DdlKind::Other,
        schema: next.schema.clone(),
        tables: vec![next.clone()],
        prev_tables: vec![],
    };
    if prev.schema != next.schema || prev.table != next.table {
        return DdlEvent {
            query: format!(
                "{SYNTHESIZED_MARK} RENAME TABLE {} TO {}",
                quoted(&prev.name()),
                quoted(&next.name())
            ),
            kind: DdlKind::RenameTable,
            prev_tables: vec![prev.name()],
            ..base
        };
    }
    let had = |name: &str| prev.columns.iter().find(|c| c.name == name);
    let has = |name: &str| next.columns.iter().any(|c| c.name == name);
    let added: Vec<&ColumnDef> = next
        .columns
        .iter()
        .filter(|c| had(&c.name).is_none())
        .collect();
    let dropped: Vec<&ColumnDef> = prev.columns.iter().filter(|c| !has(&c.name)).collect();
    let modified: Vec<&ColumnDef> = next
        .columns
        .iter()
        .filter(|c| had(&c.name).is_some_and(|p| p != *c))
        .collect();
    let table = quoted(&next.name());
    // One column renamed in place: the same position and definition under a new name.
    if let ([a], [d], []) = (&added[..], &dropped[..], &modified[..]) {
        let same_place = prev.column_index(&d.name) == next.column_index(&a.name);
        let same_def = ColumnDef {
            name: a.name.clone(),
            ..(*d).clone()
        } == **a;
        if same_place && same_def {
            return DdlEvent {
                query: format!(
                    "{SYNTHESIZED_MARK} ALTER TABLE {table} RENAME COLUMN {} TO {}",
                    ident(&d.name),
                    ident(&a.name)
                ),
                kind: DdlKind::RenameColumn {
                    from: d.name.clone(),
                    to: a.name.clone(),
                },
                ..base
            };
        }
    }
    let mut clauses: Vec<String> = Vec::new();
    clauses.extend(
        added
            .iter()
            .map(|c| format!("ADD COLUMN {}", column_text(c))),
    );
    clauses.extend(
        dropped
            .iter()
            .map(|c| format!("DROP COLUMN {}", ident(&c.name))),
    );
    clauses.extend(
        modified
            .iter()
            .map(|c| format!("MODIFY COLUMN {}", column_text(c))),
    );
    let kind = match (added.is_empty(), dropped.is_empty(), modified.is_empty()) {
        (false, true, true) => DdlKind::AddColumn,
        (true, false, true) => DdlKind::DropColumn,
        (true, true, false) => DdlKind::ModifyColumn,
        _ => DdlKind::Other,
    };
    DdlEvent {
        query: format!(
            "{SYNTHESIZED_MARK} ALTER TABLE {table} {}",
            clauses.join(", ")
        ),
        kind,
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::ColumnType;

    fn def(version: u64, cols: Vec<ColumnDef>) -> TableDef {
        TableDef {
            schema: "public".into(),
            table: "t".into(),
            table_id: 1,
            version: Ts(version),
            columns: cols,
        }
    }

    fn id() -> ColumnDef {
        ColumnDef::new("id", ColumnType::Int).pk()
    }

    #[test]
    fn added_and_dropped_columns_are_marked_ddls() {
        let a = def(1, vec![id(), ColumnDef::new("x", ColumnType::LongText)]);
        let b = def(
            2,
            vec![
                id(),
                ColumnDef::new("x", ColumnType::LongText),
                ColumnDef::new("y", ColumnType::Date),
            ],
        );
        let ddl = alter_ddl(&a, &b);
        assert_eq!(ddl.kind, DdlKind::AddColumn);
        assert_eq!(ddl.commit_ts, Ts(2));
        assert!(ddl.query.starts_with(SYNTHESIZED_MARK));
        assert!(
            ddl.query
                .ends_with("ALTER TABLE `public`.`t` ADD COLUMN `y` date"),
            "{}",
            ddl.query
        );
        let c = def(3, vec![id(), ColumnDef::new("y", ColumnType::Date)]);
        let ddl = alter_ddl(&b, &c);
        assert_eq!(ddl.kind, DdlKind::DropColumn);
        assert!(ddl.query.ends_with("DROP COLUMN `x`"));
    }

    #[test]
    fn a_rename_in_place_is_a_rename_column() {
        let a = def(1, vec![id(), ColumnDef::new("x", ColumnType::LongText)]);
        let b = def(2, vec![id(), ColumnDef::new("z", ColumnType::LongText)]);
        let ddl = alter_ddl(&a, &b);
        assert_eq!(
            ddl.kind,
            DdlKind::RenameColumn {
                from: "x".into(),
                to: "z".into()
            }
        );
        assert!(ddl.query.ends_with("RENAME COLUMN `x` TO `z`"));
    }

    #[test]
    fn create_names_the_key() {
        let d = def(5, vec![id(), ColumnDef::new("v", ColumnType::Json)]);
        let ddl = create_ddl(&d);
        assert_eq!(ddl.kind, DdlKind::CreateTable);
        assert!(
            ddl.query
                .ends_with("(`id` int NOT NULL, `v` json, PRIMARY KEY (`id`))"),
            "{}",
            ddl.query
        );
    }
}
