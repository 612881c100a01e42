//! cdc-storage: the root package's library side: the deterministic workload and its model,
//! the `generate`, `verify` and `demo` commands, shared with the end-to-end tests.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bench;
pub mod demo;
pub mod generate;
pub mod soak;
pub mod verify;
pub mod workload;
