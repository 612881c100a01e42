//! Tables created together: the CREATE TABLE schema files that are the next step of many
//! tables, applied as a few units instead of one unit each.
//!
//! A cold start over N tables begins with N CREATE TABLE steps. One unit each costs a
//! transaction each (a begin, the DDL, the progress row, a commit: round trips on a server, a
//! WAL commit and the re-preparation of every cached statement the schema change expired on
//! SQLite). Where the downstream's DDL is transactional ([`Downstream::transactional_ddl`]),
//! the replayer applies up to [`CREATE_TABLES_PER_UNIT`] of them as one unit.
//!
//! Invariants:
//! - A table is taken only when its next step in [`crate::ordering`]'s order is a schema file
//!   of type CREATE TABLE: what the per-table loop would apply next for it. Its operations do
//!   not depend on what the downstream holds (`CREATE TABLE IF NOT EXISTS`, see `ddl_step`);
//!   what other tables' steps it must follow, the ordering's rules already hold it for, so
//!   applying it before other tables' data files changes nothing a reader of one table sees.
//! - The unit holds each table's DDL and its `#ddl` progress row (version and commit ts the
//!   file's table version, as `ddl_step` writes it) in one transaction: all of them are
//!   applied or none; the in-memory progress moves only after the commit.
//! - A unit that fails changes nothing (its transaction rolled back) and is not an error of
//!   the round: its tables are left to the per-table loop, which applies each alone and
//!   reports a failure against the one table and schema file it belongs to; the refusal is a
//!   warning of the round record (and so of `/health`) and of the log.
//! - The order is [`crate::ordering`]'s: a table is due only when `table_steps` offers its
//!   CREATE TABLE, which waits, among the other rules, for a rename that moves the name away
//!   below it (rule 3 (f); before that rule, a table renamed away and created again under its
//!   old name could get its new rows in the old table).
//! - Not in a consumer group: there every unit carries its own table's fence.
//! - Only in a round whose discovery read a new schema file: finding the tables due walks every
//!   table's steps (at 20,000 tables, a tenth of a round where 10 tables got a data file). A
//!   CREATE TABLE that an earlier round left waiting is applied by the per-table loop, alone,
//!   as it would be without this batch.

use super::Replayer;
use crate::backend::Unit;
use crate::ddl::{self, DdlOp};
use crate::discovery::{Catalog, SchemaEntry};
use crate::freshness::RoundRecord;
use crate::ordering::{table_steps, Step};
use crate::progress::{Position, ProgressKey};
use cdc_common::TableName;
use std::collections::HashSet;
use std::time::Instant;

/// Most tables created in one unit: large enough that the per-unit cost is spread thin, small
/// enough that a failed unit repeats little and one transaction stays short.
pub const CREATE_TABLES_PER_UNIT: usize = 256;

impl Replayer {
    /// Applies, in units of at most [`CREATE_TABLES_PER_UNIT`], the CREATE TABLE schema file
    /// that is the next step of each table in `tables` (see the module invariants); returns
    /// true when a unit committed.
    pub(super) async fn create_tables_together(
        &mut self,
        cat: &Catalog,
        tables: &[&TableName],
        stalled: &HashSet<ProgressKey>,
        rec: &mut RoundRecord,
    ) -> bool {
        if self.group.is_some() || !self.down.transactional_ddl() {
            return false;
        }
        let due = next_creates(cat, &self.progress, tables, stalled);
        let mut did = false;
        for chunk in due.chunks(CREATE_TABLES_PER_UNIT) {
            // a single table gains nothing: the per-table loop applies it
            if chunk.len() > 1 {
                did |= self.create_chunk(chunk, rec).await;
            }
        }
        did
    }

    /// One unit of CREATE TABLEs; false (nothing changed) when the downstream refused it.
    async fn create_chunk(
        &mut self,
        chunk: &[(TableName, SchemaEntry)],
        rec: &mut RoundRecord,
    ) -> bool {
        let started = Instant::now();
        let defs: Vec<_> = chunk.iter().map(|(_, e)| e.file.to_table_def()).collect();
        let ops: Vec<DdlOp> = defs.into_iter().map(DdlOp::CreateTable).collect();
        let progress: Vec<(ProgressKey, Position)> = chunk
            .iter()
            .map(|(t, e)| {
                let version = e.file.table_version;
                let pos = Position {
                    version,
                    date: String::new(),
                    file_index: 0,
                    commit_ts: version,
                };
                (ProgressKey::table_ddl(t), pos)
            })
            .collect();
        let label = format!(
            "{} .. {} ({} schema files)",
            chunk[0].1.path,
            chunk[chunk.len() - 1].1.path,
            chunk.len()
        );
        let applied = self
            .down
            .apply(Unit {
                file: &label,
                table: None,
                ddl: &ops,
                rows: &[],
                progress: &progress,
                quarantine: None,
                fence: None,
            })
            .await;
        if let Err(e) = applied {
            // Not an error of the round (each table is applied alone next), but not silent:
            // a unit refused every round (a server's lock table too small for it) shows.
            tracing::warn!(unit = %label, error = %e, "tables created together: refused, each is applied alone");
            rec.warnings.push(format!(
                "creating tables together refused ({label}): {e}; each table is created alone"
            ));
            return false;
        }
        self.phase_counts.applied += 1;
        self.commit(progress);
        let n = chunk.len();
        self.metrics.ddls_applied.inc_by(n as u64);
        let each = started.elapsed().as_secs_f64() / n as f64;
        for (t, _) in chunk {
            self.metrics.apply_duration.observe(each);
            rec.tables.entry(t.to_string()).or_default().ddls += 1;
        }
        true
    }
}

/// The tables of `tables` whose next step is a CREATE TABLE schema file, with that file.
fn next_creates(
    cat: &Catalog,
    progress: &crate::progress::Progress,
    tables: &[&TableName],
    stalled: &HashSet<ProgressKey>,
) -> Vec<(TableName, SchemaEntry)> {
    let mut due = Vec::new();
    for &name in tables {
        let (steps, _) = table_steps(cat, progress, name, stalled);
        if let Some(Step::TableDdl { table, entry, .. }) = steps.into_iter().next() {
            if entry.file.ddl_type == ddl::ACTION_CREATE_TABLE {
                due.push((table, entry));
            }
        }
    }
    due
}
