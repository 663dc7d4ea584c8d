#!/usr/bin/env bash
# Runs Palaver's benchmarks and rewrites the results in docs/BENCHMARKS.md and the chart
# docs/benchmarks.svg. Release builds; the load generator, the ceiling server and Palaver all run
# on this machine. Takes about ten minutes after the builds.
#
#   scripts/bench.sh                  the whole grid, idle connections at 10,000 and 50,000,
#                                     then the Redis engine (one node, two nodes on one Redis)
#   scripts/bench.sh --idle 10000     fewer idle connections (a quicker run)
#   scripts/bench.sh --nodes          only the Redis engine's grid
#
# The Redis grid uses PALAVER_TEST_REDIS_URL, else the Redis on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
# Up to 50,000 idle connections: the server and the load generator each need a descriptor per
# connection (raising the hard limit needs root; otherwise the idle rows show errors).
ulimit -n 120000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
step "Build the site and server (release, assets precompressed)"
cargo leptos build --release --precompress
step "Build the load generator (release)"
cargo build --release -p loadgen --features app/ssr
if [[ "${1:-}" != "--nodes" ]]; then
  step "Run the grid"
  target/release/loadgen bench --server target/release/server "$@"
fi
step "Run the Redis engine's grid (one node, then two nodes on one Redis)"
target/release/loadgen nodes --server target/release/server
