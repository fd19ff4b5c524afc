#!/usr/bin/env bash
# tests/bench/purge_bus.sh - the purge bus's throughput: N purge commands published at once into one
# private redis-server (redis-cli --pipe), applied by E edges (each its own consumer group, each
# with a store of OBJECTS objects... empty here: the cost measured is the bus's, parse and index
# look-up included); prints the publish rate and the time until every edge has applied and acked
# every command (each group's lag and pending count back to 0).
#
#   tests/bench/purge_bus.sh [BUILDDIR]      N=10000 E=3 tests/bench/purge_bus.sh
#
# Bounded: gives up after 30 s. Everything listens on 127.0.0.1 and is stopped at exit.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-${top_builddir:-.}}" && pwd)
top_srcdir=$src top_builddir=$build
. "$src/tests/lib.sh"
N=${N:-10000}
E=${E:-3}
EDGE=$(bin cdn-edge)
start_redis redis || { echo "no redis-server"; exit 0; }
OP=$(free_port)
start origin python3 "$src/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin"
for i in $(seq 1 "$E"); do
    p=$(free_port); a=$(free_port)
    cat > "$T/e$i.yaml" <<EOF
name: e$i
listen: ["127.0.0.1:$p"]
admin: "127.0.0.1:$a"
origin: "http://127.0.0.1:$OP"
workers: 1
log_level: warn
purge_bus: {redis: "$REDIS_URL", stream: "bench:purge"}
EOF
    start "e$i" "$EDGE" -c "$T/e$i.yaml"
    wait_http "http://127.0.0.1:$a/healthz" || bail "edge e$i"
done
# N XADDs in the Redis protocol, one per URL
python3 - "$N" > "$T/cmds.resp" <<'EOF'
import sys, time
n = int(sys.argv[1]); t = str(int(time.time() * 1000))
out = sys.stdout
for i in range(n):
    args = ["XADD", "bench:purge", "*", "cmd", "hard url https://img.shop.test/p/%d/img.png" % i, "t", t]
    out.write("*%d\r\n" % len(args))
    for a in args:
        out.write("$%d\r\n%s\r\n" % (len(a.encode()), a))
EOF
now() { date +%s.%N; }
t0=$(now)
redis-cli -p "$REDIS_PORT" --pipe < "$T/cmds.resp" >/dev/null
t1=$(now)
done_all() {
    redis-cli -p "$REDIS_PORT" XINFO GROUPS bench:purge | awk '
        prev == "pending" && $1 != 0 {bad = 1} prev == "lag" && $1 != 0 {bad = 1} {prev = $1}
        END {exit bad}'
}
i=0
until done_all; do sleep 0.05; i=$((i + 1)); [ $i -gt 600 ] && { echo "gave up after 30 s"; break; }; done
t2=$(now)
awk -v n="$N" -v e="$E" -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
    printf "published %d commands in %.3f s (%.0f/s)\n", n, t1 - t0, n / (t1 - t0);
    printf "%d edges applied and acked all of them %.3f s after the first was published (%.0f commands/s per edge)\n",
        e, t2 - t0, n / (t2 - t0) }'
redis-cli -p "$REDIS_PORT" XLEN bench:purge:acks | sed 's/^/acks on the ack stream: /'
