//! Per-user connection cap (`--max-connections-per-user`): a verified user's open WebSockets,
//! counted on this node and, with an engine that nodes share, across every node (each node's
//! count under a lease, renewed every [`ROSTER_REFRESH`]). A node that cannot reach the engine
//! decides on its own count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::engine::{SharedConnections, ROSTER_REFRESH};

/// Open connections by user on this node.
pub(super) struct UserConnections {
    counts: Mutex<HashMap<String, usize>>,
    /// 0: no cap.
    cap: usize,
    shared: Option<Arc<dyn SharedConnections>>,
}

/// One verified user's open connection, counted until dropped.
pub struct UserPermit {
    users: Arc<UserConnections>,
    user: String,
}

impl UserConnections {
    pub(super) fn new(cap: usize, shared: Option<Arc<dyn SharedConnections>>) -> Self {
        Self {
            counts: Mutex::default(),
            cap,
            shared,
        }
    }

    /// Counts a connection of `user`, or refuses it (`None`) at the cap.
    pub(super) async fn open(self: &Arc<Self>, user: &str) -> Option<UserPermit> {
        let count = {
            let mut counts = lock(&self.counts);
            let mine = counts.entry(user.to_owned()).or_default();
            if self.cap > 0 && *mine >= self.cap {
                return None;
            }
            *mine += 1;
            *mine
        };
        let permit = UserPermit {
            users: self.clone(),
            user: user.to_owned(),
        };
        if let Some(shared) = &self.shared {
            match shared.set(user, count, self.cap).await {
                // Dropping the permit gives the place back.
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "shared connection count unavailable; deciding locally")
                }
            }
        }
        Some(permit)
    }

    /// Publishes every count again (renewing the leases) until `shutdown`.
    pub(super) async fn renew_until(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(ROSTER_REFRESH);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let counts: Vec<(String, usize)> = lock(&self.counts)
                .iter()
                .map(|(user, n)| (user.clone(), *n))
                .collect();
            for (user, count) in counts {
                let _ = shared.set(&user, count, 0).await;
            }
        }
    }
}

impl Drop for UserPermit {
    fn drop(&mut self) {
        let count = {
            let mut counts = lock(&self.users.counts);
            let Some(n) = counts.get_mut(&self.user) else {
                return;
            };
            *n -= 1;
            let left = *n;
            if left == 0 {
                counts.remove(&self.user);
            }
            left
        };
        if let Some(shared) = self.users.shared.clone() {
            let user = std::mem::take(&mut self.user);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = shared.set(&user, count, 0).await;
                });
            }
        }
    }
}

/// Every change is one increment or decrement: a poisoned map is still consistent.
fn lock(counts: &Mutex<HashMap<String, usize>>) -> MutexGuard<'_, HashMap<String, usize>> {
    counts.lock().unwrap_or_else(PoisonError::into_inner)
}
