#!/usr/bin/env bash
# cdn-lab fault wan-loss (issue 19): packet loss in the WAN relays, on the default topology in
# namespaces (the relays exist only there). Asserts counts and states, no times: PCT outside
# 0..100 is refused with exit 2 and the reason; during `wan-loss 100 --for 3` the relays on the
# links to the origin's region (eu-us, us-ap) report loss 1 both ways and the eu-ap one 0, a new
# URL through eu1 (whose misses cross eu-us to the shield) does not come back 200, and eu-us's
# drop_loss rises; after it the relays report loss 0, no control file is left, the same relay
# processes run and a new URL through eu1 is a 200; --link picks one link. Skips without root,
# `ip netns` or the programs.
. "$top_srcdir/tests/lib.sh"
N=17
plan $N
lab=$(bin cdn-lab)
skip_all() { for i in $(seq 1 $N); do skip "$1"; done; exit 0; }
for p in cdn-edge cdn-dns shop-app shop-lb cdn-purge cdn-wanrelay; do
    [ -x "$(bin $p)" ] || skip_all "$p is not built"
done
command -v redis-server >/dev/null 2>&1 || skip_all "redis-server is not installed"
{ [ "$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1; } || skip_all "needs root and ip netns (the WAN relays exist in namespaces only)"
S="$T/st"
export CDN_LAB_REGISTRY="$T/registry"
trap '"$lab" -s "$S" down --drop-logs >/dev/null 2>&1; _cleanup' EXIT
out=$("$lab" -s "$S" up --mode netns "$top_srcdir/lab/topologies/default.yaml" 2>&1); rc=$?
is "$rc" 0 "up (netns)"
[ $rc -eq 0 ] || { diag "$out"; for i in $(seq 2 $N); do skip "the lab did not come up"; done; exit 0; }
eval "$("$lab" -s "$S" env)"
# a URL nobody asked for, from an eu client through eu1: a miss, fetched across eu-us
new_url() { ip netns exec "$LAB_NS_c_eu" curl -s -m "${1:-20}" -o /dev/null -w '%{http_code}' -H 'Host: www.shop.test' \
    "http://$LAB_ADDR_e_eu1:8080/p/$((RANDOM % 50 + 1))?wan=$RANDOM$RANDOM"; }
# a relay's stats: "loss" of both directions; drop_loss summed
losses() { python3 -c 'import json,sys; print(" ".join("%g" % d["loss"] for d in json.load(open(sys.argv[1]))))' "$S/wan-$1.stats" 2>/dev/null; }
drops() { python3 -c 'import json,sys; print(sum(d["drop_loss"] for d in json.load(open(sys.argv[1]))))' "$S/wan-$1.stats" 2>/dev/null; }
relay_pids() { pgrep -f "cdn-wanrelay .*--control $S/wan-" | sort | tr '\n' ' '; }
fault() { : >"$T/f.out"; "$lab" -s "$S" fault "$@" >"$T/f.out" 2>&1 & fpid=$!; wait_for 60 grep -q ' for [0-9.]* s$' "$T/f.out"; }
undone() { wait "$fpid"; local rc=$?; grep -q 'undone after' "$T/f.out" && [ $rc = 0 ]; }

stats_there() { [ -s "$S/wan-eu-us.stats" ] && [ -s "$S/wan-us-ap.stats" ] && [ -s "$S/wan-eu-ap.stats" ]; }
wait_for 10 stats_there
is "$(new_url)" 200 "before: a new URL through eu1 is a 200"
is "$(losses eu-us) $(losses us-ap)" "0 0 0 0" "before: no loss on eu-us and us-ap"

out=$("$lab" -s "$S" fault wan-loss 101 2>&1); rc=$?
like "$rc $out" '^2 .*wan-loss PCT: a packet loss of 0 to 100' "wan-loss 101: exit 2 with the reason"
out=$("$lab" -s "$S" fault wan-loss ten --for 1 2>&1); rc=$?
like "$rc $out" '^2 .*wan-loss PCT' "wan-loss ten: exit 2 with the reason"
out=$("$lab" -s "$S" fault wan-loss 5 --link mars --for 1 2>&1); rc=$?
like "$rc $out" '^[1-9] .*--link mars' "wan-loss --link mars: refused with the reason"

pids0=$(relay_pids)
d0=$(drops eu-us)
fault wan-loss 100 --for 3; ok $? "wan-loss 100 --for 3: in place"
like "$(cat "$T/f.out")" 'wan-loss 100% on eu-us, us-ap for 3.0 s' "it names the links to the origin's region"
is "$(losses eu-us) $(losses us-ap) $(losses eu-ap)" "1 1 1 1 0 0" "during: loss 1 both ways on eu-us and us-ap, eu-ap untouched"
code=$(new_url 2)
ok $([ "$code" != 200 ]; echo $?) "during: a new URL through eu1 does not come back (got $code)"
dropped() { [ "$(drops eu-us)" -gt "${d0:-0}" ]; }
wait_for 5 dropped
d1=$(drops eu-us)
ok $([ "${d1:-0}" -gt "${d0:-0}" ]; echo $?) "during: eu-us drop_loss rose ($d0 -> $d1)"
undone; ok $? "wan-loss: undone by itself"
is "$(losses eu-us) $(losses us-ap) $(ls "$S"/*.ctl 2>/dev/null | wc -l)" "0 0 0 0 0" "after: no loss, no control file left"
is "$(relay_pids)" "$pids0" "after: the same relay processes (changed at run time, not restarted)"
ok200() { [ "$(new_url 5)" = 200 ]; }
wait_for 30 ok200; ok $? "after: a new URL through eu1 is a 200"

fault wan-loss 50 --link eu-ap --for 2
is "$(losses eu-ap) $(losses eu-us)" "0.5 0.5 0 0" "--link eu-ap: only that link"
undone; ok $? "--link eu-ap: undone by itself"
