#!/usr/bin/env bash
# Server CPU per webhook message, counted in instructions by callgrind (repeatable where timings are not).
#
#   bash bench/cpu.sh [plain|safe] [SECONDS] [CONNECTIONS]
#
# Starts a release `wxportal serve` under valgrind (a fresh SQLite file, or BENCH_DATABASE_URL's empty
# database), warms it up, zeroes the counters, sends unique signed messages over CONNECTIONS connections
# (one by default: each message then commits alone; with more, messages share commits as under load) for
# SECONDS, dumps the counters and prints instructions per message (the whole process: HTTP, signature,
# XML, storage and the commit; on PostgreSQL the database server's own work is not counted).
# BENCH_BINARY=path counts another build; RUST_LOG (warn by default) sets what the server logs.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SCENARIO=${1:-plain}
SECONDS_PER_RUN=${2:-20}
CONNECTIONS=${3:-1}
BINARY=${BENCH_BINARY:-./target/release/wxportal}
PORT=${BENCH_PORT:-18185}
cargo build --release --quiet --bin wxportal --example loadgen
out=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$out"' EXIT
export WXPORTAL_TOKEN=benchToken1 WXPORTAL_APPID=wx0123456789abcdef RUST_LOG=${RUST_LOG:-warn}
export WXPORTAL_ENCODING_AES_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG WXPORTAL_MESSAGE_MODE=compat
export WXPORTAL_BIND=127.0.0.1:$PORT WXPORTAL_DATABASE_URL="${BENCH_DATABASE_URL:-sqlite://$out/bench.db}"
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" "$BINARY" serve 2>"$out/valgrind.log" &
server=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
load() { ./target/release/examples/loadgen "$SCENARIO" "127.0.0.1:$PORT/wechat" "$1" "$2"; }
load 4 5 >/dev/null
callgrind_control -z "$server" >/dev/null
result=$(load "$CONNECTIONS" "$SECONDS_PER_RUN")
callgrind_control -d "$server" >/dev/null
sleep 1
requests=$(awk '{for (i=1;i<=NF;i++) if ($i=="requests") print $(i+1)}' <<<"$result")
instructions=$(awk '/^(summary|totals):/ && !seen[FILENAME]++ {s += $2} END {print s}' "$out"/callgrind.out.*)
echo "$result"
echo "database $(database_shown), $CONNECTIONS connection(s): $requests $SCENARIO messages, $instructions instructions, $((instructions / requests)) per message"
