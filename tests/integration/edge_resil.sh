#!/usr/bin/env bash
# cdn-edge against a scripted origin that misbehaves on cue (edge_origin.py /_hang, /_slow,
# /_fail; issue 19). Timeouts are shortened by configuration, so each case takes a second or
# two; the assertions are on responses, Cache-Status and counts (the origin's and the edge's
# metrics), never on timings.
#  0. the race itself: with a RAM tier that holds nothing, the stored copy is seen at once
#  1. the race of issue 19: a max-age=1, stale-if-error=600 object, the origin hangs, the object
#     asked again: the stale copy (after the transfer timeout), never 504 'origin timeout'
#  2. fast stale: stale_first_byte_timeout serves the stale copy while the origin hangs, the
#     fetch goes on in the background and refreshes the object when the origin answers
#  3. the circuit breaker: opens after N failures, then the origin sees no more requests while
#     it is open; misses get a stale copy within grace or a fast 503 with Retry-After;
#     half-open probes; closes when the origin answers again
#  4. off by default
#  5. the retry budget: a parent that answers 503 to everything is passed over for the origin
#     only within the budget (ratio of the requests plus a floor); the rest get the 503
#  6. shedding misses before hits: a full fetch queue, or the memory of bodies in flight spent:
#     new misses get 503 (detail=shed) or a stale copy, hits and stale copies are still served
#  7. retries back off with jitter: a parent that refuses, retry_budget.backoff set: the
#     request still reaches the origin once, after the wait
#  8. a parent's breaker: a parent answering 500 is asked 3 times, then passed over without
#     being asked while its breaker is open
#  9. a parent edge whose origin fails answers 5xx (the origin's 500, then its own breaker's 503):
#     the child's breaker for the parent stays closed, so the parent's cache is still used
# 10. breaker.first_byte: a hung origin opens the breaker without waiting for `timeout`
# 11. ... but only in a silence of the upstream (slow for one request is not hung); an answer to a
#     request counted as hung closes the breaker at once
# 12. a hung origin: clients with a stale copy get it under grace at first_byte, joiners at once
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 93

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
O=http://127.0.0.1:$OP
count() { curl -s "$O/_count?p=$1"; }
total() { curl -s "$O/_total"; }
hdr() { grep -i "^$1:" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
metric() {  # metric ADMIN-PORT NAME-WITH-LABELS: its value (0 when absent)
    local v
    v=$(curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2; exit}')
    echo "${v:-0}"
}
# edge NAME PORT ADMIN-PORT [yaml lines...]: a one-worker edge with short timeouts
edge() {
    local name=$1 p=$2 a=$3; shift 3
    {
        echo "origin: \"$O\""
        echo "listen: [\"127.0.0.1:$p\"]"
        echo "admin: \"127.0.0.1:$a\""
        echo "name: $name"
        echo "workers: 1"
        echo "timeout: ${TMO:-1500ms}"
        echo "connect_timeout: ${CTO:-500ms}"
        for l in "$@"; do echo "$l"; done
    } >"$T/$name.yaml"
    start "$name" "$EDGE" -c "$T/$name.yaml"
    wait_http "http://127.0.0.1:$a/healthz" || bail "edge $name did not start"
}

# --- 0. the race itself: a copy the store holds must be seen by the next lookup ------------
# A RAM tier too small to hold anything (-s 1KiB: every object goes to the RocksDB tier only):
# the second of two back-to-back requests used to miss while the RocksDB writer still had the
# put queued (29 of 100 objects fetched twice here before the fix). With an origin that hangs
# on every request for the path after the first, such a miss is issue 19's symptom: 'origin
# timeout' although the edge held a usable copy.
EP=$(free_port); AP=$(free_port)
edge r0 "$EP" "$AP" "ram: 1KiB"
E=http://127.0.0.1:$EP
twice=0; errors=0
for i in $(seq 1 30); do
    curl -s -o /dev/null "$O/_hangafter?p=/max60/pair$i&n=1"
    codes=$(curl -s -m 20 -o /dev/null -o /dev/null -w '%{http_code} ' "$E/max60/pair$i" "$E/max60/pair$i")
    [ "$codes" = "200 200 " ] || errors=$((errors + 1))
    [ "$(count /max60/pair$i)" = 1 ] || twice=$((twice + 1))
done
curl -s -o /dev/null "$O/_hang?on=0"
is "$twice" 0 "RAM tier holds nothing: 30 objects asked twice back to back, each fetched once"
is "$errors" 0 "... and no second request got an error from the hung origin"
stop r0

# --- 1. the race of issue 19 (stale-if-error on a hung origin) -----------------------------
# The cause (docs/EDGE.md "Resilience"): a request whose lookup did not see the stored copy (the
# RocksDB writer had the put queued and the RAM tier had let the object go), or that joined a
# plain fill, got its fetch's 504 although the store held a copy stale-if-error allows. Each
# round here: a fresh object, the origin hangs, asked again when stale: the stale copy.
EP=$(free_port); AP=$(free_port)
edge r1 "$EP" "$AP"
E=http://127.0.0.1:$EP
bad=0
for i in 1 2 3; do
    curl -s -o /dev/null "$E/sie/race$i"
    curl -s -o /dev/null "$O/_hang?on=1"
    sleep 2.1   # max-age=1: stale by now (whole seconds)
    h=$(curl -s -m 20 -D - -o "$T/r$i" "$E/sie/race$i")
    curl -s -o /dev/null "$O/_hang?on=0"
    if [ "$(cat "$T/r$i")" != "stale but useful" ]; then
        bad=$((bad + 1)); diag "round $i: $(echo "$h" | head -1) $(echo "$h" | hdr cache-status): $(head -c 100 "$T/r$i")"
    fi
done
is "$bad" 0 "3 of 3 rounds: the stale copy, not 504, from a hung origin"
like "$(echo "$h" | hdr cache-status)" 'fwd=stale; detail=stale-if-error' "Cache-Status says stale-if-error"
is "$(count /sie/race3)" 2 "the origin saw the fill and one revalidation"
stop r1

# --- 2. fast stale ------------------------------------------------------------------------
EP=$(free_port); AP=$(free_port)
TMO=30s edge r2 "$EP" "$AP" "stale_first_byte_timeout: 300ms"
E=http://127.0.0.1:$EP
curl -s -o /dev/null "$E/sie/fast"
is "$(count /sie/fast)" 1 "filled once"
sleep 2.1
curl -s -o /dev/null "$O/_hang?on=1"
h=$(curl -s -m 20 -D - -o "$T/f1" "$E/sie/fast")
is "$(cat "$T/f1")" "stale but useful" "origin hung: the stale copy without waiting for the transfer timeout"
like "$(echo "$h" | hdr cache-status)" 'fwd=stale; detail=slow-origin' "Cache-Status: detail=slow-origin"
h=$(curl -s -m 20 -D - -o "$T/f2" "$E/sie/fast")
like "$(echo "$h" | hdr cache-status)" 'detail=slow-origin' "a second client while the refresh is still out: the stale copy too"
is "$(count /sie/fast)" 2 "... and no second revalidation (it joins the one in flight)"
is "$(metric "$AP" edge_stale_slow_total)" 2 "edge_stale_slow_total counts both"
curl -s -o /dev/null "$O/_hang?on=0"   # the origin answers the refresh (304) now
reval() { [ "$(metric "$AP" 'edge_requests_total{result="revalidated",tier="origin"}')" = 1 ]; }
wait_for 10 reval
ok $? "the background refresh came back (304) and renewed the stored object"
is "$(count /sie/fast)" 2 "the refresh was the only other origin request"
# a plain miss (no stale copy) is not cut short: it waits for its answer
curl -s -o /dev/null "$O/_slow?ms=800"
r=$(curl -s -m 20 -o "$T/f3" -w '%{http_code}' "$E/max60/slowmiss")
curl -s -o /dev/null "$O/_slow?ms=0"
is "$r" 200 "a miss without a stale copy waits for the slow origin (200)"
stop r2

# --- 3. the circuit breaker -----------------------------------------------------------------
EP=$(free_port); AP=$(free_port)
edge r3 "$EP" "$AP" "breaker: {failures: 3, open: 3s, probes: 1, grace: 1h}"
E=http://127.0.0.1:$EP
U="upstream=\"$O\""
# a stale copy without stale-if-error (max-age=2, no windows): only grace can serve it
curl -s -o /dev/null "$E/short/g"
curl -s -o /dev/null "$E/sie/b"
is "$(metric "$AP" "edge_breaker_state{$U}")" 0 "closed while the origin answers"
sleep 2.2   # both stale now (max-age=2 and max-age=1), while the breaker is closed
curl -s -o /dev/null "$O/_fail?on=1"
for i in 1 2 3; do curl -s -o /dev/null "$E/status/200/f$i"; done
is "$(metric "$AP" "edge_breaker_state{$U}")" 1 "3 failures (500) in a row: open"
is "$(metric "$AP" "edge_breaker_transitions_total{upstream=\"$O\",to=\"open\"}")" 1 "one transition to open"
before=$(total)
h=$(curl -s -D - -o "$T/b1" "$E/max60/never")
like "$(echo "$h" | head -1)" ' 503' "a miss with nothing stored: 503 at once"
like "$(echo "$h" | hdr retry-after)" '^[1-3]$' "... with Retry-After (the seconds until a probe)"
like "$(echo "$h" | hdr cache-status)" 'detail=breaker-open' "... and Cache-Status detail=breaker-open"
like "$(cat "$T/b1")" 'circuit breaker' "... and the reason in the body"
h=$(curl -s -D - -o "$T/b2" "$E/short/g")
like "$(echo "$h" | head -1)" ' 200' "a stale object without stale-if-error: served within grace"
like "$(echo "$h" | hdr cache-status)" 'fwd=stale; detail=breaker-open' "... Cache-Status says why"
h=$(curl -s -D - -o "$T/b3" "$E/sie/b")
is "$(cat "$T/b3")" "stale but useful" "a stale-if-error object: its stale copy"
for i in 1 2 3 4 5; do curl -s -o /dev/null "$E/max60/n$i"; done
after=$(total)
ok $([ $((after - before)) -le 1 ] && echo 0 || echo 1) "the origin saw at most 1 request (a probe) while open (saw $((after - before)))"
like "$(metric "$AP" edge_breaker_503_total)" '^[1-9]' "edge_breaker_503_total counts the 503s"
like "$(metric "$AP" edge_breaker_stale_total)" '^[1-9]' "edge_breaker_stale_total counts the stale answers"
like "$(metric "$AP" "edge_breaker_refused_total{$U}")" '^[1-9]' "edge_breaker_refused_total counts the requests not sent"
# half-open: after `open` one probe goes; it fails (the origin still fails): open again
sleep 3.2
before=$(total)
curl -s -o /dev/null "$E/max60/probe1"
is "$(($(total) - before))" 1 "half-open: one probe reached the origin"
is "$(metric "$AP" "edge_breaker_state{$U}")" 1 "the probe failed: open again"
is "$(metric "$AP" "edge_breaker_transitions_total{upstream=\"$O\",to=\"half-open\"}")" 1 "one transition to half-open"
# the origin recovers: the next probe succeeds and closes it
curl -s -o /dev/null "$O/_fail?on=0"
sleep 3.2
r=$(curl -s -o /dev/null -w '%{http_code}' "$E/max60/probe2")
is "$r" 200 "the probe after recovery: 200"
is "$(metric "$AP" "edge_breaker_state{$U}")" 0 "one good probe: closed"
is "$(metric "$AP" "edge_breaker_transitions_total{upstream=\"$O\",to=\"closed\"}")" 1 "one transition to closed"
r=$(curl -s -o /dev/null -w '%{http_code}' "$E/max60/after")
is "$r" 200 "closed: misses go to the origin again"
grep -q "breaker $O: closed -> open" "$T/r3.log"; ok $? "the log names the transition to open"
grep -q "breaker $O: half-open -> closed" "$T/r3.log"; ok $? "... and the one to closed"
# a hung origin counts too (timeouts), and the breaker then spares clients the wait
curl -s -o /dev/null "$O/_hang?on=1"
for i in 1 2 3; do curl -s -m 20 -o /dev/null "$E/max60/h$i"; done
is "$(metric "$AP" "edge_breaker_state{$U}")" 1 "3 timeouts in a row: open"
before=$(total)
r=$(curl -s -m 20 -o /dev/null -w '%{http_code}' "$E/max60/h4")
is "$r" 503 "open on a hung origin: 503 without waiting for the timeout"
is "$(($(total) - before))" 0 "... and the hung origin saw nothing"
curl -s -o /dev/null "$O/_hang?on=0"
stop r3

# --- 4. off by default: the same failures never refuse a request -------------------------------
EP=$(free_port); AP=$(free_port)
edge r4 "$EP" "$AP"
E=http://127.0.0.1:$EP
curl -s -o /dev/null "$O/_fail?on=1"
for i in 1 2 3 4 5; do curl -s -o /dev/null "$E/status/200/off$i"; done
before=$(total)
r=$(curl -s -o /dev/null -w '%{http_code}' "$E/status/200/off6")
curl -s -o /dev/null "$O/_fail?on=0"
is "$r" 500 "no breaker configured: the origin's 500 passes"
is "$(($(total) - before))" 1 "... and every miss reaches the origin"
stop r4

# --- 5. the retry budget ------------------------------------------------------------------------
PP=$(free_port)
start parent python3 "$top_srcdir/tests/integration/edge_origin.py" "$PP"
wait_port 127.0.0.1 "$PP" || bail "parent did not start"
curl -s -o /dev/null "http://127.0.0.1:$PP/_sick?on=1"   # 503 to every request, /healthz too
EP=$(free_port); AP=$(free_port)
edge r5 "$EP" "$AP" "parents: [\"http://127.0.0.1:$PP\"]" "parent_check_interval: 0" \
    "retry_budget: {ratio: 0.2, min: 2, window: 1m}"
E=http://127.0.0.1:$EP
before=$(total); ok200=0; e503=0
for i in $(seq 1 20); do
    r=$(curl -s -o /dev/null -w '%{http_code}' "$E/max60/budget$i")
    [ "$r" = 200 ] && ok200=$((ok200 + 1))
    [ "$r" = 503 ] && e503=$((e503 + 1))
done
sent=$(($(total) - before))
ok $([ "$sent" -ge 2 ] && [ "$sent" -le 6 ] && echo 0 || echo 1) "20 requests through a failing parent: 2..6 retries reached the origin (min 2 + 20%; saw $sent)"
is "$ok200" "$sent" "each retry answered 200 from the origin"
is "$e503" $((20 - sent)) "the others got the parent's 503 (no retry beyond the budget)"
is "$(metric "$AP" edge_retries_total)" "$sent" "edge_retries_total counts the retries"
is "$(metric "$AP" edge_retry_budget_exhausted_total)" $((20 - sent)) "edge_retry_budget_exhausted_total counts the rest"
stop r5
stop parent

# --- 6. shedding misses before hits ---------------------------------------------------------------
EP=$(free_port); AP=$(free_port)
TMO=20s CTO=20s edge r6 "$EP" "$AP" "max_fetches: 1" "fetch_queue_max: 1" "fill_memory: 200KiB"
E=http://127.0.0.1:$EP
curl -s -o /dev/null "$E/max60/hot"
curl -s -o /dev/null "$E/sie/st"
sleep 2.1   # /sie/st is stale now
curl -s -o /dev/null "$O/_hang?on=1"
qp=()
for i in 1 2 3 4 5; do
    curl -s -m 30 -o /dev/null -w '%{http_code}\n' "$E/max60/q$i" >"$T/q$i" &
    qp+=($!)
    [ "$i" = 1 ] && wait_for 5 sh -c "[ \$(curl -s '$O/_count?p=/max60/q1') = 1 ]"   # q1 holds the slot
    sleep 0.2
done
# the first holds the one origin slot (hung), the second waits in the queue, the rest are shed
wait_for 10 sh -c "[ \$(cat '$T'/q3 '$T'/q4 '$T'/q5 2>/dev/null | grep -c 503) -eq 3 ]"
ok $? "origin slot taken, queue full: the next 3 misses get 503 at once"
like "$(curl -s -D - -o /dev/null "$E/max60/q6" | hdr cache-status)" 'detail=shed' "Cache-Status: detail=shed"
h=$(curl -s -D - -o /dev/null "$E/max60/hot")
like "$(echo "$h" | hdr cache-status)" '; hit$' "a hit is served while misses are shed"
is "$(cat <(curl -s "$E/sie/st"))" "stale but useful" "a miss with a stale-if-error copy gets the stale copy, not 503"
is "$(metric "$AP" 'edge_shed_total{why="queue"}')" 5 "edge_shed_total{why=queue} counts the shed misses"
curl -s -o /dev/null "$O/_hang?on=0"
wait "${qp[@]}"
is "$(cat "$T/q1" "$T/q2" | tr '\n' ' ')" "200 200 " "the slot's fetch and the queued one are answered when the origin is back"
is "$(count /max60/q3)$(count /max60/q4)$(count /max60/q5)" "000" "the shed misses never reached the origin"
# fill memory: a fill in flight that holds 250 kB of its body (the origin stops mid-body)
curl -s -o /dev/null "$O/_midhang?on=1"
curl -s -m 30 -o /dev/null "$E/partial/x" &
slow=$!
fill() { [ "$(metric "$AP" edge_fill_bytes)" -ge 204800 ]; }
wait_for 10 fill
ok $? "edge_fill_bytes holds the body of the fill in flight"
r=$(curl -s -o /dev/null -w '%{http_code}' "$E/max60/m1")
is "$r" 503 "fill_memory spent: a new miss gets 503"
is "$(metric "$AP" 'edge_shed_total{why="memory"}')" 1 "edge_shed_total{why=memory}"
like "$(curl -s -D - -o /dev/null "$E/max60/hot" | hdr cache-status)" '; hit$' "... and a hit is still served"
curl -s -o /dev/null "$O/_midhang?on=0"
wait $slow
refilled() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$E/max60/m2")" = 200 ]; }
wait_for 10 refilled
ok $? "the fill done: misses are fetched again"
nofill() { [ "$(metric "$AP" edge_fill_bytes)" = 0 ]; }
wait_for 10 nofill
ok $? "edge_fill_bytes back to 0"
stop r6

# --- 7. retry backoff -------------------------------------------------------------------------------
DEAD=$(free_port)   # nothing listens there: the parent refuses
EP=$(free_port); AP=$(free_port)
edge r7 "$EP" "$AP" "parents: [\"http://127.0.0.1:$DEAD\"]" "parent_check_interval: 0" \
    "retry_budget: {backoff: 300ms, backoff_max: 300ms}"
E=http://127.0.0.1:$EP
h=$(curl -s -m 20 -D - -o "$T/bo" "$E/max60/backoff")
like "$(echo "$h" | head -1)" ' 200' "a refusing parent, backoff set: the retry to the origin answers 200"
is "$(count /max60/backoff)" 1 "... the origin saw it once"
is "$(metric "$AP" edge_retries_total)" 1 "... one retry (edge_retries_total)"
stop r7

# --- 8. a parent's breaker ------------------------------------------------------------------------
PP=$(free_port)
start parent2 python3 "$top_srcdir/tests/integration/edge_origin.py" "$PP"
wait_port 127.0.0.1 "$PP" || bail "parent2 did not start"
curl -s -o /dev/null "http://127.0.0.1:$PP/_fail?on=1"   # 500 to everything
EP=$(free_port); AP=$(free_port)
edge r8 "$EP" "$AP" "parents: [\"http://127.0.0.1:$PP\"]" "parent_check_interval: 0" \
    "breaker: {failures: 3, open: 1m}"
E=http://127.0.0.1:$EP
p0=$(curl -s "http://127.0.0.1:$PP/_total")
o0=$(total)
codes=$(for i in $(seq 1 10); do curl -s -o /dev/null -w '%{http_code} ' "$E/max60/pb$i"; done)
is "$codes" "200 200 200 200 200 200 200 200 200 200 " "10 misses through a failing parent: all 200 (from the origin)"
is "$(( $(curl -s "http://127.0.0.1:$PP/_total") - p0 ))" 3 "the parent was asked 3 times, then its breaker opened"
is "$(( $(total) - o0 ))" 10 "the origin answered all 10"
is "$(metric "$AP" "edge_breaker_state{upstream=\"http://127.0.0.1:$PP\"}")" 1 "the parent's breaker is open"
stop r8

# --- 9. the parent's origin fails: not the parent's failure (found by cdn-lab drill) ----------
# A real cdn-edge as the parent (breaker on), the scripted origin behind both. The parent caches
# /max60/held while the origin works; then the origin answers 500 to everything: the parent passes
# on 500s (fwd-status=500), its breaker opens, it answers 503 detail=breaker-open. The child
# counts none of that against the parent: its breaker for the parent stays closed, and the object
# the parent holds still reaches the child's client (before, the child opened its breaker for
# the parent and went to the failing origin instead). Nor does the child go round the parent to
# the failing origin (a shield that answers is not bypassed), and it serves an expired copy under
# its grace when the parent says its origin fails.
curl -s -o /dev/null "$O/_fail?on=0"
PEP=$(free_port); PAP=$(free_port); EP=$(free_port); AP=$(free_port)
edge p9 "$PEP" "$PAP" "breaker: {failures: 3, open: 1m}"
curl -s -o /dev/null -H "Host: 127.0.0.1:$EP" "http://127.0.0.1:$PEP/max60/held"  # the child's Host: its key
edge r9 "$EP" "$AP" "parents: [\"http://127.0.0.1:$PEP\"]" "parent_check_interval: 0" "breaker: {failures: 3, open: 1m, grace: 1h}"
E=http://127.0.0.1:$EP
curl -s -o /dev/null "$E/short/pg9"   # max-age=2, no stale windows: cached by both
curl -s -o /dev/null "$O/_fail?on=1"
t0=$(total)
for i in $(seq 1 10); do curl -s -o /dev/null "$E/max60/pf$i"; done
is "$(( $(total) - t0 ))" 3 "the origin saw the parent's 3 requests only: the child does not go round a shield that answers"
is "$(metric "$AP" "edge_breaker_state{upstream=\"$O\"}")" 0 "... the child's own breaker for the origin was never used"
sleep 2.2   # /short/pg9 has expired in both
h=$(curl -s -D - "$E/short/pg9")
like "$(echo "$h" | head -1) $(echo "$h" | hdr cache-status)" ' 200 .*fwd=stale' \
    "an expired copy without stale windows: the child serves it under grace when the parent says its origin fails"
is "$(metric "$PAP" "edge_breaker_state{upstream=\"$O\"}")" 1 "the parent's breaker for the failing origin is open"
is "$(metric "$AP" "edge_breaker_state{upstream=\"http://127.0.0.1:$PEP\"}")" 0 \
    "10 misses through it: the child's breaker for the parent is still closed"
is "$(metric "$AP" "edge_breaker_transitions_total{upstream=\"http://127.0.0.1:$PEP\",to=\"open\"}")" 0 "... it never opened"
h=$(curl -s -D - -o /dev/null "$E/max60/held")
like "$(echo "$h" | head -1) $(echo "$h" | hdr cache-status)" ' 200 .*cdn-edge-p9; hit' \
    "the object the parent holds still comes from the parent's cache"
curl -s -o /dev/null "$O/_fail?on=0"
stop r9
stop p9

# --- 10. breaker.first_byte: a hung origin is a failing one (found by cdn-lab drill) -----------
# Without it the breaker hears of a hung request only at `timeout` (30 s by default), so a hung
# origin was never detected within a drill and every miss joined the queue of hung requests.
curl -s -o /dev/null "$O/_hang?on=1"
EP=$(free_port); AP=$(free_port)
TMO=20s edge r10 "$EP" "$AP" "breaker: {failures: 3, open: 1m, first_byte: 300ms}"
E=http://127.0.0.1:$EP
t0=$(total)
fbp=()
for i in 1 2 3; do (curl -s -m 30 -o /dev/null -w '%{http_code}' "$E/max60/fb$i" >"$T/fb$i") & fbp+=($!); done
for i in $(seq 1 50); do [ "$(metric "$AP" "edge_breaker_state{upstream=\"$O\"}")" = 1 ] && break; sleep 0.1; done
is "$(metric "$AP" "edge_breaker_state{upstream=\"$O\"}")" 1 \
    "3 requests without a head for 300 ms: the breaker is open, without waiting for the 20 s timeout"
is "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$E/max60/fb4")" 503 "the next miss: 503 at once (breaker-open)"
is "$(( $(total) - t0 ))" 3 "the hung origin saw the 3 requests, not the 4th"
curl -s -o /dev/null "$O/_hang?on=0"
wait "${fbp[@]}"
is "$(cat "$T/fb1" "$T/fb2" "$T/fb3")" "200200200" "the 3 hung requests are answered when the origin resumes"
stop r10

# --- 11. breaker.first_byte counts a request as hung only in a silence of its upstream ---------
# Two requests held by the origin (per path) pass first_byte several times while the origin answers
# other misses: slow for those two, not hung; counted only once nothing else comes back. A request
# counted as hung that is answered after all closes the breaker at once (open: 1m).
EP=$(free_port); AP=$(free_port)
TMO=20s edge r11 "$EP" "$AP" "breaker: {failures: 2, open: 1m, first_byte: 700ms}"
E=http://127.0.0.1:$EP
HUNG="edge_breaker_hung_total{upstream=\"$O\"}"
STATE="edge_breaker_state{upstream=\"$O\"}"
curl -s -o /dev/null "$O/_hangafter?p=/max60/h11a&n=0"
curl -s -o /dev/null "$O/_hangafter?p=/max60/h11b&n=0"
: >"$T/fast11"
fast() { local i=0; while [ -e "$T/fast11" ]; do curl -s -m 5 -o /dev/null "$E/max60/f11-$1-$((i++))"; sleep 0.05; done; }
fast a & fa=$!
fast b & fb=$!
sleep 0.3
hp=()
for x in a b; do (curl -s -m 30 -o /dev/null -w '%{http_code}' "$E/max60/h11$x" >"$T/h11$x") & hp+=($!); done
sleep 2.5   # more than three first_byte periods of the held requests, with answers all along
is "$(metric "$AP" "$HUNG")" 0 "requests past first_byte while the origin answers others: not counted as hung"
is "$(metric "$AP" "$STATE")" 0 "... and the breaker stays closed"
rm -f "$T/fast11"
wait $fa $fb
for i in $(seq 1 50); do [ "$(metric "$AP" "$HUNG")" = 2 ] && break; sleep 0.1; done
is "$(metric "$AP" "$HUNG")" 2 "once nothing comes back for first_byte, both are counted as hung"
is "$(metric "$AP" "$STATE")" 1 "... and the breaker (failures: 2) opens"
curl -s -o /dev/null "$O/_hang?on=0"   # the origin answers the two held requests
wait "${hp[@]}"
is "$(cat "$T/h11a" "$T/h11b")" "200200" "the two held requests are answered"
for i in $(seq 1 30); do [ "$(metric "$AP" "$STATE")" = 0 ] && break; sleep 0.1; done
is "$(metric "$AP" "$STATE")" 0 "an answer to a request counted as hung closes the breaker (slow, not dead), before open: 1m"
is "$(metric "$AP" "edge_breaker_transitions_total{upstream=\"$O\",to=\"closed\"}")" 1 "one transition to closed"
is "$(curl -s -o /dev/null -w '%{http_code}' "$E/max60/after11")" 200 "the next miss goes to the origin"
stop r11

# --- 12. a hung origin: clients holding a stale copy get it at the hang, under grace -------------
# /short/ has max-age=2 and no stale-if-error: only the breaker's grace may serve it stale. The
# revalidation hangs; at first_byte (in a silence) it is counted as hung and its client gets the
# stale copy (detail=origin-hung), long before `timeout` (20 s); a client that comes meanwhile gets it
# at once; the fetch goes on and refreshes the object when the origin answers.
EP=$(free_port); AP=$(free_port)
TMO=20s edge r12 "$EP" "$AP" "breaker: {failures: 5, open: 1m, first_byte: 300ms, grace: 1h}"
E=http://127.0.0.1:$EP
is "$(curl -s "$E/short/g12")" "body of /short/g12 #1" "an object with max-age=2 and no stale windows is cached"
sleep 2.2
curl -s -o /dev/null "$O/_hang?on=1"
h=$(curl -s -m 10 -D - "$E/short/g12")
like "$(echo "$h" | head -1) $(echo "$h" | hdr cache-status)" ' 200 .*fwd=stale; detail=origin-hung' \
    "the revalidation hangs: the stale copy at first_byte (grace), not after the 20 s timeout"
like "$h" 'body of /short/g12 #1' "... the old body"
h=$(curl -s -m 10 -D - -o /dev/null "$E/short/g12")
like "$(echo "$h" | hdr cache-status)" 'detail=origin-hung' "a client that comes meanwhile gets it at once"
is "$(count /short/g12)" 2 "... the origin saw the fill and one revalidation, no more"
is "$(metric "$AP" "$HUNG")" 1 "one request counted as hung"
curl -s -o /dev/null "$O/_hang?on=0"
for i in $(seq 1 30); do curl -s "$E/short/g12" | grep -q '#2' && break; sleep 0.1; done
is "$(curl -s "$E/short/g12")" "body of /short/g12 #2" "the fetch went on: the answer refreshed the object"
stop r12
