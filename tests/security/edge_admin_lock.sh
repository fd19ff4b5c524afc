#!/usr/bin/env bash
# Issue 12, the locked control plane: before, anyone who reached an edge could purge (`curl -X
# PURGE` on the public listener: "purged 2") and drain it (`curl -X POST :9080/drain`). Now the
# admin's purge and drain need the bearer token of admin_token_file (401 without it or with
# another, 403 when the edge has none), an admin address off loopback needs a token to start,
# and PURGE on a public listener is off unless the vhost's `purge:` allows the client's network
# and the client shows that vhost's token. Every refusal is counted.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 26

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port); NP=$(free_port); NA=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
O=http://127.0.0.1:$OP
TOK=lock-test-admin-token-$$-0123456789
echo "$TOK" > "$T/admin.key"
echo "vhost-purge-token-$$-abcdefghij" > "$T/purge.key"
cat > "$T/edge.yaml" <<EOF
listen: ["127.0.0.1:$EP"]
admin: "127.0.0.1:$AP"
admin_token_file: "$T/admin.key"
name: lock
workers: 1
vhosts:
  img.shop.test:
    origin: "$O"
    purge: {allow: ["127.0.0.2/32", "::1"], token_file: "$T/purge.key"}
  "*":
    origin: "$O"
EOF
start edge "$EDGE" -c "$T/edge.yaml"
# an edge with no token at all: its state-changing endpoints are off
start notoken "$EDGE" -a "127.0.0.1:$NP" -A "127.0.0.1:$NA" -b "$O" -w 1 -n nt
wait_http "http://127.0.0.1:$AP/healthz" && wait_http "http://127.0.0.1:$NA/healthz" || bail "edges did not start"
A=http://127.0.0.1:$AP; E=http://127.0.0.1:$EP
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
count() { curl -s "$O/_count?p=$1"; }
metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }

curl -s -o /dev/null -H 'Host: img.shop.test' "$E/max60/a"
# the admin's purge
is "$(code "$A/purge?url=http://img.shop.test/max60/a")" 401 "admin purge without a token: 401"
like "$(curl -s -D - -o /dev/null "$A/purge?url=http://img.shop.test/max60/a" | tr -d '\r')" \
    'WWW-Authenticate: Bearer|www-authenticate: Bearer' "with WWW-Authenticate: Bearer"
is "$(code -H 'Authorization: Bearer wrong-token-0123456789' "$A/purge?url=http://img.shop.test/max60/a")" 401 \
    "admin purge with a wrong token: 401"
is "$(code -H "Authorization: Bearer ${TOK}x" "$A/purge?tag=x")" 401 "a token with one more character: 401"
is "$(code -H "Authorization: Basic $TOK" "$A/purge?tag=x")" 401 "another scheme than Bearer: 401"
curl -s -o /dev/null -H 'Host: img.shop.test' "$E/max60/a"
is "$(count /max60/a)" 1 "nothing was purged: the next request is still a hit"
is "$(curl -s -H "Authorization: Bearer $TOK" "$A/purge?url=http://img.shop.test/max60/a")" 'purged 1' \
    "with the token: purged 1"
is "$(curl -s -H "authorization: bearer   $TOK" "$A/purge?tag=none")" 'purged 0' "scheme case-insensitive, spaces allowed"
# drain
is "$(code -X POST "$A/drain")" 401 "POST /drain without a token: 401"
is "$(code -X POST -H 'Authorization: Bearer wrong-token-0123456789' "$A/drain")" 401 "POST /drain with a wrong token: 401"
is "$(code -X DELETE "$A/drain")/$(code -X POST "$A/undrain")" 401/401 "DELETE /drain, POST /undrain without a token: 401"
is "$(code "$A/healthz")" 200 "the edge was not drained: /healthz 200"
is "$(curl -s "$A/drain")" serving "GET /drain (read-only) needs no token"
is "$(curl -s -X POST -H "Authorization: Bearer $TOK" "$A/drain")" draining "POST /drain with the token: draining"
is "$(curl -s -X DELETE -H "Authorization: Bearer $TOK" "$A/drain")" serving "DELETE /drain with the token: serving"
is "$(metric "$A" 'cdn_admin_refused_total{reason="missing"}')/$(metric "$A" 'cdn_admin_refused_total{reason="wrong"}')" 5/4 \
    "refusals counted: 5 without a token, 4 with a wrong one (or another scheme)"
# no token configured: off
is "$(code -X POST -H "Authorization: Bearer $TOK" "http://127.0.0.1:$NA/drain")" 403 "an edge without admin_token_file: POST /drain 403"
is "$(code "http://127.0.0.1:$NA/purge?tag=x")" 403 "and /purge 403"
is "$(metric "http://127.0.0.1:$NA" 'cdn_admin_refused_total{reason="no-token"}')" 2 "counted as no-token"
# an admin listener off loopback without a token does not start (checked with -t: nothing listens)
out=$("$EDGE" -a "127.0.0.1:$(free_port)" -A "192.0.2.1:$(free_port)" -b "$O" -t 2>&1); rc=$?
ok $([ $rc -ne 0 ] && echo "$out" | grep -q 'not on loopback'; echo $?) "admin on 192.0.2.1 (not loopback) without a token: refused ($rc)"
# PURGE on the public listener
is "$(code -X PURGE "$E/max60/a")" 405 "PURGE on a vhost without purge: 405"
is "$(code -X PURGE -H 'Host: img.shop.test' -H "Authorization: Bearer $(cat "$T/purge.key")" "$E/max60/a")" 403 \
    "PURGE from a network the vhost does not allow (127.0.0.1), even with the token: 403"
is "$(code -X PURGE --interface 127.0.0.2 -H 'Host: img.shop.test' "$E/max60/a")" 401 "from an allowed network without the token: 401"
is "$(code -X PURGE --interface 127.0.0.2 -H 'Host: img.shop.test' -H "Authorization: Bearer $TOK" "$E/max60/a")" 401 \
    "with the admin's token instead of the vhost's: 401"
sleep 1 # a fill in the second of a purge is not stored
curl -s -o /dev/null -H 'Host: img.shop.test' "$E/max60/a"
is "$(curl -s -X PURGE --interface 127.0.0.2 -H 'Host: img.shop.test' -H "Authorization: Bearer $(cat "$T/purge.key")" "$E/max60/a")" \
    'purged 1' "from an allowed network with the vhost's token: purged 1"
is "$(metric "$A" edge_purge_refused_total)" 4 "public PURGE refusals counted: 4"
