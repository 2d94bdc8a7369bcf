#!/usr/bin/env bash
# Benchmarks the webhook against a release build on this machine.
#
#   bash bench/run.sh [CONNECTIONS] [SECONDS]
#
# Measures, with the same load generator and in the same run: a bare axum server answering `success`
# (examples/bare_webhook.rs: the yardstick), then wxportal (safe-capable, fresh SQLite file, or
# BENCH_DATABASE_URL's database): GET /healthz, signed plaintext messages and safe-mode messages. Every
# webhook request is a new message with a signed query never sent before (the load generator says how
# many were fresh), and wxportal stores each before it answers. Reports requests/s, p50/p99 latency,
# wxportal's rates as a share of the bare server's, the server's CPU per message (from /proc), messages
# stored, the server's peak RSS and the size the write-ahead log reached. BENCH_BINARY=path measures
# another build of wxportal.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-64}
SECONDS_PER_RUN=${2:-10}
PORT=${BENCH_PORT:-18181}
BINARY=${BENCH_BINARY:-./target/release/wxportal}

cargo build --release --quiet --bin wxportal --example loadgen --example bare_webhook
out=$(mktemp -d)
server=
trap 'kill "$server" 2>/dev/null || true; rm -rf "$out"' EXIT

export WXPORTAL_TOKEN=benchToken1 WXPORTAL_APPID=wx0123456789abcdef
export WXPORTAL_ENCODING_AES_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG WXPORTAL_MESSAGE_MODE=compat
export WXPORTAL_BIND=127.0.0.1:$PORT WXPORTAL_DATABASE_URL="${BENCH_DATABASE_URL:-sqlite://$out/bench.db}"
export WXPORTAL_SQLITE_SYNCHRONOUS=${WXPORTAL_SQLITE_SYNCHRONOUS:-full}
wait_for() { for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done; }
rate() { awk '{for (i=1;i<=NF;i++) if ($(i+1)=="req/s") print $i}' <<<"$1"; }
. bench/lib.sh
run() {
    with_cpu 's/.*requests +([0-9]+).*/\1/' \
        ./target/release/examples/loadgen "$1" "127.0.0.1:$PORT/wechat" "$CONNECTIONS" "$SECONDS_PER_RUN"
}
echo "wxportal webhook benchmark: $CONNECTIONS connections, ${SECONDS_PER_RUN}s per run, $(nproc) cores, load generator on the same machine, database $(database_shown "SQLite, synchronous=$WXPORTAL_SQLITE_SYNCHRONOUS")"

./target/release/examples/bare_webhook "127.0.0.1:$PORT" &
server=$!
wait_for
bare_plain=$(run plain | sed "s/^/bare axum: /"); echo "$bare_plain"
bare_safe=$(run safe | sed "s/^/bare axum: /"); echo "$bare_safe"
kill "$server"; wait "$server" 2>/dev/null || true

"$BINARY" serve 2>"$out/server.log" &
server=$!
wait_for
health=$(run healthz); echo "$health"
plain=$(run plain); echo "$plain"
safe=$(run safe); echo "$safe"
awk -v bp="$(rate "$bare_plain")" -v bs="$(rate "$bare_safe")" -v h="$(rate "$health")" -v p="$(rate "$plain")" -v s="$(rate "$safe")" \
  'BEGIN { printf "wxportal against the bare server: plaintext %.2fx, safe mode %.2fx (of /healthz: %.0f%%, %.0f%%)\n", p/bp, s/bs, 100*p/h, 100*s/h }'
echo "peak RSS of the server: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$server/status)"
[ -z "${BENCH_DATABASE_URL:-}" ] && wal=$(du -m "$out/bench.db-wal" 2>/dev/null | cut -f1)
kill -TERM "$server"; wait "$server" || true
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    stored=$(psql "$BENCH_DATABASE_URL" -Atc 'select count(*) from messages')
else
    echo "write-ahead log file at the end: ${wal:-0} MB (it starts over once copied into the database)"
    stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from messages').fetchone()[0])" "$out/bench.db")
fi
echo "messages stored: $stored"
