#!/usr/bin/env bash
# cdn-edge expiry sweep: objects stale beyond their stale-while-revalidate / stale-if-error windows
# are removed from both tiers by a periodic pass (edge_expired_total), the deletes reach RocksDB
# (a restart does not bring them back), objects inside a window stay; with --expire-keep, objects
# with a validator stay that much longer and come back with a 304.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 13

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
O=http://127.0.0.1:$OP
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
run_edge() {
    start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "$O" -w 1 -n x -d "$T/db" --expire-sweep 300
    wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
}
run_edge
E=http://127.0.0.1:$EP
count() { curl -s "$O/_count?p=$1"; }
metric() { curl -s "http://127.0.0.1:$AP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# two max-age=2 objects without stale windows, one with stale-if-error=600, one max-age=60
for p in /short/a /short/b /sie/c /max60/d; do curl -s -o /dev/null "$E$p"; done
is "$(metric edge_stored_objects_total)" 4 "four objects stored"
expired_is() { test "$(metric edge_expired_total)" = "$1"; }
wait_for 10 expired_is 2; ok $? "the sweep removed the two expired ones"
is "$(metric edge_disk_objects)" 2 "two left in RocksDB"
is "$(metric edge_ram_objects)" 2 "and two in RAM"
like "$(curl -s -D - -o /dev/null -H 'Cache-Control: max-stale=3600' "$E/short/a" | tr -d '\r' | grep -i '^cache-status:')" 'fwd=miss' \
    "a swept object is a miss even for a client that accepts stale"
is "$(count /short/a)" 2 "and is fetched again"
like "$(curl -s -D - -o /dev/null "$E/max60/d" | tr -d '\r' | grep -i '^cache-status:')" '; hit' "a fresh object stays a hit"

# the deletes are in RocksDB: a restart (with no sweep yet) finds only what was kept
stop edge
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "$O" -w 1 -n x -d "$T/db" --expire-sweep 0
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not restart"
n=$(metric edge_disk_objects)
ok $([ "$n" -ge 2 ] && [ "$n" -le 3 ]; echo $?) "after a restart only the kept objects (and the refetched one) are back ($n)"
like "$(curl -s -D - -o /dev/null "$E/short/b" | tr -d '\r' | grep -i '^cache-status:')" 'fwd=miss' "a swept object is not back after the restart"

# --expire-keep: an expired object with a validator stays for a cheap revalidation, one without goes
stop edge
rm -rf "$T/db2"
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "$O" -w 1 -n x -d "$T/db2" --expire-sweep 300 --expire-keep 3600
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start with --expire-keep"
for p in /reval/k /short/k; do curl -s -o /dev/null "$E$p"; done
wait_for 10 expired_is 1; ok $? "the sweep removed the expired object without a validator"
sleep 1
is "$(metric edge_expired_total)" 1 "and kept the one with an ETag (max-age=1, long stale)"
h=$(curl -s -D - -o /dev/null "$E/reval/k" | tr -d '\r')
like "$(echo "$h" | grep -i '^cache-status:')" 'fwd=stale; fwd-status=304' "which is revalidated with a 304, not fetched again"
is "$(count /reval/k)" 2 "origin: the first fetch and the conditional request"
