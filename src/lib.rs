//! cdc-storage: the root package's library side: the deterministic workload and its model,
//! shared by the `generate`, `verify`, `demo` and `bench` commands and the end-to-end tests.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod workload;
