//! `server backup` while a writer keeps posting, and `server restore` into an empty data
//! directory for a second server: every message acknowledged before the backup started is
//! there with its number, and the restored server numbers new messages after them.

mod common;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use common::process::{
    full_history, run_command as command, start, wait_for_acks, write_until_closed, WriterLog,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_writes_restores_every_acknowledged_message_with_its_number() {
    let dirs = tempfile::tempdir().unwrap();
    let (live, restored_dir) = (dirs.path().join("live"), dirs.path().join("restored"));
    std::fs::create_dir_all(&live).unwrap();
    let node = start(&live, common::RELAXED_RATE_LIMIT).await;
    let (log, total) = (
        Arc::new(Mutex::new(WriterLog::default())),
        Arc::new(AtomicUsize::new(0)),
    );
    let writer = tokio::spawn(write_until_closed(
        node.ws_url("kept"),
        "Writer".into(),
        "w".into(),
        log.clone(),
        total.clone(),
    ));
    wait_for_acks(&total, 50).await;

    // What was acknowledged before the backup started must be in it.
    let acked_before: Vec<(String, u64)> = log
        .lock()
        .unwrap()
        .acked
        .iter()
        .map(|(id, seq)| (id.clone(), *seq))
        .collect();
    let file = dirs.path().join("palaver-backup.db");
    let (live_arg, file_arg) = (live.to_str().unwrap(), file.to_str().unwrap());
    let out = tokio::task::spawn_blocking({
        let (live_arg, file_arg) = (live_arg.to_owned(), file_arg.to_owned());
        move || command(&["--data-dir", &live_arg, "backup", "--to", &file_arg])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("backed up"));
    let acked_during = total.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        acked_during >= acked_before.len(),
        "the writer kept writing"
    );
    writer.abort();

    // The same file is not overwritten.
    let again = command(&["--data-dir", live_arg, "backup", "--to", file_arg]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let out = command(&[
        "--data-dir",
        restored_dir.to_str().unwrap(),
        "restore",
        "--from",
        file_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not over a database that is there.
    let twice = command(&[
        "--data-dir",
        restored_dir.to_str().unwrap(),
        "restore",
        "--from",
        file_arg,
    ]);
    assert_eq!(twice.status.code(), Some(1));

    let second = start(&restored_dir, common::RELAXED_RATE_LIMIT).await;
    let history = full_history(&second.ws_url("kept")).await;
    let by_id: std::collections::HashMap<&str, u64> = history
        .iter()
        .map(|m| (m.client_id.as_str(), m.seq))
        .collect();
    for (id, seq) in &acked_before {
        assert_eq!(by_id.get(id.as_str()), Some(seq), "{id} kept its number");
    }
    let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "no holes"
    );
    let mut client = common::Client::join(&second.ws_url("kept"), "After", None).await;
    let (next, _) = client.send_and_ack("after-restore", "new here").await;
    assert_eq!(
        next,
        seqs.len() as u64 + 1,
        "numbered after the restored ones"
    );
}
