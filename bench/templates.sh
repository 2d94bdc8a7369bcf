#!/usr/bin/env bash
# A template message to every one of FOLLOWERS followers, against the stand-in WeChat on its own port:
# the rate the campaign reaches beside the configured WXPORTAL_TEMPLATE_RATE, the server's CPU per
# message sent, its peak memory, and the webhook's latency while the campaign runs, beside the same
# webhook load with no campaign (one run, same machine).
#
#   bash bench/templates.sh [FOLLOWERS] [RATE] [SECONDS]
#
# After the measured windows the rest of the campaign is cancelled; BENCH_FINISH=1 sends it all.
# SQLite by default; BENCH_DATABASE_URL=postgres://… runs it on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
FOLLOWERS=${1:-100000}
RATE=${2:-1000}
SECONDS_PER_RUN=${3:-15}
PORT=18201
MOCK_PORT=18202
CONNECTIONS=16

cargo build --release --quiet --bin wxportal --example loadgen --example mock_wechat
out=$(mktemp -d)
server=""
mock=""
trap 'kill $server $mock 2>/dev/null || true; rm -rf "$out"' EXIT

export WXPORTAL_TOKEN=benchToken1 WXPORTAL_APPID=wx0123456789abcdef
export WXPORTAL_APPSECRET=0123456789abcdef0123456789abcdef WXPORTAL_MESSAGE_MODE=plain
export WXPORTAL_BIND=127.0.0.1:$PORT WXPORTAL_PUBLIC_URL=http://127.0.0.1:$PORT
export WXPORTAL_DATABASE_URL="${BENCH_DATABASE_URL:-sqlite://$out/bench.db}"
export WXPORTAL_WECHAT_API_URL=http://127.0.0.1:$MOCK_PORT WXPORTAL_TEMPLATE_RATE=$RATE
export WXPORTAL_LIMIT_ADMIN_LOGIN=off RUST_LOG=warn

./target/release/examples/mock_wechat "$WXPORTAL_APPID" "$WXPORTAL_APPSECRET" $MOCK_PORT 2>"$out/mock.log" &
mock=$!
./target/release/wxportal serve 2>"$out/server.log" &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

. bench/lib.sh
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $FOLLOWERS)
     INSERT INTO users (openid, nickname, subscribed, first_seen_at, last_seen_at)
     SELECT 'oBench' || i, 'benchfan' || i, TRUE, 1, 1 FROM n" >/dev/null
printf 'bench-password-1234\n' | ./target/release/wxportal admin create bench >/dev/null

# Sign in as an operator would, with the page's CSRF token.
jar="$out/cookies"
base="http://127.0.0.1:$PORT"
csrf_of() { grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }
token=$(curl -s -c "$jar" -b "$jar" "$base/admin/login" | csrf_of)
curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$token" -d name=bench \
    --data-urlencode password=bench-password-1234 -d next=/admin "$base/admin/login"
token=$(curl -s -c "$jar" -b "$jar" "$base/admin/templates" | csrf_of)
curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$token" "$base/admin/templates/refresh"
template=$(sql "SELECT template_id FROM templates ORDER BY title LIMIT 1")

# The webhook at a steady WEBHOOK_RATE messages/s (default 1000, far above an account's usual traffic).
WEBHOOK_RATE=${WEBHOOK_RATE:-1000}
webhook() {
    LOADGEN_RATE=$WEBHOOK_RATE ./target/release/examples/loadgen plain "127.0.0.1:$PORT/wechat" $CONNECTIONS "$SECONDS_PER_RUN"
}
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
sent() { sql "SELECT count(*) FROM outbox WHERE kind = 'template' AND state = 'done'"; }
ticks=$(getconf CLK_TCK)

echo "template messages to $FOLLOWERS followers at WXPORTAL_TEMPLATE_RATE=$RATE/s, $(nproc) cores, database $(database_shown)"
echo "== webhook alone ($WEBHOOK_RATE messages/s over $CONNECTIONS connections)"
webhook

started=$(date +%s.%N)
# To the seeded followers only (the follower list's search), not the senders the webhook load makes.
curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$token" -d action=send -d audience=filters \
    -d q=benchfan --data-urlencode "value.first=双十二特卖" "$base/admin/templates/$template"
echo "campaign queued in $(echo "$(date +%s.%N) - $started" | bc | cut -c1-5) s: $(sql "SELECT total FROM campaigns") followers"
sleep 1

window() {
    local s0 c0 t0 s1 c1 t1
    s0=$(sent); c0=$(cpu); t0=$(date +%s.%N)
    "$@"
    s1=$(sent); c1=$(cpu); t1=$(date +%s.%N)
    awk -v s=$((s1 - s0)) -v c=$((c1 - c0)) -v t="$(echo "$t1 - $t0" | bc)" -v hz="$ticks" -v rate="$RATE" \
        'BEGIN { printf "campaign: %d sent in %.1f s = %.0f messages/s (%.0f%% of the configured rate), server CPU %.0f µs per message (webhook included, if any)\n", s, t, s / t, 100 * s / t / rate, 1e6 * c / hz / (s > 0 ? s : 1) }'
}
echo "== the campaign alone for ${SECONDS_PER_RUN}s"
window sleep "$SECONDS_PER_RUN"
echo "== webhook while the campaign sends"
window webhook

# BENCH_FINISH=1 waits for the whole campaign; by default the rest is cancelled from its page.
if [ -n "${BENCH_FINISH:-}" ]; then
    for _ in $(seq 3600); do
        [ "$(sql "SELECT state FROM campaigns")" = done ] && break
        sleep 1
    done
else
    campaign=$(sql "SELECT id FROM campaigns")
    curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$token" "$base/admin/campaigns/$campaign/cancel"
fi
finished=$(date +%s.%N)
echo "campaign $(sql "SELECT state FROM campaigns"): $(sent) sent, $(sql "SELECT count(*) FROM outbox WHERE kind = 'template' AND state = 'failed'") failed, $(sql "SELECT count(*) FROM outbox WHERE kind = 'template' AND state = 'cancelled'") cancelled, after $(echo "$finished - $started" | bc | cut -c1-6) s"
sleep 1.5
echo "WeChat received: $(tail -n 1 "$out/mock.log")"
echo "peak RSS of the server: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$server/status)"
