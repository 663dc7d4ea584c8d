#!/usr/bin/env bash
# Builds a release into target/dist/: the self-contained `server` binary (the site's CSS, Wasm and
# JS inside it, precompressed) and palaver-<version>-<target>.tar.gz holding it with the README,
# docs/ and the deploy/ examples, plus SHA256SUMS. Before packing, the binary is copied alone into
# an empty directory, started, and asked for a room page and its hashed files (brotli, cached for
# a year), so a bundle that cannot serve itself is never made. Prints the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
triple=$(rustc -vV | awk '/^host:/ { print $2 }')
name="palaver-$version-$triple"
dist=target/dist

step "Building the release (cargo leptos build --release --precompress)"
cargo leptos build --release --precompress

step "Checking the binary alone in an empty directory"
alone=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$alone"' EXIT
cp target/release/server "$alone/server"
strip "$alone/server"
port=${PALAVER_RELEASE_CHECK_PORT:-3197}
(cd "$alone" && env -i PATH=/usr/bin:/bin PALAVER_BIND="127.0.0.1:$port" RUST_LOG=warn ./server) &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
page=$(curl -fs "http://127.0.0.1:$port/r/release-check")
css=$(grep -o '/pkg/palaver\.[A-Za-z0-9_-]*\.css' <<<"$page" | head -1)
wasm=$(grep -o '/pkg/palaver\.[A-Za-z0-9_-]*\.wasm' <<<"$page" | head -1)
[[ -n "$css" && -n "$wasm" ]] || { echo "the page names no hashed CSS/Wasm" >&2; exit 1; }
for file in "$css" "$wasm"; do
  headers=$(curl -fsS -o /dev/null -D - -H 'Accept-Encoding: br, gzip' "http://127.0.0.1:$port$file")
  grep -qi '^content-encoding: br' <<<"$headers" || { echo "$file is not served as brotli" >&2; exit 1; }
  grep -qi '^cache-control: public, max-age=31536000, immutable' <<<"$headers" \
    || { echo "$file is not cached as immutable" >&2; exit 1; }
done
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
[[ "$(ls "$alone")" == $'data\nserver' ]] || { echo "the binary left unexpected files" >&2; exit 1; }

step "Packing $dist/$name.tar.gz"
rm -rf "${dist:?}/$name"
mkdir -p "$dist/$name"
cp "$alone/server" "$dist/$name/server"
cp -r README.md docs deploy "$dist/$name/"
tar -C "$dist" -czf "$dist/$name.tar.gz" "$name"
(cd "$dist" && sha256sum "$name.tar.gz" "$name/server" > SHA256SUMS)

binary_size=$(stat -c %s "$dist/$name/server")
tarball_size=$(stat -c %s "$dist/$name.tar.gz")
echo "binary:  $dist/$name/server  $((binary_size / 1024)) KiB"
echo "tarball: $dist/$name.tar.gz  $((tarball_size / 1024)) KiB"
echo "checksums: $dist/SHA256SUMS"
