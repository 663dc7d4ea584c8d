//! A client that stops reading while others chat: the server's memory stays bounded and nobody
//! else is slowed. Alone in its own test binary, because it measures the process's memory.

mod common;

use common::{flood, join_and_stop_reading, Node, TestServer};

/// This process's resident memory in KiB (the server runs in the test process).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_keeps_memory_bounded_and_slows_nobody() {
    // The stalled client is kept (a long write timeout) so that it is stalled the whole time.
    let server =
        TestServer::start_with(&["--write-timeout-ms", "60000", "--peer-timeout-ms", "120000"])
            .await;
    let mut reader = server.join("stall", "Reader", None).await;
    let mut sender = server.join("stall", "Sender", None).await;
    let _stalled = join_and_stop_reading(&server, "stall", "Stalled").await;

    let count = 12_000; // about 23 MB of messages
    let before = rss_kib();
    let mut peak = before;
    let latencies = flood(&mut sender, &mut reader, count, |sent| {
        if sent % 1_000 < 32 {
            peak = peak.max(rss_kib());
        }
    })
    .await;
    peak = peak.max(rss_kib());

    let mut sorted = latencies.clone();
    sorted.sort_unstable();
    let p99 = sorted[sorted.len() * 99 / 100];
    let max = sorted[sorted.len() - 1];
    let growth_mib = (peak.saturating_sub(before)) / 1024;
    eprintln!(
        "others' delivery latency p99 {p99} ms, max {max} ms; memory growth {growth_mib} MiB"
    );
    // Had the room or the others waited for the stalled client, deliveries would have stopped
    // for the whole write timeout (60 s).
    assert!(max < 5_000, "others were held up: max latency {max} ms");
    // Had the server queued the stalled client's frames, memory would have grown by the 23 MB
    // sent to it; what it may hold is the room's bounded live buffer and socket buffers.
    assert!(growth_mib < 12, "memory grew by {growth_mib} MiB");

    // It is still in the room: stalled, not dropped, for as long as the write timeout allows.
    reader.close().await;
    let mut check = server.join("stall", "Check", None).await;
    let (online, _, _) = check.next_presence().await;
    assert!(online.contains(&"Stalled".to_owned()), "{online:?}");
}
