//! The engines' contracts as tests, run against every engine (SQLite, Redis, Redis Cluster), so the engines cannot drift apart: [`all`] for [`History`], [`keeps_the_newest`]
//! and [`forgets_the_old`] for its [`Retention`], [`presence`] for [`SharedPresence`].

use app::limits::RoomName;
use app::protocol::{ChatMessage, EntryKind, Seq};

use app::rules::{Audience, Owner, RoomRules};

use super::{Directory, History, Present, Retention, Roster, SharedConnections, SharedPresence};

pub fn msg(seq: Seq, client_id: &str) -> ChatMessage {
    ChatMessage {
        seq,
        id: format!("id{seq}"),
        sender: "Ada".into(),
        text: format!("text {seq} ✓ \"quoted\"\nsecond line"),
        sent_at_ms: 1_700_000_000_000 + seq as i64,
        client_id: client_id.into(),
        // Verified authors on even numbers, guests on odd: both kinds are stored and read back.
        user_id: seq.is_multiple_of(2).then(|| format!("user-{seq}")),
        ..Default::default()
    }
}

pub fn room(name: &str) -> RoomName {
    RoomName::parse(name).expect("valid room name")
}

/// Every history contract test, in turn.
pub async fn all(store: &dyn History) {
    reads_in_order_per_room(store).await;
    changes(store).await;
    numbers_every_batch_after_its_head(store).await;
    stores_each_client_id_once(store).await;
    timestamps_never_go_back(store).await;
    store.check().await.expect("a working store checks out");
}

async fn reads_in_order_per_room(store: &dyn History) {
    let (a, b) = (room("conf-a"), room("conf-b"));
    assert_eq!(store.head(&a).await.unwrap(), (0, 0), "an empty room");
    assert!(store.after(&a, 0, 10).await.unwrap().is_empty());
    let first: Vec<_> = (1..=3).map(|i| msg(i, &format!("c{i}"))).collect();
    store.append(&a, &first).await.unwrap();
    store
        .append(&a, &[msg(4, "c4"), msg(5, "c5")])
        .await
        .unwrap();
    store.append(&b, &[msg(1, "c1")]).await.unwrap();
    store.append(&a, &[]).await.unwrap();

    assert_eq!(store.head(&a).await.unwrap(), (5, msg(5, "c5").sent_at_ms));
    assert_eq!(store.head(&b).await.unwrap().0, 1);
    let page = store.after(&a, 2, 2).await.unwrap();
    assert_eq!(
        page,
        [msg(3, "c3"), msg(4, "c4")],
        "every field round-trips"
    );
    assert!(store.after(&a, 5, 10).await.unwrap().is_empty());
    let latest = store.before(&a, None, 2).await.unwrap();
    assert_eq!(latest.iter().map(|m| m.seq).collect::<Vec<_>>(), [4, 5]);
    let older = store.before(&a, Some(4), 10).await.unwrap();
    assert_eq!(older.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(store.before(&a, Some(1), 10).await.unwrap().is_empty());
}

async fn numbers_every_batch_after_its_head(store: &dyn History) {
    let r = room("conf-number");
    store.append(&r, &[msg(1, "c1")]).await.unwrap();
    // Whatever numbers the writer proposes (a stale or a skipping one), the store numbers after
    // its head: several writers never leave a hole or take one number twice.
    let appended = store
        .append(&r, &[msg(1, "c2"), msg(7, "c3")])
        .await
        .unwrap();
    assert_eq!(
        appended.iter().map(|a| (a.seq, a.new)).collect::<Vec<_>>(),
        [(2, true), (3, true)]
    );
    assert_eq!(store.head(&r).await.unwrap().0, 3);
    assert!(store
        .after(&r, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .eq(1..=3));
}

async fn stores_each_client_id_once(store: &dyn History) {
    let r = room("conf-ids");
    store
        .append(&r, &[msg(1, "x1"), msg(2, "x2")])
        .await
        .unwrap();
    // A resend (stored earlier), a new one, and a repeat within the batch.
    let appended = store
        .append(&r, &[msg(3, "x2"), msg(4, "x3"), msg(5, "x3")])
        .await
        .unwrap();
    assert_eq!(
        appended.iter().map(|a| (a.seq, a.new)).collect::<Vec<_>>(),
        [(2, false), (3, true), (3, false)]
    );
    assert_eq!(
        appended[0].sent_at_ms,
        msg(2, "x2").sent_at_ms,
        "the stored timestamp"
    );
    let stored = store.after(&r, 0, 10).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|m| m.client_id.as_str())
            .collect::<Vec<_>>(),
        ["x1", "x2", "x3"]
    );
    // Ids are per room.
    let other = room("conf-ids-other");
    let appended = store.append(&other, &[msg(1, "x1")]).await.unwrap();
    assert_eq!((appended[0].seq, appended[0].new), (1, true));
    assert!(store.append(&r, &[]).await.unwrap().is_empty());
}

async fn timestamps_never_go_back(store: &dyn History) {
    let r = room("conf-clock");
    let mut later = msg(1, "t1");
    later.sent_at_ms += 1_000;
    store.append(&r, &[later.clone()]).await.unwrap();
    // A writer whose clock is behind (another node's).
    let appended = store.append(&r, &[msg(2, "t2")]).await.unwrap();
    assert_eq!(appended[0].sent_at_ms, later.sent_at_ms);
    assert_eq!(store.head(&r).await.unwrap(), (2, later.sent_at_ms));
}

/// What a store made with [`KEEP_NEWEST`] must do: keep each room's newest messages, go on
/// numbering, recognise resends of what it keeps, and answer a resume from a removed number with
/// what remains, in order.
pub const KEEP_NEWEST: Retention = Retention {
    keep_last: Some(3),
    max_age: None,
};

/// What a store made with [`KEEP_A_DAY`] must do: never show what is older than a day, remove it,
/// and go on numbering after it.
pub const KEEP_A_DAY: Retention = Retention {
    keep_last: None,
    max_age: Some(std::time::Duration::from_secs(86_400)),
};

fn seqs(page: &[ChatMessage]) -> Vec<Seq> {
    page.iter().map(|m| m.seq).collect()
}

/// The count limit ([`KEEP_NEWEST`]); uses room `conf-keep`.
pub async fn keeps_the_newest(store: &dyn History) {
    let r = room("conf-keep");
    let batch: Vec<_> = (1..=5).map(|i| msg(i, &format!("k{i}"))).collect();
    store.append(&r, &batch).await.unwrap();
    assert_eq!(seqs(&store.after(&r, 0, 10).await.unwrap()), [3, 4, 5]);
    assert_eq!(store.head(&r).await.unwrap().0, 5);
    let appended = store.append(&r, &[msg(6, "k6")]).await.unwrap();
    assert_eq!(
        (appended[0].seq, appended[0].new),
        (6, true),
        "numbering goes on"
    );
    assert_eq!(seqs(&store.after(&r, 0, 10).await.unwrap()), [4, 5, 6]);
    assert_eq!(seqs(&store.before(&r, None, 10).await.unwrap()), [4, 5, 6]);
    assert_eq!(seqs(&store.before(&r, Some(5), 10).await.unwrap()), [4]);
    // The dedupe window is what is kept: a resend of a kept message is recognised, one of a
    // removed message is a new message.
    let resent = store.append(&r, &[msg(7, "k5")]).await.unwrap();
    assert_eq!((resent[0].seq, resent[0].new), (5, false));
    let late = store.append(&r, &[msg(7, "k1")]).await.unwrap();
    assert_eq!((late[0].seq, late[0].new), (7, true));
    // Resuming after a removed number: what remains, in order.
    assert_eq!(seqs(&store.after(&r, 1, 10).await.unwrap()), [5, 6, 7]);
}

/// The age limit ([`KEEP_A_DAY`]); uses room `conf-age`, and leaves one message in it.
pub async fn forgets_the_old(store: &dyn History) {
    let r = room("conf-age");
    let day = 86_400_000;
    let now = super::retention::now_ms();
    let old: Vec<_> = (1..=3)
        .map(|i| ChatMessage {
            sent_at_ms: now - 3 * day + i as i64,
            ..msg(i, &format!("a{i}"))
        })
        .collect();
    let appended = store.append(&r, &old).await.unwrap();
    assert_eq!(
        appended.iter().map(|a| a.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(
        store.after(&r, 0, 10).await.unwrap().is_empty(),
        "never shown"
    );
    assert!(store.before(&r, None, 10).await.unwrap().is_empty());
    store.sweep().await.expect("a sweep");
    assert_eq!(store.head(&r).await.unwrap().0, 3, "the head stays");
    let fresh = ChatMessage {
        sent_at_ms: now,
        ..msg(4, "a4")
    };
    let appended = store.append(&r, &[fresh]).await.unwrap();
    assert_eq!(appended[0].seq, 4, "numbering goes on");
    assert_eq!(seqs(&store.after(&r, 0, 10).await.unwrap()), [4]);
    assert_eq!(seqs(&store.after(&r, 2, 10).await.unwrap()), [4]);
    assert_eq!(seqs(&store.before(&r, None, 10).await.unwrap()), [4]);
    assert!(store.sweep().await.is_ok());
}

/// The shared-presence contract, seen from two nodes of one engine.
pub async fn presence(one: &dyn SharedPresence, two: &dyn SharedPresence) {
    let r = room("conf-roster");
    let verified = Present {
        connections: 2,
        user: Some("u-ada".into()),
    };
    let local = Roster::from([("Ada".to_owned(), verified)]);
    one.publish(&r, &local, true).await.unwrap();
    assert!(
        one.others(&r).await.unwrap().is_empty(),
        "a node's own people are not listed as another node's"
    );
    assert_eq!(
        two.others(&r).await.unwrap(),
        local,
        "the other node sees them"
    );
    two.publish(
        &r,
        &Roster::from([
            ("Ada".to_owned(), Present::guests(1)),
            ("Bo".to_owned(), Present::guests(1)),
        ]),
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        one.others(&r).await.unwrap(),
        Roster::from([
            ("Ada".to_owned(), Present::guests(1)),
            ("Bo".to_owned(), Present::guests(1)),
        ])
    );
    one.publish(&r, &Roster::new(), true).await.unwrap();
    assert!(
        two.others(&r).await.unwrap().is_empty(),
        "an empty part leaves"
    );
    two.publish(&r, &Roster::new(), true).await.unwrap();
}

/// The directory contract: room rules and revocations, stored and read back.
pub async fn directory(store: &dyn Directory) {
    let r = room("conf-rules");
    assert_eq!(store.rules(&r).await.unwrap(), None, "no rules: open");
    let first = RoomRules {
        owner: Some(Owner::User("first".into())),
        ..RoomRules::default()
    };
    let second = RoomRules {
        owner: Some(Owner::User("second".into())),
        ..RoomRules::default()
    };
    assert!(
        store.claim_rules(&r, &first).await.unwrap(),
        "the first claim wins"
    );
    assert!(
        !store.claim_rules(&r, &second).await.unwrap(),
        "a later one does not"
    );
    assert_eq!(store.rules(&r).await.unwrap(), Some(first));
    let rules = RoomRules {
        read: Audience::Verified,
        post: Audience::Moderators,
        members: vec!["ada".into()],
        member_roles: vec!["staff".into()],
        owner: Some(Owner::User("owner-1".into())),
        slow_mode_secs: 30,
    };
    store.set_rules(&r, &rules).await.unwrap();
    assert_eq!(store.rules(&r).await.unwrap(), Some(rules));
    let relaxed = RoomRules {
        owner: Some(Owner::KeyHash("ab".repeat(32))),
        ..RoomRules::default()
    };
    store.set_rules(&r, &relaxed).await.unwrap();
    assert_eq!(store.rules(&r).await.unwrap(), Some(relaxed), "replaced");
    assert_eq!(store.rules(&room("conf-other")).await.unwrap(), None);

    store.revoke("conf-u1", 100).await.unwrap();
    store.revoke("conf-u2", 200).await.unwrap();
    store.revoke("conf-u1", 300).await.unwrap();
    let all = store.revocations().await.unwrap();
    assert_eq!(
        (all.get("conf-u1"), all.get("conf-u2")),
        (Some(&300), Some(&200))
    );
}

/// The per-user connection count contract, seen from two nodes of one engine.
pub async fn shared_connections(one: &dyn SharedConnections, two: &dyn SharedConnections) {
    let user = "conf-user";
    assert!(one.set(user, 2, 3).await.unwrap());
    assert!(two.set(user, 1, 3).await.unwrap(), "2 + 1 is within 3");
    assert!(!two.set(user, 2, 3).await.unwrap(), "2 + 2 passes the cap");
    assert!(two.set(user, 2, 0).await.unwrap(), "no cap: always set");
    assert!(
        two.set(user, 0, 3).await.unwrap(),
        "falling is always allowed"
    );
    assert!(one.set(user, 0, 3).await.unwrap());
    assert!(
        two.set(user, 3, 3).await.unwrap(),
        "both counts gone: all 3 here"
    );
    two.set(user, 0, 0).await.unwrap();
}

/// An edit (`Some(text)`) or delete of `target`, as the room hands it to the engine.
pub fn change(client_id: &str, target: Seq, text: Option<&str>) -> ChatMessage {
    ChatMessage {
        kind: match text {
            Some(_) => EntryKind::Edit,
            None => EntryKind::Delete,
        },
        target: Some(target),
        text: text.unwrap_or_default().to_owned(),
        ..msg(0, client_id)
    }
}

/// The changes contract: edits and deletes are numbered in the room's sequence, idempotent by
/// client id, applied to their target (a deleted message's text, and its edits', no longer read),
/// and every read returns the sequence whole and in order.
pub async fn changes(store: &dyn History) {
    let r = room("conf-changes");
    let first: Vec<_> = (1..=3).map(|i| msg(i, &format!("m{i}"))).collect();
    store.append(&r, &first).await.unwrap();
    let edit = change("e1", 1, Some("fixed ✓"));
    let appended = store.append(&r, std::slice::from_ref(&edit)).await.unwrap();
    assert_eq!((appended[0].seq, appended[0].new), (4, true));
    let again = store.append(&r, &[edit]).await.unwrap();
    assert_eq!(
        (again[0].seq, again[0].new),
        (4, false),
        "idempotent by client id"
    );

    let all = store.after(&r, 0, 10).await.unwrap();
    assert_eq!(seqs(&all), [1, 2, 3, 4]);
    assert_eq!(all[0].text, "fixed ✓", "the message reads as edited");
    assert!(all[0].edited_at_ms.is_some() && !all[0].deleted);
    assert_eq!((all[3].kind, all[3].target), (EntryKind::Edit, Some(1)));
    assert_eq!(all[3].text, "fixed ✓");

    let appended = store.append(&r, &[change("d1", 1, None)]).await.unwrap();
    assert_eq!(appended[0].seq, 5);
    store.append(&r, &[msg(6, "m6")]).await.unwrap();
    let all = store.after(&r, 0, 10).await.unwrap();
    assert_eq!(
        seqs(&all),
        [1, 2, 3, 4, 5, 6],
        "no hole where text was removed"
    );
    assert!(all[0].deleted && all[0].text.is_empty(), "{:?}", all[0]);
    assert!(
        all[3].deleted && all[3].text.is_empty(),
        "its edit too: {:?}",
        all[3]
    );
    assert_eq!((all[4].kind, all[4].target), (EntryKind::Delete, Some(1)));
    assert_eq!(all[1], msg(2, "m2"), "others untouched");
    assert_eq!(all[0].sender, "Ada", "a placeholder keeps who and when");

    // Pages in both directions, across the removed entries.
    assert_eq!(seqs(&store.after(&r, 3, 2).await.unwrap()), [4, 5]);
    assert_eq!(seqs(&store.after(&r, 0, 1).await.unwrap()), [1]);
    assert_eq!(seqs(&store.before(&r, None, 3).await.unwrap()), [4, 5, 6]);
    assert_eq!(
        seqs(&store.before(&r, Some(5), 10).await.unwrap()),
        [1, 2, 3, 4]
    );
    assert_eq!(seqs(&store.before(&r, Some(3), 1).await.unwrap()), [2]);
}
