//! Handing events to the sink: one dispatcher per table, the wake window, DDLs.
//!
//! - Each table (relation oid) is one sink dispatcher `rel<oid>` with table file names: one
//!   index file, one writer, rows in commit order.
//! - DML events carry a wake callback (the sink runs it once the event is under the spool's
//!   quota) and the flush callback of their transaction's [`Ticket`]. While more than
//!   [`MAX_UNWOKEN`] events wait for their wake, capture stops decoding: that is how the sink's
//!   backpressure reaches the source (the slot simply keeps the WAL).
//! - DDLs go through `write_block_event`, which drains the table's dispatcher first.

use crate::ack::Ticket;
use crate::error::Result;
use cdc_common::{DdlEvent, DmlEvent};
use cdc_sink::{FileNaming, Sink};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Events handed in but not yet woken beyond which decoding pauses.
pub const MAX_UNWOKEN: u64 = 10_000;

/// The sink side of capture.
pub struct Emitter {
    sink: Arc<Sink>,
    dispatchers: HashSet<String>,
    unwoken: Arc<AtomicU64>,
    woken: Arc<tokio::sync::Notify>,
    /// Row changes handed in.
    pub rows: u64,
    rows_metric: prometheus::IntCounter,
}

impl Emitter {
    /// Wraps an open sink; `rows_metric` counts the row changes handed in.
    pub fn new(sink: Arc<Sink>, rows_metric: prometheus::IntCounter) -> Emitter {
        Emitter {
            sink,
            dispatchers: HashSet::new(),
            unwoken: Arc::new(AtomicU64::new(0)),
            woken: Arc::new(tokio::sync::Notify::new()),
            rows: 0,
            rows_metric,
        }
    }

    /// The sink.
    pub fn sink(&self) -> &Arc<Sink> {
        &self.sink
    }

    fn dispatcher(&mut self, id: &str) -> Result<()> {
        if self.dispatchers.insert(id.to_string()) {
            self.sink.add_dispatcher(id, FileNaming::Table)?;
        }
        Ok(())
    }

    /// Writes a DDL after draining the dispatcher of the table it changes (none for schema
    /// DDLs).
    pub async fn ddl(&mut self, event: &DdlEvent, dispatcher: Option<&str>) -> Result<()> {
        let ids: Vec<&str> = match dispatcher {
            Some(id) => {
                self.dispatcher(id)?;
                vec![id]
            }
            None => vec![],
        };
        self.sink.write_block_event(event, &ids).await?;
        Ok(())
    }

    /// Hands in one table's share of a transaction.
    pub fn dml(&mut self, dispatcher: &str, event: DmlEvent, ticket: &Ticket) -> Result<()> {
        self.dispatcher(dispatcher)?;
        let rows = event.rows.len() as u64;
        self.unwoken.fetch_add(1, Ordering::AcqRel);
        let (u, n) = (Arc::clone(&self.unwoken), Arc::clone(&self.woken));
        let wake = Box::new(move || {
            u.fetch_sub(1, Ordering::AcqRel);
            n.notify_one();
        });
        let flush = Box::new(ticket.event());
        if let Err(e) = self
            .sink
            .add_dml_event(dispatcher, event, Some(wake), Some(flush))
        {
            // Refused: its callbacks were dropped unrun; the ticket keeps the position.
            return Err(e.into());
        }
        self.rows += rows;
        self.rows_metric.inc_by(rows);
        Ok(())
    }

    /// Waits while too many events wait for their wake (the sink's backpressure).
    pub async fn wait_for_room(&self) -> Result<()> {
        while self.unwoken.load(Ordering::Acquire) >= MAX_UNWOKEN {
            let _ = tokio::time::timeout(Duration::from_millis(50), self.woken.notified()).await;
            if let Some(e) = self.sink.error() {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Flushes every dispatcher (their flush callbacks have run when this returns).
    pub async fn drain_all(&mut self) -> Result<()> {
        for id in std::mem::take(&mut self.dispatchers) {
            self.sink.remove_dispatcher(&id).await?;
        }
        Ok(())
    }
}
