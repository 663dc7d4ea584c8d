//! Redis for tests: the shared one ([`shared_url`]), a private `redis-server` on its own port that a
//! test may stop, kill and restart ([`PrivateRedis`]), and a three-primary Redis Cluster
//! ([`TestCluster`]). Never skipped: without `redis-server` (`.ci/run` installs it) or a shared
//! Redis these panic and say so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Redis the tests share: `PALAVER_TEST_REDIS_URL`, else the one on 127.0.0.1:6379.
pub fn shared_url() -> String {
    std::env::var("PALAVER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `prefix` and 12 random hex digits: a key prefix or room name no earlier run used, so runs
/// sharing one Redis never meet (short enough for a room name with a prefix of up to 19).
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("randomness");
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{suffix}")
}

/// A `redis-server` child process; killed when dropped.
pub struct PrivateRedis {
    child: Child,
    pub port: u16,
    /// With AOF (`appendfsync always`) in this directory, or keeping nothing.
    aof_dir: Option<PathBuf>,
}

impl PrivateRedis {
    /// Starts one on `port` and waits until it answers `PING` (after loading its AOF, if any).
    pub async fn start(port: u16, aof_dir: Option<&Path>) -> Self {
        Self::start_with(port, aof_dir, &[]).await
    }

    /// [`PrivateRedis::start`] with more `redis-server` arguments (e.g. a `--maxmemory`).
    pub async fn start_with(port: u16, aof_dir: Option<&Path>, args: &[&str]) -> Self {
        let mut command = redis_server(port);
        command.args(args);
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
        let child = spawn(command);
        wait_until(port, "PING", |_| true).await;
        Self {
            child,
            port,
            aof_dir: aof_dir.map(Path::to_owned),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL (no shutdown save), then start again on the same port (and AOF directory).
    pub async fn kill_and_restart(mut self) -> Self {
        kill(&mut self.child);
        let (port, dir) = (self.port, self.aof_dir.take());
        Self::start(port, dir.as_deref()).await
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Three cluster-enabled `redis-server`s joined into one cluster, no replicas; killed when
/// dropped.
pub struct TestCluster {
    servers: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<u16> = (0..3).map(|_| free_cluster_port()).collect();
        let servers = ports
            .iter()
            .map(|port| {
                let mut command = redis_server(*port);
                command
                    .args(["--cluster-enabled", "yes", "--appendonly", "no"])
                    .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                    .arg("--dir")
                    .arg(dir.path());
                spawn(command)
            })
            .collect();
        let cluster = Self {
            servers,
            ports,
            _dir: dir,
        };
        for port in &cluster.ports {
            wait_until(*port, "PING", |_| true).await;
        }
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli is installed with redis-server");
        assert!(status.success(), "redis-cli --cluster create failed");
        for port in &cluster.ports {
            wait_until(*port, "CLUSTER INFO", |info| {
                info.contains("cluster_state:ok")
            })
            .await;
        }
        cluster
    }

    /// `redis+cluster://` with every primary as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            kill(server);
        }
    }
}

/// `redis-server` on `port` of 127.0.0.1, saving nothing unless told to.
fn redis_server(port: u16) -> Command {
    let mut command = Command::new("redis-server");
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ]);
    command
}

fn spawn(mut command: Command) -> Child {
    command
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed (.ci/run installs it)")
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A free port whose cluster bus port (+10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = crate::free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Waits (up to 20 s) until the Redis on `port` answers `command` (words split on spaces) with
/// something `ready` accepts.
async fn wait_until(port: u16, command: &str, ready: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut words = command.split(' ');
    let mut cmd = redis::cmd(words.next().unwrap_or("PING"));
    for word in words {
        cmd.arg(word);
    }
    loop {
        if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let answer: redis::RedisResult<String> = cmd.query_async(&mut conn).await;
                if answer.is_ok_and(|a| ready(&a)) {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on {port} never answered {command}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
