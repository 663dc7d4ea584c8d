//! Palaver's load generator. `loadgen bench` runs the whole grid and `loadgen nodes` the Redis
//! engine's (see `docs/BENCHMARKS.md`); the other subcommands run one piece by hand.

mod bench;
mod ceiling;
mod crowd;
mod disk;
mod fanout;
mod idle;
mod nodes;
mod report;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Palaver's load generator and ceiling server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the ceiling server (the simplest possible broadcaster) until killed.
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:3900")]
        bind: SocketAddr,
    },
    /// One fan-out scenario against a running server.
    Fanout {
        /// Address of a Palaver server (or of the ceiling with --ceiling).
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
        #[arg(long)]
        ceiling: bool,
        /// Through the edge-chat demo's endpoint (`/api/room/<room>/websocket`) instead of
        /// Palaver's own protocol.
        #[arg(long, conflicts_with = "ceiling")]
        edge_chat: bool,
        #[arg(long, default_value_t = 1)]
        rooms: usize,
        #[arg(long, default_value_t = 100)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        senders: usize,
        #[arg(long, default_value_t = 200)]
        messages: usize,
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Messages per second per sender instead of a window.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Idle connections against a running server: connect, join rooms of 100, hold, report the
    /// server's memory per connection (with --pid), then let go.
    Idle {
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
        #[arg(long)]
        ceiling: bool,
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// The server's process id, to read its memory from /proc.
        #[arg(long)]
        pid: Option<u32>,
        /// Seconds to hold them before the second reading.
        #[arg(long, default_value_t = 5)]
        hold_secs: u64,
    },
    /// Builds nothing; runs the scenario grid against the given binaries and rewrites the results
    /// section of the benchmarks page and its chart.
    Bench {
        /// The Palaver server binary (release build).
        #[arg(long, default_value = "target/release/server")]
        server: PathBuf,
        /// The page whose results section is rewritten.
        #[arg(long, default_value = "docs/BENCHMARKS.md")]
        page: PathBuf,
        /// Where the chart goes.
        #[arg(long, default_value = "docs/benchmarks.svg")]
        chart: PathBuf,
        /// Idle-connection counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "10000,50000")]
        idle: Vec<usize>,
        /// How long the idle connections are held before memory is read a second time (600
        /// for the ten-minute check).
        #[arg(long, default_value_t = 30)]
        idle_hold_secs: u64,
    },
    /// Runs the Redis-engine scenarios (one node, then two nodes sharing one Redis) and rewrites
    /// the "Several nodes" section of the benchmarks page.
    Nodes {
        /// The Palaver server binary (release build).
        #[arg(long, default_value = "target/release/server")]
        server: PathBuf,
        /// The Redis the nodes share.
        #[arg(
            long,
            env = "PALAVER_TEST_REDIS_URL",
            default_value = "redis://127.0.0.1:6379"
        )]
        redis: String,
        /// The page whose "Several nodes" section is rewritten.
        #[arg(long, default_value = "docs/BENCHMARKS.md")]
        page: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ceiling { bind } => match ceiling::listen(bind) {
            Ok(listener) => {
                if let Ok(addr) = listener.local_addr() {
                    println!("ceiling listening on http://{addr}");
                }
                ceiling::serve(listener).await.map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("--bind {bind}: {e}")),
        },
        Command::Fanout {
            addr,
            ceiling,
            edge_chat,
            rooms,
            clients,
            senders,
            messages,
            window,
            rate,
        } => {
            let target = if ceiling {
                fanout::Target::Ceiling(addr)
            } else if edge_chat {
                fanout::Target::EdgeChat(addr)
            } else {
                fanout::Target::Palaver(addr)
            };
            let scenario = fanout::Scenario {
                rooms,
                clients_per_room: clients,
                senders_per_room: senders.min(clients),
                messages_per_sender: messages,
                window,
                rate,
                room_prefix: format!("fanout-{}", std::process::id()),
            };
            fanout::run(&target, &scenario).await.map(|outcome| {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&outcome).unwrap_or_default()
                );
            })
        }
        Command::Idle {
            addr,
            ceiling,
            connections,
            pid,
            hold_secs,
        } => {
            let server = addr.parse().map_err(|e| format!("--addr {addr}: {e}"));
            match server {
                Ok(server) => {
                    let target = if ceiling {
                        fanout::Target::Ceiling(addr)
                    } else {
                        fanout::Target::Palaver(addr)
                    };
                    let hold = std::time::Duration::from_secs(hold_secs);
                    let room = format!("idle-{}", std::process::id());
                    let (outcome, held) =
                        idle::run(&target, server, pid.unwrap_or(0), connections, &room, hold)
                            .await;
                    drop(held);
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&outcome).unwrap_or_default()
                    );
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Command::Bench {
            server,
            page,
            chart,
            idle,
            idle_hold_secs,
        } => {
            let hold = std::time::Duration::from_secs(idle_hold_secs);
            bench::run(&server, &page, &chart, &idle, hold).await
        }
        Command::Nodes {
            server,
            redis,
            page,
        } => nodes::run(&server, &redis, &page).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
