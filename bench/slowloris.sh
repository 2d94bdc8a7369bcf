#!/usr/bin/env bash
# Slow clients against a release `wxportal serve`: 500 connections trickling their headers a byte every
# 5 s while real messages are posted; prints the real messages' latency and when the slow ones were cut.
#
#   bash bench/slowloris.sh [CONNECTIONS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-500}
SECONDS_PER_RUN=${2:-30}
PORT=${BENCH_PORT:-18183}

cargo build --release --quiet --bin wxportal
out=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$out"' EXIT
export WXPORTAL_TOKEN=benchToken1 WXPORTAL_APPID=wx0123456789abcdef
export WXPORTAL_BIND=127.0.0.1:$PORT WXPORTAL_DATABASE_URL="sqlite://$out/bench.db"
ulimit -n 4096
./target/release/wxportal serve 2>"$out/server.log" &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
python3 bench/slowloris.py "127.0.0.1:$PORT" "$WXPORTAL_TOKEN" "$CONNECTIONS" "$SECONDS_PER_RUN"
echo "peak RSS of the server: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$server/status)"
