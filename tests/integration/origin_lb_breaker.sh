#!/usr/bin/env bash
# shop-lb's circuit breaker per backend (issue 19): two backends (scripted origins,
# tests/integration/edge_origin.py), one starts failing on cue (500 to everything). After
# `failures` failures in a row its breaker opens: it gets no more requests while open (counted
# at the backend, no timings asserted) and the other takes them all; after `open` one probe
# goes; a failed probe opens it again, a good one closes it. Active health checks and passive
# ejection are off here so that only the breaker acts.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 11
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
breaker: {failures: 3, open: 3s, probes: 1}
pools:
  shop: {algo: rr, backends: [{addr: 127.0.0.1:$PA}, {addr: 127.0.0.1:$PB}]}
routes:
  - {prefix: /, pool: shop}
YAML
start lb "$LB" -c "$T/lb.yaml"
wait_http "http://127.0.0.1:$A/metrics" || bail "shop-lb did not start"
total() { curl -s "http://127.0.0.1:$1/_total"; }
state() {  # the breaker gauge of backend port $1
    curl -s "http://127.0.0.1:$A/metrics" | awk -v b="backend=\"127.0.0.1:$1\"" \
        '/^shop_lb_backend_breaker\{/ && index($0, b) {print $2; exit}'
}
codes() {  # codes N PATH: the statuses of N requests, counted per status
    local i; for i in $(seq 1 "$1"); do curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$L$2$i"; done | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}'
}
is "$(state "$PA")" 0 "closed at start"
curl -s -o /dev/null "http://127.0.0.1:$PA/_fail?on=1"
a0=$(total "$PA"); b0=$(total "$PB")
c=$(codes 6 /p/f)
is "$(state "$PA")" 1 "3 failures in a row (500): backend A's breaker is open"
is "$(( $(total "$PA") - a0 ))" 3 "A saw exactly its 3 failing requests"
a1=$(total "$PA")
c=$(codes 10 /p/open)
is "$c" "200:10 " "while A is open every request is answered 200 by B"
is "$(( $(total "$PA") - a1 ))" 0 "... and A saw none of them"
sleep 3.2
a2=$(total "$PA")
c=$(codes 4 /p/probe)
is "$(( $(total "$PA") - a2 ))" 1 "after 'open': one probe reached A"
is "$(state "$PA")" 1 "the probe failed: open again"
curl -s -o /dev/null "http://127.0.0.1:$PA/_fail?on=0"
sleep 3.2
a3=$(total "$PA")
c=$(codes 6 /p/back)
is "$c" "200:6 " "A recovered: every request 200"
is "$(state "$PA")" 0 "a good probe closed A's breaker"
ok $([ $(( $(total "$PA") - a3 )) -ge 2 ] && echo 0 || echo 1) "A takes its share again"
grep -q "breaker closed -> open" "$T/lb.log" && grep -q "breaker half-open -> closed" "$T/lb.log"
ok $? "the log names the transitions"
