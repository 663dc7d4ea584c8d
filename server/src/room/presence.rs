//! Who is in a room: this node's people (several tabs of one name count once) and, with a shared
//! engine, the other nodes'. Joins and leaves are not announced one by one: the first change
//! starts a [`PRESENCE_COALESCE`] wait, and what has changed by then is announced as one net
//! change, so a crowd reconnecting at once (leave + join) announces nothing.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use app::protocol::Seq;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::fanout::PresenceChange;
use crate::engine::Roster;

/// Longest wait before joins and leaves are announced; changes within it are merged.
pub const PRESENCE_COALESCE: Duration = Duration::from_millis(500);

#[derive(Default)]
pub(super) struct Presence {
    /// Member id -> display name, for every connection on this node.
    members: HashMap<u64, String>,
    next_member: u64,
    /// Display name -> connections on this node.
    local: Roster,
    /// The people other nodes have in the room (shared engines only).
    remote: Roster,
    /// The roster as last announced, to compute net joins and leaves.
    announced: BTreeSet<String>,
    /// When the pending change is announced, and the room's head when it began.
    due: Option<(Instant, Seq)>,
    /// Resolves with a member id when that member's session ends.
    departures: FuturesUnordered<BoxFuture<'static, u64>>,
}

impl Presence {
    /// A connection enters as `name`; `left` resolves when its session drops its membership.
    pub(super) fn join(&mut self, name: String, left: oneshot::Receiver<()>, head: Seq) {
        let id = self.next_member;
        self.next_member += 1;
        *self.local.entry(name.clone()).or_default() += 1;
        self.members.insert(id, name);
        self.departures.push(Box::pin(async move {
            // Resolves (with an error) when the session drops its Membership.
            let _ = left.await;
            id
        }));
        self.schedule(head);
    }

    /// The next member whose session ended (`None` while nobody is here).
    pub(super) async fn next_departure(&mut self) -> Option<u64> {
        self.departures.next().await
    }

    pub(super) fn leave(&mut self, id: u64, head: Seq) {
        if let Some(name) = self.members.remove(&id) {
            if let Some(count) = self.local.get_mut(&name) {
                *count -= 1;
                if *count == 0 {
                    self.local.remove(&name);
                }
            }
            self.schedule(head);
        }
    }

    /// What the other nodes have; a change is announced like a join or leave here.
    pub(super) fn set_remote(&mut self, remote: Roster, head: Seq) {
        if remote != self.remote {
            self.remote = remote;
            self.schedule(head);
        }
    }

    /// This node's people, as shared with the other nodes.
    pub(super) fn local(&self) -> &Roster {
        &self.local
    }

    /// Forgets this node's people (the room is leaving memory).
    pub(super) fn clear_local(&mut self) {
        self.local.clear();
    }

    /// Everyone in the room: this node's people and other nodes', sorted, each name once.
    pub(super) fn names(&self) -> Vec<String> {
        self.all().into_iter().collect()
    }

    fn all(&self) -> BTreeSet<String> {
        self.local
            .keys()
            .chain(self.remote.keys())
            .cloned()
            .collect()
    }

    /// When the pending change is due to be announced.
    pub(super) fn due(&self) -> Option<Instant> {
        self.due.map(|(due, _)| due)
    }

    /// The net change since the last announcement, if any; either way nothing is pending after.
    pub(super) fn announcement(&mut self) -> Option<PresenceChange> {
        let at_seq = self.due.take().map_or(0, |(_, seq)| seq);
        let now = self.all();
        let joined: Vec<String> = now.difference(&self.announced).cloned().collect();
        let left: Vec<String> = self.announced.difference(&now).cloned().collect();
        if joined.is_empty() && left.is_empty() {
            return None;
        }
        let change = PresenceChange {
            online: now.iter().cloned().collect(),
            joined,
            left,
            at_seq,
        };
        self.announced = now;
        Some(change)
    }

    fn schedule(&mut self, head: Seq) {
        if self.due.is_none() {
            self.due = Some((Instant::now() + PRESENCE_COALESCE, head));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(presence: &mut Presence, name: &str, head: Seq) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        presence.join(name.into(), rx, head);
        tx
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn changes_within_the_wait_are_one_net_announcement_at_the_first_ones_head() {
        let mut p = Presence::default();
        let ada = joined(&mut p, "Ada", 3);
        let _ada_tab = joined(&mut p, "Ada", 4);
        let bob = joined(&mut p, "Bob", 5);
        assert_eq!(p.due(), Some(Instant::now() + PRESENCE_COALESCE));
        assert_eq!(p.names(), names(&["Ada", "Bob"]));
        let first = p.announcement().expect("a change");
        assert_eq!(
            first,
            PresenceChange {
                online: names(&["Ada", "Bob"]),
                joined: names(&["Ada", "Bob"]),
                left: vec![],
                at_seq: 3,
            }
        );
        assert_eq!(p.due(), None);

        // One of Ada's two tabs closes, and Bob reconnects: no net change.
        drop(ada);
        drop(bob);
        for _ in 0..2 {
            let id = p.next_departure().await.unwrap();
            p.leave(id, 6);
        }
        let _bob_again = joined(&mut p, "Bob", 6);
        assert!(p.due().is_some());
        assert_eq!(p.announcement(), None, "nothing to announce");
    }

    #[tokio::test(start_paused = true)]
    async fn other_nodes_people_count_once_and_leave_with_their_node() {
        let mut p = Presence::default();
        let _ada = joined(&mut p, "Ada", 0);
        p.announcement();
        p.set_remote(Roster::from([("Ada".into(), 2), ("Cy".into(), 1)]), 1);
        assert_eq!(p.local(), &Roster::from([("Ada".into(), 1)]), "local only");
        let change = p.announcement().unwrap();
        assert_eq!(
            (change.online, change.joined),
            (names(&["Ada", "Cy"]), names(&["Cy"]))
        );
        p.set_remote(Roster::new(), 2);
        let change = p.announcement().unwrap();
        assert_eq!(
            (change.online, change.left),
            (names(&["Ada"]), names(&["Cy"]))
        );
        p.set_remote(Roster::new(), 3);
        assert_eq!(p.due(), None, "the same remote roster again is no change");
    }
}
