//! The [`ModerationStore`] contract, run against every engine (memory, SQLite, Redis, Redis
//! Cluster) like the history contract in `conformance.rs`.

use app::limits::RoomName;
use app::moderation::{Action, AuditEntry, Sanction, SanctionKind, Target, AUDIT_KEPT};

use super::ModerationStore;

fn sanction(kind: SanctionKind, target: Target, until_ms: i64) -> Sanction {
    Sanction {
        kind,
        target,
        name: "Mallory".into(),
        until_ms,
        at_ms: 1_000,
        by: "Mod".into(),
        reason: "spam".into(),
    }
}

fn entry(at_ms: i64) -> AuditEntry {
    AuditEntry {
        at_ms,
        by: "Mod".into(),
        by_user: Some("mod-1".into()),
        action: Action::Mute,
        name: "Mallory".into(),
        target: Some(Target::User("u-9".into())),
        until_ms: Some(at_ms + 60_000),
        seq: Some(4),
        count: None,
        reason: String::new(),
    }
}

/// Sanctions stored, replaced, ended by time, lifted; audit kept newest first and trimmed;
/// guests' addresses remembered per room and forgotten after their time.
pub async fn all(store: &dyn ModerationStore) {
    sanctions(store).await;
    audit(store).await;
    guests(store).await;
}

async fn sanctions(store: &dyn ModerationStore) {
    let r = RoomName::parse("conf-moderation").unwrap();
    let now = super::retention::now_ms();
    assert!(store.sanctions(&r, now).await.unwrap().is_empty());
    let user = Target::User("u-9".into());
    let guest = Target::Address("203.0.113.7".into());
    let mute = sanction(SanctionKind::Mute, user.clone(), now + 50_000);
    let ban = sanction(SanctionKind::Ban, guest.clone(), now + 20_000);
    let ended = sanction(SanctionKind::Ban, user.clone(), now - 1);
    for s in [&mute, &ban, &ended] {
        store.put_sanction(&r, s).await.unwrap();
    }
    let found = store.sanctions(&r, now).await.unwrap();
    assert_eq!(
        found,
        vec![ban.clone(), mute.clone()],
        "in force, soonest to end first"
    );
    let longer = sanction(SanctionKind::Mute, user.clone(), now + 90_000);
    store.put_sanction(&r, &longer).await.unwrap();
    let found = store.sanctions(&r, now).await.unwrap();
    assert_eq!(
        found,
        vec![ban.clone(), longer],
        "one per kind and target: replaced"
    );
    assert!(
        store.sanctions(&r, now + 30_000).await.unwrap().len() == 1,
        "the ban ended"
    );
    assert!(store
        .lift_sanction(&r, SanctionKind::Mute, &user)
        .await
        .unwrap());
    assert!(
        !store
            .lift_sanction(&r, SanctionKind::Mute, &user)
            .await
            .unwrap(),
        "already lifted"
    );
    assert_eq!(store.sanctions(&r, now).await.unwrap(), vec![ban]);
    let other = RoomName::parse("conf-moderation-2").unwrap();
    assert!(
        store.sanctions(&other, now).await.unwrap().is_empty(),
        "per room"
    );
}

async fn audit(store: &dyn ModerationStore) {
    let r = RoomName::parse("conf-audit").unwrap();
    assert!(store.audit(&r, 10).await.unwrap().is_empty());
    for at in 1..=3 {
        store.record(&r, &entry(at)).await.unwrap();
    }
    let latest: Vec<i64> = store
        .audit(&r, 2)
        .await
        .unwrap()
        .iter()
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(latest, vec![3, 2], "newest first, limited");
    assert_eq!(
        store.audit(&r, 10).await.unwrap()[2],
        entry(1),
        "stored whole"
    );
    for at in 4..=(AUDIT_KEPT as i64 + 5) {
        store.record(&r, &entry(at)).await.unwrap();
    }
    let kept = store.audit(&r, AUDIT_KEPT * 2).await.unwrap();
    assert_eq!(kept.len(), AUDIT_KEPT, "trimmed to the latest {AUDIT_KEPT}");
    assert_eq!(kept.last().map(|e| e.at_ms), Some(6));
}

async fn guests(store: &dyn ModerationStore) {
    let r = RoomName::parse("conf-guests").unwrap();
    let now = super::retention::now_ms();
    assert_eq!(store.guest_address(&r, "abc", now).await.unwrap(), None);
    store
        .note_guest(&r, "abc", "198.51.100.4", now)
        .await
        .unwrap();
    store
        .note_guest(&r, "abc", "198.51.100.5", now)
        .await
        .unwrap();
    assert_eq!(
        store
            .guest_address(&r, "abc", now)
            .await
            .unwrap()
            .as_deref(),
        Some("198.51.100.5"),
        "the latest address"
    );
    let other = RoomName::parse("conf-guests-2").unwrap();
    assert_eq!(
        store.guest_address(&other, "abc", now).await.unwrap(),
        None,
        "per room"
    );
}
