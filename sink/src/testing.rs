//! Test support, re-exported from `cdc_common::testing` so that sink tests and benches keep
//! their imports: [`FaultStore`], the recording, fault-injecting store wrapper, and its rules.
//! It lives in cdc-common because the consumer's tests use it too and the consumer never
//! depends on the sink.

pub use cdc_common::testing::fault_store::{Fault, FaultStore, Op, Record, Rule, SEED_ENV};
