#!/usr/bin/env bash
# Anycast in the lab (namespaces, BIRD 2, bfd profile): two regions with one edge each, both
# holding 198.19.255.1. Checks: every region's client reaches its own edge through the anycast
# address (Cache-Status names the edge); cdn-dns answers the anycast twin name with it; a health
# withdraw (service-down: the edge drains, /healthz 503) moves eu's clients to us1 while eu1's BGP
# session stays up and eu1 still serves, so no request fails on the way, and back after recovery; a BIRD crash and a silent blackhole (BPF drop, only BFD notices) fail
# over and come back too; `down` leaves no process and no namespace.
# Needs root, `ip netns` and bird (Debian bird2); otherwise it skips with the reason.
. "$top_srcdir/tests/lib.sh"
N=34
plan $N
lab=$(bin cdn-lab)
skip_all() { for i in $(seq 1 $N); do skip "$1"; done; exit 0; }
[ "$(id -u)" = 0 ] || skip_all "anycast needs root (network namespaces)"
ip netns list >/dev/null 2>&1 || skip_all "ip netns does not work here"
command -v bird >/dev/null 2>&1 || [ -x /usr/sbin/bird ] || skip_all "bird is not installed (apt-get install bird2)"
for p in cdn-edge cdn-dns shop-app shop-lb cdn-health cdn-wanrelay; do
    [ -x "$(bin $p)" ] || skip_all "$p is not built"
done

cat >"$T/any.yaml" <<'EOF'
name: anytest
hostnames: [img, www]
regions:
  eu: {clients: 1, delay: {us: 5ms}}
  us: {clients: 1}
edges:
  - {name: eu1, region: eu, ram: 16MiB, disk: 32MiB}
  - {name: us1, region: us, ram: 16MiB, disk: 32MiB}
dns: {region: eu, ttl: 5s}
origin: {region: us, apps: 1, products: 100}
anycast:
  profile: bfd
  health: {interval: 100ms, timeout: 200ms, rise: 2, fall: 2}
  routing: {img: both, www: anycast}
EOF
S="$T/st"  # short: BIRD's control sockets live in it
out=$("$lab" -s "$S" up --mode netns "$T/any.yaml" 2>&1); rc=$?
is "$rc" 0 "up (namespaces, BIRD on 2 routers and 2 edges, bfd profile)"
if [ $rc -ne 0 ]; then diag "$out"; "$lab" -s "$S" down >/dev/null 2>&1; skip_all "the lab did not come up"; fi
eval "$("$lab" -s "$S" env)"
st=$("$lab" -s "$S" status 2>&1)
like "$st" "bird r-eu +BGP 2/2 established" "r-eu: sessions to its edge and to r-us established"
like "$st" "bird e-eu1 +BGP 1/1 established, anycast announced" "e-eu1 announces the anycast address"
like "$(cat "$S/b/r-eu.conf")" "bfd on;" "generated router config has the bfd profile"

# who: which edge answers the anycast address for REGION's client ("ERR" on failure)
who() {
    local ns=$1 h
    h=$(ip netns exec "$ns" curl -s -o /dev/null -D - -m 1 http://198.19.255.1:8080/healthz-probe 2>/dev/null |
        tr -d '\r' | sed -n 's/^[Cc]ache-[Ss]tatus: cdn-edge-\([a-z0-9]*\).*/\1/p' | head -1)
    echo "${h:-ERR}"
}
served_by() { [ "$(who "$1")" = "$2" ]; }  # for wait_for
is "$(who "$LAB_NS_c_eu")" eu1 "eu client reaches eu1 through the anycast address"
is "$(who "$LAB_NS_c_us")" us1 "us client reaches us1 through the anycast address"
a=$(ip netns exec "$LAB_NS_c_eu" kdig @"${LAB_DNS%:*}" -p "${LAB_DNS#*:}" +short img-any.shop.test)
is "$a" 198.19.255.1 "cdn-dns answers the anycast twin (routing both) with the anycast address"
a=$(ip netns exec "$LAB_NS_c_eu" kdig @"${LAB_DNS%:*}" -p "${LAB_DNS#*:}" +short img.shop.test | head -1)
is "$a" "$LAB_ADDR_e_eu1" "cdn-dns answers img (routing both) with the nearest edge's own address"

# poll_eu FILE: eu's client asks the anycast address every 50 ms, a new connection each time, one
# line per answer (the edge, or ERR), until it has seen us1 5 times (at most 200 polls)
poll_eu() {
    local i e seen=0
    for i in $(seq 1 200); do
        e=$(who "$LAB_NS_c_eu"); echo "$e"
        [ "$e" = us1 ] && seen=$((seen + 1)) && [ $seen -ge 5 ] && break
        sleep 0.05
    done >"$1"
}
drain_state() { ip netns exec "$LAB_NS_e_eu1" curl -s -m 1 "http://$LAB_MGMT_e_eu1:9080/drain"; }  # the admin: management network

# fault EDGE-FAULT: inject, expect eu's client on us1, recover, expect it back on eu1
fault_cycle() {
    local f=$1 pp=""
    if [ "$f" = service-down ]; then poll_eu "$T/polls" & pp=$!; sleep 0.5; fi
    "$lab" -s "$S" fault "$f" eu1 >/dev/null; ok $? "fault $f eu1"
    wait_for 15 served_by "$LAB_NS_c_eu" us1; ok $? "$f: eu client fails over to us1"
    if [ "$f" = service-down ]; then
        like "$("$lab" -s "$S" status 2>&1)" "bird e-eu1 +BGP 1/1 established, anycast WITHDRAWN" \
            "$f: the route is withdrawn, the BGP session stays up"
        is "$(drain_state)" draining "$f: eu1 is draining, not dead (its admin answers)"
        wait "$pp"
        like "$(tr '\n' ' ' <"$T/polls")" "^(eu1 )+(us1 ){5}$" "$f: polls went eu1 then us1"
        is "$(grep -c ERR "$T/polls")" 0 "$f: no request failed during the failover ($(wc -l <"$T/polls") polls)"
    fi
    "$lab" -s "$S" fault recover eu1 >/dev/null; ok $? "recover eu1 after $f"
    wait_for 20 served_by "$LAB_NS_c_eu" eu1; ok $? "$f: eu client back on eu1"
    [ "$f" = service-down ] && is "$(drain_state)" serving "$f: recover undrained eu1"
}
fault_cycle service-down
fault_cycle bird-crash
fault_cycle blackhole
fault_cycle kill  # the crash: cdn-edge killed, the health withdraw follows; recover restarts it
is "$(who "$LAB_NS_c_us")" us1 "us client stayed on us1 throughout"
like "$(cat "$S/faults.tsv")" "[0-9.]+	blackhole	e-eu1" "faults are recorded with their time"

"$lab" -s "$S" down >/dev/null; ok $? "down"
left=$(pgrep -f -- "$S" | wc -l)
is "$left" 0 "no process left (bird, cdn-health, daemons)"
is "$(ip netns list | grep -c "^${LAB_PREFIX}-" || true)" 0 "no namespace left"
