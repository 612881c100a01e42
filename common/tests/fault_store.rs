//! The fault-injecting store itself: error rates, random latency, hangs and partial listings
//! behave as documented, and the same seed draws the same faults.

use cdc_common::testing::{Fault, FaultStore, Op, Rule};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn store_with(paths: &[&str], seed: u64) -> FaultStore {
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    for p in paths {
        inner.put(&Path::from(*p), "x".into()).await.unwrap();
    }
    FaultStore::with_seed(inner, seed)
}

#[tokio::test]
async fn an_error_rate_fails_about_that_share_and_a_seed_repeats_it() {
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let s = store_with(&[], 7).await;
        s.add_rule(Rule::any("", Fault::Fail { retryable: true }).probability(0.1));
        let mut fails = Vec::new();
        for i in 0..1000 {
            let r = s.put(&Path::from(format!("a/{i}")), "x".into()).await;
            fails.push(r.is_err());
        }
        let n = fails.iter().filter(|f| **f).count();
        assert!((50..=150).contains(&n), "{n} failures in 1000 at 10%");
        assert_eq!(s.failures(), n);
        outcomes.push(fails);
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "one seed, two different fault sequences"
    );
}

#[tokio::test]
async fn retryable_and_permanent_failures_classify() {
    let s = store_with(&["a/b"], 1).await;
    s.add_rule(Rule::new(Op::Get, "a/b", Fault::Fail { retryable: true }).times(1));
    s.add_rule(Rule::new(Op::Get, "a/b", Fault::Fail { retryable: false }).times(1));
    let e = s.get(&Path::from("a/b")).await.unwrap_err();
    assert!(cdc_common::storage::is_retryable(&e), "{e}");
    let e = s.get(&Path::from("a/b")).await.unwrap_err();
    assert!(!cdc_common::storage::is_retryable(&e), "{e}");
    assert!(s.get(&Path::from("a/b")).await.is_ok());
}

#[tokio::test]
async fn rules_stack_delays_then_fail() {
    let s = store_with(&[], 1).await;
    s.add_rule(Rule::new(
        Op::Put,
        "",
        Fault::RandomDelay {
            min: Duration::from_millis(20),
            max: Duration::from_millis(30),
        },
    ));
    s.add_rule(Rule::new(Op::Put, "bad", Fault::Fail { retryable: true }));
    let t = Instant::now();
    assert!(s.put(&Path::from("ok"), "x".into()).await.is_ok());
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert!(s.put(&Path::from("bad"), "x".into()).await.is_err());
}

#[tokio::test]
async fn a_hang_used_up_by_times_still_holds_until_removed() {
    let s = store_with(&[], 1).await;
    let id = s.add_rule(Rule::new(Op::Put, "", Fault::Hang).times(1));
    let hung = {
        let s = s.clone();
        tokio::spawn(async move { s.put(&Path::from("h"), "x".into()).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!hung.is_finished(), "a hung put finished on its own");
    // The rule is used up: the next put passes while the first still hangs.
    s.put(&Path::from("next"), "x".into()).await.unwrap();
    assert!(!hung.is_finished());
    s.remove_rule(id);
    hung.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_partial_listing_hides_a_random_subset_that_later_listings_show() {
    let paths: Vec<String> = (0..40).map(|i| format!("d/f{i:02}")).collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let s = store_with(&refs, 3).await;
    let id = s.add_rule(Rule::new(
        Op::List,
        "",
        Fault::PartialList {
            hide: 0.5,
            younger_than: None,
        },
    ));
    let listed: Vec<_> = s.list(Some(&Path::from("d"))).try_collect().await.unwrap();
    assert!(!listed.is_empty() && listed.len() < 40, "{}", listed.len());
    let delim = s.list_with_delimiter(None).await.unwrap();
    // One directory with 40 objects: hidden only if all 40 are.
    assert_eq!(delim.common_prefixes, vec![Path::from("d")]);
    s.remove_rule(id);
    let all: Vec<_> = s.list(Some(&Path::from("d"))).try_collect().await.unwrap();
    assert_eq!(all.len(), 40);
}

#[tokio::test]
async fn eventually_consistent_listing_hides_only_young_objects() {
    let s = store_with(&["old/a", "old/b"], 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.inner()
        .put(&Path::from("young/c"), "x".into())
        .await
        .unwrap();
    s.add_rule(Rule::new(
        Op::List,
        "",
        Fault::PartialList {
            hide: 1.0,
            younger_than: Some(Duration::from_millis(200)),
        },
    ));
    let l = s.list_with_delimiter(None).await.unwrap();
    assert_eq!(l.common_prefixes, vec![Path::from("old")]);
    let l = s
        .list_with_delimiter(Some(&Path::from("old")))
        .await
        .unwrap();
    assert_eq!(l.objects.len(), 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let l = s.list_with_delimiter(None).await.unwrap();
    assert_eq!(
        l.common_prefixes,
        vec![Path::from("old"), Path::from("young")]
    );
}

#[tokio::test]
async fn a_truncated_listing_returns_a_prefix_in_path_order() {
    let s = store_with(&["d/a", "d/b", "d/c", "d/e/x"], 1).await;
    s.add_rule(Rule::new(Op::List, "", Fault::TruncatedList { keep: 2 }).times(2));
    let l = s.list_with_delimiter(Some(&Path::from("d"))).await.unwrap();
    let names: Vec<String> = l.objects.iter().map(|o| o.location.to_string()).collect();
    assert_eq!(names, vec!["d/a", "d/b"]);
    assert!(l.common_prefixes.is_empty());
    let all: Vec<_> = s.list(None).try_collect().await.unwrap();
    assert_eq!(all.len(), 2);
    // Used up: the next listing is whole.
    let all: Vec<_> = s.list(None).try_collect().await.unwrap();
    assert_eq!(all.len(), 4);
}
