#!/usr/bin/env bash
# cdn-edge's JSON access log names the client's address for IPv6 clients too (the entry comes from
# cdn_alog_entry_from_req / cdn_peer_text): an edge listening on [::1] and on 127.0.0.1 logs "::1"
# and "127.0.0.1". Skipped where ::1 cannot be bound (IPv6 disabled).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
if ! python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
    echo "1..0 # SKIP ::1 is not available"
    exit 0
fi
plan 5
OP=$(free_port); EP=$(free_port); E6=$(free_port); AP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
start edge "$EDGE" -a "127.0.0.1:$EP" -a "[::1]:$E6" -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -w 2 -n v6 \
    --access-log "$T/access.log"
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"

is "$(curl -s -o /dev/null -w '%{http_code}' "http://[::1]:$E6/max60/six")" 200 "a request over IPv6 ([::1]) is served"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$EP/max60/four")" 200 "a request over IPv4 is served"
wait_for 5 grep -q '/max60/four' "$T/access.log"
like "$(grep '/max60/six' "$T/access.log" | tail -1)" '"remote":"::1"' "the IPv6 client is logged with its address"
like "$(grep '/max60/four' "$T/access.log" | tail -1)" '"remote":"127.0.0.1"' "the IPv4 client is logged with its address"
stop edge; is "$?" 0 "SIGTERM: exit 0"
