#!/usr/bin/env bash
# cdn-dns checked by zonemaster-cli (Debian package zonemaster-cli). Zonemaster only speaks to
# port 53, so the test makes a network namespace with its own loopback: knotd serves a fake root
# (127.0.0.2) that delegates shop.test to two cdn-dns addresses (127.0.0.3, 127.0.0.4). The only
# findings allowed are the ones any lab on 127/8 gets (addresses that are not public): ADDRESS01 (loopback)
# and ADDRESS02 (no PTR). Skips without root, ip netns, knotd or zonemaster-cli.
. "$top_srcdir/tests/lib.sh"
plan 4
why=""
[ "$(id -u)" = 0 ] || why="not root"
for c in ip knotd zonemaster-cli; do command -v $c >/dev/null 2>&1 || why="${why:-$c not installed}"; done
NSN=cdnszm$$
if [ -z "$why" ] && ! ip netns add "$NSN" 2>/dev/null; then why="cannot create a network namespace"; fi
if [ -n "$why" ]; then for i in 1 2 3 4; do skip "$why"; done; exit 0; fi
trap 'rc=$?; ip netns del "$NSN" 2>/dev/null; (exit $rc); _cleanup' EXIT
ip netns exec "$NSN" ip link set lo up

cat > "$T/root.zone" <<'Z'
$TTL 3600
. SOA a.root.test. hm.root.test. 1 14400 3600 604800 300
. NS a.root.test.
a.root.test. A 127.0.0.2
shop.test. NS ns1.shop.test.
shop.test. NS ns2.shop.test.
ns1.shop.test. A 127.0.0.3
ns2.shop.test. A 127.0.0.4
Z
mkdir -p "$T/kdb"
cat > "$T/knot.conf" <<K
server:
    listen: 127.0.0.2@53
    rundir: $T
database:
    storage: $T/kdb
template:
  - id: default
    storage: $T
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: .
    file: root.zone
K
printf '. 3600 IN NS a.root.test.\na.root.test. 3600 IN A 127.0.0.2\n' > "$T/hints"
cat > "$T/dns.yaml" <<'Y'
listen: [127.0.0.3:53, 127.0.0.4:53]
regions: {eu: {subnets: [127.0.1.0/24]}}
edges: [{name: e1, region: eu, addresses: [127.0.20.1]}]
zones:
  - name: shop.test
    soa: "ns1.shop.test. hostmaster.shop.test. 1 14400 3600 604800 300"
    records: ["@ NS ns1", "@ NS ns2", "ns1 A 127.0.0.3", "ns2 A 127.0.0.4", "www 300 A 127.0.10.1",
              "@ MX 10 mail", "mail A 127.0.0.9"]
    cdn: [{name: img, ttl: 30}]
Y
start knot ip netns exec "$NSN" knotd -c "$T/knot.conf"
start dns ip netns exec "$NSN" "$(bin cdn-dns)" -c "$T/dns.yaml"
up() { ip netns exec "$NSN" kdig @127.0.0.3 +time=1 +retry=0 +short www.shop.test | grep -q 127.0.10.1 &&
       ip netns exec "$NSN" kdig @127.0.0.2 +time=1 +retry=0 +norec shop.test NS | grep -q 'NOERROR'; }
wait_for 10 up || bail "servers did not start in the namespace"

ip netns exec "$NSN" timeout 120 zonemaster-cli --hints "$T/hints" --no-ipv6 --show-testcase --level NOTICE \
    --raw shop.test > "$T/zm.out" 2>&1
ok $? "zonemaster-cli ran"
found=$(awk '$2 == "ERROR" || $2 == "WARNING" || $2 == "CRITICAL" {print $3}' "$T/zm.out" | sort -u | tr '\n' ' ')
is "$found" "ADDRESS01 ADDRESS02 " "only the loopback findings (ADDRESS01/02) at WARNING or above"
is "$(awk '$3 ~ /^NAMESERVER/' "$T/zm.out")" "" "no NAMESERVER test case finding (EDNS, BADVERS, case, AXFR, recursion, ...)"
like "$(cat "$T/zm.out")" "ADDRESS01" "the run reached the address checks"
