#!/usr/bin/env bash
# edge_hit_body_bytes_sent_total (the byte hit ratio of `cdn-lab top`): the body bytes an edge sent
# from its own cache, beside edge_body_bytes_sent_total (every body byte). A miss adds to the
# total only; a hit and a range of a hit add the bytes sent to both (a stale answer too, not
# checked here); a HEAD adds nothing.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 5
EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -w 2 -n hb
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
E=http://127.0.0.1:$EP
bytes() {  # "total hit"
    curl -s "http://127.0.0.1:$AP/metrics" |
        awk '$1 == "edge_body_bytes_sent_total" {t = $2} $1 == "edge_hit_body_bytes_sent_total" {h = $2} END {print t + 0, h + 0}'
}
n=$(curl -s -o /dev/null -w '%{size_download}' "$E/max60/hb")
[ "$n" -gt 0 ]; ok $? "a miss: $n body bytes"
is "$(bytes)" "$n 0" "after the miss: the total counts them, the hit bytes none"
like "$(curl -s -D - -o /dev/null "$E/max60/hb" | grep -i '^cache-status')" '; hit' "the second request is a hit"
is "$(bytes)" "$((2 * n)) $n" "after the hit: both count its body"
curl -s -I -o /dev/null "$E/max60/hb"
curl -s -o /dev/null -r 0-9 "$E/max60/hb"
is "$(bytes)" "$((2 * n + 10)) $((n + 10))" "a HEAD adds nothing, a range of a hit its 10 bytes to both"
