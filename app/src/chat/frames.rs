//! What each frame from the server does to a room page's state: messages delivered, the outbox
//! acknowledged or held back, roster and presence, storage status, what retention removed. Kept
//! apart from the socket task, which only decides when to connect, send and give up.

use leptos::prelude::*;

use super::{Delivery, RoomState, RosterChange, RosterPage};
use crate::protocol::{ErrorCode, ServerMsg};

/// How long to wait before resending after the server could not store a message.
const UNAVAILABLE_RETRY_MS: u64 = 2_000;

/// Applies one frame from the server. Returns how long to wait before sending the queue again
/// when the server asked the client to hold back.
pub(super) fn apply(state: &RoomState, msg: ServerMsg) -> Option<u32> {
    match msg {
        ServerMsg::Welcome { .. } | ServerMsg::Pong => None,
        ServerMsg::Standing {
            muted_until_ms,
            reason,
        } => {
            let muted = muted_until_ms.map(|until| super::Muted {
                until_ms: until as f64,
                reason,
            });
            state.muted.set(muted.clone());
            if let Some(muted) = muted {
                // The mute ends by itself; the server says nothing then.
                let wait = (muted.until_ms - js_sys::Date::now()).max(0.0);
                let muted_signal = state.muted;
                leptos::prelude::set_timeout(
                    move || {
                        muted_signal.update(|m| {
                            if m.as_ref()
                                .is_some_and(|m| m.until_ms <= js_sys::Date::now())
                            {
                                *m = None;
                            }
                        })
                    },
                    std::time::Duration::from_millis(wait as u64 + 500),
                );
            }
            None
        }
        ServerMsg::Status { degraded } => {
            state.degraded.set(degraded);
            if !degraded && state.outbox.with_untracked(|o| !o.is_empty()) {
                // Storage is back: send what waits now rather than at the next retry.
                return Some(0);
            }
            None
        }
        ServerMsg::Message(m) => {
            // Their message is here: they are no longer typing it.
            state
                .typing
                .update(|t| t.retain(|(name, _)| *name != m.sender));
            state.deliver(m);
            None
        }
        ServerMsg::Typing { name } => {
            let until = js_sys::Date::now() + crate::protocol::TYPING_SHOWN_MS as f64;
            state.typing.update(|t| {
                t.retain(|(n, _)| *n != name);
                t.push((name, until));
            });
            let typing = state.typing;
            leptos::prelude::set_timeout(
                move || {
                    let now = js_sys::Date::now();
                    typing.update(|t| t.retain(|(_, until)| *until > now));
                },
                std::time::Duration::from_millis(crate::protocol::TYPING_SHOWN_MS + 100),
            );
            None
        }
        ServerMsg::Removed { after, upto } => {
            state.removed(after, upto);
            None
        }
        ServerMsg::Ack { client_id, .. } => {
            state.acknowledge(&client_id);
            // Everything went through: an earlier "too fast" or "unavailable" is over. (An
            // earlier message's ack must not clear it while later ones still wait.)
            if state.all_acknowledged() {
                state.notice.set(None);
            }
            None
        }
        ServerMsg::Roster {
            names,
            verified,
            count,
            more,
            after,
            query,
        } => {
            let page = RosterPage {
                verified: positions(&names, &verified),
                names,
                count,
                more,
                after,
                query,
            };
            state.roster.update(|r| r.apply_page(page));
            None
        }
        ServerMsg::Presence {
            count,
            joined,
            verified,
            left,
            more_joined,
            more_left,
            at_seq,
        } => {
            let change = RosterChange {
                count,
                verified: positions(&joined, &verified),
                joined,
                left,
                more_joined,
                more_left,
            };
            state.presence(change, at_seq);
            None
        }
        ServerMsg::Error {
            code,
            message,
            client_id,
            retry_after_ms,
        } => {
            // Slow mode's wait is the composer's countdown; a second sentence would repeat it.
            if code != ErrorCode::SlowMode {
                state.notice.set(Some(message));
            }
            let id = client_id?;
            let retry = match code {
                // Not accepted, but nothing wrong with it: keep it, in order, and send it again.
                ErrorCode::RateLimited => Some(retry_after_ms.unwrap_or(1000)),
                ErrorCode::SlowMode => {
                    let wait = retry_after_ms.unwrap_or(1000);
                    state
                        .slow_until
                        .set(Some(js_sys::Date::now() + wait as f64));
                    Some(wait)
                }
                ErrorCode::Unavailable => Some(UNAVAILABLE_RETRY_MS),
                _ => None,
            };
            state.outbox.update(|o| match retry {
                Some(_) => {
                    if let Some(e) = o.iter_mut().find(|e| e.client_id == id) {
                        e.delivery = Delivery::Queued;
                    }
                }
                // Refused for good (it breaks a rule): take it out so it does not block the
                // queue; the notice says why.
                None => o.retain(|e| e.client_id != id),
            });
            retry.map(|ms| u32::try_from(ms).unwrap_or(u32::MAX))
        }
    }
}

/// The names at `positions` (the server marks verified names by position; bad ones are skipped).
fn positions(names: &[String], positions: &[usize]) -> Vec<String> {
    positions
        .iter()
        .filter_map(|&i| names.get(i).cloned())
        .collect()
}
