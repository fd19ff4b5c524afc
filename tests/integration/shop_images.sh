#!/usr/bin/env bash
# Product images in several widths and in AVIF and WebP as well as PNG, chosen by Accept (Vary: Accept),
# and cdn-edge in front: Accept normalised on image_paths to the formats the origin offers before
# the Vary key is built, so five browsers' Accept strings make two stored variants (two origin
# requests), said in Cache-Status (detail=accept-webp) and counted per format.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 33
APP=$(bin shop-app)
EDGE=$(bin cdn-edge)
[ -x "$APP" ] && [ -x "$EDGE" ] || bail "shop-app or cdn-edge is not built"
export XDG_CACHE_HOME="$T/cache"

"$APP" --generate 500 --seed 3 --db "$T/a.db" >"$T/gen.log" 2>&1 || bail "catalog"
P=$(free_port); EP=$(free_port); AP=$(free_port)
start app "$APP" -a 127.0.0.1:$P --db "$T/a.db" --name app1
wait_http http://127.0.0.1:$P/healthz || bail "shop-app did not start"
cat >"$T/edge.yaml" <<YAML
name: img
listen: ["127.0.0.1:$EP"]
admin: 127.0.0.1:$AP
workers: 2
vhosts:
  img.shop.test:
    origin: http://127.0.0.1:$P
YAML
start edge "$EDGE" -c "$T/edge.yaml"
wait_http http://127.0.0.1:$AP/healthz || bail "cdn-edge did not start"
U=http://127.0.0.1:$P
E=http://127.0.0.1:$EP
hdr() { grep -i "^$1:" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }
CHROME='image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8'
FIREFOX='image/avif,image/webp,*/*'
CHROME_OLD='image/webp,image/apng,image/*,*/*;q=0.8'
SAFARI_OLD='image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5'
CURL='*/*'

# --- the origin ------------------------------------------------------------------------------
curl -s -D "$T/a.h" -o "$T/a.img" -H "Accept: $CHROME" $U/img/42/320
is "$(hdr content-type <"$T/a.h")" image/avif "Accept naming image/avif (Chrome's): AVIF"
is "$(tail -c +5 "$T/a.img" | head -c 8)" ftypavif "the body is an AVIF file"
curl -s -D "$T/w.h" -o "$T/w.img" -H "Accept: $CHROME_OLD" $U/img/42/320
is "$(hdr content-type <"$T/w.h")" image/webp "Accept naming image/webp only: WebP"
is "$(head -c 4 "$T/w.img")$(tail -c +9 "$T/w.img" | head -c 4)" RIFFWEBP "the body is a WebP file"
is "$(hdr vary <"$T/w.h")" Accept "negotiated: Vary: Accept"
curl -s -D "$T/p.h" -o "$T/p.img" -H "Accept: $CURL" $U/img/42/320
is "$(hdr content-type <"$T/p.h")" image/png "*/*: PNG"
[ "$(hdr etag <"$T/w.h")" != "$(hdr etag <"$T/p.h")" ]; ok $? "each format has its own ETag"
ws=$(stat -c %s "$T/w.img"); ps=$(stat -c %s "$T/p.img"); as=$(stat -c %s "$T/a.img")
[ "$ws" -lt "$ps" ] && [ "$as" -lt "$ps" ]; ok $? "AVIF and WebP are smaller than PNG at 320 px (AVIF $as, WebP $ws, PNG $ps bytes)"
curl -s -D "$T/x.h" -o /dev/null $U/img/42/640.webp
is "$(hdr content-type <"$T/x.h") $(hdr vary <"$T/x.h")" "image/webp " "an explicit .webp: WebP, no Vary"
for w in 160 320 640 1280; do
    got=$(curl -s -H 'Accept: */*' $U/img/42/$w | python3 -c 'import sys,struct; d=sys.stdin.buffer.read(); print(struct.unpack(">I", d[16:20])[0])')
    is "$got" "$w" "/img/42/$w is $w px wide"
done
like "$(curl -s $U/p/42)" 'srcset="https://img.shop.test/img/42/160 160w, https://img.shop.test/img/42/320 320w, https://img.shop.test/img/42/640 640w, https://img.shop.test/img/42/1280 1280w" sizes="' "product page: srcset and sizes"
is "$(curl -s -o /dev/null -w '%{http_code}' $U/img/42/320.gif)" 404 "another extension: 404"

# --- through cdn-edge ------------------------------------------------------------------------
imgs() { curl -s $U/metrics | sed -n 's/^shop_requests_total{class="image",status="200"} //p'; }
i0=$(imgs)
get() { curl -s -D "$T/e.h" -o "$T/e.img" -H 'Host: img.shop.test' -H "Accept: $1" "$E/img/77/320"; }
get "$CHROME";    cs1=$(hdr cache-status <"$T/e.h"); t1=$(hdr content-type <"$T/e.h")
get "$FIREFOX";   cs2=$(hdr cache-status <"$T/e.h"); t2=$(hdr content-type <"$T/e.h")
get "$CHROME_OLD"; cs3=$(hdr cache-status <"$T/e.h")
get "$SAFARI_OLD"; cs4=$(hdr cache-status <"$T/e.h"); t4=$(hdr content-type <"$T/e.h")
get "$CURL";      cs5=$(hdr cache-status <"$T/e.h"); t5=$(hdr content-type <"$T/e.h")
like "$cs1" 'fwd=miss.*stored; detail=accept-webp$' "first WebP browser: a stored miss, detail=accept-webp ($cs1)"
like "$cs2" '; hit; detail=accept-webp$' "another browser's Accept naming WebP: a hit ($cs2)"
like "$cs3" '; hit; detail=accept-webp$' "an older Chrome's: a hit too"
like "$cs4" 'fwd=(miss|vary-miss).*detail=accept-png$' "a browser without WebP: the PNG variant, fetched once ($cs4)"
like "$cs5" '; hit; detail=accept-png$' "curl's */*: the PNG variant, a hit"
is "$t1 $t2 $t4 $t5" "image/webp image/webp image/png image/png" "each client got the format it can show"
is "$(( $(imgs) - i0 ))" 2 "five Accept strings, two origin requests (one per format)"
metrics=$(curl -s http://127.0.0.1:$AP/metrics)
like "$metrics" 'edge_image_requests_total\{format="webp"\} 3' "edge metrics: 3 WebP"
like "$metrics" 'edge_image_requests_total\{format="png"\} 2' "edge metrics: 2 PNG"
get 'image/webp;q=0, */*'
is "$(hdr content-type <"$T/e.h")" image/png "image/webp refused by weight: PNG"
curl -s -D "$T/n.h" -o /dev/null -H 'Host: img.shop.test' -H 'Accept:' "$E/img/77/320"
like "$(hdr content-type <"$T/n.h") $(hdr cache-status <"$T/n.h")" '^image/png .*hit; detail=accept-png$' "no Accept at all: the PNG variant"
unlike "$(curl -s -D - -o /dev/null -H 'Host: img.shop.test' "$E/p/42" | hdr cache-status)" 'accept-' "pages are not touched"

# --- an edge whose origin offers AVIF too: image_formats [avif, webp, png] --------------------
EP2=$(free_port); AP2=$(free_port)
cat >"$T/edge2.yaml" <<YAML
name: avif
listen: ["127.0.0.1:$EP2"]
admin: 127.0.0.1:$AP2
workers: 1
image_formats: [avif, webp, png]
vhosts:
  img.shop.test:
    origin: http://127.0.0.1:$P
YAML
start edge2 "$EDGE" -c "$T/edge2.yaml"
wait_http http://127.0.0.1:$AP2/healthz || bail "the second cdn-edge did not start"
i0=$(imgs)
get2() { curl -s -D "$T/e2.h" -o /dev/null -H 'Host: img.shop.test' -H "Accept: $1" "http://127.0.0.1:$EP2/img/78/320"; }
get2 "$CHROME"; a1="$(hdr content-type <"$T/e2.h") $(hdr cache-status <"$T/e2.h")"
get2 "$FIREFOX"; a2="$(hdr content-type <"$T/e2.h") $(hdr cache-status <"$T/e2.h")"
get2 "$CHROME_OLD"; a3="$(hdr content-type <"$T/e2.h") $(hdr cache-status <"$T/e2.h")"
like "$a1" '^image/avif .*stored; detail=accept-avif$' "avif edge: Chrome gets AVIF ($a1)"
like "$a2" '^image/avif .*; hit; detail=accept-avif$' "avif edge: Firefox's Accept too, a hit"
like "$a3" '^image/webp .*detail=accept-webp$' "avif edge: a browser without AVIF gets WebP"
is "$(( $(imgs) - i0 ))" 2 "avif edge: three Accept strings, two origin requests"

# --- configuration ---------------------------------------------------------------------------
printf 'origin: http://127.0.0.1:1\nimage_formats: [png, webp]\n' >"$T/bad.yaml"
like "$("$EDGE" -c "$T/bad.yaml" -t 2>&1)" 'image_formats: avif, webp, png, in that order' "-t: formats out of order are refused"
printf 'origin: http://127.0.0.1:1\nimage_paths: [img]\n' >"$T/bad2.yaml"
like "$("$EDGE" -c "$T/bad2.yaml" -t 2>&1)" "must start with /" "-t: a path that is not a path is refused"
