//! The tables this sink touched since the last checkpoint write: every index entry put and
//! every schema file written is noted here; the checkpoint writer takes the set right before
//! it writes `metadata` and records it as one step of the change summary
//! (`summary_writer.rs`, format in `cdc_common::layout::ChangeSummary`).
//!
//! Invariants:
//! - A write is noted **after** its put returned (succeeded or failed). A put that completed
//!   before the checkpoint writer took the set is in the taken set, so in the step ending at
//!   the checkpoint that follows; one that completed later is in the next step. A put noted at
//!   its start could complete after the consumer read that step, and no later step would name
//!   it.
//! - One short `std` mutex, never held across I/O. A table already noted since the last take
//!   costs a lookup, no allocation: the hot path pays per data file, never per row.
//! - Off (`disable`) for a sink that is one node of several: no single process knows every
//!   node's writes, so no summary is written and nothing is collected.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What was touched since the last take.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    /// Schema -> tables with a new index entry or table schema file.
    pub tables: HashMap<String, HashSet<String>>,
    /// Schemas with a new database-level schema file.
    pub schemas: HashSet<String>,
}

/// The collector shared by the writers, the DDL path and the checkpoint writer.
#[derive(Debug)]
pub(crate) struct ChangeLog {
    on: AtomicBool,
    touched: Mutex<Touched>,
}

impl Default for ChangeLog {
    fn default() -> ChangeLog {
        ChangeLog {
            on: AtomicBool::new(true),
            touched: Mutex::new(Touched::default()),
        }
    }
}

impl ChangeLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Touched> {
        self.touched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes an index entry or table schema file of `schema`.`table`, put just now.
    pub fn note_table(&self, schema: &str, table: &str) {
        if !self.on.load(Ordering::Acquire) {
            return;
        }
        let mut t = self.lock();
        match t.tables.get_mut(schema) {
            Some(ts) => {
                if !ts.contains(table) {
                    ts.insert(table.to_string());
                }
            }
            None => {
                t.tables
                    .insert(schema.to_string(), HashSet::from([table.to_string()]));
            }
        }
    }

    /// Notes a database-level schema file of `schema`, put just now.
    pub fn note_schema(&self, schema: &str) {
        if !self.on.load(Ordering::Acquire) {
            return;
        }
        let mut t = self.lock();
        if !t.schemas.contains(schema) {
            t.schemas.insert(schema.to_string());
        }
    }

    /// Takes everything noted so far (the checkpoint writer, right before `metadata`).
    pub fn take(&self) -> Touched {
        std::mem::take(&mut *self.lock())
    }

    /// Stops collecting (a node of several sink processes).
    pub fn disable(&self) {
        self.on.store(false, Ordering::Release);
        self.take();
    }

    /// Whether the summary is kept.
    pub fn enabled(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }
}
