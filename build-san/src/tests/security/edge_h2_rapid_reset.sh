#!/usr/bin/env bash
# HTTP/2 rapid reset on uncached URLs (CVE-2023-44487 class). Before the
# fix, one connection's 3000 HEADERS + RST_STREAM pairs started 3000 origin fetches, none was
# cancelled, and the edge held two descriptors for each. Now: a connection that resets more than
# h2_reset_limit streams a second gets GOAWAY and is closed; origin requests are bounded by
# max_fetches (on by default); a fetch still queued for a slot when its last client left is dropped.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 14

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
RR="$top_srcdir/tests/security/h2_rapid_reset.py"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
start_edge() {
    start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -w 1 -n t1 "$@"
    wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
}
metric() { curl -s "http://127.0.0.1:$AP/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$(pgrep -f "cdn-edge -a 127.0.0.1:$EP" | head -1)/status"; }
fds() { ls "/proc/$(pgrep -f "cdn-edge -a 127.0.0.1:$EP" | head -1)/fd" | wc -l; }

# 1. one connection, 3000 pairs for new URLs of a slow origin, default limits
start_edge
rss0=$(rss_kb)
out=$(python3 "$RR" 127.0.0.1 "$EP" "127.0.0.1:$EP" slow 3000 10)
diag "attack: $out"
like "$out" 'goaway=11|closed=1' "the connection is told GOAWAY (ENHANCE_YOUR_CALM) or closed"
is "$(metric edge_h2_reset_goaway_total)" 1 "one GOAWAY counted"
n=$(metric edge_origin_fetches_total)
ok $([ "$n" -le 120 ]; echo $?) "origin fetches bounded by the reset limit: $n of 3000 (limit 100)"
ok $([ "$(fds)" -lt 400 ]; echo $?) "descriptors bounded: $(fds)"
ok $([ $(( $(rss_kb) - rss0 )) -lt 40000 ]; echo $?) "RSS grew by $(( $(rss_kb) - rss0 )) KiB (< 40 MB)"
is "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$EP/max60/normal")" 200 "a normal client is served meanwhile"
stop edge

# 2. eight connections at once: each is cut off, and the origin never sees more than max_fetches
#    requests at a time (here 32)
start_edge --max-fetches 32
curl -s "http://127.0.0.1:$OP/_maxconc?reset" >/dev/null
rrp=()
for i in 1 2 3 4 5 6 7 8; do python3 "$RR" 127.0.0.1 "$EP" "127.0.0.1:$EP" "slow/m$i" 2000 10 > "$T/rr$i" & rrp+=($!); done
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$EP/max60/normal2")
wait "${rrp[@]}"
is "$(cat "$T"/rr* | grep -cE 'goaway=11|closed=1')" 8 "all eight connections cut off"
is "$(metric edge_h2_reset_goaway_total)" 8 "eight GOAWAYs counted"
is "$code" 200 "a normal client is served during the attack"
mc=$(curl -s "http://127.0.0.1:$OP/_maxconc")
ok $([ "$mc" -le 32 ]; echo $?) "origin concurrency stayed within max_fetches: $mc <= 32"
stop edge

# 3. the reset bound off: queued fetches whose clients all left are dropped, not sent later
start_edge --max-fetches 4 --h2-reset-limit 0
out=$(python3 "$RR" 127.0.0.1 "$EP" "127.0.0.1:$EP" slow/q 300 10)
diag "attack without the reset bound: $out"
sleep 2.5
n=$(metric edge_origin_fetches_total)
ok $([ "$n" -le 12 ]; echo $?) "origin fetches: $n of 300 (4 slots; the rest dropped)"
d=$(metric edge_fetch_orphan_dropped_total)
ok $([ "$d" -ge 280 ]; echo $?) "queued fetches nobody waited for were dropped: $d"
is "$(metric edge_h2_reset_goaway_total)" 0 "no GOAWAY with the bound off"
is "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$EP/max60/normal3")" 200 "and the edge still serves"
