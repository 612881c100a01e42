//! The upstream store client: every object store call discovery and replay make goes through
//! [`Upstream`], which counts it (`cdc_consumer_{list,get}_calls_total`, bytes read, each GET's
//! time in `cdc_consumer_get_duration_seconds`) and retries transient errors.
//!
//! Invariants: every call runs through the one retry policy of object-storage calls,
//! [`cdc_common::retry`]: retried only for an error [`cdc_common::storage::is_retryable`]
//! accepts (or a request that hung past the per-request timeout), at most `max_attempts` times
//! in all, with a backoff doubling from the first one up to its cap; a call that still fails
//! returns [`Error::Storage`] (or [`Error::StorageTimeout`]) naming the object, and ends the
//! round that made it.
//!
//! # Warming
//!
//! Object stores answer one request in tens of milliseconds, so discovery does not make its
//! many small calls one after another: where it knows the listings or objects a phase will
//! ask for, it first *warms* them ([`Upstream::warm_lists`], [`Upstream::warm_gets`]),
//! [`READ_CONCURRENCY`] requests in flight, and the phase's own calls, still made in their
//! order, take the warmed answers. A warmed answer is taken once and is never older than
//! the start of the phase that warmed it (discovery forgets what was not taken at the end of
//! each phase and round, [`Upstream::forget_warm`]), so the order between phases that
//! discovery's conclusions rely on is kept. A warming call that failed is not kept: the
//! phase's own call makes the request again and reports what fails.
//!
//! # A local directory
//!
//! When the upstream is a local directory ([`Upstream::with_local_root`]), GETs read the files
//! through [`LocalReader`] (on a disk: small files on the calling thread, a warming batch in
//! one blocking-pool task; on a network file system: one blocking-pool task per GET, warming
//! concurrent as for any store) instead of object_store's two blocking-pool tasks per GET;
//! they are counted, timed and retried the same way. Listings and the conditional GET of `metadata` go
//! through object_store as for any store.

use super::local_read::{LocalReader, Look};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use bytes::Bytes;
use cdc_common::retry::{retry, AttemptFailure, RetryError, RetryHook, RetryPolicy};
use cdc_common::storage::get_if_exists;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Requests in flight while warming (see "Warming"). A phase's calls are small (schema files,
/// index files, one-level listings), so their time is the store's latency: at 64 a round over
/// 50 tables waits about one latency per phase, not four (measured on the S3-compatible test
/// server: 200 GETs of 20 KB take 0.46 s 16 at a time, 0.10 s 64 at a time).
pub const READ_CONCURRENCY: usize = 64;
/// Answers warmed at once, at most: a phase warms in chunks of this many, so memory stays
/// bounded at any number of tables.
pub const WARM_CHUNK: usize = 1024;

/// Runs `call` on every key, [`READ_CONCURRENCY`] at a time; the keys whose call succeeded,
/// with their answers (a failed warming call is dropped: the phase's own call repeats it).
async fn concurrently<T, F, Fut>(keys: Vec<String>, call: F) -> Vec<(String, T)>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    use futures::StreamExt;
    futures::stream::iter(keys)
        .map(|k| {
            let r = call(k.clone());
            async move { r.await.ok().map(|v| (k, v)) }
        })
        .buffer_unordered(READ_CONCURRENCY)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// Warmed answers not taken yet.
#[derive(Default)]
struct Warm {
    gets: HashMap<String, Option<Bytes>>,
    lists: HashMap<String, (Vec<String>, Vec<String>)>,
}

/// Attempts per storage call: rides out a blip (a 503 from a throttling store, a reset
/// connection) without restarting the round's discovery; a store that stays down still
/// fails the round quickly, and the next round tries again.
pub const DEFAULT_STORAGE_ATTEMPTS: u32 = 4;
/// Backoff before the first retry of a storage call; doubles per retry (50, 100, 200 ms).
pub const DEFAULT_STORAGE_BACKOFF: Duration = Duration::from_millis(50);
/// Longest backoff between two attempts of one call.
pub const DEFAULT_STORAGE_MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Timeout of one storage request: a hung GET or LIST becomes a retried error instead of a
/// round that never ends (the largest data files the sink writes read well within it).
pub const DEFAULT_STORAGE_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What a conditional read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The object does not exist.
    Missing,
    /// The object still has the entity tag given.
    Unchanged,
    /// The object's bytes and its entity tag (when the store gives one).
    Body(Bytes, Option<String>),
}

/// The upstream store with every call counted, and transient errors retried.
#[derive(Clone)]
pub struct Upstream {
    store: Arc<dyn ObjectStore>,
    /// Read by a discovery round to count its calls.
    pub(super) metrics: Metrics,
    policy: RetryPolicy,
    /// Shared by every clone: the answers warmed for discovery's next calls.
    warm: Arc<Mutex<Warm>>,
    /// Set when the store is a local directory: GETs read the files directly.
    local: Option<LocalReader>,
}

/// Counts each retry in `cdc_consumer_errors_total{kind="storage-retry"}` and logs it.
struct CountRetries<'a> {
    metrics: &'a Metrics,
    what: &'a str,
}

impl RetryHook for CountRetries<'_> {
    fn on_retry(&mut self, attempt: u32, failure: &AttemptFailure<'_>, _backoff: Duration) {
        tracing::debug!(object = self.what, attempt, failure = ?failure, "storage error, retrying");
        self.metrics
            .errors
            .with_label_values(&["storage-retry"])
            .inc();
    }
}

impl Upstream {
    /// Wraps a store (rooted at the storage prefix).
    pub fn new(store: Arc<dyn ObjectStore>, metrics: Metrics) -> Upstream {
        Upstream {
            store,
            metrics,
            policy: RetryPolicy {
                max_attempts: DEFAULT_STORAGE_ATTEMPTS,
                initial_backoff: DEFAULT_STORAGE_BACKOFF,
                max_backoff: DEFAULT_STORAGE_MAX_BACKOFF,
                request_timeout: DEFAULT_STORAGE_REQUEST_TIMEOUT,
            },
            warm: Arc::default(),
            local: None,
        }
    }

    /// Reads objects as files under `root` (the store is that local directory; see "A local
    /// directory").
    pub fn with_local_root(mut self, root: &std::path::Path) -> Result<Upstream> {
        let reader =
            LocalReader::new(root).map_err(|e| Error::storage(root.display().to_string(), e))?;
        self.local = Some(reader);
        Ok(self)
    }

    fn warmed(&self) -> std::sync::MutexGuard<'_, Warm> {
        // The map holds plain data: a panic elsewhere cannot leave it half-updated.
        self.warm.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads `paths` concurrently for the [`Upstream::get`] calls that follow (see "Warming").
    pub async fn warm_gets(&self, paths: Vec<String>) {
        let done = match &self.local {
            Some(local) if local.reads_inline() => self.warm_local(local, paths).await,
            _ => concurrently(paths, |p| async move { self.fetch(&p).await }).await,
        };
        self.warmed().gets.extend(done);
    }

    /// Warming from a local directory on a disk: one blocking-pool task reads the batch; each
    /// file is counted as a GET, each timed at the batch's mean time per file (a failed one is
    /// dropped, as for any store: the phase's own call repeats it, under the retry policy).
    async fn warm_local(
        &self,
        local: &LocalReader,
        paths: Vec<String>,
    ) -> Vec<(String, Option<Bytes>)> {
        let mut keys = Vec::with_capacity(paths.len());
        let mut parsed = Vec::with_capacity(paths.len());
        for p in paths {
            if let Ok(path) = Self::path(&p) {
                keys.push(p);
                parsed.push(path);
            }
        }
        let t = std::time::Instant::now();
        let read = local.read_many(parsed).await;
        let n = read.len().max(1) as f64;
        let each = t.elapsed().as_secs_f64() / n;
        let mut done = Vec::with_capacity(keys.len());
        for (k, r) in keys.into_iter().zip(read) {
            self.metrics.get_calls.inc();
            self.metrics.get_duration.observe(each);
            if let Ok(body) = r {
                if let Some(b) = &body {
                    self.metrics.bytes_read.inc_by(b.len() as u64);
                }
                done.push((k, body));
            }
        }
        done
    }

    /// Lists `prefixes` concurrently for the [`Upstream::list_dir`] calls that follow (see
    /// "Warming").
    pub async fn warm_lists(&self, prefixes: Vec<String>) {
        let done = concurrently(prefixes, |p| async move { self.list(&p).await }).await;
        self.warmed().lists.extend(done);
    }

    /// Drops every warmed answer not taken (end of a phase or round).
    pub fn forget_warm(&self) {
        let mut w = self.warmed();
        w.gets.clear();
        w.lists.clear();
    }

    /// Sets the attempts per call (at least 1) and the first backoff.
    pub fn with_retry(mut self, attempts: u32, backoff: Duration) -> Upstream {
        self.policy.max_attempts = attempts.max(1);
        self.policy.initial_backoff = backoff;
        self.policy.max_backoff = self.policy.max_backoff.max(backoff);
        self
    }

    fn path(p: &str) -> Result<Path> {
        Path::parse(p).map_err(|e| cdc_common::Error::path(p, e.to_string()).into())
    }

    /// Lists every object under the root, as one call under the retry policy (each attempt
    /// counted as a LIST), handing the names to `send` in batches of at most `batch`, in the
    /// listing's order, as they come. An attempt that fails hands over what it found too, and
    /// the next attempt starts again from the start (see `listing_ahead`).
    pub(super) async fn list_all_in_batches(
        &self,
        batch: usize,
        send: impl Fn(Vec<String>) + Clone,
    ) -> Result<()> {
        self.retry("", || {
            self.metrics.list_calls.inc();
            let send = send.clone();
            let mut listed = self.store.list(None);
            async move {
                let mut names = Vec::with_capacity(batch);
                let ended = loop {
                    match listed.try_next().await {
                        Ok(Some(meta)) => names.push(meta.location.to_string()),
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                    if names.len() == batch {
                        send(std::mem::replace(&mut names, Vec::with_capacity(batch)));
                    }
                };
                if !names.is_empty() {
                    send(names);
                }
                ended
            }
        })
        .await
    }

    /// Runs `f` under the retry policy; the final failure names `what`.
    async fn retry<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>>,
    {
        let mut hook = CountRetries {
            metrics: &self.metrics,
            what,
        };
        retry(&self.policy, what, &mut hook, 1, f)
            .await
            .map_err(|e| match e {
                RetryError::Store { source, .. } => Error::storage(what, source),
                RetryError::Timeout {
                    timeout, attempts, ..
                } => Error::StorageTimeout {
                    path: what.to_string(),
                    timeout,
                    attempts,
                },
            })
    }

    /// Reads a whole object; `None` when it does not exist. A warmed answer is taken.
    pub async fn get(&self, path: &str) -> Result<Option<Bytes>> {
        if let Some(r) = self.warmed().gets.remove(path) {
            return Ok(r);
        }
        self.fetch(path).await
    }

    async fn fetch(&self, path: &str) -> Result<Option<Bytes>> {
        let p = Self::path(path)?;
        // observed when dropped, a failed call too
        let _timer = self.metrics.get_duration.start_timer();
        let r = self
            .retry(path, || async {
                self.metrics.get_calls.inc();
                match &self.local {
                    Some(local) => local.read(&p).await,
                    None => get_if_exists(self.store.as_ref(), &p).await,
                }
            })
            .await?;
        if let Some(b) = &r {
            self.metrics.bytes_read.inc_by(b.len() as u64);
        }
        Ok(r)
    }

    /// Reads a whole object unless its entity tag is still `etag` (a conditional GET, answered
    /// `304 Not Modified` without the body by stores that support it; a store that ignores the
    /// condition returns the object, which the caller compares). One request either way.
    pub async fn get_if_changed(&self, path: &str, etag: Option<&str>) -> Result<Fetched> {
        let p = Self::path(path)?;
        // observed when dropped, a failed call too
        let _timer = self.metrics.get_duration.start_timer();
        let r = self
            .retry(path, || async {
                self.metrics.get_calls.inc();
                let opts = GetOptions {
                    if_none_match: etag.map(str::to_string),
                    ..GetOptions::default()
                };
                match self.store.get_opts(&p, opts).await {
                    Ok(r) => {
                        let tag = r.meta.e_tag.clone();
                        let body = r.bytes().await?;
                        Ok(Fetched::Body(body, tag))
                    }
                    Err(object_store::Error::NotModified { .. }) => Ok(Fetched::Unchanged),
                    Err(object_store::Error::NotFound { .. }) => Ok(Fetched::Missing),
                    Err(e) => Err(e),
                }
            })
            .await?;
        if let Fetched::Body(b, _) = &r {
            self.metrics.bytes_read.inc_by(b.len() as u64);
        }
        Ok(r)
    }

    /// Whether the upstream is a local directory, where a writer may show a file before it is
    /// whole (see `replay::in_place`); an object store publishes an object whole.
    pub fn is_directory(&self) -> bool {
        self.local.is_some()
    }

    /// The same upstream as a directory on a network file system (tests of what differs there).
    #[cfg(test)]
    pub(crate) fn into_network_directory(mut self) -> Upstream {
        self.local = self.local.take().map(LocalReader::into_network);
        self
    }

    /// Whether this host's clock stamps the directory's files: a disk file system (a network
    /// one's server stamps them by its own clock).
    pub fn stamps_files_locally(&self) -> bool {
        self.local.as_ref().is_some_and(LocalReader::reads_inline)
    }

    /// A local directory's file: its length and modification time (`None`: not there, or the
    /// upstream is not a local directory). Retried as a GET is, and counted in
    /// `cdc_consumer_in_place_looks_total` (its one caller's looks), not as a GET.
    pub async fn look(&self, path: &str) -> Result<Option<Look>> {
        let Some(local) = &self.local else {
            return Ok(None);
        };
        let p = Self::path(path)?;
        self.retry(path, || async {
            self.metrics.in_place_looks.inc();
            local.look(&p).await
        })
        .await
    }

    /// Lists one directory level: `(sub-directory names, object names)`. A warmed answer is
    /// taken.
    pub async fn list_dir(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>)> {
        if let Some(r) = self.warmed().lists.remove(prefix) {
            return Ok(r);
        }
        self.list(prefix).await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>)> {
        let p = if prefix.is_empty() {
            None
        } else {
            Some(Self::path(prefix.trim_end_matches('/'))?)
        };
        let r = self
            .retry(prefix, || {
                self.metrics.list_calls.inc();
                self.store.list_with_delimiter(p.as_ref())
            })
            .await?;
        let last = |p: &Path| p.filename().map(str::to_string);
        Ok((
            r.common_prefixes.iter().filter_map(last).collect(),
            r.objects.iter().filter_map(|o| last(&o.location)).collect(),
        ))
    }
}
