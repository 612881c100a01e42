//! cdc-spool: the memory-quota spool between the sink's encoding pool and its writers.
//!
//! It will hold encoded messages in memory up to a quota, spill the rest to append-only
//! `segment-<id>.log` files, and hold or release dispatcher wake callbacks with high/low
//! watermark hysteresis. (Built out by the spool issue.)
#![deny(unsafe_code)]
