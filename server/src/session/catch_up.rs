//! Catch-up: stored messages a session has not written yet, read from the engine by sequence
//! number in pages, never through the room task (so a big catch-up never slows a room down). A
//! session catches up on join, and whenever it fell behind the room's live buffer.
//!
//! Numbers are never reused, so a hole between what the client has and what the engine returns
//! can only be retention's doing: the client is told (`removed`) and gets what remains, in order.
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
use crate::redact::LogName;

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
                    warn!(room = %self.room.logged(), client = %self.who, error = %e, "catch-up read failed");
                    End::Close(close_code::SERVICE_RESTART, "storage unavailable")
                })?;
            if page.is_empty() {
                // Up to `until` is committed: what the engine no longer has, retention removed.
                if let Some(upto) = until.filter(|u| *u > *sent_seq) {
                    self.removed(sent_seq, upto).await?;
                }
                return Ok(());
            }
            // A page goes out with one flush.
            let mut written = 0;
            let mut past_until = false;
            for m in page {
                if until.is_some_and(|u| m.seq > u) {
                    past_until = true;
                    break;
                }
                if m.seq > *sent_seq + 1 {
                    self.removed(sent_seq, m.seq - 1).await?;
                }
                self.dialect.encode(Outgoing::History(&m), &mut self.out);
                self.socket.feed_all(&mut self.out).await?;
                written += 1;
                *sent_seq = m.seq;
            }
            self.socket.flush().await?;
            self.state.metrics.deliveries.inc_by(written);
            if past_until {
                return Ok(());
            }
        }
    }
}

impl<D: Dialect> Session<'_, D> {
    /// Tells the client that messages after `sent_seq` up to `upto` are gone, and moves on.
    async fn removed(&mut self, sent_seq: &mut Seq, upto: Seq) -> Result<(), End> {
        let after = *sent_seq;
        self.dialect
            .encode(Outgoing::Removed { after, upto }, &mut self.out);
        self.socket.write_all(&mut self.out).await?;
        *sent_seq = upto;
        Ok(())
    }
}

/// Waits until the client's history budget has `messages` to spend, and spends them.
async fn pay_for_reads(guard: &Guard, who: ClientKey, messages: usize) {
    while let Err(wait) = guard.check_reads(who, messages).await {
        tokio::time::sleep(wait).await;
    }
}
