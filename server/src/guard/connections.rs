//! Connection caps: open WebSockets per client (`--max-connections-per-ip`; an IPv6 network counts
//! as one) and in total (`--max-connections`), counted by permits that give their place back
//! when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::ClientKey;

/// Why a connection was refused before its upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefused {
    /// This address already has `max_connections_per_ip` open.
    PerAddress,
    /// The server already has `max_connections` open.
    ServerFull,
}

/// One open connection, counted until dropped.
pub struct ConnectionPermit {
    counts: Arc<Mutex<HashMap<ClientKey, usize>>>,
    ip: ClientKey,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut by_ip = lock(&self.counts);
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

/// Open connections by address. The map holds only addresses with open connections, so it is
/// bounded by the total cap.
#[derive(Clone)]
pub(super) struct Connections {
    by_ip: Arc<Mutex<HashMap<ClientKey, usize>>>,
    per_ip: usize,
    total: usize,
}

impl Connections {
    pub(super) fn new(per_ip: usize, total: usize) -> Self {
        Self {
            by_ip: Arc::default(),
            per_ip,
            total,
        }
    }

    /// Counts a new connection from `ip`, or refuses it.
    pub(super) fn open(&self, ip: ClientKey) -> Result<ConnectionPermit, ConnectionRefused> {
        self.open_within(ip, self.per_ip)
    }

    /// Counts a connection from a client that no per-client cap applies to (a trusted proxy
    /// carries many clients' connections).
    pub(super) fn open_uncapped(
        &self,
        ip: ClientKey,
    ) -> Result<ConnectionPermit, ConnectionRefused> {
        self.open_within(ip, usize::MAX)
    }

    fn open_within(
        &self,
        ip: ClientKey,
        per_ip: usize,
    ) -> Result<ConnectionPermit, ConnectionRefused> {
        let mut by_ip = lock(&self.by_ip);
        let total: usize = by_ip.values().sum();
        if total >= self.total {
            return Err(ConnectionRefused::ServerFull);
        }
        let mine = by_ip.entry(ip).or_default();
        if *mine >= per_ip {
            return Err(ConnectionRefused::PerAddress);
        }
        *mine += 1;
        Ok(ConnectionPermit {
            counts: self.by_ip.clone(),
            ip,
        })
    }
}

/// Every change is one increment or decrement: a poisoned map is still consistent.
fn lock(counts: &Mutex<HashMap<ClientKey, usize>>) -> MutexGuard<'_, HashMap<ClientKey, usize>> {
    counts.lock().unwrap_or_else(PoisonError::into_inner)
}
