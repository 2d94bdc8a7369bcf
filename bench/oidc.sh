#!/usr/bin/env bash
# Benchmarks the OpenID Connect provider against a release build of `wxportal demo` on this machine.
#
#   bash bench/oidc.sh [CONNECTIONS] [SECONDS]        throughput, beside GET /healthz in the same run
#   BENCH_CPU=1 bash bench/oidc.sh 1 [SECONDS]        server instructions per whole sign-in (callgrind)
#
# An app is registered with `wxportal client create` on the demo's database; the load generator plays the
# app and its followers (each signed in to the portal once, through the simulated WeChat). Measured: whole
# sign-ins of a follower already signed in to the portal (authorize → code → token → userinfo, the
# one-tap case inside WeChat: no WeChat call), the token endpoint alone (refresh grants, each rotating the
# token: a write), userinfo alone (a read), and /healthz as the ceiling.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-16}
SECONDS_PER_RUN=${2:-10}
PORT=${BENCH_PORT:-18186}

cargo build --release --quiet --bin wxportal --example portal_load
export WXPORTAL_LIMIT_AUTH_LOGIN=off WXPORTAL_LIMIT_AUTH_CALLBACK=off WXPORTAL_LIMIT_CODE_EXCHANGE=off \
    WXPORTAL_LIMIT_ADMIN_LOGIN=off WXPORTAL_LIMIT_JSSDK=off
out=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$out"' EXIT
root=$PWD
wrap=()
if [ -n "${BENCH_CPU:-}" ]; then wrap=(valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out"); fi
(cd "$out" && WXPORTAL_BIND=127.0.0.1:$PORT RUST_LOG=warn exec "${wrap[@]}" "$root/target/release/wxportal" demo >"$out/server.log" 2>&1) &
server=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
registered=$(cd "$out" && WXPORTAL_DATABASE_URL=sqlite://wxportal-demo.db "$root/target/release/wxportal" client create bench --redirect-uri http://127.0.0.1/cb)
BENCH_CLIENT_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$registered")
BENCH_CLIENT_SECRET=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$registered")
export BENCH_CLIENT_ID BENCH_CLIENT_SECRET
run() { ./target/release/examples/portal_load "$1" "http://127.0.0.1:$PORT" "$CONNECTIONS" "$SECONDS_PER_RUN"; }

if [ -n "${BENCH_CPU:-}" ]; then
    run oidc-signin >/dev/null
    callgrind_control -z "$server" >/dev/null
    result=$(run oidc-signin)
    callgrind_control -d "$server" >/dev/null
    sleep 1
    ops=$(awk '{for (i=1;i<=NF;i++) if ($i=="(") print $(i+1)}' <<<"$result" | head -1)
    ops=$(grep -o '([0-9]* ops' <<<"$result" | tr -dc 0-9)
    instructions=$(awk '/^(summary|totals):/ && !seen[FILENAME]++ {s += $2} END {print s}' "$out"/callgrind.out.*)
    echo "$result"
    echo "SQLite: $ops whole sign-ins (authorize, token, userinfo), $instructions instructions, $((instructions / ops)) per sign-in"
    exit 0
fi

echo "wxportal OpenID Connect benchmark: $CONNECTIONS connections, ${SECONDS_PER_RUN}s per run, $(nproc) cores, load generator on the same machine, SQLite"
run healthz
run oidc-signin
run oidc-token
run oidc-userinfo
echo "peak RSS of the server: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$server/status 2>/dev/null || echo '?')"
