#!/usr/bin/env bash
# What goes upstream is what the key names, and nothing a client can use to change a stored
# response for everyone (the security issue's items 6, 7 and 9):
# - a cache fill asks for the normalised path its key was built from (an origin that does not
#   decode %2e or dot segments used to serve one URL's body under another's key);
# - fields that origins reflect (X-Forwarded-Host, X-Original-URL, X-HTTP-Method-Override,
#   Forwarded...) are dropped unless the vhost allows them; the edge sets X-Forwarded-Host /
#   -Proto and Forwarded from what it knows;
# - HEAD misses fill the cache like any miss (5 HEADs used to be 5 full GETs, nothing stored).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 16

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
cat > "$T/edge.yaml" <<YAML
listen: ["127.0.0.1:$EP"]
admin: 127.0.0.1:$AP
name: t1
workers: 1
vhosts:
  "*":
    origin: http://127.0.0.1:$OP
  trusted.test:
    origin: http://127.0.0.1:$OP
    forward_headers: [X-Forwarded-Host, Forwarded]
YAML
start edge "$EDGE" -c "$T/edge.yaml"
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
E=http://127.0.0.1:$EP
count() { curl -s "http://127.0.0.1:$OP/_count?p=$1"; }
last() { curl -s "http://127.0.0.1:$OP/_last?p=$1"; }

# 1. the normalised path goes upstream (item 6)
curl -s -o /dev/null --path-as-is "$E/x/%2e%2e/max60/n1"
is "$(count /max60/n1)" 1 "GET /x/%2e%2e/max60/n1: the origin was asked for /max60/n1, the key's path"
is "$(count /x/%2e%2e/max60/n1)" 0 "and never for the raw path"
like "$(curl -s -D - -o /dev/null "$E/max60/n1" | tr -d '\r' | grep -i '^cache-status:')" '; hit$' \
    "/max60/n1 is then a hit: key and upstream request name one resource"
curl -s -o /dev/null "$E/max60/%7en2?b=2&a=1"
is "$(count /max60/~n2)" 1 "an escaped unreserved byte goes upstream decoded, as in the key"

# 2. reflected fields (item 7)
curl -s -o /dev/null -H 'X-Forwarded-Host: evil.example' -H 'X-Original-URL: /admin' \
    -H 'X-HTTP-Method-Override: DELETE' -H 'Forwarded: host=evil.example' -H 'X-Forwarded-Scheme: javascript' \
    -H 'X-Rewrite-URL: /admin' "$E/max60/r1"
l=$(last /max60/r1)
unlike "$l" 'evil.example' "the client's X-Forwarded-Host / Forwarded host did not go upstream"
unlike "$l" '/admin' "nor X-Original-URL / X-Rewrite-URL"
unlike "$l" 'DELETE' "nor X-HTTP-Method-Override"
unlike "$l" 'javascript' "nor X-Forwarded-Scheme"
like "$l" "\"X-Forwarded-Host\", \"127.0.0.1:$EP\"" "the edge sets X-Forwarded-Host from the request's authority"
like "$l" '"X-Forwarded-Proto", "http"' "and X-Forwarded-Proto"
like "$l" "\"Forwarded\", \"for=127.0.0.1;host=\\\\\"127.0.0.1:$EP\\\\\";proto=http\"" "and Forwarded (RFC 7239)"
curl -s -o /dev/null -H 'Host: trusted.test' -H 'X-Forwarded-Host: shop.example' -H 'Forwarded: for=10.1.2.3' \
    -H 'X-Original-URL: /admin' "$E/max60/r2"
l=$(last /max60/r2)
like "$l" '"x-forwarded-host", "shop.example"' "a vhost's forward_headers lets the client's X-Forwarded-Host through"
like "$l" '"Forwarded", "for=10.1.2.3, for=127.0.0.1' "and appends ours to the client's Forwarded"
unlike "$l" '/admin' "but not fields it does not list"

# 3. HEAD misses fill the cache (item 9)
for i in 1 2 3 4 5; do curl -s -o /dev/null -I "$E/big/h"; done
is "$(count /big/h)" 1 "5 HEADs of an uncached object: one origin fetch"
like "$(curl -s -D - -o /dev/null "$E/big/h" | tr -d '\r' | grep -i '^cache-status:')" '; hit$' "and a GET after them is a hit"
