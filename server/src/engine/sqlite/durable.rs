//! Durability beside the writer. The writer's connection commits with `synchronous=NORMAL`: its
//! COMMIT writes the WAL but does not wait for the disk. It hands each round's answers here, and
//! this thread makes the WAL durable (one `fdatasync` for every round committed since its last
//! one) before it sends them, in the order the rounds were made. So the writer commits the next
//! batches while the disk syncs the previous ones (pipelined group commits), and nobody is
//! answered, and no message broadcast, before what it wrote is on disk.
//!
//! Readers must not see what is committed but not yet on disk either: a power cut would take it
//! back after someone saw it, and its number would be given to another message. [`Unsynced`]
//! keeps, for each room with such commits, the head that is on disk; the store's reads stop there.
//!
//! SQLite's own checkpoints stay safe under `NORMAL`: a checkpoint syncs the WAL before it copies
//! it into the database file, and the database file before the WAL is reused.
//!
//! A failed `fdatasync` is not retried: after one, Linux may have dropped the pages it could not
//! write and report the next sync as a success. The store stops taking writes (every later answer
//! is an error, the engine's probe fails, rooms go degraded) until the server is restarted, when
//! SQLite recovers from what the disk really holds.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};

use app::protocol::Seq;
use tracing::error;

use crate::engine::EngineError;

/// Rounds committed and waiting for their sync before the writer waits too: the disk sets the
/// pace, and what is written but not on disk stays bounded.
pub(super) const ROUNDS_WAITING: usize = 64;

/// A room's head: its last sequence number and that message's time.
pub(super) type Head = (Seq, i64);

/// One answer to send once its round is on disk (or with the error if it cannot be).
pub(super) type Reply = Box<dyn FnOnce(Result<(), EngineError>) + Send>;

/// What one turn of the writer committed: its number and the answers waiting for it.
pub(super) struct Round {
    pub ticket: u64,
    pub replies: Vec<Reply>,
}

/// The heads readers may see, for rooms with commits not yet on disk.
#[derive(Default)]
pub(super) struct Unsynced {
    rooms: Mutex<HashMap<String, Pending>>,
    /// Held by a test to keep the next sync from happening.
    #[cfg(test)]
    pub(super) gate: Mutex<()>,
    /// Set by a test to make the syncs fail as a broken disk's would.
    #[cfg(test)]
    pub(super) fail_syncs: std::sync::atomic::AtomicBool,
}

/// A room's head on disk, and the heads its commits since then reach, by round.
struct Pending {
    durable: Head,
    commits: VecDeque<(u64, Head)>,
}

impl Unsynced {
    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        // Never held across a call that could panic midway: the map stays consistent.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the writer before it commits round `ticket`, which moves `room`'s head from
    /// `from` (on disk unless an earlier round is still waiting) to `to`.
    pub(super) fn committing(&self, room: &str, ticket: u64, from: Head, to: Head) {
        let mut rooms = self.rooms();
        let pending = rooms.entry(room.to_owned()).or_insert_with(|| Pending {
            durable: from,
            commits: VecDeque::new(),
        });
        pending.commits.push_back((ticket, to));
    }

    /// Round `ticket` did not commit: its heads were never reached.
    pub(super) fn rolled_back(&self, rooms: &[&str], ticket: u64) {
        let mut all = self.rooms();
        for room in rooms {
            if let Some(pending) = all.get_mut(*room) {
                pending.commits.retain(|(t, _)| *t != ticket);
                if pending.commits.is_empty() {
                    all.remove(*room);
                }
            }
        }
    }

    /// Every round up to `ticket` is on disk.
    fn synced(&self, ticket: u64) {
        self.rooms().retain(|_, pending| {
            while let Some(&(t, head)) = pending.commits.front() {
                if t > ticket {
                    break;
                }
                pending.durable = head;
                pending.commits.pop_front();
            }
            !pending.commits.is_empty()
        });
    }

    /// The head readers may see in `room`, if it has commits not yet on disk; `None`: everything
    /// committed is.
    pub(super) fn durable_head(&self, room: &str) -> Option<Head> {
        self.rooms().get(room).map(|p| p.durable)
    }
}

/// The WAL file, opened again if SQLite ever replaced it.
struct Wal {
    path: PathBuf,
    file: Option<(std::fs::File, u64)>,
}

impl Wal {
    fn sync(&mut self) -> std::io::Result<()> {
        let inode = std::fs::metadata(&self.path)?.ino();
        let file = match self.file.take() {
            Some((file, ino)) if ino == inode => file,
            _ => std::fs::OpenOptions::new().write(true).open(&self.path)?,
        };
        let synced = file.sync_data();
        self.file = Some((file, inode));
        synced
    }
}

/// Starts the thread that syncs `wal` and answers each round; it stops when the writer does.
pub(super) fn spawn(
    wal: PathBuf,
    rounds: mpsc::Receiver<Round>,
    unsynced: Arc<Unsynced>,
) -> std::io::Result<()> {
    let mut wal = Wal {
        path: wal,
        file: None,
    };
    std::thread::Builder::new()
        .name("sqlite-sync".into())
        .spawn(move || {
            let mut failed: Option<String> = None;
            while let Ok(first) = rounds.recv() {
                let mut waiting = vec![first];
                waiting.extend(rounds.try_iter());
                #[cfg(test)]
                let held = unsynced.gate.lock().unwrap_or_else(PoisonError::into_inner);
                if failed.is_none() {
                    let synced = wal.sync();
                    #[cfg(test)]
                    let synced = match unsynced.fail_syncs.load(std::sync::atomic::Ordering::SeqCst) {
                        true => Err(std::io::Error::other("injected by a test")),
                        false => synced,
                    };
                    if let Err(e) = synced {
                        error!(error = %e, "fsync of the database's WAL failed; no more writes are taken until the server is restarted");
                        failed = Some(format!("storage could not sync: {e}"));
                    }
                }
                #[cfg(test)]
                drop(held);
                let outcome = match &failed {
                    None => {
                        let last = waiting.last().map_or(0, |r| r.ticket);
                        unsynced.synced(last);
                        Ok(())
                    }
                    Some(why) => Err(EngineError::Unavailable(why.clone())),
                };
                for reply in waiting.into_iter().flat_map(|r| r.replies) {
                    reply(outcome.clone());
                }
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_a_room_only_as_far_as_the_disk_has_it() {
        let unsynced = Unsynced::default();
        assert_eq!(unsynced.durable_head("a"), None, "nothing waiting");
        unsynced.committing("a", 1, (3, 30), (5, 50));
        unsynced.committing("a", 2, (5, 50), (7, 70));
        unsynced.committing("b", 2, (0, 0), (1, 10));
        assert_eq!(unsynced.durable_head("a"), Some((3, 30)));
        unsynced.synced(1);
        assert_eq!(unsynced.durable_head("a"), Some((5, 50)), "round 2 waits");
        assert_eq!(unsynced.durable_head("b"), Some((0, 0)));
        unsynced.committing("a", 3, (7, 70), (8, 80));
        unsynced.rolled_back(&["a"], 3);
        unsynced.synced(2);
        assert_eq!(unsynced.durable_head("a"), None, "all on disk");
        assert_eq!(unsynced.durable_head("b"), None);
    }

    #[test]
    fn a_rolled_back_round_leaves_the_head_where_the_disk_has_it() {
        let unsynced = Unsynced::default();
        unsynced.committing("a", 1, (3, 30), (5, 50));
        unsynced.rolled_back(&["a"], 1);
        assert_eq!(unsynced.durable_head("a"), None);
    }
}
