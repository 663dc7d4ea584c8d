//! [`History`] on the embedded store: appends go to the writer thread (and come back once on
//! disk), reads to the pooled reader connections, each room read only as far as it is on disk.

use app::limits::RoomName;
use app::protocol::{ChatMessage, Seq};
use futures::future::BoxFuture;
use rusqlite::{params, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use super::writer::{Job, WriteJob};
use super::{retention, SqliteStore};
use crate::engine::{Appended, EngineError, History, SWEEP_BATCH};

fn row_to_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        seq: r.get(0)?,
        id: r.get(1)?,
        sender: r.get(2)?,
        text: r.get(3)?,
        sent_at_ms: r.get(4)?,
        client_id: r.get(5)?,
        user_id: r.get(6)?,
        kind: app::protocol::EntryKind::from_code(r.get(7)?),
        target: r.get(8)?,
        edited_at_ms: r.get(9)?,
        deleted: r.get(10)?,
    })
}

impl History for SqliteStore {
    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<Vec<Appended>, EngineError>> {
        Box::pin(async move { self.append_owned(room, batch.to_vec()).await.1 })
    }

    /// The batch goes to the writer thread and comes back with the answer.
    fn append_owned<'a>(
        &'a self,
        room: &'a RoomName,
        batch: Vec<ChatMessage>,
    ) -> BoxFuture<'a, crate::engine::Written> {
        Box::pin(async move {
            let stopped = || EngineError::Unavailable("writer stopped".into());
            let (reply, rx) = oneshot::channel();
            let job = WriteJob {
                room: room.clone(),
                batch,
                reply,
            };
            if let Err(mpsc::error::SendError(Job::Append(job))) =
                self.writes.send(Job::Append(job)).await
            {
                return (job.batch, Err(stopped()));
            }
            // The writer answers every job it takes; a dropped answer means it stopped, and the
            // batch is gone with it.
            rx.await.unwrap_or_else(|_| (Vec::new(), Err(stopped())))
        })
    }

    /// Two: the writer commits a room's next batch while the disk syncs its last one (see
    /// `durable`); more would only make the writer's rounds smaller.
    fn max_in_flight(&self) -> usize {
        2
    }

    fn check(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(self.probed.check(async {
            let stopped = || EngineError::Unavailable("writer stopped".into());
            let (reply, rx) = oneshot::channel();
            self.writes
                .send(Job::Probe(reply))
                .await
                .map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        }))
    }

    fn sweep(&self) -> BoxFuture<'_, Result<u64, EngineError>> {
        Box::pin(async move {
            let Some(cutoff) = self.retention.cutoff_ms(crate::engine::retention::now_ms()) else {
                return Ok(0);
            };
            let limit = usize::try_from(SWEEP_BATCH).unwrap_or(usize::MAX);
            let rooms = self
                .read(move |c| retention::expired_rooms(c, cutoff, limit))
                .await?;
            if rooms.is_empty() {
                return Ok(0);
            }
            let (reply, rx) = oneshot::channel();
            let stopped = || EngineError::Unavailable("writer stopped".into());
            self.writes
                .send(Job::Sweep {
                    rooms,
                    cutoff,
                    reply,
                })
                .await
                .map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        })
    }

    fn head<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<(Seq, i64), EngineError>> {
        let name = room.to_string();
        self.read_room(room, move |c, durable| match durable {
            Some(head) => Ok(head),
            None => c
                .query_row(
                    "SELECT seq, sent_at_ms FROM heads WHERE room = ?1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map(|head| head.unwrap_or((0, 0))),
        })
    }

    fn after<'a>(
        &'a self,
        room: &'a RoomName,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, EngineError>> {
        let name = room.to_string();
        let cutoff = self.retention.cutoff_now();
        self.read_room(room, move |c, durable| {
            let upto = durable.map_or(Seq::MAX, |(seq, _)| seq);
            let mut stmt = c.prepare_cached(
                "SELECT seq, id, sender, text, sent_at_ms, client_id, user_id, kind, target, edited_at_ms, deleted FROM messages
                 WHERE room = ?1 AND seq > ?2 AND seq <= ?5 AND sent_at_ms >= ?4 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![name, after, limit, cutoff, upto.min(i64::MAX as Seq)],
                row_to_message,
            )?;
            rows.collect()
        })
    }

    fn before<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, EngineError>> {
        let name = room.to_string();
        let before = before.unwrap_or(i64::MAX as Seq);
        let cutoff = self.retention.cutoff_now();
        self.read_room(room, move |c, durable| {
            // Nothing past what is on disk.
            let before = durable.map_or(before, |(seq, _)| before.min(seq + 1));
            let mut stmt = c.prepare_cached(
                "SELECT seq, id, sender, text, sent_at_ms, client_id, user_id, kind, target, edited_at_ms, deleted FROM messages
                 WHERE room = ?1 AND seq < ?2 AND sent_at_ms >= ?4 ORDER BY seq DESC LIMIT ?3",
            )?;
            let mut page = stmt
                .query_map(params![name, before, limit, cutoff], row_to_message)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            page.reverse();
            Ok(page)
        })
    }
}
