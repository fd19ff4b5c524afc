#!/usr/bin/env bash
# cdn-edge's disk tier body log (edge/store/blog.c): far more bytes than the tier holds pass
# through it; the segment files stay bounded (cleaning moves live records and removes files),
# an object kept hot the whole time survives every cleaning and a restart with the right bytes,
# and the oldest cold objects are gone (LRU), so the origin is asked again for them. Then two
# workers read from disk in parallel while the writer cleans under them: every body served is
# its own path's (the origin's /own/ bodies differ per path).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 15

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

# two workers, 8 clients in parallel: half the requests on 24 hot URLs, half on 400 others (20-40 kB
# each, about 12 MB) through a 1 MiB tier: disk hits on both workers while cleanings move records
# and remove segments under them
stop edge
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "$O" -w 2 -n x -d "$T/db2" -s 64KiB -S 1MiB --disk-admit all
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
mkdir -p "$T/own"
python3 - "$T/own/list" <<'PY'
import random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for k in range(1200):  # half a hot set of 24 (disk hits), half churn over 400 (misses, cleanings)
        f.write("/own/h%d\n" % r.randrange(24) if k % 2 else "/own/c%d\n" % r.randrange(400))
PY
n=0
while read -r p; do n=$((n + 1)); echo "$n $p"; done <"$T/own/list" |
    xargs -P 8 -n 2 sh -c 'curl -s -o "$0/$2.body" -w "%{http_code}\n" "$1$3" >>"$0/codes"' "$T/own" "$E" 2>/dev/null
python3 - "$T/own" "$top_srcdir/tests/integration" >"$T/own/check" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[2])
from edge_origin import own_body
paths = [l.strip() for l in open(os.path.join(sys.argv[1], "list"))]
bad = 0
for i, p in enumerate(paths, 1):
    try:
        got = open(os.path.join(sys.argv[1], "%d.body" % i), "rb").read()
    except OSError:
        got = b""
    bad += got != own_body(p)
print(len(paths), bad)
PY
read -r total bad <"$T/own/check"
is "$(sort -u "$T/own/codes")" "200" "1200 requests in parallel on two workers: all answered 200"
is "$bad" 0 "every body served is its own path's ($total checked)"
ok "$([ "$(metric edge_disk_segments_cleaned_total)" -gt 0 ]; echo $?)" "while segments were being cleaned ($(metric edge_disk_segments_cleaned_total))"
is "$(metric edge_corrupt_objects_total)" 0 "and nothing was found corrupt"
dh=$(metric 'edge_requests_total{result="hit",tier="rocksdb"}')
ok "$([ "${dh:-0}" -gt 100 ]; echo $?)" "many of them were disk hits ($dh)"
