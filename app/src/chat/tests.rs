//! The room page's state, without a browser: delivery, notices, retention lines.
use super::*;

/// The timeline without its day lines (the tests below are about the rest).
fn items(state: &RoomState) -> Vec<TimelineItem> {
    state
        .timeline(false, None)
        .into_iter()
        .filter(|i| !matches!(i, TimelineItem::Day(_)))
        .collect()
}

#[test]
fn runs_of_one_persons_messages_and_days_are_marked() {
    let owner = Owner::new();
    owner.with(|| {
        let day = 86_400_000;
        let at = |seq: u64, sender: &str, ms: i64| ChatMessage {
            sender: sender.into(),
            sent_at_ms: ms,
            ..msg(seq, "x")
        };
        let state = RoomState::new(
            vec![
                at(1, "Ada", 20 * day),
                at(2, "Ada", 20 * day + 60_000),
                at(3, "Bob", 20 * day + 120_000),
                at(4, "Bob", 20 * day + 120_000 + RUN_GAP_MS + 1),
                at(5, "Bob", 21 * day + 1),
            ],
            5,
        );
        let shape: Vec<String> = state
            .timeline(false, None)
            .iter()
            .map(|i| match i {
                TimelineItem::Day(d) => format!("day {d}"),
                TimelineItem::Message(m, run) => {
                    format!("{}{}", m.seq, if *run { "+" } else { "" })
                }
                TimelineItem::Notice(_) | TimelineItem::NewSince(_) => "other".into(),
            })
            .collect();
        assert_eq!(shape, ["day 20", "1", "2+", "3", "4", "day 21", "5"]);
    });
}

#[test]
fn messages_retention_removed_are_said_where_they_were_or_at_the_top() {
    let owner = Owner::new();
    owner.with(|| {
        // Away after 2; 3..=6 removed; 7 arrives.
        let state = RoomState::new(vec![msg(1, "a"), msg(2, "b")], 2);
        state.removed(2, 6);
        assert!(state.deliver(msg(7, "c")));
        let shown = items(&state);
        let TimelineItem::Notice(n) = &shown[2] else {
            panic!("a notice after 2: {shown:?}")
        };
        assert!(n.text.starts_with("4 messages from while you were away"));
        assert_eq!(
            state.removed_upto.get_untracked(),
            0,
            "the top is still the start"
        );

        // Nothing shown yet: the top of the list says it.
        let fresh = RoomState::new(vec![], 0);
        fresh.removed(0, 9);
        assert_eq!(fresh.removed_upto.get_untracked(), 9);
        assert!(items(&fresh).is_empty());
    });
}

#[test]
fn a_notice_before_the_first_message_of_the_room_is_shown_at_the_top() {
    let owner = Owner::new();
    owner.with(|| {
        let state = RoomState::new(vec![msg(1, "a"), msg(2, "b")], 2);
        state.presence(joined(&["Ada"], 1), 0);
        let keys: Vec<_> = items(&state)
            .iter()
            .map(|i| {
                let k = i.key();
                (k.0, k.1)
            })
            .collect();
        assert_eq!(keys, [(1, 0), (0, 1), (0, 2)]);

        // Before older history that is not loaded: left out.
        let later = RoomState::new(vec![msg(50, "x")], 50);
        later.presence(joined(&["Ada"], 1), 10);
        assert_eq!(items(&later).len(), 1);
    });
}

#[test]
fn presence_lines_are_short_and_placed_after_the_last_message() {
    let owner = Owner::new();
    owner.with(|| {
        let state = RoomState::new(vec![msg(1, "a"), msg(2, "b")], 2);
        let mut change = joined(&["Ada", "Bob", "Cy", "Di"], 4);
        change.left = vec!["Ed".into()];
        state.presence(change, 9);
        state.deliver(msg(3, "c"));
        let keys: Vec<_> = items(&state)
            .iter()
            .map(|i| {
                let k = i.key();
                (k.0, k.1)
            })
            .collect();
        assert_eq!(keys, [(0, 1), (0, 2), (1, 0), (1, 1), (0, 3)]);
        let texts: Vec<_> = state
            .notices
            .get_untracked()
            .into_iter()
            .map(|n| n.text)
            .collect();
        assert_eq!(texts, ["Ada, Bob and 2 others joined", "Ed left"]);
        assert_eq!(state.roster.get_untracked().count, 4);

        // Unnamed arrivals are counted in the line; a change naming nobody adds no line.
        let mut crowd = joined(&["Fay"], 25);
        crowd.more_joined = 20;
        state.presence(crowd, 3);
        state.presence(
            RosterChange {
                count: 200,
                more_left: 3,
                ..RosterChange::default()
            },
            3,
        );
        let texts: Vec<_> = state
            .notices
            .get_untracked()
            .into_iter()
            .map(|n| n.text)
            .collect();
        assert_eq!(
            texts.last().map(String::as_str),
            Some("Fay and 20 others joined")
        );
        assert_eq!(texts.len(), 3);
        assert_eq!(state.roster.get_untracked().count, 200);
    });
}

/// A change in which `names` joined and the room now has `count` people.
fn joined(names: &[&str], count: usize) -> RosterChange {
    RosterChange {
        count,
        joined: names.iter().map(|s| s.to_string()).collect(),
        ..RosterChange::default()
    }
}

fn msg(seq: Seq, client_id: &str) -> ChatMessage {
    ChatMessage {
        seq,
        id: format!("m{seq}"),
        sender: "a".into(),
        text: "t".into(),
        sent_at_ms: 0,
        client_id: client_id.into(),
        user_id: None,
        ..Default::default()
    }
}

#[test]
fn deliver_drops_duplicates_and_clears_outbox() {
    let owner = Owner::new();
    owner.with(|| {
        let state = RoomState::new(vec![msg(1, "x")], 1);
        state.outbox.set(vec![OutboxEntry {
            client_id: "c2".into(),
            text: "t".into(),
            delivery: Delivery::Sending,
        }]);
        assert!(!state.deliver(msg(1, "x")));
        state.acknowledge("c2");
        assert_eq!(state.outbox.get_untracked()[0].delivery, Delivery::Sent);
        assert!(state.deliver(msg(2, "c2")));
        assert!(state.outbox.get_untracked().is_empty());
        assert_eq!(state.last_seq(), 2);
    });
}

#[test]
fn requeue_only_touches_unacknowledged() {
    let owner = Owner::new();
    owner.with(|| {
        let state = RoomState::new(vec![], 0);
        state.outbox.set(vec![
            OutboxEntry {
                client_id: "a".into(),
                text: "t".into(),
                delivery: Delivery::Sending,
            },
            OutboxEntry {
                client_id: "b".into(),
                text: "t".into(),
                delivery: Delivery::Sent,
            },
        ]);
        state.requeue_unacknowledged();
        let o = state.outbox.get_untracked();
        assert_eq!(o[0].delivery, Delivery::Queued);
        assert_eq!(o[1].delivery, Delivery::Sent);
    });
}

#[test]
fn a_hold_back_notice_lasts_until_everything_is_acknowledged() {
    let owner = Owner::new();
    owner.with(|| {
        let state = RoomState::new(vec![], 0);
        let entry = |id: &str, delivery| OutboxEntry {
            client_id: id.into(),
            text: "t".into(),
            delivery,
        };
        // "a" went through; "b" was refused for the rate limit and waits to be resent.
        state.outbox.set(vec![
            entry("a", Delivery::Sending),
            entry("b", Delivery::Queued),
        ]);
        state.acknowledge("a");
        assert!(!state.all_acknowledged());
        state.outbox.update(|o| o[1].delivery = Delivery::Sending);
        state.acknowledge("b");
        assert!(state.all_acknowledged());
    });
}

#[test]
fn edits_and_deletes_change_their_message_in_place_and_are_not_rows_of_their_own() {
    let owner = Owner::new();
    owner.with(|| {
        let state = RoomState::new(vec![msg(1, "a"), msg(2, "b")], 2);
        let edit = ChatMessage {
            kind: EntryKind::Edit,
            target: Some(1),
            text: "fixed".into(),
            sent_at_ms: 99,
            ..msg(3, "c")
        };
        assert!(state.deliver(edit));
        let delete = ChatMessage {
            kind: EntryKind::Delete,
            target: Some(2),
            text: String::new(),
            ..msg(4, "d")
        };
        assert!(state.deliver(delete.clone()));
        assert!(!state.deliver(delete), "each number once");
        assert_eq!(state.last_seq(), 4, "resume after the changes too");
        let shown: Vec<_> = items(&state)
            .into_iter()
            .filter_map(|i| match i {
                TimelineItem::Message(m, _) => Some((m.seq, m.text, m.edited_at_ms, m.deleted)),
                _ => None,
            })
            .collect();
        assert_eq!(
            shown,
            [
                (1, "fixed".to_owned(), Some(99), false),
                (2, String::new(), None, true)
            ]
        );
    });
}

#[test]
fn the_new_since_line_goes_before_the_first_message_after_it() {
    let owner = Owner::new();
    owner.with(|| {
        let state = RoomState::new(vec![msg(1, "a"), msg(2, "b"), msg(3, "c")], 3);
        let keys = |since| -> Vec<(u8, u64)> {
            state
                .timeline(false, since)
                .iter()
                .map(|i| (i.key().0, i.key().1))
                .filter(|k| k.0 != 2)
                .collect()
        };
        assert_eq!(keys(Some(1)), [(0, 1), (3, 1), (0, 2), (0, 3)]);
        assert_eq!(
            keys(Some(3)),
            [(0, 1), (0, 2), (0, 3)],
            "nothing new: no line"
        );
        assert_eq!(keys(None), [(0, 1), (0, 2), (0, 3)]);
    });
}
