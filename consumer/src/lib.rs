//! cdc-consumer: discovery, decoding, ordering and apply of cdc-storage data into a downstream
//! database. (Built out by the consumer issue.)
#![deny(unsafe_code)]
