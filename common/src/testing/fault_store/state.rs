//! The state a [`FaultStore`](super::FaultStore) and its uploads share: the rules in the order
//! added, the log of finished operations, the seeded generator, the shared link of
//! [`Fault::Throughput`], and the application of the rules that fire to one operation.
//!
//! Invariant: every random draw comes from the one seeded generator, so a seed reproduces the
//! fault mix (not which concurrent operation gets each fault).

use super::rule::{Fault, Op, Rule};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable that fixes the seed of every [`FaultStore`](super::FaultStore) built with
/// [`FaultStore::new`](super::FaultStore::new).
pub const SEED_ENV: &str = "CDC_FAULT_SEED";

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
pub(super) struct Rng {
    pub(super) state: u64,
    pub(super) seed: u64,
    pub(super) announce: Once,
}

impl Rng {
    pub(super) fn next_u64(&mut self) -> u64 {
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
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the listing rules that fired do to one listing.
#[derive(Clone, Debug, Default)]
pub(super) struct ListFilter {
    /// `(hide, younger_than)` of each partial-listing rule.
    pub(super) partial: Vec<(f64, Option<Duration>)>,
    /// Smallest `keep` of the truncating rules.
    pub(super) keep: Option<usize>,
    /// Smallest `entries` of the [`Fault::FailListAfter`] rules.
    pub(super) fail_after: Option<usize>,
    /// A [`Fault::Unconditional`] rule fired (read by puts, not listings).
    pub(super) unconditional: bool,
}

impl ListFilter {
    pub(super) fn is_empty(&self) -> bool {
        self.partial.is_empty() && self.keep.is_none() && self.fail_after.is_none()
    }
}

pub(super) struct State {
    pub(super) epoch: Instant,
    pub(super) rules: Mutex<Vec<(u64, Rule)>>,
    pub(super) next_rule: AtomicU64,
    pub(super) log: Mutex<Vec<Record>>,
    pub(super) generation: AtomicU64,
    pub(super) link_free_at: Mutex<Instant>,
    pub(super) rng: Mutex<Rng>,
    /// Listing entries left out by partial or truncated listings.
    pub(super) hidden: AtomicU64,
    /// Entries (objects and common prefixes) returned by listings.
    pub(super) listed: AtomicU64,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// Fresh state: no rules, an empty log, the generator seeded with `seed`.
    pub(super) fn new(seed: u64) -> State {
        State {
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
            listed: AtomicU64::new(0),
        }
    }

    pub(super) fn record(&self, op: Op, path: &str, started: Duration, ok: bool) {
        let finished = self.epoch.elapsed();
        lock(&self.log).push(Record {
            op,
            path: path.to_string(),
            started,
            finished,
            ok,
        });
    }

    pub(super) fn unit(&self) -> f64 {
        lock(&self.rng).unit()
    }

    /// Waits until the link has carried `size` bytes at `bytes_per_sec`.
    pub(super) async fn transfer(&self, size: usize, bytes_per_sec: u64) {
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
    pub(super) fn fire(&self, op: Op, path: &str) -> Vec<(u64, Fault)> {
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
    pub(super) async fn apply(
        &self,
        op: Op,
        path: &str,
        size: usize,
    ) -> object_store::Result<ListFilter> {
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
                Fault::FailListAfter { entries } => {
                    filter.fail_after = Some(filter.fail_after.map_or(entries, |k| k.min(entries)))
                }
                Fault::Unconditional => filter.unconditional = true,
            }
        }
        Ok(filter)
    }

    /// Waits until rule `id` is removed (or every rule is cleared).
    pub(super) async fn hang(&self, id: u64) {
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
    pub(super) fn keeps(&self, filter: &ListFilter, modified_ms: i64) -> bool {
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
