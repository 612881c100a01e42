//! The DDL steps: a database-level schema file (CREATE/DROP SCHEMA) and a table's schema file
//! (its first version, or a barrier), each turned into [`DdlOp`]s and applied with the `#ddl`
//! progress row as one unit.
//!
//! Invariants: the operations of a table schema file depend on what the downstream holds (a
//! missing table is created, an existing one altered by the column differences to the previous
//! version, a RENAME moves the source table when it exists); the `#ddl` row records the file's
//! table version as both version and commit ts, and the in-memory progress moves only after
//! the unit committed.

use super::Replayer;
use crate::backend::Unit;
use crate::ddl::{self, DdlOp};
use crate::discovery::{Catalog, SchemaEntry};
use crate::error::Result;
use crate::freshness::RoundRecord;
use crate::progress::{Position, ProgressKey};
use cdc_common::{TableDef, TableName, Ts};

impl Replayer {
    /// Applies a database-level schema file.
    pub(super) async fn exec_schema_ddl(
        &mut self,
        cat: &Catalog,
        schema: String,
        entry: SchemaEntry,
        rec: &mut RoundRecord,
    ) -> Result<()> {
        let ops = match entry.file.ddl_type {
            ddl::ACTION_CREATE_SCHEMA => vec![DdlOp::CreateSchema(schema.clone())],
            ddl::ACTION_DROP_SCHEMA => vec![DdlOp::DropSchema {
                schema: schema.clone(),
                tables: cat.tables_of(&schema).map(|(n, _)| n.clone()).collect(),
            }],
            other => {
                rec.warnings.push(format!(
                    "`{}`: database-level DDL type {other} has no downstream effect",
                    entry.path
                ));
                Vec::new()
            }
        };
        self.apply_ddl(
            &entry.path,
            None,
            &ops,
            ProgressKey::schema_ddl(&schema),
            entry.file.table_version,
        )
        .await?;
        rec.tables.entry(schema).or_default().ddls += 1;
        Ok(())
    }

    /// Applies a table's schema file.
    pub(super) async fn exec_table_ddl(
        &mut self,
        cat: &Catalog,
        table: TableName,
        entry: SchemaEntry,
        prev: Option<SchemaEntry>,
        rec: &mut RoundRecord,
    ) -> Result<()> {
        let def = entry.file.to_table_def();
        let ops = self
            .table_ddl_ops(cat, &table, &entry, prev.as_ref(), &def)
            .await?;
        self.apply_ddl(
            &entry.path,
            Some(&def),
            &ops,
            ProgressKey::table_ddl(&table),
            entry.file.table_version,
        )
        .await?;
        rec.tables.entry(table.to_string()).or_default().ddls += 1;
        Ok(())
    }

    /// Applies a schema file's DDL together with its `#ddl` progress row (version and commit ts
    /// both the file's table version) as one unit, then records it.
    async fn apply_ddl(
        &mut self,
        file: &str,
        table: Option<&TableDef>,
        ddl: &[DdlOp],
        key: ProgressKey,
        version: Ts,
    ) -> Result<()> {
        let progress = vec![(
            key,
            Position {
                version,
                date: String::new(),
                file_index: 0,
                commit_ts: version,
            },
        )];
        self.phase_counts.applied += 1;
        let fence = self.fence_for(&progress[0].0);
        self.down
            .apply(Unit {
                file,
                table,
                ddl,
                rows: &[],
                progress: &progress,
                quarantine: None,
                fence: fence.as_ref(),
            })
            .await?;
        self.commit(progress);
        self.metrics.ddls_applied.inc();
        Ok(())
    }

    /// The DDL operations of a table schema file (see [`crate::ddl`]). A CREATE TABLE or DROP
    /// TABLE file's operations do not depend on the downstream (`CREATE TABLE IF NOT EXISTS`,
    /// `DROP TABLE IF EXISTS`), so it asks the downstream whether the table exists only for
    /// the other kinds: a cold start of N tables saves N look-ups (a round trip each on a
    /// server).
    async fn table_ddl_ops(
        &mut self,
        cat: &Catalog,
        table: &TableName,
        entry: &SchemaEntry,
        prev: Option<&SchemaEntry>,
        def: &TableDef,
    ) -> Result<Vec<DdlOp>> {
        let file = &entry.file;
        let create = || vec![DdlOp::CreateTable(def.clone())];
        match file.ddl_type {
            ddl::ACTION_DROP_TABLE => return Ok(vec![DdlOp::DropTable(table.clone())]),
            ddl::ACTION_CREATE_TABLE => return Ok(create()),
            _ => {}
        }
        let exists = self.down.table_exists(table).await?;
        Ok(match file.ddl_type {
            ddl::ACTION_TRUNCATE_TABLE if exists => vec![DdlOp::TruncateTable(table.clone())],
            ddl::ACTION_RENAME_TABLE => match &entry.rename_from {
                Some(src) if src != table && !exists && self.down.table_exists(src).await? => {
                    let mut ops = vec![DdlOp::RenameTable {
                        from: src.clone(),
                        to: table.clone(),
                    }];
                    // The source's definition as applied, to catch column differences.
                    let src_def = self
                        .progress
                        .table_version(src)
                        .and_then(|v| cat.tables.get(src)?.versions.get(&v)?.schema.clone())
                        .map(|e| e.file.to_table_def());
                    if let Some(mut s) = src_def {
                        s.schema = table.schema.clone();
                        s.table = table.table.clone();
                        ops.extend(ddl::diff_columns(&s, def, &file.query));
                    }
                    ops
                }
                _ if exists => match prev {
                    Some(p) => ddl::diff_columns(&p.file.to_table_def(), def, &file.query),
                    None => Vec::new(),
                },
                _ => create(),
            },
            _ if !exists => create(),
            _ => match prev {
                Some(p) if p.file.ddl_type != ddl::ACTION_DROP_TABLE => {
                    ddl::diff_columns(&p.file.to_table_def(), def, &file.query)
                }
                _ => create(),
            },
        })
    }
}
