#!/usr/bin/env bash
# cdn-edge in front of a scripted origin (edge_origin.py, which counts requests per path and keeps
# the last request's headers): hits and misses, Vary (Accept-Language, Accept-Encoding), collapsing, revalidation, Range, HEAD,
# purge, invalidation, targeted Cache-Control, hop-by-hop headers, h2c and TLS+ALPN h2, restart
# from RocksDB, a corrupted RocksDB value, stale-if-error and 502/504.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 74

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port); TP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
    -subj /CN=localhost >/dev/null 2>&1 || bail "openssl"
mkdir -p "$T/db"
echo cache-admin-token-0123456789 > "$T/admin.key"
AUTH="Authorization: Bearer cache-admin-token-0123456789"
start_edge() {
    start edge "$EDGE" -a "127.0.0.1:$EP" --tls "127.0.0.1:$TP" --cert "$T/cert.pem" --key "$T/key.pem" \
        -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -d "$T/db" -w 1 -n t1 --edge-cc Edge-Cache-Control --admin-token-file "$T/admin.key" "$@"
    wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
}
start_edge
E=http://127.0.0.1:$EP
count() { curl -s "http://127.0.0.1:$OP/_count?p=$1"; }
hdr() { grep -i "^$1:" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# 1. miss, then hit; the origin sees one request
h1=$(curl -s -D - -o "$T/b1" "$E/max60/a")
h2=$(curl -s -D - -o "$T/b2" "$E/max60/a")
like "$(echo "$h1" | hdr cache-status)" '^cdn-edge-t1; fwd=miss; fwd-status=200; stored$' "first request is a stored miss"
like "$(echo "$h2" | hdr cache-status)" '^cdn-edge-t1; hit$' "second request is a hit"
like "$(echo "$h2" | hdr age)" '^[0-9]+$' "a hit carries Age"
cmp -s "$T/b1" "$T/b2"; ok $? "hit body equals miss body"
is "$(count /max60/a)" 1 "origin saw one request"
is "$(echo "$h2" | grep -ci '^date:')" 1 "exactly one Date header"
like "$(echo "$h2" | hdr via)" '1.1 cdn-edge-t1' "Via added"

# 2. what went upstream
last=$(curl -s "http://127.0.0.1:$OP/_last?p=/max60/a")
like "$last" '"X-Forwarded-For", "127.0.0.1"' "X-Forwarded-For sent upstream"
like "$last" '"Via", "1.1 cdn-edge-t1"' "Via sent upstream"

# 3. h2c prior knowledge and TLS with ALPN h2 answer from the same cache
like "$(curl -s -D - -o /dev/null --http2-prior-knowledge "$E/max60/a" | head -1)" '^HTTP/2 200' "h2c prior knowledge"
tlsout=$(curl -sk -D - -o "$T/b3" --http2 -w '%{http_version}' "https://127.0.0.1:$TP/max60/a")
like "$tlsout" 'HTTP/2 200' "TLS: ALPN h2"
like "$(echo "$tlsout" | hdr cache-status)" 'fwd=miss' "https is its own key (the scheme is part of it)"
cmp -s "$T/b1" "$T/b3"; ok $? "TLS body equals"
like "$(curl -sk -D - -o /dev/null --http2 "https://127.0.0.1:$TP/max60/a" | hdr cache-status)" '; hit$' "TLS second request is a hit"
like "$(curl -sk --http1.1 -o /dev/null -w '%{http_version}' "https://127.0.0.1:$TP/max60/a")" '^1.1$' "TLS http/1.1"

# 4. Vary: one object per Accept-Language value
a=$(curl -s -H 'Accept-Language: en' "$E/vary/v"); b=$(curl -s -H 'Accept-Language: fr' "$E/vary/v")
a2=$(curl -s -H 'Accept-Language:  en' "$E/vary/v"); b2=$(curl -s -H 'Accept-Language: fr' "$E/vary/v")
is "$a2" "$a" "variant en served from cache (whitespace normalised)"
is "$b2" "$b" "variant fr served from cache"
like "$a$b" 'lang=en.*lang=fr' "variants differ"
is "$(count /vary/v)" 2 "origin saw one request per variant"
# Vary: Accept-Encoding: gzip, identity and no header each have their own variant; spellings of
# one set of codings (case, order, spaces, two header lines) share one
ae() { local b; b=$(curl -s -D "$T/ae.h" "$@" "$E/varyae/e"); printf '%s | %s' "$b" "$(hdr cache-status <"$T/ae.h")"; }
is "$(ae -H 'Accept-Encoding: gzip')" 'ae=gzip #1 | cdn-edge-t1; fwd=miss; fwd-status=200; stored' "Vary Accept-Encoding: gzip client, a miss"
is "$(ae -H 'Accept-Encoding: identity')" 'ae=identity #2 | cdn-edge-t1; fwd=miss; fwd-status=200; stored' "identity client: its own variant"
is "$(ae)" 'ae=none #3 | cdn-edge-t1; fwd=miss; fwd-status=200; stored' "no Accept-Encoding: its own variant"
is "$(ae -H 'Accept-Encoding: gzip')$(ae -H 'Accept-Encoding: identity')$(ae)" \
    'ae=gzip #1 | cdn-edge-t1; hitae=identity #2 | cdn-edge-t1; hitae=none #3 | cdn-edge-t1; hit' "each client gets its own variant from cache"
is "$(ae -H 'Accept-Encoding: br, gzip')" 'ae=br, gzip #4 | cdn-edge-t1; fwd=miss; fwd-status=200; stored' "br, gzip: a new variant"
is "$(ae -H 'Accept-Encoding: GZIP,br')$(ae -H 'Accept-Encoding:  gzip ,  BR ')$(ae -H 'Accept-Encoding: gzip' -H 'Accept-Encoding: br')" \
    'ae=br, gzip #4 | cdn-edge-t1; hitae=br, gzip #4 | cdn-edge-t1; hitae=br, gzip #4 | cdn-edge-t1; hit' \
    "GZIP,br / ' gzip ,  BR ' / two header lines: the same variant as 'br, gzip'"
is "$(count /varyae/e)" 4 "origin saw one request per distinct Accept-Encoding"

# 5. collapsing: 20 parallel requests for one slow URL
cpids=()
for i in $(seq 1 20); do curl -s -m 20 -o "$T/c$i" "$E/slow/c" & cpids+=($!); done
wait "${cpids[@]}"
is "$(count /slow/c)" 1 "20 parallel requests, one origin fetch"
same=1; for i in $(seq 2 20); do cmp -s "$T/c1" "$T/c$i" || same=0; done
is "$same" 1 "all 20 got the same body"
like "$(cat "$T/c1")" 'body of /slow/c' "and it is the right one"

# 6. revalidation: stale object, conditional fetch, 304 refreshes headers (not Content-Length)
curl -s -o /dev/null "$E/reval/r"; sleep 2.2
h=$(curl -s -D - -o "$T/r2" "$E/reval/r")
like "$(echo "$h" | hdr cache-status)" 'fwd=stale; fwd-status=304' "stale object revalidated with 304"
is "$(echo "$h" | hdr x-refreshed)" yes "304 headers merged"
is "$(cat "$T/r2")" "revalidate me" "stored body served after 304"
is "$(echo "$h" | hdr content-length)" 14 "Content-Length not taken from the 304"
like "$(curl -s "http://127.0.0.1:$OP/_last?p=/reval/r")" '"If-None-Match", "\\"r1\\""' "edge sent If-None-Match"
like "$(curl -s -D - -o /dev/null "$E/reval/r" | hdr cache-status)" '; hit$' "refreshed object is fresh again"
is "$(count /reval/r)" 2 "origin saw the fill and one revalidation"

# 7. client conditional answered from cache
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "e1"' "$E/max60/a")" 304 "If-None-Match -> 304 from cache"

# 8. Range and HEAD from a cached full object
curl -s -o "$T/big" "$E/big/x"
is "$(stat -c %s "$T/big")" 300000 "big object fetched whole"
r=$(curl -s -D "$T/rh" -o "$T/part" -r 1000-1099 "$E/big/x" -w '%{http_code}')
is "$r" 206 "Range -> 206"
is "$(hdr content-range < "$T/rh")" "bytes 1000-1099/300000" "Content-Range"
cmp -s "$T/part" <(tail -c +1001 "$T/big" | head -c 100); ok $? "range bytes are right"
is "$(curl -s -o /dev/null -r 400000- -w '%{http_code}' "$E/big/x")" 416 "unsatisfiable -> 416"
hh=$(curl -s -I "$E/big/x")
is "$(echo "$hh" | hdr content-length)" 300000 "HEAD from cache has the length"
is "$(count /big/x)" 1 "Range/HEAD needed no origin request"

# 9. storability: private not stored; targeted field wins and is not forwarded; hop-by-hop
curl -s -o /dev/null "$E/private/p"; curl -s -o /dev/null "$E/private/p"
is "$(count /private/p)" 2 "private responses are not stored"
cc=$(curl -s -D - -o /dev/null "$E/cdncc/c"); curl -s -o /dev/null "$E/cdncc/c"
is "$(count /cdncc/c)" 1 "CDN-Cache-Control overrides Cache-Control: no-store"
unlike "$(echo "$cc" | tr 'A-Z' 'a-z')" 'cdn-cache-control|edge-cache-control' "targeted fields absent (case-insensitive)"
unlike "$(curl -s -D - -o /dev/null "$E/hop/h" | tr 'A-Z' 'a-z')" 'x-hop' "a header named in Connection is not forwarded"
ag=$(curl -s -D - -o /dev/null "$E/age/a" ; sleep 1.1; curl -s -D - -o /dev/null "$E/age/a")
like "$(echo "$ag" | grep -i '^age:' | tail -1)" '^[Aa]ge: 5[1-9]' "upstream Age counts in the Age of a hit"

# 10. purge by URL and by tag (admin, with its token); PURGE on the public listener is off by
# default; unsafe methods invalidate
before=$(count /max60/a)
is "$(curl -s -X PURGE -o /dev/null -w '%{http_code}' "$E/max60/a")" 405 "PURGE on a public listener: 405 (off unless the vhost enables it)"
is "$(curl -s -H "$AUTH" "http://127.0.0.1:$AP/purge?url=$E/max60/a")" 'purged 2' \
    "admin purge by URL (token): the http and the https copy (a URL purge covers every scheme and port)"
curl -s -o /dev/null "$E/max60/a"
is "$(count /max60/a)" $((before + 1)) "after PURGE the next request goes to the origin"
curl -s -o /dev/null "$E/tag/t1"; curl -s -o /dev/null "$E/tag/t2"
tags_hit="$(curl -s -D - -o /dev/null "$E/tag/t1" | hdr cache-status) | $(curl -s -D - -o /dev/null "$E/tag/t2" | hdr cache-status)"
like "$tags_hit" '^cdn-edge-t1; hit \| cdn-edge-t1; hit$' "tagged objects are cached before the purge"
is "$(curl -s -H "$AUTH" "http://127.0.0.1:$AP/purge?tag=group-a")" 'purged 2' "admin purge by Surrogate-Key tag: exactly 2"
sleep 1 # a fill that starts in the second of a purge is not stored (it may have been in flight)
tags_after="$(curl -s -D - -o /dev/null "$E/tag/t1" | hdr cache-status) | $(curl -s -D - -o /dev/null "$E/tag/t2" | hdr cache-status)"
like "$tags_after" '^cdn-edge-t1; fwd=miss; [^|]* \| cdn-edge-t1; fwd=miss; ' "after the tag purge both tagged URLs are misses"
is "$(count /tag/t1) $(count /tag/t2)" "2 2" "after the tag purge the origin is asked again for each"
is "$(curl -s -H "$AUTH" "http://127.0.0.1:$AP/purge?tag=group-a")" 'purged 2' "refetched objects carry the tag again"
is "$(curl -s -H "$AUTH" "http://127.0.0.1:$AP/purge?tag=group-a")" 'purged 0' "a second purge of the tag finds nothing"
curl -s -o /dev/null "$E/max60/q"; curl -s -o /dev/null -X POST -d x=1 "$E/max60/q"; curl -s -o /dev/null "$E/max60/q"
is "$(count /max60/q)" 3 "POST forwarded and invalidated the URL"
is "$(curl -s "http://127.0.0.1:$OP/_last?p=/max60/q" | python3 -c 'import json,sys; print(json.load(sys.stdin)["method"])')" GET "(last was the refill)"

# 11. restart: objects come back from RocksDB; a corrupted value is never served
curl -s -o /dev/null "$E/max60/disk"
stop edge
start_edge
h=$(curl -s -D - -o "$T/d2" "$E/max60/disk")
like "$(echo "$h" | hdr cache-status)" 'hit; detail=disk' "after restart: a hit from disk"
is "$(count /max60/disk)" 1 "no origin request after restart"
# a crash (SIGKILL): a purge made before it holds (deletes go through the WAL), and an object that
# was only in the memtable (puts skip the WAL) is a plain miss afterwards, not a corrupt one
curl -s -o /dev/null "$E/max60/crash"
curl -s -o /dev/null -H "$AUTH" "http://127.0.0.1:$AP/purge?url=$E/max60/disk"
stop edge KILL
start_edge
curl -s -o /dev/null "$E/max60/disk"
is "$(count /max60/disk)" 2 "after a crash: the purge made before it holds (refetched)"
curl -s -o /dev/null "$E/max60/crash"
is "$(count /max60/crash)" 2 "after a crash: an object not yet flushed is a miss"
is "$(curl -s "http://127.0.0.1:$AP/metrics" | awk '$1 == "edge_corrupt_objects_total" {print $2}')" 0 "after a crash: nothing corrupt"
stop edge
python3 - "$T/db" <<'PY'
import glob, sys
files = glob.glob(sys.argv[1] + "/bodies/*.seg")
for f in files:
    data = bytearray(open(f, "rb").read())
    for off in range(len(data) // 3, len(data) // 3 + 64):
        data[off] ^= 0xFF
    open(f, "wb").write(bytes(data))
print("# corrupted %d body log files" % len(files))
PY
start_edge
curl -s -o "$T/big2" "$E/big/x"
cmp -s "$T/big" "$T/big2"; ok $? "corrupted stored body is not served (right bytes)"
is "$(count /big/x)" 2 "refetched from the origin instead"
like "$(curl -s "http://127.0.0.1:$AP/metrics")" 'edge_requests_total\{result="hit",tier="(ram|rocksdb)"\}' "metrics on the admin listener"

# 12. a slow origin beyond the configured timeout: 504 with a reason, no hang
E2P=$(free_port)
start edge2 "$EDGE" -a "127.0.0.1:$E2P" -b "http://127.0.0.1:$OP" -w 1 --timeout 300
wait_port 127.0.0.1 "$E2P" || bail "edge2 did not start"
r=$(curl -s -m 10 -o "$T/t" -w '%{http_code}' "http://127.0.0.1:$E2P/slow/timeout")
is "$r" 504 "origin slower than --timeout -> 504"
like "$(cat "$T/t")" 'origin timeout' "with a reason"
stop edge2

# 13. origin down: stale-if-error serves stale, others get 502 with a reason
curl -s -o /dev/null "$E/sie/s"; sleep 2.2
stop origin
h=$(curl -s -D - -o "$T/s2" "$E/sie/s")
is "$(cat "$T/s2")" "stale but useful" "stale-if-error serves the stale object"
like "$(echo "$h" | hdr cache-status)" 'stale-if-error' "Cache-Status says why"
r=$(curl -s -o "$T/e" -w '%{http_code}' "$E/max60/never")
is "$r" 502 "uncached object with the origin down -> 502"
like "$(cat "$T/e")" 'origin unreachable' "with a reason"
