#!/usr/bin/env bash
# cdn-edge, what goes upstream: the per-origin fetch limit (max_fetches: a FIFO bounded by the
# connect timeout, then 503 with the reason), X-Request-Id (kept or made, sent to parent and
# origin, logged), and RFC 9111 4.4 invalidation of a same-host Location / Content-Location;
# pipelined requests behind a slow miss (the client socket stays polled while a fetch runs).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 25

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); AP=$(free_port); AA=$(free_port); BP=$(free_port); BA=$(free_port)
PP=$(free_port); PA=$(free_port); CP=$(free_port); CA=$(free_port)
O=http://127.0.0.1:$OP
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
# A: two origin slots, a long wait; B: one slot, a short wait
start a "$EDGE" -a "127.0.0.1:$AP" -A "127.0.0.1:$AA" -b "$O" -w 1 -n a --max-fetches 2 \
    --connect-timeout 5000 --access-log "$T/a.access"
start b "$EDGE" -a "127.0.0.1:$BP" -A "127.0.0.1:$BA" -b "$O" -w 1 -n b --max-fetches 1 --connect-timeout 300
# a chain: child c -> parent p -> origin
start p "$EDGE" -a "127.0.0.1:$PP" -A "127.0.0.1:$PA" -b "$O" -w 1 -n p --access-log "$T/p.access"
start c "$EDGE" -a "127.0.0.1:$CP" -A "127.0.0.1:$CA" -b "$O" -w 1 -n c --parent "http://127.0.0.1:$PP" \
    --access-log "$T/c.access"
for a in $AA $BA $PA $CA; do wait_http "http://127.0.0.1:$a/healthz" || bail "edge did not start"; done
A=http://127.0.0.1:$AP
count() { curl -s "$O/_count?p=$1"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
# lasthdr PATH NAME: that header of the last request the origin got for PATH
lasthdr() {
    curl -s "$O/_last?p=$1" | python3 -c 'import json,sys
d=json.load(sys.stdin); n=sys.argv[1].lower()
print(next((v for k, v in d.get("headers", []) if k.lower() == n), ""))' "$2"
}

# max_fetches 2: four slow misses at once, never more than two at the origin
curl -s -o /dev/null "$O/_maxconc?reset"
cp=()
for i in 1 2 3 4; do curl -s -o "$T/q$i" -w '%{http_code}\n' "$A/slow/q$i" > "$T/q$i.code" & cp+=($!); done
wait "${cp[@]}"
is "$(cat "$T"/q?.code | sort | uniq -c | awk '{print $1 "x" $2}')" "4x200" "max_fetches 2: all four answered 200"
is "$(cat "$T/q4")" "body of /slow/q4" "with the right body"
is "$(curl -s "$O/_maxconc")" 2 "the origin never had more than two requests from the edge at once"
q=$(metric "$AA" edge_fetch_queued_total)
ok $([ "$q" -ge 1 ] && [ "$q" -le 2 ]; echo $?) "fetches beyond the limit waited for a slot ($q; 2 unless a client came late)"

# max_fetches 1 and a 300 ms connect timeout: the second slow miss gives up with 503
cp=()
for i in 1 2; do curl -s -o "$T/b$i" -w '%{http_code}\n' "http://127.0.0.1:$BP/slow/b$i" > "$T/b$i.code" & cp+=($!); done
wait "${cp[@]}"
is "$(cat "$T"/b?.code | sort | tr '\n' ' ')" "200 503 " "max_fetches 1: one answered, the other 503"
like "$(cat "$T/b1" "$T/b2")" 'origin busy: all 1 fetch slots \(max_fetches\) in use for [0-9]+ ms' "the 503 says why"
is "$(( $(count /slow/b1) + $(count /slow/b2) ))" 1 "the refused one never reached the origin"
is "$(metric "$BA" edge_fetch_busy_total)" 1 "edge_fetch_busy_total counts it"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$BP/max60/b3")" 200 "the slot is free again afterwards"

# X-Request-Id: a client's is passed on and logged
curl -s -o /dev/null -H 'X-Request-Id: rid-abc-1' "$A/max60/r1"
is "$(lasthdr /max60/r1 X-Request-Id)" "rid-abc-1" "the client's X-Request-Id reaches the origin"
like "$(grep '/max60/r1' "$T/a.access")" '"request_id":"rid-abc-1"' "and is in the access log"
# none: the edge makes one, sends it and logs the same
curl -s -o /dev/null "$A/max60/r2"
rid=$(lasthdr /max60/r2 X-Request-Id)
like "$rid" '^[0-9a-f]{32}$' "without one the edge makes one ($rid)"
like "$(grep '/max60/r2' "$T/a.access")" "\"request_id\":\"$rid\"" "the access log has the same id"
# an unusable one (too long) is replaced
curl -s -o /dev/null -H "X-Request-Id: $(head -c 300 /dev/zero | tr '\0' x)" "$A/max60/r3"
like "$(lasthdr /max60/r3 X-Request-Id)" '^[0-9a-f]{32}$' "an over-long X-Request-Id is replaced"
# through a parent: the same id at the child, the parent and the origin
curl -s -o /dev/null -H 'X-Request-Id: chain-7' "http://127.0.0.1:$CP/max60/r4"
is "$(lasthdr /max60/r4 X-Request-Id)" "chain-7" "through a parent the origin gets the client's id"
like "$(grep '/max60/r4' "$T/p.access")" '"request_id":"chain-7"' "the parent logs it"
like "$(grep '/max60/r4' "$T/c.access")" '"request_id":"chain-7"' "the child logs it"

# RFC 9111 4.4: a successful POST invalidates its Location / Content-Location on the same host
curl -s -o /dev/null "$A/max60/loc1"; curl -s -o /dev/null "$A/max60/loc1"
is "$(count /max60/loc1)" 1 "loc1 cached"
curl -s -o /dev/null -X POST -d x "$A/post1?loc=/max60/loc1"
curl -s -o /dev/null "$A/max60/loc1"
is "$(count /max60/loc1)" 2 "a relative Location on the same host is invalidated"
curl -s -o /dev/null "$A/max60/loc2"
curl -s -o /dev/null -X POST -d x "$A/post2?cloc=http%3A%2F%2F127.0.0.1%3A$AP%2Fmax60%2Floc2"
curl -s -o /dev/null "$A/max60/loc2"
is "$(count /max60/loc2)" 2 "an absolute Content-Location on the same host is invalidated"
curl -s -o /dev/null "$A/max60/loc3"
curl -s -o /dev/null -X POST -d x "$A/post3?loc=http%3A%2F%2Fother.example%2Fmax60%2Floc3"
h=$(curl -s -D - -o /dev/null "$A/max60/loc3")
is "$(count /max60/loc3)" 1 "a Location on another host is not (RFC 9111 4.4)"
like "$h" 'cdn-edge-a; hit' "it is still a hit"

# HTTP/1.1 pipelining behind a slow miss: the socket is read while the fetch runs (cdn_req_hold_read),
# the requests that came meanwhile are answered after it, in order, each with its own body
python3 - "$AP" >"$T/pipe" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /slow/pipe1 HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.3)  # the second and third come while the first is still at the origin
s.sendall(b"GET /max60/pipe2 HTTP/1.1\r\nHost: x\r\n\r\nGET /vary/pipe3 HTTP/1.1\r\nHost: x\r\nAccept-Language: fr\r\nConnection: close\r\n\r\n")
data = b""
s.settimeout(10)
while True:
    try:
        b = s.recv(65536)
    except socket.timeout:
        break
    if not b:
        break
    data += b
print(data.count(b"HTTP/1.1 200"), 0 <= data.find(b"body of /slow/pipe1") < data.find(b"body of /max60/pipe2") < data.find(b"lang=fr"))
PY
read -r n200 inorder <"$T/pipe"
is "$n200" 3 "three pipelined requests behind a slow miss: three 200s"
is "$inorder" True "in the order asked, each with its own body"
is "$(count /slow/pipe1) $(count /max60/pipe2)" "1 1" "each fetched once"
