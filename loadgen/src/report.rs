//! What `loadgen bench` and `loadgen nodes` write: the results tables, the chart, and the
//! rewriting of their section of `docs/BENCHMARKS.md`.

use std::fmt::Write as _;
use std::path::Path;

use crate::crowd::{FloodOutcome, StormOutcome};
use crate::fanout::Outcome;
use crate::idle::IdleOutcome;

/// One scenario's outcome, against the ceiling when it has one.
pub(crate) struct Row {
    pub(crate) label: &'static str,
    pub(crate) palaver: Outcome,
    pub(crate) ceiling: Option<Outcome>,
    /// The same scenario through the edge-chat demo's endpoint (fan-out rows only).
    pub(crate) edge_chat: Option<Outcome>,
    /// What the target asks of this row, for the table.
    pub(crate) goal: &'static str,
}

/// The edge-chat endpoint against the native protocol, row by row (target: within 10%).
fn edge_chat_table(out: &mut String, rows: &[Row]) {
    let _ = writeln!(out, "\n#### The edge-chat endpoint\n");
    let _ = writeln!(out, "| scenario | edge-chat deliveries/s | of native | edge-chat p50 / p99 ms | native p99 ms | lost | duplicated |");
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        let Some(e) = &r.edge_chat else { continue };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {:.2} / {:.2} | {:.2} | {} | {} |",
            r.label,
            e.deliveries_per_s,
            ratio(e.deliveries_per_s, r.palaver.deliveries_per_s),
            e.p50_ms,
            e.p99_ms,
            r.palaver.p99_ms,
            e.lost,
            e.duplicated
        );
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

/// Which code was measured: the commit, marked `-dirty` with changes not committed.
pub(crate) fn revision() -> String {
    match command_output("git", &["describe", "--always", "--dirty"]) {
        r if r.is_empty() => "code not in git".into(),
        r => format!("commit {r}"),
    }
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

/// The results section: the fan-out tables, `disk` (the data directory's sync latency, see
/// `disk.rs`) after the durable rows, and the idle connections.
pub(crate) fn report(
    rows: &[Row],
    idle_rows: &[(usize, IdleOutcome, IdleOutcome)],
    disk: &str,
) -> String {
    let mut out = String::new();
    let date = command_output("date", &["-u", "+%Y-%m-%d"]);
    let _ = writeln!(
        out,
        "Measured {date} by `scripts/bench.sh` ({}) on {}.\n",
        revision(),
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
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {c_rate} | {rate_ratio} | {:.2} / {:.2} / {:.1} | {c_p99} | {p99_ratio} | {} | {} |",
            r.label, r.goal, p.deliveries_per_s, p.p50_ms, p.p99_ms, p.max_ms, p.lost, p.duplicated
        );
    }
    edge_chat_table(&mut out, rows);
    if let Some(d) = rows.iter().find(|r| r.ceiling.is_none()) {
        let _ = writeln!(
            out,
            "\nDurable write path: **{:.0} messages/s accepted** into one room ({} messages, each acknowledged only after its group commit was fsynced).",
            d.palaver.messages_per_s, d.palaver.sent
        );
    }
    out.push_str(disk);
    let _ = writeln!(out, "\n### Idle connections\n");
    let _ = writeln!(out, "Each count on a fresh server and a fresh ceiling; memory read right after the joins (256 at a time), then again after holding them idle.\n");
    let _ = writeln!(out, "| connections | Palaver held | Palaver RSS per connection, after joins / held | ceiling, after joins / held | held for | Palaver connects/s | errors |");
    let _ = writeln!(out, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (n, p, c) in idle_rows {
        let _ = writeln!(
            out,
            "| {n} | {} | {:.1} / {:.1} KiB | {:.1} / {:.1} KiB | {} s | {:.0} | {} |",
            p.connections,
            p.bytes_per_connection / 1024.0,
            p.bytes_per_connection_later / 1024.0,
            c.bytes_per_connection / 1024.0,
            c.bytes_per_connection_later / 1024.0,
            p.held_secs,
            p.connect_per_s,
            p.errors + c.errors
        );
    }
    out
}

/// The join storm and room flood rows.
pub(crate) fn crowds(storm: &StormOutcome, flood: &FloodOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n### Crowds: big rooms and many rooms\n");
    let _ = writeln!(out, "| scenario | result |");
    let _ = writeln!(out, "| --- | --- |");
    let _ = writeln!(
        out,
        "| join storm: {} people with 32-character names (4-byte characters) join one room, 256 at a time, then idle | all joined in {:.1} s ({} errors); {:.0} presence bytes per member for the whole storm; {:.1} KiB of server memory per member; then one more joins: {} bytes to it (welcome and first roster page), {:.0} presence bytes to each member |",
        storm.members, storm.seconds, storm.errors, storm.presence_bytes_per_member, storm.rss_per_member_kib, storm.join_bytes, storm.presence_bytes_per_join
    );
    let _ = writeln!(
        out,
        "| room flood: {} sockets join fresh room names in a loop for {:.0} s | {} rooms opened ({:.0}/s), {} refused; at most {:.0} rooms in memory at once, {:.0} still in memory 8 s later; server memory +{} KiB |",
        flood.sockets,
        flood.seconds,
        flood.rooms_opened,
        flood.rooms_opened as f64 / flood.seconds.max(1e-9),
        flood.refused,
        flood.peak_rooms,
        flood.rooms_after,
        flood.rss_growth_kib
    );
    out
}

const BEGIN: &str =
    "<!-- loadgen:begin (generated by scripts/bench.sh; edits here are overwritten) -->";
const END: &str = "<!-- loadgen:end -->";

pub(crate) fn rewrite_page(page: &Path, section: &str) -> Result<(), String> {
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
pub(crate) fn svg(rows: &[Row]) -> String {
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
        panel(&mut out, &rows, (x0, pad, panel_w, chart_h), title, *value);
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

/// One bar chart: each row's `value` for Palaver and the ceiling, in the box (x, y, w, h).
fn panel(
    out: &mut String,
    rows: &[&Row],
    (x0, y0, panel_w, chart_h): (f64, f64, f64, f64),
    title: &str,
    value: Metric,
) {
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
