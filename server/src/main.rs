//! The `server` binary: parse settings, set up logging, serve until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use palaver_server::config::{Config, LogFormat};
use palaver_server::Server;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Some(command) = &config.command {
        return match palaver_server::commands::run(&config, command).await {
            Ok(out) => {
                // `export` to standard output has already written everything.
                if !out.is_empty() {
                    println!("{out}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("palaver: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    let addr: SocketAddr = match config.bind {
        Some(addr) => addr,
        None => match palaver_server::config::leptos_options() {
            Ok(options) => options.site_addr,
            Err(e) => {
                eprintln!("palaver: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    info!(?config, "starting");
    let server = match Server::start(&config, addr).await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot start");
            eprintln!("palaver: {e}");
            return ExitCode::FAILURE;
        }
    };
    info!("listening on http://{}", server.addr);
    if let Some(metrics) = server.metrics_addr {
        info!("metrics on http://{metrics}/metrics");
    }
    let stopper = server.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutting down: draining, then telling clients to reconnect");
        stopper.stop().await;
    });
    match server.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
