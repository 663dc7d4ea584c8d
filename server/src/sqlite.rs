//! The embedded default store: every room's history in one SQLite file (`<data-dir>/palaver.db`,
//! WAL mode, `synchronous=FULL`), with the schema migrations compiled into the binary.
//!
//! Writes go through one writer thread. It takes every batch waiting (from all rooms), commits
//! them in one transaction — one fsync for all of them — and then answers each room. So a busy
//! server pays one durable commit per round, not per message or per room (group commit). Each
//! batch is checked inside the transaction to continue its room's sequence with no hole; a batch
//! that does not is refused alone (savepoint), the others still commit.
//!
//! Reads use a small pool of separate connections; in WAL mode they never wait for the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use app::limits::RoomName;
use app::protocol::{ChatMessage, Seq};
use futures::future::BoxFuture;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::store::{Appended, RoomStore, StoreError};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_messages.sql")];
/// Batches waiting for the writer before `append` callers wait (backpressure on room tasks).
const WRITE_QUEUE: usize = 1024;
/// Most batches folded into one transaction.
const MAX_BATCHES_PER_COMMIT: usize = 256;
/// Idle reader connections kept open.
const READER_POOL: usize = 4;

/// Why the database could not be opened. Shown to the operator at start-up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another Palaver process")]
    InUse { path: PathBuf },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path} has schema version {found}, newer than this Palaver knows ({known}); upgrade Palaver")]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
}

pub struct SqliteStore {
    path: PathBuf,
    /// An exclusive lock on `<data-dir>/palaver.lock`, held for the life of the store: one server
    /// per data directory. The OS releases it when the process dies, however it dies.
    _lock: std::fs::File,
    writes: mpsc::Sender<WriteJob>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

struct WriteJob {
    room: String,
    batch: Vec<ChatMessage>,
    reply: oneshot::Sender<Result<Vec<Appended>, StoreError>>,
}

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/palaver.db`, runs migrations and starts the writer
    /// thread. Blocking: call it before serving, or from `spawn_blocking`.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
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
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
            let tx = writer.transaction().map_err(open_err)?;
            tx.execute_batch(sql).map_err(open_err)?;
            tx.pragma_update(None, "user_version", i + 1)
                .map_err(open_err)?;
            tx.commit().map_err(open_err)?;
        }
        let (writes, rx) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(|e| OpenError::DataDir {
                path: data_dir.to_owned(),
                source: e,
            })?;
        Ok(Self {
            path,
            _lock: lock,
            writes,
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled reader connection in the blocking thread pool.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let pool = self.readers.clone();
        let path = self.path.clone();
        Box::pin(async move {
            let joined = tokio::task::spawn_blocking(move || {
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
                Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
                Err(e) => Err(StoreError::Unavailable(format!("reader task failed: {e}"))),
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
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk (WAL fsynced) before it returns, so an acknowledged message
    // survives a power cut, not only a crash of this process.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteJob>) {
    let mut jobs = Vec::with_capacity(MAX_BATCHES_PER_COMMIT);
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < MAX_BATCHES_PER_COMMIT {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit_jobs(&mut conn, &jobs);
        for (job, outcome) in jobs.drain(..).zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }
}

/// Commits every job's batch in one transaction; returns each job's outcome.
fn commit_jobs(conn: &mut Connection, jobs: &[WriteJob]) -> Vec<Result<Vec<Appended>, StoreError>> {
    let fail_all = |e: rusqlite::Error| {
        error!(error = %e, "database commit failed");
        jobs.iter()
            .map(|_| Err(StoreError::Unavailable(e.to_string())))
            .collect()
    };
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return fail_all(e),
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let outcome = (|| -> Result<Vec<Appended>, StoreError> {
            let sp = tx.savepoint().map_err(unavailable)?;
            let appended = insert_batch(&sp, &job.room, &job.batch)?;
            sp.commit().map_err(unavailable)?;
            Ok(appended)
        })();
        if let Err(e) = &outcome {
            error!(room = %job.room, error = %e, "batch refused");
        }
        outcomes.push(outcome);
    }
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => fail_all(e),
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Numbers and inserts one room's batch (see [`RoomStore::append`]).
fn insert_batch(
    conn: &Connection,
    room: &str,
    batch: &[ChatMessage],
) -> Result<Vec<Appended>, StoreError> {
    let (mut head, mut head_ts): (Seq, i64) = conn
        .query_row(
            "SELECT seq, sent_at_ms FROM messages WHERE room = ?1 ORDER BY seq DESC LIMIT 1",
            [room],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?
        .unwrap_or((0, 0));
    let mut stored = conn
        .prepare_cached("SELECT seq, sent_at_ms FROM messages WHERE room = ?1 AND client_id = ?2")
        .map_err(unavailable)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO messages (room, seq, id, sender, text, sent_at_ms, client_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
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
                m.client_id
            ])
            .map_err(unavailable)?;
        appended.push(Appended {
            seq: head,
            sent_at_ms: head_ts,
            new: true,
        });
    }
    Ok(appended)
}

fn row_to_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        seq: r.get(0)?,
        id: r.get(1)?,
        sender: r.get(2)?,
        text: r.get(3)?,
        sent_at_ms: r.get(4)?,
        client_id: r.get(5)?,
    })
}

impl RoomStore for SqliteStore {
    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<Vec<Appended>, StoreError>> {
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            let job = WriteJob {
                room: room.to_string(),
                batch: batch.to_vec(),
                reply,
            };
            self.writes
                .send(job)
                .await
                .map_err(|_| StoreError::Unavailable("writer stopped".into()))?;
            rx.await
                .map_err(|_| StoreError::Unavailable("writer stopped".into()))?
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        if self.writes.is_closed() {
            return Box::pin(async { Err(StoreError::Unavailable("writer stopped".into())) });
        }
        // A read that touches the file: the schema version.
        self.read(|c| {
            c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
                .map(|_| ())
        })
    }

    fn head<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<(Seq, i64), StoreError>> {
        let room = room.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT seq, sent_at_ms FROM messages WHERE room = ?1 ORDER BY seq DESC LIMIT 1",
                [room],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map(|head| head.unwrap_or((0, 0)))
        })
    }

    fn after<'a>(
        &'a self,
        room: &'a RoomName,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        let room = room.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, id, sender, text, sent_at_ms, client_id FROM messages
                 WHERE room = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![room, after, limit], row_to_message)?;
            rows.collect()
        })
    }

    fn before<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        let room = room.to_string();
        let before = before.unwrap_or(i64::MAX as Seq);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, id, sender, text, sent_at_ms, client_id FROM messages
                 WHERE room = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            )?;
            let mut page = stmt
                .query_map(params![room, before, limit], row_to_message)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            page.reverse();
            Ok(page)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::conformance::{msg, room};

    #[tokio::test]
    async fn meets_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        crate::store::conformance::all(&store).await;
    }

    #[tokio::test]
    async fn history_survives_reopening_and_reads_page_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            let batch: Vec<_> = (1..=5).map(|i| msg(i, &format!("c{i}"))).collect();
            store.append(&room("a"), &batch).await.unwrap();
            store.append(&room("b"), &[msg(1, "c1")]).await.unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(
            store.head(&room("a")).await.unwrap(),
            (5, 1_700_000_000_005)
        );
        assert_eq!(store.head(&room("b")).await.unwrap().0, 1);
        assert_eq!(store.head(&room("empty")).await.unwrap(), (0, 0));
        let page = store.after(&room("a"), 2, 2).await.unwrap();
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(page[0], msg(3, "c3"), "every field round-trips");
        let resent = store.append(&room("a"), &[msg(9, "c4")]).await.unwrap();
        assert_eq!(
            (resent[0].seq, resent[0].new),
            (4, false),
            "ids survive reopening"
        );
        let latest = store.before(&room("a"), None, 2).await.unwrap();
        assert_eq!(latest.iter().map(|m| m.seq).collect::<Vec<_>>(), [4, 5]);
        let older = store.before(&room("a"), Some(4), 10).await.unwrap();
        assert_eq!(older.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(store
            .before(&room("a"), Some(1), 10)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn writers_racing_on_one_room_get_distinct_contiguous_numbers() {
        // Batches of one room from several writers land in the same group commits.
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let mut tasks = Vec::new();
        for w in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..25 {
                    let batch = [msg(1, &format!("w{w}-{i}")), msg(1, &format!("w{w}-{i}b"))];
                    let appended = store.append(&room("race"), &batch).await.unwrap();
                    assert_eq!(
                        appended[1].seq,
                        appended[0].seq + 1,
                        "a batch stays together"
                    );
                    seqs.extend(appended.iter().map(|a| a.seq));
                }
                seqs
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort_unstable();
        assert!(all.iter().copied().eq(1..=400), "each number once, no hole");
    }

    #[tokio::test]
    async fn concurrent_batches_from_many_rooms_all_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let mut tasks = Vec::new();
        for r in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let name = room(&format!("r{r}"));
                for i in 1..=10 {
                    store
                        .append(&name, &[msg(i, &format!("c{i}"))])
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        for r in 0..20 {
            assert_eq!(store.head(&room(&format!("r{r}"))).await.unwrap().0, 10);
        }
    }

    #[test]
    fn wal_mode_and_schema_version_are_set() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("palaver.db")).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        Connection::open(dir.path().join("palaver.db"))
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = SqliteStore::open(dir.path()).err().expect("refused");
        assert!(
            err.to_string().contains("newer than this Palaver knows"),
            "{err}"
        );
    }

    #[test]
    fn a_data_dir_in_use_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = SqliteStore::open(dir.path()).unwrap();
        let err = SqliteStore::open(dir.path())
            .err()
            .expect("second open refused");
        assert!(
            err.to_string().contains("in use by another Palaver"),
            "{err}"
        );
        drop(first);
        // The writer thread holds no lock; the file lock goes with the store.
        assert!(SqliteStore::open(dir.path()).is_ok());
    }

    #[test]
    fn an_unusable_data_dir_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = SqliteStore::open(&file).err().expect("refused");
        assert!(err.to_string().contains("data directory"), "{err}");
    }
}
