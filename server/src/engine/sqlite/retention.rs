//! Retention on SQLite. The count limit is applied by the writer as each batch commits (the rows
//! that fell off the room's end go in the same transaction); the age limit by a sweep, which
//! deletes the expired prefix of rooms a reader found (timestamps never go back within a room, so what is too old
//! is always a room's oldest messages) and then returns free pages to the file system with an
//! incremental vacuum. Reads skip what is too old in between sweeps.

use app::protocol::Seq;
use rusqlite::{params, Connection};
use tracing::info;

use crate::engine::{Retention, SWEEP_BATCH};

/// Pages an incremental vacuum returns per sweep at most (4 KiB each: 64 MiB).
const VACUUM_PAGES: u32 = 16_384;

/// Makes the database return freed pages on request (`auto_vacuum = INCREMENTAL`). A new database
/// just takes the setting; an existing one is rewritten once (`VACUUM`), and only when retention
/// will free pages.
pub(super) fn prepare(conn: &Connection, new: bool, retention: &Retention) -> rusqlite::Result<()> {
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    const INCREMENTAL: i64 = 2;
    if mode == INCREMENTAL {
        return Ok(());
    }
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    if !new && !retention.keeps_all() {
        info!("rewriting the database once so that retention can return space (VACUUM)");
        conn.execute_batch("VACUUM")?;
    }
    Ok(())
}

/// Removes what the count limit no longer keeps of `room` once its head is `head` (inside the
/// writer's transaction).
pub(super) fn trim_count(
    conn: &Connection,
    room: &str,
    head: Seq,
    retention: &Retention,
) -> rusqlite::Result<()> {
    let upto = retention.removed_upto(head);
    if upto > 0 {
        conn.prepare_cached("DELETE FROM messages WHERE room = ?1 AND seq <= ?2")?
            .execute(params![room, upto])?;
    }
    Ok(())
}

/// Rooms holding messages sent before `cutoff` (at most `limit`). A read, on a reader
/// connection: looking through every room never holds up the writer.
pub(super) fn expired_rooms(
    conn: &Connection,
    cutoff: i64,
    limit: usize,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT h.room FROM heads h WHERE (SELECT m.sent_at_ms FROM messages m
             WHERE m.room = h.room ORDER BY m.seq LIMIT 1) < ?1 LIMIT ?2",
    )?;
    let rooms = stmt.query_map(params![cutoff, limit], |r| r.get(0))?;
    rooms.collect()
}

/// Deletes up to [`SWEEP_BATCH`] messages sent before `cutoff` from `rooms`, then vacuums
/// incrementally. Returns how many messages went. On the writer.
pub(super) fn delete_expired(
    conn: &mut Connection,
    rooms: &[String],
    cutoff: i64,
) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    let mut removed = 0u64;
    {
        // Timestamps never go back within a room: its expired messages are its oldest ones.
        let mut delete = tx.prepare_cached(
            "DELETE FROM messages WHERE room = ?1 AND seq IN
                 (SELECT seq FROM messages WHERE room = ?1 ORDER BY seq LIMIT ?3)
             AND sent_at_ms < ?2",
        )?;
        for room in rooms {
            let left = SWEEP_BATCH - removed;
            removed += delete.execute(params![room, cutoff, left])? as u64;
            if removed >= SWEEP_BATCH {
                break;
            }
        }
    }
    tx.commit()?;
    if removed > 0 {
        conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
    }
    Ok(removed)
}
