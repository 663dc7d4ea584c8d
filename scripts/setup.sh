#!/usr/bin/env bash
# Installs what Palaver needs to build (and, with --e2e, to run the browser tests), skipping
# everything that is already installed at the right version. Safe to run any number of times.
#
#   scripts/setup.sh          Rust target, cargo-leptos, wasm-bindgen-cli, wasm-opt
#   scripts/setup.sh --e2e    also what the tests need: a running Redis, cargo-fuzz, Node.js,
#                             Chromium and the Playwright test runner
#
# Source scripts/env.sh afterwards (dev.sh and test.sh do) to put the installed tools on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

CARGO_LEPTOS_VERSION=0.3.10
CARGO_FUZZ_VERSION=0.13.2
BINARYEN_VERSION=132.0.0
e2e=false
[[ "${1:-}" == "--e2e" ]] && e2e=true

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_updated=false
apt_install() {
  if ! $apt_updated; then as_root apt-get update -qq; apt_updated=true; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

command -v cargo >/dev/null || { echo "Rust is required: install it from rustup.rs first." >&2; exit 1; }

# The tools are compiled once per machine and then mostly start processes and copy files, so
# they are built for compile time: no LTO, many codegen units, opt-level 0, except the crates
# that do real work on every build (wasm-bindgen's Wasm rewriting, hashing, compression) at
# opt-level 2. Measured on 2 cores (README, "Test it"): everything installs in 6 min 12 s
# (cargo-leptos 4 min 43 s instead of about 16 min), and a no-op `cargo leptos build` takes 2.6 s
# instead of 2.1 s.
# PALAVER_TOOL_PROFILE=release builds them as their authors do.
HOT_TOOL_CRATES="walrus wasmparser wasm-bindgen-cli-support wasm-bindgen-wasm-interpreter
  wasm-bindgen-wasm-conventions wasm-bindgen-threads-xform wasm-bindgen-multi-value-xform
  wasm-bindgen-externref-xform md-5 brotli brotli-decompressor flate2 miniz_oxide crc32fast
  leb128 base64ct"
tool_install() {
  if [[ "${PALAVER_TOOL_PROFILE:-quick}" == release ]]; then
    cargo install "$@"
    return
  fi
  local hot=() crate
  for crate in $HOT_TOOL_CRATES; do hot+=(--config "profile.release.package.$crate.opt-level=2"); done
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_INCREMENTAL=false CARGO_PROFILE_RELEASE_STRIP=true \
    cargo install "${hot[@]}" "$@"
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "Adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# Packages, npm and Redis need the network and the disk, not the CPU: they run in the background
# while the tools compile (a minute or two less on a fresh machine), and are waited for below.
system_steps() {
  need_node() {
    if ! command -v npm >/dev/null; then
      step "Installing Node.js"
      apt_install nodejs npm
    fi
  }

  # wasm-opt for release builds. Debian's binaryen (v108) miscompiles current Rust output, so it
  # comes from npm at a known-good version, into .tools/.
  if [[ "$(wasm-opt --version 2>/dev/null || true)" != *"version ${BINARYEN_VERSION%%.*}"* ]]; then
    need_node
    step "Installing wasm-opt (binaryen $BINARYEN_VERSION) into .tools/"
    mkdir -p .tools
    npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error "binaryen@$BINARYEN_VERSION"
  fi

  # The Redis engine's tests need a Redis: PALAVER_TEST_REDIS_URL, or one on 127.0.0.1:6379, which
  # is started when missing. Some tests also start private redis-servers (a Redis killed and
  # restarted, a Cluster), so the binaries are installed from Debian's packages if missing. Never
  # skipped silently.
  redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
  if $e2e && ! { command -v redis-server && command -v redis-cli; } >/dev/null; then
    step "Installing Redis (Debian packages)"
    apt_install redis-server redis-tools
  fi
  if $e2e && [[ -z "${PALAVER_TEST_REDIS_URL:-}" ]] && ! redis_up; then
    step "Starting Redis on 127.0.0.1:6379"
    redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no >/dev/null
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
    redis_up || { echo "Redis did not start on 127.0.0.1:6379" >&2; exit 1; }
  fi

  if $e2e; then
    if [[ ! -x /usr/bin/chromium ]]; then
      step "Installing Chromium (Debian package)"
      apt_install chromium
    fi
    need_node
    if [[ ! -f end2end/node_modules/.package-lock.json || end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]]; then
      step "Installing the Playwright test runner"
      (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    fi
  fi
}
system_steps &
system_pid=$!
# A failed tool install ends the script; do not leave the background steps running.
trap 'kill "$system_pid" 2>/dev/null || true' EXIT

if [[ "$(cargo-leptos --version 2>/dev/null || true)" != *" $CARGO_LEPTOS_VERSION" ]]; then
  step "Installing cargo-leptos $CARGO_LEPTOS_VERSION (takes a while, once)"
  tool_install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
fi

# wasm-bindgen-cli must be exactly the wasm-bindgen version in Cargo.lock.
wbg_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[[ -n "$wbg_version" ]] || { echo "cannot find wasm-bindgen in Cargo.lock" >&2; exit 1; }
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $wbg_version" ]]; then
  step "Installing wasm-bindgen-cli $wbg_version"
  # Not --locked: the CLI's own lockfile pins a crate the registry no longer has.
  tool_install wasm-bindgen-cli --version "=$wbg_version" --force
fi

if $e2e; then
  if [[ "$(cargo-fuzz --version 2>/dev/null || true)" != *" $CARGO_FUZZ_VERSION" ]]; then
    step "Installing cargo-fuzz $CARGO_FUZZ_VERSION"
    tool_install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
  fi
fi

wait "$system_pid" || { echo "installing packages, npm modules or Redis failed (above)" >&2; exit 1; }
