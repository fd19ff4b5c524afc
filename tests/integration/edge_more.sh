#!/usr/bin/env bash
# cdn-edge, more behaviours against the scripted origin: stale-while-revalidate, Authorization,
# Set-Cookie, only-if-cached, many h2 streams on one connection, 500 concurrent clients on one
# cold object, malformed requests, config checking (-t, -c errors), graceful SIGTERM.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 55

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -w 1 -n m \
    --access-log "$T/access.log"
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
E=http://127.0.0.1:$EP
count() { curl -s "http://127.0.0.1:$OP/_count?p=$1"; }
hdr() { grep -i "^$1:" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# stale-while-revalidate: the stale body now, a refresh in the background
b1=$(curl -s "$E/swr/w"); sleep 1.3
h=$(curl -s -D - -o "$T/w2" "$E/swr/w")
like "$(echo "$h" | hdr cache-status)" 'detail=swr' "stale-while-revalidate: served stale"
is "$(cat "$T/w2")" "$b1" "with the stale body"
count_is() { test "$(count "$1")" = "$2"; }  # re-evaluated on each try of wait_for
wait_for 5 count_is /swr/w 2; ok $? "and refreshed in the background"
like "$(curl -s "$E/swr/w")" '^body of /swr/w #2$' "the refreshed body follows"

# Authorization: a stored response that does not allow it is not used
curl -s -o /dev/null "$E/max60/auth"
curl -s -o /dev/null -H 'Authorization: Basic eDp5' "$E/max60/auth"
is "$(count /max60/auth)" 2 "a request with Authorization is not served from cache"
like "$(curl -s -D - -o /dev/null "$E/max60/auth" | hdr cache-status)" '; hit$' "others still get the stored copy"

# Set-Cookie responses are not stored (no public / s-maxage)
curl -s -o /dev/null "$E/cookie/c"; h=$(curl -s -D - -o /dev/null "$E/cookie/c")
is "$(count /cookie/c)" 2 "Set-Cookie response not stored"
like "$h" '^Set-Cookie: id=2'$'\r''?$' "but the cookie reaches its own client"

# only-if-cached on a miss: 504, no origin request
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'Cache-Control: only-if-cached' "$E/max60/oic")" 504 "only-if-cached miss -> 504"
is "$(count /max60/oic)" 0 "without asking the origin"
# request no-cache forces a revalidation of a fresh object
curl -s -o /dev/null "$E/max60/nc"; curl -s -o /dev/null -H 'Cache-Control: no-cache' "$E/max60/nc"
is "$(count /max60/nc)" 2 "request no-cache goes to the origin"

# many streams on one HTTP/2 connection
if command -v h2load >/dev/null; then
    out=$(h2load -n 200 -c 1 -m 50 "$E/max60/h2" 2>&1)
    like "$out" '200 succeeded, 0 failed' "h2load: 200 streams on one connection"
    is "$(count /max60/h2)" 1 "one origin request for them"
else
    skip "h2load not installed (nghttp2-client): 200 streams"; skip "h2load not installed"
fi
if command -v nghttp >/dev/null; then
    like "$(nghttp -n -s "$E/max60/h2" "$E/max60/h2" 2>&1)" 'responseEnd' "nghttp: two streams"
else
    skip "nghttp not installed"
fi

# 500 concurrent clients on one cold (slow) object: one origin fetch
if command -v h2load >/dev/null; then
    out=$(h2load -n 500 -c 500 -m 1 --h1 "$E/slow/cold" 2>&1)
    like "$out" '500 succeeded, 0 failed' "500 concurrent clients all answered"
    is "$(count /slow/cold)" 1 "with exactly one origin fetch"
else
    skip "h2load not installed (nghttp2-client): 500 concurrent clients"; skip "h2load not installed"
fi

# malformed requests: an error, no crash
r=$(printf 'GARBAGE\r\n\r\n' | timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$EP; cat >&3; cat <&3" 2>/dev/null | head -1)
like "$r" '^HTTP/1.1 400' "garbage request -> 400"
# a header past the edge's own limit (h2o's request-head limit, about 408 KiB; below it the
# request goes on to the origin): the edge itself answers 400 or 431, and the origin sees nothing
r=$(python3 - "$EP" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
try:
    s.sendall(b"GET /max60/huge HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 450000 + b"\r\n\r\n")
except OSError:
    pass  # it may stop reading once it has refused; its answer is already on the way
try:
    print(s.recv(200).split(b"\r\n")[0].decode(errors="replace") or "closed")
except OSError as e:
    print("no answer: %s" % e)
PY
)
like "$r" '^HTTP/1\.1 (400|431) ' "a huge header is refused by the edge ($r)"
is "$(count /max60/huge)" 0 "the origin never saw it"
is "$(curl -s "http://127.0.0.1:$AP/healthz")" ok "the edge is still alive"

# config: -t accepts a good file, a bad one names file:line
cat > "$T/good.yaml" <<YAML
origin: http://127.0.0.1:$OP
listen: ["127.0.0.1:$(free_port)"]
ram: 64MiB
ram_policy: lru
YAML
"$EDGE" -c "$T/good.yaml" -t >/dev/null 2>&1; ok $? "-t accepts a good config"
printf 'origin: http://x\nlisten: ["127.0.0.1:1"]\nram: lots\n' > "$T/bad.yaml"
like "$("$EDGE" -c "$T/bad.yaml" -t 2>&1)" 'bad\.yaml:3:' "a bad config names the line"
printf 'origin: http://x\nlisten: ["127.0.0.1:1"]\nram_policy: fifo\n' > "$T/badpol.yaml"
like "$("$EDGE" -c "$T/badpol.yaml" -t 2>&1)" 'badpol.yaml:3:.*adaptive, s3fifo, sieve, lru, lfu-size or adaptive2' "an unknown ram_policy names the line and the choices"
"$EDGE" -a 127.0.0.1:1 -b http://127.0.0.1:2 --policy sieve -t >/dev/null 2>&1; ok $? "--policy sieve is accepted"
like "$("$EDGE" --help)" 'adaptive \(default\), s3fifo, sieve, lru,' "--help names the policies"
"$EDGE" -a 127.0.0.1:1 -b http://127.0.0.1:2 --policy lfu-size -t >/dev/null 2>&1; ok $? "--policy lfu-size is accepted"
printf 'origin: http://x\nlisten: ["127.0.0.1:1"]\ndisk_admit: never\n' > "$T/badadm.yaml"
like "$("$EDGE" -c "$T/badadm.yaml" -t 2>&1)" 'badadm.yaml:3:.*second-hit or all' "an unknown disk_admit names the line and the choices"
"$EDGE" -a 127.0.0.1:1 -b http://127.0.0.1:2 --disk-admit all -t >/dev/null 2>&1; ok $? "--disk-admit all is accepted"
"$EDGE" -a 127.0.0.1:1 -b http://127.0.0.1:2 --disk-admit sometimes -t >/dev/null 2>&1; is "$?" 2 "--disk-admit sometimes is a usage error"

# the access log: one JSON line per request, with the Cache-Status
like "$(grep '/max60/auth' "$T/access.log" | tail -1)" '"cache_status":"cdn-edge-m; hit"' "access log line with Cache-Status"

# an upstream transfer coding other than chunked: a 502 that says why, nothing stored
h=$(curl -s -D - -o "$T/te" "$E/badte/a")
like "$(echo "$h" | head -1)" '^HTTP/1.1 502' "Transfer-Encoding: gzip upstream: 502"
like "$(cat "$T/te")" 'transfer coding other than chunked' "the 502 says why"
curl -s -o /dev/null "$E/badte/a"
is "$(count /badte/a)" 2 "nothing stored: the next request goes upstream again"

# an interim 103 from the origin is forwarded (RFC 9110 15.2), not merged into the final response,
# not stored: HTTP/1.1 and h2c
h=$(curl -s -D - -o "$T/early" "$E/early/a")
like "$(echo "$h" | head -1)" '^HTTP/1.1 103 Early Hints' "HTTP/1.1: the origin's 103 comes first"
like "$(echo "$h" | sed -n '1,/^\r*$/p')" 'Link: </s.css>; rel=preload' "with its Link"
like "$(echo "$h" | sed -n '1,/^\r*$/p')" 'Via: 1.1 cdn-edge-m' "and our Via"
final=$(echo "$h" | sed -n '/^HTTP\/1.1 200/,$p')
like "$final" '^HTTP/1.1 200' "then the 200"
unlike "$final" '(Link|X-Interim):' "the 103's fields are not merged into the 200"
h=$(curl -s -D - -o /dev/null "$E/early/a")
like "$(echo "$h" | hdr cache-status)" '; hit$' "the 200 is stored"
unlike "$h" '103|X-Interim' "and a hit carries nothing of the 103"
if command -v nghttp >/dev/null; then
    nghttp -v -n "$E/early/b" > "$T/ng103" 2>&1
    is "$(grep -c ':status: 103' "$T/ng103")" 1 "h2c: one HEADERS with :status 103 ..."
    like "$(sed -n '/:status: 103/,/:status: 200/p' "$T/ng103")" 'link: </s.css>; rel=preload' "... carrying the Link"
    like "$(grep -A3 ':status: 200' "$T/ng103" | head -1)" ':status: 200' "h2c: then the 200 on the same stream"
    interim=2
else
    for i in 1 2 3; do skip "nghttp not installed (nghttp2-client): a 103 over h2c"; done
    interim=1
fi
like "$(curl -s "http://127.0.0.1:$AP/metrics" | grep '^edge_interim_responses_total')" "^edge_interim_responses_total $interim\$" "edge_interim_responses_total counts each 103 forwarded"

# a client that joins the fetch after its 103 came (and before the 200) gets the 103 too
curl -s -D "$T/late1" -o /dev/null "$E/early-slow/l?late=1" &
first=$!
sleep 1
curl -s -D "$T/late2" -o /dev/null "$E/early-slow/l?late=1"
wait "$first"
is "$(count /early-slow/l)" 1 "a late joiner collapses into the fetch in flight"
is "$(grep -c '^HTTP/1.1 103' "$T/late1" "$T/late2" | cut -d: -f2 | tr '\n' ' ')" "1 1 " "and both clients got the 103"

# qualified private="f" / no-cache="f" (RFC 9111 5.2.2.7, 5.2.2.4): the response is stored and
# reused without those fields
h=$(curl -s -D - -o /dev/null "$E/qual/a")
like "$h" 'X-Secret: s1' "miss: the client gets every field"
h=$(curl -s -D - -o /dev/null "$E/qual/a")
like "$(echo "$h" | hdr cache-status)" '; hit$' "qualified private/no-cache: stored and reused"
like "$h" 'X-Keep: k1' "a hit keeps the other fields"
is "$(echo "$h" | grep -ciE '^x-(secret|token):')" 0 "but not the ones private=/no-cache= name"
is "$(count /qual/a)" 1 "one origin request"

# RFC 9111 4.4: only an unsafe method answered with a non-error status invalidates
curl -s -o /dev/null "$E/max60/inv"
curl -s -o /dev/null -X POST -H 'X-Fail: 1' "$E/max60/inv"
curl -s -o /dev/null -X DELETE -H 'X-Fail: 1' "$E/max60/inv"
h=$(curl -s -D - -o /dev/null "$E/max60/inv")
like "$(echo "$h" | hdr cache-status)" '; hit$' "a POST answered 500 leaves the stored response"
curl -s -o /dev/null -X POST --data x "$E/max60/inv"
h=$(curl -s -D - -o /dev/null "$E/max60/inv")
like "$(echo "$h" | hdr cache-status)" 'fwd=miss' "a POST answered 200 invalidates it"
is "$(count /max60/inv)" 5 "origin: 2 GETs, 3 unsafe requests"

# graceful stop
stop edge; is "$?" 0 "SIGTERM: clean exit 0"
