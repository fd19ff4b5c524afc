#!/usr/bin/env bash
# cdn-edge parents: active health checks (GET /healthz every interval, fall/rise), a parent's
# 5xx sends the request to the next upstream, a cdn-edge parent answers a child's check itself,
# and an edge stops cleanly (exit 0) while a child's check connection is kept alive.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 16

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); PP=$(free_port); C1=$(free_port); C1A=$(free_port); C2=$(free_port); C2A=$(free_port)
EP=$(free_port); EA=$(free_port); C3=$(free_port)
O=http://127.0.0.1:$OP; P=http://127.0.0.1:$PP
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
# a scripted parent that can be made sick (503 on /healthz and everything else)
start sickparent python3 "$top_srcdir/tests/integration/edge_origin.py" "$PP"
wait_port 127.0.0.1 "$OP" && wait_port 127.0.0.1 "$PP" || bail "origins did not start"
start c1 "$EDGE" -a "127.0.0.1:$C1" -A "127.0.0.1:$C1A" -b "$O" -w 1 -n c1 --parent "$P" --parent-check 200
start c2 "$EDGE" -a "127.0.0.1:$C2" -A "127.0.0.1:$C2A" -b "$O" -w 1 -n c2 --parent "$P" --parent-check 0
wait_http "http://127.0.0.1:$C1A/healthz" && wait_http "http://127.0.0.1:$C2A/healthz" || bail "edges did not start"
count() { curl -s "$1/_count?p=$2"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
metric_is() { test "$(metric "$1" "$2")" = "$3"; }

# healthy: misses go to the parent
curl -s -o /dev/null "http://127.0.0.1:$C1/max60/h1"
is "$(count "$P" /max60/h1)/$(count "$O" /max60/h1)" "1/0" "healthy parent: the miss went to the parent"
checked() { test "$(count "$P" /healthz)" -ge 1; }
wait_for 10 checked
like "$(curl -s "$P/_last?p=/healthz")" '"CDN-Loop", "cdn-edge-c1"' "the check is GET /healthz with our CDN-Loop entry"

curl -s -o /dev/null "$P/_sick?on=1"
# c2 has no checks: the parent's 503 sends the request on to the origin
r=$(curl -s -o "$T/h2" -w '%{http_code}' "http://127.0.0.1:$C2/max60/h2")
is "$r $(cat "$T/h2")" "200 body of /max60/h2" "a parent's 503: the next upstream (the origin) answers"
is "$(count "$P" /max60/h2)/$(count "$O" /max60/h2)" "1/1" "one request each"
is "$(metric "$C2A" edge_parent_errors_total)" 1 "edge_parent_errors_total counts it"
is "$(metric "$C2A" edge_parent_down_total)" 0 "the parent is not marked down for answering"

# c1's checks fail twice: parent down, misses go straight to the origin
wait_for 10 metric_is "$C1A" edge_parent_check_down_total 1; ok $? "two failed checks mark the parent down"
curl -s -o /dev/null "http://127.0.0.1:$C1/max60/h3"
is "$(count "$P" /max60/h3)/$(count "$O" /max60/h3)" "0/1" "a parent marked down is not asked at all"

# well again: two good checks bring it back
curl -s -o /dev/null "$P/_sick?on=0"
up() { grep -q 'parent up' "$T/c1.log"; }
wait_for 10 up; ok $? "two good checks mark it up again"
curl -s -o /dev/null "http://127.0.0.1:$C1/max60/h4"
is "$(count "$P" /max60/h4)/$(count "$O" /max60/h4)" "1/0" "misses go to the parent again"

# a cdn-edge parent answers a child's /healthz itself (other clients' /healthz is a normal URL)
start edgeparent "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$EA" -b "$O" -w 1 -n ep --edge-key sekrit
wait_http "http://127.0.0.1:$EA/healthz" || bail "edge parent did not start"
is "$(curl -s -H 'CDN-Loop: cdn-edge-x' -H 'CDN-Edge-Key: sekrit' "http://127.0.0.1:$EP/healthz")" ok \
    "a cdn-edge parent answers a child's check itself"
is "$(count "$O" /healthz)" 0 "without asking the origin"
curl -s -o /dev/null "http://127.0.0.1:$EP/healthz"
is "$(count "$O" /healthz)" 1 "a client's /healthz is forwarded as any URL"
curl -s -o /dev/null -H 'CDN-Loop: cdn-edge-x' "http://127.0.0.1:$EP/healthz"
is "$(count "$O" /healthz)" 2 "and so is one that only writes CDN-Loop (no key: not an edge of ours)"

# a child keeps a check connection to it alive; the parent still stops cleanly
start c3 "$EDGE" -a "127.0.0.1:$C3" -b "$O" -w 1 -n c3 --parent "http://127.0.0.1:$EP" --parent-check 100 --edge-key sekrit
conn() { ss -tn state established "( sport = :$EP )" 2>/dev/null | grep -q 127.0.0.1; }
wait_for 10 conn; ok $? "the child's check connection to the parent is open"
stop edgeparent; is "$?" 0 "SIGTERM with a kept-alive connection: exit 0"
