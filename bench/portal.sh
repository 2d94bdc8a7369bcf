#!/usr/bin/env bash
# Benchmarks the web-authorization portal against a release build of `wxportal demo` on this machine.
#
#   bash bench/portal.sh [CONNECTIONS] [SECONDS]
#   BENCH_CPU=1 bash bench/portal.sh [CONNECTIONS] [SECONDS]   server instructions per authorization (callgrind)
#
# The demo's built-in simulator plays WeChat over real HTTP, in the same process, so a flow costs what it
# costs in production plus the simulator's share. Measures GET /healthz (the ceiling), whole
# authorizations (login → consent → allow → callback with code exchange and userinfo → /me) and /me
# renders for signed-in followers, and JS-SDK configs; reports operations/s, p50/p99 latency, the server's
# CPU per operation (from /proc, the simulator's share included) and its peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-16}
SECONDS_PER_RUN=${2:-10}
PORT=${BENCH_PORT:-18182}

cargo build --release --quiet --bin wxportal --example portal_load
# Every simulated follower comes from 127.0.0.1: the per-client limits would stop the load at once.
export WXPORTAL_LIMIT_AUTH_LOGIN=off WXPORTAL_LIMIT_AUTH_CALLBACK=off WXPORTAL_LIMIT_CODE_EXCHANGE=off \
    WXPORTAL_LIMIT_ADMIN_LOGIN=off WXPORTAL_LIMIT_JSSDK=off
source bench/demo.sh

. bench/lib.sh
# Each line ends with the server's CPU per operation (the simulator's share included: it runs in the
# server's process).
run() {
    with_cpu 's/.*\(([0-9]+) ops.*/\1/' \
        ./target/release/examples/portal_load "$1" "http://127.0.0.1:$PORT" "$CONNECTIONS" "$SECONDS_PER_RUN"
}
if [ -n "${BENCH_CPU:-}" ]; then
    # Server instructions per whole authorization (the simulator's share included), counted by callgrind.
    run flow >/dev/null
    callgrind_control -z "$server" >/dev/null
    result=$(./target/release/examples/portal_load flow "http://127.0.0.1:$PORT" "$CONNECTIONS" "$SECONDS_PER_RUN")
    callgrind_control -d "$server" >/dev/null
    sleep 1
    ops=$(grep -o '([0-9]* ops' <<<"$result" | tr -dc 0-9)
    instructions=$(awk '/^(summary|totals):/ && !seen[FILENAME]++ {s += $2} END {print s}' "$out"/callgrind.out.*)
    echo "$result"
    echo "$(database_shown), $CONNECTIONS connection(s): $ops whole authorizations, $instructions instructions, $((instructions / ops)) per authorization"
    exit 0
fi
echo "wxportal portal benchmark: $CONNECTIONS connections, ${SECONDS_PER_RUN}s per run, $(nproc) cores, load generator on the same machine, database $(database_shown)"
run healthz
run flow
run me
# wx.config signatures: the jsapi_ticket (and the token behind it) fetched once, then served from memory.
run "get:/jssdk/config?url=http%3A%2F%2F127.0.0.1%3A$PORT%2F%3Ffrom%3Dtimeline"
pid=$(pgrep -f "target/release/wxportal demo" | head -1)
echo "peak RSS of the server: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
counts="select (select count(*) from users), (select count(*) from oauth_states where outcome = 'done')"
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    read -r users done < <(psql "$BENCH_DATABASE_URL" -AtF ' ' -c "$counts")
else
    read -r users done < <(python3 -c "import sqlite3,sys; print(*sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone())" "$out/wxportal-demo.db" "$counts")
fi
echo "followers stored: $users, authorizations completed: $done"
