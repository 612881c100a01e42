//! `cdc-capture`: the capture command on its own (the same code as `cdc-storage capture`), so
//! that the crate's tests can run it as a child process and kill it.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "cdc-capture",
    version,
    about = "PostgreSQL logical replication into cloud storage"
)]
struct Cli {
    #[command(flatten)]
    args: cdc_capture::CaptureArgs,
    /// Log filter.
    #[arg(long, default_value = "warn", env = "RUST_LOG")]
    log_level: String,
}

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = rt.block_on(cdc_capture::run(cli.args)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
