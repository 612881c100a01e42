//! DML steps: one dispatcher's share of a transaction, drawn as inserts, updates, primary-key
//! changes (a delete plus an insert, as a CDC source splits them) and deletes, with the model and
//! the dispatcher's live keys updated as each row change is drawn.
//!
//! A dispatcher only touches keys it owns (see `Workload::new_key`); with a live-rows cap, a full
//! dispatcher turns half of its inserts into deletes so its tables stop growing.

use super::{ModelTable, Step, Workload};
use cdc_common::{DmlEvent, RowChange, Value};
use rand::RngExt;

impl Workload {
    pub(super) fn dml(&mut self, dispatcher: usize) -> Step {
        let slot_idx = dispatcher % self.cfg.tables;
        let def = self.slots[slot_idx].def.clone();
        let ts = self.next_ts();
        let mut rows = Vec::with_capacity(self.cfg.rows_per_txn);
        for _ in 0..self.cfg.rows_per_txn {
            let live_len = self.slots[slot_idx]
                .live
                .get(&dispatcher)
                .map_or(0, Vec::len);
            let dice = self.rng.random_range(0..100);
            let full = self.cfg.live_rows_cap.is_some_and(|cap| live_len >= cap);
            if live_len > 0 && full && dice < 50 {
                rows.push(self.delete_random(slot_idx, dispatcher, live_len));
            } else if live_len == 0 || dice < 50 {
                let key = self.new_key(dispatcher);
                let after = self.row(&def, key);
                self.apply_insert(slot_idx, dispatcher, key, after.clone());
                rows.push(RowChange::Insert { after });
            } else if dice < 80 {
                let i = self.rng.random_range(0..live_len);
                let key = self.slots[slot_idx].live[&dispatcher][i];
                let before = self.model_row(slot_idx, key);
                let after = self.row(&def, key);
                self.model_table(slot_idx).rows.insert(key, after.clone());
                rows.push(RowChange::Update {
                    before: Some(before),
                    after,
                });
            } else if dice < 88 {
                // Primary-key change: the source splits it into delete + insert.
                rows.push(self.delete_random(slot_idx, dispatcher, live_len));
                let key = self.new_key(dispatcher);
                let after = self.row(&def, key);
                self.apply_insert(slot_idx, dispatcher, key, after.clone());
                rows.push(RowChange::Insert { after });
            } else {
                rows.push(self.delete_random(slot_idx, dispatcher, live_len));
            }
        }
        Step::Dml {
            dispatcher,
            event: DmlEvent {
                table: def,
                partition_id: None,
                commit_ts: ts,
                rows,
            },
        }
    }

    /// Deletes one of the dispatcher's live rows, chosen at random, from the model.
    fn delete_random(&mut self, slot: usize, dispatcher: usize, live_len: usize) -> RowChange {
        let i = self.rng.random_range(0..live_len);
        let key = self.slots[slot]
            .live
            .get_mut(&dispatcher)
            .map(|v| v.swap_remove(i))
            .unwrap_or(0);
        let before = self.model_row(slot, key);
        self.model_table(slot).rows.remove(&key);
        RowChange::Delete { before }
    }

    fn model_table(&mut self, slot: usize) -> &mut ModelTable {
        let name = self.slots[slot].name.clone();
        self.model
            .tables
            .get_mut(&name)
            .expect("live slot has a model table")
    }

    fn model_row(&mut self, slot: usize, key: i64) -> Vec<Value> {
        self.model_table(slot)
            .rows
            .get(&key)
            .cloned()
            .expect("live key has a model row")
    }

    fn apply_insert(&mut self, slot: usize, dispatcher: usize, key: i64, row: Vec<Value>) {
        self.slots[slot]
            .live
            .entry(dispatcher)
            .or_default()
            .push(key);
        self.model_table(slot).rows.insert(key, row);
    }
}
