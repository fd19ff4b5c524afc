#!/usr/bin/env bash
# shop-lb in front of three shop-apps: each algorithm spreads (or pins) as it should, a killed app
# is ejected with no failed GET, leastconn keeps a slow backend light under concurrent load, health checks bring it back, POST is never retried, drain and
# remove through the admin listener, all-down answers 503, headers sent to the backend.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
echo lb-admin-token-0123456789 > "$T/lb.key"; LBAUTH="Authorization: Bearer lb-admin-token-0123456789"
plan 41
APP=$(bin shop-app)
LB=$(bin shop-lb)
THR="--threads ${SHOP_LB_THREADS:-1}"  # SHOP_LB_THREADS=2: the same checks on two worker loops
[ -x "$APP" ] && [ -x "$LB" ] || bail "shop-app / shop-lb are not built"
"$APP" --generate 500 --seed 5 --db "$T/cat.db" >"$T/gen.log" 2>&1 || bail "catalog"

declare -a P
for i in 1 2 3; do
    P[$i]=$(free_port)
    start app$i "$APP" -a 127.0.0.1:${P[$i]} --db "$T/cat.db" --name app$i
done
for i in 1 2 3; do wait_http http://127.0.0.1:${P[$i]}/healthz || bail "app$i did not start"; done
L=$(free_port); A=$(free_port)
start lb "$LB" $THR -a 127.0.0.1:$L --admin 127.0.0.1:$A --admin-token-file "$T/lb.key" -b 127.0.0.1:${P[1]} -b http://127.0.0.1:${P[2]} \
    -b 127.0.0.1:${P[3]} --health-interval 100 --rise 2 --fall 2 --slow-start 0
ups() { curl -s http://127.0.0.1:$A/metrics | grep -c '^shop_lb_backend_up{.*} 1$'; }
up_is() { test "$(ups)" = "$1"; }
# an LB answers 200 through to some app (its first backend came up)
lb_ready() { test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/healthz")" = 200; }
wait_for 10 up_is 3 || bail "backends did not come up"
pass "three backends up after their health checks"

# which app answered each of N requests (X-Backend names the backend address)
spread() {  # spread URL-PREFIX N [curl args] -> "count count count" for app1..3
    local n=$2 i c1=0 c2=0 c3=0 b url=$1; shift 2
    for i in $(seq 1 $n); do
        b=$(curl -s -o /dev/null -D - "$@" "$url" | tr -d '\r' | grep -i '^x-served-by:' | cut -d' ' -f2)
        case "$b" in app1) c1=$((c1+1));; app2) c2=$((c2+1));; app3) c3=$((c3+1));; esac
    done
    echo "$c1 $c2 $c3"
}
is "$(spread http://127.0.0.1:$L/p/1 30)" "10 10 10" "round robin: even spread"

# hash-url and hash-client on a second LB over the same apps
L2=$(free_port)
start lb2 "$LB" $THR -a 127.0.0.1:$L2 -b 127.0.0.1:${P[1]} -b 127.0.0.1:${P[2]} -b 127.0.0.1:${P[3]} \
    --algo hash-url --health-interval 100 --slow-start 0
wait_for 10 lb_ready $L2 || bail "lb2"
like "$(spread http://127.0.0.1:$L2/p/7 12)" '^(12 0 0|0 12 0|0 0 12)$' "hash-url: one URL stays on one backend"
used=0
for i in $(seq 1 30); do
    curl -s -o /dev/null -D - http://127.0.0.1:$L2/p/$i | tr -d '\r' | grep -i '^x-served-by:'
done | sort | uniq -c >"$T/hash.spread"
[ "$(wc -l <"$T/hash.spread")" -ge 2 ]; ok $? "hash-url: different URLs spread over backends"
L3=$(free_port)
start lb3 "$LB" $THR -a 127.0.0.1:$L3 -b 127.0.0.1:${P[1]} -b 127.0.0.1:${P[2]} -b 127.0.0.1:${P[3]} \
    --algo hash-client --health-interval 100 --slow-start 0
wait_for 10 lb_ready $L3 || bail "lb3"
like "$(spread http://127.0.0.1:$L3/c/books 12)" '^(12 0 0|0 12 0|0 0 12)$' "hash-client: one client stays on one backend"
L4=$(free_port)
start lb4 "$LB" $THR -a 127.0.0.1:$L4 -b 127.0.0.1:${P[1]} -b 127.0.0.1:${P[2]} -b 127.0.0.1:${P[3]} \
    --algo leastconn --health-interval 100 --slow-start 0
wait_for 10 lb_ready $L4 || bail "lb4"
is "$(spread http://127.0.0.1:$L4/p/2 30)" "10 10 10" "least connections: ties rotate evenly"

# least connections under concurrent load, one backend slow (400 ms a request): 6 clients send 8
# requests each, one after another. Round robin gives the slow one its third (16 of 48); least
# connections sends it a request only while it has fewer in flight than the fast ones, so far fewer.
PS=$(free_port)
start slowlc "$APP" -a 127.0.0.1:$PS --db "$T/cat.db" --name slow --delay 400
wait_port 127.0.0.1 $PS || bail "slowlc"
conc_spread() {  # conc_spread LB-PORT -> "fast slow other" counts of 48 requests from 6 clients
    python3 - "$1" <<'PY'
import http.client, sys, threading
port = int(sys.argv[1]); got = {"fast": 0, "slow": 0, "other": 0}; lock = threading.Lock()
def client(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(8):
        try:
            c.request("GET", "/p/%d" % (k * 8 + i + 1)); r = c.getresponse(); r.read()
            b = r.getheader("X-Served-By", "") if r.status == 200 else ""
        except Exception:
            b = ""; c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        key = "fast" if b in ("app1", "app2") else "slow" if b == "slow" else "other"
        with lock: got[key] += 1
ts = [threading.Thread(target=client, args=(k,)) for k in range(6)]
[t.start() for t in ts]; [t.join(30) for t in ts]
print(got["fast"], got["slow"], got["other"])
PY
}
LC=$(free_port); LR=$(free_port)
start lbcl "$LB" $THR -a 127.0.0.1:$LC -b 127.0.0.1:${P[1]} -b 127.0.0.1:${P[2]} -b 127.0.0.1:$PS \
    --algo leastconn --no-health --retries 0
start lbcr "$LB" $THR -a 127.0.0.1:$LR -b 127.0.0.1:${P[1]} -b 127.0.0.1:${P[2]} -b 127.0.0.1:$PS \
    --algo rr --no-health --retries 0
wait_port 127.0.0.1 $LC && wait_port 127.0.0.1 $LR || bail "lbcl / lbcr"
read -r rf rs ro <<<"$(conc_spread $LR)"
is "$rf $rs $ro" "32 16 0" "concurrent load, round robin: the slow backend gets its third"
read -r lf ls lo <<<"$(conc_spread $LC)"
[ "$lo" = 0 ] && [ "$((lf + ls))" = 48 ] && [ "$ls" -le 8 ]
ok $? "concurrent load, least connections: the slow backend gets few ($lf fast, $ls slow, $lo failed; rr gave it $rs)"
stop slowlc; stop lbcl; stop lbcr

# images through the LB: same bytes and ETag as straight from an app
curl -s -D "$T/i.h" -o "$T/i.lb" http://127.0.0.1:$L/img/9/large.png
curl -s -o "$T/i.app" http://127.0.0.1:${P[2]}/img/9/large.png
cmp -s "$T/i.lb" "$T/i.app"; ok $? "a large image streams through unchanged"
like "$(grep -i '^via:' "$T/i.h")" 'shop-lb' "Via on the response"
like "$(grep -i '^x-request-id:' "$T/i.h")" '[0-9a-f]{32}' "X-Request-Id generated"

# kill app2: no GET fails, it is marked down within its fall count, and gets nothing afterwards
stop app2 KILL 2>/dev/null
fails=0
for i in $(seq 1 60); do
    c=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$L/p/$i)
    [ "$c" = 200 ] || fails=$((fails+1))
done
is "$fails" 0 "app2 killed: 60 GETs, none failed"
wait_for 5 up_is 2; ok $? "app2 marked down"
before=$(curl -s http://127.0.0.1:$A/metrics | grep "backend_requests_total{.*${P[2]}\"}" | awk '{print $2}')
like "$(spread http://127.0.0.1:$L/p/3 20)" '^(9|10|11) 0 (9|10|11)$' "after detection: nothing goes to app2"
after=$(curl -s http://127.0.0.1:$A/metrics | grep "backend_requests_total{.*${P[2]}\"}" | awk '{print $2}')
is "$after" "$before" "after detection: no attempt sent to app2"

# back after rise
start app2b "$APP" -a 127.0.0.1:${P[2]} --db "$T/cat.db" --name app2
wait_for 10 up_is 3; ok $? "app2 back up after its rise count"
like "$(spread http://127.0.0.1:$L/p/4 30)" '^(8|9|10|11|12) (8|9|10|11|12) (8|9|10|11|12)$' "app2 gets its share again"

# drain / enable / remove through the admin listener
is "$(curl -s -H "$LBAUTH" -X POST http://127.0.0.1:$A/backends/default/127.0.0.1:${P[1]}/drain)" "done" "admin: drain"
like "$(spread http://127.0.0.1:$L/p/5 10)" '^0 ' "a drained backend gets no new requests"
curl -s -H "$LBAUTH" -X POST http://127.0.0.1:$A/backends/default/127.0.0.1:${P[1]}/enable >/dev/null
like "$(spread http://127.0.0.1:$L/p/5 9)" '^[1-9]' "enabled again: it gets requests"
curl -s -H "$LBAUTH" -X POST http://127.0.0.1:$A/backends/default/127.0.0.1:${P[3]}/remove >/dev/null
like "$(curl -s http://127.0.0.1:$A/backends)" '^\{"pools":\[\{"name":"default".*' "admin: backends as JSON"
unlike "$(curl -s http://127.0.0.1:$A/backends)" "${P[3]}" "admin: a removed backend is gone"
is "$(curl -s -H "$LBAUTH" -X POST "http://127.0.0.1:$A/backends/default?add=127.0.0.1:${P[3]}&weight=1")" "added" "admin: add a backend"
wait_for 10 up_is 3; ok $? "the added backend comes up"
like "$(spread http://127.0.0.1:$L/p/6 30)" ' [1-9][0-9]*$' "the added backend gets requests"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "$LBAUTH" -X POST "http://127.0.0.1:$A/backends/default?add=127.0.0.1:${P[3]}")" 400 "admin: adding it twice is refused"

# slow start: a backend back from a drain starts at 10% of its weight
L7=$(free_port); A7=$(free_port)
start lb7 "$LB" $THR -a 127.0.0.1:$L7 --admin 127.0.0.1:$A7 --admin-token-file "$T/lb.key" -b 127.0.0.1:${P[1]} -b 127.0.0.1:${P[3]} \
    --health-interval 100 --slow-start 60000
wait_for 10 lb_ready $L7 || bail "lb7"
curl -s -H "$LBAUTH" -X POST http://127.0.0.1:$A7/backends/default/127.0.0.1:${P[1]}/drain >/dev/null
curl -s -H "$LBAUTH" -X POST http://127.0.0.1:$A7/backends/default/127.0.0.1:${P[1]}/enable >/dev/null
like "$(curl -s http://127.0.0.1:$A7/backends)" "\"addr\":\"127.0.0.1:${P[1]}\",\"state\":\"up\",\"weight\":1,\"effective_weight\":0\.1" "slow start: 10% weight on return"
s7=$(spread http://127.0.0.1:$L7/p/1 22)
[ "${s7%% *}" -le 4 ] && [ "${s7##* }" -ge 18 ]; ok $? "slow start: the returning backend gets a small share ($s7)"

# steady concurrent load while an app is killed: no request fails (bounded: 20000 requests, 60 s)
if command -v h2load >/dev/null; then
    P5=$(free_port)
    start app5 "$APP" -a 127.0.0.1:$P5 --db "$T/cat.db" --name app5
    wait_http http://127.0.0.1:$P5/healthz || bail "app5"
    L8=$(free_port); A8=$(free_port)
    start lb8 "$LB" $THR -a 127.0.0.1:$L8 --admin 127.0.0.1:$A8 --admin-token-file "$T/lb.key" -b 127.0.0.1:${P[1]} -b 127.0.0.1:$P5 \
        --health-interval 100 --slow-start 0
    wait_for 10 lb_ready $L8 || bail "lb8"
    wait_for 10 test "$(curl -s http://127.0.0.1:$A8/metrics | grep -c '^shop_lb_backend_up{.*} 1$')" = 2 2>/dev/null
    timeout 60 h2load --h1 -n 20000 -c 4 -t 1 http://127.0.0.1:$L8/p/11 >"$T/h2load.out" 2>&1 &
    h2=$!
    sleep 0.5
    stop app5 KILL 2>/dev/null
    wait $h2
    like "$(grep '^status codes:' "$T/h2load.out")" '^status codes: 20000 2xx' "app killed under load: all 20000 requests answered 200"
    n5=$(curl -s http://127.0.0.1:$A8/metrics | grep "backend_requests_total{.*$P5\"}" | awk '{print $2}')
    [ "${n5:-0}" -gt 0 ] && [ "${n5:-0}" -lt 10000 ]; ok $? "the app was killed in the middle of the load ($n5 attempts went to it)"
else
    skip "h2load not installed"; skip "h2load not installed"
fi

# POST is never retried; GET is: a pool with a dead address that is not health-checked
dead=$(free_port)
L5=$(free_port); A5=$(free_port)
start lb5 "$LB" $THR -a 127.0.0.1:$L5 --admin 127.0.0.1:$A5 --admin-token-file "$T/lb.key" -b 127.0.0.1:$dead -b 127.0.0.1:${P[1]} --no-health --retries 1
wait_port 127.0.0.1 $L5 || bail "lb5"
codes=$(for i in 1 2; do curl -s -o /dev/null -w '%{http_code} ' -X POST "http://127.0.0.1:$L5/api/cart?add=1"; done)
like "$codes" '502' "POST to a dead backend: 502, not retried"
codes=$(for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:$L5/p/1; done)
is "$codes" "200 200 200 200 " "GET to a dead backend: retried on the other"
like "$(curl -s http://127.0.0.1:$A5/metrics)" 'shop_lb_retries_total [1-9]' "retries are counted"

# a backend slower than the first-byte timeout: 504, and HTTP/2 (h2c) clients work too
PD=$(free_port)
start slowapp "$APP" -a 127.0.0.1:$PD --db "$T/cat.db" --delay 3000
wait_http http://127.0.0.1:$PD/healthz || bail "slowapp"
L9=$(free_port)
start lb9 "$LB" $THR -a 127.0.0.1:$L9 -b 127.0.0.1:$PD --first-byte-timeout 300 --retries 0 --health-interval 100
wait_for 10 lb_ready $L9 || bail "lb9"
is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:$L9/p/1)" 504 "first-byte timeout: 504"
like "$(curl -s -D - -o /dev/null http://127.0.0.1:$L/nope | head -n1)" '^HTTP/1.1 404 Not Found' "a backend's 404 keeps its reason phrase"
is "$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_version} %{http_code}' http://127.0.0.1:$L/p/1)" "2 200" "h2c through the LB"

# all backends down: 503 with a reason, at once
L6=$(free_port)
start lb6 "$LB" $THR -a 127.0.0.1:$L6 -b 127.0.0.1:$dead --health-interval 100
wait_port 127.0.0.1 $L6 || bail "lb6"
is "$(curl -s --max-time 5 -o "$T/503.body" -w '%{http_code}' http://127.0.0.1:$L6/p/1)" 503 "all down: 503 at once"
like "$(cat "$T/503.body")" "no healthy backend in pool 'default'" "all down: the reason in the body"
raw=$(python3 - "$L" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode(errors="replace") or "closed")
PY
)
like "$raw" '^(HTTP/1\.1 4[0-9][0-9]|closed)' "garbage to shop-lb: refused ($raw)"
is "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$L/p/1)" 200 "shop-lb still serves after garbage"
stop lb TERM
is "$?" 0 "SIGTERM: shop-lb exits 0"
