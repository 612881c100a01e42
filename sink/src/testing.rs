//! A recording, fault-injecting [`ObjectStore`] wrapper for tests (public so that end-to-end
//! and reliability tests reuse it).
//!
//! [`FaultStore`] records every operation with its start and end time (relative to the store's
//! creation), in the order operations finish, and applies [`Rule`]s: delay, fail (retryable or
//! not) or hang operations selected by kind and a path substring, for the next `n` matches or
//! forever. Hung operations wait until the rule is removed ([`FaultStore::clear_rules`]) or the
//! caller's timeout drops them.
//!
//! ```
//! use cdc_sink::testing::{Fault, FaultStore, Op, Rule};
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
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An operation kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A single put.
    Put,
    /// A multipart upload (applied when it starts; recorded when it completes).
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
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long, then run the operation.
    Delay(Duration),
    /// Fail with a retryable (`Generic`) or non-retryable (`PermissionDenied`) error.
    Fail {
        /// Whether the error is retryable.
        retryable: bool,
    },
    /// Never finish while the rule exists.
    Hang,
    /// Model a shared link of this bandwidth: each matching put (or multipart part) waits for
    /// the link to be free, then for its size at this rate.
    Throughput {
        /// Bytes per second of the link.
        bytes_per_sec: u64,
    },
}

/// A fault rule.
#[derive(Clone, Debug)]
pub struct Rule {
    op: Option<Op>,
    pattern: String,
    fault: Fault,
    remaining: Option<u64>,
    every: u64,
    seen: std::collections::HashMap<String, u64>,
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
            seen: Default::default(),
        }
    }

    /// Applies `fault` to operations of every kind.
    pub fn any(pattern: impl Into<String>, fault: Fault) -> Rule {
        Rule {
            op: None,
            pattern: pattern.into(),
            fault,
            remaining: None,
            every: 1,
            seen: Default::default(),
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

    fn matches(&self, op: Op, path: &str) -> bool {
        self.op.is_none_or(|o| o == op) && path.contains(&self.pattern)
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

struct State {
    epoch: Instant,
    rules: Mutex<Vec<(u64, Rule)>>,
    next_rule: AtomicU64,
    log: Mutex<Vec<Record>>,
    generation: AtomicU64,
    link_free_at: Mutex<Instant>,
}

impl State {
    fn record(&self, op: Op, path: &str, started: Duration, ok: bool) {
        let finished = self.epoch.elapsed();
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Record {
                op,
                path: path.to_string(),
                started,
                finished,
                ok,
            });
    }

    /// Applies the first matching rule; `Err` when the operation must fail.
    async fn apply(&self, op: Op, path: &str) -> object_store::Result<()> {
        self.apply_sized(op, path, 0).await
    }

    /// Waits until the link has carried `size` bytes at `bytes_per_sec`.
    async fn transfer(&self, size: usize, bytes_per_sec: u64) {
        let cost = Duration::from_secs_f64(size as f64 / bytes_per_sec.max(1) as f64);
        let done = {
            let mut free = self.link_free_at.lock().unwrap_or_else(|e| e.into_inner());
            let start = (*free).max(Instant::now());
            *free = start + cost;
            *free
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(done)).await;
    }

    /// Applies the first matching rule to an operation carrying `size` bytes.
    async fn apply_sized(&self, op: Op, path: &str, size: usize) -> object_store::Result<()> {
        let hit = {
            let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            let pos = rules.iter().position(|(_, r)| r.matches(op, path));
            pos.and_then(|i| {
                let (id, r) = &mut rules[i];
                let seen = r.seen.entry(path.to_string()).or_insert(0);
                *seen += 1;
                if *seen % r.every != 0 {
                    return None;
                }
                let out = (*id, r.fault);
                if let Some(n) = r.remaining.as_mut() {
                    *n -= 1;
                    if *n == 0 {
                        rules.remove(i);
                    }
                }
                Some(out)
            })
        };
        let Some((id, fault)) = hit else {
            return Ok(());
        };
        match fault {
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Fault::Throughput { bytes_per_sec } => {
                self.transfer(size, bytes_per_sec).await;
                Ok(())
            }
            Fault::Fail { retryable: true } => Err(object_store::Error::Generic {
                store: "FaultStore",
                source: format!("injected retryable failure of {op:?} {path}").into(),
            }),
            Fault::Fail { retryable: false } => Err(object_store::Error::PermissionDenied {
                path: path.to_string(),
                source: format!("injected permanent failure of {op:?} {path}").into(),
            }),
            Fault::Hang => {
                let gen = self.generation.load(Ordering::Acquire);
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let alive = self
                        .rules
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                        .any(|(i, _)| *i == id);
                    if !alive || self.generation.load(Ordering::Acquire) != gen {
                        return Ok(());
                    }
                }
            }
        }
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
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> FaultStore {
        FaultStore {
            inner,
            state: Arc::new(State {
                epoch: Instant::now(),
                rules: Mutex::new(Vec::new()),
                next_rule: AtomicU64::new(0),
                log: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
                link_free_at: Mutex::new(Instant::now()),
            }),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Adds a rule (rules are tried in the order added); returns its id.
    pub fn add_rule(&self, rule: Rule) -> u64 {
        let id = self.state.next_rule.fetch_add(1, Ordering::Relaxed);
        self.state
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, rule));
        id
    }

    /// Removes one rule (hung operations under it finish).
    pub fn remove_rule(&self, id: u64) {
        self.state
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| *i != id);
    }

    /// Removes every rule (hung operations finish).
    pub fn clear_rules(&self) {
        self.state
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.state.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Every finished operation, in the order they finished.
    pub fn log(&self) -> Vec<Record> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Paths of successful puts and multipart uploads, in the order they completed.
    pub fn completed_puts(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|r| r.ok && matches!(r.op, Op::Put | Op::Multipart))
            .map(|r| r.path)
            .collect()
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
        let r = match self.state.apply(op, path).await {
            Ok(()) => f.await,
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
            .apply_sized(Op::Put, path, payload.content_length())
            .await
        {
            Ok(()) => self.inner.put_opts(location, payload, opts).await,
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
        if let Err(e) = self.state.apply(Op::Multipart, location.as_ref()).await {
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
                    state.apply(Op::Delete, p.as_ref()).await.inspect_err(|_| {
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
            let r = state.apply(Op::List, &p).await;
            state.record(Op::List, &p, started, r.is_ok());
            match r {
                Ok(()) => inner,
                Err(e) => futures::stream::once(futures::future::ready(Err(e))).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let p = prefix.map(|p| p.to_string()).unwrap_or_default();
        self.run(Op::List, &p, self.inner.list_with_delimiter(prefix))
            .await
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
            state.apply_sized(Op::Multipart, &path, size).await?;
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
