//! The integration tests of cdc-spool: one module per file of this directory, linked
//! into one test binary.
//!
//! Each test binary links the whole dependency tree (about 80 MB in a debug build). One
//! binary per test file made the workspace's test build 6.7 GiB, more than a CI disk of a
//! few GiB holds (the linker died of SIGBUS writing into a full disk); one per crate links
//! once.
//!
//! Tests of different files run side by side here, two at a time as tests of one file
//! always did, so no module may change what belongs to the whole process.
//! The files that do are binaries of their own (Cargo.toml, `autotests = false`):
//! - mapped_read (counts the spool's mappings and open files in the whole process)

mod support;

mod behaviour;
mod concurrent;
mod corruption;
mod disk_full;
mod enqueue_many;
mod model;
