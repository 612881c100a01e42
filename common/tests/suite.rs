//! The integration tests of cdc-common: one module per file of this directory, linked
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
//! - decode_allocations (its own `#[global_allocator]` counts allocations)
//! - storage_credentials (sets and removes credential variables in the environment)

mod support;

mod codec_corrupt;
mod codec_golden;
mod codec_roundtrip;
mod fault_store;
mod layout_props;
mod parquet_codec;
mod storage_backends;
