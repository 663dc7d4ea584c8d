//! Start-up settings, and the only place their defaults are written: every one is a flag and an
//! environment variable (`server --help`); the Leptos site settings come from cargo-leptos's
//! `LEPTOS_*` environment or Palaver's defaults ([`leptos_options`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

mod auth;
mod engine;
mod site;

pub use auth::{AuthArgs, Command, ExportFormat, Via};
pub use engine::{EngineKind, RedisUrl};
pub use site::leptos_options;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "palaver",
    version,
    about = "Palaver: real-time multi-room chat server"
)]
pub struct Config {
    /// Run a command instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub auth: AuthArgs,

    /// Address to listen on. Defaults to the `site-addr` cargo-leptos passes (LEPTOS_SITE_ADDR),
    /// then 127.0.0.1:3000.
    #[arg(long, env = "PALAVER_BIND")]
    pub bind: Option<SocketAddr>,

    /// Where history lives: `embedded` (SQLite in --data-dir, the default), a Redis URL
    /// (`redis://[:password@]host:port[/db]`) or a Redis Cluster's nodes
    /// (`redis+cluster://[:password@]host:port,host:port`). Several nodes on one Redis share
    /// rooms: history, numbering, live delivery, rosters and the per-IP rate limit (connection
    /// caps stay per node; see docs/OPERATIONS.md).
    #[arg(long, env = "PALAVER_ENGINE", default_value = "embedded", value_parser = EngineKind::parse, global = true)]
    pub engine: EngineKind,

    /// Serve the site's CSS, Wasm and JS from this folder (a `cargo leptos build` output, e.g.
    /// target/site) instead of the copy built into a release binary. Unset: the built-in copy,
    /// else the folder cargo-leptos names (LEPTOS_SITE_ROOT), else target/site.
    #[arg(long, env = "PALAVER_SITE_DIR")]
    pub site_dir: Option<PathBuf>,

    /// Directory for Palaver's data (the SQLite database `palaver.db` and its WAL files). Created if
    /// missing.
    #[arg(long, env = "PALAVER_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// Largest the embedded database may grow, in MiB: past it, messages are refused (rooms
    /// report storage as unavailable, browsers keep what was typed) until room is made. 0: as
    /// large as the disk allows.
    #[arg(long, env = "PALAVER_MAX_DATABASE_MB", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub max_database_mb: u64,

    /// Newest messages each room keeps; older ones are removed as new ones come (a resend of a
    /// removed message is then stored again). 0: all of them.
    #[arg(long, env = "PALAVER_RETAIN_MESSAGES", default_value_t = 0)]
    pub retain_messages: u64,

    /// Days a message is kept after it was sent; older ones are no longer shown and are removed
    /// within minutes. 0: forever.
    #[arg(long, env = "PALAVER_RETAIN_DAYS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=36_500))]
    pub retain_days: u64,

    /// Seconds a room with nobody connected stays in memory before it is unloaded.
    #[arg(long, env = "PALAVER_ROOM_IDLE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub room_idle_secs: u64,

    /// Seconds a room that has no messages at all stays in memory once nobody is connected (a
    /// flood of fresh room names then leaves nothing behind for long).
    #[arg(long, env = "PALAVER_EMPTY_ROOM_IDLE_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub empty_room_idle_secs: u64,

    /// Rooms this node keeps in memory at once. A join that would open one more is refused
    /// (`server_busy`, close 4013); rooms already open are not disturbed.
    #[arg(long, env = "PALAVER_MAX_ROOMS", default_value_t = 10_000,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    pub max_rooms: usize,

    /// In rooms with more people than this, joins and leaves are not named (only counted), as big
    /// chat services do.
    #[arg(long, env = "PALAVER_PRESENCE_QUIET_ABOVE", default_value_t = 100,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10_000_000))]
    pub presence_quiet_above: usize,

    /// Longest message, in characters.
    #[arg(long, env = "PALAVER_MAX_MESSAGE_CHARS", default_value_t = app::limits::MAX_MESSAGE_CHARS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=16_000))]
    pub max_message_chars: usize,

    /// Longest message, in UTF-8 bytes (at most 16000).
    #[arg(long, env = "PALAVER_MAX_MESSAGE_BYTES", default_value_t = app::limits::MAX_MESSAGE_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=app::limits::MESSAGE_BYTES_CEILING as u64))]
    pub max_message_bytes: usize,

    /// Messages one IP address may send at once (across all rooms) before the rate applies.
    #[arg(long, env = "PALAVER_RATE_LIMIT_BURST", default_value_t = 10,
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=1_000_000))]
    pub rate_limit_burst: u32,

    /// Sustained rate per IP address: one message per this many milliseconds.
    #[arg(long, env = "PALAVER_RATE_LIMIT_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=3_600_000))]
    pub rate_limit_interval_ms: u64,

    /// WebSocket connections (each is one join) one IP address may open at once before the
    /// sustained rate applies (across all rooms and both protocols). Over it: HTTP 429 with
    /// Retry-After.
    #[arg(long, env = "PALAVER_JOIN_RATE_LIMIT_BURST", default_value_t = 20,
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=1_000_000))]
    pub join_rate_limit_burst: u32,

    /// Sustained join rate per IP address: one connection per this many milliseconds.
    #[arg(long, env = "PALAVER_JOIN_RATE_LIMIT_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=3_600_000))]
    pub join_rate_limit_interval_ms: u64,

    /// Requests for pages and the API one IP address may make at once before the sustained rate
    /// applies (static files do not count). Over it: HTTP 429 with Retry-After.
    #[arg(long, env = "PALAVER_HTTP_RATE_LIMIT_BURST", default_value_t = 60,
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=1_000_000))]
    pub http_rate_limit_burst: u32,

    /// Sustained request rate per IP address: one request per this many milliseconds.
    #[arg(long, env = "PALAVER_HTTP_RATE_LIMIT_INTERVAL_MS", default_value_t = 250,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=3_600_000))]
    pub http_rate_limit_interval_ms: u64,

    /// History messages one IP address may read at once (catching up on a WebSocket, loading
    /// pages) before the sustained rate applies. Past it, catch-up slows down (nothing is lost)
    /// and history requests get HTTP 429.
    #[arg(long, env = "PALAVER_HISTORY_RATE_LIMIT_BURST", default_value_t = 20_000,
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(500..=100_000_000))]
    pub history_rate_limit_burst: u32,

    /// Sustained history reading per IP address, in messages a second.
    #[arg(long, env = "PALAVER_HISTORY_RATE_LIMIT", default_value_t = 2_000,
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=100_000_000))]
    pub history_rate_limit: u32,

    /// IPv6 clients count towards every per-address limit by their network of this many bits (a
    /// host or home is routinely given a whole /64).
    #[arg(long, env = "PALAVER_IPV6_PREFIX_LEN", default_value_t = 64,
          value_parser = clap::builder::RangedU64ValueParser::<u8>::new().range(16..=128))]
    pub ipv6_prefix_len: u8,

    /// Reverse proxies whose X-Forwarded-For / Forwarded headers are trusted (comma-separated IPs).
    /// From anyone else these headers are ignored.
    #[arg(long, env = "PALAVER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// The address people use to reach this server, scheme included, e.g.
    /// https://chat.example.org (comma-separated if several). When set, WebSockets must come from
    /// pages of these origins, and requests must carry their hosts as `Host` (421 otherwise), so
    /// other sites and DNS rebinding are refused. Unset (development): an Origin must name the
    /// requested host, and any Host is served.
    #[arg(long, env = "PALAVER_PUBLIC_ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
    pub public_origin: Vec<String>,

    /// More `Host` values to serve besides the public origins' (comma-separated), e.g. an
    /// internal name health checks use.
    #[arg(long, env = "PALAVER_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Origins allowed to open WebSockets besides the site's own, e.g. https://chat.example.org
    /// (comma-separated). Other origins get 403.
    #[arg(long, env = "PALAVER_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Open WebSockets one IP address may have at once (several tabs and rooms each count).
    #[arg(long, env = "PALAVER_MAX_CONNECTIONS_PER_IP", default_value_t = 32,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections_per_ip: usize,

    /// Open WebSockets one verified user may have at once, on every node together (several
    /// tabs and rooms each count). 0: no limit.
    #[arg(long, env = "PALAVER_MAX_CONNECTIONS_PER_USER", default_value_t = 32,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1_000_000))]
    pub max_connections_per_user: usize,

    /// Open WebSockets one room may have, on every node together. 0: no limit.
    #[arg(long, env = "PALAVER_MAX_CONNECTIONS_PER_ROOM", default_value_t = 0,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10_000_000))]
    pub max_connections_per_room: usize,

    /// Messages one verified user may send at once (across all rooms, devices and addresses)
    /// before the rate applies; the per-address limit applies too.
    #[arg(long, env = "PALAVER_USER_RATE_LIMIT_BURST", default_value_t = 10,
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=1_000_000))]
    pub user_rate_limit_burst: u32,

    /// Sustained rate per verified user: one message per this many milliseconds.
    #[arg(long, env = "PALAVER_USER_RATE_LIMIT_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=3_600_000))]
    pub user_rate_limit_interval_ms: u64,

    /// Open TCP connections (page loads, API calls and WebSockets together) one IP address may
    /// have at once; more are closed as soon as they are accepted. Trusted proxies are exempt.
    #[arg(long, env = "PALAVER_MAX_HTTP_CONNECTIONS_PER_IP", default_value_t = 256,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_http_connections_per_ip: usize,

    /// How long a connection may take to send a request's head (request line and headers), in
    /// milliseconds; a slower one is closed.
    #[arg(long, env = "PALAVER_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(100..=600_000))]
    pub header_read_timeout_ms: u64,

    /// How long a request (body included) may take before it is answered with 408, in
    /// milliseconds. WebSockets are not requests once upgraded.
    #[arg(long, env = "PALAVER_REQUEST_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(100..=3_600_000))]
    pub request_timeout_ms: u64,

    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "PALAVER_MAX_REQUEST_BODY_BYTES", default_value_t = 65_536,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1_024..=100_000_000))]
    pub max_request_body_bytes: usize,

    /// Open WebSockets the server accepts at once.
    #[arg(long, env = "PALAVER_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    pub max_connections: usize,

    /// How often the server pings each WebSocket, in milliseconds. Keeps idle connections alive
    /// through proxies (nginx closes idle proxied connections after 60 s by default).
    #[arg(long, env = "PALAVER_PING_INTERVAL_MS", default_value_t = 20_000,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(100..=600_000))]
    pub ping_interval_ms: u64,

    /// A client silent this long (no pong, no frame), in milliseconds, is disconnected and leaves
    /// the roster. Two missed pings plus room for a slow mobile network.
    #[arg(long, env = "PALAVER_PEER_TIMEOUT_MS", default_value_t = 45_000,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(200..=3_600_000))]
    pub peer_timeout_ms: u64,

    /// A client that does not take a frame within this many milliseconds (it stopped reading) is
    /// disconnected; until then it holds no more than its socket buffers.
    #[arg(long, env = "PALAVER_WRITE_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(100..=600_000))]
    pub write_timeout_ms: u64,

    /// Messages one connection may have sent and not yet had acknowledged; beyond this the
    /// server stops reading from it until acknowledgements catch up.
    #[arg(long, env = "PALAVER_MAX_PENDING_PER_CONNECTION", default_value_t = 32,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub max_pending_per_connection: usize,

    /// Seconds after sending during which an author may edit or delete their message (moderators
    /// delete any message at any time). 0: authors cannot change their messages.
    #[arg(long, env = "PALAVER_EDIT_WINDOW_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(0..=2_592_000))]
    pub edit_window_secs: u64,

    /// On SIGTERM/SIGINT: seconds to wait for sessions to be told to reconnect and for the last
    /// commits, before exiting anyway.
    #[arg(long, env = "PALAVER_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub shutdown_timeout_secs: u64,

    /// On SIGTERM/SIGINT: milliseconds to keep serving with `/readyz` unready before closing
    /// connections, so a load balancer stops sending new clients first.
    #[arg(long, env = "PALAVER_DRAIN_DELAY_MS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub drain_delay_ms: u64,

    /// Serve `/metrics` on this address instead of the main one (keeps metrics off the public
    /// port), e.g. 127.0.0.1:9100.
    #[arg(long, env = "PALAVER_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, env = "PALAVER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--public-origin`: `http(s)://host[:port]`, nothing more.
fn parse_origin(value: &str) -> Result<String, String> {
    let origin = value.trim().trim_end_matches('/');
    let scheme_ok = origin.starts_with("https://") || origin.starts_with("http://");
    match crate::guard::origin_host(origin) {
        Some(_) if scheme_ok => Ok(origin.to_owned()),
        _ => Err("expected an origin such as https://chat.example.org (no path)".into()),
    }
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

    pub fn guard_settings(&self) -> crate::guard::GuardSettings {
        crate::guard::GuardSettings {
            posts: crate::guard::Budget::new(self.rate_limit_burst, self.rate_limit_interval_ms),
            user_posts: crate::guard::Budget::new(
                self.user_rate_limit_burst,
                self.user_rate_limit_interval_ms,
            ),
            max_connections_per_user: self.max_connections_per_user,
            joins: crate::guard::Budget::new(
                self.join_rate_limit_burst,
                self.join_rate_limit_interval_ms,
            ),
            requests: crate::guard::Budget::new(
                self.http_rate_limit_burst,
                self.http_rate_limit_interval_ms,
            ),
            reads: crate::guard::Budget::per_second(
                self.history_rate_limit,
                self.history_rate_limit_burst,
            ),
            ipv6_prefix_len: self.ipv6_prefix_len,
            trusted_proxies: self.trusted_proxies.clone(),
            allowed_origins: self.allowed_origins.clone(),
            public_origins: self.public_origin.clone(),
            allowed_hosts: self
                .public_origin
                .iter()
                .filter_map(|o| crate::guard::origin_host(o).map(str::to_owned))
                .chain(self.allowed_hosts.iter().cloned())
                .collect(),
            max_connections_per_ip: self.max_connections_per_ip,
            max_connections: self.max_connections,
            max_http_connections_per_ip: self.max_http_connections_per_ip,
        }
    }

    pub fn http_settings(&self) -> crate::web::HttpSettings {
        crate::web::HttpSettings {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_body: self.max_request_body_bytes,
        }
    }

    pub fn session_settings(&self) -> crate::session::SessionSettings {
        crate::session::SessionSettings {
            ping_interval: Duration::from_millis(self.ping_interval_ms),
            peer_timeout: Duration::from_millis(self.peer_timeout_ms),
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            max_pending: self.max_pending_per_connection,
            edit_window: Duration::from_secs(self.edit_window_secs),
        }
    }

    /// `--max-database-mb` in bytes, if set.
    pub fn max_database_bytes(&self) -> Option<u64> {
        (self.max_database_mb > 0).then(|| self.max_database_mb * 1024 * 1024)
    }

    /// What history keeps (`--retain-messages`, `--retain-days`).
    pub fn retention(&self) -> crate::engine::Retention {
        crate::engine::Retention {
            keep_last: (self.retain_messages > 0).then_some(self.retain_messages),
            max_age: (self.retain_days > 0)
                .then(|| std::time::Duration::from_secs(self.retain_days * 86_400)),
        }
    }

    /// Settings for room tasks, which count into `metrics` and run on `tasks`.
    pub fn room_settings(
        &self,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
        tasks: tokio_util::task::TaskTracker,
    ) -> crate::room::RoomSettings {
        crate::room::RoomSettings {
            idle_timeout: Duration::from_secs(self.room_idle_secs),
            empty_idle_timeout: Duration::from_secs(self.empty_room_idle_secs),
            presence_quiet_above: self.presence_quiet_above,
            max_connections: self.max_connections_per_room,
            metrics,
            tasks,
        }
    }

    /// Every setting at its default (tests build on it).
    #[cfg(test)]
    pub fn defaults() -> Self {
        Self::parse_from(["palaver"])
    }
}
