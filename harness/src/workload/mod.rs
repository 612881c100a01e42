//! The deterministic workload: what a CDC service would hand the sink, and the model of the
//! final state the downstream must reach.
//!
//! A workload is a sequence of [`Step`]s drawn from a seeded ChaCha8 generator, so the same
//! flags and seed always yield the same events and the same [`Model`]. `generate` plays the
//! steps into the sink; `verify` replays the same steps into a fresh model (no storage involved)
//! and compares the downstream with it.
//!
//! Invariants the generator keeps, so that replay order across dispatchers never matters:
//! - `M` table slots; dispatcher `d` serves slot `d % M` (with `N > M`, a table has several
//!   dispatchers, each writing its own files).
//! - Every row is owned by one dispatcher: primary keys of dispatcher `d` are `k * N + d`, so two
//!   dispatchers never touch the same row and per-dispatcher order is all the order there is.
//! - An update that changes the primary key becomes a delete plus an insert (as a CDC source
//!   splits it).
//! - DDLs block every dispatcher of their slot; core columns (one of each supported type) are
//!   never dropped, only the `x_*` extra columns DDLs add come and go.
//!
//! The generator's parts, one per file:
//! - `mod.rs` (this file): the flags ([`WorkloadConfig`]), the [`Step`]s, the generator's state
//!   and the order in which it draws steps (the [`Iterator`] impl).
//! - `model.rs`: the [`Model`], the expected final state of the downstream.
//! - `values.rs`: the core columns ([`core_columns`]) and the random value drawn for a column.
//! - `dml.rs`: one dispatcher's share of a transaction (insert, update, primary-key change,
//!   delete) and the model kept in step with it.
//! - `ddl.rs`: the DDLs (column changes, truncate, rename, drop) and the re-creation of a dropped
//!   table's slot.

mod ddl;
mod dml;
mod model;
mod values;

pub use model::{Model, ModelTable};
pub use values::core_columns;

use cdc_common::{DdlEvent, DmlEvent, TableDef, TableName, Ts};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Default schema (database) the workload's tables live in.
pub const SCHEMA: &str = "cdc_demo";

/// Workload shape (the `generate`/`verify` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Dispatchers (N).
    pub dispatchers: usize,
    /// Table slots (M).
    pub tables: usize,
    /// Transactions to generate.
    pub transactions: u64,
    /// Row changes per transaction.
    pub rows_per_txn: usize,
    /// A DDL every K transactions (0 = none).
    pub ddl_every: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// Schema (database) of every table.
    pub schema: String,
    /// Commit ts of the first table; each later step takes the next ts. `None` takes commit
    /// ts from the clock (what the demo's freshness figures need); a fixed start makes the
    /// whole workload, ts included, a function of the flags, so a generator restarted after a
    /// crash can resend exactly the steps above the sink's checkpoint.
    pub start_ts: Option<Ts>,
    /// Live rows a dispatcher may own; at the cap an insert becomes a delete, so the tables
    /// (and the generator's model) stop growing - what a soak needs to see flat memory.
    /// `None`: tables grow (about 40% of row changes are net inserts).
    pub live_rows_cap: Option<usize>,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            dispatchers: 16,
            tables: 8,
            transactions: 20_000,
            rows_per_txn: 10,
            ddl_every: 2_000,
            schema: SCHEMA.into(),
            seed: 42,
            start_ts: None,
            live_rows_cap: None,
        }
    }
}

/// One thing the CDC service hands the sink.
#[derive(Clone, Debug)]
pub enum Step {
    /// One table's share of a transaction, for one dispatcher.
    Dml {
        /// Dispatcher index.
        dispatcher: usize,
        /// The event.
        event: DmlEvent,
    },
    /// A DDL blocking the listed dispatchers.
    Ddl {
        /// Dispatchers that must drain first.
        dispatchers: Vec<usize>,
        /// The event.
        event: DdlEvent,
    },
}

struct Slot {
    name: TableName,
    def: Arc<TableDef>,
    /// Live primary keys per dispatcher of the slot.
    live: BTreeMap<usize, Vec<i64>>,
    extras: u32,
    renames: u32,
    generation: u32,
    dropped: bool,
}

/// The generator: an iterator of steps that maintains the model as it goes.
pub struct Workload {
    cfg: WorkloadConfig,
    rng: ChaCha8Rng,
    slots: Vec<Slot>,
    next_key: Vec<u64>,
    model: Model,
    txn: u64,
    last_ts: Ts,
}

impl Workload {
    /// A new workload; no step has been drawn yet.
    pub fn new(cfg: WorkloadConfig) -> Workload {
        assert!(
            cfg.dispatchers >= 1 && cfg.tables >= 1,
            "need at least one dispatcher and one table"
        );
        let mut w = Workload {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            slots: Vec::with_capacity(cfg.tables),
            next_key: vec![0; cfg.dispatchers],
            model: Model::default(),
            txn: 0,
            last_ts: Ts::ZERO,
            cfg,
        };
        for i in 0..w.cfg.tables {
            let ts = w.next_ts();
            let name = TableName::new(w.cfg.schema.clone(), format!("t{i:04}"));
            let def = Arc::new(TableDef {
                schema: name.schema.clone(),
                table: name.table.clone(),
                table_id: 1000 + i as i64,
                version: ts,
                columns: core_columns(),
            });
            w.model.tables.insert(
                name.clone(),
                ModelTable {
                    def: (*def).clone(),
                    rows: BTreeMap::new(),
                },
            );
            let live = w
                .slot_dispatchers(i)
                .into_iter()
                .map(|d| (d, Vec::new()))
                .collect();
            w.slots.push(Slot {
                name,
                def,
                live,
                extras: 0,
                renames: 0,
                generation: 0,
                dropped: false,
            });
        }
        w
    }

    /// The tables as they are before the first step (the DDLs a service would have run first).
    pub fn initial_tables(&self) -> Vec<TableDef> {
        self.slots.iter().map(|s| (*s.def).clone()).collect()
    }

    /// The dispatchers that serve table slot `slot`.
    pub fn slot_dispatchers(&self, slot: usize) -> Vec<usize> {
        (0..self.cfg.dispatchers)
            .filter(|d| d % self.cfg.tables == slot)
            .collect()
    }

    /// The table a dispatcher currently serves.
    pub fn dispatcher_table(&self, dispatcher: usize) -> &TableName {
        &self.slots[dispatcher % self.cfg.tables].name
    }

    /// The model of everything generated so far.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Runs the whole workload without a sink and returns the final model.
    pub fn final_model(cfg: WorkloadConfig) -> Model {
        let mut w = Workload::new(cfg);
        for _ in w.by_ref() {}
        w.model
    }

    fn next_ts(&mut self) -> Ts {
        if let Some(start) = self.cfg.start_ts {
            self.last_ts = self.last_ts.max(Ts(start.0.saturating_sub(1)));
            self.last_ts = Ts(self.last_ts.0 + 1);
            return self.last_ts;
        }
        let now = Ts::now();
        self.last_ts = if now > self.last_ts {
            now
        } else {
            Ts(self.last_ts.0 + 1)
        };
        self.last_ts
    }

    fn new_key(&mut self, dispatcher: usize) -> i64 {
        let k = self.next_key[dispatcher];
        self.next_key[dispatcher] += 1;
        (k * self.cfg.dispatchers as u64 + dispatcher as u64) as i64
    }
}

impl Iterator for Workload {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if self.txn >= self.cfg.transactions {
            return None;
        }
        self.txn += 1;
        if self.cfg.ddl_every > 0 && self.txn % self.cfg.ddl_every == 0 {
            return Some(self.ddl());
        }
        let dispatcher = self.rng.random_range(0..self.cfg.dispatchers);
        if self.slots[dispatcher % self.cfg.tables].dropped {
            // A dropped table's dispatchers are idle until the slot is re-created.
            return Some(self.recreate_slot(dispatcher % self.cfg.tables));
        }
        Some(self.dml(dispatcher))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::table::ValueKind;
    use cdc_common::{DdlKind, RowChange, Value};

    fn small(seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            dispatchers: 7,
            tables: 3,
            transactions: 3_000,
            rows_per_txn: 4,
            ddl_every: 50,
            seed,
            schema: SCHEMA.into(),
            start_ts: None,
            live_rows_cap: None,
        }
    }

    /// Applies events by their meaning alone (what a downstream does), independent of how the
    /// generator maintains its model.
    fn apply(db: &mut Model, step: &Step) {
        match step {
            Step::Dml { event, .. } => {
                let t = db
                    .tables
                    .get_mut(&event.table.name())
                    .expect("DML for a live table");
                assert_eq!(
                    t.def.columns, event.table.columns,
                    "DML carries the current definition"
                );
                for row in &event.rows {
                    match row {
                        RowChange::Insert { after } | RowChange::Update { after, .. } => {
                            let Value::Int(k) = after[0] else {
                                panic!("pk is Int")
                            };
                            t.rows.insert(k, after.clone());
                        }
                        RowChange::Delete { before } => {
                            let Value::Int(k) = before[0] else {
                                panic!("pk is Int")
                            };
                            assert!(t.rows.remove(&k).is_some(), "delete of a live row");
                        }
                    }
                }
            }
            Step::Ddl { event, .. } => {
                let def = event.tables[0].clone();
                match &event.kind {
                    DdlKind::CreateTable => {
                        db.tables.insert(
                            def.name(),
                            ModelTable {
                                def,
                                rows: BTreeMap::new(),
                            },
                        );
                    }
                    DdlKind::DropTable => {
                        db.tables.remove(&def.name()).expect("drop of a live table");
                    }
                    DdlKind::RenameTable => {
                        let mut t = db
                            .tables
                            .remove(&event.prev_tables[0])
                            .expect("rename of a live table");
                        t.def = def.clone();
                        db.tables.insert(def.name(), t);
                    }
                    DdlKind::TruncateTable => {
                        let t = db.tables.get_mut(&def.name()).expect("live");
                        t.rows.clear();
                        t.def = def;
                    }
                    _ => {
                        // Column DDLs: map old columns to new by name (renames by their pair).
                        let t = db.tables.get_mut(&def.name()).expect("live");
                        let old = t.def.columns.clone();
                        let src: Vec<Option<usize>> = def
                            .columns
                            .iter()
                            .map(|c| {
                                let name = match &event.kind {
                                    DdlKind::RenameColumn { from, to } if &c.name == to => {
                                        from.as_str()
                                    }
                                    _ => c.name.as_str(),
                                };
                                old.iter().position(|o| o.name == name)
                            })
                            .collect();
                        for row in t.rows.values_mut() {
                            *row = src
                                .iter()
                                .map(|s| s.map_or(Value::Null, |i| row[i].clone()))
                                .collect();
                        }
                        t.def = def;
                    }
                }
            }
        }
    }

    /// Debug text with every timestamp masked: commit ts and table versions come from the wall
    /// clock; everything else must be a pure function of the flags and the seed.
    fn masked(text: String) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(i) = rest.find("Ts(") {
            out.push_str(&rest[..i + 3]);
            rest = &rest[i + 3..];
            rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn same_seed_same_workload() {
        let run = |seed| -> Vec<String> {
            Workload::new(small(seed))
                .map(|s| masked(format!("{s:?}")))
                .collect()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let model = |seed| masked(format!("{:?}", Workload::final_model(small(seed))));
        assert_eq!(model(7), model(7));
    }

    #[test]
    fn replaying_the_events_reaches_the_model() {
        let mut w = Workload::new(small(3));
        let mut db = Model::default();
        for def in w.initial_tables() {
            db.tables.insert(
                def.name(),
                ModelTable {
                    def,
                    rows: BTreeMap::new(),
                },
            );
        }
        let mut last = Ts::ZERO;
        let mut kinds = std::collections::BTreeSet::new();
        for step in w.by_ref() {
            let ts = match &step {
                Step::Dml { event, .. } => event.commit_ts,
                Step::Ddl { event, .. } => {
                    kinds.insert(
                        format!("{:?}", event.kind)
                            .split([' ', '{'])
                            .next()
                            .unwrap_or("")
                            .to_string(),
                    );
                    event.commit_ts
                }
            };
            assert!(ts > last, "commit ts strictly increase");
            last = ts;
            apply(&mut db, &step);
        }
        assert_eq!(&db, w.model());
        for k in [
            "AddColumn",
            "DropColumn",
            "ModifyColumn",
            "RenameColumn",
            "TruncateTable",
            "RenameTable",
            "DropTable",
            "CreateTable",
        ] {
            assert!(kinds.contains(k), "workload never produced {k}: {kinds:?}");
        }
        assert!(db.tables.values().map(|t| t.rows.len()).sum::<usize>() > 100);
    }

    #[test]
    fn rows_match_their_definitions_and_dispatchers_own_their_keys() {
        let cfg = small(11);
        for step in Workload::new(cfg.clone()) {
            if let Step::Dml { dispatcher, event } = step {
                for row in &event.rows {
                    let image = row.image();
                    assert_eq!(image.len(), event.table.columns.len());
                    let Value::Int(k) = image[0] else {
                        panic!("pk")
                    };
                    assert_eq!(
                        k as usize % cfg.dispatchers,
                        dispatcher,
                        "key owned by its dispatcher"
                    );
                    for (v, c) in image.iter().zip(&event.table.columns) {
                        let ok = match (c.value_kind(), v) {
                            (_, Value::Null) => c.nullable,
                            (ValueKind::Int, Value::Int(_)) | (ValueKind::UInt, Value::UInt(_)) => {
                                true
                            }
                            (ValueKind::Float, Value::Float(_))
                            | (ValueKind::Double, Value::Double(_)) => true,
                            (ValueKind::Decimal, Value::Decimal(_))
                            | (ValueKind::String, Value::String(_)) => true,
                            (ValueKind::Bytes, Value::Bytes(_)) => true,
                            _ => false,
                        };
                        assert!(ok, "{} holds {v:?}", c.name);
                    }
                }
            }
        }
    }
}
