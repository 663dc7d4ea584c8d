#!/usr/bin/env bash
# Fuzzes the frame decoder and the input validators (fuzz/fuzz_targets/frames.rs) for a bounded
# time and prints how many inputs were tried. Any crash fails the run and leaves the input in
# fuzz/artifacts/frames/ (replay it with: cd fuzz && cargo fuzz run -s none frames <file>).
#
#   scripts/fuzz.sh            60 seconds (what CI runs)
#   scripts/fuzz.sh 3600       an hour
#
# Runs on stable Rust: `-s none` builds without a sanitizer (the code under test has no unsafe).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || scripts/setup.sh --e2e
mkdir -p fuzz/corpus/frames
cd fuzz
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo fuzz run -s none frames corpus/frames seeds/frames -- \
  -max_total_time="$seconds" -max_len=16384 -print_final_stats=1 >"$log" 2>&1 || status=$?
if [[ $status -ne 0 ]]; then
  tail -60 "$log"
  echo "fuzzing found a failure (exit $status); see fuzz/artifacts/frames/" >&2
  exit "$status"
fi
grep -E '^(Done|stat::peak_rss_mb)' "$log"
