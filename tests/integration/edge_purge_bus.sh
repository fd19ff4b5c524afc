#!/usr/bin/env bash
# The purge bus (issue 12) with a real redis-server: a parent and three children, each its own
# consumer group on one stream. cdn-purge --wait fans a URL purge out to all four and prints each
# ack; purge kinds (prefix, tag, all, soft) through the bus; an edge down during a purge applies
# the backlog before it listens again; a poisoned command is dead-lettered after its retries; a
# fill in flight is not stored; and the hierarchy race: a child that purged refuses the old copy
# of a parent that has not (yet).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 40

EDGE=$(bin cdn-edge); PURGE=$(bin cdn-purge)
[ -x "$EDGE" ] && [ -x "$PURGE" ] || bail "cdn-edge or cdn-purge not built"
if ! start_redis redis; then
    plan_skip=1
    for i in $(seq 1 40); do skip "redis-server is not installed or did not start"; done
    exit 0
fi
OP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
O=http://127.0.0.1:$OP
echo bus-test-admin-token-0123456789 > "$T/admin.key"
AUTH="Authorization: Bearer bus-test-admin-token-0123456789"
declare -A PORT ADMIN
# edge NAME STREAM [PARENT-NAME] : config file and start (store in $T/db-NAME, kept across restarts)
edge() {
    local n=$1 stream=$2 parent=${3:-}
    [ -n "${PORT[$n]:-}" ] || { PORT[$n]=$(free_port); ADMIN[$n]=$(free_port); }
    cat > "$T/$n.yaml" <<EOF
name: $n
listen: ["127.0.0.1:${PORT[$n]}"]
admin: "127.0.0.1:${ADMIN[$n]}"
admin_token_file: "$T/admin.key"
origin: "$O"
dir: "$T/db-$n"
workers: 1
edge_key: bus-test-edge-key-0123456789
parent_check_interval: 0s
purge_bus: {redis: "$REDIS_URL", stream: "$stream", retry_after: 300ms, max_deliveries: 3, block: 200ms}
EOF
    [ -n "$parent" ] && echo "parents: [\"http://127.0.0.1:${PORT[$parent]}\"]" >> "$T/$n.yaml"
    start "$n" "$EDGE" -c "$T/$n.yaml"
}
up() { wait_http "http://127.0.0.1:${ADMIN[$1]}/healthz"; }
get() { curl -s -D - -o /dev/null -H 'Host: img.shop.test' "http://127.0.0.1:${PORT[$1]}$2" | tr -d '\r'; }
cs() { get "$1" "$2" | sed -n 's/^[Cc]ache-[Ss]tatus: //p'; }
count() { curl -s "$O/_count?p=$1"; }
metric() { curl -s "http://127.0.0.1:${ADMIN[$1]}/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

edge p cdn:purge
up p || bail "parent did not start"
for c in c1 c2 c3; do edge $c cdn:purge p; done
for c in c1 c2 c3; do up $c || bail "$c did not start"; done
is "$(rcli XINFO GROUPS cdn:purge | grep -cE '^(p|c1|c2|c3)$')" 4 "every edge made its consumer group on the stream"
is "$(metric c1 edge_purge_bus_ready)" 1 "c1 caught up (an empty backlog) before it served"

# 1. fan-out: a URL as a browser shows it (https, default port) purges what the edges stored
#    from http on other ports, on every edge, parent included; --wait prints each ack
for c in c1 c2 c3; do get $c /max60/a >/dev/null; done
like "$(cs c3 /max60/a)" '; hit$' "cached on the children before the purge"
out=$("$PURGE" --redis "$REDIS_URL" --wait=5 url https://img.shop.test/max60/a); rc=$?
is "$rc" 0 "cdn-purge --wait: every edge acked (exit 0)"
is "$(echo "$out" | grep -c 'acked in')" 4 "one ack line per edge (parent and three children)"
like "$out" 'slowest: [a-z0-9]+, [0-9]+ ms; 4 of 4 edges acked' "and the slowest"
diag "$(echo "$out" | tr '\n' '|')"
like "$(cs c1 /max60/a)" '^cdn-edge-p; fwd=miss; .*, cdn-edge-c1; fwd=miss; ' \
    "after the purge: a miss on the child and on the parent"
is "$(count /max60/a)" 2 "the origin was asked again"
is "$(metric c2 'edge_purge_commands_total{result="applied"}')" 1 "c2 counted the command applied"
like "$(metric c2 edge_purge_apply_seconds_count)" '^1$' "and its latency (histogram)"

# 2. the other kinds, through the bus
sleep 1
for u in /max60/p/1 /max60/p/2 /max60/q/1 /tag/t1; do get c1 $u >/dev/null; done
get c2 /tag/t2 >/dev/null  # the parent stores it; c3 then gets it from the parent's cache (a hit)
like "$(cs c3 /tag/t2)" '^cdn-edge-p; hit, cdn-edge-c3; fwd=miss' "c3's copy of /tag/t2 comes from a parent hit"
"$PURGE" --redis "$REDIS_URL" --wait=5 prefix img.shop.test/max60/p >/dev/null; ok $? "prefix purge acked"
like "$(cs c1 /max60/p/2)" 'cdn-edge-c1; fwd=miss' "prefix: /max60/p/2 purged"
like "$(cs c1 /max60/q/1)" 'cdn-edge-c1; hit$' "prefix: /max60/q/1 kept"
"$PURGE" --redis "$REDIS_URL" --wait=5 tag nosuch group-a >/dev/null; ok $? "tag purge (two tags) acked"
like "$(cs c1 /tag/t1)" 'cdn-edge-c1; fwd=miss' "tag: the Surrogate-Key group-a object purged"
like "$(cs c3 /tag/t2)" 'cdn-edge-c3; fwd=miss' \
    "tag: a copy taken from a parent's hit was purged too (the parent sends its tags on a hit)"
sleep 1; get c1 /max60/s >/dev/null
"$PURGE" --redis "$REDIS_URL" --soft --wait=5 url http://img.shop.test/max60/s >/dev/null; ok $? "soft purge acked"
like "$(cs c1 /max60/s)" 'cdn-edge-c1; fwd=stale' "soft: the object is stale (revalidated), not gone"
"$PURGE" --redis "$REDIS_URL" --wait=5 all img.shop.test >/dev/null; ok $? "purge of a whole vhost acked"
like "$(cs c1 /max60/q/1)" 'cdn-edge-c1; fwd=miss' "all: /max60/q/1 purged too"

# 3. a fill in flight when the purge arrives is not stored
sleep 1
get c2 /slow/f >/dev/null & gp=$!
sleep 0.4
"$PURGE" --redis "$REDIS_URL" --wait=5 url img.shop.test/slow/f >/dev/null
wait $gp
sleep 1.1
like "$(cs c2 /slow/f)" 'cdn-edge-c2; fwd=miss' "the fill that was in flight during the purge was not stored"
like "$(metric c2 edge_purge_fill_refused_total)" '^[1-9]' "edge_purge_fill_refused_total counts it"

# 4. an edge down during a purge applies the backlog before it listens again
sleep 1; get c3 /max60/d >/dev/null
like "$(cs c3 /max60/d)" 'cdn-edge-c3; hit$' "c3 has /max60/d"
stop c3
out=$("$PURGE" --redis "$REDIS_URL" --wait=1.5 url img.shop.test/max60/d); rc=$?
is "$rc" 1 "cdn-purge --wait with an edge down: exit 1"
like "$out" 'c3 +NO ACK' "and it names the edge that did not ack"
like "$("$PURGE" --redis "$REDIS_URL" status)" 'c3 +1 ' "cdn-purge status: c3 lags one command"
edge c3 cdn:purge p
up c3 || bail "c3 did not restart"
is "$(metric c3 'edge_purge_commands_total{result="applied"}')" 1 "c3 applied the backlog (1 command) at start"
like "$(cs c3 /max60/d)" 'cdn-edge-c3; fwd=miss' "so its first answer for the purged URL is not the old copy"

# 5. a poisoned command goes to the dead-letter stream after max_deliveries (3), with its reason
rcli XADD cdn:purge '*' cmd 'explode everything' t 0 >/dev/null
wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT XLEN cdn:purge:dead)\" = 4 ]"; ok $? "dead-lettered by each of the four edges"
like "$(rcli XREVRANGE cdn:purge:dead + - COUNT 1)" "unknown kind 'explode'" "with the reason"
is "$(metric c1 'edge_purge_commands_total{result="dead"}')" 1 "counted dead on c1"
like "$("$PURGE" --redis "$REDIS_URL" status)" "dead .* after 3 deliveries: 'explode everything'" "cdn-purge status shows the dead letters"
"$PURGE" --redis "$REDIS_URL" --wait=5 url img.shop.test/max60/after >/dev/null; ok $? "the bus goes on after a poisoned command"

# 6. the hierarchy race: a parent that has not applied a purge (here it listens on another stream,
#    so it never will) keeps its old copy; a child that applied it refuses that copy (born before
#    the purge, by its Age) and does not store it, until the parent is purged too
edge pl cdn:other
up pl || bail "parent pl did not start"
edge c4 cdn:purge pl
up c4 || bail "c4 did not start"
get c4 /max60/race >/dev/null
sleep 2.1
"$PURGE" --redis "$REDIS_URL" --wait=5 url img.shop.test/max60/race >/dev/null
r1=$(cs c4 /max60/race); r2=$(cs c4 /max60/race)
like "$r1" '^cdn-edge-pl; hit, cdn-edge-c4; fwd=miss' "after the purge the child asks the parent, which still has its old copy"
like "$r2" 'cdn-edge-c4; fwd=miss' "the child did not store that copy: the next request is no hit of it"
like "$(metric c4 edge_purge_fill_refused_total)" '^[2-9]' "refused (born before the purge, by its Age)"
curl -s -o /dev/null -H "$AUTH" "http://127.0.0.1:${ADMIN[pl]}/purge?url=img.shop.test/max60/race"
sleep 2.1 # a copy through another cache is refused for up to two seconds after a purge (whole seconds)
get c4 /max60/race >/dev/null
like "$(cs c4 /max60/race)" '^cdn-edge-pl; fwd=miss.*cdn-edge-c4; hit$' "once the parent is purged, the child stores the new copy"

# 7. a retired edge: forget its group, and --wait no longer waits for it
stop c4
is "$("$PURGE" --redis "$REDIS_URL" forget c4)" "c4: forgotten (its consumer group is gone)" "cdn-purge forget c4"
out=$("$PURGE" --redis "$REDIS_URL" --wait=3 url img.shop.test/max60/z); rc=$?
is "$rc $(echo "$out" | grep -c 'acked in')" "0 4" "--wait then waits for the four edges of cdn:purge that are left"
