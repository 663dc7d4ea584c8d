#!/usr/bin/env bash
# Profiles the release server under one fan-out scenario with `perf` (Debian's linux-perf) and
# prints the functions that take the most samples, with the ceiling's profile under the same
# scenario for comparison. Uses the binaries scripts/bench.sh builds (run it, or build them first).
#
#   scripts/profile.sh                          1 room × 100 clients, 10 senders, window 16, 3,000 each
#   scripts/profile.sh --rooms 10 --clients 50 --senders 5 --window 32 --messages 2000
#   PROFILE_TOP=40 scripts/profile.sh           more lines
#   PROFILE_SERVER=path/to/server scripts/profile.sh   another build of the server
#
# Writes target/profile/{palaver,ceiling}.data and .txt (the reports). Needs root or
# kernel.perf_event_paranoid <= 1 for the kernel's share.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || {
  echo "perf not found: apt-get install linux-perf" >&2
  exit 1
}
server=${PROFILE_SERVER:-target/release/server}
loadgen=target/release/loadgen
for bin in "$server" "$loadgen"; do
  [[ -x $bin ]] || {
    echo "$bin missing: run scripts/bench.sh (or cargo leptos build --release and cargo build --release -p loadgen --features app/ssr)" >&2
    exit 1
  }
done
args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(--rooms 1 --clients 100 --senders 10 --window 16 --messages 3000)
top=${PROFILE_TOP:-25}
out=target/profile
mkdir -p "$out"
data=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$data"' EXIT

# Waits for a process's "listening on" line in its log and prints the address.
listening() {
  for _ in $(seq 100); do
    addr=$(grep -oE 'listening on (http://)?[0-9.]+:[0-9]+' "$1" | grep -oE '[0-9.]+:[0-9]+' | head -1 || true)
    [[ -n $addr ]] && { echo "$addr"; return; }
    sleep 0.1
  done
  echo "no listening line in $1" >&2
  exit 1
}

# profile NAME ADDR PID [loadgen flags]: records the process while the scenario runs.
profile() {
  local name=$1 addr=$2 pid=$3
  shift 3
  perf record -F 999 -g -p "$pid" -o "$out/$name.data" 2>/dev/null &
  local recorder=$!
  sleep 0.5
  "$loadgen" fanout --addr "$addr" "$@" "${args[@]}" | grep -E '"(deliveries_per_s|p99_ms|lost|duplicated)"' || true
  kill -INT "$recorder"
  wait "$recorder" || true
  perf report -i "$out/$name.data" --no-children -g none --sort dso,symbol --percent-limit 0.3 --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | sed -E 's/ +- +- *$//; s/ +$//' | head -"$top" | tee "$out/$name.txt" || true
}

RUST_LOG=warn,server=info NO_COLOR=1 "$server" --bind 127.0.0.1:0 --data-dir "$data/palaver" \
  --rate-limit-burst 1000000 --join-rate-limit-burst 1000000 --http-rate-limit-burst 1000000 \
  --history-rate-limit-burst 100000000 --history-rate-limit 100000000 \
  --max-connections 1000000 --max-connections-per-ip 1000000 \
  --max-http-connections-per-ip 1000000 --room-idle-secs 3600 >"$data/palaver.log" 2>&1 &
pids+=($!)
palaver_addr=$(listening "$data/palaver.log")
echo "== Palaver ($palaver_addr): ${args[*]}"
profile palaver "$palaver_addr" "${pids[-1]}"

"$loadgen" ceiling --bind 127.0.0.1:0 >"$data/ceiling.log" 2>&1 &
pids+=($!)
ceiling_addr=$(listening "$data/ceiling.log")
echo "== ceiling ($ceiling_addr): ${args[*]}"
profile ceiling "$ceiling_addr" "${pids[-1]}" --ceiling
