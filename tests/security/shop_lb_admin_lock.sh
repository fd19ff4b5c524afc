#!/usr/bin/env bash
# Issue 12, the locked control plane, for shop-lb: changing the backends (POST /backends/...) needs
# the bearer token of admin_token_file (401 without it or with another, 403 when shop-lb has none),
# GET /backends stays open, and an admin listener off loopback without a token does not start.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 8
APP=$(bin shop-app); LB=$(bin shop-lb)
[ -x "$APP" ] && [ -x "$LB" ] || bail "shop-app / shop-lb are not built"
"$APP" --generate 20 --seed 3 --db "$T/cat.db" >"$T/gen.log" 2>&1 || bail "catalog"
P=$(free_port); L=$(free_port); A=$(free_port); L2=$(free_port); A2=$(free_port)
start app "$APP" -a 127.0.0.1:$P --db "$T/cat.db" --name app1
wait_http http://127.0.0.1:$P/healthz || bail "app did not start"
echo "lb-lock-token-$$-0123456789" > "$T/lb.key"
start lb "$LB" -a 127.0.0.1:$L --admin 127.0.0.1:$A --admin-token-file "$T/lb.key" -b 127.0.0.1:$P
start lb2 "$LB" -a 127.0.0.1:$L2 --admin 127.0.0.1:$A2 -b 127.0.0.1:$P
wait_http http://127.0.0.1:$A/healthz && wait_http http://127.0.0.1:$A2/healthz || bail "shop-lb did not start"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
B=http://127.0.0.1:$A/backends/default/127.0.0.1:$P
is "$(code -X POST "$B/drain")" 401 "POST /backends/.../drain without a token: 401"
is "$(code -X POST -H 'Authorization: Bearer wrong-token-0123456789' "$B/remove")" 401 "with a wrong token: 401"
like "$(curl -s http://127.0.0.1:$A/backends)" '"state":"up"' "the backend is still up"
is "$(code http://127.0.0.1:$A/backends)" 200 "GET /backends needs no token"
is "$(curl -s -X POST -H "Authorization: Bearer $(cat "$T/lb.key")" "$B/drain")" done "with the token: done"
is "$(code -X POST "http://127.0.0.1:$A2/backends/default/127.0.0.1:$P/drain")" 403 "a shop-lb without a token: 403"
like "$(curl -s http://127.0.0.1:$A/metrics)" 'cdn_admin_refused_total\{reason="missing"\} 1' "refusals counted"
"$LB" -a 127.0.0.1:$(free_port) --admin 192.0.2.1:$(free_port) -b 127.0.0.1:$P >"$T/nl.log" 2>&1 & pid=$!
wait_for 10 sh -c "! kill -0 $pid 2>/dev/null"  # it exits by itself (a loaded machine: give it time)
kill $pid 2>/dev/null; wait $pid 2>/dev/null
like "$(cat "$T/nl.log")" 'not on loopback' "an admin off loopback without a token: shop-lb does not start"
