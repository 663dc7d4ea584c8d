//! Who is in a room: this node's people (several tabs of one name count once) and, with a shared
//! engine, the other nodes'. Joins and leaves are not announced one by one: the first change
//! starts a [`PRESENCE_COALESCE`] wait, and what has changed by then is announced as one net
//! change, so a crowd reconnecting at once (leave + join) announces nothing.
//!
//! Nothing grows with the room: a change names at most [`PRESENCE_NAMES`] people each way and
//! counts the rest; a room bigger than `quiet_above` names nobody; the roster is read in pages.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use app::protocol::{Seq, PRESENCE_NAMES};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::fanout::{PresenceChange, RosterPage};
use super::Member;
use crate::engine::Roster;

/// Longest wait before joins and leaves are announced; changes within it are merged.
pub const PRESENCE_COALESCE: Duration = Duration::from_millis(500);

pub(super) struct Presence {
    /// Above this many people, changes are counted, not named (`--presence-quiet-above`).
    quiet_above: usize,
    /// Member id -> who, for every connection on this node.
    members: HashMap<u64, Member>,
    next_member: u64,
    /// Display name -> connections on this node.
    local: Roster,
    /// The people other nodes have in the room (shared engines only).
    remote: Roster,
    /// The roster as last announced, to compute net joins and leaves.
    announced: BTreeSet<String>,
    /// Which announced names verified people hold.
    announced_verified: HashSet<String>,
    /// When the pending change is announced, and the room's head when it began.
    due: Option<(Instant, Seq)>,
    /// Resolves with a member id when that member's session ends.
    departures: FuturesUnordered<BoxFuture<'static, u64>>,
}

impl Presence {
    pub(super) fn new(quiet_above: usize) -> Self {
        Self {
            quiet_above,
            members: HashMap::new(),
            next_member: 0,
            local: Roster::new(),
            remote: Roster::new(),
            announced: BTreeSet::new(),
            announced_verified: HashSet::new(),
            due: None,
            departures: FuturesUnordered::new(),
        }
    }

    /// A connection enters as `member`; `left` resolves when its session drops its membership.
    pub(super) fn join(&mut self, member: Member, left: oneshot::Receiver<()>, head: Seq) {
        let id = self.next_member;
        self.next_member += 1;
        let present = self.local.entry(member.name.clone()).or_default();
        present.connections += 1;
        if present.user.is_none() {
            present.user.clone_from(&member.user);
        }
        self.members.insert(id, member);
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
        if let Some(member) = self.members.remove(&id) {
            if let Some(present) = self.local.get_mut(&member.name) {
                present.connections -= 1;
                if present.connections == 0 {
                    self.local.remove(&member.name);
                } else if member.user.is_some() && present.user == member.user {
                    // Still verified if another of this person's connections remains.
                    present.user = self
                        .members
                        .values()
                        .find(|m| m.name == member.name && m.user.is_some())
                        .and_then(|m| m.user.clone());
                }
            }
            self.schedule(head);
        }
    }

    /// Whether a verified person holds `name` here, on any node (ignoring case, so that "ada"
    /// cannot pass for "Ada").
    pub(super) fn held_by_verified(&self, name: &str) -> bool {
        let wanted = name.to_lowercase();
        self.local
            .iter()
            .chain(self.remote.iter())
            .any(|(held, present)| present.user.is_some() && held.to_lowercase() == wanted)
    }

    /// Connections in the room, every node's together.
    pub(super) fn connections(&self) -> usize {
        self.members.len()
            + self
                .remote
                .values()
                .map(|present| present.connections)
                .sum::<usize>()
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

    /// A page of the roster as last announced, sorted, each name once: the names after `after`,
    /// only those containing `query` (ignoring case) if given. As announced, not as it is this
    /// instant: the changes a session receives after this page are the changes since it, so a
    /// client that applies them in order always holds the room's roster (a person who joined and
    /// left within one coalescing wait is never shown, nor left behind).
    pub(super) fn page(
        &self,
        after: Option<&str>,
        query: Option<&str>,
        limit: usize,
    ) -> RosterPage {
        let query = query.map(str::to_lowercase).filter(|q| !q.is_empty());
        let mut matching = self
            .announced
            .iter()
            .filter(|name| after.is_none_or(|a| name.as_str() > a))
            .filter(|name| {
                query
                    .as_deref()
                    .is_none_or(|q| name.to_lowercase().contains(q))
            });
        let names: Vec<String> = matching.by_ref().take(limit).cloned().collect();
        RosterPage {
            verified: self.verified_positions(&names),
            names,
            count: self.announced.len(),
            more: matching.next().is_some(),
        }
    }

    fn all(&self) -> BTreeSet<String> {
        self.local
            .keys()
            .chain(self.remote.keys())
            .cloned()
            .collect()
    }

    fn all_verified(&self) -> HashSet<String> {
        self.local
            .iter()
            .chain(self.remote.iter())
            .filter(|(_, present)| present.user.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Positions in `names` of names verified people hold (as announced).
    fn verified_positions(&self, names: &[String]) -> Vec<usize> {
        names
            .iter()
            .enumerate()
            .filter(|(_, name)| self.announced_verified.contains(*name))
            .map(|(i, _)| i)
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
        let named = if now.len().max(self.announced.len()) > self.quiet_above {
            0
        } else {
            PRESENCE_NAMES
        };
        let (joined, more_joined) = first_names(now.difference(&self.announced), named);
        let (left, more_left) = first_names(self.announced.difference(&now), named);
        if joined.len() + more_joined + left.len() + more_left == 0 {
            return None;
        }
        self.announced_verified = self.all_verified();
        let change = PresenceChange {
            count: now.len(),
            verified: self.verified_positions(&joined),
            joined,
            left,
            more_joined,
            more_left,
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

/// Up to `named` of `names`, and how many more there were.
fn first_names<'a>(names: impl Iterator<Item = &'a String>, named: usize) -> (Vec<String>, usize) {
    let mut first = Vec::new();
    let mut more = 0;
    for name in names {
        if first.len() < named {
            first.push(name.clone());
        } else {
            more += 1;
        }
    }
    (first, more)
}

#[cfg(test)]
mod tests {
    use app::protocol::ROSTER_PAGE;

    use super::*;
    use crate::engine::Present;

    fn joined(presence: &mut Presence, name: &str, head: Seq) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        presence.join(Member::guest(name.into()), rx, head);
        tx
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn changes_within_the_wait_are_one_net_announcement_at_the_first_ones_head() {
        let mut p = Presence::new(100);
        let ada = joined(&mut p, "Ada", 3);
        let _ada_tab = joined(&mut p, "Ada", 4);
        let bob = joined(&mut p, "Bob", 5);
        assert_eq!(p.due(), Some(Instant::now() + PRESENCE_COALESCE));
        assert!(
            p.page(None, None, ROSTER_PAGE).names.is_empty(),
            "nothing announced yet"
        );
        let first = p.announcement().expect("a change");
        assert_eq!(
            first,
            PresenceChange {
                count: 2,
                joined: names(&["Ada", "Bob"]),
                verified: vec![],
                left: vec![],
                more_joined: 0,
                more_left: 0,
                at_seq: 3,
            }
        );
        assert_eq!(p.due(), None);
        assert_eq!(
            p.page(None, None, ROSTER_PAGE).names,
            names(&["Ada", "Bob"])
        );

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
        let mut p = Presence::new(100);
        let _ada = joined(&mut p, "Ada", 0);
        p.announcement();
        p.set_remote(
            Roster::from([
                ("Ada".into(), Present::guests(2)),
                ("Cy".into(), Present::guests(1)),
            ]),
            1,
        );
        assert_eq!(
            p.local(),
            &Roster::from([("Ada".into(), Present::guests(1))]),
            "local only"
        );
        let change = p.announcement().unwrap();
        assert_eq!((change.count, change.joined), (2, names(&["Cy"])));
        p.set_remote(Roster::new(), 2);
        let change = p.announcement().unwrap();
        assert_eq!((change.count, change.left), (1, names(&["Cy"])));
        p.set_remote(Roster::new(), 3);
        assert_eq!(p.due(), None, "the same remote roster again is no change");
    }

    #[tokio::test(start_paused = true)]
    async fn a_crowd_is_named_up_to_the_limit_and_a_big_room_only_counted() {
        let mut p = Presence::new(50);
        let _crowd: Vec<_> = (0..30)
            .map(|i| joined(&mut p, &format!("p{i:02}"), 0))
            .collect();
        let change = p.announcement().unwrap();
        assert_eq!(change.count, 30);
        assert_eq!(change.joined.len(), PRESENCE_NAMES);
        assert_eq!(change.more_joined, 30 - PRESENCE_NAMES);
        assert_eq!(change.joined[0], "p00", "the first names in order");

        let _more: Vec<_> = (30..60)
            .map(|i| joined(&mut p, &format!("p{i:02}"), 0))
            .collect();
        let change = p.announcement().unwrap();
        assert_eq!((change.count, change.more_joined), (60, 30));
        assert!(
            change.joined.is_empty(),
            "above quiet_above nobody is named"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_roster_is_read_in_pages_and_searched() {
        let mut p = Presence::new(1000);
        let _crowd: Vec<_> = (0..250)
            .map(|i| joined(&mut p, &format!("Name{i:03}"), 0))
            .collect();
        p.set_remote(Roster::from([("Zoë".into(), Present::guests(1))]), 0);
        p.announcement();
        let first = p.page(None, None, ROSTER_PAGE);
        assert_eq!(
            (first.names.len(), first.count, first.more),
            (ROSTER_PAGE, 251, true)
        );
        let last_name = first.names.last().cloned();
        let second = p.page(last_name.as_deref(), None, ROSTER_PAGE);
        assert_eq!(second.names[0], format!("Name{:03}", ROSTER_PAGE));
        let third = p.page(second.names.last().map(String::as_str), None, ROSTER_PAGE);
        assert_eq!(third.names.last().map(String::as_str), Some("Zoë"));
        assert!(!third.more);
        let found = p.page(None, Some("zo"), ROSTER_PAGE);
        assert_eq!((found.names, found.more), (names(&["Zoë"]), false));
        let found = p.page(None, Some("NAME24"), ROSTER_PAGE);
        assert_eq!(
            found.names,
            names(&[
                "Name240", "Name241", "Name242", "Name243", "Name244", "Name245", "Name246",
                "Name247", "Name248", "Name249"
            ])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_verified_name_is_held_ignoring_case_and_marked_whichever_node_has_it() {
        let mut p = Presence::new(100);
        let (_ada, rx) = oneshot::channel();
        let ada = Member {
            name: "Ada".into(),
            user: Some("u-ada".into()),
        };
        p.join(ada, rx, 0);
        let _guest = joined(&mut p, "Bob", 0);
        assert!(p.held_by_verified("ada") && !p.held_by_verified("Bob"));
        let cy = Present {
            connections: 2,
            user: Some("u-cy".into()),
        };
        p.set_remote(Roster::from([("Cy".into(), cy)]), 0);
        assert!(p.held_by_verified("CY"), "another node's verified person");
        assert_eq!(p.connections(), 4, "two here, two there");
        let change = p.announcement().unwrap();
        assert_eq!(change.joined, names(&["Ada", "Bob", "Cy"]));
        assert_eq!(change.verified, [0, 2]);
        assert_eq!(p.page(None, None, ROSTER_PAGE).verified, [0, 2]);
    }
}
