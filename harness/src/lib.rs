//! cdc-harness: what drives and checks cdc-storage from outside, as a CDC service and an operator
//! would: the deterministic workload and its model, and the `generate`, `verify`, `soak` and
//! `demo` jobs built on them. The `cdc-storage` binary dispatches its commands here, and the
//! end-to-end tests (`tests/` of the root package) use the same functions.
//!
//! Dependencies point one way: this crate uses `cdc-common`, `cdc-sink` and `cdc-consumer`;
//! nothing but the root package's binary and tests uses it.
//!
//! | module       | concept                                                                |
//! |--------------|------------------------------------------------------------------------|
//! | [`workload`] | the seeded workload (steps a CDC service hands the sink) and its model |
//! | [`generate`] | plays a workload into a sink, optionally rate-limited or resumed       |
//! | [`verify`]   | compares a downstream database with the model                          |
//! | [`demo`]     | generate, replay into SQLite, verify, summarize                        |
//! | [`soak`]     | generator and consumer together for a bounded time: lag and memory     |
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod demo;
pub mod generate;
pub mod soak;
pub mod verify;
pub mod workload;
