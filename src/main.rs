//! The `dockerhub-build-status` binary: parse flags, set up logging, bind, run the node.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use dockerhub_build_status::config::{Config, LogFormat};
use dockerhub_build_status::node::Node;
use dockerhub_build_status::server;

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(err) => {
            // clap prints --help and --version to stdout and exits 0 for them; a bad flag is
            // one clear message on stderr and exit code 2.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("dockerhub-build-status: error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "node stopped");
            eprintln!("dockerhub-build-status: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let node = Node::new(config)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    tracing::info!(listen = %local, url = %node.public_url(), "node started");
    server::run(listener, node, server::shutdown_signal()).await;
    tracing::info!("node stopped");
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
