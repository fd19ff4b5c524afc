#!/usr/bin/env bash
# cdn-edge parent (shield) tier: two children in front of one parent in front of the origin. A
# second child's miss is a parent hit (the origin sees one request), Cache-Status shows the chain,
# metrics count by tier and upstream, CDN-Loop stops loops, CDN-Cache-Control reaches the child,
# rendezvous hashing keeps a key on one parent, and a child goes direct when its parent is down
# (or answers 502 under --parent-only).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 29

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); PP=$(free_port); PA=$(free_port)
C1=$(free_port); C1A=$(free_port); C2=$(free_port); C2A=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
O=http://127.0.0.1:$OP
K=--edge-key=k3y-of-this-cdn
echo parent-admin-token-0123456789 > "$T/admin.key"
AUTH="Authorization: Bearer parent-admin-token-0123456789"
start parent "$EDGE" -a "127.0.0.1:$PP" -A "127.0.0.1:$PA" -b "$O" -n p -w 1 $K
start child1 "$EDGE" -a "127.0.0.1:$C1" -A "127.0.0.1:$C1A" -b "$O" -n c1 -w 1 --parent "http://127.0.0.1:$PP/" $K \
    --admin-token-file "$T/admin.key"
start child2 "$EDGE" -a "127.0.0.1:$C2" -A "127.0.0.1:$C2A" -b "$O" -n c2 -w 1 --parent "http://127.0.0.1:$PP" \
    --served-by c2 $K
for a in $PA $C1A $C2A; do wait_http "http://127.0.0.1:$a/healthz" || bail "an edge did not start"; done
count() { curl -s "$O/_count?p=$1"; }
hdr() { grep -i "^$1:" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
get() { curl -s -D - -o /dev/null -H 'Host: img.shop.test' "$@"; }
metrics() { curl -s "http://127.0.0.1:$1/metrics"; }

h=$(get "http://127.0.0.1:$C1/max60/p1")
is "$(count /max60/p1)" 1 "child 1 miss -> parent miss -> one origin request"
like "$(echo "$h" | hdr cache-status)" '^cdn-edge-p; fwd=miss; fwd-status=200; stored, cdn-edge-c1; fwd=miss; fwd-status=200; stored$' \
    "Cache-Status: the parent's entry first, the child's appended"
like "$(echo "$h" | hdr via)" '^1.1 cdn-edge-p, 1.1 cdn-edge-c1$' "Via lists both"
last=$(curl -s "$O/_last?p=/max60/p1")
like "$last" '"via", "1.1 cdn-edge-c1, 1.1 cdn-edge-p"' "the origin saw the chain in Via"
like "$last" '"cdn-loop", "cdn-edge-c1, cdn-edge-p"' "and in CDN-Loop (RFC 8586)"
h=$(get "http://127.0.0.1:$C2/max60/p1")
is "$(count /max60/p1)" 1 "child 2 miss is a parent hit: still one origin request"
like "$(echo "$h" | hdr cache-status)" '^cdn-edge-p; hit, cdn-edge-c2; fwd=miss; fwd-status=200; stored$' "Cache-Status: parent hit, child miss"
is "$(echo "$h" | hdr x-served-by)" c2 "X-Served-By names the child that answered"
h=$(get "http://127.0.0.1:$C2/max60/p1")
like "$(echo "$h" | hdr cache-status)" '^cdn-edge-p; hit, cdn-edge-c2; hit$' "then a child hit keeps the parent's entry"
m=$(metrics $C2A)
like "$m" 'edge_fetches_total\{upstream="parent"\} 1$' "child 2: one fetch from the parent"
like "$m" 'edge_requests_total\{result="miss",tier="parent"\} 1$' "child 2: the miss counted under tier parent"
like "$m" 'edge_requests_total\{result="hit",tier="ram"\} 1$' "child 2: the hit under tier ram"
m=$(metrics $PA)
like "$m" 'edge_requests_total\{result="hit",tier="ram"\} 1$' "parent: one hit"
like "$m" 'edge_fetches_total\{upstream="origin"\} 1$' "parent: one origin fetch"

# CDN-Cache-Control is for every CDN cache: the parent passes it to its child, not to clients
h=$(get "http://127.0.0.1:$C1/cdncc/x"); h2=$(get "http://127.0.0.1:$C1/cdncc/x")
is "$(count /cdncc/x)" 1 "CDN-Cache-Control reaches the child: it stores too"
unlike "$h$h2" '[Cc][Dd][Nn]-[Cc][Aa][Cc][Hh][Ee]-[Cc][Oo][Nn][Tt][Rr][Oo][Ll]' "and clients never see it"
# only an edge with the CDN's key is another edge: a client that writes CDN-Loop gets nothing more
h=$(get -H 'CDN-Loop: cdn-edge-x' "http://127.0.0.1:$PP/cdncc/x")
unlike "$h" '[Cc][Dd][Nn]-[Cc][Aa][Cc][Hh][Ee]-[Cc][Oo][Nn][Tt][Rr][Oo][Ll]' "a spoofed CDN-Loop does not unlock CDN-Cache-Control"
h=$(get -H 'CDN-Loop: cdn-edge-x' -H 'CDN-Edge-Key: wrong' "http://127.0.0.1:$PP/tag/x")
unlike "$h" '[Ss]urrogate-[Kk]ey' "nor Surrogate-Key, with a wrong key either"
h=$(get -H 'CDN-Loop: cdn-edge-x' -H 'CDN-Edge-Key: k3y-of-this-cdn' "http://127.0.0.1:$PP/tag/y")
like "$h" '[Ss]urrogate-[Kk]ey' "with the key, another edge gets Surrogate-Key"
get "http://127.0.0.1:$C1/tag/z" >/dev/null
is "$(curl -s -H "$AUTH" -X POST "http://127.0.0.1:$C1A/purge?tag=/tag/z")" "purged 1" \
    "a child sends the key to its parent: it got the tags and can purge by them"
unlike "$(curl -s "$O/_last?p=/tag/z")" '[Cc][Dd][Nn]-[Ee]dge-[Kk]ey' "and no edge passes a key on to the origin"

# loops: a request naming this edge in CDN-Loop gets 508; an edge that is its own parent stops
# after one hop: its inner request answers 508, and the 508 from a "parent" sends the outer one to
# the next upstream (the origin)
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'CDN-Loop: other, cdn-edge-c1; v=1' "http://127.0.0.1:$C1/max60/l")" 508 "CDN-Loop naming the edge -> 508"
LP=$(free_port)
start loop "$EDGE" -a "127.0.0.1:$LP" -b "$O" -n loop -w 1 --parent "http://127.0.0.1:$LP"
wait_port 127.0.0.1 "$LP" || bail "loop edge did not start"
is "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LP/max60/l")" 200 "an edge that is its own parent: no endless loop, the 508 it gets sends it to the origin"
is "$(count /max60/l)" 1 "which is asked once"

# rendezvous hashing over two parents: a key always goes to the same parent
P2=$(free_port); P2A=$(free_port); C3=$(free_port); C3A=$(free_port)
start parent2 "$EDGE" -a "127.0.0.1:$P2" -A "127.0.0.1:$P2A" -b "$O" -n p2 -w 1
start child3 "$EDGE" -a "127.0.0.1:$C3" -A "127.0.0.1:$C3A" --admin-token-file "$T/admin.key" -b "$O" -n c3 -w 1 --parent "http://127.0.0.1:$PP" --parent "http://127.0.0.1:$P2"
wait_port 127.0.0.1 "$C3" && wait_http "http://127.0.0.1:$P2A/healthz" && wait_http "http://127.0.0.1:$C3A/healthz" || bail "child3/parent2 did not start"
for i in $(seq 1 16); do
    curl -s -o /dev/null -H 'Host: img.shop.test' "http://127.0.0.1:$C3/max60/k$i"
    curl -s -o /dev/null -H "$AUTH" "http://127.0.0.1:$C3A/purge?url=http://img.shop.test/max60/k$i"
    curl -s -o /dev/null -H 'Host: img.shop.test' "http://127.0.0.1:$C3/max60/k$i"
done
tot=0; for i in $(seq 1 16); do tot=$((tot + $(count /max60/k$i))); done
is "$tot" 16 "16 keys, each fetched twice by the child: 16 origin requests (same parent each time)"
n1=$(metrics $PA | sed -n 's/^edge_requests_total{result="miss",tier="origin"} //p')
n2=$(metrics $P2A | sed -n 's/^edge_requests_total{result="miss",tier="origin"} //p')
ok $([ "${n1:-0}" -gt 1 ] && [ "${n2:-0}" -gt 1 ]; echo $?) "both parents got keys ($n1 and $n2 misses)"

# the parent goes away: children go to the origin directly, --parent-only ones answer 502
stop parent
h=$(get "http://127.0.0.1:$C1/max60/p2")
is "$(echo "$h" | head -1 | tr -d '\r' | cut -d' ' -f2):$(count /max60/p2)" "200:1" "parent down: the child fetched from the origin"
like "$(metrics $C1A)" '^edge_parent_down_total 1$' "and marked the parent down"
C4=$(free_port)
start child4 "$EDGE" -a "127.0.0.1:$C4" -b "$O" -n c4 -w 1 --parent "http://127.0.0.1:$PP" --parent-only
wait_port 127.0.0.1 "$C4" || bail "child4 did not start"
r=$(curl -s -o "$T/po" -w '%{http_code}' "http://127.0.0.1:$C4/max60/p3")
is "$r:$(count /max60/p3)" "502:0" "--parent-only with the parent down: 502, origin not asked"
