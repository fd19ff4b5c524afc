#!/usr/bin/env bash
# shop-lb's hedged requests (issue 19): two backends (scripted origins), one hangs on cue
# (accepts, never answers). timeouts.hedge is short, first_byte long: a GET that went to the hung
# backend is also sent to the other one and answered from there, long before first_byte; the
# hung backend's attempt is cancelled. A POST is never sent twice. Counts, not timings.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 8
LB=$(bin shop-lb)
[ -x "$LB" ] || bail "shop-lb is not built"
PA=$(free_port); PB=$(free_port)
start a python3 "$top_srcdir/tests/integration/edge_origin.py" "$PA"
start b python3 "$top_srcdir/tests/integration/edge_origin.py" "$PB"
wait_port 127.0.0.1 "$PA" && wait_port 127.0.0.1 "$PB" || bail "backends did not start"
L=$(free_port); A=$(free_port)
cat >"$T/lb.yaml" <<YAML
listen: 127.0.0.1:$L
admin: 127.0.0.1:$A
retries: 0
health: {enabled: false, passive_fails: 0, slow_start: 0s}
timeouts: {first_byte: 3s, hedge: 200ms}
pools:
  shop: {algo: rr, backends: [{addr: 127.0.0.1:$PA}, {addr: 127.0.0.1:$PB}]}
routes:
  - {prefix: /, pool: shop}
YAML
start lb "$LB" -c "$T/lb.yaml"
wait_http "http://127.0.0.1:$A/metrics" || bail "shop-lb did not start"
total() { curl -s "http://127.0.0.1:$1/_total"; }
metric() { curl -s "http://127.0.0.1:$A/metrics" | awk -v n="$1" '$1 == n {print $2; exit}'; }
is "$(metric shop_lb_hedges_total)" 0 "no hedge while both answer"
curl -s -o /dev/null "http://127.0.0.1:$PA/_hang?on=1"
a0=$(total "$PA"); b0=$(total "$PB")
ok200=0; fromb=0
for i in 1 2 3 4 5 6; do
    h=$(curl -s -m 20 -D - -o /dev/null "http://127.0.0.1:$L/p/h$i" | tr -d '\r')
    echo "$h" | head -1 | grep -q ' 200' && ok200=$((ok200 + 1))
    echo "$h" | grep -qi "^x-backend: 127.0.0.1:$PB$" && fromb=$((fromb + 1))
done
is "$ok200" 6 "A hangs: all 6 GETs answered 200"
is "$fromb" 6 "... all by B (the ones sent to A were hedged to B)"
is "$(( $(total "$PA") - a0 ))" 3 "A got its 3 (round robin), all left hanging"
is "$(( $(total "$PB") - b0 ))" 6 "B got its 3 and the 3 hedges"
is "$(metric shop_lb_hedges_total)" 3 "shop_lb_hedges_total counts them"
# a POST is never sent twice: the one that reaches the hung backend waits for first_byte
b1=$(total "$PB"); codes=""
for i in 1 2; do codes="$codes$(curl -s -m 20 -o /dev/null -w '%{http_code}' -X POST -d x "http://127.0.0.1:$L/p/post$i") "; done
like "$codes" '504' "a POST to the hung backend: 504 after first_byte, not hedged"
is "$(metric shop_lb_hedges_total)" 3 "... and no hedge for it"
curl -s -o /dev/null "http://127.0.0.1:$PA/_hang?on=0"
