#!/usr/bin/env bash
# What each response says about itself: Cache-Status (RFC 9211: one detail parameter; fwd says
# why the request went forward: miss, stale, request, method) and X-Request-Id (every response
# carries its own request's id; an id an origin reflected is never stored and shown to later
# clients). Each check failed before the request path was split into stages.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 14

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
mkdir -p "$T/db"
start_edge() {
    start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -d "$T/db" -w 1 -n t1 "$@"
    wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
}
start_edge
E=http://127.0.0.1:$EP
hdr() { grep -i "^$1:" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
cs() { curl -s -D - -o /dev/null "$@" | hdr cache-status; }

# 1. fwd= says why
curl -s -o /dev/null "$E/max60/f"
like "$(cs -H 'Cache-Control: no-cache' "$E/max60/f")" '^cdn-edge-t1; fwd=request; fwd-status=(200|304)' \
    "a client's no-cache on a fresh object: fwd=request (the cache did not choose to go forward)"
is "$(cs -X POST -d x "$E/post/m")" "cdn-edge-t1; fwd=method; fwd-status=200" "a POST: fwd=method"
is "$(cs "$E/short/s")" "cdn-edge-t1; fwd=miss; fwd-status=200; stored" "a miss: fwd=miss"
is "$(cs -H 'Cache-Control: only-if-cached' "$E/max60/oic")" "cdn-edge-t1; detail=only-if-cached" \
    "only-if-cached on a miss: no origin error is claimed"

# 2. one detail parameter on a disk-tier hit served stale while revalidating
curl -s -o /dev/null "$E/swr/d"
stop edge
start_edge
sleep 1.2
v=$(cs "$E/swr/d")
is "$v" "cdn-edge-t1; hit; fwd=stale; detail=disk-swr" "a stale disk hit under stale-while-revalidate"
is "$(printf '%s' "$v" | grep -o 'detail=' | wc -l)" 1 "with exactly one detail parameter"

# 3. X-Request-Id: the response's own, never the filler's
a=$(curl -s -D - -o /dev/null -H 'X-Request-Id: req-aaa' "$E/echoid/x")
is "$(echo "$a" | hdr x-request-id)" req-aaa "the miss carries its request's id"
is "$(echo "$a" | grep -ci '^x-request-id:')" 1 "and only one"
b=$(curl -s -D - -o /dev/null -H 'X-Request-Id: req-bbb' "$E/echoid/x")
like "$(echo "$b" | hdr cache-status)" '; hit$' "second request is a hit"
is "$(echo "$b" | hdr x-request-id)" req-bbb "the hit carries its own request's id, not the filler's"
c=$(curl -s -D - -o /dev/null "$E/echoid/x")
like "$(echo "$c" | hdr x-request-id)" '^[0-9a-f]{32}$' "a request without one gets the id the edge made"
unlike "$c" 'req-aaa' "the stored response does not show the first client's id"
stop edge
start_edge
d=$(curl -s -D - -o /dev/null -H 'X-Request-Id: req-ddd' "$E/echoid/x")
like "$(echo "$d" | hdr cache-status)" 'hit; detail=disk' "after a restart: a disk hit"
is "$(echo "$d" | hdr x-request-id)" req-ddd "the disk copy holds no id either"
