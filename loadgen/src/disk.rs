//! How long the data directory's disk takes to make a small write durable: `fdatasync` after
//! overwriting 4 KiB in place, as a commit's WAL pages are. Every durable row waits for at least
//! one of these per commit and the ceiling for none, so it is reported beside them.

use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::time::Instant;

/// Syncs timed.
const SYNCS: usize = 500;
/// Bytes written before each sync (a WAL frame and a bit).
const WRITE: usize = 4096;
/// Distinct offsets cycled through, as a WAL's frames are rewritten after a checkpoint.
const SLOTS: u64 = 64;

/// Latency of one durable write, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct SyncLatency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

/// Times [`SYNCS`] in-place writes and `fdatasync`s of a scratch file in `dir` (removed after).
pub fn sync_latency(dir: &Path) -> std::io::Result<SyncLatency> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    // Allocated and on disk first, so the timed syncs write data, not the file's size.
    file.write_all(&vec![0u8; WRITE * SLOTS as usize])?;
    file.sync_all()?;
    let block = vec![0x5au8; WRITE];
    let mut took = Vec::with_capacity(SYNCS);
    for i in 0..SYNCS as u64 {
        file.write_all_at(&block, (i % SLOTS) * WRITE as u64)?;
        let start = Instant::now();
        file.sync_data()?;
        took.push(start.elapsed().as_secs_f64() * 1e3);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    Ok(SyncLatency {
        p50_ms: at(0.5),
        p90_ms: at(0.9),
        p99_ms: at(0.99),
        mean_ms: took.iter().sum::<f64>() / took.len() as f64,
    })
}

/// The line the report gives it.
pub fn describe(latency: &Result<SyncLatency, String>) -> String {
    match latency {
        Ok(l) => format!(
            "\nThe data directory's disk: `fdatasync` of a 4 KiB write in place takes p50 {:.2} / p90 {:.2} / p99 {:.2} ms (mean {:.2}, {SYNCS} syncs). Every durable row waits for one per commit; the ceiling syncs nothing.\n",
            l.p50_ms, l.p90_ms, l.p99_ms, l.mean_ms
        ),
        Err(e) => format!("\nThe data directory's disk: not measured ({e}).\n"),
    }
}
