//! Catch-up: stored messages a session has not written yet, read from the engine by sequence
//! number in pages, never through the room task (so a big catch-up never slows a room down). A
//! session catches up on join, and whenever it fell behind the room's live buffer.
//!
//! Every page is paid for from the client's history budget (`--history-rate-limit-*`, shared by
//! all its connections and its page loads): past it the session waits before the next page, so
//! one client replaying a long history cannot starve the engine; it still gets every message,
//! only later.

use app::protocol::{close_code, Seq};
use tracing::warn;

use super::dialect::{Dialect, Outgoing};
use super::run::{End, Session};
use crate::guard::{ClientKey, Guard};

/// Messages read from the engine per page.
const CATCH_UP_PAGE: usize = 500;

impl<D: Dialect> Session<'_, D> {
    /// Writes stored messages after `sent_seq`, up to `until` (or until the engine has no more),
    /// moving `sent_seq` along.
    pub(super) async fn catch_up(
        &mut self,
        sent_seq: &mut Seq,
        until: Option<Seq>,
    ) -> Result<(), End> {
        let history = self.state.rooms.history().clone();
        loop {
            if until.is_some_and(|u| *sent_seq >= u) {
                return Ok(());
            }
            let expected = until.map_or(CATCH_UP_PAGE, |u| {
                usize::try_from(u - *sent_seq).map_or(CATCH_UP_PAGE, |n| n.min(CATCH_UP_PAGE))
            });
            pay_for_reads(&self.state.guard, self.who, expected).await;
            let page = history
                .after(&self.room, *sent_seq, CATCH_UP_PAGE)
                .await
                .map_err(|e| {
                    warn!(error = %e, "catch-up read failed");
                    End::Close(close_code::SERVICE_RESTART, "storage unavailable")
                })?;
            if page.is_empty() {
                return Ok(());
            }
            for m in page {
                if until.is_some_and(|u| m.seq > u) {
                    return Ok(());
                }
                self.dialect.encode(Outgoing::History(&m), &mut self.out);
                self.socket.write_all(&mut self.out).await?;
                self.state.metrics.deliveries.inc();
                *sent_seq = m.seq;
            }
        }
    }
}

/// Waits until the client's history budget has `messages` to spend, and spends them.
async fn pay_for_reads(guard: &Guard, who: ClientKey, messages: usize) {
    while let Err(wait) = guard.check_reads(who, messages).await {
        tokio::time::sleep(wait).await;
    }
}
