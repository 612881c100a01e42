//! The integration tests of cdc-storage: one module per file of this directory, linked
//! into one test binary.
//!
//! Each test binary links the whole dependency tree (about 80 MB in a debug build). One
//! binary per test file made the workspace's test build 6.7 GiB, more than a CI disk of a
//! few GiB holds (the linker died of SIGBUS writing into a full disk); one per crate links
//! once.
//!
//! Tests of different files run side by side here, two at a time as tests of one file
//! always did, so no module may change what belongs to the whole process, nor lean on a
//! default path that two processes cannot share: every generator here gets a spool
//! directory of its own (a spool directory is locked by the process that uses it).
//! The files that do are binaries of their own (Cargo.toml, `autotests = false`):
//! - soak (samples the resident memory of its own process and requires it flat)

mod support;

mod consumer_group;
mod crash_recovery;
mod dashboard_metrics;
mod end_to_end;
mod odd_names;
mod parquet_readback;
mod progress_bars;
mod prometheus;
mod reliability_faults;
mod sink_nodes;
mod summary_rounds;
