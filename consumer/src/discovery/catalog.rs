//! The catalog: everything discovery has learnt about storage, table by table and version by
//! version, and the one thing replay needs from it beyond that (a data file's path).
//!
//! ```text
//! Catalog ─ checkpoint, discovered_through
//!   ├─ tables:    TableName -> TableEntry ─ complete_below
//!   │                └─ versions: Ts -> VersionEntry ─ schema (SchemaEntry), is_final
//!   │                                 └─ dirs: DataDir -> DirEntry ─ indexes, closed
//!   └─ databases: schema -> Ts -> SchemaEntry (database-level schema files)
//! ```
//!
//! Invariants: nothing is removed from the catalog within a process (an entry once seen stays;
//! `is_final`, `closed` and `complete_below` only move forward); what each promises is stated in
//! [`crate::discovery`]'s module doc. Only a discovery round writes it; a round's replay reads
//! it through a shared handle (`Discovery::shared_catalog`), which a later write copies first
//! (`Arc::make_mut`).

use crate::error::Result;
use cdc_common::layout::{DataDir, DataFile, LayoutConfig};
use cdc_common::schema_file::SchemaFile;
use cdc_common::{TableName, Ts};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A schema file read from storage.
#[derive(Clone, Debug)]
pub struct SchemaEntry {
    /// Its path.
    pub path: String,
    /// Its content.
    pub file: Arc<SchemaFile>,
    /// For RENAME TABLE (Type 14): the table this one was renamed from.
    pub rename_from: Option<TableName>,
}

/// A data directory and its writers' newest indexed files.
#[derive(Clone, Debug, Default)]
pub struct DirEntry {
    /// Newest indexed file index per dispatcher (`None` = the single writer `CDC.index`).
    pub indexes: BTreeMap<Option<String>, u64>,
    /// No new file can appear in it (see the module doc).
    pub closed: bool,
}

/// One version of a table.
#[derive(Clone, Debug, Default)]
pub struct VersionEntry {
    /// Its schema file (absent when data directories were found without one: a warning).
    pub schema: Option<SchemaEntry>,
    /// Its data directories.
    pub dirs: BTreeMap<DataDir, DirEntry>,
    /// A newer version exists and this one was listed after it appeared.
    pub is_final: bool,
}

/// What discovery knows of one table.
#[derive(Clone, Debug, Default)]
pub struct TableEntry {
    /// Versions by table version.
    pub versions: BTreeMap<Ts, VersionEntry>,
    /// Every DML of this table with a commit ts below this is indexed in `versions` (a barrier
    /// at this ts that affects the table was seen before the index files were read).
    pub complete_below: Ts,
}

/// Everything discovery has learnt.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// The sink's checkpoint-ts (`None` before the `metadata` file exists): the newest read,
    /// as soon as it is read.
    pub checkpoint: Option<Ts>,
    /// The checkpoint-ts of the last discovery round that completed (`None`: none yet): every
    /// file at or below it is in the catalog. Below `checkpoint` only while a round that read
    /// a newer one has not completed (a failed round), and then the figures stay below it
    /// ([`Catalog::complete_through`]).
    pub listed_through: Option<Ts>,
    /// Tables.
    pub tables: BTreeMap<TableName, TableEntry>,
    /// Database-level schema files by schema and version.
    pub databases: BTreeMap<String, BTreeMap<Ts, SchemaEntry>>,
    /// With a listing lag: every data file with rows at or below this ts is in the catalog
    /// (a checkpoint read a lag before the last listings, and below any directory still
    /// waiting to settle). `None`: listings are trusted, everything up to the checkpoint is.
    pub discovered_through: Option<Ts>,
    /// With a listing lag: every schema file at or below this ts was in the last round's
    /// schema listings (phase A started a lag after reading a checkpoint this high). `None`:
    /// listings are trusted, every schema file up to the checkpoint is known.
    pub schemas_through: Option<Ts>,
    /// Renames away from a name: for each source table, the (version, renaming table) of every
    /// RENAME TABLE schema file that names it as the source. A name's later DDL waits for the
    /// renames away from it below that DDL ([`crate::ordering`], rule 3 (f)).
    pub renamed_away: BTreeMap<TableName, BTreeSet<(Ts, TableName)>>,
}

impl Catalog {
    /// The tables of `schema`, in name order: names sort by schema first, so they are one
    /// range of [`Catalog::tables`] (no walk of the other schemas' tables).
    pub fn tables_of<'a>(
        &'a self,
        schema: &'a str,
    ) -> impl Iterator<Item = (&'a TableName, &'a TableEntry)> + 'a {
        self.tables
            .range(TableName::new(schema, "")..)
            .take_while(move |(n, _)| n.schema == schema)
    }

    /// [`Catalog::tables_of`], to change them.
    pub fn tables_of_mut<'a>(
        &'a mut self,
        schema: &'a str,
    ) -> impl Iterator<Item = (&'a TableName, &'a mut TableEntry)> + 'a {
        self.tables
            .range_mut(TableName::new(schema, "")..)
            .take_while(move |(n, _)| n.schema == schema)
    }

    /// The ts up to which the catalog is complete and rows may be reported applied: the
    /// checkpoint, or less while listings lag (see [`Catalog::discovered_through`]) or while
    /// the round that read it has not completed ([`Catalog::listed_through`]).
    pub fn complete_through(&self) -> Ts {
        let c = self
            .checkpoint
            .unwrap_or(Ts::ZERO)
            .min(self.listed_through.unwrap_or(Ts::ZERO));
        self.discovered_through.map_or(c, |d| d.min(c))
    }

    /// The path of a data file.
    pub fn data_file_path(
        cfg: &LayoutConfig,
        dir: &DataDir,
        dispatcher: &Option<String>,
        index: u64,
    ) -> Result<String> {
        Ok(DataFile {
            dir: dir.clone(),
            dispatcher_id: dispatcher.clone(),
            index,
        }
        .build(cfg)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schemas_tables_are_its_own_and_no_neighbours() {
        let mut cat = Catalog::default();
        for (s, t) in [
            ("d", "z"),
            ("da", "a"),
            ("db", ""),
            ("db", "a"),
            ("db", "zz"),
            ("db.", "a"),
            ("db1", "a"),
            ("dc", "a"),
        ] {
            cat.tables
                .insert(TableName::new(s, t), TableEntry::default());
        }
        let names = |schema| -> Vec<String> {
            cat.tables_of(schema)
                .map(|(n, _)| format!("{}/{}", n.schema, n.table))
                .collect()
        };
        assert_eq!(names("db"), ["db/", "db/a", "db/zz"]);
        assert_eq!(names("d"), ["d/z"]);
        assert_eq!(names("dc"), ["dc/a"]);
        assert!(names("b").is_empty());
    }
}
