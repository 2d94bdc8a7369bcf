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
# CPU the server ($server) spent per operation during the run, from its clock ticks in /proc. COUNT_SED is
# the sed expression that takes the number of operations out of the line.
with_cpu() {
    local count=$1 before result after
    shift
    before=$(awk '{print $14 + $15}' "/proc/$server/stat")
    result=$("$@")
    after=$(awk '{print $14 + $15}' "/proc/$server/stat")
    awk -v r="$result" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$(sed -E "$count" <<<"$result")" \
        'BEGIN { printf "%s   server CPU %.0f us/op\n", r, n ? 1e6 * t / hz / n : 0 }'
}
