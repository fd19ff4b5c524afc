#!/usr/bin/env bash
# The storefront in a real browser (issue 14): Debian's Chromium, headless, through cdn-edge over
# h2/TLS in front of shop-lb and shop-app, on loopback only (www.shop.test and img.shop.test are
# mapped to 127.0.0.1 by --host-resolver-rules; no DNS, no other network). shop_browser.py drives
# it over the DevTools protocol: home, a category, a product, search, add to cart (the form's
# POST and 303), then home again with the browser's cache off. It checks that every image
# decoded, that WebP was chosen and the edge said so, that the assets and images of the second
# view were hits in the edge, and that the cart shows the item and was never stored. Screenshots
# are in $T/shots (kept with KEEP=1). Skips with the reason when Chromium is missing or does not
# start.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
CHROME=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
if [ -z "$CHROME" ]; then
    echo "1..0 # SKIP chromium is not installed (apt-get install chromium; tests/deps.sh test)"
    exit 0
fi
APP=$(bin shop-app); LB=$(bin shop-lb); EDGE=$(bin cdn-edge)
[ -x "$APP" ] && [ -x "$LB" ] && [ -x "$EDGE" ] || { echo "Bail out! shop-app, shop-lb or cdn-edge is not built"; exit 1; }
export XDG_CACHE_HOME="$T/cache"

# Chromium first: when it cannot start here, nothing else is worth starting
mkdir -p "$T/chrome" "$T/shots"
start chromium "$CHROME" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --user-data-dir="$T/chrome" --remote-debugging-port=0 --remote-debugging-address=127.0.0.1 \
    --host-resolver-rules="MAP www.shop.test 127.0.0.1, MAP img.shop.test 127.0.0.1, MAP * ~NOTFOUND" \
    --ignore-certificate-errors --no-proxy-server --no-first-run --no-default-browser-check \
    --disable-background-networking --disable-component-update --disable-sync --disable-default-apps \
    --disable-extensions --disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication \
    --window-size=1280,900 about:blank
if ! wait_for 15 test -s "$T/chrome/DevToolsActivePort"; then
    why=$(grep -v '^\s*$' "$T/chromium.log" | tail -n 1)
    echo "1..0 # SKIP chromium did not start: ${why:-no DevTools port after 15 s}"
    exit 0
fi

plan 22
"$APP" --generate 500 --seed 3 --db "$T/a.db" >"$T/gen.log" 2>&1 || bail "catalog"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
    -subj "/CN=www.shop.test" -addext "subjectAltName=DNS:www.shop.test,DNS:img.shop.test" >/dev/null 2>&1 || bail "openssl"
P=$(free_port); LP=$(free_port); TP=$(free_port); AP=$(free_port); EP=$(free_port)
start app "$APP" -a 127.0.0.1:$P --db "$T/a.db" --name app1 --cdn-host "https://img.shop.test:$TP"
start lb "$LB" -a 127.0.0.1:$LP -b 127.0.0.1:$P
cat >"$T/edge.yaml" <<YAML
name: browser
listen: ["127.0.0.1:$EP"]
tls_listen: ["127.0.0.1:$TP"]
cert: $T/cert.pem
key: $T/key.pem
admin: 127.0.0.1:$AP
workers: 2
vhosts:
  www.shop.test:
    origin: http://127.0.0.1:$LP
  img.shop.test:
    origin: http://127.0.0.1:$LP
YAML
start edge "$EDGE" -c "$T/edge.yaml"
wait_http http://127.0.0.1:$P/healthz && wait_http http://127.0.0.1:$AP/healthz && wait_port 127.0.0.1 $LP ||
    bail "shop-app, shop-lb or cdn-edge did not start"
# shop-lb sends a new backend nothing until its first health check passes
wait_for 15 curl -sf -o /dev/null http://127.0.0.1:$LP/healthz || bail "shop-lb found no healthy backend"
is "$(curl -sk -o /dev/null -w '%{http_code} %{http_version}' --resolve www.shop.test:$TP:127.0.0.1 https://www.shop.test:$TP/)" \
    "200 2" "the shop answers over h2/TLS through cdn-edge and shop-lb"

t0=$(date +%s)
timeout 60 python3 "$top_srcdir/tests/integration/shop_browser.py" "$T/chrome/DevToolsActivePort" \
    "https://www.shop.test:$TP" "$T/shots" 50 >"$T/browser.out" 2>"$T/browser.err"
rc=$?
n=0
while IFS=$'\t' read -r res what why; do
    case "$res" in
    ok) pass "$what"; n=$((n + 1)) ;;
    "not ok") fail "$what" "$why"; n=$((n + 1)) ;;
    \#*) diag "${res#\# }" ;;
    esac
done <"$T/browser.out"
want=$(sed -n 's/^NCHECKS = \([0-9]*\).*/\1/p' "$top_srcdir/tests/integration/shop_browser.py")
while [ "$n" -lt "$want" ]; do n=$((n + 1)); fail "browser check $n not reached" "$(tail -n 3 "$T/browser.err")"; done
ok $rc "the browser run completed in $(( $(date +%s) - t0 )) s (screenshots: $(ls "$T/shots" | wc -l) in $T/shots)"
