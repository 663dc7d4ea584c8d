//! [`Directory`] on SQLite: the `revocations` and `room_rules` tables; writes go through the
//! writer thread like every other write.

use std::collections::HashMap;

use app::limits::RoomName;
use app::rules::RoomRules;
use futures::future::BoxFuture;
use rusqlite::{params, OptionalExtension};
use tokio::sync::oneshot;

use super::writer::{Exec, Job};
use super::SqliteStore;
use crate::engine::directory::{decode_rules, encode_rules, Directory};
use crate::engine::EngineError;

impl SqliteStore {
    /// Runs `run` on the writer connection, in a transaction of its own.
    pub(super) fn exec(
        &self,
        run: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<()> + Send + 'static,
    ) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(async move {
            let stopped = || EngineError::Unavailable("writer stopped".into());
            let (reply, rx) = oneshot::channel();
            let exec = Exec {
                run: Box::new(run),
                reply,
            };
            self.writes
                .send(Job::Exec(exec))
                .await
                .map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        })
    }
}

impl Directory for SqliteStore {
    fn revoke<'a>(&'a self, sub: &'a str, at_ms: i64) -> BoxFuture<'a, Result<(), EngineError>> {
        let sub = sub.to_owned();
        self.exec(move |conn| {
            conn.execute(
                "INSERT INTO revocations (sub, revoked_at_ms) VALUES (?1, ?2)
                 ON CONFLICT (sub) DO UPDATE SET revoked_at_ms = excluded.revoked_at_ms",
                params![sub, at_ms],
            )
            .map(drop)
        })
    }

    fn revocations(&self) -> BoxFuture<'_, Result<HashMap<String, i64>, EngineError>> {
        self.read(|conn| {
            let mut query = conn.prepare_cached("SELECT sub, revoked_at_ms FROM revocations")?;
            let rows = query.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    fn rules<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<RoomRules>, EngineError>> {
        let room = room.as_str().to_owned();
        let read = self.read(move |conn| {
            conn.prepare_cached("SELECT rules FROM room_rules WHERE room = ?1")?
                .query_row([room], |r| r.get::<_, String>(0))
                .optional()
        });
        Box::pin(async move { Ok(read.await?.as_deref().map(decode_rules)) })
    }

    fn claim_rules<'a>(
        &'a self,
        room: &'a RoomName,
        rules: &'a RoomRules,
    ) -> BoxFuture<'a, Result<bool, EngineError>> {
        let room = room.as_str().to_owned();
        let encoded = encode_rules(rules);
        Box::pin(async move {
            let encoded = encoded?;
            let (tx, rx) = oneshot::channel();
            self.exec(move |conn| {
                let stored = conn.execute(
                    "INSERT INTO room_rules (room, rules) VALUES (?1, ?2)
                     ON CONFLICT (room) DO NOTHING",
                    params![room, encoded],
                )?;
                let _ = tx.send(stored == 1);
                Ok(())
            })
            .await?;
            rx.await
                .map_err(|_| EngineError::Unavailable("writer stopped".into()))
        })
    }

    fn set_rules<'a>(
        &'a self,
        room: &'a RoomName,
        rules: &'a RoomRules,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        let room = room.as_str().to_owned();
        let encoded = encode_rules(rules);
        Box::pin(async move {
            let encoded = encoded?;
            self.exec(move |conn| {
                conn.execute(
                    "INSERT INTO room_rules (room, rules) VALUES (?1, ?2)
                     ON CONFLICT (room) DO UPDATE SET rules = excluded.rules",
                    params![room, encoded],
                )
                .map(drop)
            })
            .await
        })
    }
}
