#!/usr/bin/env bash
# cdn-lab fault for the origin side (issue 19): origin-errors RATE, origin-hang, app-hang APP,
# origin-slow MS, origin-down and parent-down, each held for --for and then undone by itself, on the
# default topology in loopback mode (the faults act on processes, the same in namespaces). Asserts
# states, no times: during the fault a new URL through an edge fails (errors, down) or the process
# is stopped (hang), the apps carry the option (slow); after it, a new URL is a 200 and every
# process is back. Bad arguments are refused with the reason.
. "$top_srcdir/tests/lib.sh"
plan 17
lab=$(bin cdn-lab)
for p in cdn-edge cdn-dns shop-app shop-lb cdn-purge; do
    if [ ! -x "$(bin $p)" ]; then
        for i in $(seq 1 17); do skip "$p is not built"; done; exit 0
    fi
done
command -v redis-server >/dev/null 2>&1 || { for i in $(seq 1 17); do skip "redis-server is not installed"; done; exit 0; }
S="$T/st"
trap '"$lab" -s "$S" down --drop-logs >/dev/null 2>&1; _cleanup' EXIT
out=$("$lab" -s "$S" up --mode loopback "$top_srcdir/lab/topologies/default.yaml" 2>&1); rc=$?
is "$rc" 0 "up (loopback)"
[ $rc -eq 0 ] || { diag "$out"; for i in $(seq 2 17); do skip "the lab did not come up"; done; exit 0; }
eval "$("$lab" -s "$S" env)"
E=http://$LAB_ADDR_e_us1:8080
# (called in $(...), a subshell: no counter survives it, so the URL is made unique by $RANDOM)
new_url() { curl -s -m 20 -o /dev/null -w '%{http_code}' -H 'Host: www.shop.test' "$E/p/$((RANDOM % 50 + 1))?fault=$RANDOM$RANDOM"; }
state_of() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }
# fault WHAT ARGS... : runs it in the background into $T/f.out; returns once it is in place
fault() { : >"$T/f.out"; "$lab" -s "$S" fault "$@" >"$T/f.out" 2>&1 & fpid=$!; wait_for 60 grep -q ' for [0-9.]* s$' "$T/f.out"; }
undone() { wait "$fpid"; local rc=$?; grep -q 'undone after' "$T/f.out" && [ $rc = 0 ]; }

is "$(new_url)" 200 "before: a new URL through us1 is a 200"

fault origin-errors 1 --for 4s
like "$(new_url)" '^5[0-9][0-9]$' "origin-errors 1: a new URL gets a 5xx"
undone; ok $? "origin-errors: undone by itself"
wait_for 20 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' 'http://$LAB_LB/p/3')\" = 200 ]"
is "$(new_url)" 200 "after origin-errors: a new URL is a 200"

lbpid=$(pgrep -f "shop-lb -a $LAB_LB " | head -1)
fault origin-hang --for 2s
is "$(state_of "$lbpid")" T "origin-hang: shop-lb is stopped"
undone; ok $? "origin-hang: undone by itself"
isnt_t() { [ "$(state_of "$lbpid")" != T ]; }
isnt_t; ok $? "after origin-hang: shop-lb runs again"

apid=$(pgrep -f "shop-app -a $LAB_ADDR_app1:" | head -1)
fault app-hang app1 --for 2s
is "$(state_of "$apid")" T "app-hang app1: app1 is stopped"
undone; [ "$(state_of "$apid")" != T ]; ok $? "after app-hang: app1 runs again"

fault origin-slow 300 --for 2s
apps() { pgrep -af shop-app | grep -F -- "--db $S/"; }
like "$(apps | grep -c -- '--delay 300')" '^[1-9]' "origin-slow 300: the apps run with --delay 300"
undone; ok $? "origin-slow: undone by itself"
wait_for 20 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' 'http://$LAB_LB/p/3')\" = 200 ]"
is "$(apps | grep -c -- '--delay')" 0 "after origin-slow: no app has a delay"

fault origin-down --for 2s
like "$(new_url)" '^5[0-9][0-9]$' "origin-down: a new URL gets a 5xx"
undone; ok $? "origin-down: shop-lb back and healthy"

fault parent-down --for 2s
pgrep -f "cdn-edge -a $LAB_ADDR_e_shield:8080" >/dev/null; r1=$?
undone; r2=$?
[ $r1 != 0 ] && [ $r2 = 0 ] && pgrep -f "cdn-edge -a $LAB_ADDR_e_shield:8080" >/dev/null; ok $? "parent-down: the shield is gone during it, back (healthy) after"

out=$("$lab" -s "$S" fault origin-slow abc 2>&1); rc=$?
like "$rc $out" '^[1-9].*origin-slow MS' "origin-slow with a bad delay: refused with the reason"
