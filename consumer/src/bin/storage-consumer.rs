//! `storage-consumer`: replays cdc-storage data into a downstream database.
fn main() {
    eprintln!("storage-consumer: not built yet (see the consumer issue)");
    std::process::exit(2);
}
