#!/usr/bin/env bash
# shop-app on a PostgreSQL primary and a streaming replica (pg_basebackup -R): catalog reads go to
# the replica, carts to the primary; read-your-writes under replication lag (replay paused with
# pg_wal_replay_pause()); the catalog the same as the SQLite file's; a replica that goes down
# (reads fall back to the primary, no failed request), a primary that goes down (cart writes 503
# with the reason, catalog reads go on), reconnects counted.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/pglib.sh"
APP=$(bin shop-app)
[ -x "$APP" ] || bail "shop-app is not built"
start_postgres pg || skip_all "$PG_SKIP"
PRIMARY=$PG_URL
plan 29

# --- the catalog: COPY from the same generator --------------------------------------------
"$APP" --generate 800 --seed 5 --db "$PRIMARY" >"$T/gen.log" 2>&1
ok $? "--generate into PostgreSQL"
"$APP" --generate 800 --seed 5 --db "$T/cat.db" >>"$T/gen.log" 2>&1
q="SELECT id, category_id, name, price_cents, stock, updated_at, description FROM products ORDER BY id"
if command -v sqlite3 >/dev/null 2>&1; then
    a=$(sqlite3 -separator '|' "$T/cat.db" "$q" | md5sum)
    b=$(psql -AtqF '|' -c "$q" "$PRIMARY" | md5sum)
    is "$b" "$a" "the same rows as the SQLite catalog of the same seed"
else
    skip "no sqlite3 client to compare with"
fi
"$APP" --generate 800 --seed 5 --db "$PRIMARY" >>"$T/gen.log" 2>&1
is "$(psql -AtqF '|' -c "$q" "$PRIMARY" | md5sum)" "$b" "generated again: the same rows"

start_pg_replica rep pg || bail "the replica did not start"
REPLICA=$PG_URL
is "$(pg_sql "$REPLICA" "SELECT pg_is_in_recovery()")" t "the replica is a standby"
wait_for 20 sh -c "[ \"\$(psql -Atqc 'SELECT count(*) FROM pg_stat_replication' '$PRIMARY')\" = 1 ]"
ok $? "the replica streams from the primary"

cat >"$T/app.yaml" <<EOF
listen: 127.0.0.1:$(free_port)
threads: 2
cdn_host: ""
db:
  primary: "$PRIMARY"
  replica: "$REPLICA"
  read_your_writes: 1500ms
  pool: 2
  timeout: 2s
EOF
port=$(sed -n 's/^listen: 127.0.0.1://p' "$T/app.yaml")
U=http://127.0.0.1:$port
"$APP" -c "$T/app.yaml" -t >"$T/t.out" 2>&1
ok $? "shop-app -t accepts db: {primary, replica, ...}"
start app "$APP" -c "$T/app.yaml" --error-log "$T/app.err"
wait_http $U/healthz || bail "shop-app did not start"
wait_for 10 sh -c "curl -s $U/metrics | grep -q '^shop_db_replica_up [1-9]'"
ok $? "connections to the replica are up"
metric() { curl -s $U/metrics | awk -v m="$1" '$1 == m {print $2}'; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# --- catalog reads come from the replica ---------------------------------------------------
name0=$(pg_sql "$PRIMARY" "SELECT name FROM products WHERE id = 42")
like "$(curl -s $U/api/products/42)" "\"name\":\"$name0\"" "a product, read"
pg_sql "$REPLICA" "SELECT pg_wal_replay_pause()" >/dev/null
pg_sql "$PRIMARY" "UPDATE products SET name = 'Renamed On The Primary' WHERE id = 42"
lag_bytes=$(pg_sql "$PRIMARY" "SELECT pg_wal_lsn_diff(sent_lsn, replay_lsn) FROM pg_stat_replication")
diag "replay paused; lag $lag_bytes bytes"
like "$(curl -s $U/api/products/42)" "\"name\":\"$name0\"" "replay paused: the catalog still shows the replica's row"
before=$(metric 'shop_db_reads_total{from="replica"}')
curl -s -o /dev/null $U/c/kitchen
[ "$(metric 'shop_db_reads_total{from="replica"}')" -gt "$before" ]; ok $? "shop_db_reads_total{from=replica} counts it"

# --- read-your-writes under lag -------------------------------------------------------------
jar="$T/jar"
printf '127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\ts-ryw-1\n' >"$jar"
is "$(code -b "$jar" -c "$jar" -X POST "$U/api/cart?add=7&qty=3")" 200 "a cart write goes to the primary"
grep -q 'dbw' "$jar"; ok $? "the write sets the dbw cookie (the read-your-writes window)"
# read back without the cart cookie: only the database has the cart
cookies="sid=s-ryw-1; dbw=$(awk '$6 == "dbw" {print $7}' "$jar")"
like "$(curl -s -b "$cookies" $U/api/cart)" '"id":7,"qty":3' "lag: the writer reads its own write (from the primary)"
[ "$(metric 'shop_db_reads_total{from="primary_ryw"}')" -ge 1 ]; ok $? "shop_db_reads_total{from=primary_ryw} counts it"
unlike "$(curl -s -b 'sid=s-ryw-1' $U/api/cart)" '"id":7' "lag: outside the window the replica's (older) cart shows"
sleep 1.7
unlike "$(curl -s -b "$cookies" $U/api/cart)" '"id":7' "lag: after the window the replica answers again"
pg_sql "$REPLICA" "SELECT pg_wal_replay_resume()" >/dev/null
wait_for 10 sh -c "curl -s -b 'sid=s-ryw-1' $U/api/cart | grep -q '\"id\":7'"
ok $? "replay resumed: the replica has the cart"
like "$(curl -s $U/api/products/42)" '"name":"Renamed On The Primary"' "replay resumed: the catalog change shows"

# --- a slow query stalls nobody else on the loop (one worker thread) -------------------------
p1=$(free_port)
start app1t "$APP" -c "$T/app.yaml" -a 127.0.0.1:$p1 --threads 1 --error-log "$T/app1t.err"
wait_http http://127.0.0.1:$p1/healthz || bail "shop-app (1 thread) did not start"
wait_for 10 sh -c "curl -s http://127.0.0.1:$p1/metrics | grep -q '^shop_db_primary_up [1-9]'"
psql -Atqc "BEGIN; LOCK TABLE carts IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1.2); COMMIT" "$PRIMARY" >/dev/null 2>&1 &
locker=$!
sleep 0.3
curl -s -o /dev/null -w '%{http_code} %{time_total}' -b 'sid=s-slow' -X POST "http://127.0.0.1:$p1/api/cart?add=3" >"$T/slow.out" &
slow=$!
sleep 0.2
fast=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 1 http://127.0.0.1:$p1/p/3)
wait $slow $locker
diag "while a cart write waited for a lock: /p/3 answered '$fast', the write '$(cat "$T/slow.out")'"
like "$fast" '^200 0\.[0-4]' "a slow cart query (a locked table) does not stall a catalog read on the same loop"
like "$(cat "$T/slow.out")" '^200 (0\.[6-9]|[1-9])' "and the slow write completes when the lock goes"

# --- the replica goes down: reads from the primary, no failed request ------------------------
stop rep INT
fails=0
for i in $(seq 1 30); do [ "$(code $U/p/$i)" = 200 ] || fails=$((fails + 1)); done
is "$fails" 0 "replica down: 30 product pages, 0 failed"
[ "$(metric 'shop_db_reads_total{from="primary_fallback"}')" -ge 1 ]; ok $? "replica down: reads counted as primary_fallback"
[ "$(metric 'shop_db_connections_lost_total{role="replica"}')" -ge 1 ]; ok $? "replica down: lost connections counted"
restart_pg rep rep2 || bail "the replica did not come back"
wait_for 15 sh -c "curl -s $U/metrics | grep -q '^shop_db_replica_up [1-9]'"
ok $? "replica back: the app reconnects (backoff)"

# --- the primary goes down: writes 503 with the reason, reads go on ---------------------------
LB=$(bin shop-lb)
lbp=$(free_port)
start lb "$LB" -a 127.0.0.1:$lbp -b 127.0.0.1:$port
wait_http http://127.0.0.1:$lbp/healthz >/dev/null 2>&1 || wait_for 10 sh -c "curl -sf http://127.0.0.1:$lbp/p/1 >/dev/null"
stop pg INT
curl -s -D "$T/w.h" -o "$T/w.body" -b 'sid=s-2' -X POST "$U/api/cart?add=9"
like "$(head -n1 "$T/w.h")" ' 503' "primary down: a cart write answers 503"
like "$(cat "$T/w.body")" 'primary database is unavailable' "primary down: with the reason"
fails=0
for i in $(seq 31 60); do [ "$(code $U/p/$i)" = 200 ] || fails=$((fails + 1)); done
is "$fails" 0 "primary down: catalog reads go on from the replica (0 of 30 failed)"
# through shop-lb: ten failed writes (503 + Retry-After) do not take the app out of the pool
for i in $(seq 1 10); do code -b 'sid=s-3' -X POST "http://127.0.0.1:$lbp/api/cart?add=5" >>"$T/lbw.codes"; echo >>"$T/lbw.codes"; done
is "$(sort -u "$T/lbw.codes" | tr -d '\n')" 503 "primary down, through shop-lb: cart writes 503"
fails=0
for i in $(seq 61 90); do [ "$(code http://127.0.0.1:$lbp/p/$i)" = 200 ] || fails=$((fails + 1)); done
is "$fails" 0 "primary down, through shop-lb: the app stays in the pool, reads go on (0 of 30 failed)"
