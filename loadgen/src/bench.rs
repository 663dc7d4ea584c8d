//! `loadgen bench`: starts the ceiling and a Palaver server (release build, fresh data directory,
//! durability on), runs every scenario against both, and rewrites the results section of
//! `docs/BENCHMARKS.md` (between the `loadgen:begin`/`loadgen:end` markers) and the chart.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use testkit::process::Process;

use crate::fanout::{self, Outcome, Scenario, Target};
use crate::idle::{self, IdleOutcome};

/// Starts a Palaver server on a free port with the limits lifted (the load comes from one
/// address) and rooms kept in memory, plus `extra` settings; returns once it listens.
pub(crate) async fn start_palaver(
    server: &Path,
    data_dir: &Path,
    extra: &[&str],
) -> Result<Process, String> {
    let mut args = vec![
        "--rate-limit-burst",
        "1000000",
        "--max-connections",
        "1000000",
        "--max-connections-per-ip",
        "1000000",
        "--room-idle-secs",
        "3600",
    ];
    args.extend(extra);
    let mut command = Process::palaver(server, data_dir, &args);
    // Only the binary's own lines ("listening on"): per-session spans stay disabled, as in
    // production with the default filter they would cost memory per connection being measured.
    command.env("RUST_LOG", "warn,server=info");
    Process::start(command)
        .await
        .map_err(|e| format!("{}: {e}", server.display()))
}

struct Row {
    label: &'static str,
    palaver: Outcome,
    ceiling: Option<Outcome>,
    /// What the target asks of this row, for the table.
    goal: &'static str,
}

pub async fn run(
    server: &Path,
    page: &Path,
    chart: &Path,
    idle_counts: &[usize],
) -> Result<(), String> {
    let data_dir = std::env::temp_dir().join(format!("palaver-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut ceiling =
        tokio::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    ceiling.args(["ceiling", "--bind", "127.0.0.1:0"]);
    let ceiling = Process::start(ceiling)
        .await
        .map_err(|e| format!("ceiling: {e}"))?;
    let palaver = start_palaver(server, &data_dir, &[]).await?;
    let p = Target::Palaver(palaver.addr.to_string());
    let c = Target::Ceiling(ceiling.addr.to_string());

    let grid: Vec<(&'static str, &'static str, Scenario, bool)> = vec![
        (
            "1 room × 1,000 clients, 10 senders",
            "≥ 60% of ceiling deliveries/s, p99 ≤ 2×",
            scenario(1, 1000, 10, 100, 32, None),
            true,
        ),
        (
            "10 rooms × 50 clients, 10 senders each",
            "≥ 60%, p99 ≤ 2×",
            scenario(10, 50, 10, 200, 32, None),
            true,
        ),
        (
            "1 room × 100 clients, 10 senders",
            "≥ 60%, p99 ≤ 2×",
            scenario(1, 100, 10, 500, 32, None),
            true,
        ),
        (
            "moderate: 1 room × 100, 10 senders at 10 msg/s",
            "p99 < 10 ms",
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
    ];
    let mut rows = Vec::new();
    for (i, (label, goal, mut s, with_ceiling)) in grid.into_iter().enumerate() {
        s.room_prefix = format!("bench{i}");
        eprintln!("running: {label}");
        let palaver_outcome = fanout::run(&p, &s).await?;
        let ceiling_outcome = if with_ceiling {
            Some(fanout::run(&c, &s).await?)
        } else {
            None
        };
        rows.push(Row {
            label,
            palaver: palaver_outcome,
            ceiling: ceiling_outcome,
            goal,
        });
    }
    let mut idle_rows = Vec::new();
    for &n in idle_counts {
        eprintln!("idle: {n} connections");
        let (po, held) = idle::run(
            &p,
            palaver.addr,
            palaver.pid().unwrap_or(0),
            n,
            &format!("idle{n}"),
        )
        .await;
        drop(held);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (co, held) = idle::run(
            &c,
            ceiling.addr,
            ceiling.pid().unwrap_or(0),
            n,
            &format!("idle{n}"),
        )
        .await;
        drop(held);
        tokio::time::sleep(Duration::from_secs(3)).await;
        idle_rows.push((n, po, co));
    }
    let web = first_visit(palaver.addr, "/r/bench0-0").await;
    drop(palaver);
    drop(ceiling);
    let _ = std::fs::remove_dir_all(&data_dir);

    let mut section = report(&rows, &idle_rows);
    match web {
        Ok(lines) => {
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
        Err(e) => {
            let _ = writeln!(section, "\nWeb client transfer not measured: {e}");
        }
    }
    println!("{section}");
    rewrite_page(page, &section)?;
    std::fs::write(chart, svg(&rows)).map_err(|e| format!("{}: {e}", chart.display()))?;
    Ok(())
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

pub(crate) fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1_048_576.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{cores} cores ({cpu}), {mem_gib:.0} GiB, {}; load generator, ceiling and server on the same machine",
        command_output("rustc", &["--version"])
    )
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.0}%", 100.0 * a / b)
    } else {
        "—".into()
    }
}

fn report(rows: &[Row], idle_rows: &[(usize, IdleOutcome, IdleOutcome)]) -> String {
    let mut out = String::new();
    let date = command_output("date", &["-u", "+%Y-%m-%d"]);
    let _ = writeln!(
        out,
        "Measured {date} by `scripts/bench.sh` on {}.\n",
        machine()
    );
    let _ = writeln!(
        out,
        "![deliveries per second and p99 latency per scenario](benchmarks.svg)\n"
    );
    let _ = writeln!(out, "### Fan-out\n");
    let _ = writeln!(out, "| scenario | target | Palaver deliveries/s | ceiling deliveries/s | ratio | Palaver p50 / p99 / max ms | ceiling p99 ms | p99 ratio | lost | duplicated |");
    let _ = writeln!(
        out,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rows {
        let p = &r.palaver;
        let (c_rate, c_p99, rate_ratio, p99_ratio) = match &r.ceiling {
            Some(c) => (
                format!("{:.0}", c.deliveries_per_s),
                format!("{:.2}", c.p99_ms),
                ratio(p.deliveries_per_s, c.deliveries_per_s),
                if c.p99_ms > 0.0 {
                    format!("{:.1}×", p.p99_ms / c.p99_ms)
                } else {
                    "—".into()
                },
            ),
            None => ("—".into(), "—".into(), "—".into(), "—".into()),
        };
        let lost = p.lost + r.ceiling.as_ref().map_or(0, |c| c.lost);
        let dup = p.duplicated + r.ceiling.as_ref().map_or(0, |c| c.duplicated);
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {c_rate} | {rate_ratio} | {:.2} / {:.2} / {:.1} | {c_p99} | {p99_ratio} | {} | {} |",
            r.label, r.goal, p.deliveries_per_s, p.p50_ms, p.p99_ms, p.max_ms, p.lost, p.duplicated
        );
        let _ = (lost, dup);
    }
    if let Some(d) = rows.iter().find(|r| r.ceiling.is_none()) {
        let _ = writeln!(
            out,
            "\nDurable write path: **{:.0} messages/s accepted** into one room ({} messages, each acknowledged only after its group commit was fsynced).",
            d.palaver.messages_per_s, d.palaver.sent
        );
    }
    let _ = writeln!(out, "\n### Idle connections\n");
    let _ = writeln!(out, "| connections | Palaver held | Palaver RSS per connection | ceiling RSS per connection | Palaver connects/s | errors |");
    let _ = writeln!(out, "| ---: | ---: | ---: | ---: | ---: | ---: |");
    for (n, p, c) in idle_rows {
        let _ = writeln!(
            out,
            "| {n} | {} | {:.1} KiB | {:.1} KiB | {:.0} | {} |",
            p.connections,
            p.bytes_per_connection / 1024.0,
            c.bytes_per_connection / 1024.0,
            p.connect_per_s,
            p.errors + c.errors
        );
    }
    out
}

const BEGIN: &str =
    "<!-- loadgen:begin (generated by scripts/bench.sh; edits here are overwritten) -->";
const END: &str = "<!-- loadgen:end -->";

fn rewrite_page(page: &Path, section: &str) -> Result<(), String> {
    rewrite_section(page, BEGIN, END, "Results", section)
}

/// Replaces what lies between the `begin` and `end` markers of `page` with `section` (or appends
/// a `## {heading}` with the markers when they are missing).
pub(crate) fn rewrite_section(
    page: &Path,
    begin: &str,
    end: &str,
    heading: &str,
    section: &str,
) -> Result<(), String> {
    let text = std::fs::read_to_string(page).map_err(|e| format!("{}: {e}", page.display()))?;
    let new = match (text.find(begin), text.find(end)) {
        (Some(a), Some(b)) if a < b => format!("{}{begin}\n{section}{}", &text[..a], &text[b..]),
        _ => format!(
            "{}\n\n## {heading}\n\n{begin}\n{section}{end}\n",
            text.trim_end()
        ),
    };
    std::fs::write(page, new).map_err(|e| format!("{}: {e}", page.display()))
}

/// Which number of an outcome a chart panel shows.
type Metric = fn(&Outcome) -> f64;

/// Two bar charts side by side: deliveries/s and p99 latency, Palaver against the ceiling.
fn svg(rows: &[Row]) -> String {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.ceiling.is_some()).collect();
    let (w, h, pad) = (960.0, 360.0, 40.0);
    let panel_w = (w - 3.0 * pad) / 2.0;
    let chart_h = h - 2.0 * pad - 60.0;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">
<rect width="{w}" height="{h}" fill="white"/>
"#
    );
    let panels: [(&str, Metric); 2] = [
        ("deliveries per second (higher is better)", |o| {
            o.deliveries_per_s
        }),
        ("p99 latency, ms (lower is better)", |o| o.p99_ms),
    ];
    for (pi, (title, value)) in panels.iter().enumerate() {
        let x0 = pad + pi as f64 * (panel_w + pad);
        let y0 = pad;
        let max = rows
            .iter()
            .flat_map(|r| [value(&r.palaver), r.ceiling.as_ref().map_or(0.0, value)])
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let _ = writeln!(
            out,
            r#"<text x="{x0}" y="{}" font-size="13" font-weight="bold">{title}</text>"#,
            y0 - 12.0
        );
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{}" x2="{}" y2="{}" stroke="#888"/>"##,
            y0 + chart_h,
            x0 + panel_w,
            y0 + chart_h
        );
        let group = panel_w / rows.len().max(1) as f64;
        let bar = group * 0.35;
        for (i, r) in rows.iter().enumerate() {
            let gx = x0 + i as f64 * group + group * 0.15;
            for (j, (v, color)) in [
                (value(&r.palaver), "#4f46e5"),
                (r.ceiling.as_ref().map_or(0.0, value), "#9ca3af"),
            ]
            .into_iter()
            .enumerate()
            {
                let bh = chart_h * v / max;
                let bx = gx + j as f64 * bar;
                let _ = writeln!(
                    out,
                    r#"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{color}"/>"#,
                    y0 + chart_h - bh,
                    bar - 2.0
                );
                let label = if v >= 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                };
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{label}</text>"#,
                    bx + bar / 2.0 - 1.0,
                    y0 + chart_h - bh - 3.0
                );
            }
            let short = r
                .label
                .split(", ")
                .next()
                .unwrap_or(r.label)
                .replace("moderate: ", "moderate ");
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                gx + bar,
                y0 + chart_h + 14.0,
                escape(&short)
            );
        }
    }
    let ly = h - 20.0;
    let _ = writeln!(
        out,
        r##"<rect x="{pad}" y="{}" width="12" height="12" fill="#4f46e5"/><text x="{}" y="{ly}">Palaver (durable, SQLite)</text>"##,
        ly - 10.0,
        pad + 18.0
    );
    let _ = writeln!(
        out,
        r##"<rect x="{}" y="{}" width="12" height="12" fill="#9ca3af"/><text x="{}" y="{ly}">ceiling (bare broadcaster)</text>"##,
        pad + 220.0,
        ly - 10.0,
        pad + 238.0
    );
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One HTTP/1.1 GET asking for brotli or gzip: (status, headers in lower case, body bytes).
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String, Vec<u8>), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: br, gzip\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, head, raw[split + 4..].to_vec()))
}

/// What a first visit transfers: the page and every asset it names, as a browser would ask for
/// them (brotli or gzip accepted).
async fn first_visit(addr: SocketAddr, page: &str) -> Result<Vec<(String, usize, String)>, String> {
    let encoding = |head: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix("content-encoding:"))
            .map_or_else(|| "identity".to_owned(), |v| v.trim().to_owned())
    };
    let (status, head, body) = get(addr, page).await?;
    if status != 200 {
        return Err(format!("{page}: HTTP {status}"));
    }
    let mut out = vec![(page.to_owned(), body.len(), encoding(&head))];
    // The asset names are in the uncompressed page.
    let html = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!("GET {page} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = String::new();
        stream
            .read_to_string(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        raw
    };
    let mut assets: Vec<String> = html
        .split('"')
        .filter(|s| s.starts_with("/pkg/"))
        .map(str::to_owned)
        .collect();
    assets.sort();
    assets.dedup();
    for asset in assets {
        let (status, head, body) = get(addr, &asset).await?;
        if status != 200 {
            return Err(format!("{asset}: HTTP {status}"));
        }
        out.push((asset, body.len(), encoding(&head)));
    }
    Ok(out)
}
