//! The rows a room page shows, in order: messages (marked when they continue a run of one
//! person's), join and leave lines, day lines, and the "new since you left" line.

use leptos::prelude::*;

use super::{Notice, RoomState};
use crate::protocol::{ChatMessage, Seq};

/// One row of the stream: a message, a notice, or the start of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineItem {
    /// A message, and whether it continues a run of the same person's messages (shown without
    /// repeating their name).
    Message(ChatMessage, bool),
    Notice(Notice),
    /// The first message of this day (days since 1970-01-01) follows.
    Day(i64),
    /// "New since you left": the messages after this number arrived while the reader was away.
    NewSince(Seq),
}

/// Messages from one person this close together are one run.
pub const RUN_GAP_MS: i64 = 5 * 60_000;

impl TimelineItem {
    /// A key that is unique across the kinds, for keyed rendering; a message's changes with
    /// it, so an edited or deleted message (or one that joins or leaves a run) is drawn again.
    pub fn key(&self) -> (u8, u64, i64, bool, bool) {
        match self {
            TimelineItem::Message(m, run) => {
                (0, m.seq, m.edited_at_ms.unwrap_or(0), m.deleted, *run)
            }
            TimelineItem::Notice(n) => (1, n.key, 0, false, false),
            TimelineItem::Day(day) => (2, *day as u64, 0, false, false),
            TimelineItem::NewSince(seq) => (3, *seq, 0, false, false),
        }
    }
}

/// Whether `m` continues a run after `prev`: the same person, within [`RUN_GAP_MS`].
fn continues(prev: Option<&ChatMessage>, m: &ChatMessage) -> bool {
    prev.is_some_and(|p| {
        p.sender == m.sender && p.user_id == m.user_id && m.sent_at_ms - p.sent_at_ms <= RUN_GAP_MS
    })
}

impl RoomState {
    /// The rows to show: `local_days` puts day lines in the reader's time zone (else UTC), and
    /// `new_since` puts the "new since you left" line after that message (if any follow it).
    pub fn timeline(&self, local_days: bool, new_since: Option<Seq>) -> Vec<TimelineItem> {
        let notices = self.notices.get();
        self.messages.with(|messages| {
            let mut out = Vec::with_capacity(messages.len() + notices.len());
            let mut pending = notices.into_iter().peekable();
            // The last message shown, while nothing else came between.
            let mut prev: Option<&ChatMessage> = None;
            let mut day = None;
            let mut divided = false;
            for m in messages {
                while let Some(n) = pending.next_if(|n| n.after_seq < m.seq) {
                    // A notice placed before the message just above the first one shown belongs to
                    // older history (not loaded); one right before the first shown is kept.
                    if messages.first().is_some_and(|f| n.after_seq + 1 >= f.seq) {
                        out.push(TimelineItem::Notice(n));
                        prev = None;
                    }
                }
                // Edits and deletes are already applied to their messages.
                if m.kind.is_message() {
                    if new_since.is_some_and(|since| since < m.seq) && !divided {
                        divided = true;
                        if messages
                            .first()
                            .is_some_and(|f| f.seq <= new_since.unwrap_or(0) + 1)
                        {
                            out.push(TimelineItem::NewSince(new_since.unwrap_or(0)));
                            prev = None;
                        }
                    }
                    let today = crate::time::day_of(m.sent_at_ms, local_days);
                    if day != Some(today) {
                        out.push(TimelineItem::Day(today));
                        day = Some(today);
                        prev = None;
                    }
                    out.push(TimelineItem::Message(m.clone(), continues(prev, m)));
                    prev = Some(m);
                }
            }
            out.extend(pending.map(TimelineItem::Notice));
            out
        })
    }
}
