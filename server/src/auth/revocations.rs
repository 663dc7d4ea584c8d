//! Revoked users: `server revoke --sub ID` (or an admin) stores the moment; tokens for that user
//! issued up to it no longer count, on every node. Each node reads the list from the engine every
//! [`REVOCATION_POLL`], so a revocation reaches every node within it whichever engine (and
//! whichever process) stored it; open connections of a revoked user are closed then.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::Identity;

/// How often each node reads the revocations again.
pub const REVOCATION_POLL: Duration = Duration::from_secs(2);

/// This node's copy of the revocations.
pub struct Revocations {
    /// User id → revoked at (ms since the epoch).
    revoked: RwLock<HashMap<String, i64>>,
    /// Bumped on every change, so sessions look again.
    changes: watch::Sender<u64>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self {
            revoked: RwLock::default(),
            changes: watch::Sender::new(0),
        }
    }
}

impl Revocations {
    /// Whether `identity`'s token was issued no later than its user's revocation.
    pub fn is_revoked(&self, identity: &Identity) -> bool {
        let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        revoked
            .get(&identity.sub)
            .is_some_and(|at| identity.issued_at_ms <= *at)
    }

    /// Takes the engine's list; sessions are told if it changed.
    pub fn replace(&self, all: HashMap<String, i64>) {
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        if *revoked != all {
            *revoked = all;
            self.changes.send_modify(|v| *v += 1);
        }
    }

    /// Changes to the list, for sessions to check themselves against.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// Reads the engine's revocations into `revocations` every [`REVOCATION_POLL`] until `shutdown`.
pub async fn poll_until(
    directory: std::sync::Arc<dyn crate::engine::Directory>,
    revocations: std::sync::Arc<Revocations>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(REVOCATION_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match directory.revocations().await {
            Ok(all) => revocations.replace(all),
            Err(e) => tracing::debug!(error = %e, "cannot read revocations; keeping the last ones"),
        }
    }
}
