#!/usr/bin/env bash
# Installs what is missing, then runs Palaver at http://127.0.0.1:3000 and rebuilds on change.
# Extra arguments go to `cargo leptos watch` (for example --release).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
exec cargo leptos watch "$@"
