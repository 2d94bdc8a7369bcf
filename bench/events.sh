#!/usr/bin/env bash
# Event webhooks out and the HTTP API, in one run on this machine (docs/events.md, docs/api.md):
#  - API reads (GET /api/v1/followers, 50 a page, over FOLLOWERS followers) per second beside /healthz;
#  - the webhook at WEBHOOK_RATE messages/s alone, then with every message's event delivered to an
#    endpoint (a receiver that verifies each signature): its p99 beside the first, and events delivered
#    per second meanwhile;
#  - a backlog of as many deliveries to a second endpoint, drained with no webhook load: events
#    delivered per second at most, and the server's CPU per event.
#
#   bash bench/events.sh [SECONDS] [FOLLOWERS]
#
# SQLite by default; BENCH_DATABASE_URL=postgres://… runs it on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
FOLLOWERS=${2:-100000}
PORT=18301
RECEIVER_PORT=18302
CONNECTIONS=16
WEBHOOK_RATE=${WEBHOOK_RATE:-1000}

cargo build --release --quiet --bin wxportal --example loadgen --example event_receiver
out=$(mktemp -d)
server=""
receiver=""
trap 'kill $server $receiver 2>/dev/null || true; rm -rf "$out"' EXIT

export WXPORTAL_TOKEN=benchToken1 WXPORTAL_APPID=wx0123456789abcdef WXPORTAL_MESSAGE_MODE=plain
export WXPORTAL_BIND=127.0.0.1:$PORT WXPORTAL_PUBLIC_URL=http://127.0.0.1:$PORT
export WXPORTAL_DATABASE_URL="${BENCH_DATABASE_URL:-sqlite://$out/bench.db}"
export WXPORTAL_LIMIT_API=off RUST_LOG=warn
base="http://127.0.0.1:$PORT"

./target/release/wxportal serve 2>"$out/server.log" &
server=$!
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done

. bench/lib.sh
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $FOLLOWERS)
     INSERT INTO users (openid, nickname, subscribed, first_seen_at, last_seen_at)
     SELECT 'oApiBench' || i, 'benchfan' || i, TRUE, i, i FROM n" >/dev/null

cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
ticks=$(getconf CLK_TCK)
delivered() { sql "SELECT count(*) FROM deliveries WHERE state = 'done'"; }
pending() { sql "SELECT count(*) FROM deliveries WHERE state IN ('queued', 'sending')"; }
load() { ./target/release/examples/loadgen "$@"; }

backend=SQLite; [ -n "${BENCH_DATABASE_URL:-}" ] && backend=PostgreSQL
echo "events and the API, ${SECONDS_PER_RUN}s a window, $(nproc) cores shared with the load generator, database $backend"
echo "== API reads beside /healthz ($CONNECTIONS connections, $FOLLOWERS followers)"
LOADGEN_BEARER=$(./target/release/wxportal token create bench --scopes followers:read | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
export LOADGEN_BEARER
load healthz "127.0.0.1:$PORT" $CONNECTIONS "$SECONDS_PER_RUN"
c0=$(cpu)
api=$(load get "127.0.0.1:$PORT/api/v1/followers?limit=50" $CONNECTIONS "$SECONDS_PER_RUN")
c1=$(cpu)
echo "$api"
echo "$api" | awk -v c=$((c1 - c0)) -v hz="$ticks" '{ for (i = 1; i <= NF; i++) if ($i == "requests") n = $(i + 1) } END { printf "server CPU %.0f µs per API page of 50\n", 1e6 * c / hz / n }'

echo "== webhook alone at $WEBHOOK_RATE messages/s"
LOADGEN_RATE=$WEBHOOK_RATE load plain "127.0.0.1:$PORT/wechat" $CONNECTIONS "$SECONDS_PER_RUN"

secret=$(./target/release/wxportal endpoint add "http://127.0.0.1:$RECEIVER_PORT/events" --events message | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
./target/release/examples/event_receiver $RECEIVER_PORT "$secret" 2>"$out/receiver.log" &
receiver=$!
sleep 2.5   # the server rereads its endpoints every 2 s

echo "== webhook at $WEBHOOK_RATE messages/s, each message's event delivered meanwhile"
d0=$(delivered); t0=$(date +%s.%N)
LOADGEN_RATE=$WEBHOOK_RATE load plain "127.0.0.1:$PORT/wechat" $CONNECTIONS "$SECONDS_PER_RUN"
d1=$(delivered); t1=$(date +%s.%N)
awk -v d=$((d1 - d0)) -v t="$(echo "$t1 - $t0" | bc)" -v p="$(pending)" 'BEGIN { printf "events delivered meanwhile: %d in %.1f s = %.0f/s, %d waiting\n", d, t, d / t, p }'

echo "== a backlog of every event so far, drained with no webhook load"
# A second endpoint (the same receiver and secret), switched off while the events are queued for it.
./target/release/wxportal endpoint add "http://127.0.0.1:$RECEIVER_PORT/again" --events message >/dev/null
second=$(sql "SELECT max(id) FROM endpoints")
./target/release/wxportal endpoint disable "$second" >/dev/null
sql "UPDATE endpoints SET secret = (SELECT secret FROM endpoints WHERE id < $second ORDER BY id LIMIT 1) WHERE id = $second" >/dev/null
sql "INSERT INTO deliveries (event_id, endpoint_id, openid, due_at, give_up_at, created_at)
     SELECT id, $second, openid, created_at, created_at + 86400, created_at FROM events" >/dev/null
echo "queued: $(pending)"
d0=$(delivered); c0=$(cpu); t0=$(date +%s.%N)
./target/release/wxportal endpoint enable "$second" >/dev/null
for _ in $(seq 600); do [ "$(pending)" = 0 ] && break; sleep 0.2; done
d1=$(delivered); c1=$(cpu); t1=$(date +%s.%N)
awk -v d=$((d1 - d0)) -v t="$(echo "$t1 - $t0" | bc)" -v c=$((c1 - c0)) -v hz="$ticks" \
    'BEGIN { printf "events delivered: %d in %.1f s = %.0f/s, server CPU %.0f µs per event\n", d, t, d / (t > 0 ? t : 1), 1e6 * c / hz / (d > 0 ? d : 1) }'
echo "events stored: $(sql "SELECT count(*) FROM events"), deliveries done: $(delivered), failed: $(sql "SELECT count(*) FROM deliveries WHERE state = 'failed'")"
kill $receiver; wait $receiver 2>/dev/null || true; receiver=""
echo "receiver: $(tail -n 1 "$out/receiver.log")"
echo "peak RSS of the server: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$server/status)"
