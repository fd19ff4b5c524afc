#!/usr/bin/env bash
# HTTP/2 resource floods (security issue item 12). Before: an empty-DATA flood (CVE-2019-9518
# class) was parsed for as long as the client liked, with no GOAWAY; 1000 zero-window streams of
# uncacheable 300 kB objects took the edge from 25 to 317 MB RSS, and none was ever closed.
# Now: past h2_empty_frame_limit empty frames a second the connection gets GOAWAY
# (ENHANCE_YOUR_CALM) and is closed; an unstored response is read from the origin no further than
# one chunk ahead of its client; a response the client takes nothing of for send_timeout is ended
# (RST_STREAM CANCEL on h2).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 14

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port); EP2=$(free_port); AP2=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -w 1 -n t1 \
    --send-timeout 1500 --connect-timeout 1000
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
FLOOD="$top_srcdir/tests/security/h2_flood.py"
metric() { curl -s "http://127.0.0.1:$AP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid_edge/status" 2>/dev/null || echo 0; }
# the edge's own pid (start runs it in a process group under setsid)
pid_edge=$(pgrep -f "$EDGE -a 127.0.0.1:$EP" | head -1)

# 1. empty DATA frames on an open POST stream
out=$(python3 "$FLOOD" 127.0.0.1 "$EP" www.shop.test empty-data 5)
like "$out" 'goaway=11 ' "empty-DATA flood: GOAWAY with ENHANCE_YOUR_CALM"
like "$out" 'closed=1 ' "and the connection is closed"
is "$(metric edge_h2_empty_goaway_total)" 1 "counted in edge_h2_empty_goaway_total"
is "$(curl -s -o /dev/null -w '%{http_code}' --http2-prior-knowledge "http://127.0.0.1:$EP/max60/after")" 200 \
    "other h2 clients are served"

# ... and without the bound (h2_empty_frame_limit 0) the same flood runs its whole 2 s
start edge2 "$EDGE" -a "127.0.0.1:$EP2" -A "127.0.0.1:$AP2" -b "http://127.0.0.1:$OP" -w 1 -n t2 \
    --h2-empty-frame-limit 0
wait_http "http://127.0.0.1:$AP2/healthz" || bail "edge2 did not start"
like "$(python3 "$FLOOD" 127.0.0.1 "$EP2" www.shop.test empty-data 2)" 'goaway=- closed=0' \
    "with h2_empty_frame_limit 0 nothing stops it (what the bound changes)"

# 2. zero-window streams of an uncacheable object: 10 connections x 100 streams
r0=$(rss)
python3 "$FLOOD" 127.0.0.1 "$EP" www.shop.test zero-window 30 10 100 /bigns/z > "$T/zw.out" &
zw=$!
peak=0
while kill -0 $zw 2>/dev/null; do  # RSS sampled while the streams are held
    r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.2
done
wait $zw
out=$(cat "$T/zw.out")
like "$out" 'rst=1000 ' "every zero-window stream is reset (RST_STREAM) after send_timeout"
[ "$(metric edge_send_timeouts_total)" -ge 1000 ] 2>/dev/null; ok $? "edge_send_timeouts_total counts them ($(metric edge_send_timeouts_total))"
if sanitized "$EDGE"; then
    skip "RSS under ASan includes its quarantine"
else
    [ $((peak - r0)) -lt 120000 ]; ok $? "RSS grew by $(( (peak - r0) / 1024 )) MB, not the 290 MB of 1000 whole bodies"
fi
is "$(curl -s -o /dev/null -w '%{http_code}' --http2-prior-knowledge "http://127.0.0.1:$EP/max60/after2")" 200 \
    "the edge still serves after the flood"

# 3. what flow control must not break: a whole pass body, a slow reader, h2 and HTTP/1.1
curl -s "http://127.0.0.1:$OP/bigns/ref" > "$T/ref"
curl -s --http2-prior-knowledge "http://127.0.0.1:$EP/bigns/a" > "$T/a"
cmp -s "$T/ref" "$T/a"; ok $? "h2: a 300 kB uncacheable body arrives whole"
curl -s --limit-rate 150k "http://127.0.0.1:$EP/bigns/b" > "$T/b"
cmp -s "$T/ref" "$T/b"; ok $? "HTTP/1.1 at 150 kB/s (the origin read paused and resumed): whole"
curl -s --http2-prior-knowledge --limit-rate 150k "http://127.0.0.1:$EP/bigns/c" > "$T/c"
cmp -s "$T/ref" "$T/c"; ok $? "h2 at 150 kB/s: whole"
# a cacheable fill reads on at full speed and is stored whatever its first client does
curl -s --limit-rate 100k -o /dev/null "http://127.0.0.1:$EP/big/s" &
slow=$!
sleep 0.5
like "$(curl -s -D - -o /dev/null "http://127.0.0.1:$EP/big/s" | tr -d '\r' | grep -i '^cache-status')" 'hit|collapsed|fwd=miss' \
    "a second client of a stored fill is served while the first reads slowly"
wait $slow
like "$(curl -s -D - -o /dev/null "http://127.0.0.1:$EP/big/s" | tr -d '\r' | grep -i '^cache-status')" '; hit' \
    "and the object was stored"
