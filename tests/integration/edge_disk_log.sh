#!/usr/bin/env bash
# cdn-edge's disk tier body log (edge/store/blog.c): far more bytes than the tier holds pass
# through it; the segment files stay bounded (cleaning moves live records and removes files),
# an object kept hot the whole time survives every cleaning and a restart with the right bytes,
# and the oldest cold objects are gone (LRU), so the origin is asked again for them.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 10

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
O=http://127.0.0.1:$OP
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
run_edge() {
    start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "$O" -w 1 -n x -d "$T/db" -s 256KiB -S 2MiB \
        --disk-admit all
    wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
}
run_edge
E=http://127.0.0.1:$EP
count() { curl -s "$O/_count?p=$1"; }
metric() { curl -s "http://127.0.0.1:$AP/metrics" | awk -v m="$1" '$1 == m {printf "%d\n", $2}'; }

# 240 objects of 50,000 bytes (12 MB) through a 2 MiB tier, /mid/hot asked again after every 8
curl -s -o "$T/want" "$O/mid/hot"
for i in $(seq 1 240); do
    curl -s -o /dev/null "$E/mid/o$i"
    [ $((i % 8)) -ne 0 ] || curl -s -o /dev/null "$E/mid/hot"
done
cleaned=$(metric edge_disk_segments_cleaned_total)
ok "$([ "${cleaned:-0}" -gt 0 ]; echo $?)" "segments were cleaned ($cleaned)"
logb=$(metric edge_disk_log_bytes)
# the bound: the tier + a quarter + two segments (1 MiB each here) + one batch of slack
ok "$([ "$logb" -le $((2560 * 1024 + 3 * 1048576)) ]; echo $?)" "the body log stays bounded ($logb bytes for a 2 MiB tier after 12 MB)"
files=$(du -sb "$T/db/bodies" | cut -f1)
ok "$([ "$files" -le $((2560 * 1024 + 3 * 1048576)) ]; echo $?)" "so do its files ($files bytes)"
ok "$([ "$(metric edge_disk_bytes)" -le 2097152 ]; echo $?)" "live bytes within the tier"
curl -s -o "$T/got" "$E/mid/hot"
cmp -s "$T/want" "$T/got"; ok $? "the hot object is served right"
is "$(count /mid/hot)" 2 "and the edge filled it once (the other request is the test's own)"
curl -s -o /dev/null "$E/mid/o1"
is "$(count /mid/o1)" 2 "the oldest cold object was evicted (asked again)"

stop edge
run_edge
h=$(curl -s -D - -o "$T/got2" "$E/mid/hot" | tr -d '\r')
like "$(echo "$h" | grep -i '^cache-status')" 'hit; detail=disk' "after a restart the hot object is a disk hit"
cmp -s "$T/want" "$T/got2"; ok $? "with the right bytes (it was moved by cleanings)"
is "$(metric edge_corrupt_objects_total)" 0 "nothing corrupt"
