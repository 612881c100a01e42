//! `storage-consumer`: replays cdc-storage data into a downstream database.
//!
//! Exit status: 0 when `--once` finished or `--until-ts` was reached, 1 on an error (the message
//! names the object at fault), 2 on a usage error (clap).

use cdc_consumer::config::{Args, Config};
use cdc_consumer::freshness::Health;
use cdc_consumer::metrics::Metrics;
use cdc_consumer::secrets::Secrets;
use clap::Parser;
use std::sync::{Arc, Mutex};

fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
    // Secrets of the URIs never reach the terminal, even inside a driver's error text.
    let secrets = Secrets::from_uris(&[&args.upstream_uri, &args.downstream_uri]);
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("storage-consumer: {}", secrets.redact(&e.to_string()));
        std::process::exit(1);
    }
}

async fn run(args: Args) -> cdc_consumer::Result<()> {
    let cfg = Config::from_args(&args)?;
    tracing::info!(
        upstream = %cfg.upstream_redacted,
        downstream = %cfg.downstream_redacted,
        protocol = cfg.sink.protocol.name(),
        "storage-consumer starting"
    );
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(Health::default()));
    if let Some(addr) = cfg.metrics_addr {
        let bound = cdc_consumer::http::serve(addr, health.clone(), metrics.clone()).await?;
        tracing::info!(addr = %bound, "serving /health and /metrics");
    }
    let r = cdc_consumer::replayer(&cfg, metrics, health).await?;
    cdc_consumer::run(&cfg, r).await
}
