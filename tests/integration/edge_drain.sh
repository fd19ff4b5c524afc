#!/usr/bin/env bash
# cdn-edge drain (admin /drain): /healthz answers 503 on the admin listener and to a child edge's
# check, while the edge keeps serving its traffic (hits and misses); a child moves its misses off
# the draining parent; undrain (DELETE /drain or POST /undrain) brings /healthz back to 200. Changing
# the state needs the admin token (tests/security/edge_admin_lock.sh proves the refusals).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 18

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); EA=$(free_port); CP=$(free_port); CA=$(free_port)
O=http://127.0.0.1:$OP; E=http://127.0.0.1:$EP; A=http://127.0.0.1:$EA
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
echo drain-admin-token-0123456789 > "$T/admin.key"
AUTH="Authorization: Bearer drain-admin-token-0123456789"
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$EA" -b "$O" -w 1 -n ep --edge-key drain-test-key-0001 \
    --admin-token-file "$T/admin.key"
start child "$EDGE" -a "127.0.0.1:$CP" -A "127.0.0.1:$CA" -b "$O" -w 1 -n c1 --parent "$E" --parent-check 100 --edge-key drain-test-key-0001
wait_http "$A/healthz" && wait_http "http://127.0.0.1:$CA/healthz" || bail "edges did not start"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
count() { curl -s "$O/_count?p=$1"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
metric_is() { test "$(metric "$1" "$2")" = "$3"; }

curl -s -o /dev/null "$E/max60/d1"  # cached before the drain
is "$(curl -s "$A/drain")" serving "GET /drain: serving"
is "$(metric "$EA" edge_draining)" 0 "edge_draining 0"

is "$(curl -s -H "$AUTH" -X POST "$A/drain")" draining "POST /drain: draining"
is "$(code "$A/healthz")" 503 "draining: admin /healthz answers 503"
is "$(curl -s "$A/healthz")" draining "with body 'draining'"
is "$(code -H 'CDN-Loop: cdn-edge-x' -H 'CDN-Edge-Key: drain-test-key-0001' "$E/healthz")" 503 "draining: a child's /healthz check gets 503"
is "$(metric "$EA" edge_draining)" 1 "edge_draining 1"
is "$(code "$E/max60/d1")" 200 "draining: a hit is still served"
is "$(code "$E/max60/d2")/$(count /max60/d2)" 200/1 "draining: a miss is still fetched and served"
# the child's checks see 503 twice: its misses skip the draining parent
wait_for 10 metric_is "$CA" edge_parent_check_down_total 1; ok $? "a child marks the draining parent down"
curl -s -o /dev/null "http://127.0.0.1:$CP/max60/d3"
is "$(count /max60/d3)/$(metric "$EA" edge_origin_fetches_total)" 1/2 \
    "the child's miss went to the origin directly, not through the draining parent"
is "$(code -H "$AUTH" -X PUT "$A/drain")" 405 "PUT /drain: 405"

is "$(curl -s -H "$AUTH" -X DELETE "$A/drain")" serving "DELETE /drain: serving"
is "$(code "$A/healthz")" 200 "undrained: /healthz 200"
curl -s -H "$AUTH" -X POST "$A/drain" >/dev/null
is "$(curl -s -H "$AUTH" -X POST "$A/undrain")" serving "POST /undrain: serving"
is "$(curl -s "$A/healthz")" ok "undrained: /healthz ok"
is "$(code -H 'CDN-Loop: cdn-edge-x' -H 'CDN-Edge-Key: drain-test-key-0001' "$E/healthz")" 200 "undrained: a child's check gets 200"
is "$(metric "$EA" edge_draining)" 0 "edge_draining back to 0"
