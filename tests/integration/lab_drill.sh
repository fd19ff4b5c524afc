#!/usr/bin/env bash
# cdn-lab drill (issue 19's fault drills), two short drills on the default topology (namespaces as
# root, else loopback): the origin refusing (shop-lb killed) with the edges' breaker and fast stale
# on and off, and an app killed with them on. Asserts counts and states from drill.tsv, no times:
# no error on an object that was a hit before the fault; with the breaker on, it opened and the
# requests the edges sent to the origin during the outage stay within the breaker's bound (5
# failures to open, then one probe per 2 s open interval, per edge, plus slack), far fewer than
# with it off; an app killed behind shop-lb costs no client request; the lab is healthy afterwards.
. "$top_srcdir/tests/lib.sh"
plan 15
lab=$(bin cdn-lab)
for p in cdn-edge cdn-dns shop-app shop-lb cdn-load cdn-purge; do
    if [ ! -x "$(bin $p)" ]; then
        for i in $(seq 1 15); do skip "$p is not built"; done; exit 0
    fi
done
command -v redis-server >/dev/null 2>&1 || { for i in $(seq 1 15); do skip "redis-server is not installed"; done; exit 0; }
mode=loopback
[ "$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1 && mode=netns
S="$T/st"
down() { "$lab" -s "$S" down --drop-logs >/dev/null 2>&1; }
trap 'down; _cleanup' EXIT
out=$("$lab" -s "$S" up --mode "$mode" "$top_srcdir/lab/topologies/default.yaml" 2>&1); rc=$?
is "$rc" 0 "$mode: up"
[ $rc -eq 0 ] || { diag "$out"; for i in $(seq 2 15); do skip "the lab did not come up"; done; exit 0; }

# F 4 s: per edge at most 5 failures + 3 probes (one per 2 s) + 4 of slack (in flight at the fault,
# a child passing over its parent)
F=4
"$lab" -s "$S" drill --drills origin-down,app-kill --modes on -W 6 -F $F -R 4 --rate 20 -o "$T/d-on" \
    >"$T/on.txt" 2>"$T/on.err"
is "$?" 0 "drill origin-down and app-kill, breaker on: ran"
"$lab" -s "$S" drill --drills origin-down --modes off -W 6 -F $F -R 4 --rate 20 -o "$T/d-off" \
    >"$T/off.txt" 2>"$T/off.err"
is "$?" 0 "drill origin-down, breaker off: ran"
col() {  # col FILE DRILL COLUMN-NAME
    awk -F'\t' -v d="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } $1 == d { print $k }' "$1"
}
on="$T/d-on/drill.tsv"; off="$T/d-off/drill.tsv"
pre=$(col "$on" origin-down cached_before)
ok $([ "${pre:-0}" -gt 0 ]; echo $?) "origin-down (on): requests for objects cached before the fault: ${pre:-none}"
is "$(col "$on" origin-down cached_before_errors)" 0 "origin-down (on): 0 errors on objects cached before the fault"
is "$(col "$off" origin-down cached_before_errors)" 0 "origin-down (off): 0 errors on them either (hits, stale-if-error)"
det=$(col "$on" origin-down detect_s)
ok $(awk -v d="$det" 'BEGIN { exit !(d != "" && d != "nan" && d >= 0) }'; echo $?) "origin-down (on): a breaker opened (detected)"
rb=$(col "$on" origin-down recover_breaker_s)
ok $(awk -v d="$rb" 'BEGIN { exit !(d != "" && d != "nan") }'; echo $?) "origin-down (on): a breaker closed again after the origin came back"
edges=$(grep -c '^  edge ' <<<"$out")
bound=$((edges * (5 + F / 2 + 1 + 4)))
oreq=$(col "$on" origin-down origin_requests)
ok $([ -n "$oreq" ] && [ "$oreq" -le "$bound" ]; echo $?) \
    "origin-down (on): origin requests during the outage ${oreq:-?} <= $bound ($edges edges x (5 failures + probes + 4))"
oreq_off=$(col "$off" origin-down origin_requests)
ok $([ -n "$oreq_off" ] && [ "$oreq_off" -gt "$oreq" ]; echo $?) \
    "origin-down (off): the edges asked the dead origin more often (${oreq_off:-?} vs ${oreq:-?})"
is "$(col "$off" origin-down refused)" 0 "origin-down (off): no breaker, nothing refused"
is "$(col "$on" app-kill errors)" 0 "app-kill (on): no client error (shop-lb retries on another app)"
is "$(col "$on" app-kill load_ok)" 1 "app-kill (on): every region's load ran"
"$lab" -s "$S" status >"$T/status.txt" 2>&1; ok $? "after the drills: status says all healthy"
[ $_tap_failed = 0 ] || { diag "$(cat "$T/on.txt" "$T/off.txt")"; diag "$(tail -n 5 "$T/on.err" "$T/off.err")"; }
"$lab" -s "$S" down --drop-logs >/dev/null; ok $? "down"
