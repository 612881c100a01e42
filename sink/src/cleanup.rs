//! Expiry of old data files (`file-expiration-days`, which requires the `day` date separator),
//! run every `file-cleanup-interval`.
//!
//! A data file, or an index file, whose date directory is more than N days before today (UTC)
//! is deleted. Schema files and `metadata` are never deleted: a consumer needs every table
//! definition to read what remains. On the local filesystem the directories left empty are
//! removed too (object stores have no directories).

use crate::error::Result;
use crate::metrics::SinkMetrics;
use crate::retry::{retry, RetryPolicy};
use cdc_common::layout::{DataFile, DateDir, IndexFile, LayoutConfig};
use cdc_common::{DateSeparator, Ts};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

/// What one cleanup round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Objects deleted.
    pub deleted: Vec<String>,
    /// Empty local directories removed.
    pub removed_dirs: usize,
}

/// The first day that is kept at `now` with `days` of retention.
pub fn cutoff(now: Ts, days: u32) -> Option<DateDir> {
    let ms = now
        .physical_ms()
        .saturating_sub(u64::from(days) * 86_400_000);
    DateDir::for_ts(DateSeparator::Day, Ts::from_parts(ms, 0))
}

/// One cleanup round at time `now`, outside a sink (operators, tests): deletes the data and
/// index files of `options`' layout dated more than `options.file_expiration_days` days before
/// `now`, then removes empty directories under `local_root`.
pub async fn remove_expired(
    store: &Arc<dyn ObjectStore>,
    options: &cdc_common::SinkOptions,
    now: Ts,
    local_root: Option<&FsPath>,
) -> Result<CleanupReport> {
    let metrics = Arc::new(SinkMetrics::register(
        &prometheus::Registry::new(),
        "cleanup",
    )?);
    run_once(
        store,
        &LayoutConfig::from_options(options),
        &RetryPolicy::default(),
        &metrics,
        options.file_expiration_days,
        now,
        local_root,
    )
    .await
}

/// One cleanup round at time `now`.
pub(crate) async fn run_once(
    store: &Arc<dyn ObjectStore>,
    layout: &LayoutConfig,
    policy: &RetryPolicy,
    metrics: &Arc<SinkMetrics>,
    days: u32,
    now: Ts,
    local_root: Option<&FsPath>,
) -> Result<CleanupReport> {
    let mut report = CleanupReport::default();
    if days == 0 || layout.date_separator != DateSeparator::Day {
        return Ok(report);
    }
    let Some(keep_from) = cutoff(now, days) else {
        return Ok(report);
    };
    let listed: Vec<object_store::ObjectMeta> = retry(policy, metrics, "list", "", 1, || {
        store.list(None).try_collect()
    })
    .await?;
    for o in listed {
        let path = o.location.as_ref();
        let date = match DataFile::parse(path, layout) {
            Ok(f) => f.dir.date,
            Err(_) => match IndexFile::parse(path, layout) {
                Ok(i) => i.dir.date,
                Err(_) => continue,
            },
        };
        if date.is_some_and(|d| d < keep_from) {
            let loc = o.location.clone();
            retry(policy, metrics, "delete", path, 1, || async {
                match store.delete(&loc).await {
                    Err(object_store::Error::NotFound { .. }) => Ok(()),
                    r => r,
                }
            })
            .await?;
            report.deleted.push(path.to_string());
        }
    }
    if let Some(root) = local_root {
        let root = root.to_path_buf();
        report.removed_dirs = tokio::task::spawn_blocking(move || remove_empty_dirs(&root, true))
            .await
            .unwrap_or(0);
    }
    Ok(report)
}

/// Removes empty directories under `dir` (bottom-up; never `dir` itself when `is_root`).
/// Returns how many were removed. Errors (a file appearing concurrently) leave the directory.
fn remove_empty_dirs(dir: &PathBuf, is_root: bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    let mut left = 0;
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            removed += remove_empty_dirs(&p, false);
            if p.exists() {
                left += 1;
            }
        } else {
            left += 1;
        }
    }
    if !is_root && left == 0 && std::fs::remove_dir(dir).is_ok() {
        removed += 1;
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_n_days_back() {
        let now = Ts::from_parts(1_662_000_000_000, 0); // 2022-09-01
        assert_eq!(cutoff(now, 1), Some(DateDir::Day(2022, 8, 31)));
        assert_eq!(cutoff(now, 31), Some(DateDir::Day(2022, 8, 1)));
    }
}
