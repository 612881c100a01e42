//! Fault rules: which operations ([`Op`] kind, path substring) a rule selects, what it does to
//! them ([`Fault`]), and how often it fires (every `k`-th per path, a probability, the next `n`).

use std::collections::HashMap;
use std::time::Duration;

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
    /// Recursive listings (only [`Op::List`]) return their first `entries` entries, then fail
    /// with a retryable error (a connection lost in the middle of a paginated listing); a
    /// delimiter listing, one answer, fails whole.
    FailListAfter {
        /// Entries returned before the error.
        entries: usize,
    },
    /// Puts (only [`Op::Put`]) with a conditional mode (create-only or update) fail with
    /// `NotImplemented`, as on a store without conditional writes (GCS through object_store,
    /// S3 with conditional put disabled); plain overwrites run.
    Unconditional,
}

impl Fault {
    pub(super) fn filters_listings(&self) -> bool {
        matches!(
            self,
            Fault::PartialList { .. } | Fault::TruncatedList { .. } | Fault::FailListAfter { .. }
        )
    }
}

/// A fault rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub(super) op: Option<Op>,
    pub(super) pattern: String,
    pub(super) fault: Fault,
    pub(super) remaining: Option<u64>,
    pub(super) every: u64,
    pub(super) probability: f64,
    pub(super) seen: HashMap<String, u64>,
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

    pub(super) fn matches(&self, op: Op, path: &str) -> bool {
        self.remaining != Some(0) && self.op.is_none_or(|o| o == op) && path.contains(&self.pattern)
    }
}
