//! DDL steps: a DDL on one table slot every `ddl_every` transactions (add, drop, modify or
//! rename an extra `x_*` column, truncate, rename or drop the table), and the re-creation of a
//! dropped slot's table under a new name with the core columns.
//!
//! Each step changes the slot's definition and the model together; core columns are never
//! dropped or changed. A DDL blocks every dispatcher of its slot.

use super::{core_columns, ModelTable, Step, Workload, SCHEMA};
use cdc_common::{ColumnDef, ColumnType, DdlEvent, DdlKind, TableName, Value};
use rand::RngExt;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Workload {
    pub(super) fn ddl(&mut self) -> Step {
        let slot_idx = self.rng.random_range(0..self.cfg.tables);
        let ts = self.next_ts();
        let dispatchers = self.slot_dispatchers(slot_idx);
        let slot = &self.slots[slot_idx];
        let old = slot.name.clone();
        let mut def = (*slot.def).clone();
        def.version = ts;
        let q = |n: &TableName| format!("`{}`.`{}`", n.schema, n.table);
        let extra_cols: Vec<usize> = def
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name.starts_with("x_"))
            .map(|(i, _)| i)
            .collect();
        if slot.dropped {
            return self.recreate_slot(slot_idx);
        }
        let choice = self.rng.random_range(0..8);
        let (kind, query, prev_tables) = match choice {
            1 if !extra_cols.is_empty() => {
                let i = extra_cols[self.rng.random_range(0..extra_cols.len())];
                let col = def.columns.remove(i);
                for row in self
                    .model
                    .tables
                    .get_mut(&old)
                    .expect("live")
                    .rows
                    .values_mut()
                {
                    row.remove(i);
                }
                (
                    DdlKind::DropColumn,
                    format!("ALTER TABLE {} DROP COLUMN `{}`", q(&old), col.name),
                    vec![],
                )
            }
            2 if !extra_cols.is_empty() => {
                let i = extra_cols[self.rng.random_range(0..extra_cols.len())];
                def.columns[i].ty = ColumnType::BigInt;
                let name = def.columns[i].name.clone();
                (
                    DdlKind::ModifyColumn,
                    format!("ALTER TABLE {} MODIFY COLUMN `{name}` BIGINT", q(&old)),
                    vec![],
                )
            }
            3 if !extra_cols.is_empty() => {
                let i = extra_cols[self.rng.random_range(0..extra_cols.len())];
                let from = def.columns[i].name.clone();
                let to = format!("{from}_r");
                def.columns[i].name = to.clone();
                let query = format!("ALTER TABLE {} RENAME COLUMN `{from}` TO `{to}`", q(&old));
                (DdlKind::RenameColumn { from, to }, query, vec![])
            }
            4 => {
                for v in self.slots[slot_idx].live.values_mut() {
                    v.clear();
                }
                self.model.tables.get_mut(&old).expect("live").rows.clear();
                (
                    DdlKind::TruncateTable,
                    format!("TRUNCATE TABLE {}", q(&old)),
                    vec![],
                )
            }
            5 => {
                self.slots[slot_idx].renames += 1;
                def.table = format!(
                    "{}_r{}",
                    old.table.split("_r").next().unwrap_or(&old.table),
                    self.slots[slot_idx].renames
                );
                let new = def.name();
                let t = self.model.tables.remove(&old).expect("live");
                self.model.tables.insert(new.clone(), t);
                self.slots[slot_idx].name = new.clone();
                (
                    DdlKind::RenameTable,
                    format!("RENAME TABLE {} TO {}", q(&old), q(&new)),
                    vec![old.clone()],
                )
            }
            6 => {
                self.slots[slot_idx].dropped = true;
                self.model.tables.remove(&old);
                for v in self.slots[slot_idx].live.values_mut() {
                    v.clear();
                }
                (
                    DdlKind::DropTable,
                    format!("DROP TABLE {}", q(&old)),
                    vec![],
                )
            }
            _ => {
                let s = &mut self.slots[slot_idx];
                s.extras += 1;
                let name = format!("x_{}_{}", s.generation, s.extras);
                def.columns
                    .push(ColumnDef::new(name.clone(), ColumnType::Int));
                for row in self
                    .model
                    .tables
                    .get_mut(&old)
                    .expect("live")
                    .rows
                    .values_mut()
                {
                    row.push(Value::Null);
                }
                (
                    DdlKind::AddColumn,
                    format!("ALTER TABLE {} ADD COLUMN `{name}` INT NULL", q(&old)),
                    vec![],
                )
            }
        };
        let def = Arc::new(def);
        self.slots[slot_idx].def = def.clone();
        if let Some(t) = self.model.tables.get_mut(&def.name()) {
            t.def = (*def).clone();
        }
        let event = DdlEvent {
            commit_ts: ts,
            query,
            kind,
            schema: SCHEMA.into(),
            tables: vec![(*def).clone()],
            prev_tables,
        };
        Step::Ddl { dispatchers, event }
    }

    pub(super) fn recreate_slot(&mut self, slot_idx: usize) -> Step {
        let ts = self.next_ts();
        let dispatchers = self.slot_dispatchers(slot_idx);
        let s = &mut self.slots[slot_idx];
        s.generation += 1;
        s.dropped = false;
        s.extras = 0;
        let mut def = (*s.def).clone();
        def.version = ts;
        def.table = format!("t{slot_idx:04}_g{}", s.generation);
        def.table_id += 100_000;
        def.columns = core_columns();
        s.name = def.name();
        let cols: Vec<String> = def
            .columns
            .iter()
            .map(|c| format!("`{}` {}", c.name, c.sql_type()))
            .collect();
        let query = format!(
            "CREATE TABLE `{}`.`{}` ({}, PRIMARY KEY (`id`))",
            def.schema,
            def.table,
            cols.join(", ")
        );
        let def = Arc::new(def);
        s.def = def.clone();
        self.model.tables.insert(
            def.name(),
            ModelTable {
                def: (*def).clone(),
                rows: BTreeMap::new(),
            },
        );
        let event = DdlEvent {
            commit_ts: ts,
            query,
            kind: DdlKind::CreateTable,
            schema: self.cfg.schema.clone(),
            tables: vec![(*def).clone()],
            prev_tables: vec![],
        };
        Step::Ddl { dispatchers, event }
    }
}
