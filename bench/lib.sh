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
