#!/usr/bin/env bash
# Benchmarks the admin area's follower list on 100,000 followers (or FOLLOWERS), against a release build
# of `wxportal demo` on this machine: on SQLite, or on BENCH_DATABASE_URL's PostgreSQL database.
#
#   bash bench/admin.sh [CONNECTIONS] [SECONDS] [FOLLOWERS]
#
# Seeds the demo's database with FOLLOWERS followers (Chinese and Latin nicknames, a third unsubscribed,
# half authorized), signs in with the password the demo prints, and loads the list's first page, a deep
# page (the cursor of the middle row, as the "next" links carry it), nickname searches (two characters,
# which the trigram index cannot serve; three characters; a name nobody has), an OpenID search and a
# filtered, re-sorted page. Reports pages/s, p50/p99 latency and the server's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
CONNECTIONS=${1:-2}
SECONDS_PER_RUN=${2:-10}
FOLLOWERS=${3:-100000}
PORT=${BENCH_PORT:-18183}

cargo build --release --quiet --bin wxportal --example portal_load
source bench/demo.sh
for _ in $(seq 50); do grep -q "password " "$out/server.log" && break; sleep 0.1; done
export WXPORTAL_ADMIN_PASSWORD=$(sed -n 's/.*password \([A-Za-z0-9]*\).*/\1/p' "$out/server.log" | head -1)

# Seed straight into the running demo's database (the server keeps serving): the same followers on both
# backends, drawn from the same 20 surnames and 20 given names.
surnames="王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
given="伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    psql "$BENCH_DATABASE_URL" -q >/dev/null <<SQL
SELECT setseed(0.7);
INSERT INTO users (openid, unionid, nickname, subscribed, first_seen_at, last_seen_at, scope, city)
SELECT 'o' || lpad(i::text, 27, '0'), 'u' || lpad(i::text, 27, '0'),
       CASE WHEN i % 3 = 0 THEN 'user_' || i ELSE
           substr('$surnames', 1 + floor(random() * 20)::int, 1) ||
           substr('$given', 1 + floor(random() * 20)::int, 1) ||
           substr('$given', 1 + floor(random() * 20)::int, 1) END,
       i % 3 <> 0, 1790000000 - floor(random() * 30000000)::bigint,
       1790000000 - floor(random() * 3000000)::bigint,
       CASE WHEN i % 2 = 1 THEN 'snsapi_userinfo' END, '深圳'
FROM generate_series(0, $FOLLOWERS - 1) AS i;
ANALYZE users;
SQL
    deep_cursor=$(psql "$BENCH_DATABASE_URL" -Atc "SELECT last_seen_at || '.' || openid FROM users ORDER BY last_seen_at DESC, openid DESC LIMIT 1 OFFSET $((FOLLOWERS / 2))")
else
    deep_cursor=$(python3 - "$out/wxportal-demo.db" "$FOLLOWERS" "$surnames" "$given" <<'PY'
import random, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
n, surnames, given = int(sys.argv[2]), sys.argv[3], sys.argv[4]
random.seed(7)
now = 1_790_000_000
rows = []
for i in range(n):
    nick = (random.choice(surnames) + random.choice(given) + random.choice(given)) if i % 3 else "user_%d" % i
    rows.append(("o%027d" % i, "u%027d" % i, nick, int(i % 3 != 0), now - random.randrange(30_000_000),
                 now - random.randrange(3_000_000), "snsapi_userinfo" if i % 2 else None, "深圳"))
db.executemany("INSERT INTO users (openid, unionid, nickname, subscribed, first_seen_at, last_seen_at, scope, city) VALUES (?,?,?,?,?,?,?,?)", rows)
db.commit()
db.execute("ANALYZE")
at, openid = db.execute("SELECT last_seen_at, openid FROM users ORDER BY last_seen_at DESC, openid DESC LIMIT 1 OFFSET ?", (n // 2,)).fetchone()
print("%d.%s" % (at, openid))
PY
)
fi

run() { ./target/release/examples/portal_load "admin:$1" "http://127.0.0.1:$PORT" "$CONNECTIONS" "$SECONDS_PER_RUN"; }
echo "wxportal admin benchmark: $FOLLOWERS followers, $CONNECTIONS connections, ${SECONDS_PER_RUN}s per run, $(nproc) cores, load generator on the same machine, database $(database_shown)"
run "/admin/users"
run "/admin/users?after=$deep_cursor"
run "/admin/users?q=%E7%8E%8B%E4%BC%9F"                   # 王伟: two characters
run "/admin/users?q=%E7%8E%8B%E4%BC%9F%E6%98%8E"          # 王伟明: three
run "/admin/users?q=%E6%B2%A1%E6%9C%89%E8%BF%99%E4%BA%BA" # 没有这人: nobody
run "/admin/users?q=o$(printf '%027d' 4242)"
run "/admin/users?subscribed=yes&authorized=userinfo&sort=first_seen_asc"
pid=$(pgrep -f "target/release/wxportal demo" | head -1)
echo "peak RSS of the server: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
