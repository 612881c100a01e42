//! Spool configuration: the user's [`SpoolOptions`] resolved against the machine.
//!
//! Every value the user leaves unset is derived from the machine's total memory (`sysinfo`) and
//! the free space of the spool directory's file system; each rule is a `DEFAULT_*` constant or a
//! function below with one line of why. The resolved combination is validated and an invalid one
//! is an [`SpoolError::InvalidParameter`] naming the option at fault.

use crate::error::{Result, SpoolError};
use cdc_common::SpoolOptions;
use std::path::{Path, PathBuf};

const MIB: u64 = 1024 * 1024;

/// Memory quota = total memory / this: a sink shares the host with the CDC service itself.
pub const DEFAULT_MEMORY_QUOTA_DIVISOR: u64 = 16;
/// Smallest derived memory quota: enough to batch several 64 MiB files' worth of small tables.
pub const MIN_DEFAULT_MEMORY_QUOTA: u64 = 64 * MIB;
/// Largest derived memory quota: beyond it, spilling costs less than the memory it would take.
pub const MAX_DEFAULT_MEMORY_QUOTA: u64 = 1024 * MIB;
/// Disk quota = memory quota x this: disk is cheap; it absorbs minutes of object store stall.
pub const DEFAULT_DISK_QUOTA_FACTOR: u64 = 8;
/// At most this share (percent) of the file system's free space goes to the derived disk quota,
/// so that the spool never fills the disk for its neighbours.
pub const DEFAULT_DISK_FREE_SPACE_PERCENT: u64 = 50;
/// High watermark = memory quota + disk quota x this percent: dispatchers keep running while the
/// backlog is still in memory or within the first half of the disk quota, so writers get a
/// flush window before producers ever meet the disk quota.
pub const DEFAULT_HIGH_WATERMARK_DISK_PERCENT: u64 = 50;
/// Low watermark = high x this percent: a wide band, so wakes resume in batches, not per entry.
pub const DEFAULT_LOW_WATERMARK_PERCENT: u64 = 50;
/// Segment rotation size: TiCDC's default file size; large enough for sequential I/O, small
/// enough that one long-lived entry pins little released space.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 * MIB;
/// Name of the directory under the system temp dir used when `spool-dir` is not given.
pub const DEFAULT_DIR_NAME: &str = "cdc-spool";

/// What the defaults are derived from. [`MachineInfo::probe`] asks `sysinfo`; tests pass values.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MachineInfo {
    /// Total memory in bytes.
    pub total_memory: u64,
    /// Free space of the file system holding the spool directory, if known.
    pub available_disk: Option<u64>,
}

impl MachineInfo {
    /// Reads total memory (the cgroup's limit when the process runs under a lower one, as in a
    /// container) and the free space of the file system that holds `dir` (the mount point with
    /// the longest prefix of `dir`, or of its nearest existing ancestor).
    pub fn probe(dir: &Path) -> MachineInfo {
        let total_memory = sysinfo::System::new()
            .map(|mut s| {
                s.refresh_memory();
                let host = s.total_memory();
                match s.cgroup_limits() {
                    Some(cg) if cg.total_memory > 0 => host.min(cg.total_memory),
                    _ => host,
                }
            })
            .unwrap_or(0);
        let mut probe_dir = dir.to_path_buf();
        while !probe_dir.exists() {
            if !probe_dir.pop() {
                break;
            }
        }
        let probe_dir = probe_dir.canonicalize().unwrap_or(probe_dir);
        let available_disk = sysinfo::Disks::new_with_refreshed_list()
            .ok()
            .and_then(|disks| {
                (&disks)
                    .into_iter()
                    .filter(|d| probe_dir.starts_with(d.mount_point()))
                    .max_by_key(|d| d.mount_point().as_os_str().len())
                    .map(|d| d.available_space())
            });
        MachineInfo {
            total_memory,
            available_disk,
        }
    }
}

fn percent(x: u64, p: u64) -> u64 {
    (u128::from(x) * u128::from(p) / 100) as u64
}

/// Derived memory quota: total memory / 16, clamped to 64 MiB ..= 1 GiB.
pub fn default_memory_quota(m: &MachineInfo) -> u64 {
    (m.total_memory / DEFAULT_MEMORY_QUOTA_DIVISOR)
        .clamp(MIN_DEFAULT_MEMORY_QUOTA, MAX_DEFAULT_MEMORY_QUOTA)
}

/// Derived disk quota: 8 x the memory quota, capped at half the free space (but never below one
/// segment, so that a nearly full disk still lets the spool work in small steps).
pub fn default_disk_quota(memory_quota: u64, m: &MachineInfo) -> u64 {
    let wanted = memory_quota.saturating_mul(DEFAULT_DISK_QUOTA_FACTOR);
    match m.available_disk {
        Some(free) => wanted
            .min(percent(free, DEFAULT_DISK_FREE_SPACE_PERCENT))
            .max(DEFAULT_SEGMENT_SIZE.min(wanted)),
        None => wanted,
    }
}

/// Derived high watermark: memory quota + half the disk quota.
pub fn default_high_watermark(memory_quota: u64, disk_quota: u64) -> u64 {
    memory_quota.saturating_add(percent(disk_quota, DEFAULT_HIGH_WATERMARK_DISK_PERCENT))
}

/// Derived low watermark: half the high watermark.
pub fn default_low_watermark(high: u64) -> u64 {
    percent(high, DEFAULT_LOW_WATERMARK_PERCENT)
}

/// The resolved, validated configuration of a spool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Parent directory; each changefeed's spool lives in `<dir>/<changefeed>` (scratch).
    pub dir: PathBuf,
    /// Bytes held in memory before entries spill.
    pub memory_quota: u64,
    /// Live bytes (records with headers) allowed on disk before enqueue answers
    /// `WaitForDiskQuota`.
    pub disk_quota: u64,
    /// Total (memory + disk) bytes above which wakes are held.
    pub high_watermark: u64,
    /// Total bytes at or below which held wakes are released.
    pub low_watermark: u64,
    /// Segment rotation threshold in bytes.
    pub segment_size: u64,
}

impl SpoolConfig {
    /// Resolves the sink's spool options against this machine.
    pub fn from_options(options: &SpoolOptions) -> Result<SpoolConfig> {
        SpoolConfigBuilder::from_options(options.clone()).build()
    }

    /// A builder starting from "everything derived", for tests and embedding.
    pub fn builder() -> SpoolConfigBuilder {
        SpoolConfigBuilder::default()
    }

    /// Checks a configuration: quotas and segment size positive, low below high.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("spool-memory-quota", self.memory_quota),
            ("spool-disk-quota", self.disk_quota),
            ("spool-high-watermark", self.high_watermark),
            ("spool-segment-size", self.segment_size),
        ] {
            if v == 0 {
                return Err(SpoolError::param(name, "must be greater than 0"));
            }
        }
        if self.low_watermark >= self.high_watermark {
            return Err(SpoolError::param(
                "spool-low-watermark",
                format!(
                    "must be below spool-high-watermark ({} >= {})",
                    self.low_watermark, self.high_watermark
                ),
            ));
        }
        if self.segment_size > u64::from(u32::MAX) {
            return Err(SpoolError::param(
                "spool-segment-size",
                format!("must be at most {} bytes", u32::MAX),
            ));
        }
        if self.dir.as_os_str().is_empty() {
            return Err(SpoolError::param("spool-dir", "must not be empty"));
        }
        Ok(())
    }
}

/// Builds a [`SpoolConfig`]; unset values are derived as documented on the `default_*`
/// functions.
#[derive(Clone, Debug, Default)]
pub struct SpoolConfigBuilder {
    options: SpoolOptions,
    segment_size: Option<u64>,
    machine: Option<MachineInfo>,
}

impl SpoolConfigBuilder {
    /// Starts from the sink's options.
    pub fn from_options(options: SpoolOptions) -> SpoolConfigBuilder {
        SpoolConfigBuilder {
            options,
            ..SpoolConfigBuilder::default()
        }
    }

    /// Parent directory of the spool directories.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.dir = Some(dir.into());
        self
    }

    /// Memory quota in bytes.
    pub fn memory_quota(mut self, bytes: u64) -> Self {
        self.options.memory_quota = Some(bytes);
        self
    }

    /// Disk quota in bytes.
    pub fn disk_quota(mut self, bytes: u64) -> Self {
        self.options.disk_quota = Some(bytes);
        self
    }

    /// High and low watermarks in bytes.
    pub fn watermarks(mut self, high: u64, low: u64) -> Self {
        self.options.high_watermark = Some(high);
        self.options.low_watermark = Some(low);
        self
    }

    /// Segment rotation size in bytes.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = Some(bytes);
        self
    }

    /// Derive defaults from `machine` instead of probing this host.
    pub fn machine(mut self, machine: MachineInfo) -> Self {
        self.machine = Some(machine);
        self
    }

    /// Resolves defaults and validates.
    pub fn build(self) -> Result<SpoolConfig> {
        let o = &self.options;
        o.validate()?;
        let dir = o
            .dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(DEFAULT_DIR_NAME));
        let needs_machine = o.memory_quota.is_none() || o.disk_quota.is_none();
        let machine = match (self.machine, needs_machine) {
            (Some(m), _) => m,
            (None, true) => MachineInfo::probe(&dir),
            (None, false) => MachineInfo {
                total_memory: 0,
                available_disk: None,
            },
        };
        let memory_quota = o
            .memory_quota
            .unwrap_or_else(|| default_memory_quota(&machine));
        let disk_quota = o
            .disk_quota
            .unwrap_or_else(|| default_disk_quota(memory_quota, &machine));
        let high_watermark = o
            .high_watermark
            .unwrap_or_else(|| default_high_watermark(memory_quota, disk_quota));
        let low_watermark = o
            .low_watermark
            .unwrap_or_else(|| default_low_watermark(high_watermark));
        let config = SpoolConfig {
            dir,
            memory_quota,
            disk_quota,
            high_watermark,
            low_watermark,
            segment_size: self.segment_size.unwrap_or(DEFAULT_SEGMENT_SIZE),
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * MIB;

    fn machine(total_memory: u64, available_disk: Option<u64>) -> MachineInfo {
        MachineInfo {
            total_memory,
            available_disk,
        }
    }

    fn name_of(e: SpoolError) -> String {
        match e {
            SpoolError::InvalidParameter { name, .. } => name,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn defaults_derive_from_memory_and_free_disk() {
        let c = SpoolConfig::builder()
            .dir("/x")
            .machine(machine(32 * GIB, Some(1000 * GIB)))
            .build()
            .unwrap();
        assert_eq!(c.memory_quota, GIB, "32 GiB / 16 = 2 GiB, clamped to 1 GiB");
        assert_eq!(c.disk_quota, 8 * GIB);
        assert_eq!(c.high_watermark, GIB + 4 * GIB);
        assert_eq!(c.low_watermark, c.high_watermark / 2);
        assert_eq!(c.segment_size, DEFAULT_SEGMENT_SIZE);

        let small = SpoolConfig::builder()
            .dir("/x")
            .machine(machine(GIB, Some(200 * MIB)))
            .build()
            .unwrap();
        assert_eq!(small.memory_quota, 64 * MIB, "1 GiB / 16 = 64 MiB");
        assert_eq!(small.disk_quota, 100 * MIB, "half the free space");

        let full_disk = SpoolConfig::builder()
            .dir("/x")
            .machine(machine(GIB, Some(MIB)))
            .build()
            .unwrap();
        assert_eq!(full_disk.disk_quota, DEFAULT_SEGMENT_SIZE);
    }

    #[test]
    fn probing_this_machine_gives_a_usable_config() {
        let dir = tempfile::tempdir().unwrap();
        let m = MachineInfo::probe(&dir.path().join("not/yet/created"));
        assert!(m.total_memory > 0, "{m:?}");
        assert!(m.available_disk.is_some_and(|d| d > 0), "{m:?}");
        let c = SpoolConfig::from_options(&SpoolOptions {
            dir: Some(dir.path().to_path_buf()),
            ..SpoolOptions::default()
        })
        .unwrap();
        assert!((MIN_DEFAULT_MEMORY_QUOTA..=MAX_DEFAULT_MEMORY_QUOTA).contains(&c.memory_quota));
        assert!(c.low_watermark < c.high_watermark && c.high_watermark > c.memory_quota);
    }

    #[test]
    fn explicit_values_win_and_partial_watermarks_derive_the_other() {
        let c = SpoolConfig::from_options(&SpoolOptions {
            memory_quota: Some(10),
            disk_quota: Some(100),
            dir: Some("/d".into()),
            high_watermark: Some(60),
            low_watermark: None,
        })
        .unwrap();
        assert_eq!(
            (
                c.memory_quota,
                c.disk_quota,
                c.high_watermark,
                c.low_watermark
            ),
            (10, 100, 60, 30)
        );
        assert_eq!(c.dir, PathBuf::from("/d"));
    }

    #[test]
    fn invalid_combinations_name_the_option() {
        let opts = |f: fn(&mut SpoolOptions)| {
            let mut o = SpoolOptions {
                memory_quota: Some(10),
                disk_quota: Some(100),
                dir: Some("/d".into()),
                ..SpoolOptions::default()
            };
            f(&mut o);
            SpoolConfig::from_options(&o).unwrap_err()
        };
        assert_eq!(
            name_of(opts(|o| o.memory_quota = Some(0))),
            "spool-memory-quota"
        );
        assert_eq!(
            name_of(opts(|o| o.disk_quota = Some(0))),
            "spool-disk-quota"
        );
        assert_eq!(
            name_of(opts(|o| {
                o.high_watermark = Some(50);
                o.low_watermark = Some(50);
            })),
            "spool-low-watermark"
        );
        // only low given, above the derived high (10 + 50 = 60)
        assert_eq!(
            name_of(opts(|o| o.low_watermark = Some(60))),
            "spool-low-watermark"
        );
        assert_eq!(
            name_of(
                SpoolConfig::builder()
                    .dir("/d")
                    .memory_quota(1)
                    .disk_quota(1)
                    .segment_size(0)
                    .build()
                    .unwrap_err()
            ),
            "spool-segment-size"
        );
    }
}
