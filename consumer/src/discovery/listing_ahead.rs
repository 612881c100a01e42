//! The first round's recursive listing, handed over while it goes on: the listing runs on a
//! task of its own and sends the names it found in batches, so the round classifies them and
//! reads the schema files among them while the store (or, for a local directory, a
//! blocking-pool thread walking it) lists the rest. Before, the round waited for the whole
//! listing and only then started its reads: at 10,000 tables of one file each, 0.8 s of
//! listing during which the replay did nothing.
//!
//! Invariants:
//! - Every name the listing returns reaches the caller, in the listing's order, in batches of
//!   at most [`LISTING_BATCH`]; [`ListingAhead::next_batch`] answers `None` only after the
//!   listing completed, and the listing's error once it failed for good.
//! - The listing is one call under the retry policy, as every store call is: an attempt that
//!   fails is made again from the start, counted as another LIST. The names a failed attempt
//!   found (its batches, and the part batch it held when it failed) come again: whatever the
//!   caller does with a name must hold when done twice (the first round's handling of a name
//!   is: note a directory or a version, note an index file, read a schema file not seen
//!   before; a second warning about an object outside the layout is the only trace, and a
//!   schema file still waiting for its chunk may be read twice).
//! - The listing never waits for the caller (the channel is unbounded): the per-attempt timeout
//!   measures the store, not the round. The names held are at most the whole listing once
//!   per attempt (a failed attempt's batches stay queued until the round takes them); the
//!   round held one whole listing in a vector before.
//! - Dropping a `ListingAhead` (the round failed, or ended early) stops the listing.

use super::store::Upstream;
use crate::error::{Error, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Names per batch handed to the round (object_store lists a local directory in chunks of
/// 1,024 names, and S3 in pages of 1,000).
pub const LISTING_BATCH: usize = 1024;

/// A recursive listing of the whole store running on its own task (see the module doc).
pub struct ListingAhead {
    batches: mpsc::UnboundedReceiver<Vec<String>>,
    task: JoinHandle<Result<()>>,
}

impl Upstream {
    /// Starts listing every object under the root (the first round), its names handed over in
    /// batches as they are found (see the module doc).
    pub fn list_all_ahead(&self) -> ListingAhead {
        let (tx, batches) = mpsc::unbounded_channel();
        let up = self.clone();
        let task = tokio::spawn(async move {
            // A receiver gone means the round ended: nothing to do then.
            let send = move |names: Vec<String>| {
                let _ = tx.send(names);
            };
            up.list_all_in_batches(LISTING_BATCH, send).await
        });
        ListingAhead { batches, task }
    }
}

impl ListingAhead {
    /// The next batch of names; `None` once the listing completed; the listing's error once
    /// it failed for good.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<String>>> {
        if let Some(batch) = self.batches.recv().await {
            return Ok(Some(batch));
        }
        // Every sender is gone: the task ended, and everything it sent was taken.
        match (&mut self.task).await {
            Ok(result) => result.map(|()| None),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::storage(
                "",
                object_store::Error::Generic {
                    store: "listing",
                    source: Box::new(e),
                },
            )),
        }
    }
}

impl Drop for ListingAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}
