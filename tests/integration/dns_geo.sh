#!/usr/bin/env bash
# cdn-dns geo answers and health: region by source address and by ECS, failover when an edge's
# health endpoint dies and return after it comes back, answers while every edge is down, SIGHUP
# reload without lost queries (and a bad reload keeps the old config), 200 reloads under load that
# free every replaced view (RSS flat over the last 100), RRL slips, /metrics, SIGTERM exit 0.
. "$top_srcdir/tests/lib.sh"
plan 31

DNS=$(bin cdn-dns)
P=$(free_port); A=$(free_port); H1=$(free_port); H2=$(free_port)
mkdir -p "$T/www"; echo ok > "$T/www/healthz"
start h1 python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$H1"
start h2 python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$H2"
wait_port 127.0.0.1 "$H1" && wait_port 127.0.0.1 "$H2" || bail "health endpoints did not start"

conf() {  # conf WWW-ADDRESS RRL-RATE
cat <<EOF
listen: 127.0.0.1:$P
admin: 127.0.0.1:$A
log_level: debug
rrl: {rate: $2, burst: $2, slip: 2}
health: {interval: 200ms, timeout: 500ms, rise: 2, fall: 2, doubt: 3s}
regions:
  eu: {subnets: [127.0.1.0/24, 10.1.0.0/16], distance: {us: 100}}
  us: {subnets: [127.0.2.0/24, 10.2.0.0/16], distance: {eu: 100}}
default_region: eu
edges:
  - {name: eu1, region: eu, addresses: [127.0.20.1], health: "http://127.0.0.1:$H1/healthz"}
  - {name: us1, region: us, addresses: [127.0.20.2], health: "http://127.0.0.1:$H2/healthz"}
zones:
  - name: shop.test
    soa: "ns1 hostmaster 1 3600 600 86400 30"
    records: ["@ NS ns1", "ns1 A 127.0.0.1", "www 300 A $1"]
    cdn: [{name: img, ttl: 30, doubt_ttl: 5, answers: 1}]
EOF
}
conf 127.0.10.1 0 > "$T/dns.yaml"
start dns "$DNS" -c "$T/dns.yaml"
wait_port 127.0.0.1 "$P" || bail "cdn-dns did not start"

K="kdig @127.0.0.1 -p $P +time=2 +retry=0"
img() { $K "$@" +short img.shop.test A | head -n1; }
ttl() { $K "$@" +noall +answer img.shop.test A | awk '/IN/{print $2; exit}'; }

# --- region by source address and by ECS
is "$(img -b 127.0.1.5)" 127.0.20.1 "source 127.0.1.5 (eu) -> eu edge"
is "$(img -b 127.0.2.5)" 127.0.20.2 "source 127.0.2.5 (us) -> us edge"
is "$(img -b 127.0.7.5)" 127.0.20.1 "unknown source -> default region eu"
is "$(img +subnet=127.0.2.0/24)" 127.0.20.2 "ECS 127.0.2.0/24 -> us edge"
is "$(img -b 127.0.2.5 +subnet=10.1.0.0/16)" 127.0.20.1 "ECS overrides the source address"
is "$(img +subnet=10.2.0.0/16)" 127.0.20.2 "ECS 10.2.0.0/16 -> us edge"

# both edges probed healthy: after the doubt window the full TTL comes back
wait_for 5 sh -c "[ \"\$($K +noall +answer img.shop.test A | awk '/IN/{print \$2; exit}')\" = 30 ]"
is "$(ttl -b 127.0.1.5)" 30 "healthy and settled: full TTL"

# --- kill eu's health endpoint: eu clients move to us within interval x fall (+ slack)
stop h1
wait_for 5 sh -c "[ \"\$($K -b 127.0.1.5 +short img.shop.test A)\" = 127.0.20.2 ]"
is "$(img -b 127.0.1.5)" 127.0.20.2 "eu edge down -> eu clients get the us edge"
is "$(ttl -b 127.0.1.5)" 5 "TTL lowered right after the change"
m=$(curl -s "http://127.0.0.1:$A/metrics")
like "$m" '^cdn_dns_edge_up\{edge="eu1"\} 0$' "/metrics: eu1 down"
like "$m" '^cdn_dns_edge_up\{edge="us1"\} 1$' "/metrics: us1 up"
like "$m" '^cdn_dns_region_answers_total\{region="eu"\} [1-9][0-9]*$' "/metrics: answers per region"
like "$m" 'cdn_dns_edge_answers_total\{edge="us1"\} [1-9]' "/metrics: answers per edge"
like "$m" 'cdn_dns_responses_total\{rcode="NOERROR"\} [1-9]' "/metrics: responses per rcode"
is "$(curl -s "http://127.0.0.1:$A/healthz")" ok "/healthz"

# --- bring it back: eu clients return after rise
start h1 python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$H1"
wait_for 8 sh -c "[ \"\$($K -b 127.0.1.5 +short img.shop.test A)\" = 127.0.20.1 ]"
is "$(img -b 127.0.1.5)" 127.0.20.1 "eu edge back -> eu clients return"

# --- every edge down: still an answer (all edges, nearest first), low TTL
stop h1; stop h2
wait_for 5 sh -c "[ \$($K -b 127.0.1.5 +short img.shop.test A | wc -l) = 2 ]"
out=$($K -b 127.0.2.5 img.shop.test A)
like "$out" "status: NOERROR" "all edges down: still NOERROR"
is "$($K -b 127.0.2.5 +short img.shop.test A | tr '\n' ' ')" "127.0.20.2 127.0.20.1 " "all down: every edge, nearest first"
like "$(curl -s "http://127.0.0.1:$A/metrics")" 'cdn_dns_fallback_total [1-9]' "/metrics: fallback answers counted"

# --- SIGHUP reload while queries flow: nothing lost, the answer changes
python3 - "$P" > "$T/load.out" <<'PY' &
import socket, struct, sys, time
port = int(sys.argv[1]); s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
q = lambda i: struct.pack(">HHHHHH", i, 0, 1, 0, 0, 0) + b"\3www\4shop\4test\0\0\1\0\1"
lost = 0; seen = set(); t0 = time.time(); n = 0
while time.time() - t0 < 3 and n < 30000:
    i = n & 0xFFFF; s.sendto(q(i), ("127.0.0.1", port)); n += 1
    try:
        r = s.recv(512)
        seen.add(".".join(str(b) for b in r[-4:]))
    except socket.timeout:
        lost += 1
    time.sleep(0.0002)  # paced: the reload lands in the middle of the run
print(n, lost, " ".join(sorted(seen)))
PY
loadpid=$!
sleep 1
conf 127.0.10.2 0 > "$T/dns.yaml"
stop_hup() { kill -HUP "$pid_dns"; }
stop_hup
wait $loadpid
read -r sent lost seen < "$T/load.out"
is "$lost" 0 "no query lost across the reload ($sent sent)"
like "$seen" "127\.0\.10\.1 127\.0\.10\.2" "answers moved from the old to the new address"
is "$($K +short www.shop.test A)" 127.0.10.2 "reload applied"

# --- 200 reloads while queries flow: every replaced view is freed once the worker threads have
# moved on (cdn_dns_views_retired back to 0) and the RSS stays flat (a view takes at least 16 KB:
# 100 views kept would add 1.6 MB)
metric() { curl -s "http://127.0.0.1:$A/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
reloads() { grep -c 'reloaded' "$T/dns.log"; }
hups() {  # hups N: N reloads, each waited for (signals sent together would merge)
    local i j r
    for i in $(seq 1 "$1"); do
        r=$(reloads); kill -HUP "$pid_dns"
        for j in $(seq 1 300); do [ "$(reloads)" -gt "$r" ] && break; sleep 0.01; done
        [ "$(reloads)" -gt "$r" ] || return 1
    done
}
rss() { awk '/^VmRSS:/{print $2}' "/proc/$pid_dns/status"; }
python3 - "$P" "$T/load.stop" <<'PY' &
import os, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.05)
q = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\3www\4shop\4test\0\0\1\0\1"
while not os.path.exists(sys.argv[2]):
    for _ in range(20): s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
    try:
        while True: s.recv(512)
    except socket.timeout:
        pass
PY
loadpid=$!
hups 100; r0=$(rss); n0=$(reloads)
hups 100; ok $? "100 more reloads done ($(( $(reloads) - n0 )))"
retired0() { [ "$(metric cdn_dns_views_retired)" = 0 ]; }
wait_for 3 retired0
is "$(metric cdn_dns_views_retired)" 0 "every replaced view freed while queries go on (cdn_dns_views_retired 0)"
r1=$(rss)
touch "$T/load.stop"; wait $loadpid
if sanitized "$DNS"; then skip "RSS under ASan counts its quarantine of freed memory ($r0 kB -> $r1 kB)"
else ok $(( r1 - r0 < 1024 ? 0 : 1 )) "RSS flat over 100 reloads ($r0 kB -> $r1 kB)"; fi

# a bad config: the old one stays and the error is logged
printf 'listen: 127.0.0.1:%s\nzones: [{name: shop.test, records: ["www A nope"]}]\n' "$P" > "$T/dns.yaml"
kill -HUP "$pid_dns"
wait_for 3 grep -q "reload failed" "$T/dns.log"
like "$(cat "$T/dns.log")" "reload failed.*dns\.yaml:2:" "bad reload logged with file:line"
is "$($K +short www.shop.test A)" 127.0.10.2 "bad reload: still serving the old config"

# --- RRL: 5/s per /24, slip 2: a burst of 40 from one /24 gets some answers, TC slips, drops
conf 127.0.10.2 5 > "$T/dns.yaml"
hups 1
out=$(python3 - "$P" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.9.9", 0)); s.settimeout(0.3)
q = struct.pack(">HHHHHH", 7, 0, 1, 0, 0, 0) + b"\3www\4shop\4test\0\0\1\0\1"
for _ in range(40): s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
full = tc = 0
try:
    while True:
        r = s.recv(512)
        if r[2] & 2: tc += 1
        else: full += 1
except socket.timeout:
    pass
print(full, tc, 40 - full - tc)
PY
)
read -r full tc dropped <<< "$out"
ok $(( full >= 5 && full <= 8 ? 0 : 1 )) "RRL: the burst is answered ($full full answers)"
ok $(( tc >= 10 && tc <= 20 ? 0 : 1 )) "RRL: every 2nd limited answer slips with TC=1 ($tc)"
ok $(( dropped >= 10 ? 0 : 1 )) "RRL: the rest are dropped ($dropped)"

stop dns; rc=$?
is "$rc" 0 "SIGTERM: exit 0"
