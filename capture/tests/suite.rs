//! The integration tests of cdc-capture: one module per file of this directory, linked
//! into one test binary.
//!
//! Each test binary links the whole dependency tree (about 80 MB in a debug build). One
//! binary per test file made the workspace's test build 6.7 GiB, more than a CI disk of a
//! few GiB holds (the linker died of SIGBUS writing into a full disk); one per crate links
//! once.
//!
//! Tests of different files run side by side here, two at a time as tests of one file
//! always did, so no module may change what belongs to the whole process.
//! None of these files does (Cargo.toml, `autotests = false`, lists this binary).

mod support;

mod bad_setup;
mod crash_restart;
mod end_to_end;
mod idle_slot;
mod keyless_transactions;
mod metrics;
mod reconnect;
mod snapshot_files;
