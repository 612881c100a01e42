//! Test support for the spool's integration tests (one module, shared by every test binary of
//! the crate): configuration and opening of a spool in a temporary directory, a recorder of
//! callbacks, and the paths of segment files. Test helpers only; nothing here is product.
//!
//! Each test binary uses a part of it, hence `dead_code` is allowed.
#![allow(dead_code)]

use cdc_spool::segment::{segment_file_name, RECORD_HEADER_LEN};
use cdc_spool::{Callback, Spool, SpoolConfig, SpoolConfigBuilder};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Bytes of a record header: a spilled entry of `n` payload bytes takes `H + n` on disk.
pub const H: u64 = RECORD_HEADER_LEN;

/// A configuration builder for a spool in `dir` with the given quotas and watermarks; the
/// caller adds what else it needs (e.g. the segment size) and builds.
pub fn spool_config(
    dir: &Path,
    memory_quota: u64,
    disk_quota: u64,
    high: u64,
    low: u64,
) -> SpoolConfigBuilder {
    SpoolConfig::builder()
        .dir(dir)
        .memory_quota(memory_quota)
        .disk_quota(disk_quota)
        .watermarks(high, low)
}

/// Opens the spool of changefeed `cf` with `cfg` on a fresh registry (returned too: keep it
/// alive as long as the spool's metrics are looked at).
pub fn open(cfg: SpoolConfig) -> (Spool, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    (Spool::open(cfg, "cf", &registry).unwrap(), registry)
}

/// The names of the files in the spool's directory, sorted.
pub fn segment_files(spool: &Spool) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(spool.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// The path of segment `id` of `spool`.
pub fn segment_path(spool: &Spool, id: u64) -> PathBuf {
    spool.dir().join(segment_file_name(id))
}

/// Records callback names in the order they run.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// A callback that records `name` when it runs.
    pub fn cb(&self, name: impl Into<String>) -> Option<Callback> {
        let log = Arc::clone(&self.0);
        let name = name.into();
        Some(Box::new(move || log.lock().unwrap().push(name)))
    }

    /// True when a callback named `name` has run (and was not taken yet).
    pub fn has(&self, name: &str) -> bool {
        self.0.lock().unwrap().iter().any(|n| n == name)
    }

    /// The names recorded so far, in order; the log is emptied.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}
