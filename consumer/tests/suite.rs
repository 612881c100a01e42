//! The integration tests of cdc-consumer: one module per file of this directory, linked
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
//! - config_file (removes `CDC_CONSUMER_*` variables from the environment)
//! - secrets (installs the process's log subscriber and reads all that is logged)
//! - settle_wait (sets `CDC_CONSUMER_SETTLE_WAIT_SECS` in the environment)

mod support;

mod alert_rules;
mod bad_input;
mod cli;
mod crash_restart;
mod create_batch;
mod discovery_calls;
mod downstream_tls;
mod downstreams;
mod file_units;
mod first_round;
mod group;
mod hostile_names;
mod http_bind;
mod http_health;
mod idle_rounds;
mod in_place_writes;
mod latency;
mod lock_conflicts;
mod quarantine;
mod random_storage;
mod restart_rounds;
mod rounds;
mod sink_restart_replays;
mod split_commit_ts;
mod sqlite_e2e;
mod status_browser;
mod status_page;
mod store_faults;
mod summary_rounds;
mod ticdc_all_types;
mod ticdc_fixture;
mod ticdc_storage;
mod wait;
