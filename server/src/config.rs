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

    /// Longest message, in characters.
    #[arg(long, env = "PALAVER_MAX_MESSAGE_CHARS", default_value_t = app::limits::MAX_MESSAGE_CHARS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=16_000))]
    pub max_message_chars: usize,

    /// Longest message, in UTF-8 bytes (at most 16000).
    #[arg(long, env = "PALAVER_MAX_MESSAGE_BYTES", default_value_t = app::limits::MAX_MESSAGE_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=app::limits::MESSAGE_BYTES_CEILING as u64))]
    pub max_message_bytes: usize,

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
    pub fn message_limits(&self) -> app::limits::MessageLimits {
        app::limits::MessageLimits {
            max_chars: self.max_message_chars,
            max_bytes: self.max_message_bytes,
        }
    }

    pub fn room_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.room_idle_secs)
    }
}
