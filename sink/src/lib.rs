//! cdc-sink: the cloud-storage CDC sink that CDC services embed.
//!
//! It will hold the Sink API, the encoding pool, dispatcher routing, the writers that publish
//! data, index and schema files, the checkpoint file and cleanup. (Built out by the sink issue.)
#![deny(unsafe_code)]
