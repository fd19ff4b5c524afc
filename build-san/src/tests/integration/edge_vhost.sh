#!/usr/bin/env bash
# cdn-edge virtual hosts: two origins behind one edge, chosen by Host / :authority (exact names,
# *.suffix wildcards, aliases, a default), 421 for an unknown host, X-Served-By, config errors.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 18

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OA=$(free_port); OB=$(free_port); EP=$(free_port); AP=$(free_port); E2=$(free_port)
start originA python3 "$top_srcdir/tests/integration/edge_origin.py" "$OA"
start originB python3 "$top_srcdir/tests/integration/edge_origin.py" "$OB"
wait_port 127.0.0.1 "$OA" && wait_port 127.0.0.1 "$OB" || bail "origins did not start"
cat > "$T/edge.yaml" <<YAML
name: vh
served_by: vh-node-1
listen: ["127.0.0.1:$EP"]
admin: 127.0.0.1:$AP
workers: 1
vhosts:
  img.shop.test:
    origin: http://127.0.0.1:$OA/
  www.shop.test:
    origin: http://127.0.0.1:$OB
    aliases: [shop.test, "*.static.shop.test"]
YAML
"$EDGE" -c "$T/edge.yaml" -t >/dev/null 2>&1; ok $? "-t accepts the vhost config"
start edge "$EDGE" -c "$T/edge.yaml"
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
E=http://127.0.0.1:$EP
countA() { curl -s "http://127.0.0.1:$OA/_count?p=$1"; }
countB() { curl -s "http://127.0.0.1:$OB/_count?p=$1"; }
hdr() { grep -i "^$1:" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

curl -s -o /dev/null -H 'Host: img.shop.test' "$E/max60/v"
is "$(countA /max60/v):$(countB /max60/v)" "1:0" "img.shop.test goes to origin A"
curl -s -o /dev/null -H 'Host: www.shop.test' "$E/max60/v"
is "$(countA /max60/v):$(countB /max60/v)" "1:1" "www.shop.test goes to origin B (the key includes the host)"
h=$(curl -s -D - -o /dev/null -H 'Host: IMG.Shop.Test.:80' "$E/max60/v")
like "$(echo "$h" | hdr cache-status)" '^cdn-edge-vh; hit$' "host matching ignores case, port and a trailing dot"
is "$(echo "$h" | hdr x-served-by)" "vh-node-1" "X-Served-By names the edge"
curl -s -o /dev/null -H 'Host: shop.test' "$E/max60/alias"
is "$(countB /max60/alias)" 1 "an alias of the www vhost"
curl -s -o /dev/null -H 'Host: a.b.static.shop.test' "$E/max60/wild"
is "$(countA /max60/wild):$(countB /max60/wild)" "0:1" "a *.suffix wildcard matches any depth below it"
r=$(curl -s -o "$T/u" -w '%{http_code}' -H 'Host: static.shop.test' "$E/max60/bare")
is "$r" 421 "but not the bare suffix (no default vhost: 421)"
like "$(cat "$T/u")" "no virtual host for 'static.shop.test" "the 421 says why"
is "$(countA /max60/bare):$(countB /max60/bare)" "0:0" "and nothing reached an origin"
r=$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}' -H 'Host: img.shop.test' "$E/max60/h2")
is "$r:$(countA /max60/h2)" "200:1" "h2c: :authority picks the vhost"
like "$(curl -s "http://127.0.0.1:$AP/metrics")" 'edge_requests_total\{result="hit",tier="ram"\} [1-9]' "hits counted by tier"

# quick mode: -b is the default vhost; a config "*" vhost is a default too
start edge2 "$EDGE" -a "127.0.0.1:$E2" -b "http://127.0.0.1:$OB" -w 1
wait_port 127.0.0.1 "$E2" || bail "edge2 did not start"
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: anything.test' "http://127.0.0.1:$E2/max60/q")" 200 "quick mode serves any host"
is "$(countB /max60/q)" 1 "from its -b origin"

# config errors name file:line
printf 'listen: ["127.0.0.1:1"]\nvhosts:\n  "bad host!":\n    origin: http://127.0.0.1:1\n' > "$T/bad1.yaml"
like "$("$EDGE" -c "$T/bad1.yaml" -t 2>&1)" 'bad1.yaml:3:.*bad host pattern' "a bad host pattern names its line"
printf 'listen: ["127.0.0.1:1"]\nvhosts:\n  a.test:\n    origin: ftp://x\n' > "$T/bad2.yaml"
like "$("$EDGE" -c "$T/bad2.yaml" -t 2>&1)" 'bad2.yaml:4:.*http' "a bad origin URL names its line"
printf 'listen: ["127.0.0.1:1"]\nvhosts:\n  a.test: {origin: "http://x"}\n  b.test: {origin: "http://y", aliases: [a.test]}\n' > "$T/bad3.yaml"
like "$("$EDGE" -c "$T/bad3.yaml" -t 2>&1)" "named by two vhosts" "a host in two vhosts is refused"
bad=0; for f in "$top_srcdir"/edge/examples/*.yaml; do "$EDGE" -c "$f" -t >/dev/null 2>&1 || { bad=1; diag "$f"; }; done
is "$bad" 0 "the examples in edge/examples pass -t"
