#!/usr/bin/env bash
# The app pool's auto-scaler (cdn-lab scale, issue 17) against real processes: shop-lb, shop-apps
# with a 300 ms service delay (so requests in flight follow the number of concurrent clients),
# curl clients inside the lab. Counts and states, no timings: with 8 clients the scaler starts a
# second app and adds it to shop-lb (its backend list shows it, requests reach it), stays at max
# (logged), and once the load falls to one client it drains the app, waits for its in-flight
# requests, removes and stops it, with 0 failed requests; it never goes below min or above max,
# and every decision is logged with its reason; an app that dies leaves the pool and is replaced at
# once. A bad scale: value names its line.
# Loopback mode, then namespaces mode as root.
. "$top_srcdir/tests/lib.sh"
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
lab=$(bin cdn-lab)
for p in cdn-edge cdn-dns shop-app shop-lb cdn-lab; do
    [ -x "$(bin $p)" ] || skip_all "$p is not built"
done
command -v redis-server >/dev/null || skip_all "redis-server is not installed (the lab's purge bus)"
command -v curl >/dev/null || skip_all "curl is not installed"
modes="loopback"
[ "$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1 && modes="loopback netns"
set -- $modes
plan $((1 + 20 * $#))

# a bad value: the file's line
printf 'regions: {us: {}}\nedges: [{name: us1, region: us}]\norigin: {region: us, apps: 1}\nscale:\n  target_inflight: 3\n  max: 0\n' >"$T/bad.yaml"
out=$("$lab" -s "$T/bad" up "$T/bad.yaml" 2>&1); rc=$?
like "$rc $out" "^1 .*bad.yaml:6:[0-9]+: " "a bad scale: value names its line"

cat >"$T/scale.yaml" <<'EOF'
name: scalet
regions: {us: {clients: 1}}
edges: [{name: us1, region: us, ram: 16MiB, disk: 64MiB}]
origin: {region: us, apps: 1, products: 500, algo: leastconn, delay: 300ms}
scale:
  min: 1
  max: 2
  target_inflight: 3
  up_after: 1s
  down_after: 2s
  cooldown: 1s
  interval: 250ms
EOF
run_mode() {
    local mode=$1 S="$T/st-$1" out rc scaler cps c codes bad total sizes nodec got nbefore
    out=$("$lab" -s "$S" up --mode "$mode" "$T/scale.yaml" 2>&1); rc=$?
    is "$rc" 0 "$mode: up with a scale: section"
    [ $rc -eq 0 ] || { diag "$out"; "$lab" -s "$S" down >/dev/null 2>&1; exit 1; }
    trap 'touch "$T"/$mode-stop; "$lab" -s "$S" down >/dev/null 2>&1; _cleanup' EXIT
    like "$out" "app2 .*spare: not started" "$mode: up: a spare app slot up to max, not started"
    eval "$("$lab" -s "$S" env)"
    ns=${LAB_NS_lb:-}; ex=(); [ -n "$ns" ] && ex=(ip netns exec "$ns")
    lb=http://$LAB_LB
    backends() { "${ex[@]}" curl -s -m 5 "http://$LAB_LB_ADMIN/backends"; }
    nback() { backends | grep -o '"addr":' | wc -l; }
    is "$(nback)" 1 "$mode: shop-lb starts with one backend"

    "$lab" -s "$S" scale >"$T/scale.out" 2>&1 &
    scaler=$!
    wait_for 20 sh -c "grep -qP '\tstart\t' '$S/scale.log' 2>/dev/null"
    out=$("$lab" -s "$S" scale -d 1s 2>&1); rc=$?
    like "$rc $out" "^1 .*another cdn-lab scale runs on this lab" "$mode: a second scaler on the same lab refuses"
    # clients: each sends requests one after the other until told to stop (at most 600 each), and
    # writes every status code
    client() {
        local i=0
        while [ ! -e "$T/$mode-stop" ] && [ ! -e "$T/$mode-stop$1" ] && [ $i -lt 600 ]; do
            "${ex[@]}" curl -s -o /dev/null -m 20 -w '%{http_code}\n' "$lb/p/$((RANDOM % 500 + 1))" >>"$T/$mode-codes-$1"
            i=$((i + 1))
        done
    }
    cps=()
    for c in 1 2 3 4 5 6 7 8; do client $c & cps+=($!); done
    app2=$LAB_ADDR_app2:8081
    wait_for 60 sh -c "grep -q 'added.*app2' '$S/scale.log'"
    like "$(grep -P '\tup\t' "$S/scale.log" | head -1)" "start app2 .*because: in flight [0-9.]+ per healthy app > target 3.0" \
        "$mode: up: app2 started, the reason logged (in flight over the target)"
    like "$(grep -P '\tadded\t' "$S/scale.log" | head -1)" "app2 healthy .*add=$app2: 200" "$mode: added to shop-lb through its admin API"
    app2_up() { backends | grep -q "\"addr\":\"$app2\",\"state\":\"up\""; }
    wait_for 30 app2_up
    like "$(backends)" "\"addr\":\"$app2\",\"state\":\"up\"" "$mode: shop-lb's backend list shows app2 up"
    wait_for 30 sh -c "[ -s '$S/logs/access-app2.json' ]"
    ok $? "$mode: requests reach app2 (its access log)"
    wait_for 30 sh -c "grep -qP '\thold\tat max 2' '$S/scale.log'"
    like "$(grep -P '\thold\t' "$S/scale.log" | head -1)" "at max 2: in flight [0-9.]+ per healthy app > target" \
        "$mode: at max: no third app, the refusal logged with its reason"

    # the load falls to one client: the scaler drains app2, waits for its in-flight requests, removes it
    for c in 2 3 4 5 6 7 8; do touch "$T/$mode-stop$c"; done
    wait_for 60 sh -c "grep -q 'removed.*app2' '$S/scale.log'"
    like "$(grep -P '\tdown\t' "$S/scale.log" | head -1)" "drain app2 .*shop-lb said 200, pool 2 -> 1, because: load low" \
        "$mode: down: drain first, the reason logged"
    like "$(grep -P '\tremoved\t' "$S/scale.log" | head -1)" "app2: in flight 0 after .*remove: 200; SIGTERM" \
        "$mode: removed only once nothing was in flight to it, then stopped"
    is "$(nback)" 1 "$mode: shop-lb's backend list is back to one"
    wait_for 20 sh -c "grep -qP '\thold\tat min 1' '$S/scale.log'"
    ok $? "$mode: at min: never below one app (logged)"
    like "$("$lab" -s "$S" status 2>&1)" "app2 +- +no +stopped \(scaled in\)" "$mode: status: app2 stopped on purpose, not a failure"
    touch "$T/$mode-stop"
    wait "${cps[@]}"
    # the last app dies: it leaves the pool and a new one is started and added at once (below min)
    nbefore=$(wc -l <"$S/scale.tsv")  # the samples of the scaler's own doing (then the pool is 0 for a moment)
    "$lab" -s "$S" fault kill app1 >/dev/null 2>&1
    wait_for 30 sh -c "grep -qP '\tremoved\tapp1: its process [0-9]+ is gone' '$S/scale.log'"
    ok $? "$mode: a killed app leaves shop-lb's pool (logged)"
    wait_for 30 sh -c "grep -P '\tup\tstart app1 ' '$S/scale.log' | grep -q 'because: 0 healthy apps < min 1'"
    ok $? "$mode: replaced at once: 0 healthy apps < min 1"
    wait_for 30 sh -c "[ \$(grep -cP '\tadded\tapp1 ' '$S/scale.log') -ge 1 ]"
    app1_up() { backends | grep -q "\"addr\":\"$LAB_ADDR_app1:8081\",\"state\":\"up\""; }
    wait_for 30 app1_up
    got=""; for c in 1 2 3 4 5; do got="$got$("${ex[@]}" curl -s -o /dev/null -m 10 -w '%{http_code} ' "$lb/p/$c")"; done
    is "$got" "200 200 200 200 200 " "$mode: the new app1 answers through shop-lb"
    kill -TERM $scaler 2>/dev/null; wait $scaler
    codes=$(cat "$T"/$mode-codes-* | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}')
    bad=$(cat "$T"/$mode-codes-* | grep -vc '^200$')
    total=$(cat "$T"/$mode-codes-* | wc -l)
    is "$bad" 0 "$mode: 0 failed requests of $total through scale-up and scale-in ($codes)"
    sizes=$(head -n "$nbefore" "$S/scale.tsv" | awk -F'\t' 'NR > 1 {print $2}' | sort -n | uniq | tr '\n' ' ')
    like "$sizes" "^1 2 $" "$mode: the pool was 1 or 2 apps in every sample (min 1, max 2)"
    nodec=$(grep -P '\t(up|down)\t' "$S/scale.log" | grep -vc 'because: ')
    is "$nodec" 0 "$mode: every up and down in scale.log carries its reason"
    "$lab" -s "$S" down >/dev/null 2>&1
    trap _cleanup EXIT
}
for m in $modes; do run_mode "$m"; done
