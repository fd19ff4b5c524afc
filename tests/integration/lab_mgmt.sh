#!/usr/bin/env bash
# The lab's control plane (issue 12), namespaces mode: the admin listeners of the edges, cdn-dns
# and shop-lb bind to the management network (198.19.0.0/24, a bridge in the ctl namespace), which
# no router knows. A client namespace can neither purge nor drain: the admin ports refuse on the
# public addresses and the management addresses are unreachable; PURGE on the public listener is
# 405. The ctl namespace drains and undrains with the token (cdn-dns, which checks the edges over
# the same network, moves eu's clients to us1 and back), and cdn-lab purge reaches every edge.
. "$top_srcdir/tests/lib.sh"
plan 20
lab=$(bin cdn-lab)
for p in cdn-edge cdn-dns shop-app shop-lb cdn-purge; do
    if [ ! -x "$(bin $p)" ]; then
        for i in $(seq 1 20); do skip "$p is not built"; done; exit 0
    fi
done
if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
    for i in $(seq 1 20); do skip "the management network needs namespaces (root)"; done; exit 0
fi
for c in curl kdig redis-server; do
    command -v $c >/dev/null 2>&1 || { for i in $(seq 1 20); do skip "$c is not installed"; done; exit 0; }
done
S="$T/st"
trap '"$lab" -s "$S" down --drop-logs >/dev/null 2>&1; _cleanup' EXIT
out=$("$lab" -s "$S" up --mode netns "$top_srcdir/lab/topologies/default.yaml" 2>&1); rc=$?
is "$rc" 0 "up (namespaces)"
[ $rc -eq 0 ] || { diag "$out"; for i in $(seq 2 20); do skip "the lab did not come up"; done; exit 0; }
eval "$("$lab" -s "$S" env)"
like "$out" "control +198.19.0.0/24" "up says where the admin listeners are"
cl=(ip netns exec "$LAB_NS_c_eu"); ctl=(ip netns exec "$LAB_NS_ctl")
tok=$(cat "$S/admin.key")
code() {  # code NS-CMD... -- CURL-ARGS: curl's exit status and HTTP code, "7 000" when refused
    local ns=() a
    while [ "$1" != -- ]; do ns+=("$1"); shift; done; shift
    a=$("${ns[@]}" curl -s -m 2 -o /dev/null -w '%{http_code}' "$@"); echo "$? $a"
}

# A client: the admin ports refuse on the public addresses ...
like "$(code "${cl[@]}" -- -X POST "http://$LAB_ADDR_e_eu1:9080/drain")" "^7 000$" \
    "client: POST /drain on eu1's public address: connection refused"
like "$(code "${cl[@]}" -- -X POST -H "Authorization: Bearer $tok" "http://$LAB_ADDR_e_eu1:9080/purge?url=https://img.shop.test/p/1")" \
    "^7 000$" "client: /purge on eu1's public address, even with the token: connection refused"
like "$(code "${cl[@]}" -- "http://$LAB_ADDR_lb:8001/metrics")" "^7 000$" "client: shop-lb's admin port refuses"
like "$(code "${cl[@]}" -- "http://${LAB_DNS%:*}:5380/metrics")" "^7 000$" "client: cdn-dns's admin port refuses"
# ... and the management addresses are unreachable (no route past the client's router)
like "$(code "${cl[@]}" -- -X POST -H "Authorization: Bearer $tok" "http://$LAB_MGMT_e_eu1:9080/drain")" "^(7|28) 000$" \
    "client: POST /drain on eu1's management address: unreachable"
like "$(code "${cl[@]}" -- "http://$LAB_MGMT_lb:8001/metrics")" "^(7|28) 000$" "client: shop-lb's management address: unreachable"
like "$(ip netns exec "$LAB_NS_r_eu" ip route get "$LAB_MGMT_e_eu1" 2>&1)" "Network is unreachable" \
    "eu's router has no route to the management network"
is "$(code "${cl[@]}" -- -X PURGE -H 'Host: img.shop.test' "http://$LAB_ADDR_e_eu1:8080/p/11")" "0 405" \
    "client: PURGE on the public listener: 405"
is "$(code "${cl[@]}" -- -H 'Host: img.shop.test' "http://$LAB_ADDR_e_eu1:8080/p/11")" "0 200" \
    "client: the public listener serves"

# The control namespace: every admin, with the token
is "$(code "${ctl[@]}" -- -X POST "http://$LAB_MGMT_e_eu1:9080/drain")" "0 401" "ctl: POST /drain without the token: 401"
is "$(code "${ctl[@]}" -- "http://$LAB_MGMT_lb:8001/metrics") $(code "${ctl[@]}" -- "http://$LAB_MGMT_dns:5380/metrics")" \
    "0 200 0 200" "ctl: shop-lb's and cdn-dns's admins answer"
img() { "${cl[@]}" kdig @"${LAB_DNS%:*}" -p "${LAB_DNS#*:}" +short img.shop.test | head -1; }
is "$(img)" "$LAB_ADDR_e_eu1" "eu's clients get eu1 (cdn-dns checks the edges over the management network)"
is "$(code "${ctl[@]}" -- -X POST -H "Authorization: Bearer $tok" "http://$LAB_MGMT_e_eu1:9080/drain")" "0 200" \
    "ctl: POST /drain with the token: 200"
for i in $(seq 1 60); do a=$(img); [ "$a" = "$LAB_ADDR_e_us1" ] && break; sleep 0.1; done
is "$a" "$LAB_ADDR_e_us1" "eu1 drained: cdn-dns sends eu's clients to us1"
is "$(code "${ctl[@]}" -- -X DELETE -H "Authorization: Bearer $tok" "http://$LAB_MGMT_e_eu1:9080/drain")" "0 200" \
    "ctl: DELETE /drain: 200"
for i in $(seq 1 60); do a=$(img); [ "$a" = "$LAB_ADDR_e_eu1" ] && break; sleep 0.1; done
is "$a" "$LAB_ADDR_e_eu1" "eu1 undrained: back on eu1"
# cdn-purge (the bus in cdn-dns's namespace): every edge acks
out=$("$lab" -s "$S" purge --wait=5 url "https://img.shop.test/p/11"); rc=$?
is "$rc $(echo "$out" | grep -c 'acked in')" "0 4" "cdn-lab purge --wait: all 4 edges ack"
"$lab" -s "$S" status >"$T/status.txt" 2>&1; ok $? "status: every node healthy (its health checks use the management addresses)"
