//! What Palaver's tests and load generator start, in one place:
//!
//! - [`process`]: a server binary as a child process on a free port (for what only a process can
//!   show: SIGKILL, SIGTERM, several nodes, release builds under load);
//! - [`redis`]: the Redis the tests share ([`redis::shared_url`]), a private `redis-server` to stop
//!   or kill, and a three-primary Redis Cluster.
//!
//! Everything started here is killed when its handle is dropped.

pub mod process;
pub mod redis;

/// Settings that lift every per-address budget (messages, joins, requests, history), for tests
/// and load that come from one address in bulk and are not about those budgets.
pub const RELAXED_RATE_LIMIT: &[&str] = &[
    "--rate-limit-burst",
    "1000000",
    "--join-rate-limit-burst",
    "1000000",
    "--http-rate-limit-burst",
    "1000000",
    "--history-rate-limit-burst",
    "100000000",
];

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
