//! Why a batch was flushed. Every flush records exactly one reason, counted by
//! `cdc_sink_flushes_total{reason}`.
//!
//! | reason | trigger |
//! |--------|---------|
//! | `file-size` | the batch reached `file-size` bytes |
//! | `interval` | the batch is older than `flush-interval` (its own age: batches of different tables and dispatchers age independently, so there is no global sweep) |
//! | `drain` | a DDL drain marker of the batch's dispatcher reached the writer |
//! | `spool-pressure` | the spool holds wakes or has no disk room: the writer flushes to free it |
//! | `remove` | the dispatcher was removed |
//! | `close` | the sink is closing |

/// The trigger of one flush.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FlushReason {
    /// The batch reached the file size.
    FileSize,
    /// The batch is older than the flush interval.
    Interval,
    /// A DDL drain marker for the batch's dispatcher.
    Drain,
    /// The spool needs room.
    SpoolPressure,
    /// The dispatcher was removed.
    Remove,
    /// The sink is closing.
    Close,
}

impl FlushReason {
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [FlushReason; 6] = [
        FlushReason::FileSize,
        FlushReason::Interval,
        FlushReason::Drain,
        FlushReason::SpoolPressure,
        FlushReason::Remove,
        FlushReason::Close,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::FileSize => "file-size",
            FlushReason::Interval => "interval",
            FlushReason::Drain => "drain",
            FlushReason::SpoolPressure => "spool-pressure",
            FlushReason::Remove => "remove",
            FlushReason::Close => "close",
        }
    }
}

impl std::fmt::Display for FlushReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
