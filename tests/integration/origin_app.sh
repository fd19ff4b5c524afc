#!/usr/bin/env bash
# shop-app with real clients: catalog determinism, caching headers per class, validators (304),
# ranges (206/416), HEAD, gzip, the cart never cacheable, identical image bytes and ETags on two
# app servers, metrics, error injection, a delay that does not block the loop, graceful stop.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
# SHOP_DB=pg (origin_app_pg.sh): the same checks with the catalog and carts in PostgreSQL
DB="$T/a.db"
if [ "${SHOP_DB:-sqlite}" = pg ]; then
    . "$top_srcdir/tests/pglib.sh"
    start_postgres pg || skip_all "$PG_SKIP"
    DB=$PG_URL
fi
plan 56
APP=$(bin shop-app)
[ -x "$APP" ] || bail "shop-app is not built"
export XDG_CACHE_HOME="$T/cache"

# --- catalog ---------------------------------------------------------------------------------
"$APP" --generate 1500 --seed 3 --db "$T/a.db" >"$T/gen.log" 2>&1
ok $? "--generate writes a catalog"
"$APP" --generate 1500 --seed 3 --db "$T/b.db" >>"$T/gen.log" 2>&1
cmp -s "$T/a.db" "$T/b.db"; ok $? "same seed: same catalog bytes"
"$APP" --generate 1500 --seed 4 --db "$T/c.db" >>"$T/gen.log" 2>&1
! cmp -s "$T/a.db" "$T/c.db"; ok $? "another seed: another catalog"
if [ "$DB" != "$T/a.db" ]; then
    "$APP" --generate 1500 --seed 3 --db "$DB" >>"$T/gen.log" 2>&1 || bail "cannot generate the catalog into $DB"
fi

p1=$(free_port); p2=$(free_port)
start app1 "$APP" -a 127.0.0.1:$p1 --db "$DB" --name app1 --access-log "$T/app1.access"
start app2 "$APP" -a 127.0.0.1:$p2 --db "$DB" --name app2 --threads 2
wait_http http://127.0.0.1:$p1/healthz || bail "app1 did not start"
wait_http http://127.0.0.1:$p2/healthz || bail "app2 did not start"
U=http://127.0.0.1:$p1
hdr() { grep -i "^$1:" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }

# --- images ----------------------------------------------------------------------------------
curl -s -D "$T/img.h" -o "$T/img1" $U/img/42/medium.png
is "$(hdr cache-control <"$T/img.h")" "public, max-age=86400, immutable" "image: Cache-Control"
etag=$(hdr etag <"$T/img.h")
like "$etag" '^"[0-9a-f]{16}"$' "image: strong ETag"
like "$(hdr last-modified <"$T/img.h")" 'GMT$' "image: Last-Modified"
like "$(hdr surrogate-key <"$T/img.h")" '^product-42 category-[0-9]+' "image: Surrogate-Key"
is "$(head -c 8 "$T/img1" | od -An -c | tr -d ' ')" '211PNG\r\n032\n' "image: a PNG"
size=$(stat -c %s "$T/img1")
[ "$size" -gt 20000 ] && [ "$size" -lt 800000 ]; ok $? "image: realistic size ($size bytes)"
curl -s -D "$T/img2.h" -o "$T/img2" http://127.0.0.1:$p2/img/42/medium.png
cmp -s "$T/img1" "$T/img2"; ok $? "two app servers: same image bytes"
is "$(hdr etag <"$T/img2.h")" "$etag" "two app servers: same ETag"
is "$(hdr last-modified <"$T/img2.h")" "$(hdr last-modified <"$T/img.h")" "two app servers: same Last-Modified"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
is "$(code -H "If-None-Match: $etag" $U/img/42/medium.png)" 304 "If-None-Match: 304"
is "$(code -H "If-None-Match: \"x\", W/$etag" $U/img/42/medium.png)" 304 "If-None-Match weak, in a list: 304"
is "$(code -H 'If-None-Match: *' $U/img/42/medium.png)" 304 "If-None-Match *: 304"
is "$(code -H 'If-None-Match: "nope"' $U/img/42/medium.png)" 200 "If-None-Match other tag: 200"
is "$(code -H "If-Modified-Since: $(hdr last-modified <"$T/img.h")" $U/img/42/medium.png)" 304 "If-Modified-Since: 304"
curl -s -D "$T/r.h" -o "$T/r.body" -H 'Range: bytes=100-199' $U/img/42/medium.png
is "$(head -n1 "$T/r.h" | cut -d' ' -f2)" 206 "Range: 206"
is "$(hdr content-range <"$T/r.h")" "bytes 100-199/$size" "Range: Content-Range"
cmp -s "$T/r.body" <(tail -c +101 "$T/img1" | head -c 100); ok $? "Range: the right bytes"
curl -s -D "$T/r416.h" -o /dev/null -H "Range: bytes=$size-" $U/img/42/medium.png
is "$(head -n1 "$T/r416.h" | cut -d' ' -f2)" 416 "unsatisfiable Range: 416"
is "$(hdr content-range <"$T/r416.h")" "bytes */$size" "416: Content-Range bytes */size"
is "$(code -H 'Range: bytes=0-1,5-9' $U/img/42/medium.png)" 200 "several ranges: 200 full"
is "$(code -H 'Range: bytes=0-9' -H 'If-Range: "other"' $U/img/42/medium.png)" 200 "If-Range mismatch: 200 full"
curl -s -I -o "$T/head.h" $U/img/42/medium.png
is "$(hdr content-length <"$T/head.h")" "$size" "HEAD: Content-Length of the full body"
# a body after a HEAD answer would break the next response on the same connection
is "$(curl -s -I -o /dev/null -w '%{http_code} ' $U/img/42/medium.png --next -s -o /dev/null -w '%{http_code}' $U/healthz)" "200 200" "HEAD: no body on the connection"
is "$(code $U/img/999999/thumb.png)" 404 "image of an unknown product: 404"

# eight clients ask for one cold image at once: it is rendered once (off the loop), all get it
renders() { curl -s $U/metrics | sed -n 's/^shop_image_renders_total //p'; }
r0=$(renders)
cpids=()
for i in 1 2 3 4 5 6 7 8; do curl -s --max-time 20 -o "$T/cold.$i" $U/img/77/large.png & cpids+=($!); done
wait "${cpids[@]}"
r1=$(renders)
is "$((r1 - r0))" 1 "concurrent misses of one image: one render"
same=1; for i in 2 3 4 5 6 7 8; do cmp -s "$T/cold.1" "$T/cold.$i" || same=0; done
[ "$same" = 1 ] && [ -s "$T/cold.1" ]; ok $? "concurrent misses: every client got the same image"

# --- pages -----------------------------------------------------------------------------------
curl -s -D "$T/p.h" -o "$T/p.html" $U/p/42
is "$(hdr cache-control <"$T/p.h")" "public, max-age=60, s-maxage=300, stale-while-revalidate=30, stale-if-error=600" "product page: Cache-Control"
like "$(hdr surrogate-key <"$T/p.h")" '^product-42 category-[0-9]+$' "product page: Surrogate-Key"
grep -q 'src="https://img.shop.test/img/42/640" srcset="https://img.shop.test/img/42/160 160w, .*/img/42/1280 1280w"' "$T/p.html"; ok $? "product page links the image on the CDN host, in four widths"
is "$(code -H "If-None-Match: $(hdr etag <"$T/p.h")" $U/p/42)" 304 "product page: 304 on its ETag"
curl -s -D "$T/c.h" -o "$T/c.plain" $U/c/kitchen
like "$(hdr vary <"$T/c.h")" 'Accept-Encoding' "category: Vary: Accept-Encoding"
curl -s -D "$T/cz.h" -o "$T/c.gz" -H 'Accept-Encoding: gzip' $U/c/kitchen
is "$(hdr content-encoding <"$T/cz.h")" gzip "category: gzip when asked"
cmp -s <(gzip -dc "$T/c.gz") "$T/c.plain"; ok $? "gzip body decodes to the plain page"
is "$(code "$U/c/kitchen?page=99999")" 404 "category page past the end: 404"
curl -s -D "$T/404.h" -o /dev/null $U/no/such/page
is "$(hdr cache-control <"$T/404.h")" "public, max-age=10" "404: short-lived"
like "$(curl -s "$U/api/search?q=lamp")" '"count":[1-9]' "search finds products"
like "$(curl -s $U/api/products/7)" '"id":7,' "JSON product"

# --- cart ------------------------------------------------------------------------------------
curl -s -D "$T/cart.h" -o /dev/null $U/cart
is "$(hdr cache-control <"$T/cart.h")" "private, no-store" "cart: private, no-store"
curl -s -D "$T/acart.h" -o "$T/acart" -X POST -b 'sid=u1' "$U/api/cart?add=42&qty=2"
is "$(hdr cache-control <"$T/acart.h")" "private, no-store" "api cart: private, no-store"
like "$(grep -i '^set-cookie: cart=' "$T/acart.h" | tr -d '\r')" 'cart=42:2(;|$)' "api cart: the cart goes to a cookie"
like "$(curl -s -b 'sid=u1; cart=42:2' $U/api/cart)" '"id":42,"qty":2' "api cart: read back from the cookie"

# --- ops -------------------------------------------------------------------------------------
like "$(curl -s $U/metrics)" 'shop_requests_total\{class="image",status="304"\} [1-9]' "metrics count requests by class and status"
grep -q '/img/42/medium.png' "$T/app1.access"; ok $? "access log written"

# bad input: a garbage request line, an oversized header, silly ids; the server answers and lives
raw=$(python3 - "$p1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GARBAGE \x01\x02\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode(errors="replace"))
PY
)
like "$raw" '^HTTP/1\.1 4[0-9][0-9]' "a garbage request line: 4xx"
big=$(python3 - "$p1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
try:
    s.sendall(b"GET /p/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 500000 + b"\r\n\r\n")
    line = s.recv(100).split(b"\r\n")[0].decode(errors="replace")
except OSError:
    line = ""
print(line or "closed")
PY
)
like "$big" '^(HTTP/1\.1 4[0-9][0-9]|closed)' "a 500 KB header is refused ($big)"
is "$(code $U/p/99999999999999999999)" 404 "an id past 32 bits: 404"
is "$(code "$U/img/0/thumb.png") $(code "$U/img/042/thumb.png") $(code "$U/img/1/thumb.gif")" "404 404 404" "malformed image paths: 404"
head -c 2000000 /dev/zero >"$T/big.body"
is "$(code -X POST --data-binary @"$T/big.body" $U/api/cart)" 413 "a 2 MB body to the cart: 413"
is "$(code $U/healthz)" 200 "still alive after bad input"

# error injection and a delay that does not block the loop
p3=$(free_port)
start app3 "$APP" -a 127.0.0.1:$p3 --db "$DB" --error-rate 1
p4=$(free_port)
start app4 "$APP" -a 127.0.0.1:$p4 --db "$DB" --delay 3000
wait_http http://127.0.0.1:$p3/healthz && wait_http http://127.0.0.1:$p4/healthz || bail "app3/app4 did not start"
is "$(code http://127.0.0.1:$p3/p/1)" 500 "error rate 1: 500"
curl -s -o "$T/slow.out" -w '%{http_code}' http://127.0.0.1:$p4/p/1 >"$T/slow.code" &
slow=$!
sleep 0.3
is "$(code --max-time 2 http://127.0.0.1:$p4/healthz)" 200 "a delayed request does not block the loop"
stop app4 TERM
app4_rc=$?
wait $slow
is "$(cat "$T/slow.code")" 200 "SIGTERM: the request in flight finishes"
is "$app4_rc" 0 "SIGTERM: exit 0"
