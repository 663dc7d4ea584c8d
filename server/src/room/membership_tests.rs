//! Who may be in a room and what the room tells its sessions besides messages: names and
//! capacity, the sanctions in force, typing.

use super::tests::{room, start};
use super::*;
use crate::engine::memory::MemoryStore;

#[tokio::test(start_paused = true)]
async fn a_guest_is_refused_a_verified_name_and_a_full_room_refuses_anyone() {
    use super::{Member, RoomError};
    let handle = spawn_room(
        room("rules"),
        Engine::in_memory(Arc::new(MemoryStore::default())),
        RoomSettings {
            max_connections: 2,
            ..RoomSettings::for_tests()
        },
        CancellationToken::new(),
        |_| {},
    );
    let ada = Member {
        name: "Ada".into(),
        user: Some("u-ada".into()),
    };
    let _ada = handle.join_as(ada).await.unwrap();
    assert!(matches!(
        handle.join("ada".into()).await,
        Err(RoomError::NameTaken)
    ));
    let _bo = handle.join("Bo".into()).await.unwrap();
    assert!(
        matches!(handle.join("Cy".into()).await, Err(RoomError::RoomFull)),
        "two connections: full"
    );
}

#[tokio::test(start_paused = true)]
async fn the_room_hands_its_sessions_the_sanctions_in_force_and_each_change() {
    use app::moderation::{Sanction, SanctionKind, Target};

    use crate::engine::moderation::MemoryModeration;
    use crate::engine::ModerationStore;

    let moderation = Arc::new(MemoryModeration::default());
    let now = crate::engine::retention::now_ms();
    let sanction = |name: &str, until_ms| Sanction {
        kind: SanctionKind::Mute,
        target: Target::User(format!("u-{name}")),
        name: name.into(),
        until_ms,
        at_ms: now,
        by: "Mod".into(),
        reason: String::new(),
    };
    let r = room("test");
    // Made before the room loads: in force for the first joiner.
    moderation
        .put_sanction(&r, &sanction("ada", now + 60_000))
        .await
        .unwrap();
    let mut engine = Engine::in_memory(Arc::new(MemoryStore::default()));
    engine.moderation = moderation.clone();
    let handle = spawn_room(
        r.clone(),
        engine,
        RoomSettings::for_tests(),
        CancellationToken::new(),
        |_| {},
    );
    let mut joined = handle.join("Bob".into()).await.unwrap();
    assert_eq!(joined.sanctions.borrow_and_update().len(), 1);

    // A change is read when the room is told, and each session sees it.
    moderation
        .put_sanction(&r, &sanction("cy", now + 120_000))
        .await
        .unwrap();
    assert!(
        !joined.sanctions.has_changed().unwrap(),
        "not before the room is told"
    );
    handle.moderated().await.unwrap();
    joined.sanctions.changed().await.unwrap();
    let names: Vec<String> = joined
        .sanctions
        .borrow_and_update()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, ["ada", "cy"]);

    // Being told of nothing new wakes nobody.
    handle.moderated().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!joined.sanctions.has_changed().unwrap());
}

#[tokio::test(start_paused = true)]
async fn typing_is_passed_on_but_not_in_big_rooms() {
    let handle = start(Arc::new(MemoryStore::default()));
    let mut watcher = handle.join("Watcher".into()).await.unwrap();
    handle.typing("Ada");
    let typed = loop {
        let d = watcher.live.recv().await.unwrap();
        if let RoomEvent::Typing { name } = &d.event {
            break (name.clone(), d.seq);
        }
    };
    assert_eq!(typed, ("Ada".to_owned(), None), "never numbered");

    // A big room (more than `presence_quiet_above` connections) tells nobody.
    let settings = RoomSettings {
        presence_quiet_above: 2,
        ..RoomSettings::for_tests()
    };
    let big = spawn_room(
        room("big"),
        Engine::in_memory(Arc::new(MemoryStore::default())),
        settings,
        CancellationToken::new(),
        |_| {},
    );
    let mut joined = Vec::new();
    for i in 0..3 {
        joined.push(big.join(format!("p{i}")).await.unwrap());
    }
    big.typing("p0");
    big.send("p1".into(), "c1".into(), "after".into())
        .await
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    loop {
        let d = joined[2].live.recv().await.unwrap();
        assert!(
            !matches!(d.event, RoomEvent::Typing { .. }),
            "typing in a big room"
        );
        if d.seq.is_some() {
            break;
        }
    }
}
