//! Capture's metrics, registered on the same registry as the sink's (and served with them at
//! `--metrics-addr`), each with the constant `changefeed` label.
//!
//! | name | type | meaning |
//! |------|------|---------|
//! | `cdc_capture_transactions_total` | counter | source transactions handed to the sink |
//! | `cdc_capture_rows_total` | counter | row changes handed to the sink (snapshot included) |
//! | `cdc_capture_snapshot_rows_total` | counter | rows of the initial snapshot |
//! | `cdc_capture_reconnects_total` | counter | source connections re-opened after a loss |
//! | `cdc_capture_polls_total` | counter | peeks of the slot |
//! | `cdc_capture_confirmed_ts` | gauge | commit ts of the last transaction confirmed (slot advanced, sink checkpointed) |
//! | `cdc_capture_slot_lag_bytes` | gauge | WAL the server keeps for the slot: current WAL position minus the slot's confirmed position, read at each peek |
//!
//! The slot lag is the one to alert on: it grows while capture is down or stuck, and the
//! server cannot remove that WAL (its disk fills).

use prometheus::{IntCounter, IntGauge, Opts, Registry};

/// The metric handles of one capture.
#[derive(Clone)]
pub struct CaptureMetrics {
    /// Transactions handed in.
    pub transactions: IntCounter,
    /// Row changes handed in.
    pub rows: IntCounter,
    /// Snapshot rows.
    pub snapshot_rows: IntCounter,
    /// Reconnects.
    pub reconnects: IntCounter,
    /// Peeks.
    pub polls: IntCounter,
    /// Last confirmed commit ts.
    pub confirmed_ts: IntGauge,
    /// WAL bytes retained for the slot.
    pub slot_lag_bytes: IntGauge,
}

impl CaptureMetrics {
    /// Registers every metric on `registry` with label `changefeed`.
    pub fn register(registry: &Registry, changefeed: &str) -> prometheus::Result<CaptureMetrics> {
        let opts =
            |name: &str, help: &str| Opts::new(name, help).const_label("changefeed", changefeed);
        let m = CaptureMetrics {
            transactions: IntCounter::with_opts(opts(
                "cdc_capture_transactions_total",
                "Source transactions handed to the sink.",
            ))?,
            rows: IntCounter::with_opts(opts(
                "cdc_capture_rows_total",
                "Row changes handed to the sink (snapshot included).",
            ))?,
            snapshot_rows: IntCounter::with_opts(opts(
                "cdc_capture_snapshot_rows_total",
                "Rows of the initial snapshot.",
            ))?,
            reconnects: IntCounter::with_opts(opts(
                "cdc_capture_reconnects_total",
                "Source connections re-opened after a loss.",
            ))?,
            polls: IntCounter::with_opts(opts("cdc_capture_polls_total", "Peeks of the slot."))?,
            confirmed_ts: IntGauge::with_opts(opts(
                "cdc_capture_confirmed_ts",
                "Commit ts of the last transaction confirmed to the slot and the sink.",
            ))?,
            slot_lag_bytes: IntGauge::with_opts(opts(
                "cdc_capture_slot_lag_bytes",
                "WAL bytes the server keeps for the slot (current position minus confirmed).",
            ))?,
        };
        let all: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.transactions.clone()),
            Box::new(m.rows.clone()),
            Box::new(m.snapshot_rows.clone()),
            Box::new(m.reconnects.clone()),
            Box::new(m.polls.clone()),
            Box::new(m.confirmed_ts.clone()),
            Box::new(m.slot_lag_bytes.clone()),
        ];
        for c in all {
            registry.register(c)?;
        }
        Ok(m)
    }

    /// Handles on a private registry (tests, embedders that do not scrape).
    pub fn unregistered() -> CaptureMetrics {
        CaptureMetrics::register(&Registry::new(), "capture").expect("fresh registry")
    }
}
