# Sourced by the benchmark scripts: starts a release `wxportal demo` (or BENCH_BINARY) on $PORT in a fresh
# directory ($out, removed on exit) and waits until it answers. Sets $out and $server. With BENCH_DATABASE_URL set, the demo
# keeps its data there (a PostgreSQL database, say) instead of a SQLite file in $out.
out=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$out"' EXIT
root=$PWD
binary=$(realpath "${BENCH_BINARY:-$root/target/release/wxportal}")
# BENCH_CPU=1: under callgrind, to count instructions.
wrap=()
if [ -n "${BENCH_CPU:-}" ]; then wrap=(valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out"); fi
(cd "$out" && WXPORTAL_BIND=127.0.0.1:$PORT RUST_LOG=warn exec "${wrap[@]}" "$binary" demo ${BENCH_DATABASE_URL:+--database-url "$BENCH_DATABASE_URL"} >"$out/server.log" 2>&1) &
server=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
