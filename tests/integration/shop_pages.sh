#!/usr/bin/env bash
# The storefront as a shop (issue 14): a stylesheet and a script under content-hashed names,
# immutable for a year; pages that link them and stay short-lived and revalidatable; products
# above the categories on the home page; search results and the cart as HTML pages beside the
# JSON API; "Add to cart" as a form POST that answers 303 and works without JavaScript; the cart
# never stored by cdn-edge in front of shop-app.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 35
APP=$(bin shop-app)
EDGE=$(bin cdn-edge)
[ -x "$APP" ] && [ -x "$EDGE" ] || bail "shop-app or cdn-edge is not built"
export XDG_CACHE_HOME="$T/cache"

"$APP" --generate 1500 --seed 3 --db "$T/a.db" >"$T/gen.log" 2>&1 || bail "catalog"
P=$(free_port); EP=$(free_port); AP=$(free_port)
start app "$APP" -a 127.0.0.1:$P --db "$T/a.db" --name app1 --cdn-host ""
wait_http http://127.0.0.1:$P/healthz || bail "shop-app did not start"
cat >"$T/edge.yaml" <<YAML
name: shop
listen: ["127.0.0.1:$EP"]
admin: 127.0.0.1:$AP
workers: 1
vhosts:
  www.shop.test:
    origin: http://127.0.0.1:$P
YAML
start edge "$EDGE" -c "$T/edge.yaml"
wait_http http://127.0.0.1:$AP/healthz || bail "cdn-edge did not start"
U=http://127.0.0.1:$P
hdr() { grep -i "^$1:" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# --- pages link the assets -------------------------------------------------------------------
curl -s -D "$T/home.h" -o "$T/home.html" $U/
css=$(grep -o 'href="/assets/shop\.[0-9a-f]\{16\}\.css"' "$T/home.html" | cut -d'"' -f2)
js=$(grep -o 'src="/assets/shop\.[0-9a-f]\{16\}\.js"' "$T/home.html" | cut -d'"' -f2)
like "$css" '^/assets/shop\.[0-9a-f]{16}\.css$' "home links a content-hashed stylesheet"
like "$js" '^/assets/shop\.[0-9a-f]{16}\.js$' "home links a content-hashed script"
grid=$(grep -n 'class="grid"' "$T/home.html" | head -1 | cut -d: -f1)
cats=$(grep -n 'class="cats"' "$T/home.html" | head -1 | cut -d: -f1)
[ -n "$grid" ] && [ -n "$cats" ] && [ "$grid" -lt "$cats" ]; ok $? "home: products come before the categories"
is "$(grep -c 'class="card"' "$T/home.html")" 12 "home: twelve product cards"
is "$(hdr cache-control <"$T/home.h")" "public, max-age=30, s-maxage=60" "HTML: short-lived"
is "$(code -H "If-None-Match: $(hdr etag <"$T/home.h")" $U/)" 304 "HTML: revalidatable (304 on its ETag)"
for p in /c/kitchen /p/42 /cart "/search?q=lamp"; do
    curl -s -b 'sid=x' "$U$p" | grep -q "href=\"$css\"" || { fail "page $p links the stylesheet"; continue; }
    pass "page $p links the stylesheet"
done

# --- the assets ------------------------------------------------------------------------------
curl -s -D "$T/css.h" -o "$T/css" $U$css
is "$(hdr cache-control <"$T/css.h")" "public, max-age=31536000, immutable" "stylesheet: immutable for a year"
like "$(hdr content-type <"$T/css.h")" '^text/css' "stylesheet: text/css"
is "$(curl -s -H 'Accept-Encoding: gzip' $U$css | gzip -dc | cmp -s - "$T/css" && echo same)" same "stylesheet: gzip when asked, the same bytes"
curl -s -D "$T/js.h" -o /dev/null $U$js
is "$(hdr cache-control <"$T/js.h")" "public, max-age=31536000, immutable" "script: immutable for a year"
like "$(hdr content-type <"$T/js.h")" '^text/javascript' "script: text/javascript"
is "$(code $U/assets/shop.0123456789abcdef.css)" 404 "another hash: 404"

# --- search ----------------------------------------------------------------------------------
curl -s -D "$T/s.h" -o "$T/s.html" "$U/search?q=lamp"
like "$(hdr content-type <"$T/s.h")" '^text/html' "search: an HTML page"
like "$(grep -c 'class="card"' "$T/s.html")" '^[1-9]' "search: results as product cards"
like "$(grep -o 'Results for[^<]*' "$T/s.html")" 'lamp' "search: names the query"
like "$(curl -s "$U/api/search?q=lamp")" '^\{"q":"lamp","count":[1-9]' "the JSON search stays beside it"
is "$(code "$U/search")" 200 "search without q: the form page"

# --- the cart without JavaScript -------------------------------------------------------------
curl -s -D "$T/add.h" -o /dev/null -c "$T/jar" -d 'add=42' $U/cart
is "$(head -n1 "$T/add.h" | cut -d' ' -f2)" 303 "POST /cart (a form): 303"
is "$(hdr location <"$T/add.h")" /cart "303 back to the cart"
is "$(hdr cache-control <"$T/add.h")" "private, no-store" "303: private, no-store"
like "$(grep -i '^set-cookie: cart=' "$T/add.h" | tr -d '\r')" 'cart=42:1(;|$)' "303: the cart cookie"
page=$(curl -s -L -b "$T/jar" -c "$T/jar" -d 'add=42&qty=2' $U/cart)
like "$(echo "$page" | grep -o '<td class="qty">[0-9]*' )" '>3$' "followed like a browser: the cart page shows 3 of the item"
is "$(curl -s -o /dev/null -w '%{redirect_url}' -d 'add=7&back=/p/7' $U/cart)" "$U/p/7" "a back field of ours is followed"
is "$(curl -s -o /dev/null -w '%{redirect_url}' -d 'add=7&back=//evil.test/' $U/cart)" "$U/cart" "another site's back is not"
for i in 1 2; do curl -s -D "$T/idem$i.h" -o /dev/null -b 'sid=idem1' -H 'Idempotency-Key: "form-1"' -d 'add=9' $U/cart; done
is "$(head -n1 "$T/idem2.h" | cut -d' ' -f2) $(hdr location <"$T/idem2.h")" "303 /cart" "a replayed form POST (Idempotency-Key) keeps its 303 and Location"
curl -s -D "$T/put.h" -o /dev/null -X PUT $U/cart
is "$(head -n1 "$T/put.h" | cut -d' ' -f2) $(hdr allow <"$T/put.h")" "405 GET, HEAD, POST" "PUT /cart: 405 with Allow"

# --- through cdn-edge: assets cached, the cart never stored ----------------------------------
E=http://127.0.0.1:$EP
cs() { curl -s -D - -o /dev/null -H 'Host: www.shop.test' "$@" | hdr cache-status; }
cs "$E$css" >/dev/null
like "$(cs "$E$css")" '; hit' "edge: the stylesheet is a hit the second time"
carts() { curl -s $U/metrics | sed -n 's/^shop_requests_total{class="cart",status="\(200\|303\)"} //p' | awk "{s+=\$1} END {print s+0}"; }
c0=$(carts)
a=$(cs -b 'sid=u1; cart=42:1' "$E/cart"); b=$(cs -b 'sid=u1; cart=42:1' "$E/cart")
unlike "$a $b" 'hit|stored' "edge: the cart page is neither a hit nor stored ($b)"
post=$(curl -s -D - -o /dev/null -H 'Host: www.shop.test' -b 'sid=u1' -d 'add=42' "$E/cart")
like "$(echo "$post" | head -n1)" ' 303' "edge: the form POST passes through (303)"
like "$(echo "$post" | grep -i '^set-cookie: cart=' | tr -d '\r')" 'cart=42:1' "edge: the 303 keeps its Set-Cookie"
is "$(( $(carts) - c0 ))" 3 "edge: every cart request reached the app"
