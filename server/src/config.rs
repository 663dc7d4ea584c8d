//! Start-up settings: every one is a flag and an environment variable (`server --help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "palaver",
    version,
    about = "Palaver: real-time multi-room chat server"
)]
pub struct Config {
    /// Address to listen on. Defaults to the `site-addr` cargo-leptos passes (LEPTOS_SITE_ADDR),
    /// then 127.0.0.1:3000.
    #[arg(long, env = "PALAVER_BIND")]
    pub bind: Option<SocketAddr>,

    /// Directory for Palaver's data (the SQLite database `palaver.db` and its WAL files). Created if
    /// missing.
    #[arg(long, env = "PALAVER_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Seconds a room with nobody connected stays in memory before it is unloaded.
    #[arg(long, env = "PALAVER_ROOM_IDLE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub room_idle_secs: u64,

    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, env = "PALAVER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    pub fn room_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.room_idle_secs)
    }
}
