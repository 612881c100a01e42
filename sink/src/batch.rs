//! Batches: the encoded chunks one writer accumulates for one future data file.
//!
//! A batch is keyed by (dispatcher, table, table version, partition, date directory): everything
//! that decides which data file and which index file its bytes go to. Its chunks stay in the
//! spool (an [`Entry`] each) until the file is published; the batch only holds the handles, the
//! byte count and its own creation time, from which its flush deadline is derived.

use crate::router::DispatcherState;
use cdc_common::layout::DateDir;
use cdc_common::{TableDef, Ts};
use cdc_spool::Entry;
use std::sync::Arc;
use std::time::Instant;

/// What decides a batch's data file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BatchKey {
    pub dispatcher: Arc<str>,
    pub schema: String,
    pub table: String,
    pub version: Ts,
    pub partition_id: Option<i64>,
    pub date: Option<DateDir>,
}

impl BatchKey {
    /// True when `other` goes to the same stream as this key (dispatcher, table version,
    /// partition), whatever its date directory: a consumer reads one stream's date directories
    /// in date order (see "Streams across date directories" in `writer.rs`).
    pub fn same_stream(&self, other: &BatchKey) -> bool {
        self.dispatcher == other.dispatcher
            && self.schema == other.schema
            && self.table == other.table
            && self.version == other.version
            && self.partition_id == other.partition_id
    }

    /// The key of this key's stream: the same key without its date directory (keys of one
    /// stream map to equal stream keys, so it can key a map).
    pub fn stream(&self) -> BatchKey {
        BatchKey {
            date: None,
            ..self.clone()
        }
    }
}

/// One accepted event waiting in a batch.
pub(crate) struct Pending {
    pub entry: Entry,
    pub commit_ts: Ts,
    pub rows: usize,
}

/// The chunks of one future data file.
pub(crate) struct Batch {
    pub id: u64,
    pub key: BatchKey,
    pub table: Arc<TableDef>,
    pub dispatcher: Arc<DispatcherState>,
    pub items: Vec<Pending>,
    pub bytes: u64,
    pub rows: usize,
    pub created: Instant,
}

impl Batch {
    pub fn push(&mut self, p: Pending) {
        self.bytes += p.entry.len() as u64;
        self.rows += p.rows;
        self.items.push(p);
    }
}
