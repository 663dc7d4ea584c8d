//! `server export` and `server import`: a room's history as JSON Lines, for archiving or moving.
//!
//! The file's first line says what it is (`{"palaver_export":1,"room":…,"first":…,"last":…}`);
//! each further line is one entry exactly as the wire protocol carries it (docs/PROTOCOL.md):
//! messages as they stand (latest text, `edited_at_ms`, `deleted` with the text gone) and the
//! numbered edits and deletes that made them so. Import appends the entries in order to an empty
//! room; the engine re-applies each edit and delete as it did the first time, so the room ends up
//! with the same numbers, texts, times and marks.
//!
//! Export reads the embedded database through an online backup taken first (so it runs while
//! the server serves, and sees one moment), or Redis directly. Import writes through the engine,
//! so with the embedded engine the server must be stopped (it holds the database).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use app::limits::RoomName;
use app::protocol::{ChatMessage, Seq};
use serde::{Deserialize, Serialize};

use crate::config::{Config, EngineKind};
use crate::engine::{self, Engine};

/// The format version this build writes and reads.
const VERSION: u32 = 1;
/// Entries read or written per engine call.
const PAGE: usize = 500;

/// The first line of an export.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    palaver_export: u32,
    /// The room it came from (an import may go to another name).
    room: String,
    /// The first and last entry's number (0, 0 for an empty room).
    first: Seq,
    last: Seq,
    exported_at_ms: i64,
}

/// Writes `room`'s history to `to` (stdout when `None`); what to print when done.
pub async fn export(config: &Config, room: &str, to: Option<&Path>) -> Result<String, String> {
    let room = RoomName::parse(room).map_err(|e| format!("--room: {e}"))?;
    if let Some(path) = to.filter(|p| p.exists()) {
        return Err(format!(
            "{} exists already: choose a new --to",
            path.display()
        ));
    }
    // The embedded database is read from a snapshot, so a running server is no obstacle.
    let snapshot = match config.engine {
        EngineKind::Embedded => Some(snapshot(&config.data_dir).await?),
        EngineKind::Redis(_) => None,
    };
    let mut source = config.clone();
    if let Some(dir) = &snapshot {
        source.data_dir = dir.path().to_path_buf();
        source.retain_days = 0;
        source.retain_messages = 0;
    }
    let engine = open(&source).await?;
    let entries = read_all(&engine, &room).await?;
    let header = Header {
        palaver_export: VERSION,
        room: room.to_string(),
        first: entries.first().map_or(0, |m| m.seq),
        last: entries.last().map_or(0, |m| m.seq),
        exported_at_ms: engine::retention::now_ms(),
    };
    let mut out: Box<dyn Write> = match to {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create_new(path).map_err(|e| format!("--to {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let written = write_lines(&mut out, &header, &entries).map_err(|e| format!("writing: {e}"))?;
    Ok(match to {
        Some(path) => format!(
            "exported room {room}: {written} entries ({}–{}) to {}",
            header.first,
            header.last,
            path.display()
        ),
        // The history went to stdout; the summary goes to stderr's caller as an empty line.
        None => String::new(),
    })
}

/// An online backup of the embedded database in a temporary directory.
async fn snapshot(data_dir: &Path) -> Result<tempfile::TempDir, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let (from, to) = (data_dir.to_path_buf(), dir.path().join("palaver.db"));
    tokio::task::spawn_blocking(move || engine::sqlite::backup::backup(&from, &to))
        .await
        .map_err(|e| format!("the snapshot stopped: {e}"))??;
    Ok(dir)
}

async fn open(config: &Config) -> Result<Engine, String> {
    engine::open(config).await.map_err(|e| e.to_string())
}

async fn read_all(engine: &Engine, room: &RoomName) -> Result<Vec<ChatMessage>, String> {
    let mut entries: Vec<ChatMessage> = Vec::new();
    loop {
        let after = entries.last().map_or(0, |m| m.seq);
        let page = engine
            .history
            .after(room, after, PAGE)
            .await
            .map_err(|e| e.to_string())?;
        if page.is_empty() {
            return Ok(entries);
        }
        entries.extend(page);
    }
}

fn write_lines(
    out: &mut dyn Write,
    header: &Header,
    entries: &[ChatMessage],
) -> std::io::Result<usize> {
    serde_json::to_writer(&mut *out, header)?;
    out.write_all(b"\n")?;
    for entry in entries {
        serde_json::to_writer(&mut *out, entry)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(entries.len())
}

/// Appends an export's entries to the empty room `room`; what to print when done. Numbers are
/// kept: the export must start at 1 and have no gaps, unless `renumber` (an export of a room
/// whose oldest messages retention removed), which numbers from 1 and points edits and deletes
/// at their messages' new numbers.
pub async fn import(
    config: &Config,
    room: &str,
    from: &Path,
    renumber: bool,
) -> Result<String, String> {
    let room = RoomName::parse(room).map_err(|e| format!("--room: {e}"))?;
    let entries = read_file(from.to_path_buf()).await?;
    check_shapes(&entries, from)?;
    let entries = if renumber {
        renumbered(entries)
    } else {
        check_numbers(&entries, from)?;
        entries
    };
    let engine = open(config).await?;
    let (head, _) = engine
        .history
        .head(&room)
        .await
        .map_err(|e| e.to_string())?;
    if head != 0 {
        return Err(format!(
            "room {room} has {head} entries already: import into an empty room (--room)"
        ));
    }
    for chunk in entries.chunks(PAGE) {
        let appended = engine
            .history
            .append(&room, chunk)
            .await
            .map_err(|e| e.to_string())?;
        for (entry, got) in chunk.iter().zip(&appended) {
            if !got.new || got.seq != entry.seq {
                return Err(format!(
                    "entry {} was stored as {} (a repeated client id, or someone wrote to room \
                     {room} during the import)",
                    entry.seq, got.seq
                ));
            }
        }
    }
    let last = entries.last().map_or(0, |m| m.seq);
    Ok(format!(
        "imported {} entries into room {room} (1–{last})",
        entries.len()
    ))
}

async fn read_file(from: PathBuf) -> Result<Vec<ChatMessage>, String> {
    tokio::task::spawn_blocking(move || parse(&from))
        .await
        .map_err(|e| format!("reading stopped: {e}"))?
}

/// The entries of an export file, after checking its first line.
fn parse(from: &Path) -> Result<Vec<ChatMessage>, String> {
    let at =
        |line: usize, e: &dyn std::fmt::Display| format!("--from {}:{line}: {e}", from.display());
    let file = std::fs::File::open(from).map_err(|e| format!("--from {}: {e}", from.display()))?;
    let mut lines = BufReader::new(file).lines();
    let first = lines
        .next()
        .ok_or_else(|| at(1, &"empty file, not a Palaver export"))?
        .map_err(|e| at(1, &e))?;
    let header: Header =
        serde_json::from_str(&first).map_err(|e| at(1, &format!("not a Palaver export ({e})")))?;
    if header.palaver_export != VERSION {
        return Err(at(
            1,
            &format!(
                "export format {} (this Palaver reads {VERSION})",
                header.palaver_export
            ),
        ));
    }
    let mut entries = Vec::new();
    for (index, line) in lines.enumerate() {
        let line = line.map_err(|e| at(index + 2, &e))?;
        if line.trim().is_empty() {
            continue;
        }
        entries.push(serde_json::from_str::<ChatMessage>(&line).map_err(|e| at(index + 2, &e))?);
    }
    Ok(entries)
}

/// Each entry must be what Palaver writes: a message points at nothing; an edit or a delete points
/// at an earlier message; every one has a sender and its own client id.
fn check_shapes(entries: &[ChatMessage], from: &Path) -> Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    for entry in entries {
        let problem = match (entry.kind.is_message(), entry.target) {
            (true, Some(_)) => Some("a message that points at another entry"),
            (false, None) => Some("an edit or delete without its message"),
            (false, Some(target)) if target >= entry.seq => {
                Some("an edit or delete of a later entry")
            }
            _ if entry.sender.is_empty() => Some("no sender"),
            _ if entry.client_id.is_empty() || !ids.insert(entry.client_id.as_str()) => {
                Some("a missing or repeated client id")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(format!(
                "--from {}: entry {}: {problem}; nothing was imported",
                from.display(),
                entry.seq
            ));
        }
    }
    Ok(())
}

/// Numbers must run 1, 2, 3, … for an import to keep them.
fn check_numbers(entries: &[ChatMessage], from: &Path) -> Result<(), String> {
    for (index, entry) in entries.iter().enumerate() {
        let expected = index as Seq + 1;
        if entry.seq != expected {
            return Err(format!(
                "--from {}: entry {expected} is numbered {} (older messages were removed before \
                 the export): pass --renumber to number them from 1",
                from.display(),
                entry.seq
            ));
        }
    }
    Ok(())
}

/// Numbers from 1; edits and deletes follow their message, and those whose message is not in
/// the export are left out.
fn renumbered(entries: Vec<ChatMessage>) -> Vec<ChatMessage> {
    let mut new_seq = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for mut entry in entries {
        if let Some(target) = entry.target {
            match new_seq.get(&target) {
                Some(&seq) => entry.target = Some(seq),
                None => continue,
            }
        }
        let seq = out.len() as Seq + 1;
        new_seq.insert(entry.seq, seq);
        entry.seq = seq;
        out.push(entry);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::EntryKind;

    fn entry(seq: Seq, kind: EntryKind, target: Option<Seq>) -> ChatMessage {
        ChatMessage {
            seq,
            id: format!("id{seq}"),
            sender: "ann".into(),
            text: "hi".into(),
            sent_at_ms: 1,
            client_id: format!("c{seq}"),
            user_id: None,
            kind,
            target,
            edited_at_ms: None,
            deleted: false,
        }
    }

    #[test]
    fn renumbering_follows_targets_and_drops_orphans() {
        let entries = vec![
            entry(5, EntryKind::Edit, Some(2)),
            entry(7, EntryKind::Message, None),
            entry(8, EntryKind::Edit, Some(7)),
            entry(9, EntryKind::Delete, Some(7)),
        ];
        let out = renumbered(entries);
        let got: Vec<_> = out.iter().map(|m| (m.seq, m.target)).collect();
        assert_eq!(got, vec![(1, None), (2, Some(1)), (3, Some(1))]);
    }

    #[test]
    fn entries_of_the_wrong_shape_are_refused() {
        let path = Path::new("x.jsonl");
        let good = vec![
            entry(1, EntryKind::Message, None),
            entry(2, EntryKind::Edit, Some(1)),
        ];
        assert!(check_shapes(&good, path).is_ok());
        let cases = [
            (entry(1, EntryKind::Message, Some(1)), "points at another"),
            (entry(1, EntryKind::Delete, None), "without its message"),
            (entry(1, EntryKind::Edit, Some(3)), "a later entry"),
        ];
        for (bad, expected) in cases {
            let err = check_shapes(&[bad], path).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        let mut twice = vec![
            entry(1, EntryKind::Message, None),
            entry(2, EntryKind::Message, None),
        ];
        twice[1].client_id = twice[0].client_id.clone();
        assert!(check_shapes(&twice, path)
            .unwrap_err()
            .contains("repeated client id"));
    }

    #[test]
    fn numbers_must_run_from_one() {
        let path = Path::new("x.jsonl");
        let good = vec![
            entry(1, EntryKind::Message, None),
            entry(2, EntryKind::Message, None),
        ];
        assert!(check_numbers(&good, path).is_ok());
        let late = vec![entry(3, EntryKind::Message, None)];
        let err = check_numbers(&late, path).unwrap_err();
        assert!(err.contains("--renumber"), "{err}");
    }
}
