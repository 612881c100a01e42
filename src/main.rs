//! `cdc-storage`: demo, generate, verify and bench commands.
fn main() {
    eprintln!("cdc-storage: commands arrive with the demo issue");
    std::process::exit(2);
}
