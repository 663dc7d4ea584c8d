#!/usr/bin/env bash
# Installs what is missing, then runs every check and test: formatting, clippy (server and wasm),
# Rust unit, property and integration tests, a 60 s fuzz run, and the Playwright browser tests. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --e2e
source scripts/env.sh

# Each step says when it started (seconds since the script did), so slow steps show in CI logs.
step() { printf '\033[1m==> [%4ds] %s\033[0m\n' "$SECONDS" "$*"; }
trap 'printf "\033[1m==> [%4ds] done (exit %s)\033[0m\n" "$SECONDS" "$?"' EXIT

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

# The self-contained server: the same build with the site inside the binary (release builds always
# embed it; debug builds only with this feature), copied alone for end2end/tests/alone.spec.ts.
step "A self-contained server binary (cargo leptos build --server-only --bin-features embed-site)"
cargo leptos build --server-only --bin-features embed-site
mkdir -p target/alone
cp target/debug/server target/alone/server

step "Playwright (Chromium)"
cd end2end
npx playwright test
