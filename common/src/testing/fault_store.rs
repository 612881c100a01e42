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

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable that fixes the seed of every [`FaultStore`] built with
/// [`FaultStore::new`].
pub const SEED_ENV: &str = "CDC_FAULT_SEED";

/// An operation kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A single put.
    Put,
    /// A multipart upload (applied when it starts and to each part; recorded when it completes).
    Multipart,
    /// A get.
    Get,
    /// A list (recursive or with delimiter).
    List,
    /// A delete.
    Delete,
    /// Any other operation (copy, rename).
    Other,
}

/// What a rule does to a matching operation.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Fault {
    /// Wait this long, then run the operation.
    Delay(Duration),
    /// Wait a time drawn uniformly from `min..=max`, then run the operation.
    RandomDelay {
        /// Shortest wait.
        min: Duration,
        /// Longest wait.
        max: Duration,
    },
    /// Fail with a retryable (`Generic`) or non-retryable (`PermissionDenied`) error.
    Fail {
        /// Whether the error is retryable.
        retryable: bool,
    },
    /// Never finish while the rule exists (also after `times(n)` is used up: only
    /// [`FaultStore::remove_rule`] or [`FaultStore::clear_rules`] release it).
    Hang,
    /// Model a shared link of this bandwidth: each matching put (or multipart part) waits for
    /// the link to be free, then for its size at this rate.
    Throughput {
        /// Bytes per second of the link.
        bytes_per_sec: u64,
    },
    /// Listings (only [`Op::List`]) leave out each entry with probability `hide`; with
    /// `younger_than: Some(w)` only entries whose object was written less than `w` ago.
    PartialList {
        /// Probability that an eligible entry is left out of one listing.
        hide: f64,
        /// Only objects younger than this are eligible (`None`: every entry).
        younger_than: Option<Duration>,
    },
    /// Listings (only [`Op::List`]) return only their first `keep` entries in path order.
    TruncatedList {
        /// Entries kept.
        keep: usize,
    },
}

impl Fault {
    fn filters_listings(&self) -> bool {
        matches!(
            self,
            Fault::PartialList { .. } | Fault::TruncatedList { .. }
        )
    }
}

/// A fault rule.
#[derive(Clone, Debug)]
pub struct Rule {
    op: Option<Op>,
    pattern: String,
    fault: Fault,
    remaining: Option<u64>,
    every: u64,
    probability: f64,
    seen: HashMap<String, u64>,
}

impl Rule {
    /// Applies `fault` to operations of kind `op` whose path contains `pattern` ("" = any).
    pub fn new(op: Op, pattern: impl Into<String>, fault: Fault) -> Rule {
        Rule {
            op: Some(op),
            pattern: pattern.into(),
            fault,
            remaining: None,
            every: 1,
            probability: 1.0,
            seen: HashMap::new(),
        }
    }

    /// Applies `fault` to operations of every kind.
    pub fn any(pattern: impl Into<String>, fault: Fault) -> Rule {
        Rule {
            op: None,
            ..Rule::new(Op::Other, pattern, fault)
        }
    }

    /// Only every `k`-th matching operation **on each path** (the others pass untouched), so
    /// that a retried operation meets the fault at most once in `k` attempts.
    pub fn every(mut self, k: u64) -> Rule {
        self.every = k.max(1);
        self
    }

    /// Only the next `n` matches.
    pub fn times(mut self, n: u64) -> Rule {
        self.remaining = Some(n);
        self
    }

    /// Fires on each matching operation with probability `p` (0..=1), drawn from the store's
    /// seeded generator: `Fault::Fail` with `probability(0.1)` is a 10% error rate.
    pub fn probability(mut self, p: f64) -> Rule {
        self.probability = p.clamp(0.0, 1.0);
        self
    }

    fn matches(&self, op: Op, path: &str) -> bool {
        self.remaining != Some(0) && self.op.is_none_or(|o| o == op) && path.contains(&self.pattern)
    }
}

/// One recorded operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The operation.
    pub op: Op,
    /// The path (or list prefix).
    pub path: String,
    /// When it started, since the store was created.
    pub started: Duration,
    /// When it finished.
    pub finished: Duration,
    /// Whether it succeeded.
    pub ok: bool,
}

/// SplitMix64: a tiny, well-mixed generator; enough for fault draws and reproducible by seed.
struct Rng {
    state: u64,
    seed: u64,
    announce: Once,
}

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.announce.call_once(|| {
            eprintln!(
                "FaultStore: random faults with seed {} (set {SEED_ENV}={} to reproduce)",
                self.seed, self.seed
            )
        });
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0.0..1.0`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the listing rules that fired do to one listing.
#[derive(Clone, Debug, Default)]
struct ListFilter {
    /// `(hide, younger_than)` of each partial-listing rule.
    partial: Vec<(f64, Option<Duration>)>,
    /// Smallest `keep` of the truncating rules.
    keep: Option<usize>,
}

impl ListFilter {
    fn is_empty(&self) -> bool {
        self.partial.is_empty() && self.keep.is_none()
    }
}

struct State {
    epoch: Instant,
    rules: Mutex<Vec<(u64, Rule)>>,
    next_rule: AtomicU64,
    log: Mutex<Vec<Record>>,
    generation: AtomicU64,
    link_free_at: Mutex<Instant>,
    rng: Mutex<Rng>,
    /// Listing entries left out by partial or truncated listings.
    hidden: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn record(&self, op: Op, path: &str, started: Duration, ok: bool) {
        let finished = self.epoch.elapsed();
        lock(&self.log).push(Record {
            op,
            path: path.to_string(),
            started,
            finished,
            ok,
        });
    }

    fn unit(&self) -> f64 {
        lock(&self.rng).unit()
    }

    /// Waits until the link has carried `size` bytes at `bytes_per_sec`.
    async fn transfer(&self, size: usize, bytes_per_sec: u64) {
        let cost = Duration::from_secs_f64(size as f64 / bytes_per_sec.max(1) as f64);
        let done = {
            let mut free = lock(&self.link_free_at);
            let start = (*free).max(Instant::now());
            *free = start + cost;
            *free
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(done)).await;
    }

    /// The rules that fire for one operation, in the order added (counters and draws taken).
    fn fire(&self, op: Op, path: &str) -> Vec<(u64, Fault)> {
        let mut rules = lock(&self.rules);
        let mut out = Vec::new();
        for (id, r) in rules.iter_mut() {
            if !r.matches(op, path) {
                continue;
            }
            if r.fault.filters_listings() && op != Op::List {
                continue;
            }
            let seen = r.seen.entry(path.to_string()).or_insert(0);
            *seen += 1;
            if *seen % r.every != 0 {
                continue;
            }
            if r.probability < 1.0 && self.unit() >= r.probability {
                continue;
            }
            if let Some(n) = r.remaining.as_mut() {
                *n -= 1;
            }
            out.push((*id, r.fault));
            if matches!(r.fault, Fault::Fail { .. }) {
                // The operation ends here: later rules neither fire nor count it.
                break;
            }
        }
        // Used-up rules go, except hangs: those wait for an explicit removal.
        rules.retain(|(_, r)| r.remaining != Some(0) || r.fault == Fault::Hang);
        out
    }

    /// Applies the rules that fire to an operation carrying `size` bytes; `Err` when it must
    /// fail. Returns what listing rules do to the result.
    async fn apply(&self, op: Op, path: &str, size: usize) -> object_store::Result<ListFilter> {
        let mut filter = ListFilter::default();
        for (id, fault) in self.fire(op, path) {
            match fault {
                Fault::Delay(d) => tokio::time::sleep(d).await,
                Fault::RandomDelay { min, max } => {
                    let span = max.saturating_sub(min).as_secs_f64();
                    let d = min + Duration::from_secs_f64(span * self.unit());
                    tokio::time::sleep(d).await;
                }
                Fault::Throughput { bytes_per_sec } => self.transfer(size, bytes_per_sec).await,
                Fault::Fail { retryable: true } => {
                    return Err(object_store::Error::Generic {
                        store: "FaultStore",
                        source: format!("injected retryable failure of {op:?} {path}").into(),
                    })
                }
                Fault::Fail { retryable: false } => {
                    return Err(object_store::Error::PermissionDenied {
                        path: path.to_string(),
                        source: format!("injected permanent failure of {op:?} {path}").into(),
                    })
                }
                Fault::Hang => self.hang(id).await,
                Fault::PartialList { hide, younger_than } => {
                    filter.partial.push((hide, younger_than))
                }
                Fault::TruncatedList { keep } => {
                    filter.keep = Some(filter.keep.map_or(keep, |k| k.min(keep)))
                }
            }
        }
        Ok(filter)
    }

    /// Waits until rule `id` is removed (or every rule is cleared).
    async fn hang(&self, id: u64) {
        let gen = self.generation.load(Ordering::Acquire);
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let alive = lock(&self.rules).iter().any(|(i, _)| *i == id);
            if !alive || self.generation.load(Ordering::Acquire) != gen {
                return;
            }
        }
    }

    /// True when a partial-listing draw keeps an object last modified at `modified_ms`.
    fn keeps(&self, filter: &ListFilter, modified_ms: i64) -> bool {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let age = Duration::from_millis(now_ms.saturating_sub(modified_ms).max(0) as u64);
        let keep = filter.partial.iter().all(|(hide, younger)| {
            let eligible = younger.is_none_or(|w| age < w);
            !(eligible && self.unit() < *hide)
        });
        if !keep {
            self.hidden.fetch_add(1, Ordering::Relaxed);
        }
        keep
    }
}

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
            state: Arc::new(State {
                epoch: Instant::now(),
                rules: Mutex::new(Vec::new()),
                next_rule: AtomicU64::new(0),
                log: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
                link_free_at: Mutex::new(Instant::now()),
                rng: Mutex::new(Rng {
                    state: seed,
                    seed,
                    announce: Once::new(),
                }),
                hidden: AtomicU64::new(0),
            }),
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

/// A delimiter listing of `prefix` computed from the objects a filtered recursive listing kept:
/// a directory shows iff one of its kept objects shows.
fn delimit(prefix: Option<&Path>, kept: Vec<ObjectMeta>) -> ListResult {
    let root = prefix.cloned().unwrap_or_default();
    let mut dirs = BTreeSet::new();
    let mut objects = Vec::new();
    for o in kept {
        let rest: Vec<_> = match o.location.prefix_match(&root) {
            Some(parts) => parts.collect(),
            None => continue,
        };
        match rest.len() {
            0 => {}
            1 => objects.push(o),
            _ => {
                dirs.insert(root.clone().join(rest[0].clone()));
            }
        }
    }
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    ListResult {
        common_prefixes: dirs.into_iter().collect(),
        objects,
        extensions: Default::default(),
    }
}

/// Keeps the first `keep` entries (directories and objects together) in path order.
fn truncate(mut r: ListResult, keep: usize) -> ListResult {
    let mut names: Vec<Path> = r
        .common_prefixes
        .iter()
        .chain(r.objects.iter().map(|o| &o.location))
        .cloned()
        .collect();
    names.sort();
    names.truncate(keep);
    r.common_prefixes.retain(|p| names.contains(p));
    r.objects.retain(|o| names.contains(&o.location));
    r
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
        futures::stream::once(async move {
            let started = state.epoch.elapsed();
            let r = state.apply(Op::List, &p, 0).await;
            state.record(Op::List, &p, started, r.is_ok());
            match r {
                Ok(filter) if filter.is_empty() => inner,
                Ok(filter) => {
                    // Truncation needs the whole listing in path order.
                    let keep = filter.keep;
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
                            v.into_iter().map(Ok).collect()
                        }
                        Err(e) => vec![Err(e)],
                    };
                    futures::stream::iter(items).boxed()
                }
                Err(e) => futures::stream::once(futures::future::ready(Err(e))).boxed(),
            }
        })
        .flatten()
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
