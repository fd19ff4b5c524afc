#!/usr/bin/env bash
# shop-lb as an API gateway, from a YAML config: routes by prefix to pools, bearer-token paths
# answered 401 before any backend is touched, unknown routes 404, the headers a backend receives
# (X-Forwarded-For, Via, X-Request-Id passed through or generated), config errors with their
# place; shop-app's config: -t, header rules from YAML, SIGHUP reload.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 25
APP=$(bin shop-app)
LB=$(bin shop-lb)
THR="--threads ${SHOP_LB_THREADS:-1}"  # SHOP_LB_THREADS=2: the same checks on two worker loops
[ -x "$APP" ] && [ -x "$LB" ] || bail "shop-app / shop-lb are not built"

# a backend that answers every request with the request's headers, and counts requests
cat >"$T/echo.py" <<'PY'
import http.server, sys
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        global n
        if self.path != "/healthz":  # the LB's health checks do not count
            n += 1
        body = ("count=%d\n%s %s\n" % (n, self.command, self.path) + str(self.headers)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    do_GET = do_POST = do_HEAD = answer
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
E=$(free_port)
start echo python3 "$T/echo.py" "$E"
wait_http http://127.0.0.1:$E/ || bail "echo backend did not start"
"$APP" --generate 300 --seed 2 --db "$T/cat.db" >"$T/gen.log" 2>&1 || bail "catalog"
AP=$(free_port)
cat >"$T/app.yaml" <<YAML
listen: 127.0.0.1:$AP
db: $T/cat.db
cdn_host: ""
access_log: $T/app.access
access_log_format: json
headers:
  - prefix: /img/
    cache_control: "public, max-age=1000"
  - prefix: /
    cache_control: "public, max-age=5"
YAML
out=$("$APP" -t -c "$T/app.yaml" 2>&1); ok $? "shop-app -t accepts a good config"
start app "$APP" -c "$T/app.yaml"
wait_http http://127.0.0.1:$AP/healthz || bail "app did not start"
hdr() { curl -s -o /dev/null -D - "$1" | tr -d '\r' | grep -i "^$2:" | cut -d' ' -f2-; }
is "$(hdr http://127.0.0.1:$AP/img/1/thumb.png cache-control)" "public, max-age=1000" "header rules from the config"
sed -i 's/max-age=1000/max-age=2000/' "$T/app.yaml"
kill -HUP "$pid_app"
wait_for 5 test "$(hdr http://127.0.0.1:$AP/img/1/thumb.png cache-control)" = "public, max-age=2000" 2>/dev/null
is "$(hdr http://127.0.0.1:$AP/img/1/thumb.png cache-control)" "public, max-age=2000" "SIGHUP reloads the header rules"
grep -q 'src="/img/1/thumb.png"' <(curl -s http://127.0.0.1:$AP/c/kitchen) || grep -q 'src="/img/' <(curl -s http://127.0.0.1:$AP/); ok $? "cdn_host \"\": same-origin image links"
printf 'listen: 127.0.0.1:1\nheaders:\n  - prefix: img\n' >"$T/bad.yaml"
out=$("$APP" -t -c "$T/bad.yaml" 2>&1); rc=$?
[ $rc -ne 0 ]; ok $? "shop-app -t rejects a bad config"
like "$out" 'bad.yaml:[0-9]+:[0-9]+:' "the error names the place"

L=$(free_port); A=$(free_port)
cat >"$T/lb.yaml" <<YAML
listen: 127.0.0.1:$L
admin: 127.0.0.1:$A
access_log: $T/lb.access
access_log_format: json
health: {interval: 100ms, rise: 1, slow_start: 0s}
pools:
  api: {algo: rr, backends: [{addr: 127.0.0.1:$E}]}
  shop: {algo: hash-url, backends: [{addr: "http://127.0.0.1:$AP"}]}
routes:
  - {prefix: /api/, pool: api}
  - {prefix: /p/, pool: shop}
  - {prefix: /img/, pool: shop}
protected:
  - {prefix: /api/admin/, token: s3cret}
YAML
out=$("$LB" -t -c "$T/lb.yaml" 2>&1); ok $? "shop-lb -t accepts a good config"
sed 's/pool: shop}/pool: nope}/' "$T/lb.yaml" >"$T/lb-bad.yaml"
out=$("$LB" -t -c "$T/lb-bad.yaml" 2>&1); rc=$?
[ $rc -ne 0 ] && [[ "$out" == *"unknown pool"* ]]; ok $? "shop-lb -t: a route to an unknown pool is an error ($out)"
printf 'listen: 127.0.0.1:1\npools:\n  a: {algo: fastest, backends: []}\n' >"$T/lb-bad2.yaml"
out=$("$LB" -t -c "$T/lb-bad2.yaml" 2>&1)
like "$out" 'lb-bad2.yaml:3:[0-9]+:.*algo' "shop-lb -t: a bad value is named with its place"
start lb "$LB" $THR -c "$T/lb.yaml"
wait_for 10 test "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$L/api/x)" = 200 2>/dev/null
body=$(curl -s http://127.0.0.1:$L/api/hello)
like "$body" 'GET /api/hello' "route /api/ goes to the api pool"
like "$body" 'X-Forwarded-For: 127\.0\.0\.1' "the backend gets X-Forwarded-For"
like "$body" 'Via: 1\.1 shop-lb' "the backend gets Via"
like "$body" 'X-Request-Id: [0-9a-f]{32}' "the backend gets a generated X-Request-Id"
like "$(curl -s -H 'X-Request-Id: trace-me-42' http://127.0.0.1:$L/api/hello)" 'X-Request-Id: trace-me-42' "a client's X-Request-Id is passed through"
like "$(hdr http://127.0.0.1:$L/p/3 x-served-by)" "127.0.0.1:$AP" "route /p/ goes to the shop pool"
curl -s -o /dev/null -H 'X-Request-Id: trace-p3' http://127.0.0.1:$L/p/3
wait_for 5 grep -q trace-p3 "$T/app.access"; wait_for 5 grep -q trace-p3 "$T/lb.access"
grep -q '"request_id":"trace-p3"' "$T/lb.access" && grep -q '"request_id":"trace-p3"' "$T/app.access"
ok $? "X-Request-Id in the access logs of both tiers"
n_before=$(curl -s http://127.0.0.1:$E/count | head -n1)
is "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$L/api/admin/stats)" 401 "protected path without a token: 401"
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' http://127.0.0.1:$L/api/admin/stats)" 401 "wrong token: 401"
n_after=$(curl -s http://127.0.0.1:$E/count | head -n1)
is "$n_after" "count=$(( ${n_before#count=} + 1 ))" "the backend saw nothing of the refused requests"
like "$(curl -s -H 'Authorization: Bearer s3cret' http://127.0.0.1:$L/api/admin/stats)" 'GET /api/admin/stats' "right token: through"
is "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$L/elsewhere)" 404 "no route: 404"

# SIGHUP: a new route and a new token take effect; a broken file changes nothing
sed -i 's/token: s3cret/token: n3w/; s#  - {prefix: /api/, pool: api}#  - {prefix: /api/, pool: api}\n  - {prefix: /other/, pool: api}#' "$T/lb.yaml"
kill -HUP "$pid_lb"
wait_for 5 test "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$L/other/x)" = 200 2>/dev/null
is "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$L/other/x)" 200 "SIGHUP: a new route"
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer n3w' http://127.0.0.1:$L/api/admin/stats) $(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer s3cret' http://127.0.0.1:$L/api/admin/stats)" "200 401" "SIGHUP: the new token, not the old one"
sed -i 's/pool: api}/pool: nope}/' "$T/lb.yaml"
kill -HUP "$pid_lb"
wait_for 5 grep -q 'reload failed' "$T/lb.log"
ok $? "SIGHUP with a broken file: the error is logged"
is "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$L/other/x)" 200 "SIGHUP with a broken file: the running config stays"
