//! The integration tests of cdc-sink: one module per file of this directory, linked
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
//! - keyless_cut (installs the process's one log subscriber, at WARN)
//! - security (installs the process's one log subscriber, at TRACE)

mod support;

mod api;
mod bad_input;
mod change_summary;
mod checkpoint_clamp;
mod checkpoint_writers;
mod cleanup_requests;
mod data_file_names;
mod ddl_restart;
mod faults_scale;
mod metrics_http;
mod model;
mod node_checkpoint;
mod partial_listing;
mod pipeline;
mod reentrant_order;
mod schema_reuse;
mod storage_retry_timeout;
mod store_down;
