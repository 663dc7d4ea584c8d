//! [`ModerationStore`] on SQLite: the `sanctions`, `audit` and `guest_addresses` tables
//! (`migrations/0006_moderation.sql`); writes go through the writer thread.

use app::limits::RoomName;
use app::moderation::{AuditEntry, Sanction, SanctionKind, Target, AUDIT_KEPT};
use futures::future::BoxFuture;
use rusqlite::{params, OptionalExtension};
use tokio::sync::oneshot;

use super::SqliteStore;
use crate::engine::moderation::{
    decode, encode, in_force, sanction_key, ModerationStore, GUEST_ADDRESS_TTL_MS,
};
use crate::engine::EngineError;

type Answer<'a, T> = BoxFuture<'a, Result<T, EngineError>>;

impl ModerationStore for SqliteStore {
    fn put_sanction<'a>(&'a self, room: &'a RoomName, sanction: &'a Sanction) -> Answer<'a, ()> {
        let room = room.as_str().to_owned();
        let key = sanction_key(sanction.kind, &sanction.target);
        let until = sanction.until_ms;
        let body = encode(sanction);
        Box::pin(async move {
            let body = body?;
            self.exec(move |conn| {
                conn.execute(
                    "INSERT INTO sanctions (room, key, until_ms, body) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (room, key) DO UPDATE
                     SET until_ms = excluded.until_ms, body = excluded.body",
                    params![room, key, until, body],
                )?;
                // Ended sanctions of the room go with any change.
                conn.execute(
                    "DELETE FROM sanctions WHERE room = ?1 AND until_ms <= ?2",
                    params![room, sanction_now()],
                )
                .map(drop)
            })
            .await
        })
    }

    fn lift_sanction<'a>(
        &'a self,
        room: &'a RoomName,
        kind: SanctionKind,
        target: &'a Target,
    ) -> Answer<'a, bool> {
        let room = room.as_str().to_owned();
        let key = sanction_key(kind, target);
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.exec(move |conn| {
                let removed = conn.execute(
                    "DELETE FROM sanctions WHERE room = ?1 AND key = ?2",
                    params![room, key],
                )?;
                let _ = tx.send(removed == 1);
                Ok(())
            })
            .await?;
            rx.await
                .map_err(|_| EngineError::Unavailable("writer stopped".into()))
        })
    }

    fn sanctions<'a>(&'a self, room: &'a RoomName, now_ms: i64) -> Answer<'a, Vec<Sanction>> {
        let room = room.as_str().to_owned();
        let read = self.read(move |conn| {
            let mut query = conn
                .prepare_cached("SELECT body FROM sanctions WHERE room = ?1 AND until_ms > ?2")?;
            let rows = query.query_map(params![room, now_ms], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        });
        Box::pin(async move {
            let stored = read.await?;
            let all = stored.iter().filter_map(|s| decode(s)).collect();
            Ok(in_force(all, now_ms))
        })
    }

    fn record<'a>(&'a self, room: &'a RoomName, entry: &'a AuditEntry) -> Answer<'a, ()> {
        let room = room.as_str().to_owned();
        let body = encode(entry);
        Box::pin(async move {
            let body = body?;
            self.exec(move |conn| {
                conn.execute(
                    "INSERT INTO audit (room, body) VALUES (?1, ?2)",
                    params![room, body],
                )?;
                conn.execute(
                    "DELETE FROM audit WHERE room = ?1 AND id <= (
                         SELECT id FROM audit WHERE room = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    params![room, AUDIT_KEPT as i64],
                )
                .map(drop)
            })
            .await
        })
    }

    fn audit<'a>(&'a self, room: &'a RoomName, limit: usize) -> Answer<'a, Vec<AuditEntry>> {
        let room = room.as_str().to_owned();
        let read = self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT body FROM audit WHERE room = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = query.query_map(params![room, limit as i64], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        });
        Box::pin(async move { Ok(read.await?.iter().filter_map(|s| decode(s)).collect()) })
    }

    fn note_guest<'a>(
        &'a self,
        room: &'a RoomName,
        scope: &'a str,
        address: &'a str,
        now_ms: i64,
    ) -> Answer<'a, ()> {
        let (room, scope, address) = (
            room.as_str().to_owned(),
            scope.to_owned(),
            address.to_owned(),
        );
        self.exec(move |conn| {
            conn.execute(
                "INSERT INTO guest_addresses (room, scope, address, seen_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (room, scope) DO UPDATE
                 SET address = excluded.address, seen_ms = excluded.seen_ms",
                params![room, scope, address, now_ms],
            )?;
            conn.execute(
                "DELETE FROM guest_addresses WHERE seen_ms < ?1",
                params![now_ms - GUEST_ADDRESS_TTL_MS],
            )
            .map(drop)
        })
    }

    fn guest_address<'a>(
        &'a self,
        room: &'a RoomName,
        scope: &'a str,
        now_ms: i64,
    ) -> Answer<'a, Option<String>> {
        let (room, scope) = (room.as_str().to_owned(), scope.to_owned());
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT address FROM guest_addresses
                 WHERE room = ?1 AND scope = ?2 AND seen_ms >= ?3",
            )?
            .query_row(params![room, scope, now_ms - GUEST_ADDRESS_TTL_MS], |r| {
                r.get(0)
            })
            .optional()
        })
    }
}

fn sanction_now() -> i64 {
    crate::engine::retention::now_ms()
}
