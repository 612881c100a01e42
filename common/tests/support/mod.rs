//! Test support of cdc-common's integration tests, one module included by each test file with
//! `mod support;`: [`fixture`], the table and events every golden file pins and the codec
//! options and encoded file built from them; [`mutation`], random edits of valid files for the
//! corruption property tests. Not every test file uses every helper.
#![allow(dead_code)]

pub mod fixture;
pub mod mutation;
