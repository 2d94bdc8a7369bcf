#!/usr/bin/env bash
# SQLite and PostgreSQL side by side, in one run: webhook messages/s (plaintext and safe mode) on SQLite,
# on PostgreSQL with one instance and with two instances sharing the database, then whole sign-ins/s
# (the demo's simulator playing WeChat) on each backend and on two PostgreSQL instances.
#
#   bash bench/backends.sh [CONNECTIONS] [SECONDS]
#
# Needs a local PostgreSQL and a role that may create databases (`bash .ci/postgres` makes both);
# WXPORTAL_TEST_POSTGRES_URL names it as the tests do. Each run gets a fresh database, dropped after.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-64}
SECONDS_PER_RUN=${2:-10}
. bench/lib.sh
cleanup() {
    kill "${servers[@]:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    drop_fresh_pg
}
servers=()
trap cleanup EXIT
cargo build --release --quiet --bin wxportal --example loadgen --example portal_load
webhook() { grep -E "POST /wechat|peak RSS|stored"; }

echo "== webhook, SQLite (synchronous=full), one instance"
bash bench/run.sh "$CONNECTIONS" "$SECONDS_PER_RUN" | webhook
echo "== webhook, PostgreSQL, one instance"
fresh_pg w1
BENCH_DATABASE_URL=$url bash bench/run.sh "$CONNECTIONS" "$SECONDS_PER_RUN" | webhook

echo "== webhook, PostgreSQL, two instances on one database, half the connections each"
fresh_pg w2
export WXPORTAL_TOKEN=benchToken1 WXPORTAL_APPID=wx0123456789abcdef WXPORTAL_DATABASE_URL=$url
export WXPORTAL_ENCODING_AES_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG WXPORTAL_MESSAGE_MODE=compat
for port in 18191 18192; do
    WXPORTAL_BIND=127.0.0.1:$port RUST_LOG=warn ./target/release/wxportal serve 2>/dev/null &
    servers+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done
for scenario in plain safe; do
    for port in 18191 18192; do
        ./target/release/examples/loadgen "$scenario" "127.0.0.1:$port/wechat" $((CONNECTIONS / 2)) "$SECONDS_PER_RUN" >"/tmp/wxbench.$$.$port" &
    done
    wait %?loadgen 2>/dev/null || true
    while pgrep -f "examples/loadgen $scenario" >/dev/null; do sleep 0.2; done
    for port in 18191 18192; do echo "  instance :$port $(cat "/tmp/wxbench.$$.$port")"; done
    awk '{for (i=1;i<=NF;i++) if ($(i+1)=="req/s") s+=$i} END {printf "%s, both instances: %.0f req/s\n", "'$scenario'", s}' /tmp/wxbench.$$.1819[12]
    rm -f /tmp/wxbench.$$.1819[12]
done
echo "stored: $(psql "$url" -Atc 'select count(*) from messages') messages"
kill "${servers[@]}"; wait "${servers[@]}" 2>/dev/null || true; servers=()
unset WXPORTAL_DATABASE_URL

echo "== sign-ins (whole authorization: login, consent, callback with code exchange and userinfo, /me), SQLite"
bash bench/portal.sh "$CONNECTIONS" "$SECONDS_PER_RUN" | grep -E "^flow|^me|followers"
echo "== sign-ins, PostgreSQL"
fresh_pg p1
BENCH_DATABASE_URL=$url bash bench/portal.sh "$CONNECTIONS" "$SECONDS_PER_RUN" | grep -E "^flow|^me|followers"

echo "== sign-ins, PostgreSQL, two demo instances on one database (each with its simulator), half the connections each"
fresh_pg p2
export WXPORTAL_LIMIT_AUTH_LOGIN=off WXPORTAL_LIMIT_AUTH_CALLBACK=off WXPORTAL_LIMIT_CODE_EXCHANGE=off \
    WXPORTAL_LIMIT_ADMIN_LOGIN=off WXPORTAL_LIMIT_JSSDK=off
demo_dir=$(mktemp -d)
for port in 18201 18202; do
    (cd "$demo_dir" && WXPORTAL_BIND=127.0.0.1:$port RUST_LOG=warn exec "$OLDPWD/target/release/wxportal" demo --database-url "$url" >/dev/null 2>&1) &
    servers+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
for port in 18201 18202; do
    ./target/release/examples/portal_load flow "http://127.0.0.1:$port" $((CONNECTIONS / 2)) "$SECONDS_PER_RUN" >"/tmp/wxbench.$$.$port" &
done
while pgrep -f "examples/portal_load flow" >/dev/null; do sleep 0.2; done
for port in 18201 18202; do echo "  instance :$port $(cat "/tmp/wxbench.$$.$port")"; done
awk '{for (i=1;i<=NF;i++) if ($(i+1)=="ops/s") s+=$i} END {printf "flow, both instances: %.0f sign-ins/s\n", s}' /tmp/wxbench.$$.1820[12]
rm -rf /tmp/wxbench.$$.1820[12] "$demo_dir"
