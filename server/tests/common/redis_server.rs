//! A private `redis-server` on its own port, for tests that stop or kill Redis (the shared one on
//! 6379 must not be disturbed under other tests).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A `redis-server` child process; killed when dropped.
pub struct PrivateRedis {
    child: std::process::Child,
    pub port: u16,
    /// With AOF (`appendfsync always`) in this directory, or keeping nothing.
    aof_dir: Option<PathBuf>,
}

impl PrivateRedis {
    /// Starts one on `port` and waits until it answers `PING` (after loading its AOF, if any).
    pub async fn start(port: u16, aof_dir: Option<&Path>) -> Self {
        let mut command = std::process::Command::new("redis-server");
        command.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match aof_dir {
            Some(dir) => {
                command
                    .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                    .arg(dir);
            }
            None => {
                command.args(["--appendonly", "no"]);
            }
        }
        let child = command
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) {
                if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                    if redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .is_ok()
                    {
                        break;
                    }
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            port,
            aof_dir: aof_dir.map(Path::to_owned),
        }
    }

    /// A free port to start one on.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL (no shutdown save), then start again on the same port (and AOF directory).
    pub async fn kill_and_restart(mut self) -> Self {
        self.kill();
        let (port, dir) = (self.port, self.aof_dir.take());
        Self::start(port, dir.as_deref()).await
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
