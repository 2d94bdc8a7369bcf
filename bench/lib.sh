# Shared by the benchmark scripts that read the server's database: `sql STATEMENT` runs it on
# BENCH_DATABASE_URL (PostgreSQL, through psql) or else on the SQLite file "$out/bench.db", and prints
# the rows as `a|b` lines.
sql() {
    if [ -n "${BENCH_DATABASE_URL:-}" ]; then
        psql "$BENCH_DATABASE_URL" -Atqc "$1"
    else
        python3 - "$out/bench.db" "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30)
rows = c.execute(sys.argv[2]).fetchall()
c.commit()
print("\n".join("|".join(map(str, r)) for r in rows))
PY
    fi
}

# `with_cpu COUNT_SED COMMAND…` runs a load generator that prints one line and prints that line with the
# CPU the server ($server) spent per operation during the run, from its clock ticks in /proc, and the
# bytes it wrote per operation (to files and sockets: the database's log and pages, the answers). COUNT_SED
# is the sed expression that takes the number of operations out of the line.
with_cpu() {
    local count=$1 before result after wrote_before wrote_after
    shift
    before=$(awk '{print $14 + $15}' "/proc/$server/stat")
    wrote_before=$(awk '/^wchar/ {print $2}' "/proc/$server/io")
    result=$("$@")
    after=$(awk '{print $14 + $15}' "/proc/$server/stat")
    wrote_after=$(awk '/^wchar/ {print $2}' "/proc/$server/io")
    awk -v r="$result" -v t=$((after - before)) -v w=$((wrote_after - wrote_before)) -v hz="$(getconf CLK_TCK)" \
        -v n="$(sed -E "$count" <<<"$result")" \
        'BEGIN { printf "%s   server CPU %.0f us/op, wrote %.1f KB/op\n", r, n ? 1e6 * t / hz / n : 0, n ? w / 1024 / n : 0 }'
}

# The database a benchmark runs on, for its heading: PostgreSQL's host, port and name (never the role or
# its password), or else $1 (SQLite by default).
database_shown() {
    if [ -n "${BENCH_DATABASE_URL:-}" ]; then
        printf 'PostgreSQL at %s' "$(sed -E 's#^[a-z]+://([^@/]*@)?##; s#\?.*##' <<<"$BENCH_DATABASE_URL")"
    else
        printf '%s' "${1:-SQLite}"
    fi
}

# Fresh PostgreSQL databases for the runs of one script, on WXPORTAL_TEST_POSTGRES_URL's server (as the
# tests use): `fresh_pg NAME` creates an empty one and sets $url to it; `drop_fresh_pg`, from the script's
# EXIT trap, drops every one made. Call fresh_pg directly, never in `$(…)`: a subshell would create the
# database without remembering it, and it would outlive the run.
pg_admin=${WXPORTAL_TEST_POSTGRES_URL:-postgres://wxportal:wxportal@127.0.0.1:5432/postgres}
pg_made=()
fresh_pg() {
    local name="wxbench_$1_$$"
    psql "$pg_admin" -qc "CREATE DATABASE $name" >/dev/null
    pg_made+=("$name")
    url="${pg_admin%/*}/$name"
}
drop_fresh_pg() {
    local name
    for name in "${pg_made[@]:-}"; do
        [ -n "$name" ] && psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
