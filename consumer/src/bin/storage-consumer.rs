//! `storage-consumer`: replays cdc-storage data into a downstream database.
//!
//! Exit status: 0 when `--once` finished or `--until-ts` was reached, 1 on an error (the message
//! names the object at fault), 2 on a usage error (clap).

fn main() {
    // Flags from the command line, the environment and the `--config` file.
    let args =
        cdc_consumer::config_file::parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Log lines go above `--once`'s progress bar, never into it.
        .with_writer(cdc_consumer::progress_bar::LogWriter)
        // Colour codes only for a person at a terminal, never into log files or shippers.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("storage-consumer: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    // The error text comes back with the URIs' secrets redacted.
    if let Err(e) = rt.block_on(cdc_consumer::main_with(&args)) {
        eprintln!("storage-consumer: {e}");
        std::process::exit(1);
    }
}
