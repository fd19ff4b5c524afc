#!/usr/bin/env bash
# cdn-edge sends a stored or forwarded response with the origin's own Date (RFC 9111: the stored
# Date is never rewritten; RFC 9110 6.6.1: a proxy passes it on), on HTTP/1.1, h2c and h2 over
# TLS, on misses, hits, 304s and ranges from the cache, passes, and after a restart; a response
# without a Date gets the time it was received, and keeps it on every hit.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 31

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port); TP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
    -subj /CN=localhost >/dev/null 2>&1 || bail "openssl"
mkdir -p "$T/db"
start_edge() {
    start edge "$EDGE" -a "127.0.0.1:$EP" --tls "127.0.0.1:$TP" --cert "$T/cert.pem" --key "$T/key.pem" \
        -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -d "$T/db" -w 2 -n t1
    wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
}
start_edge
E=http://127.0.0.1:$EP
S=https://127.0.0.1:$TP
count() { curl -s "http://127.0.0.1:$OP/_count?p=$1"; }
hdr() { grep -i "^$1:" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
imf() { python3 -c 'import sys, email.utils; print(email.utils.formatdate(email.utils.parsedate_to_datetime(sys.argv[1]).timestamp(), usegmt=True))' "$1"; }

# 1. a miss passes the origin's Date on, once
h=$(curl -s -D - -o /dev/null "$E/dated/a")
od=$(echo "$h" | hdr x-origin-date)
like "$od" '^[A-Z][a-z][a-z], [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT$' "origin sent an IMF-fixdate (30 s ago)"
is "$(echo "$h" | hdr date)" "$od" "miss: the origin's Date"
is "$(echo "$h" | grep -ci '^date:')" 1 "miss: exactly one Date"

# 2. hits on every protocol: the stored Date, unchanged, and an Age that counts from it
sleep 1.2
h=$(curl -s -D - -o /dev/null "$E/dated/a")
like "$(echo "$h" | hdr cache-status)" '; hit$' "HTTP/1.1 hit"
is "$(echo "$h" | hdr date)" "$od" "HTTP/1.1 hit: the stored Date"
is "$(echo "$h" | grep -ci '^date:')" 1 "HTTP/1.1 hit: exactly one Date"
age=$(echo "$h" | hdr age)
[ "${age:-0}" -ge 31 ] 2>/dev/null; ok $? "Age counts from the stored Date ($age >= 31)"
h=$(curl -s -D - -o /dev/null --http2-prior-knowledge "$E/dated/a")
like "$(echo "$h" | head -1)" '^HTTP/2 200' "h2c hit"
is "$(echo "$h" | hdr date)" "$od" "h2c hit: the stored Date"
# https is another cache key (the scheme is in it): a miss first, then the hit
ods=$(curl -sk -D - -o /dev/null --http2 "$S/dated/a" | hdr x-origin-date)
sleep 1.1
h=$(curl -sk -D - -o /dev/null --http2 "$S/dated/a")
like "$(echo "$h" | head -1)" '^HTTP/2 200' "h2 over TLS hit"
is "$(echo "$h" | hdr date)" "$ods" "h2 over TLS hit: the stored Date"
is "$(echo "$h" | grep -ci '^date:')" 1 "h2 hit: exactly one Date"
# many streams on one h2 connection, three objects with three Dates (HPACK indexes them): each
# stream's Date is its own object's
curl -s -o /dev/null "$E/dated/e"; sleep 1.1; curl -s -o /dev/null "$E/dated/f"
if command -v nghttp >/dev/null; then
    nghttp -n -v -m 4 "$E/dated/a" "$E/dated/e" "$E/dated/f" > "$T/ng" 2>&1
    good=$(python3 -c '
import re, sys
d, o = {}, {}
for m in re.finditer(r"recv \(stream_id=(\d+)\) (date|x-origin-date): (.*)", open(sys.argv[1]).read()):
    (d if m.group(2) == "date" else o)[m.group(1)] = m.group(3)
print(sum(1 for k in o if d.get(k) == o[k]))' "$T/ng")
    is "$good" 12 "nghttp: 12 streams on one connection, each with its own object's Date"
else
    skip "nghttp not installed (nghttp2-client): 12 streams on one connection"
fi

# 3. what the cache answers itself carries it too: 304, 206, HEAD
h=$(curl -s -D - -o /dev/null -H 'If-None-Match: "d1"' "$E/dated/a")
like "$(echo "$h" | head -1)" '^HTTP/1.1 304' "304 from cache"
is "$(echo "$h" | hdr date)" "$od" "304 from cache: the stored Date"
h=$(curl -s -D - -o /dev/null -r 0-3 "$E/dated/a")
is "$(echo "$h" | hdr date)" "$od" "206 from cache: the stored Date"
h=$(curl -s -I "$E/dated/a")
is "$(echo "$h" | hdr date)" "$od" "HEAD from cache: the stored Date"
is "$(count /dated/a)" 2 "all of that from two origin requests (http and https)"

# 4. an obsolete (RFC 850) Date: the same instant, sent as IMF-fixdate
h=$(curl -s -D - -o /dev/null "$E/dated/b?form=850")
od850=$(echo "$h" | hdr x-origin-date)
like "$od850" '^[A-Z][a-z]+day, [0-9]{2}-' "origin sent an RFC 850 date"
is "$(echo "$h" | hdr date)" "$(imf "$od850")" "RFC 850 Date passed on as the same instant"

# 5. a pass (no-store) forwards the origin's Date
h=$(curl -s -D - -o /dev/null "$E/dated/c?cc=no-store")
like "$(echo "$h" | hdr cache-status)" 'fwd=' "no-store: forwarded"
is "$(echo "$h" | hdr date)" "$(echo "$h" | hdr x-origin-date)" "pass: the origin's Date"

# 6. no Date from the origin: the edge adds the time of receipt, and hits keep that one
h0=$(curl -s -D - -o /dev/null "$E/nodate/d")
d0=$(echo "$h0" | hdr date)
like "$d0" ' GMT$' "no Date upstream: the edge adds one"
sleep 1.2
h1=$(curl -s -D - -o /dev/null "$E/nodate/d")
sleep 1.1
h2=$(curl -s -D - -o /dev/null --http2-prior-knowledge "$E/nodate/d")
d1=$(echo "$h1" | hdr date); d2=$(echo "$h2" | hdr date)
if [ "$d1" = "$d2" ] && [ -n "$d1" ]; then pass "hits 1 s apart show one Date ($d1)"; else fail "hits show $d1 / $d2"; fi
r=$(python3 -c 'import sys, email.utils as u; print(abs(u.parsedate_to_datetime(sys.argv[1]).timestamp()-u.parsedate_to_datetime(sys.argv[2]).timestamp()) <= 1)' "$d0" "$d1")
is "$r" True "and it is the time the miss was received ($d0)"

# 6b. a 103 before the response (forwarded ahead of it): over HTTP/1.1 with TLS the response's
# first write waits for the 103's, and still carries the origin's Date
h=$(curl -sk --http1.1 -D - -o "$T/e1" "$S/early/d?old=1&one=1")
like "$(echo "$h" | head -1)" '^HTTP/1.1 103 Early Hints' "HTTP/1.1 over TLS: the 103 comes first"
final=$(echo "$h" | sed -n '/^HTTP\/1.1 200/,$p')
like "$final" '^HTTP/1.1 200' "then the 200"
is "$(echo "$final" | hdr date)" "$(echo "$final" | hdr x-origin-date)" "with the origin's Date"
like "$(cat "$T/e1")" '^body of /early/d' "and its body"

# 7. after a restart the object comes back from RocksDB with the same Date
stop edge
start_edge
h=$(curl -s -D - -o /dev/null "$E/dated/a")
like "$(echo "$h" | hdr cache-status)" 'hit' "after restart: a hit"
is "$(echo "$h" | hdr date)" "$od" "after restart: the stored Date"
