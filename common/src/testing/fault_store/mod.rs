//! A recording, fault-injecting [`ObjectStore`] wrapper for tests of the sink and the consumer
//! (public so that every crate's tests and benches reuse it; it lives here because the consumer
//! must not depend on the sink).
//!
//! [`FaultStore`] records every finished operation with its start and end time (relative to the
//! store's creation), in the order operations finish, and applies [`Rule`]s to operations
//! selected by kind ([`Op`]) and a path substring:
//!
//! | fault | effect |
//! |-------|--------|
//! | [`Fault::Delay`] | wait a fixed time, then run the operation |
//! | [`Fault::RandomDelay`] | wait a time drawn uniformly from a range (seeded) |
//! | [`Fault::Fail`] | fail with a retryable (`Generic`) or permanent (`PermissionDenied`) error |
//! | [`Fault::Hang`] | never finish while the rule exists (the caller's timeout drops it) |
//! | [`Fault::Throughput`] | share one link of a given bandwidth between matching puts |
//! | [`Fault::PartialList`] | a listing leaves out entries (randomly, or only young ones) |
//! | [`Fault::TruncatedList`] | a listing returns only its first entries |
//! | [`Fault::FailListAfter`] | a listing returns its first entries, then a retryable error |
//! | [`Fault::Unconditional`] | a create-only or conditional-update put fails with `NotImplemented` |
//!
//! A rule fires on every matching operation, or only on every `k`-th per path
//! ([`Rule::every`]), with a probability ([`Rule::probability`], the error *rate*), or for the
//! next `n` matches ([`Rule::times`]). **Every** rule that fires applies, in the order the rules
//! were added: delays add up, the first failure ends the operation, listing faults filter the
//! result. So `10% errors + random latency + partial listing` is three rules.
//!
//! # Reproducibility
//!
//! Random draws (probabilities, random delays, partial listings) come from one generator seeded
//! by [`FaultStore::with_seed`], or by `CDC_FAULT_SEED` from the environment, or else by the
//! clock. The first draw prints the seed on stderr, so a failing test can be re-run with the
//! same seed; with concurrent operations the draws are taken in completion order, so a re-run
//! reproduces the same fault mix, not necessarily the same operation getting each fault.
//!
//! # Partial listings model eventually consistent listing
//!
//! [`Fault::PartialList`] with `younger_than: Some(w)` hides (each with probability `hide`) only
//! objects written less than `w` ago (by the inner store's `last_modified`): an object missing
//! from one listing appears in every listing once it is `w` old. GETs are never affected (read
//! after write stays consistent, as on every object store). In a delimiter listing a directory
//! (common prefix) shows iff one of the objects under it shows.
//!
//! ```
//! use cdc_common::testing::{Fault, FaultStore, Op, Rule};
//! use object_store::{memory::InMemory, ObjectStoreExt, path::Path};
//! use std::sync::Arc;
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = FaultStore::new(Arc::new(InMemory::new()));
//! store.add_rule(Rule::new(Op::Put, "fail-me", Fault::Fail { retryable: true }).times(1));
//! assert!(store.put(&Path::from("a/fail-me"), "x".into()).await.is_err());
//! assert!(store.put(&Path::from("a/fail-me"), "x".into()).await.is_ok());
//! assert_eq!(store.completed_puts(), vec!["a/fail-me".to_string()]);
//! # });
//! ```
//!
//! # Files
//!
//! The rules live in `rule.rs`, the shared state and the application of rules in `state.rs`,
//! the listing transforms in `listing.rs`.

mod listing;
mod rule;
mod state;

pub use rule::{Fault, Op, Rule};
pub use state::{Record, SEED_ENV};

use listing::{delimit, truncate};
use state::{lock, State};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The recording, fault-injecting store. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<State>,
}

impl fmt::Debug for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

impl FaultStore {
    /// Wraps `inner`; random draws are seeded from `CDC_FAULT_SEED`, or else from the clock.
    pub fn new(inner: Arc<dyn ObjectStore>) -> FaultStore {
        let seed = std::env::var(SEED_ENV)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
            });
        FaultStore::with_seed(inner, seed)
    }

    /// Wraps `inner` with random draws seeded by `seed`.
    pub fn with_seed(inner: Arc<dyn ObjectStore>, seed: u64) -> FaultStore {
        FaultStore {
            inner,
            state: Arc::new(State::new(seed)),
        }
    }

    /// The seed of the random draws.
    pub fn seed(&self) -> u64 {
        lock(&self.state.rng).seed
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Adds a rule (rules apply in the order added); returns its id.
    pub fn add_rule(&self, rule: Rule) -> u64 {
        let id = self.state.next_rule.fetch_add(1, Ordering::Relaxed);
        lock(&self.state.rules).push((id, rule));
        id
    }

    /// Removes one rule (hung operations under it finish).
    pub fn remove_rule(&self, id: u64) {
        lock(&self.state.rules).retain(|(i, _)| *i != id);
    }

    /// Removes every rule (hung operations finish).
    pub fn clear_rules(&self) {
        lock(&self.state.rules).clear();
        self.state.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Every finished operation, in the order they finished.
    pub fn log(&self) -> Vec<Record> {
        lock(&self.state.log).clone()
    }

    /// Paths of successful puts and multipart uploads, in the order they completed.
    pub fn completed_puts(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|r| r.ok && matches!(r.op, Op::Put | Op::Multipart))
            .map(|r| r.path)
            .collect()
    }

    /// Listing entries left out so far by [`Fault::PartialList`] and [`Fault::TruncatedList`].
    pub fn hidden_entries(&self) -> u64 {
        self.state.hidden.load(Ordering::Relaxed)
    }

    /// Entries (objects and common prefixes) returned by listings so far: with the number of
    /// list calls, what an object store bills for listing (one request per 1,000 entries).
    pub fn listed_entries(&self) -> u64 {
        self.state.listed.load(Ordering::Relaxed)
    }

    /// Failed operations so far.
    pub fn failures(&self) -> usize {
        lock(&self.state.log).iter().filter(|r| !r.ok).count()
    }

    /// Time since the store was created (the clock of [`Record`]s).
    pub fn now(&self) -> Duration {
        self.state.epoch.elapsed()
    }

    async fn run<T>(
        &self,
        op: Op,
        path: &str,
        f: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        let started = self.state.epoch.elapsed();
        let r = match self.state.apply(op, path, 0).await {
            Ok(_) => f.await,
            Err(e) => Err(e),
        };
        self.state.record(op, path, started, r.is_ok());
        r
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let started = self.state.epoch.elapsed();
        let path = location.as_ref();
        let r = match self
            .state
            .apply(Op::Put, path, payload.content_length())
            .await
        {
            Ok(f) if f.unconditional && !matches!(opts.mode, object_store::PutMode::Overwrite) => {
                Err(object_store::Error::NotImplemented {
                    operation: format!("conditional put of {path}"),
                    implementer: "FaultStore (Fault::Unconditional)".into(),
                })
            }
            Ok(_) => self.inner.put_opts(location, payload, opts).await,
            Err(e) => Err(e),
        };
        self.state.record(Op::Put, path, started, r.is_ok());
        r
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let started = self.state.epoch.elapsed();
        if let Err(e) = self.state.apply(Op::Multipart, location.as_ref(), 0).await {
            self.state
                .record(Op::Multipart, location.as_ref(), started, false);
            return Err(e);
        }
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultUpload {
            inner,
            state: Arc::clone(&self.state),
            path: location.to_string(),
            started,
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.run(
            Op::Get,
            location.as_ref(),
            self.inner.get_opts(location, options),
        )
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let state = Arc::clone(&self.state);
        let inner = Arc::clone(&self.inner);
        locations
            .then(move |p| {
                let state = Arc::clone(&state);
                let inner = Arc::clone(&inner);
                async move {
                    let p = p?;
                    let started = state.epoch.elapsed();
                    state
                        .apply(Op::Delete, p.as_ref(), 0)
                        .await
                        .inspect_err(|_| {
                            state.record(Op::Delete, p.as_ref(), started, false);
                        })?;
                    let single = futures::stream::once(futures::future::ready(Ok(p.clone())));
                    let r = inner
                        .delete_stream(single.boxed())
                        .next()
                        .await
                        .unwrap_or(Ok(p.clone()));
                    state.record(Op::Delete, p.as_ref(), started, r.is_ok());
                    r
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let state = Arc::clone(&self.state);
        let p = prefix.map(|p| p.to_string()).unwrap_or_default();
        let inner = self.inner.list(prefix);
        let counted = Arc::clone(&self.state);
        futures::stream::once(async move {
            let started = state.epoch.elapsed();
            let r = state.apply(Op::List, &p, 0).await;
            // A listing that is to fail after some entries fails, as the delimiter one does.
            let ok = r.as_ref().is_ok_and(|f| f.fail_after.is_none());
            state.record(Op::List, &p, started, ok);
            match r {
                Ok(filter) if filter.is_empty() => inner,
                Ok(filter) => {
                    // Truncation needs the whole listing in path order.
                    let keep = filter.keep;
                    let fail_after = filter.fail_after;
                    let st = Arc::clone(&state);
                    let all: object_store::Result<Vec<ObjectMeta>> = inner
                        .try_filter(move |o| {
                            futures::future::ready(
                                st.keeps(&filter, o.last_modified.timestamp_millis()),
                            )
                        })
                        .try_collect()
                        .await;
                    let items: Vec<object_store::Result<ObjectMeta>> = match all {
                        Ok(mut v) => {
                            if let Some(keep) = keep {
                                v.sort_by(|a, b| a.location.cmp(&b.location));
                                let cut = v.len().saturating_sub(keep) as u64;
                                state.hidden.fetch_add(cut, Ordering::Relaxed);
                                v.truncate(keep);
                            }
                            let mut items: Vec<_> = v.into_iter().map(Ok).collect();
                            if let Some(n) = fail_after {
                                items.truncate(n);
                                items.push(Err(listing::failed_after(&p, n)));
                            }
                            items
                        }
                        Err(e) => vec![Err(e)],
                    };
                    futures::stream::iter(items).boxed()
                }
                Err(e) => futures::stream::once(futures::future::ready(Err(e))).boxed(),
            }
        })
        .flatten()
        .inspect_ok(move |_| {
            counted.listed.fetch_add(1, Ordering::Relaxed);
        })
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let p = prefix.map(|p| p.to_string()).unwrap_or_default();
        let started = self.state.epoch.elapsed();
        let filter = match self.state.apply(Op::List, &p, 0).await {
            Ok(f) => f,
            Err(e) => {
                self.state.record(Op::List, &p, started, false);
                return Err(e);
            }
        };
        if let Some(n) = filter.fail_after {
            // One answer: it fails whole.
            self.state.record(Op::List, &p, started, false);
            return Err(listing::failed_after(&p, n));
        }
        let r = if filter.partial.is_empty() {
            self.inner.list_with_delimiter(prefix).await
        } else {
            let state = Arc::clone(&self.state);
            let f = filter.clone();
            self.inner
                .list(prefix)
                .try_filter(move |o| {
                    futures::future::ready(state.keeps(&f, o.last_modified.timestamp_millis()))
                })
                .try_collect::<Vec<_>>()
                .await
                .map(|kept| delimit(prefix, kept))
        };
        let r = match (r, filter.keep) {
            (Ok(l), Some(keep)) => {
                let before = (l.objects.len() + l.common_prefixes.len()) as u64;
                let l = truncate(l, keep);
                let after = (l.objects.len() + l.common_prefixes.len()) as u64;
                self.state
                    .hidden
                    .fetch_add(before - after, Ordering::Relaxed);
                Ok(l)
            }
            (r, _) => r,
        };
        if let Ok(l) = &r {
            let n = (l.objects.len() + l.common_prefixes.len()) as u64;
            self.state.listed.fetch_add(n, Ordering::Relaxed);
        }
        self.state.record(Op::List, &p, started, r.is_ok());
        r
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.run(
            Op::Other,
            to.as_ref(),
            self.inner.copy_opts(from, to, options),
        )
        .await
    }
}

struct FaultUpload {
    inner: Box<dyn MultipartUpload>,
    state: Arc<State>,
    path: String,
    started: Duration,
}

impl fmt::Debug for FaultUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultUpload({})", self.path)
    }
}

#[async_trait]
impl MultipartUpload for FaultUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let state = Arc::clone(&self.state);
        let path = self.path.clone();
        let size = data.content_length();
        let part = self.inner.put_part(data);
        Box::pin(async move {
            state.apply(Op::Multipart, &path, size).await?;
            part.await
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let r = self.inner.complete().await;
        self.state
            .record(Op::Multipart, &self.path, self.started, r.is_ok());
        r
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}
