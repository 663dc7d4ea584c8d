//! A server (Palaver, or the load generator's ceiling) as a child process. It listens on a port
//! it picks itself and says so on stdout (`listening on http://ADDR`); [`Process::start`] waits for
//! that line, so there is no race for a port and no polling.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a process may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Log lines kept per process (the latest).
const KEPT_LINES: usize = 10_000;

/// A running server process; killed when dropped.
pub struct Process {
    child: Child,
    pub addr: SocketAddr,
    /// Its latest log lines.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Process {
    /// The command that starts Palaver's `binary` on a free port of 127.0.0.1 with `data_dir`
    /// and extra settings. `RUST_LOG` is `info` (the "listening" line is an info log) unless the
    /// caller sets it again.
    pub fn palaver(binary: &Path, data_dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(binary);
        command
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        command
    }

    /// Starts `command` and waits until it says where it listens. Its log is drained from then on
    /// (shown on stderr when `PALAVER_TEST_LOGS` is set), so it never blocks on a full pipe.
    pub async fn start(mut command: Command) -> Result<Self, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{:?}: {e}", command.as_std().get_program()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
                if let Some(addr) = listening_on(&line) {
                    return Ok(addr);
                }
            }
            Err("the process exited before listening".to_owned())
        })
        .await
        .map_err(|_| format!("no 'listening on' line within {START_TIMEOUT:?}"))??;
        let show = std::env::var_os("PALAVER_TEST_LOGS").is_some();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if show {
                    eprintln!("[{addr}] {line}");
                }
                let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        Ok(Self { child, addr, log })
    }

    /// The latest lines it logged (up to 10,000).
    pub fn log_lines(&self) -> Vec<String> {
        let kept = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter().cloned().collect()
    }

    pub fn ws_url(&self, room: &str) -> String {
        format!("ws://{}/api/rooms/{room}/ws", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id, for signals and `/proc`.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Ends the process the hard way: no shutdown, no goodbye.
    pub async fn sigkill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The address in a `listening on http://ADDR` log line.
fn listening_on(line: &str) -> Option<SocketAddr> {
    line.split("listening on http://")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_address_in_a_log_line() {
        assert_eq!(
            super::listening_on(
                "2026-11-30T10:00:00Z  INFO server: listening on http://127.0.0.1:4000"
            ),
            Some("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(super::listening_on("starting"), None);
    }
}
