//! The embedded engine: the history contract, reopening, racing writers, and start-up errors.

use super::*;
use app::protocol::ChatMessage;

use crate::engine::History;

use crate::engine::conformance::{msg, room};

#[tokio::test]
async fn meets_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    crate::engine::conformance::all(&store).await;
    crate::engine::conformance::directory(&store).await;
    crate::engine::moderation_conformance::all(&store).await;
}

#[tokio::test]
async fn keeps_what_retention_says_and_gives_the_space_back() {
    use crate::engine::conformance::{forgets_the_old, keeps_the_newest, KEEP_A_DAY, KEEP_NEWEST};
    let dir = tempfile::tempdir().unwrap();
    let open = |retention| {
        let options = StoreOptions {
            retention,
            ..StoreOptions::default()
        };
        SqliteStore::open_with(dir.path(), options).unwrap()
    };
    keeps_the_newest(&open(KEEP_NEWEST)).await;
    // Reopened with an age limit: the test messages above are years old and go too.
    forgets_the_old(&open(KEEP_A_DAY)).await;
    let db = Connection::open(dir.path().join("palaver.db")).unwrap();
    let rows = |room: &str| -> i64 {
        db.query_row(
            "SELECT count(*) FROM messages WHERE room = ?1",
            [room],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(
        rows("conf-age"),
        1,
        "removed from the file, not only hidden"
    );
    assert_eq!(rows("conf-keep"), 0);
    let head: i64 = db
        .query_row("SELECT seq FROM heads WHERE room = 'conf-keep'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(head, 7, "numbering survives every message going");
    let vacuum: i64 = db
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        vacuum, 2,
        "incremental: freed pages go back to the file system"
    );
}

#[tokio::test]
async fn an_existing_database_is_prepared_for_retention_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A database from before incremental vacuum.
        let db = Connection::open(dir.path().join("palaver.db")).unwrap();
        db.execute_batch(MIGRATIONS[0]).unwrap();
        db.pragma_update(None, "user_version", 1).unwrap();
        db.execute(
            "INSERT INTO messages VALUES ('old', 1, 'i', 'Ada', 'hi', 1, 'c')",
            [],
        )
        .unwrap();
    }
    let options = StoreOptions {
        retention: crate::engine::conformance::KEEP_NEWEST,
        ..StoreOptions::default()
    };
    let store = SqliteStore::open_with(dir.path(), options).unwrap();
    assert_eq!(
        store.head(&room("old")).await.unwrap(),
        (1, 1),
        "heads filled in"
    );
    let db = Connection::open(dir.path().join("palaver.db")).unwrap();
    let vacuum: i64 = db
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(vacuum, 2);
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

/// Pipelined commits: a batch the writer has committed but the disk has not synced is neither
/// answered nor seen by any reader (a power cut would take it back).
#[tokio::test]
// The guard is meant to be held across awaits: it holds up the sync thread, not this task.
#[allow(clippy::await_holding_lock)]
async fn nothing_is_answered_or_read_before_it_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let r = room("synced");
    store.append(&r, &[msg(0, "a")]).await.unwrap();
    let raw = Connection::open(dir.path().join("palaver.db")).unwrap();
    let committed = || -> i64 {
        raw.query_row("SELECT seq FROM heads WHERE room = 'synced'", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let held = store.hold_syncs();
    let batch = [msg(0, "b"), msg(0, "c")];
    let mut append = std::pin::pin!(store.append(&r, &batch));
    for waited in 0.. {
        assert!(
            futures::poll!(append.as_mut()).is_pending(),
            "answered before its sync"
        );
        if committed() == 3 {
            break;
        }
        assert!(waited < 5_000, "the writer never committed");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(store.head(&r).await.unwrap().0, 1, "the head on disk");
    let seqs = |page: Vec<ChatMessage>| page.iter().map(|m| m.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.after(&r, 0, 10).await.unwrap()), [1]);
    assert_eq!(seqs(store.before(&r, None, 10).await.unwrap()), [1]);
    assert!(futures::poll!(append.as_mut()).is_pending());
    drop(held);
    let appended = append.await.unwrap();
    assert_eq!(appended.iter().map(|a| a.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(store.head(&r).await.unwrap().0, 3);
    assert_eq!(seqs(store.after(&r, 0, 10).await.unwrap()), [1, 2, 3]);
    assert_eq!(seqs(store.before(&r, None, 2).await.unwrap()), [2, 3]);
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

/// After a failed fsync nothing more is taken (the kernel may have dropped the pages it could
/// not write, and a later sync could "succeed" without them), and what was committed but never
/// synced is not shown.
#[tokio::test]
async fn after_a_failed_sync_nothing_more_is_taken_or_shown() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let r = room("failing");
    store.append(&r, &[msg(0, "a")]).await.unwrap();
    store.fail_syncs(true);
    assert!(matches!(
        store.append(&r, &[msg(0, "b")]).await,
        Err(EngineError::Unavailable(_))
    ));
    assert_eq!(store.head(&r).await.unwrap().0, 1, "b was never on disk");
    let page = store.after(&r, 0, 10).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [1]);
    store.fail_syncs(false);
    assert!(
        store.append(&r, &[msg(0, "c")]).await.is_err(),
        "not even once the disk answers again: only a restart recovers"
    );
    assert!(
        store.check().await.is_err(),
        "the probe fails: rooms stay degraded"
    );
    drop(store);
    let reopened = SqliteStore::open(dir.path()).unwrap();
    reopened.append(&r, &[msg(0, "d")]).await.unwrap();
}

#[tokio::test]
async fn a_new_database_has_small_pages_and_an_existing_one_keeps_its_own() {
    let page_size = |dir: &std::path::Path| -> i64 {
        let conn = Connection::open(dir.join("palaver.db")).unwrap();
        conn.query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    let new = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(new.path()).unwrap());
    assert_eq!(page_size(new.path()), PAGE_SIZE);

    let existing = tempfile::tempdir().unwrap();
    {
        let db = Connection::open(existing.path().join("palaver.db")).unwrap();
        db.pragma_update(None, "page_size", 4096).unwrap();
        db.execute_batch("CREATE TABLE before_palaver (x)").unwrap();
    }
    let store = SqliteStore::open(existing.path()).unwrap();
    let r = room("kept");
    store.append(&r, &[msg(0, "a")]).await.unwrap();
    assert_eq!(store.after(&r, 0, 10).await.unwrap().len(), 1);
    drop(store);
    assert_eq!(page_size(existing.path()), 4096);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_reads_runs_a_few_at_a_time_on_the_pooled_connections() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let reads = (0..40).map(|_| {
        let (running, peak) = (running.clone(), peak.clone());
        store.read(move |_| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(10));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
    });
    for result in futures::future::join_all(reads).await {
        result.unwrap();
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= READER_POOL, "{peak} reads at once");
    let pooled = store.readers.lock().unwrap().len();
    assert!(pooled <= READER_POOL, "{pooled} connections");
}

#[tokio::test]
async fn a_deleted_messages_text_leaves_the_database_and_wal_files() {
    use crate::engine::conformance::change;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let r = room("secrets");
    let marker = "SECRET-7f3a9c-TEXT";
    let mut said = msg(1, "s1");
    said.text = format!("{marker} as sent");
    store.append(&r, &[said, msg(2, "s2")]).await.unwrap();
    let edit = change("s3", 1, Some(&format!("{marker} as edited")));
    store.append(&r, &[edit]).await.unwrap();
    store.checkpoint_now().await;
    let contains = |file: &str| {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
    };
    assert!(
        contains("palaver.db") || contains("palaver.db-wal"),
        "the text is stored before the delete (the check can fail)"
    );
    store.append(&r, &[change("s4", 1, None)]).await.unwrap();
    store.checkpoint_now().await;
    assert!(!contains("palaver.db"), "no trace in the database file");
    assert!(!contains("palaver.db-wal"), "no trace in the WAL");
    let all = store.after(&r, 0, 10).await.unwrap();
    assert!(all[0].deleted && all[0].text.is_empty());
    assert_eq!(all[1].text, msg(2, "s2").text, "the others stay");
}
