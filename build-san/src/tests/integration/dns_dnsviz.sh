#!/usr/bin/env bash
# cdn-dns checked by an outside tool: dnsviz (Debian package dnsviz) probes the zone on a free port
# and "grok -l warning" must report nothing; the negative answers carry the SOA. Skips when
# dnsviz is not installed (it is not in tests/deps.sh: apt-get install dnsviz).
. "$top_srcdir/tests/lib.sh"
plan 4
if ! command -v dnsviz >/dev/null 2>&1; then
    for i in 1 2 3 4; do skip "dnsviz not installed"; done
    exit 0
fi
P=$(free_port)
sed -e "s/^listen: .*/listen: 127.0.0.1:$P/" -e "s/^admin: .*/admin: ~/" -e 's|health: http://[^ ]*|health: ~|' \
    "$top_srcdir/dns/examples/bench.yaml" > "$T/dns.yaml"
start dns "$(bin cdn-dns)" -c "$T/dns.yaml"
wait_port 127.0.0.1 "$P" || bail "cdn-dns did not start"
timeout 120 dnsviz probe -A -x "shop.test+:ns1.shop.test=127.0.0.1:$P" -o "$T/probe.json" shop.test >"$T/probe.log" 2>&1
ok $? "dnsviz probe ran"
out=$(timeout 60 dnsviz grok -r "$T/probe.json" -l warning 2>&1)
is "$out" "" "dnsviz grok: no warnings or errors"
p=$(timeout 60 dnsviz print -r "$T/probe.json" 2>&1)
like "$p" "A: NXDOMAIN" "a random name is NXDOMAIN"
like "$p" "MX: NODATA" "NODATA at the apex, with the SOA"
