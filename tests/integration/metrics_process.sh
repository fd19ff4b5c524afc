#!/usr/bin/env bash
# Every daemon's /metrics has the process_* families (the names of the Prometheus client
# libraries, so that the usual dashboards work) and its PREFIX_build_info gauge; CPU time is a
# counter that grows with work; the edge's two tier labels are spelt alike.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 14

EDGE=$(bin cdn-edge); DNS=$(bin cdn-dns); APP=$(bin shop-app); LB=$(bin shop-lb)
OP=$(free_port); EP=$(free_port); EA=$(free_port); LP=$(free_port); LA=$(free_port); DP=$(free_port); DA=$(free_port)
start app "$APP" -a "127.0.0.1:$OP" --db "$T/cat.db" --generate 50
wait_http "http://127.0.0.1:$OP/healthz" 20 || bail "shop-app did not start"
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$EA" -b "http://127.0.0.1:$OP" -w 1 -n t1
start lb "$LB" -a "127.0.0.1:$LP" --admin "127.0.0.1:$LA" -b "http://127.0.0.1:$OP" --no-health
sed -e "s/127.0.0.1:5399/127.0.0.1:$DP/" -e "s/127.0.0.1:5398/127.0.0.1:$DA/" -e 's|health: http://[^ ]*|health: ~|' \
    "$top_srcdir/dns/examples/bench.yaml" >"$T/dns.yaml"
start dns "$DNS" -c "$T/dns.yaml"
wait_http "http://127.0.0.1:$EA/healthz" && wait_http "http://127.0.0.1:$LA/healthz" && wait_http "http://127.0.0.1:$DA/healthz" ||
    bail "a daemon did not start"

check() {  # check NAME METRICS-URL PREFIX
    local m
    m=$(curl -s "$2")
    like "$m" $'# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total [0-9.e+-]+' "$1: process_cpu_seconds_total (a counter)"
    [ "$(awk '$1 == "process_resident_memory_bytes" {print ($2 > 1e6)}' <<<"$m")" = 1 ] && \
        [ "$(awk '$1 == "process_open_fds" {print ($2 >= 3)}' <<<"$m")" = 1 ] && \
        grep -q '^process_max_fds [1-9]' <<<"$m" && grep -q '^process_start_time_seconds 1\.[0-9]*e+09' <<<"$m"
    ok $? "$1: resident memory, open and max fds, start time"
    like "$m" "$3_build_info\\{version=\"[0-9.]+\",h2o=\"2\\.2\\.[0-9]+\"\\} 1" "$1: $3_build_info"
}
check cdn-edge "http://127.0.0.1:$EA/metrics" edge
check shop-lb "http://127.0.0.1:$LA/metrics" shop_lb
check shop-app "http://127.0.0.1:$OP/metrics" shop
check cdn-dns "http://127.0.0.1:$DA/metrics" cdn_dns

cpu() { curl -s "http://127.0.0.1:$EA/metrics" | awk '$1 == "process_cpu_seconds_total" {print $2}'; }
c0=$(cpu)
for i in $(seq 1 300); do echo "url = \"http://127.0.0.1:$EP/p/$((i % 20))\""; echo "output = /dev/null"; done >"$T/urls"
curl -s --parallel -K "$T/urls"
c1=$(cpu)
awk -v a="$c0" -v b="$c1" 'BEGIN { exit !(b > a) }'; ok $? "the edge's CPU seconds grew with 300 requests ($c0 -> $c1)"
curl -s "http://127.0.0.1:$EP/p/1" >/dev/null
tiers=$(curl -s "http://127.0.0.1:$EA/metrics" | grep -oE '^edge_(tier_hits|requests)_total\{[^}]*tier="[a-z]+"' | grep -oE 'tier="[a-z]+"' | sort -u | tr '\n' ' ')
unlike "$tiers" 'tier="disk"' "one spelling of the disk tier in every family ($tiers)"
