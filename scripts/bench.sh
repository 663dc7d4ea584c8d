#!/usr/bin/env bash
# Runs Palaver's benchmarks (release build) and prints Markdown tables for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(df -h --output=source . | tail -1), $(rustc --version)"
cargo run --quiet --release -p server --example throughput
