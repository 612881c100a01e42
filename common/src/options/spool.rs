//! [`SpoolOptions`]: the spool's quotas, directory and watermarks as given in the URI; `None`
//! leaves the value to the spool crate, which derives it from the machine.

use super::params::{parse_size, Params};
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Spool options. `None` means "derive from the machine" (the spool crate decides, see its docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Bytes held in memory before entries spill to disk (`spool-memory-quota`).
    pub memory_quota: Option<u64>,
    /// Bytes allowed on disk before the writer must flush and wait (`spool-disk-quota`).
    pub disk_quota: Option<u64>,
    /// Directory for segment files (`spool-dir`); scratch, cleaned at open.
    pub dir: Option<PathBuf>,
    /// Total bytes above which wake callbacks are held (`spool-high-watermark`).
    pub high_watermark: Option<u64>,
    /// Total bytes at or below which held wakes are released (`spool-low-watermark`).
    pub low_watermark: Option<u64>,
}

impl SpoolOptions {
    /// Checks what can be checked without the machine's defaults.
    pub fn validate(&self) -> Result<()> {
        if self.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(Error::param("spool-dir", "must not be empty"));
        }
        for (name, v) in [
            ("spool-memory-quota", self.memory_quota),
            ("spool-disk-quota", self.disk_quota),
            ("spool-high-watermark", self.high_watermark),
        ] {
            if v == Some(0) {
                return Err(Error::param(name, "must be greater than 0"));
            }
        }
        if let (Some(lo), Some(hi)) = (self.low_watermark, self.high_watermark) {
            if lo >= hi {
                return Err(Error::param(
                    "spool-low-watermark",
                    format!("must be below spool-high-watermark ({lo} >= {hi})"),
                ));
            }
        }
        Ok(())
    }

    /// Takes the `spool-*` options out of `params` into `self`. Validation is the caller's.
    pub(super) fn take_from(&mut self, params: &mut Params) -> Result<()> {
        let spool_size = |name: &str, v: String| parse_size(name, &v, 1, u64::MAX);
        if let Some(v) = params.take("spool-memory-quota") {
            self.memory_quota = Some(spool_size("spool-memory-quota", v)?);
        }
        if let Some(v) = params.take("spool-disk-quota") {
            self.disk_quota = Some(spool_size("spool-disk-quota", v)?);
        }
        if let Some(v) = params.take("spool-dir") {
            self.dir = Some(PathBuf::from(v));
        }
        if let Some(v) = params.take("spool-high-watermark") {
            self.high_watermark = Some(spool_size("spool-high-watermark", v)?);
        }
        if let Some(v) = params.take("spool-low-watermark") {
            self.low_watermark = Some(parse_size("spool-low-watermark", &v, 0, u64::MAX)?);
        }
        Ok(())
    }
}
