//! Start-up failures an operator meets first, each one line on stderr naming the problem and the
//! setting to change, with a non-zero exit code: a port in use, a data directory that cannot be
//! used, a database written by a newer Palaver, a data directory another process holds, a
//! `--site-dir` without a built site.

mod common;

use std::process::Output;

use common::process::run_command as run;

/// The failure's one line (asserting there is exactly one, and a failing exit code).
fn one_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "exit code");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn a_port_in_use_names_the_bind_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let line = one_line(&run(&["--bind", &addr, "--data-dir", data]));
    assert!(
        line.starts_with(&format!("palaver: cannot listen on {addr}")),
        "{line}"
    );
    assert!(
        line.contains("another program has it") && line.contains("--bind (PALAVER_BIND)"),
        "{line}"
    );
}

#[test]
fn a_data_directory_that_cannot_be_made_names_the_data_dir_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let inside = file.join("data");
    let line = one_line(&run(&[
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        inside.to_str().unwrap(),
    ]));
    assert!(
        line.starts_with("palaver: storage (--data-dir): cannot use data directory"),
        "{line}"
    );
    assert!(line.contains("--data-dir (PALAVER_DATA_DIR)"), "{line}");
}

#[test]
fn a_database_from_a_newer_palaver_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("palaver.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
    }
    let line = one_line(&run(&[
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]));
    assert!(
        line.contains("schema version 999, newer than this Palaver knows"),
        "{line}"
    );
    assert!(line.contains("upgrade Palaver"), "{line}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 999, "left as it was");
}

#[test]
fn a_data_directory_in_use_names_the_other_process() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--bind", "127.0.0.1:0", "--data-dir", data])
        // The "listening on" line is an info log.
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It holds the directory once it says where it listens.
    let mut out = std::io::BufReader::new(first.stdout.take().unwrap());
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0
        && !line.contains("listening")
    {
        line.clear();
    }
    let second = one_line(&run(&["--bind", "127.0.0.1:0", "--data-dir", data]));
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        second.contains("is in use by another Palaver process"),
        "{second}"
    );
    assert!(second.contains("--data-dir (PALAVER_DATA_DIR)"), "{second}");
}

#[test]
fn a_site_dir_without_a_built_site_names_the_site_dir_setting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let empty = dir.path().join("site");
    std::fs::create_dir_all(empty.join("pkg")).unwrap();
    let args = |site: &std::path::Path| {
        run(&[
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--site-dir",
            site.to_str().unwrap(),
        ])
    };
    let line = one_line(&args(&empty));
    assert!(line.contains("--site-dir (PALAVER_SITE_DIR)"), "{line}");
    assert!(line.contains("holds no built site"), "{line}");
    let line = one_line(&args(&dir.path().join("missing")));
    assert!(line.contains("is not a directory"), "{line}");
}
