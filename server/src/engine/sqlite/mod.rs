//! The embedded default store: every room's history in one SQLite file (`<data-dir>/palaver.db`,
//! WAL mode), with the schema migrations compiled into the binary.
//!
//! Writes go through one writer thread ([`writer`]): it commits every batch waiting, from all
//! rooms, in one transaction (group commit), and a sync thread ([`durable`]) answers them once
//! the WAL is fsynced, while the writer commits the next round. Reads use a small pool of
//! separate connections; in WAL mode they never wait for the writer, and they see a room only as
//! far as it is on disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use app::limits::RoomName;
use futures::future::BoxFuture;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::mpsc;
#[cfg(test)]
use tokio::sync::oneshot;

use super::{EngineError, Retention};

pub mod backup;
mod directory;
mod durable;
mod history;
mod moderation;
mod retention;
mod writer;

use durable::Unsynced;
use writer::{Durability, Job};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_messages.sql"),
    include_str!("../../../migrations/0002_probe.sql"),
    include_str!("../../../migrations/0003_heads.sql"),
    include_str!("../../../migrations/0004_identity.sql"),
    include_str!("../../../migrations/0005_changes.sql"),
    include_str!("../../../migrations/0006_moderation.sql"),
];
/// Page size of a new database. A commit writes every page it changed to the WAL whole, and each
/// message's client id lands on a page of its own in the `(room, client_id)` index (client ids
/// are random): with SQLite's default 4 KiB a message cost about 3.4 KB of disk writes, with
/// 1 KiB about 1.2 KB, and the fan-out rows of `scripts/bench.sh` ran 5–20% faster (the writer
/// shares the CPU with them; docs/BENCHMARKS.md, fourth round).
const PAGE_SIZE: i64 = 1024;
/// Batches waiting for the writer before `append` callers wait (backpressure on room tasks).
const WRITE_QUEUE: usize = 1024;
/// Reader connections, and reads running at once: more wait their turn (in order), so a flood
/// of reads can neither open connections without end nor fill the blocking thread pool that
/// room loads also need.
const READER_POOL: usize = 4;

/// Why the database could not be opened. Shown to the operator at start-up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot use data directory {path}: {source}; point --data-dir (PALAVER_DATA_DIR) at a directory this user can write")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another Palaver process; stop it, or give this one its own --data-dir (PALAVER_DATA_DIR)")]
    InUse { path: PathBuf },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path} has schema version {found}, newer than this Palaver knows ({known}); upgrade Palaver, or point --data-dir (PALAVER_DATA_DIR) elsewhere")]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    #[error("cannot start the database writer: {0}")]
    Thread(std::io::Error),
}

/// How a store is opened beyond its directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions {
    /// Largest the database may grow (`--max-database-mb`): past it, appends fail as on a full
    /// disk until rows are freed.
    pub max_bytes: Option<u64>,
    /// What history keeps (`--retain-*`).
    pub retention: Retention,
}

pub struct SqliteStore {
    path: PathBuf,
    /// An exclusive lock on `<data-dir>/palaver.lock`, held for the life of the store: one server
    /// per data directory. The OS releases it when the process dies, however it dies.
    _lock: std::fs::File,
    writes: mpsc::Sender<Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// The write probe's last outcome.
    probed: Arc<super::Probed>,
    retention: Retention,
    /// One permit per read at a time (see [`READER_POOL`]).
    reading: Arc<tokio::sync::Semaphore>,
    /// How far readers may see rooms whose last commits are not yet on disk.
    unsynced: Arc<Unsynced>,
}

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/palaver.db`, runs migrations and starts the writer
    /// thread. Blocking: call it before serving, or from `spawn_blocking`.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
        Self::open_with(data_dir, StoreOptions::default())
    }

    /// [`SqliteStore::open`] with `options`.
    pub fn open_with(data_dir: &Path, options: StoreOptions) -> Result<Self, OpenError> {
        std::fs::create_dir_all(data_dir).map_err(|source| OpenError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let lock_path = data_dir.join("palaver.lock");
        let lock = std::fs::File::create(&lock_path).map_err(|source| OpenError::DataDir {
            path: lock_path.clone(),
            source,
        })?;
        if let Err(e) = lock.try_lock() {
            return Err(match e {
                std::fs::TryLockError::WouldBlock => OpenError::InUse {
                    path: data_dir.to_owned(),
                },
                std::fs::TryLockError::Error(source) => OpenError::DataDir {
                    path: lock_path,
                    source,
                },
            });
        }
        let path = data_dir.join("palaver.db");
        let open_err = |source| OpenError::Open {
            path: path.clone(),
            source,
        };
        let mut writer = open_connection(&path, true).map_err(open_err)?;
        let found: usize = writer
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if found > MIGRATIONS.len() {
            return Err(OpenError::TooNew {
                path,
                found,
                known: MIGRATIONS.len(),
            });
        }
        retention::prepare(&writer, found == 0, &options.retention).map_err(open_err)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
            let tx = writer.transaction().map_err(open_err)?;
            tx.execute_batch(sql).map_err(open_err)?;
            tx.pragma_update(None, "user_version", i + 1)
                .map_err(open_err)?;
            tx.commit().map_err(open_err)?;
        }
        if let Some(max_bytes) = options.max_bytes {
            let page_size: u64 = writer
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(open_err)?;
            let pages = (max_bytes / page_size.max(512)).max(1);
            writer
                .pragma_update(None, "max_page_count", pages)
                .map_err(open_err)?;
        }
        // Checkpoints happen beside the writer, not inside its commits (see the checkpointer).
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(open_err)?;
        let checkpointer = open_connection(&path, false).map_err(open_err)?;
        let (writes, rx) = mpsc::channel(WRITE_QUEUE);
        let unsynced = Arc::new(Unsynced::default());
        let (rounds, synced) = std::sync::mpsc::sync_channel(durable::ROUNDS_WAITING);
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        durable::spawn(wal.into(), synced, unsynced.clone()).map_err(OpenError::Thread)?;
        let durability = Durability {
            rounds,
            unsynced: unsynced.clone(),
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::run(writer, rx, options.retention, durability))
            .map_err(OpenError::Thread)?;
        writer::checkpoint_in_background(checkpointer, writes.clone())
            .map_err(OpenError::Thread)?;
        Ok(Self {
            path,
            _lock: lock,
            writes,
            readers: Arc::new(Mutex::new(Vec::new())),
            reading: Arc::new(tokio::sync::Semaphore::new(READER_POOL)),
            probed: Arc::default(),
            retention: options.retention,
            unsynced,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs the WAL checkpoint that deleted text waits for, now (tests).
    #[cfg(test)]
    pub async fn checkpoint_now(&self) {
        let (reply, done) = oneshot::channel();
        if self.writes.send(Job::Checkpoint(Some(reply))).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Holds the next sync until the guard is dropped (tests).
    #[cfg(test)]
    pub fn hold_syncs(&self) -> std::sync::MutexGuard<'_, ()> {
        self.unsynced
            .gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the WAL's syncs fail from now on, or not (tests).
    #[cfg(test)]
    pub fn fail_syncs(&self, fail: bool) {
        self.unsynced
            .fail_syncs
            .store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    /// Runs `f` on a room's history as far as it is on disk: in a read transaction (one
    /// snapshot), with the head it may see if the room has commits not yet synced. The snapshot
    /// is taken before the head is looked up, so any unsynced commit it holds is accounted for.
    fn read_room<T: Send + 'static>(
        &self,
        room: &RoomName,
        f: impl FnOnce(&Connection, Option<durable::Head>) -> rusqlite::Result<T> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, EngineError>> {
        let unsynced = self.unsynced.clone();
        let room = room.to_string();
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            tx.query_row("SELECT 1 FROM heads LIMIT 1", [], |_| Ok(()))
                .optional()?;
            let result = f(&tx, unsynced.durable_head(&room))?;
            tx.commit()?;
            Ok(result)
        })
    }

    /// Runs `f` on a pooled reader connection in the blocking thread pool, once one of the
    /// [`READER_POOL`] reads at a time is free.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, EngineError>> {
        let pool = self.readers.clone();
        let path = self.path.clone();
        let reading = self.reading.clone();
        Box::pin(async move {
            let Ok(permit) = reading.acquire_owned().await else {
                return Err(EngineError::Unavailable("readers closed".into()));
            };
            let joined = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let pooled = pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let conn = match pooled {
                    Some(c) => c,
                    None => open_connection(&path, false)?,
                };
                let result = f(&conn);
                let mut idle = pool.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < READER_POOL {
                    idle.push(conn);
                }
                result
            })
            .await;
            match joined {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(EngineError::Unavailable(e.to_string())),
                Err(e) => Err(EngineError::Unavailable(format!("reader task failed: {e}"))),
            }
        })
    }
}

fn open_connection(path: &Path, create: bool) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if create {
        // Takes effect only on a database not yet written (an existing one keeps its own).
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL: a commit writes the WAL without waiting for the disk; the sync thread fsyncs it
    // before anyone is answered (see `durable`), so an acknowledged message survives a power cut,
    // not only a crash of this process. Checkpoints still sync the WAL before using it.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // A deleted message's text is overwritten in the file, not left in a free page.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

#[cfg(test)]
mod tests;
