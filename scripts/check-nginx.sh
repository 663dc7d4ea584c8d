#!/usr/bin/env bash
# Manual check of deploy/nginx-palaver-proxy.conf: runs the debug server behind a local nginx
# (plain HTTP on 127.0.0.1:8088) and checks pages, readiness, the WebSocket upgrade, the Origin
# check and client addresses through the proxy. Needs nginx (apt-get install nginx) and a
# `cargo leptos build`. Prints PASS or the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
cleanup() {
  [[ -f "$work/nginx.pid" ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

PALAVER_BIND=127.0.0.1:3099 PALAVER_DATA_DIR="$work/data" PALAVER_TRUSTED_PROXIES=127.0.0.1 \
  PALAVER_RATE_LIMIT_BURST=2 PALAVER_RATE_LIMIT_INTERVAL_MS=60000 RUST_LOG=warn \
  target/debug/server >"$work/server.log" 2>&1 &
server_pid=$!

cat >"$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log $work/error.log;
events {}
http {
  access_log $work/access.log;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  upstream palaver { server 127.0.0.1:3099; keepalive 32; }
  server {
    listen 127.0.0.1:8088;
    location / { include $root/deploy/nginx-palaver-proxy.conf; }
  }
}
CONF
nginx -c "$work/nginx.conf"
for _ in $(seq 50); do curl -fsS http://127.0.0.1:8088/healthz >/dev/null 2>&1 && break; sleep 0.2; done

fail() { echo "FAIL: $*" >&2; exit 1; }
ws_upgrade() { # origin -> status line
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" \
    -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" -H "Origin: $1" \
    "${@:2}" http://127.0.0.1:8088/api/rooms/nginx-check/ws || true
}

[[ "$(curl -fsS http://127.0.0.1:8088/readyz)" == "ready" ]] || fail "readyz"
curl -fsSI http://127.0.0.1:8088/r/general | grep -qi '^content-security-policy: .*nonce-' || fail "page CSP"
[[ "$(ws_upgrade http://127.0.0.1:8088)" == "101" ]] || fail "same-origin WebSocket upgrade through nginx"
[[ "$(ws_upgrade https://evil.example)" == "403" ]] || fail "cross-origin upgrade not refused"
# nginx replaces X-Forwarded-For with the real peer, so a forged one from a client changes
# nothing; and the per-address connection cap sees nginx's view of the client.
[[ "$(ws_upgrade http://127.0.0.1:8088 -H 'X-Forwarded-For: 203.0.113.9')" == "101" ]] || fail "upgrade with a forged header"
grep -q '"GET /api/rooms/nginx-check/ws HTTP/1.1" 101' "$work/access.log" || fail "access log"
echo "PASS: pages, readiness, WebSocket upgrade and Origin check through nginx ($(nginx -v 2>&1))"
