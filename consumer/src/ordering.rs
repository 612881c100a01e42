//! Ordering: which file or DDL may be applied next.
//!
//! Rules, per table (a *stream* is one writer of a table: its partition and dispatcher):
//!
//! 1. A table's schema versions are applied in ts order. The *current* version is the one in
//!    the table's `#ddl` progress row.
//! 2. Within the current version, each stream's files are applied in `(date, index)` order, up
//!    to the newest indexed file; files at or below the stream's progress are skipped. Once a
//!    stream applied a file of a later date directory, files of earlier ones are never read
//!    again. That rests on the writer: a stream's index entry in a later date directory is put
//!    only after its entries in earlier ones (`docs/format.md`, invariant 6). A restarted
//!    writer's copy that lands in an earlier date than the stream's position is skipped
//!    safely when dates follow the commit ts (this sink): with commit ts its rows are at or
//!    below the stream's commit ts; without, the copy's rows of the later dates follow it
//!    whole, so each key still ends at its last change. Dates from writers' wall clocks that
//!    disagree (TiCDC nodes with skewed clocks) break this; not handled.
//! 3. A new version is a **barrier**: its DDL is applied only when (a) no file of the current
//!    version is pending, (b) discovery has confirmed that every DML below it is indexed
//!    ([`TableEntry::complete_below`]), (c) its ts is at or below the checkpoint-ts, (d) every
//!    database-level DDL of the schema at or below it is applied, (e) for RENAME TABLE, the
//!    source table reached the rename's ts by the same rules, and (f) every RENAME TABLE that
//!    moves this name away (another table's schema file naming it as the source) below the
//!    barrier's ts is applied: a table renamed away and created again under its old name
//!    (`RENAME TABLE t TO t_old` at 10, `CREATE TABLE t` at 20) gets its new table only after
//!    the old one moved, never a `CREATE TABLE IF NOT EXISTS` that finds the old one.
//! 4. A database-level DDL (create/drop schema) at `V` waits until every table of the schema
//!    reached `V` (no version below `V` pending, nothing pending in the current one).
//! 5. Rows above the checkpoint-ts are never applied (enforced by the replay loop per row, see
//!    [`crate::replay`]); a stream whose next file has such rows is *stalled* for the round.
//!    A stream *held* before an empty newest file its writer may still write is not pending
//!    for the rest of the round ([`pending_files`]): that file's rows, if any ever come, are
//!    above the checkpoint read before it was read empty, so barriers (rules 3 and 4) and
//!    renames at or below the checkpoint go ahead of them, as their ts order says.
//!
//! The planner is a pure function of the catalog and the progress record, so a restart (which
//! reloads the progress record from the downstream) resumes exactly where the last commit left.

use crate::discovery::{Catalog, SchemaEntry, TableEntry, VersionEntry};
use crate::progress::{Position, Progress, ProgressKey};
use cdc_common::layout::DataDir;
use cdc_common::{TableName, Ts};
use std::collections::HashSet;

/// One thing to apply.
#[derive(Clone, Debug)]
pub enum Step {
    /// A table's schema file (its first version, or a barrier).
    TableDdl {
        /// The table.
        table: TableName,
        /// The schema file to apply.
        entry: SchemaEntry,
        /// The table's previous version's schema file, when one was applied.
        prev: Option<SchemaEntry>,
    },
    /// A database-level schema file.
    SchemaDdl {
        /// The schema.
        schema: String,
        /// The schema file.
        entry: SchemaEntry,
    },
    /// A data file.
    File {
        /// The table.
        table: TableName,
        /// The schema file of the file's version.
        schema: SchemaEntry,
        /// The file's directory.
        dir: DataDir,
        /// The writer.
        dispatcher: Option<String>,
        /// The file index.
        index: u64,
        /// The stream's progress key.
        key: ProgressKey,
        /// The stream's position before this file (`None`: nothing applied yet).
        before: Option<Position>,
    },
}

/// Why a table cannot move on (for `/health` and the audit record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Nothing left to do.
    Idle,
    /// The next DDL is above the checkpoint-ts.
    Checkpoint(Ts),
    /// Discovery has not yet confirmed the DML below the barrier.
    Discovery(Ts),
    /// Waiting for another table or schema to reach the barrier.
    Other(String),
    /// Files remain but their streams are stalled for this round.
    Stalled,
}

/// The steps a table can take now: one per stream with a pending file of the current version,
/// or the next DDL when no file is pending. `stalled` streams are left out.
pub fn table_steps(
    cat: &Catalog,
    progress: &Progress,
    name: &TableName,
    stalled: &HashSet<ProgressKey>,
) -> (Vec<Step>, Wait) {
    let Some(t) = cat.tables.get(name) else {
        return (Vec::new(), Wait::Idle);
    };
    let checkpoint = cat.checkpoint.unwrap_or(Ts::ZERO);
    let current = progress.table_version(name);
    if let Some(cv) = current {
        let files = pending_files(t, progress, name, cv);
        if !files.is_empty() {
            let live: Vec<Step> = files
                .into_iter()
                .filter(|s| match s {
                    Step::File { key, .. } => !stalled.contains(key),
                    _ => true,
                })
                .collect();
            return if live.is_empty() {
                (Vec::new(), Wait::Stalled)
            } else {
                (live, Wait::Idle)
            };
        }
    }
    let Some((nv, ve)) = next_schema_version(t, current) else {
        return (Vec::new(), Wait::Idle);
    };
    if nv > checkpoint {
        return (Vec::new(), Wait::Checkpoint(nv));
    }
    if current.is_some() && t.complete_below < nv {
        return (Vec::new(), Wait::Discovery(nv));
    }
    if let Some(dbs) = cat.databases.get(&name.schema) {
        let applied = progress.schema_version(&name.schema);
        if let Some(v) = dbs
            .keys()
            .filter(|v| **v <= nv)
            .find(|v| applied.is_none_or(|a| a < **v))
        {
            return (
                Vec::new(),
                Wait::Other(format!("schema `{}` DDL at {v}", name.schema)),
            );
        }
    }
    let Some(entry) = ve.schema.clone() else {
        return (Vec::new(), Wait::Idle);
    };
    // A table's first DDL waits until every schema file up to its version shows in
    // discovery's listings: with lagging listings the first version seen need not be the
    // table's first (a hidden RENAME that created it, followed by a visible ADD COLUMN, would
    // otherwise create the table empty), nor need a rename's source be known yet.
    if current.is_none() && cat.schemas_through.is_some_and(|s| s < nv) {
        return (Vec::new(), Wait::Discovery(nv));
    }
    if let Some(src) = &entry.rename_from {
        if src != name && !table_reached(cat, progress, src, nv) {
            return (
                Vec::new(),
                Wait::Other(format!("rename source `{src}` to reach {nv}")),
            );
        }
    }
    if let Some((v, to)) = pending_rename_away(cat, progress, name, nv) {
        return (
            Vec::new(),
            Wait::Other(format!("the rename of `{name}` to `{to}` at {v}")),
        );
    }
    let prev = current
        .and_then(|c| t.versions.get(&c))
        .and_then(|v| v.schema.clone());
    (
        vec![Step::TableDdl {
            table: name.clone(),
            entry,
            prev,
        }],
        Wait::Idle,
    )
}

/// A RENAME TABLE below `nv` that moves `name` away and is not applied yet: its version and
/// the renaming table (rule 3 (f)).
fn pending_rename_away<'a>(
    cat: &'a Catalog,
    progress: &Progress,
    name: &TableName,
    nv: Ts,
) -> Option<(Ts, &'a TableName)> {
    cat.renamed_away.get(name)?.iter().find_map(|(v, to)| {
        let pending = *v < nv
            && to != name
            && progress
                .table_version(to)
                .is_none_or(|applied| applied < *v);
        pending.then_some((*v, to))
    })
}

/// The table's first version above `current` (its applied version; `None`: none yet) that
/// has a schema file: the version its next DDL opens.
pub fn next_schema_version(t: &TableEntry, current: Option<Ts>) -> Option<(Ts, &VersionEntry)> {
    t.versions
        .iter()
        .find(|(v, ve)| current.is_none_or(|c| **v > c) && ve.schema.is_some())
        .map(|(v, ve)| (*v, ve))
}

/// The next database-level DDL of a schema, when every table of the schema reached it.
pub fn schema_step(cat: &Catalog, progress: &Progress, schema: &str) -> (Option<Step>, Wait) {
    let Some(files) = cat.databases.get(schema) else {
        return (None, Wait::Idle);
    };
    let applied = progress.schema_version(schema);
    let Some((v, entry)) = files.iter().find(|(v, _)| applied.is_none_or(|a| **v > a)) else {
        return (None, Wait::Idle);
    };
    if *v > cat.checkpoint.unwrap_or(Ts::ZERO) {
        return (None, Wait::Checkpoint(*v));
    }
    for (name, _) in cat.tables_of(schema) {
        if !table_reached(cat, progress, name, *v) {
            return (None, Wait::Other(format!("table `{name}` to reach {v}")));
        }
    }
    (
        Some(Step::SchemaDdl {
            schema: schema.to_string(),
            entry: entry.clone(),
        }),
        Wait::Idle,
    )
}

/// True when every DDL and DML of `name` below `v` is applied (and known to be complete).
pub fn table_reached(cat: &Catalog, progress: &Progress, name: &TableName, v: Ts) -> bool {
    let Some(t) = cat.tables.get(name) else {
        return true;
    };
    let current = progress.table_version(name);
    if current.is_some_and(|c| c >= v) {
        return true;
    }
    // No schema version below v may remain unapplied.
    let unapplied_below = t
        .versions
        .iter()
        .any(|(ver, ve)| *ver < v && ve.schema.is_some() && current.is_none_or(|c| *ver > c));
    if unapplied_below {
        return false;
    }
    if t.complete_below < v {
        return false;
    }
    match current {
        Some(cv) => pending_files(t, progress, name, cv).is_empty(),
        None => true,
    }
}

/// Every stream's next file in version `cv` (one step per stream), but for streams held this
/// round ([`Progress::hold`]): a held stream's next file is an empty newest file whose rows,
/// if it ever gets any, are above the checkpoint, so no barrier at or below the checkpoint
/// waits for it.
pub fn pending_files(t: &TableEntry, progress: &Progress, name: &TableName, cv: Ts) -> Vec<Step> {
    let Some(ve) = t.versions.get(&cv) else {
        return Vec::new();
    };
    let Some(schema) = &ve.schema else {
        return Vec::new();
    };
    let mut out: Vec<Step> = Vec::new();
    let mut seen: HashSet<ProgressKey> = HashSet::new();
    // A caught-up table (most of them, in most rounds) allocates nothing here.
    let mut text = DirText::default();
    // Directories iterate in (partition, date) order, so a stream's earliest date comes first.
    for (dir, de) in &ve.dirs {
        text.set(dir);
        for (dispatcher, newest) in &de.indexes {
            if !seen.is_empty() && seen.contains(&ProgressKey::stream(dir, dispatcher)) {
                continue;
            }
            let parts = text.stream(dir, dispatcher);
            if progress.is_held(parts) {
                // its rows, if it ever gets any, are above the checkpoint (`replay::in_place`)
                continue;
            }
            let before = progress.get_parts(parts);
            let next = match before {
                Some(p) => match p.cmp_file(cv, &text.date, 0) {
                    std::cmp::Ordering::Less => 1,
                    _ if p.version == cv && p.date == text.date => p.file_index + 1,
                    _ => continue, // this directory is behind the stream's position
                },
                None => 1,
            };
            if next <= *newest {
                let key = ProgressKey::stream(dir, dispatcher);
                seen.insert(key.clone());
                out.push(Step::File {
                    table: name.clone(),
                    schema: schema.clone(),
                    dir: dir.clone(),
                    dispatcher: dispatcher.clone(),
                    index: next,
                    key,
                    before: before.cloned(),
                });
            }
        }
    }
    out
}

/// A data directory's date and partition as progress rows store them (what
/// [`crate::progress::date_text`] and [`ProgressKey::stream`] make of them), written into
/// buffers kept from one directory to the next: a stream's row is looked up by its key's
/// parts without a new string.
#[derive(Default)]
struct DirText {
    date: String,
    partition: String,
}

impl DirText {
    /// Takes `dir`'s texts.
    fn set(&mut self, dir: &DataDir) {
        write_opt(&mut self.date, dir.date.as_ref());
        write_opt(&mut self.partition, dir.partition_id.as_ref());
    }

    /// The key parts of the stream of `dispatcher` in `dir` (the directory last [`Self::set`]).
    fn stream<'a>(
        &'a self,
        dir: &'a DataDir,
        dispatcher: &'a Option<String>,
    ) -> (&'a str, &'a str, &'a str, &'a str) {
        let stream = dispatcher.as_deref().unwrap_or("");
        (&dir.schema, &dir.table, &self.partition, stream)
    }
}

/// Sets `buf` to `v`'s text, or empty for `None`.
fn write_opt(buf: &mut String, v: Option<&impl std::fmt::Display>) {
    use std::fmt::Write;
    buf.clear();
    if let Some(v) = v {
        let _ = write!(buf, "{v}");
    }
}

/// Indexed files not yet applied, over every table (for freshness).
pub fn count_pending(cat: &Catalog, progress: &Progress) -> u64 {
    cat.tables
        .iter()
        .map(|(name, t)| table_pending(name, t, progress))
        .sum()
}

/// [`count_pending`] over the catalog's tables among `names` only (the others known to have
/// none: the replay's quiet tables).
pub fn count_pending_in<'a>(
    cat: &Catalog,
    progress: &Progress,
    names: impl IntoIterator<Item = &'a TableName>,
) -> u64 {
    names
        .into_iter()
        .filter_map(|n| cat.tables.get(n).map(|t| table_pending(n, t, progress)))
        .sum()
}

/// Indexed files of one table not yet applied (versions older than its progress excluded, and
/// the empty newest file of a stream held this round, which holds no row to apply).
pub fn table_pending(name: &TableName, t: &TableEntry, progress: &Progress) -> u64 {
    let current = progress.table_version(name);
    let mut n = 0u64;
    let mut text = DirText::default();
    for (v, ve) in &t.versions {
        if current.is_some_and(|c| *v < c) {
            continue;
        }
        for (dir, de) in &ve.dirs {
            text.set(dir);
            let date = &text.date;
            for (dispatcher, newest) in &de.indexes {
                let parts = text.stream(dir, dispatcher);
                if current == Some(*v) && progress.is_held(parts) {
                    // an empty newest file holding nothing to apply (see `pending_files`)
                    continue;
                }
                let done = match progress.get_parts(parts) {
                    Some(p) if p.version == *v && p.date == *date => p.file_index,
                    Some(p) if p.cmp_file(*v, date, 0).is_gt() => *newest,
                    _ => 0,
                };
                n += newest.saturating_sub(done);
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::DirEntry;
    use cdc_common::schema_file::SchemaFile;
    use cdc_common::{ColumnDef, ColumnType, DdlKind, TableDef};
    use std::sync::Arc;

    fn entry(
        schema: &str,
        table: &str,
        v: u64,
        kind: DdlKind,
        from: Option<TableName>,
    ) -> SchemaEntry {
        let def = TableDef {
            schema: schema.into(),
            table: table.into(),
            table_id: 0,
            version: Ts(v),
            columns: vec![ColumnDef::new("id", ColumnType::Int).pk()],
        };
        SchemaEntry {
            path: format!("{schema}/{table}/meta/schema_{v}_0000000000.json"),
            file: Arc::new(SchemaFile::for_table(&def, "", &kind)),
            rename_from: from,
        }
    }

    fn version(e: SchemaEntry, files: u64) -> VersionEntry {
        let mut dirs = std::collections::BTreeMap::new();
        if files > 0 {
            let mut d = DirEntry::default();
            d.indexes.insert(None, files);
            dirs.insert(
                DataDir {
                    schema: e.file.schema.clone(),
                    table: e.file.table.clone(),
                    version: e.file.table_version,
                    partition_id: None,
                    date: None,
                },
                d,
            );
        }
        VersionEntry {
            schema: Some(e),
            dirs,
            is_final: false,
        }
    }

    /// A catalog table of `versions` (each keyed by its schema file's version).
    fn table(complete_below: u64, versions: impl IntoIterator<Item = VersionEntry>) -> TableEntry {
        let mut t = TableEntry {
            complete_below: Ts(complete_below),
            ..Default::default()
        };
        for v in versions {
            let at = v.schema.as_ref().expect("schema").file.table_version;
            t.versions.insert(at, v);
        }
        t
    }

    fn applied(progress: &mut Progress, name: &TableName, v: u64, files: u64) {
        progress.set(
            ProgressKey::table_ddl(name),
            Position {
                version: Ts(v),
                date: String::new(),
                file_index: 0,
                commit_ts: Ts(v),
            },
        );
        if files > 0 {
            progress.set(
                ProgressKey {
                    schema: name.schema.clone(),
                    table: name.table.clone(),
                    partition: String::new(),
                    dispatcher: String::new(),
                },
                Position {
                    version: Ts(v),
                    date: String::new(),
                    file_index: files,
                    commit_ts: Ts(v),
                },
            );
        }
    }

    #[test]
    fn rename_waits_for_the_source_tables_dml_and_discovery() {
        let old = TableName::new("s", "old");
        let new = TableName::new("s", "new");
        let mut cat = Catalog {
            checkpoint: Some(Ts(100)),
            ..Default::default()
        };
        let t_old = version(entry("s", "old", 1, DdlKind::CreateTable, None), 2);
        cat.tables.insert(old.clone(), table(0, [t_old]));
        let from_old = entry("s", "new", 10, DdlKind::RenameTable, Some(old.clone()));
        cat.tables
            .insert(new.clone(), table(0, [version(from_old, 0)]));
        let mut p = Progress::default();
        applied(&mut p, &old, 1, 1);
        let none = HashSet::new();
        // With lagging listings, discovery has not yet shown every schema file up to 10: the
        // source's history may still be hidden.
        cat.schemas_through = Some(Ts(9));
        let (steps, wait) = table_steps(&cat, &p, &new, &none);
        assert!(steps.is_empty());
        assert_eq!(wait, Wait::Discovery(Ts(10)));
        cat.schemas_through = Some(Ts(10));
        // The old table still has file 2 to apply: the rename waits.
        let (steps, wait) = table_steps(&cat, &p, &new, &none);
        assert!(steps.is_empty());
        assert!(matches!(wait, Wait::Other(_)), "{wait:?}");
        applied(&mut p, &old, 1, 2);
        // Every file applied, but discovery has not confirmed the DML below 10 is complete.
        let (steps, _) = table_steps(&cat, &p, &new, &none);
        assert!(steps.is_empty());
        cat.tables.get_mut(&old).unwrap().complete_below = Ts(10);
        let (steps, _) = table_steps(&cat, &p, &new, &none);
        assert!(matches!(&steps[..], [Step::TableDdl { table, .. }] if *table == new));
        // Nothing above the checkpoint.
        cat.checkpoint = Some(Ts(9));
        let (steps, wait) = table_steps(&cat, &p, &new, &none);
        assert!(steps.is_empty());
        assert_eq!(wait, Wait::Checkpoint(Ts(10)));
    }

    #[test]
    fn a_name_created_again_waits_for_the_rename_that_moved_it_away() {
        // RENAME TABLE t TO t_old at 10, then CREATE TABLE t at 20
        let t = TableName::new("s", "t");
        let moved = TableName::new("s", "t_old");
        let mut cat = Catalog {
            checkpoint: Some(Ts(100)),
            ..Default::default()
        };
        let first = version(entry("s", "t", 1, DdlKind::CreateTable, None), 1);
        let again = version(entry("s", "t", 20, DdlKind::CreateTable, None), 0);
        cat.tables.insert(t.clone(), table(100, [first, again]));
        let away = entry("s", "t_old", 10, DdlKind::RenameTable, Some(t.clone()));
        cat.tables
            .insert(moved.clone(), table(100, [version(away, 0)]));
        cat.renamed_away
            .entry(t.clone())
            .or_default()
            .insert((Ts(10), moved.clone()));
        let mut p = Progress::default();
        applied(&mut p, &t, 1, 1);
        let none = HashSet::new();
        let (steps, wait) = table_steps(&cat, &p, &t, &none);
        assert!(steps.is_empty(), "{steps:?}");
        assert!(
            matches!(&wait, Wait::Other(w) if w.contains("rename of `s.t` to `s.t_old` at")),
            "{wait:?}"
        );
        // the rename itself may go (its source reached 10)
        let (steps, _) = table_steps(&cat, &p, &moved, &none);
        assert!(matches!(&steps[..], [Step::TableDdl { table, .. }] if *table == moved));
        applied(&mut p, &moved, 10, 0);
        let (steps, _) = table_steps(&cat, &p, &t, &none);
        assert!(
            matches!(&steps[..], [Step::TableDdl { table, entry, .. }] if *table == t && entry.file.table_version == Ts(20)),
            "{steps:?}"
        );
        // a rename away at or above the DDL's own version does not hold it
        let mut cat2 = cat.clone();
        cat2.renamed_away.clear();
        cat2.renamed_away
            .entry(t.clone())
            .or_default()
            .insert((Ts(20), moved.clone()));
        let mut p2 = Progress::default();
        applied(&mut p2, &t, 1, 1);
        let (steps, _) = table_steps(&cat2, &p2, &t, &none);
        assert_eq!(steps.len(), 1, "{steps:?}");
    }

    #[test]
    fn a_new_version_waits_for_the_old_versions_files() {
        let t = TableName::new("s", "t");
        let mut cat = Catalog {
            checkpoint: Some(Ts(100)),
            ..Default::default()
        };
        let created = version(entry("s", "t", 1, DdlKind::CreateTable, None), 3);
        let added = version(entry("s", "t", 20, DdlKind::AddColumn, None), 1);
        cat.tables.insert(t.clone(), table(20, [created, added]));
        let mut p = Progress::default();
        applied(&mut p, &t, 1, 1);
        let none = HashSet::new();
        let (steps, _) = table_steps(&cat, &p, &t, &none);
        assert!(matches!(&steps[..], [Step::File { index: 2, .. }]));
        // A stalled stream blocks the barrier too.
        let key = ProgressKey {
            schema: "s".into(),
            table: "t".into(),
            partition: String::new(),
            dispatcher: String::new(),
        };
        let stalled: HashSet<ProgressKey> = [key].into_iter().collect();
        let (steps, wait) = table_steps(&cat, &p, &t, &stalled);
        assert!(steps.is_empty());
        assert_eq!(wait, Wait::Stalled);
        applied(&mut p, &t, 1, 3);
        let (steps, _) = table_steps(&cat, &p, &t, &none);
        assert!(matches!(&steps[..], [Step::TableDdl { .. }]));
        applied(&mut p, &t, 20, 0);
        let (steps, _) = table_steps(&cat, &p, &t, &none);
        assert!(matches!(&steps[..], [Step::File { index: 1, .. }]));
        assert_eq!(count_pending(&cat, &p), 1);
    }
}
