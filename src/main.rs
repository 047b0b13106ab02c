//! The `dockerhub-build-status` binary: parse flags, set up logging, bind, run the node, and
//! write out the last log lines before it exits.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use dockerhub_build_status::config::{Command, Config, LogFormat};
use dockerhub_build_status::demo;
use dockerhub_build_status::dns;
use dockerhub_build_status::http::server;
use dockerhub_build_status::node::Node;

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        // A bad flag is one clear line on stderr and exit code 2, so it stands out in a
        // journal or `docker logs` instead of clap's usage block.
        Err(err) if err.use_stderr() => return bad_flags(&first_paragraph(&err)),
        // --help and --version: clap prints them to stdout.
        Err(err) => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
    };
    // What clap cannot check flag by flag (say `--cache-ttl 0s`) is a bad flag too.
    if let Err(problem) = config.validate() {
        return bad_flags(&problem);
    }
    let log_format = config.log_format;
    // The demo's three nodes would fill the terminal with request lines; it prints what to
    // open instead, and logs only warnings unless RUST_LOG says otherwise.
    let default_level = if config.command.is_some() {
        "warn"
    } else {
        "info"
    };
    // Kept until the end of main: dropping it writes out what the log writer still holds,
    // after the server has drained and said so.
    let log = dockerhub_build_status::logging::install_stderr(log_format, default_level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            drop(log);
            eprintln!("dockerhub-build-status: error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match config.command {
        Some(Command::Demo { port }) => runtime
            .block_on(demo::run(port, server::shutdown_signal()))
            .map_err(anyhow::Error::from),
        None => runtime.block_on(serve(config)),
    };
    // Background tasks may still log while the runtime winds down.
    drop(runtime);
    match result {
        Ok(()) => {
            drop(log);
            ExitCode::SUCCESS
        }
        Err(err) => {
            // One line naming the problem, in the format the operator chose: a JSON log
            // stream stays all JSON. A text line goes straight to stderr, after every line
            // the log writer still holds.
            match log_format {
                LogFormat::Json => {
                    tracing::error!(error = one_line(&err), "node stopped");
                    drop(log);
                }
                LogFormat::Text => {
                    drop(log);
                    eprintln!("dockerhub-build-status: error: {}", one_line(&err));
                }
            }
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once.
fn one_line(err: &anyhow::Error) -> String {
    dockerhub_build_status::logging::cause_chain(err.as_ref())
}

fn bad_flags(problem: &str) -> ExitCode {
    eprintln!("dockerhub-build-status: error: {problem} (see --help)");
    ExitCode::from(2)
}

/// clap's message up to its first blank line, on one line: "invalid value 'x' for
/// '--listen <LISTEN>': …" without the usage and tips that follow.
fn first_paragraph(err: &clap::Error) -> String {
    let text = err
        .render()
        .to_string()
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    text.strip_prefix("error: ").unwrap_or(&text).to_owned()
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    match dockerhub_build_status::descriptors::raise_soft_limit() {
        Ok(limit) => {
            let budget = dockerhub_build_status::descriptors::Budget::current();
            tracing::info!(limit = ?limit, http = budget.http, dns_tcp = budget.dns_tcp, "open file limit");
        }
        Err(err) => tracing::warn!(error = %err, "cannot raise the open file limit"),
    }
    let listen = config.listen;
    // Bind first, so `--listen 127.0.0.1:0` announces the port it really got.
    let listener = server::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    config.listen = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let dns_sockets = match config.dns_listen {
        Some(addr) => Some(
            dns::Sockets::bind(addr)
                .await
                .with_context(|| format!("cannot listen for DNS on {addr} (UDP and TCP)"))?,
        ),
        None => None,
    };
    let node = Node::new(config)?;
    let config = node.config();
    tracing::info!(listen = %config.listen, url = %node.canonical_url(), key = %node.driver().key(), state_dir = %config.state_dir.display(), hub = %config.hub_url, "node started");
    let dns = match dns_sockets {
        Some(sockets) => Some(start_dns(&node, sockets)?),
        None => None,
    };
    server::run(listener, node, server::shutdown_signal()).await;
    if let Some(dns) = dns {
        dns.shutdown().await;
    }
    tracing::info!("node stopped");
    Ok(())
}

/// Answers DNS for the pool zone with the nodes this node's probes found healthy.
fn start_dns(node: &Node, sockets: dns::Sockets) -> anyhow::Result<dns::DnsServer> {
    let config = node.config();
    let zone_name = config.dns_zone.as_deref().unwrap_or_default();
    let serial = u32::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1),
    )
    .unwrap_or(1);
    let zone = dns::zone::Zone::new(
        zone_name,
        u32::try_from(config.dns_ttl.as_secs()).unwrap_or(60),
        &config.dns_nameservers,
        serial,
        config.allow_private_peers,
    )?;
    let server = dns::DnsServer::start(
        sockets,
        zone,
        node.driver().clone(),
        dns::Limits::new(config.dns_rate_limit),
        node.metrics().clone(),
    )
    .context("cannot start the DNS server")?;
    tracing::info!(listen = %server.local_addr(), zone = %zone_name, "answering DNS for the pool");
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Naming {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        // A cause the message already names is not repeated...
        let err = anyhow::Error::from(Naming {
            path: "p.toml",
            source: io(),
        });
        assert_eq!(one_line(&err), "cannot read p.toml: no such file");
        // ...and one it does not name is added, as context leaves it.
        let err = anyhow::Error::from(io()).context("cannot listen on 127.0.0.1:1");
        assert_eq!(one_line(&err), "cannot listen on 127.0.0.1:1: no such file");
    }
}
