#!/usr/bin/env bash
# cdn-edge, Range misses: an object not known to be larger than range_fetch_above is fetched whole
# once (the first Range request already gets its 206 from the fill, later ones from the store); an
# object known to be larger (its length seen in an earlier response, or in the head of the fill the
# first Range miss started, when that fill will not be stored) has the client's Range sent upstream
# and the 206 passed through uncached. Origin requests and bytes are counted.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 15

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
O=http://127.0.0.1:$OP
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
# 300000-byte /big/ objects are above both limits (not stored, ranges forwarded once known);
# 50000-byte /mid/ objects are below
cat > "$T/edge.yaml" <<YAML
origin: $O
listen: ["127.0.0.1:$EP"]
admin: 127.0.0.1:$AP
workers: 1
name: r
max_object: 200000
range_fetch_above: 100000
YAML
start edge "$EDGE" -c "$T/edge.yaml"
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
E=http://127.0.0.1:$EP
count() { curl -s "$O/_count?p=$1"; }
bytes() { curl -s "$O/_bytes?p=$1"; }
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) % 251 for i in range(300000)))' > "$T/big"
head -c 50000 "$T/big" > "$T/mid"
lasthdr() {
    curl -s "$O/_last?p=$1" | python3 -c 'import json,sys
d=json.load(sys.stdin); n=sys.argv[1].lower()
print(next((v for k, v in d.get("headers", []) if k.lower() == n), ""))' "$2"
}
hdr() { grep -i "^$1:" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# below the limit: the first Range miss fetches the whole object and answers the range from it
r=$(curl -s -D "$T/h1" -o "$T/p1" -w '%{http_code}' -r 100-199 "$E/mid/a")
is "$r" 206 "mid: the first Range miss is answered 206"
is "$(hdr content-range < "$T/h1")" "bytes 100-199/50000" "with the range of the whole object"
cmp -s "$T/p1" <(tail -c +101 "$T/mid" | head -c 100); ok $? "and its bytes"
r=$(curl -s -o "$T/p2" -w '%{http_code}' -r 40000-40099 "$E/mid/a")
cmp -s "$T/p2" <(tail -c +40001 "$T/mid" | head -c 100); ok $? "a second range comes from the store ($r)"
is "$(count /mid/a)" 1 "mid: one origin request"
is "$(bytes /mid/a)" 50000 "of the whole object (50000 bytes)"
is "$(lasthdr /mid/a range)" "" "the fill did not send the client's Range"

# above the limit, length unknown: the whole fetch's head tells the length (above range_fetch_above,
# and above max_object: not stored), so the request is asked again as a range and the fill dropped
r=$(curl -s -D "$T/h3" -o "$T/p3" -w '%{http_code}' -r 0-99 "$E/big/b")
is "$r $(lasthdr /big/b range)" "206 bytes=0-99" "big: the first Range miss (length unknown) is asked again as a range"
cmp -s "$T/p3" <(head -c 100 "$T/big"); ok $? "with the right bytes"
# now its length is known: the next Range misses go upstream as ranges
r=$(curl -s -D "$T/h4" -o "$T/p4" -w '%{http_code}' -r 1000-1099 "$E/big/b")
is "$r $(lasthdr /big/b range)" "206 bytes=1000-1099" \
    "big: the next Range miss sends the client's Range upstream"
is "$(hdr content-range < "$T/h4")" "bytes 1000-1099/300000" "the origin's 206 passes through"
cmp -s "$T/p4" <(tail -c +1001 "$T/big" | head -c 100); ok $? "with the right bytes"
like "$(hdr cache-status < "$T/h4")" 'fwd-status=206; detail=range-pass' "Cache-Status says range-pass"
curl -s -o /dev/null -r 2000-2099 "$E/big/b"
is "$(count /big/b)" 4 "big: the dropped whole fetch, then one origin request per range (uncached)"
like "$(hdr cache-status < "$T/h3")" 'detail=range-pass' "the first one's Cache-Status says range-pass too"
