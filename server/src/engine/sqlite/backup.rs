//! `server backup` and `server restore`: the embedded database copied with SQLite's online
//! backup API — one step, so the copy is the database as of one moment, taken while the server
//! keeps writing (WAL readers never block the writer) — and put back into an empty data
//! directory. Messages acknowledged before the backup started are in it, with their numbers.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::MIGRATIONS;

/// The database file in a data directory.
fn database(dir: &Path) -> std::path::PathBuf {
    dir.join("palaver.db")
}

/// Copies the database in `dir` to `to` (which must not exist); what to print.
pub fn backup(dir: &Path, to: &Path) -> Result<String, String> {
    let source_path = database(dir);
    if !source_path.exists() {
        return Err(format!(
            "no database at {}: point --data-dir (PALAVER_DATA_DIR) at the server's data directory",
            source_path.display()
        ));
    }
    if to.exists() {
        return Err(format!(
            "{} exists already: choose a new --to",
            to.display()
        ));
    }
    // Read-write (never created) so that SQLite can join the running server's WAL; the backup
    // only reads.
    let source = Connection::open_with_flags(&source_path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| format!("cannot open {}: {e}", source_path.display()))?;
    source
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| format!("cannot open {}: {e}", source_path.display()))?;
    let pages = copy(&source, to)?;
    Ok(format!(
        "backed up {} to {} ({pages} pages)",
        source_path.display(),
        to.display()
    ))
}

/// Puts the backup `from` in place as the database of `dir`, which must hold none yet.
pub fn restore(from: &Path, dir: &Path) -> Result<String, String> {
    let target = database(dir);
    if target.exists() {
        return Err(format!(
            "{} exists already: restore into an empty --data-dir (PALAVER_DATA_DIR)",
            target.display()
        ));
    }
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open --from {}: {e}", from.display()))?;
    let version: usize = source
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| format!("--from {} is not a Palaver backup: {e}", from.display()))?;
    if version == 0 || version > MIGRATIONS.len() {
        return Err(format!(
            "--from {} has schema version {version}; this Palaver reads 1 to {}",
            from.display(),
            MIGRATIONS.len()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot use data directory {}: {e}; point --data-dir (PALAVER_DATA_DIR) at a directory this user can write",
            dir.display()
        )
    })?;
    let pages = copy(&source, &target)?;
    Ok(format!(
        "restored {} into {} ({pages} pages); start the server with this --data-dir",
        from.display(),
        target.display()
    ))
}

/// Copies `source` whole into a new database at `to`, in one step; the number of pages.
fn copy(source: &Connection, to: &Path) -> Result<i32, String> {
    let mut target =
        Connection::open(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let copied = {
        let backup = rusqlite::backup::Backup::new(source, &mut target)
            .map_err(|e| format!("cannot start the backup: {e}"))?;
        // -1: every page in one step, so the copy is one moment of the source (tried again for
        // up to 10 s while the source is busy).
        let mut tries = 0;
        loop {
            let step = backup
                .step(-1)
                .map_err(|e| format!("the backup failed: {e}"))?;
            match step {
                rusqlite::backup::StepResult::Done => break,
                _ if tries < 200 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                _ => return Err("the database stayed busy for 10 s; try again".to_owned()),
            }
        }
        backup.progress().pagecount
    };
    target
        .execute_batch("PRAGMA journal_mode = WAL;")
        .map_err(|e| format!("cannot finish {}: {e}", to.display()))?;
    Ok(copied)
}
