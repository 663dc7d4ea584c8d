//! `loadgen bench`: starts the ceiling and a Palaver server (release build, fresh data directory,
//! durability on), runs every scenario against both, and rewrites the results section of
//! `docs/BENCHMARKS.md` (between the `loadgen:begin`/`loadgen:end` markers) and the chart.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use testkit::process::Process;

use crate::crowd;
use crate::disk;
use crate::fanout::{self, Scenario, Target};
use crate::idle::{self, IdleOutcome};
use crate::report::{self, Row};
use crate::web;

/// Starts a Palaver server on a free port with the limits lifted (the load comes from one
/// address) and rooms kept in memory, plus `extra` settings; returns once it listens.
pub(crate) async fn start_palaver(
    server: &Path,
    data_dir: &Path,
    extra: &[&str],
) -> Result<Process, String> {
    let mut args = testkit::RELAXED_RATE_LIMIT.to_vec();
    args.extend([
        "--history-rate-limit",
        "100000000",
        "--max-connections",
        "1000000",
        "--max-connections-per-ip",
        "1000000",
        // All the load comes from one address: hundreds of its connections are in their
        // handshake at once.
        "--max-http-connections-per-ip",
        "1000000",
        "--room-idle-secs",
        "3600",
    ]);
    args.extend(extra);
    let mut command = Process::palaver(server, data_dir, &args);
    // Only the binary's own lines ("listening on"): per-session spans stay disabled, as in
    // production with the default filter they would cost memory per connection being measured.
    command.env("RUST_LOG", "warn,server=info");
    Process::start(command)
        .await
        .map_err(|e| format!("{}: {e}", server.display()))
}

pub async fn run(
    server: &Path,
    page: &Path,
    chart: &Path,
    idle_counts: &[usize],
    idle_hold: Duration,
) -> Result<(), String> {
    let data_dir = std::env::temp_dir().join(format!("palaver-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let probe_dir = data_dir.join("disk");
    let disk = tokio::task::spawn_blocking(move || disk::sync_latency(&probe_dir))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let ceiling = start_ceiling().await?;
    let palaver = start_palaver(server, &data_dir, &[]).await?;

    let rows = run_grid(&palaver, &ceiling).await?;
    let web = web::first_visit(palaver.addr, "/r/bench0-0").await;
    drop(palaver);
    drop(ceiling);
    // Each count on fresh processes: memory the grid's bursts freed would otherwise be reused and
    // hide what a connection costs.
    let mut idle_rows = Vec::new();
    for &n in idle_counts {
        eprintln!("idle: {n} connections (fresh processes, held {idle_hold:?})");
        let fresh = start_palaver(server, &data_dir.join(format!("idle{n}")), &[]).await?;
        let palaver_idle = idle_row(&fresh, Target::Palaver, n, idle_hold).await;
        drop(fresh);
        let ceiling = start_ceiling().await?;
        let ceiling_idle = idle_row(&ceiling, Target::Ceiling, n, idle_hold).await;
        drop(ceiling);
        idle_rows.push((n, palaver_idle, ceiling_idle));
    }
    // Each on a fresh server, so its memory figures are its own.
    eprintln!("join storm");
    let fresh = start_palaver(server, &data_dir.join("storm"), &[]).await?;
    let storm = crowd::join_storm(fresh.addr, fresh.pid().unwrap_or(0), 2_000, "storm").await;
    drop(fresh);
    eprintln!("room flood");
    let fresh = start_palaver(server, &data_dir.join("flood"), &[]).await?;
    let pid = fresh.pid().unwrap_or(0);
    let flood = crowd::room_flood(fresh.addr, pid, 64, Duration::from_secs(10)).await;
    drop(fresh);
    let _ = std::fs::remove_dir_all(&data_dir);

    let mut section = report::report(&rows, &idle_rows, &disk::describe(&disk));
    section.push_str(&report::crowds(&storm, &flood));
    web_section(&mut section, web);
    println!("{section}");
    report::rewrite_page(page, &section)?;
    std::fs::write(chart, report::svg(&rows)).map_err(|e| format!("{}: {e}", chart.display()))?;
    Ok(())
}

/// The ceiling (`loadgen ceiling`) on a free port.
async fn start_ceiling() -> Result<Process, String> {
    let mut ceiling =
        tokio::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    ceiling.args(["ceiling", "--bind", "127.0.0.1:0"]);
    Process::start(ceiling)
        .await
        .map_err(|e| format!("ceiling: {e}"))
}

/// Every fan-out scenario against Palaver, and against the ceiling where the row compares.
async fn run_grid(palaver: &Process, ceiling: &Process) -> Result<Vec<Row>, String> {
    let p = Target::Palaver(palaver.addr.to_string());
    let c = Target::Ceiling(ceiling.addr.to_string());
    let e = Target::EdgeChat(palaver.addr.to_string());
    let mut rows = Vec::new();
    for (i, (label, goal, mut s, with_ceiling)) in grid().into_iter().enumerate() {
        s.room_prefix = format!("bench{i}");
        eprintln!("running: {label}");
        let palaver_outcome = fanout::run(&p, &s).await?;
        let ceiling_outcome = if with_ceiling {
            Some(fanout::run(&c, &s).await?)
        } else {
            None
        };
        // The fan-out rows again through the edge-chat endpoint (fresh rooms).
        let edge_outcome = if with_ceiling && s.rate.is_none() {
            let mut edge = s.clone();
            edge.room_prefix = format!("bench{i}-edge");
            Some(fanout::run(&e, &edge).await?)
        } else {
            None
        };
        rows.push(Row {
            label,
            palaver: palaver_outcome,
            ceiling: ceiling_outcome,
            edge_chat: edge_outcome,
            goal,
        });
    }
    Ok(rows)
}

/// The scenarios: (label, target, scenario, compared with the ceiling).
fn grid() -> Vec<(&'static str, &'static str, Scenario, bool)> {
    // The rows and windows of the independent harness issue 19 was measured with.
    vec![
        (
            "1 room × 1,000 clients, 10 senders",
            "≥ 90% of ceiling deliveries/s, p99 ≤ 1.2×",
            scenario(1, 1000, 10, 100, 32, None),
            true,
        ),
        (
            "10 rooms × 50 clients, 5 senders each",
            "≥ 90%, p99 ≤ 1.2×",
            scenario(10, 50, 5, 400, 32, None),
            true,
        ),
        (
            "1 room × 100 clients, 10 senders, window 16",
            "≥ 90%, p99 ≤ 1.2×",
            scenario(1, 100, 10, 500, 16, None),
            true,
        ),
        (
            "closed loop: 1 room × 100, 10 senders, window 1",
            "≥ 70%",
            scenario(1, 100, 10, 300, 1, None),
            true,
        ),
        (
            "moderate: 1 room × 100, 10 senders at 10 msg/s",
            "p99 ≤ ceiling + 2 ms",
            scenario(1, 100, 10, 100, 1, Some(10.0)),
            true,
        ),
        (
            "durable write path: 1 room, 10 senders, window 32",
            "≥ 20,000 accepted msg/s",
            scenario(1, 10, 10, 4000, 32, None),
            false,
        ),
        (
            "durable, 50 senders (each also a reader), window 32",
            "—",
            scenario(1, 50, 50, 400, 32, None),
            false,
        ),
    ]
}

/// `n` idle connections held against one server for `hold`, then let go (and a pause for it to
/// settle).
async fn idle_row(
    server: &Process,
    target: fn(String) -> Target,
    n: usize,
    hold: Duration,
) -> IdleOutcome {
    let target = target(server.addr.to_string());
    let pid = server.pid().unwrap_or(0);
    let (outcome, held) = idle::run(&target, server.addr, pid, n, &format!("idle{n}"), hold).await;
    drop(held);
    tokio::time::sleep(Duration::from_secs(3)).await;
    outcome
}

/// The first-visit table, or why it is missing.
fn web_section(section: &mut String, web: Result<Vec<(String, usize, String)>, String>) {
    let lines = match web {
        Ok(lines) => lines,
        Err(e) => {
            let _ = writeln!(section, "\nWeb client transfer not measured: {e}");
            return;
        }
    };
    let _ = writeln!(section, "\n### Web client: first visit to a room page\n");
    let _ = writeln!(section, "| what | bytes transferred | encoding |");
    let _ = writeln!(section, "| --- | ---: | --- |");
    let mut total = 0;
    for (what, bytes, encoding) in &lines {
        total += bytes;
        let _ = writeln!(section, "| `{what}` | {bytes} | {encoding} |");
    }
    let _ = writeln!(
        section,
        "| **total** | **{total}** ({:.0} KiB) | |",
        total as f64 / 1024.0
    );
}

pub(crate) fn scenario(
    rooms: usize,
    clients: usize,
    senders: usize,
    messages: usize,
    window: usize,
    rate: Option<f64>,
) -> Scenario {
    Scenario {
        rooms,
        clients_per_room: clients,
        senders_per_room: senders,
        messages_per_sender: messages,
        window,
        rate,
        room_prefix: String::new(),
    }
}
