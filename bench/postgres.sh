#!/usr/bin/env bash
# PostgreSQL's message rate against SQLite's, and two instances against one, in one run.
#
#   bash bench/postgres.sh [CONNECTIONS] [SECONDS] [QUOTA]
#
# 1. Unique signed plaintext messages/s into SQLite (synchronous=full) and into one instance on
#    PostgreSQL, each with the server's CPU per message (/proc ticks) and, on PostgreSQL, the database
#    server's too.
# 2. One instance, then two on one database, each instance held to QUOTA of a core (default 0.3) by a
#    cgroup of its own (cpu.cfs_quota_us): on this 2-core machine that leaves the database and the load
#    generator cores of their own, as when instances run on machines apart from the database's. Needs root
#    and cgroup v1's cpu controller at /sys/fs/cgroup/cpu (skipped, with a word, without them).
#
# Needs a local PostgreSQL and a role that may create databases (`bash .ci/postgres` makes both);
# WXPORTAL_TEST_POSTGRES_URL names it as the tests do. Each database is fresh, and dropped after.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-64}
SECONDS_PER_RUN=${2:-10}
QUOTA=${3:-0.3}
BINARY=${BENCH_BINARY:-./target/release/wxportal}
out=$(mktemp -d)
. bench/lib.sh
servers=()
groups=()
cleanup() {
    kill "${servers[@]:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    for group in "${groups[@]:-}"; do [ -n "$group" ] && rmdir "$group" 2>/dev/null || true; done
    drop_fresh_pg
    rm -rf "$out"
}
trap cleanup EXIT
[ -n "${BENCH_BINARY:-}" ] || cargo build --release --quiet --bin wxportal
cargo build --release --quiet --example loadgen

export WXPORTAL_TOKEN=benchToken1 WXPORTAL_APPID=wx0123456789abcdef RUST_LOG=warn
export WXPORTAL_ENCODING_AES_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG WXPORTAL_MESSAGE_MODE=compat
export WXPORTAL_SQLITE_SYNCHRONOUS=full

# start PORT DATABASE_URL [CGROUP]: a server, in the cgroup if given; its pid is the last of $servers.
start() {
    WXPORTAL_BIND=127.0.0.1:$1 WXPORTAL_DATABASE_URL=$2 "$BINARY" serve 2>>"$out/server.log" &
    local pid=$!
    servers+=("$pid")
    if [ -n "${3:-}" ]; then echo "$pid" >"$3/cgroup.procs"; fi
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done
    echo "the server on :$1 did not start" >&2
    exit 1
}
stop_all() {
    kill "${servers[@]}" 2>/dev/null || true
    wait "${servers[@]}" 2>/dev/null || true
    servers=()
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
postgres_ticks() {
    local sum=0
    for pid in $(pgrep -x postgres); do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
    echo "$sum"
}
field() { awk -v k="$2" '{for (i=1;i<=NF;i++) if ($(i+1)==k) print $i}' <<<"$1"; }
requests() { awk '{for (i=1;i<=NF;i++) if ($i=="requests") print $(i+1)}' <<<"$1"; }
hz=$(getconf CLK_TCK)

# load PORTS...: plaintext load on each port (CONNECTIONS split among them); prints each generator's line
# and leaves the summed rate in $rate.
load() {
    local per=$((CONNECTIONS / $#)) port generators=()
    for port in "$@"; do
        ./target/release/examples/loadgen plain "127.0.0.1:$port/wechat" "$per" "$SECONDS_PER_RUN" >"$out/load.$port" &
        generators+=($!)
    done
    wait "${generators[@]}"
    rate=0
    for port in "$@"; do
        echo "  :$port $(cat "$out/load.$port")"
        rate=$(awk -v a="$rate" -v b="$(field "$(cat "$out/load.$port")" req/s)" 'BEGIN {print a + b}')
    done
}

echo "wxportal on PostgreSQL: $CONNECTIONS connections, ${SECONDS_PER_RUN}s per run, $(nproc) cores, $("$BINARY" --version 2>/dev/null || echo wxportal)"
echo "== 1. one instance: SQLite (synchronous=full), then PostgreSQL"
for backend in sqlite postgres; do
    if [ $backend = sqlite ]; then url="sqlite://$out/bench.db"; else fresh_pg one; fi
    start 18301 "$url"
    ./target/release/examples/loadgen plain 127.0.0.1:18301/wechat 8 2 >/dev/null
    before=$(ticks "${servers[0]}"); pg_before=$(postgres_ticks)
    line=$(./target/release/examples/loadgen plain 127.0.0.1:18301/wechat "$CONNECTIONS" "$SECONDS_PER_RUN")
    spent=$(($(ticks "${servers[0]}") - before)); pg_spent=$(($(postgres_ticks) - pg_before))
    n=$(requests "$line")
    echo "$backend: $line"
    awk -v s="$spent" -v p="$pg_spent" -v n="$n" -v hz="$hz" -v b=$backend 'BEGIN {
        printf "  server CPU %.0f µs/message", 1e6 * s / hz / n
        if (b == "postgres") printf ", PostgreSQL CPU %.0f µs/message", 1e6 * p / hz / n
        printf "\n" }'
    eval "rate_$backend=$(field "$line" req/s)"
    stop_all
done
awk -v s="$rate_sqlite" -v p="$rate_postgres" 'BEGIN {printf "PostgreSQL / SQLite = %.2f\n", p / s}'

echo "== 2. one instance, then two on one database, each held to $QUOTA of a core"
root=/sys/fs/cgroup/cpu
if ! mkdir "$root/wxbench_a_$$" 2>/dev/null; then
    echo "skipped: no writable cgroup cpu controller at $root (run as root on cgroup v1)"
    exit 0
fi
mkdir "$root/wxbench_b_$$"
groups=("$root/wxbench_a_$$" "$root/wxbench_b_$$")
for group in "${groups[@]}"; do
    period=$(cat "$group/cpu.cfs_period_us")
    awk -v q="$QUOTA" -v p="$period" 'BEGIN {printf "%d\n", q * p}' >"$group/cpu.cfs_quota_us"
done
fresh_pg scale
start 18311 "$url" "${groups[0]}"
load 18311
one=$rate
start 18312 "$url" "${groups[1]}"
load 18311 18312
two=$rate
stop_all
echo "stored: $(psql "$url" -Atc 'select count(*) from messages') messages, $(psql "$url" -Atc 'select count(distinct dedup_key) from messages') distinct"
awk -v a="$one" -v b="$two" 'BEGIN {printf "two instances / one = %.0f / %.0f = %.2f\n", b, a, b / a}'
