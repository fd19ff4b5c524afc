#!/usr/bin/env bash
# The whole lab, bounded: cdn-lab up (loopback; then namespaces when root), a known workload,
# report, fault, down. Checks: a broken topology names its line; `up` twice refuses, `down` twice
# is fine; a second pass over a small set of images is all hits; the edges' counters, the client
# logs and shop-lb's counter reconcile; nothing is left behind (processes, namespaces, state).
. "$top_srcdir/tests/lib.sh"
plan 77
lab=$(bin cdn-lab); load=$(bin cdn-load)
for p in cdn-edge cdn-dns shop-app shop-lb; do
    if [ ! -x "$(bin $p)" ]; then
        for i in $(seq 1 77); do skip "$p is not built"; done; exit 0
    fi
done
topo="$top_srcdir/lab/topologies/default.yaml"

# cdn-health takes -c FILE and -t like the other daemons (options win over the file).
hc=$(bin cdn-health)
printf 'url: http://127.0.0.1:9080/healthz\nsocket: %s/b.ctl\ninterval: 50ms\nrise: 2\n' "$T" >"$T/hc.yaml"
like "$("$hc" -c "$T/hc.yaml" -t 2>&1)" "configuration OK .*every 50 ms" "cdn-health -c FILE -t: OK"
like "$("$hc" -c "$T/hc.yaml" -i 20 -t 2>&1)" "every 20 ms" "cdn-health: an option wins over the file"
printf 'url: https://x/\nsocket: /x.ctl\n' >"$T/hc-bad.yaml"
out=$("$hc" -c "$T/hc-bad.yaml" -t 2>&1); rc=$?
like "$rc $out" "^1 .*hc-bad.yaml:1:6: url: expected http://IPV4:PORT/PATH" "cdn-health -t: a bad file names its line"

printf 'regions:\n  eu: {}\nedges:\n  - {name: a, region: mars}\n' >"$T/bad.yaml"
out=$("$lab" -s "$T/bad" up "$T/bad.yaml" 2>&1); rc=$?
like "$rc $out" "^1 .*bad.yaml:4:23: unknown region 'mars'" "broken topology: error with its line"

run_lab() {  # MODE
    local mode=$1 S="$T/st-$1"
    out=$("$lab" -s "$S" up --mode "$mode" "$topo" 2>&1); rc=$?
    is "$rc" 0 "$mode: up"
    [ $rc -eq 0 ] || { diag "$out"; "$lab" -s "$S" down >/dev/null 2>&1; return; }
    out2=$("$lab" -s "$S" up --mode "$mode" "$topo" 2>&1)
    like "$out2" "already up" "$mode: up twice refuses"
    "$lab" -s "$S" status >"$T/status.txt" 2>&1; ok $? "$mode: status says all healthy"
    eval "$("$lab" -s "$S" env)"
    # Round trips per region pair (TCP handshakes, 5 samples): every client region to every edge;
    # in namespaces mode within a loose band of the configured 2 x one-way delay (a range check on
    # the emulated link, not on our speed).
    "$lab" -s "$S" rtt -n 5 >"$T/rtt-$mode.txt" 2>&1; ok $? "$mode: rtt measured every pair"
    if [ "$mode" = netns ]; then
        bad=$(awk -F'\t' '$7 != 5 || $6 < 0.8 * $4 || $6 >= $4 + 50 {print}' "$S/rtt.tsv")
    else
        bad=$(awk -F'\t' '$7 != 5 || $4 != 0 {print}' "$S/rtt.tsv")
    fi
    is "$(wc -l <"$S/rtt.tsv") ${bad:-none}" "12 none" "$mode: 3 regions x 4 edges, median RTT near the configured one"
    [ "$mode" = netns ] && netns_prefix=$LAB_PREFIX
    # A known workload: 4 images, twice, from one eu client (closed loop, one user).
    ns=${LAB_NS_c_eu:-}; ex=(); [ -n "$ns" ] && ex=(ip netns exec "$ns")
    cat >"$T/trace.py" <<'PY'
import struct, sys
ids = [11, 12, 13, 14] * 2
sys.stdout.buffer.write(b"".join(struct.pack("<IQIq", i, x, 1000, -1) for i, x in enumerate(ids)))
PY
    python3 "$T/trace.py" >"$T/small.bin"
    "${ex[@]}" "$load" -r eu -D "$LAB_DNS" -S "$LAB_ADDR_c_eu" -w "trace:$T/small.bin" -n 2000 -c 1 -N 8 -d 20s \
        -l "$T/small-$mode.log" 2>"$T/small-$mode.err"
    is "$(wc -l <"$T/small-$mode.log")" 8 "$mode: 8 requests logged"
    is "$(head -4 "$T/small-$mode.log" | cut -f8 | sort -u)" "miss" "$mode: first pass all misses"
    is "$(tail -4 "$T/small-$mode.log" | cut -f8 | sort -u)" "hit/ram" "$mode: second pass all hits"
    is "$(cut -f4 "$T/small-$mode.log" | sort -u)" "eu1" "$mode: eu client sent to eu1 by cdn-dns"
    # The same 4 images from a us client: us1 misses, the shield (eu1's parent too) has them.
    nu=${LAB_NS_c_us:-}; exu=(); [ -n "$nu" ] && exu=(ip netns exec "$nu")
    "${exu[@]}" "$load" -r us -D "$LAB_DNS" -S "$LAB_ADDR_c_us" -w "trace:$T/small.bin" -n 2000 -c 1 -N 4 -d 20s \
        -l "$T/us-$mode.log" 2>>"$T/small-$mode.err"
    is "$(cut -f8 "$T/us-$mode.log" | sort -u)" "miss/parent" "$mode: us1's misses answered by the shield's cache"
    is "$(cut -f4 "$T/us-$mode.log" | sort -u)" "us1" "$mode: us client sent to us1, never to the shield"
    # Bounded shopper load from every region, then the report.
    # a fixed seed (load draws a fresh one per run otherwise): the same requests in every run
    "$lab" -s "$S" load -c 4 -d 3s -W 1s --seed 1 >"$T/load.txt" 2>&1; ok $? "$mode: load from every region"
    "$lab" -s "$S" report -o "$T/rep-$mode" >"$T/report-$mode.txt" 2>&1; ok $? "$mode: report"
    rep=$(cat "$T/report-$mode.txt")
    # Nothing lands in the current directory: without -o the report goes to STATE/report; -o makes
    # the folders it needs.
    mkdir -p "$T/cwd-$mode"
    (cd "$T/cwd-$mode" && "$lab" -s "$S" report >"$T/report2-$mode.txt" 2>&1); rc=$?
    is "$rc $(ls -A "$T/cwd-$mode" | wc -l) $(ls "$S/report/report.txt" "$S/report/index.html" 2>/dev/null | wc -l)" "0 0 2" \
        "$mode: report without -o writes STATE/report, nothing in the current directory"
    "$lab" -s "$S" report -o "$T/deep-$mode/er/rep" >/dev/null 2>&1; rc=$?
    is "$rc $(ls "$T/deep-$mode/er/rep/report.txt" 2>/dev/null | wc -l)" "0 1" "$mode: report -o DIR makes DIR's missing parents"
    like "$rep" "RTT per region pair" "$mode: report shows the measured RTT matrix"
    lvr=$(printf '%s\n' "$rep" | sed -n '/^live vs replay/,/^$/p')
    agree=$(printf '%s\n' "$lvr" | grep -c ' -> agree$'); rows=$(printf '%s\n' "$lvr" | grep -c ' -> ')
    [ "$rows" -gt 0 ] && [ "$agree" = "$rows" ]
    ok $? "$mode: live vs replay: every edge's hit ratio agrees with cdn-cachesim's replay within 1 point ($agree of $rows)"
    like "$rep" "requests: +edges counted [0-9]+ .*clients logged [0-9]+ answered.* -> agree" "$mode: requests reconcile (edges incl. collapsed vs logs)"
    like "$rep" "hits: +edges counted [0-9]+, clients logged [0-9]+ -> agree" "$mode: hits reconcile (edges vs logs)"
    like "$rep" "parent: +children sent [0-9]+, parents counted [0-9]+ -> agree" "$mode: child fetches reconcile with the shield's count"
    like "$rep" "origin: +edges fetched [0-9]+.*, shop-lb answered [0-9]+ -> agree" "$mode: origin fetches reconcile (edges vs shop-lb)"
    # the purge bus (issue 12): every edge (the shield too) acks; in namespaces each within its
    # one-way delay from cdn-dns's host (where Redis runs) + 50 ms
    out=$("$lab" -s "$S" purge --wait=5 url "https://img.shop.test/p/11"); rc=$?
    is "$rc $(echo "$out" | grep -c 'acked in')" "0 4" "$mode: cdn-lab purge --wait: all 4 edges ack"
    slow=$(echo "$out" | sed -n 's/^slowest: .*, \([0-9]*\) ms;.*/\1/p')
    ok $([ -n "$slow" ] && [ "$slow" -le $([ "$mode" = netns ] && echo 130 || echo 50) ]; echo $?) \
        "$mode: slowest ack ${slow:-?} ms (netns: the 80 ms link + 50 ms at most)"
    # a client can neither drain nor purge: in namespaces it cannot reach the admin (on the
    # management network, lab_mgmt.sh), on loopback it has no token; PURGE off, Redis needs a password
    is "$("${ex[@]}" curl -s -m 2 -o /dev/null -w '%{http_code}' -X POST "http://${LAB_MGMT_e_eu1:-$LAB_ADDR_e_eu1}:9080/drain")" \
        "$([ "$mode" = netns ] && echo 000 || echo 401)" "$mode: a client's POST /drain: $([ "$mode" = netns ] && echo unreachable || echo 401)"
    is "$("${ex[@]}" curl -s -m 2 -o /dev/null -w '%{http_code}' -X PURGE -H 'Host: img.shop.test' "http://$LAB_ADDR_e_eu1:8080/p/11")" 405 \
        "$mode: a client's PURGE: 405"
    like "$("${ex[@]}" redis-cli -h "${LAB_DNS%:*}" -p 6390 XADD cdn:purge '*' cmd 'hard all img.shop.test' 2>&1)" NOAUTH \
        "$mode: a client cannot write to the purge bus (NOAUTH)"
    if [ "$mode" = netns ]; then
        "$lab" -s "$S" fault kill eu1 >/dev/null; ok $? "$mode: fault kill eu1"
        for i in $(seq 1 50); do  # two failed probes at 1 s each
            a=$(ip netns exec "$LAB_NS_c_eu" kdig @"${LAB_DNS%:*}" -p "${LAB_DNS#*:}" +short img.shop.test | head -1)
            [ "$a" = "$LAB_ADDR_e_us1" ] && break; sleep 0.1
        done
        is "$a" "$LAB_ADDR_e_us1" "$mode: after eu1 dies, cdn-dns sends eu clients to the next nearest edge, us1"
    fi
    # fault and down say when they fail
    out=$("$lab" -s "$S" fault kill nosuchhost 2>&1); rc=$?
    like "$rc $out" "^1 .*no host 'nosuchhost'" "$mode: fault on a host that does not exist fails"
    out=$("$lab" -s "$S" fault kill app1 2>&1); rc=$?
    like "$rc $out" "^0 killed app1 " "$mode: fault kill app1"
    out=$("$lab" -s "$S" fault kill app1 2>&1); rc=$?
    like "$rc $out" "^1 .*app1 is not running" "$mode: fault kill app1 again fails (not running)"
    out=$("$lab" -s "$S" fault restart app1 2>&1); rc=$?
    like "$rc $out" "^0 restarted app1 \(pid [0-9]+\)$" "$mode: fault restart app1 (healthy again)"
    # a state directory that cannot be removed (a mount inside it): down stops everything but fails
    mkdir -p "$S/mnt"
    if mount -t tmpfs -o size=1m cdnlabtest "$S/mnt" 2>/dev/null; then
        out=$("$lab" -s "$S" down 2>&1); rc=$?
        umount "$S/mnt"
        like "$rc $out" "^1 .*0 processes still running, 0 namespaces not removed, .* NOT removed" \
            "$mode: down that cannot remove the state directory fails"
    else
        skip "mount not permitted (needs root): down's failure to remove the state directory"
    fi
    "$lab" -s "$S" down >/dev/null; ok $? "$mode: down"
    "$lab" -s "$S" down >/dev/null; ok $? "$mode: down twice"
    left=$(pgrep -f -- "$S" | wc -l)
    is "$left" 0 "$mode: no process left"
    [ -d "$S" ]; ok $((!$?)) "$mode: state dir removed"
}
run_lab loopback
if [ "$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1; then
    run_lab netns
    # only this lab's prefix: other labs (lab_anycast.sh under make -j2 check) may be up meanwhile
    is "$(ip netns list | grep -c "^${netns_prefix:-cdnlab-}-" || true)" 0 "netns: no namespace left"
else
    for i in $(seq 1 $((77 - _tap_n))); do skip "namespaces need root"; done
fi
