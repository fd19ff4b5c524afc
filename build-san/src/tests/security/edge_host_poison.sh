#!/usr/bin/env bash
# Cache poisoning through Host, and one host spelt many ways:
# a Host / :authority that is not host[:port] is refused with 400 before it reaches a key, on
# HTTP/1.1 and h2; spellings of one host share one key; :authority wins over a host header on h2.
# Before the fix, GET /max60/x with "Host: 127.0.0.1:PORT/evil" was stored under the key of
# /evil/max60/x, and a later client of /evil/max60/x got /max60/x's body as a hit.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 23

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -w 1 -n t1
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
E=http://127.0.0.1:$EP
count() { curl -s "http://127.0.0.1:$OP/_count?p=$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
cs() { curl -s -D - -o /dev/null "$@" | grep -i '^cache-status:' | tr -d '\r'; }

# 1. the poisoning probe, HTTP/1.1 (a path smuggled into Host, to store /evil under the real host's
# key): it is refused, nothing is stored
is "$(code -H "Host: 127.0.0.1:$EP/evil" "$E/max60/x")" 400 "HTTP/1.1: Host with a path gets 400"
is "$(count /max60/x)" 0 "and nothing went upstream"
like "$(cs "$E/evil/max60/x")" 'fwd=miss' "the victim URL is a miss, not the attacker's object"
like "$(curl -s "$E/evil/max60/x")" '^body of /evil/max60/x ' "the victim gets its own body"

# 2. the same over h2 (curl sends the Host as :authority)
if curl -V | grep -q HTTP2; then
    is "$(code --http2-prior-knowledge -H "Host: 127.0.0.1:$EP/evil2" "$E/max60/y")" 400 "h2: :authority with a path gets 400"
    like "$(cs --http2-prior-knowledge "$E/evil2/max60/y")" 'fwd=miss' "h2: the victim URL is a miss"
else
    skip "curl without HTTP/2"; skip "curl without HTTP/2"
fi

# 3. other hostile spellings: each 400, none stored
n=0
for h in "a b" "a?b" "a#b" 'a\b' "user@127.0.0.1" "a:8x" "a:65536" "a..b" "[::1" "a%zz" "a:1:2"; do
    [ "$(code -H "Host: $h" "$E/max60/bad$n")" = 400 ] || { fail "Host '$h' refused with 400"; n=-99; break; }
    n=$((n + 1))
done
[ $n -ge 0 ] && pass "11 invalid Host values refused with 400"
is "$(( $(count /max60/bad0) + $(count /max60/bad5) + $(count /max60/bad10) ))" 0 "none of them went upstream"
like "$(curl -s "http://127.0.0.1:$AP/metrics" | grep '^edge_bad_host_total')" '^edge_bad_host_total (1[3-9]|[2-9][0-9])$' "refusals counted"

# 4. HTTP/1.1 without Host: 400 (RFC 9112 3.2); HTTP/1.0 without one is served
is "$(code -H 'Host:' "$E/max60/nohost")" 400 "HTTP/1.1 without Host gets 400"
is "$(code -0 -H 'Host:' "$E/max60/nohost")" 200 "HTTP/1.0 without Host is served"

# 5. one host, many spellings: one key, one origin fetch
first=$(cs -H 'Host: WWW.Shop.TEST' "$E/max60/n")
like "$first" 'fwd=miss' "first spelling is a miss"
m=0
for h in www.shop.test www.shop.test. www.shop.test:80 www.shop.test: WWW.SHOP.TEST.:080 %77ww.shop.test; do
    like "$(cs -H "Host: $h" "$E/max60/n")" '; hit$' "Host '$h' is a hit on the same key"
done
is "$(count /max60/n)" 1 "origin saw one request for all spellings"
like "$(cs -H 'Host: www.shop.test:8080' "$E/max60/n")" 'fwd=miss' "another port is another key"

# 6. h2: :authority wins over a host header (RFC 9113 8.3.1)
if command -v nghttp >/dev/null 2>&1; then
    out=$(nghttp -v -H ':authority: auth.example' -H 'host: host.example' "$E/max60/auth" 2>&1)
    like "$out" ':status: 200' "h2 with both :authority and host is served"
    like "$(cs -H 'Host: auth.example' "$E/max60/auth")" '; hit$' ":authority keyed the object"
    like "$(cs -H 'Host: host.example' "$E/max60/auth")" 'fwd=miss' "the host header did not"
else
    for i in 1 2 3; do skip "nghttp not installed (nghttp2-client)"; done
fi
