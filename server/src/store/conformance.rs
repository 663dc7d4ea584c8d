//! The [`RoomStore`] contract as tests, run against every implementation (SQLite in `sqlite.rs`,
//! Redis in `redis_store.rs`), so the engines cannot drift apart.

use app::limits::RoomName;
use app::protocol::{ChatMessage, Seq};

use super::{RoomStore, Roster, StoreError};

pub fn msg(seq: Seq, client_id: &str) -> ChatMessage {
    ChatMessage {
        seq,
        id: format!("id{seq}"),
        sender: "Ada".into(),
        text: format!("text {seq} ✓ \"quoted\"\nsecond line"),
        sent_at_ms: 1_700_000_000_000 + seq as i64,
        client_id: client_id.into(),
    }
}

pub fn room(name: &str) -> RoomName {
    RoomName::parse(name).expect("valid room name")
}

/// Every contract test, in turn.
pub async fn all(store: &dyn RoomStore) {
    reads_in_order_per_room(store).await;
    refuses_holes_repeats_and_duplicate_ids(store).await;
    finds_client_ids(store).await;
    own_roster_is_not_remote(store).await;
    store.check().await.expect("a working store checks out");
}

async fn reads_in_order_per_room(store: &dyn RoomStore) {
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

async fn refuses_holes_repeats_and_duplicate_ids(store: &dyn RoomStore) {
    let r = room("conf-refuse");
    store.append(&r, &[msg(1, "c1")]).await.unwrap();
    assert!(
        matches!(
            store.append(&r, &[msg(3, "c3")]).await,
            Err(StoreError::Conflict(_))
        ),
        "hole refused as a conflict"
    );
    assert!(
        matches!(
            store.append(&r, &[msg(1, "again")]).await,
            Err(StoreError::Conflict(_))
        ),
        "repeat refused as a conflict"
    );
    assert!(
        store.append(&r, &[msg(2, "c1")]).await.is_err(),
        "duplicate client id refused"
    );
    assert_eq!(
        store.head(&r).await.unwrap().0,
        1,
        "a refused batch left nothing"
    );
    assert_eq!(store.after(&r, 0, 10).await.unwrap().len(), 1);
    store.append(&r, &[msg(2, "c2")]).await.unwrap();
    assert_eq!(store.head(&r).await.unwrap().0, 2);
}

async fn finds_client_ids(store: &dyn RoomStore) {
    let (r, other) = (room("conf-ids"), room("conf-ids-other"));
    store
        .append(&r, &[msg(1, "x1"), msg(2, "x2")])
        .await
        .unwrap();
    let ids = ["x2".to_owned(), "nope".to_owned()];
    let found = store.find_client_ids(&r, &ids).await.unwrap();
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        [("x2".to_owned(), 2)]
    );
    assert!(store
        .find_client_ids(&other, &ids)
        .await
        .unwrap()
        .is_empty());
    assert!(store.find_client_ids(&r, &[]).await.unwrap().is_empty());
}

async fn own_roster_is_not_remote(store: &dyn RoomStore) {
    let r = room("conf-roster");
    let local = Roster::from([("Ada".to_owned(), 2)]);
    store.share_roster(&r, &local, true).await.unwrap();
    assert!(
        store.remote_roster(&r).await.unwrap().is_empty(),
        "a node's own people are not listed as another node's"
    );
    store.share_roster(&r, &Roster::new(), true).await.unwrap();
}
