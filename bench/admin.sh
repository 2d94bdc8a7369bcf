#!/usr/bin/env bash
# Benchmarks the admin area's follower list on 100,000 followers, against a release build of
# `wxportal demo` on this machine.
#
#   bash bench/admin.sh [CONNECTIONS] [SECONDS] [FOLLOWERS]
#
# Seeds the demo's database with FOLLOWERS followers (Chinese and Latin nicknames, a third unsubscribed,
# half authorized), signs in with the password the demo prints, and loads the list's first page, a deep
# page (the cursor of the middle row, as the "next" links carry it), a nickname search, an OpenID search
# and a filtered, re-sorted page. Reports pages/s, p50/p99 latency and the server's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-2}
SECONDS_PER_RUN=${2:-10}
FOLLOWERS=${3:-100000}
PORT=${BENCH_PORT:-18183}

cargo build --release --quiet --bin wxportal --example portal_load
source bench/demo.sh
for _ in $(seq 50); do grep -q "password " "$out/server.log" && break; sleep 0.1; done
export WXPORTAL_ADMIN_PASSWORD=$(sed -n 's/.*password \([A-Za-z0-9]*\).*/\1/p' "$out/server.log" | head -1)

# Seed straight into the running demo's database (WAL: the server keeps serving).
read -r deep_cursor nickname_part < <(python3 - "$out/wxportal-demo.db" "$FOLLOWERS" <<'PY'
import random, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
n = int(sys.argv[2])
random.seed(7)
surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
given = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"
now = 1_790_000_000
rows = []
for i in range(n):
    nick = (random.choice(surnames) + random.choice(given) + random.choice(given)) if i % 3 else "user_%d" % i
    rows.append(("o%027d" % i, "u%027d" % i, nick, int(i % 3 != 0), now - random.randrange(30_000_000),
                 now - random.randrange(3_000_000), "snsapi_userinfo" if i % 2 else None, "深圳"))
db.executemany("INSERT INTO users (openid, unionid, nickname, subscribed, first_seen_at, last_seen_at, scope, city) VALUES (?,?,?,?,?,?,?,?)", rows)
db.commit()
at, openid = db.execute("SELECT last_seen_at, openid FROM users ORDER BY last_seen_at DESC, openid DESC LIMIT 1 OFFSET ?", (n // 2,)).fetchone()
print("%d.%s %s" % (at, openid, "%E7%8E%8B%E4%BC%9F"))  # 王伟
PY
)

run() { ./target/release/examples/portal_load "admin:$1" "http://127.0.0.1:$PORT" "$CONNECTIONS" "$SECONDS_PER_RUN"; }
echo "wxportal admin benchmark: $FOLLOWERS followers, $CONNECTIONS connections, ${SECONDS_PER_RUN}s per run, $(nproc) cores, load generator on the same machine"
run "/admin/users"
run "/admin/users?after=$deep_cursor"
run "/admin/users?q=$nickname_part"
run "/admin/users?q=o$(printf '%027d' 4242)"
run "/admin/users?subscribed=yes&authorized=userinfo&sort=first_seen_asc"
pid=$(pgrep -f "target/release/wxportal demo" | head -1)
echo "peak RSS of the server: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
