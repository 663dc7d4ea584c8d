#!/usr/bin/env bash
# Installs what is missing, then runs every check and test: formatting, clippy (server and wasm),
# Rust unit, property and integration tests, a 60 s fuzz run, and the Playwright browser tests. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --e2e
source scripts/env.sh

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy: app + server + loadgen + testkit (ssr)"
cargo clippy -p app -p server -p loadgen -p testkit --features app/ssr --all-targets -- -D warnings
step "clippy: app + frontend (hydrate, wasm32)"
cargo clippy -p app -p frontend --features app/hydrate --target wasm32-unknown-unknown -- -D warnings

step "Rust tests"
cargo test -p app -p server --features app/ssr

step "Fuzz the frame decoder and validators (60 s)"
scripts/fuzz.sh 60

step "Build the site (cargo leptos build)"
cargo leptos build

step "Playwright (Chromium)"
cd end2end
npx playwright test
