//! Expiry of old data files (`file-expiration-days`, which requires the `day` date separator),
//! run every `file-cleanup-interval`, or at the times of `file-cleanup-cron-spec` (TiCDC's
//! option, see [`cdc_common::options::CronSpec`]).
//!
//! A data file, or an index file, whose date directory is more than N days before today (UTC)
//! is deleted. Schema files and `metadata` are never deleted: a consumer needs every table
//! definition to read what remains. On the local filesystem the directories left empty are
//! removed too (object stores have no directories).
//!
//! # Requests per run
//!
//! A run never lists the whole bucket. It walks the layout's directory levels with delimiter
//! listings (schemas, tables, table versions, partitions: one request per directory, whose
//! answer names the date directories as common prefixes, not their files), then lists the
//! contents of the **expired** date directories only and deletes them in batches
//! (`delete_stream`: up to 1,000 keys per request on S3). So a run costs
//! O(schemas + tables x versions x partitions) small listings plus O(expired files) entries; the
//! files of the days it keeps are never listed (a test counts this on a recording store).
//!
//! Invariant: only paths that parse as a data or index file of this layout, with a date before
//! the cutoff, are deleted; the walk only chooses where to look.

use crate::error::Result;
use crate::metrics::SinkMetrics;
use crate::retry::{retry, RetryPolicy};
use cdc_common::layout::{DataFile, DateDir, IndexFile, LayoutConfig};
use cdc_common::{DateSeparator, Ts};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::ObjectStore;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// How long the sink's cleanup task waits before its next run, at `now_ms` (ms since the
/// epoch): with `file-cleanup-cron-spec`, until the spec's next time; with the interval, nothing
/// before the first run and one interval between runs. `None`: the spec never fires again.
pub(crate) fn wait_before_run(
    options: &cdc_common::SinkOptions,
    first_run: bool,
    now_ms: u64,
) -> Option<Duration> {
    match &options.file_cleanup_cron_spec {
        Some(spec) => spec
            .next_after(now_ms)
            .map(|at| Duration::from_millis(at.saturating_sub(now_ms))),
        None if first_run => Some(Duration::ZERO),
        None => Some(options.file_cleanup_interval),
    }
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
    let lister = Lister {
        store,
        policy,
        metrics,
    };
    let expired = expired_date_dirs(&lister, keep_from).await?;
    for dir in expired {
        let doomed = expired_files(&lister, &dir, layout, keep_from).await?;
        delete_all(&lister, doomed, &mut report).await?;
    }
    if let Some(root) = local_root {
        let root = root.to_path_buf();
        report.removed_dirs = tokio::task::spawn_blocking(move || remove_empty_dirs(&root, true))
            .await
            .unwrap_or(0);
    }
    Ok(report)
}

/// Delimiter and recursive listings, retried like every other storage request.
struct Lister<'a> {
    store: &'a Arc<dyn ObjectStore>,
    policy: &'a RetryPolicy,
    metrics: &'a Arc<SinkMetrics>,
}

impl Lister<'_> {
    /// The sub-directory names directly under `dir` (`None`: the root).
    async fn subdirs(&self, dir: Option<&Path>) -> Result<Vec<Path>> {
        let at = dir.map(|d| d.as_ref().to_string()).unwrap_or_default();
        let listed = retry(self.policy, self.metrics, "list", &at, 1, || {
            self.store.list_with_delimiter(dir)
        })
        .await?;
        Ok(listed.common_prefixes)
    }

    /// Every object under `dir`.
    async fn objects(&self, dir: &Path) -> Result<Vec<object_store::ObjectMeta>> {
        retry(self.policy, self.metrics, "list", dir.as_ref(), 1, || {
            self.store.list(Some(dir)).try_collect()
        })
        .await
    }
}

/// Phase 1: the date directories before `keep_from`, found level by level
/// (`<schema>/<table>/<version>[/<partition>]/<date>`). Below a table only numeric names
/// (versions) are descended into and below a version `meta` is skipped: those hold schema and
/// index files. Every child of a schema is a table, `meta` included (a table may be named so).
async fn expired_date_dirs(lister: &Lister<'_>, keep_from: DateDir) -> Result<Vec<Path>> {
    let mut expired = Vec::new();
    for schema in lister.subdirs(None).await? {
        for table in lister.subdirs(Some(&schema)).await? {
            for version in numeric(lister.subdirs(Some(&table)).await?) {
                for child in not_meta(lister.subdirs(Some(&version)).await?) {
                    match date_of(&child) {
                        Some(d) => {
                            if d < keep_from {
                                expired.push(child);
                            }
                        }
                        // a partition directory: its children are the dates
                        None => {
                            for dated in lister.subdirs(Some(&child)).await? {
                                if date_of(&dated).is_some_and(|d| d < keep_from) {
                                    expired.push(dated);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(expired)
}

fn not_meta(dirs: Vec<Path>) -> impl Iterator<Item = Path> {
    dirs.into_iter()
        .filter(|d| d.filename() != Some(cdc_common::layout::META_DIR))
}

fn numeric(dirs: Vec<Path>) -> impl Iterator<Item = Path> {
    dirs.into_iter().filter(|d| {
        d.filename()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn date_of(dir: &Path) -> Option<DateDir> {
    DateDir::parse(DateSeparator::Day, dir.filename()?)
}

/// Phase 2: the data and index files of one expired date directory (the parse is the guard:
/// anything that is not this layout's file, dated before the cutoff, stays).
async fn expired_files(
    lister: &Lister<'_>,
    dir: &Path,
    layout: &LayoutConfig,
    keep_from: DateDir,
) -> Result<Vec<Path>> {
    let listed = lister.objects(dir).await?;
    Ok(listed
        .into_iter()
        .filter(|o| {
            let path = o.location.as_ref();
            let date = match DataFile::parse(path, layout) {
                Ok(f) => f.dir.date,
                Err(_) => match IndexFile::parse(path, layout) {
                    Ok(i) => i.dir.date,
                    Err(_) => None,
                },
            };
            date.is_some_and(|d| d < keep_from)
        })
        .map(|o| o.location)
        .collect())
}

/// Phase 3: batched deletes (a missing object counts as deleted: another cleaner was first).
async fn delete_all(
    lister: &Lister<'_>,
    doomed: Vec<Path>,
    report: &mut CleanupReport,
) -> Result<()> {
    if doomed.is_empty() {
        return Ok(());
    }
    let first = doomed[0].to_string();
    // a batch gets the time of its size in requests (local stores delete one file per call)
    let scale = (doomed.len() / 100 + 1).min(1000) as u32;
    retry(
        lister.policy,
        lister.metrics,
        "delete",
        &first,
        scale,
        || {
            let batch = futures::stream::iter(doomed.clone().into_iter().map(Ok)).boxed();
            lister
                .store
                .delete_stream(batch)
                .map(|r| match r {
                    Err(object_store::Error::NotFound { .. }) => Ok(()),
                    r => r.map(|_| ()),
                })
                .try_collect::<()>()
        },
    )
    .await?;
    report
        .deleted
        .extend(doomed.into_iter().map(|p| p.to_string()));
    Ok(())
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
    fn cron_spec_replaces_the_interval() {
        let mut o = cdc_common::SinkOptions::default();
        let now = 1_764_729_000_000; // 2025-12-03T02:30:00Z
        assert_eq!(wait_before_run(&o, true, now), Some(Duration::ZERO));
        assert_eq!(
            wait_before_run(&o, false, now),
            Some(o.file_cleanup_interval)
        );
        o.file_cleanup_cron_spec =
            Some(cdc_common::options::CronSpec::parse("0 0 3 * * *").unwrap());
        // TiCDC runs on the schedule only, never at start
        assert_eq!(
            wait_before_run(&o, true, now),
            Some(Duration::from_secs(30 * 60))
        );
    }

    #[test]
    fn cutoff_is_n_days_back() {
        let now = Ts::from_parts(1_662_000_000_000, 0); // 2022-09-01
        assert_eq!(cutoff(now, 1), Some(DateDir::Day(2022, 8, 31)));
        assert_eq!(cutoff(now, 31), Some(DateDir::Day(2022, 8, 1)));
    }
}
