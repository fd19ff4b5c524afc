#!/usr/bin/env bash
# shop-lb with two worker threads (threads: 2): connections land on both loops (SO_REUSEPORT) and
# share one view of the pool: round robin and least connections still spread evenly, an admin
# drain reaches every thread at once, a killed app under load costs no GET, a SIGHUP reload
# reaches every thread. Each check asserts that both threads served requests.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
echo lb-admin-token-0123456789 > "$T/lb.key"; LBAUTH="Authorization: Bearer lb-admin-token-0123456789"
plan 13
APP=$(bin shop-app)
LB=$(bin shop-lb)
[ -x "$APP" ] && [ -x "$LB" ] || bail "shop-app / shop-lb are not built"
"$APP" --generate 200 --seed 3 --db "$T/cat.db" >"$T/gen.log" 2>&1 || bail "catalog"

declare -a P
for i in 1 2 3; do
    P[$i]=$(free_port)
    start app$i "$APP" -a 127.0.0.1:${P[$i]} --db "$T/cat.db" --name app$i
done
for i in 1 2 3; do wait_http http://127.0.0.1:${P[$i]}/healthz || bail "app$i did not start"; done

# thread_reqs ADMIN -> "n0 n1": requests each worker thread proxied
thread_reqs() {
    local m
    m=$(curl -s "http://127.0.0.1:$1/metrics")
    echo "$(echo "$m" | sed -n 's/^shop_lb_thread_requests_total{thread="0"} //p') $(echo "$m" | sed -n 's/^shop_lb_thread_requests_total{thread="1"} //p')"
}
both_served() { local a b; read -r a b <<<"$1"; [ "${a:-0}" -gt 0 ] && [ "${b:-0}" -gt 0 ]; }
# spread URL N -> "c1 c2 c3": which app answered N requests, each on its own connection (so the
# kernel spreads them over the two listeners)
spread() {
    local i c1=0 c2=0 c3=0 b
    for i in $(seq 1 "$2"); do
        b=$(curl -s -o /dev/null -D - "$1" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]erved-[Bb]y: //p')
        case "$b" in app1) c1=$((c1+1));; app2) c2=$((c2+1));; app3) c3=$((c3+1));; esac
    done
    echo "$c1 $c2 $c3"
}
ups() { curl -s "http://127.0.0.1:$1/metrics" | grep -c '^shop_lb_backend_up{.*} 1$'; }
up_is() { test "$(ups "$1")" = "$2"; }  # up_is ADMIN N (for wait_for: evaluated on every try)
code_is() { test "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = "$2"; }

L=$(free_port); A=$(free_port)
start lb "$LB" --threads 2 -a 127.0.0.1:$L --admin 127.0.0.1:$A --admin-token-file "$T/lb.key" -b 127.0.0.1:${P[1]} -b 127.0.0.1:${P[2]} \
    -b 127.0.0.1:${P[3]} --health-interval 100 --slow-start 0
wait_for 10 up_is $A 3 || bail "backends did not come up"
like "$(cat "$T/lb.log")" '2 thread\(s\)' "shop-lb starts two worker threads"

# round robin: one counter for the pool, whichever thread picks
is "$(spread http://127.0.0.1:$L/p/1 60)" "20 20 20" "round robin over two threads: 60 requests, 20 each"
tr=$(thread_reqs $A)
both_served "$tr"; ok $? "both threads served requests ($tr)"

# least connections: in-flight counts are shared; sequential requests tie and rotate
L2=$(free_port); A2=$(free_port)
start lb2 "$LB" --threads 2 -a 127.0.0.1:$L2 --admin 127.0.0.1:$A2 --admin-token-file "$T/lb.key" -b 127.0.0.1:${P[1]} -b 127.0.0.1:${P[2]} \
    -b 127.0.0.1:${P[3]} --algo leastconn --health-interval 100 --slow-start 0
wait_for 10 up_is $A2 3 || bail "lb2 backends did not come up"
like "$(spread http://127.0.0.1:$L2/p/2 30)" '^(9|10|11) (9|10|11) (9|10|11)$' "least connections over two threads: even spread"
# hash-url: one ring for both threads
L3=$(free_port)
start lb3 "$LB" --threads 2 -a 127.0.0.1:$L3 -b 127.0.0.1:${P[1]} -b 127.0.0.1:${P[2]} -b 127.0.0.1:${P[3]} \
    --algo hash-url --health-interval 100 --slow-start 0
wait_for 10 code_is http://127.0.0.1:$L3/healthz 200 || bail "lb3"
like "$(spread http://127.0.0.1:$L3/p/7 20)" '^(20 0 0|0 20 0|0 0 20)$' "hash-url over two threads: one URL, one backend"

# an admin drain (handled on thread 0) is seen by both threads at once
before=$(thread_reqs $A)
is "$(curl -s -H "$LBAUTH" -X POST http://127.0.0.1:$A/backends/default/127.0.0.1:${P[1]}/drain)" "done" "admin: drain app1"
like "$(spread http://127.0.0.1:$L/p/3 40)" '^0 (20 20|19 21|21 19)$' "drained: no thread sends app1 anything (40 requests)"
after=$(thread_reqs $A)
read -r b0 b1 <<<"$before"; read -r a0 a1 <<<"$after"
both_served "$((a0 - b0)) $((a1 - b1))"; ok $? "both threads served after the drain ($before -> $after)"
curl -s -H "$LBAUTH" -X POST http://127.0.0.1:$A/backends/default/127.0.0.1:${P[1]}/enable >/dev/null

# kill an app under steady concurrent load: no request fails, on either thread
if command -v h2load >/dev/null; then
    P5=$(free_port)
    start app5 "$APP" -a 127.0.0.1:$P5 --db "$T/cat.db" --name app5
    wait_http http://127.0.0.1:$P5/healthz || bail "app5"
    L8=$(free_port); A8=$(free_port)
    start lb8 "$LB" --threads 2 -a 127.0.0.1:$L8 --admin 127.0.0.1:$A8 --admin-token-file "$T/lb.key" -b 127.0.0.1:${P[2]} -b 127.0.0.1:$P5 \
        --health-interval 100 --slow-start 0
    wait_for 10 up_is $A8 2 || bail "lb8 backends did not come up"
    timeout 60 h2load --h1 -n 40000 -c 8 -t 1 http://127.0.0.1:$L8/p/11 >"$T/h2load.out" 2>&1 &
    h2=$!
    sleep 0.3
    stop app5 KILL 2>/dev/null
    wait $h2
    like "$(grep '^status codes:' "$T/h2load.out")" '^status codes: 40000 2xx' "app killed under load, two threads: all 40000 answered 200"
    tr=$(thread_reqs $A8)
    both_served "$tr"; ok $? "the load went through both threads ($tr)"
    n5=$(curl -s http://127.0.0.1:$A8/metrics | grep "backend_requests_total{.*$P5\"}" | awk '{print $2}')
    [ "${n5:-0}" -gt 0 ] && [ "${n5:-0}" -lt 20000 ]; ok $? "the app was killed in the middle of the load ($n5 attempts went to it)"
else
    skip "h2load not installed"; skip "h2load not installed"; skip "h2load not installed"
fi

# SIGHUP reload reaches every thread: the new config has app3 only
cat >"$T/lb.yaml" <<EOF
listen: 127.0.0.1:$(free_port)
threads: 2
pools:
  web:
    algo: rr
    backends: [{addr: 127.0.0.1:${P[2]}}, {addr: 127.0.0.1:${P[3]}}]
EOF
LC=$(sed -n 's/^listen: //p' "$T/lb.yaml")
start lbc "$LB" -c "$T/lb.yaml"
wait_for 10 code_is http://$LC/p/1 200 || bail "lbc"
sed -i "s/{addr: 127.0.0.1:${P[2]}}, //" "$T/lb.yaml"
kill -HUP "$pid_lbc"
wait_for 5 grep -q 'reloaded' "$T/lbc.log" || diag "no reload line"
is "$(spread http://$LC/p/4 20)" "0 0 20" "after SIGHUP: every thread sends only to the remaining backend"
stop lb TERM
is "$?" 0 "SIGTERM with two threads: both drain, shop-lb exits 0"
