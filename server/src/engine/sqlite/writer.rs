//! The writer thread: the only connection that writes. It takes every batch waiting (from all
//! rooms), commits them in one transaction and hands the answers to the sync thread
//! ([`super::durable`]), which sends them once the commit is on disk: a busy server pays one
//! fsync per round, not per message or per room (group commit), and the writer commits the next
//! round while the disk syncs the last. Each batch is numbered inside the transaction after its
//! room's stored head, and its client ids checked; a batch that fails is refused alone
//! (savepoint), the others still commit.

use app::limits::RoomName;
use app::protocol::{ChatMessage, EntryKind, Seq};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use super::durable::{Head, Reply, Round, Unsynced};
use crate::engine::{Appended, EngineError, Retention, Written};
use crate::redact::LogName;

/// Most batches folded into one transaction.
const MAX_BATCHES_PER_COMMIT: usize = 256;

/// What the writer is asked to do.
pub(super) enum Job {
    /// Commit a room's batch.
    Append(WriteJob),
    /// Find out whether a write of some size can be made durable now (see [`probe`]).
    Probe(oneshot::Sender<Result<(), EngineError>>),
    /// Delete what is older than `cutoff` in `rooms` (see [`super::retention`]).
    Sweep {
        rooms: Vec<String>,
        cutoff: i64,
        reply: oneshot::Sender<Result<u64, EngineError>>,
    },
    /// Run one small write of its own (a revocation, a room's rules), in its own transaction.
    Exec(Exec),
    /// If messages were deleted since the last one, a checkpoint that truncates the WAL, so that
    /// their text leaves the WAL file too (see [`CHECKPOINT_EVERY`]). Answered when done.
    Checkpoint(Option<oneshot::Sender<()>>),
}

/// How often a deleted message's text is made to leave the WAL file: at most this long after the
/// delete (the database file itself is overwritten at once, `secure_delete`).
pub(super) const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// How often the checkpointer copies what the WAL holds into the database file.
const CHECKPOINT_PASSIVE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// The checkpointer thread, on its own connection `conn`: every [`CHECKPOINT_PASSIVE_EVERY`] it
/// copies committed pages from the WAL into the database file (a passive checkpoint: it never
/// waits for, nor blocks, the writer), and every [`CHECKPOINT_EVERY`] it asks the writer for a
/// [`Job::Checkpoint`]. It stops with the writer.
///
/// The writer's own automatic checkpoints are off: made inside a commit, they made that commit
/// (and every sender waiting for it) wait for the database file's writes and fsync, several
/// milliseconds every thousand pages: the tail of every latency figure.
pub(super) fn checkpoint_in_background(
    conn: Connection,
    writes: mpsc::Sender<Job>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sqlite-checkpoints".into())
        .spawn(move || {
            let mut last_truncate = std::time::Instant::now();
            loop {
                std::thread::sleep(CHECKPOINT_PASSIVE_EVERY);
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    error!(error = %e, "background checkpoint failed");
                }
                if last_truncate.elapsed() >= CHECKPOINT_EVERY {
                    last_truncate = std::time::Instant::now();
                    if writes.blocking_send(Job::Checkpoint(None)).is_err() {
                        return;
                    }
                }
            }
        })
        .map(drop)
}

/// Makes an edit or a delete take effect on its target, in the transaction that stores it: an
/// edit replaces a live message's text; a delete removes the text of the message and of every
/// edit of it.
fn apply_change(
    tx: &rusqlite::Connection,
    room: &str,
    m: &ChatMessage,
    at: i64,
) -> Result<(), EngineError> {
    let Some(target) = m.target else {
        return Ok(());
    };
    let changed = match m.kind {
        EntryKind::Message => return Ok(()),
        EntryKind::Edit => tx
            .prepare_cached(
                "UPDATE messages SET text = ?3, edited_at_ms = ?4
                 WHERE room = ?1 AND seq = ?2 AND kind = 0 AND deleted = 0",
            )
            .and_then(|mut s| s.execute(params![room, target, m.text, at])),
        EntryKind::Delete => tx
            .prepare_cached(
                "UPDATE messages SET text = '', deleted = 1
                 WHERE room = ?1 AND ((seq = ?2 AND kind = 0) OR (kind = 1 AND target = ?2))",
            )
            .and_then(|mut s| s.execute(params![room, target])),
    };
    changed.map(drop).map_err(unavailable)
}

/// A small write of its own, run on the writer's connection.
pub(super) type ExecFn = Box<dyn FnOnce(&mut Connection) -> rusqlite::Result<()> + Send>;

/// A small write, run by the writer like any other.
pub(super) struct Exec {
    pub run: ExecFn,
    pub reply: oneshot::Sender<Result<(), EngineError>>,
}

/// One room's batch, waiting for the writer.
pub(super) struct WriteJob {
    pub room: RoomName,
    pub batch: Vec<ChatMessage>,
    pub reply: oneshot::Sender<Written>,
}

/// Bytes the write probe writes: more than a typical batch, so that a database with less room
/// than that counts as full (a room is not told storage is back only to fail at once again).
const PROBE_BYTES: i64 = 64 * 1024;

/// Where the writer's answers go: to the sync thread, with what readers may see meanwhile.
pub(super) struct Durability {
    pub rounds: std::sync::mpsc::SyncSender<Round>,
    pub unsynced: Arc<Unsynced>,
}

/// An answer sent once its round is on disk: the outcome, unless the sync failed.
fn reply<T: Send + 'static>(
    to: oneshot::Sender<Result<T, EngineError>>,
    outcome: Result<T, EngineError>,
) -> Reply {
    Box::new(move |synced: Result<(), EngineError>| {
        let _ = to.send(synced.and(outcome));
    })
}

/// The thread's loop: until every sender is gone, commit what waits and hand each job's answer
/// to the sync thread, one round per turn.
pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    retention: Retention,
    durability: Durability,
) {
    let mut ticket = 0u64;
    let mut jobs = Vec::with_capacity(MAX_BATCHES_PER_COMMIT);
    let mut probes = Vec::new();
    let mut sweeps = Vec::new();
    let mut execs: Vec<Exec> = Vec::new();
    let mut checkpoints = Vec::new();
    // Whether a delete was committed since the last truncating checkpoint.
    let mut deleted_since = false;
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Append(job) => jobs.push(job),
                Job::Probe(reply) => probes.push(reply),
                Job::Sweep {
                    rooms,
                    cutoff,
                    reply,
                } => sweeps.push((rooms, cutoff, reply)),
                Job::Exec(exec) => execs.push(exec),
                Job::Checkpoint(reply) => checkpoints.push(reply),
            }
            if jobs.len() < MAX_BATCHES_PER_COMMIT {
                next = rx.try_recv().ok();
            }
        }
        ticket += 1;
        let mut replies: Vec<Reply> = Vec::with_capacity(jobs.len());
        if !jobs.is_empty() {
            deleted_since |= jobs
                .iter()
                .any(|j| j.batch.iter().any(|m| m.kind == EntryKind::Delete));
            let round = (ticket, &*durability.unsynced);
            let outcomes = commit_jobs(&mut conn, &jobs, &retention, round);
            for (job, outcome) in jobs.drain(..).zip(outcomes) {
                let (to, batch) = (job.reply, job.batch);
                replies.push(Box::new(move |synced: Result<(), EngineError>| {
                    let _ = to.send((batch, synced.and(outcome)));
                }));
            }
        }
        for exec in execs.drain(..) {
            let outcome = (exec.run)(&mut conn).map_err(unavailable);
            replies.push(reply(exec.reply, outcome));
        }
        for (rooms, cutoff, to) in sweeps.drain(..) {
            let outcome = super::retention::delete_expired(&mut conn, &rooms, cutoff);
            replies.push(reply(to, outcome.map_err(unavailable)));
        }
        if !checkpoints.is_empty() {
            if deleted_since {
                match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                }) {
                    // 0: done; 1: readers held it up, try again next time.
                    Ok(0) => deleted_since = false,
                    Ok(_) => {}
                    Err(e) => error!(error = %e, "checkpoint failed"),
                }
            }
            for to in checkpoints.drain(..).flatten() {
                replies.push(Box::new(move |_| {
                    let _ = to.send(());
                }));
            }
        }
        if !probes.is_empty() {
            let outcome = probe(&mut conn);
            for to in probes.drain(..) {
                replies.push(reply(to, outcome.clone()));
            }
        }
        // Waits while the disk is [`super::durable::ROUNDS_WAITING`] rounds behind. Fails only
        // when the sync thread is gone: the dropped answers tell their callers so.
        if !replies.is_empty() && durability.rounds.send(Round { ticket, replies }).is_err() {
            error!("the database's sync thread stopped");
        }
    }
}

/// Writes [`PROBE_BYTES`] durably, then deletes them: fails when the disk, or the database's size
/// limit (`--max-database-mb`), has no room for them.
fn probe(conn: &mut Connection) -> Result<(), EngineError> {
    let write = |conn: &mut Connection, sql: &str| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        tx.execute(sql, [PROBE_BYTES])?;
        tx.commit()
    };
    write(
        conn,
        "INSERT OR REPLACE INTO probe (id, pad) VALUES (1, zeroblob(?1))",
    )
    .and_then(|()| write(conn, "DELETE FROM probe WHERE length(pad) = ?1"))
    .map_err(unavailable)
}

/// Commits every job's batch in one transaction (round `ticket`, noted in `unsynced` before it
/// is visible to readers); returns each job's outcome.
fn commit_jobs(
    conn: &mut Connection,
    jobs: &[WriteJob],
    retention: &Retention,
    (ticket, unsynced): (u64, &Unsynced),
) -> Vec<Result<Vec<Appended>, EngineError>> {
    let fail_all = |e: rusqlite::Error| {
        error!(error = %e, "database commit failed");
        jobs.iter()
            .map(|_| Err(EngineError::Unavailable(e.to_string())))
            .collect()
    };
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return fail_all(e),
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut moved = Vec::new();
    for job in jobs {
        let outcome = (|| -> Result<Vec<Appended>, EngineError> {
            let sp = tx.savepoint().map_err(unavailable)?;
            let inserted = insert_batch(&sp, job.room.as_str(), &job.batch, retention)?;
            sp.commit().map_err(unavailable)?;
            moved.extend(inserted.moved.map(|heads| (job.room.as_str(), heads)));
            Ok(inserted.appended)
        })();
        if let Err(e) = &outcome {
            error!(room = %job.room.logged(), error = %e, "batch refused");
        }
        outcomes.push(outcome);
    }
    for &(room, (from, to)) in &moved {
        unsynced.committing(room, ticket, from, to);
    }
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => {
            let rooms: Vec<&str> = moved.iter().map(|(room, _)| *room).collect();
            unsynced.rolled_back(&rooms, ticket);
            fail_all(e)
        }
    }
}

fn unavailable(e: rusqlite::Error) -> EngineError {
    EngineError::Unavailable(e.to_string())
}

/// What [`insert_batch`] did.
struct Inserted {
    appended: Vec<Appended>,
    /// The room's head before and after, if it moved.
    moved: Option<(Head, Head)>,
}

/// Numbers and inserts one room's batch (see [`crate::engine::History::append`]), moves the
/// room's head and removes what the count limit no longer keeps. Returns each message's outcome
/// and, if the head moved, from where to where.
fn insert_batch(
    conn: &Connection,
    room: &str,
    batch: &[ChatMessage],
    retention: &Retention,
) -> Result<Inserted, EngineError> {
    let (stored_head, stored_ts): (Seq, i64) = conn
        .prepare_cached("SELECT seq, sent_at_ms FROM heads WHERE room = ?1")
        .and_then(|mut s| s.query_row([room], |r| Ok((r.get(0)?, r.get(1)?))))
        .optional()
        .map_err(unavailable)?
        .unwrap_or((0, 0));
    let (mut head, mut head_ts) = (stored_head, stored_ts);
    let mut stored = conn
        .prepare_cached("SELECT seq, sent_at_ms FROM messages WHERE room = ?1 AND client_id = ?2")
        .map_err(unavailable)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO messages
                 (room, seq, id, sender, text, sent_at_ms, client_id, user_id, kind, target)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(unavailable)?;
    let mut appended = Vec::with_capacity(batch.len());
    for m in batch {
        // Rows inserted earlier in this batch are visible too: a repeat within it is caught.
        if let Some((seq, sent_at_ms)) = stored
            .query_row(params![room, m.client_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(unavailable)?
        {
            appended.push(Appended {
                seq,
                sent_at_ms,
                new: false,
            });
            continue;
        }
        head += 1;
        head_ts = head_ts.max(m.sent_at_ms);
        insert
            .execute(params![
                room,
                head,
                m.id,
                m.sender,
                m.text,
                head_ts,
                m.client_id,
                m.user_id,
                m.kind.code(),
                m.target
            ])
            .map_err(unavailable)?;
        apply_change(conn, room, m, head_ts)?;
        appended.push(Appended {
            seq: head,
            sent_at_ms: head_ts,
            new: true,
        });
    }
    if head > stored_head {
        conn.prepare_cached(
            "INSERT INTO heads (room, seq, sent_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (room) DO UPDATE SET seq = excluded.seq, sent_at_ms = excluded.sent_at_ms",
        )
        .and_then(|mut s| s.execute(params![room, head, head_ts]))
        .map_err(unavailable)?;
        super::retention::trim_count(conn, room, head, retention).map_err(unavailable)?;
        return Ok(Inserted {
            appended,
            moved: Some(((stored_head, stored_ts), (head, head_ts))),
        });
    }
    Ok(Inserted {
        appended,
        moved: None,
    })
}
