#!/usr/bin/env bash
# tests/bench/dns.sh - cdn-dns versus knot (static zone, the speed ceiling) and gdnsd (geoip with a
# nets map, health-checked: the geo DNS to beat) on loopback, with dnsperf. Same data everywhere
# (dns/examples/bench.yaml). Prints queries/s per row and the ratios, then the failover lag (time
# from an edge's death to the first answer without it, probe interval 2 s, fall 2, for both geo
# servers). Installs its peers itself (apt-get install knot gdnsd dnsperf). First it checks with dig
# that every server gives the same answer to each measured query. Each cell is measured ROUNDS times
# (peers alternated) and the median is shown. Bounded: DUR seconds per cell (default 5), about 7
# minutes in all with the defaults.
#   tests/bench/dns.sh                 (or: make bench BENCH=dns)
#   DUR=10 ROUNDS=5 LAGS=5 tests/bench/dns.sh
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
DUR=${DUR:-5}
ROUNDS=${ROUNDS:-3}
LAGS=${LAGS:-3}
DNS=$top_builddir/dns/cdn-dns
[ -x "$DNS" ] || { echo "build dns/cdn-dns first"; exit 1; }

need=""
command -v dig >/dev/null 2>&1 || need="bind9-dnsutils"
for p in knot gdnsd dnsperf python3; do command -v "${p/knot/knotd}" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
    [ "$(id -u)" = 0 ] || { echo "need:$need (run as root to install them)"; exit 1; }
    echo "installing:$need"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null || exit 1
fi
# the Debian packages start their own services; they are not used (ours run on other ports)
for s in knot gdnsd; do systemctl stop "$s" >/dev/null 2>&1 || true; done

W=$(mktemp -d /tmp/dnsbench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
bg() { local log=$1; shift; setsid "$@" >"$W/$log.log" 2>&1 </dev/null & pids+=($!); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_udp() {  # wait_udp PORT: until the server answers a query
    for _ in $(seq 1 100); do
        kdig @127.0.0.1 -p "$1" +time=1 +retry=0 +short www.shop.test A 2>/dev/null | grep -q 127.0.10.1 && return 0
        sleep 0.1
    done
    echo "server on port $1 did not come up"; for f in "$W"/*.log; do echo "== $f"; tail -5 "$f"; done; exit 1
}

# --- health endpoints of the two edges (the address gdnsd and cdn-dns both probe)
mkdir -p "$W/www"; echo ok > "$W/www/healthz"; echo ok > "$W/www/health"
start_edge() { bg "edge$1" python3 -m http.server --bind "127.0.20.$1" --directory "$W/www" 28053; eval "edge$1=${pids[-1]}"; }
start_edge 1; start_edge 2

# --- the same zone data for everyone
TXT=$(awk -F"'" '/big TXT/{print $2}' "$top_srcdir/dns/examples/bench.yaml")
zonefile() {  # zonefile IMG-LINE
    echo '$TTL 3600'
    echo '@ SOA ns1.shop.test. hostmaster.shop.test. 1 3600 600 86400 30'
    echo '@ NS ns1'
    echo 'ns1 A 127.0.0.1'
    echo 'www 300 A 127.0.10.1'
    echo "$TXT"
    echo "$1"
}

PC=$(free_port); PK=$(free_port); PG=$(free_port)

# cdn-dns: the shipped bench.yaml on another port
cdnconf() {  # cdnconf WORKERS
    sed -e "s/^listen: .*/listen: 127.0.0.1:$PC/" -e "s/^admin: .*/admin: 127.0.0.1:$(free_port)/" \
        -e "s/^workers: .*/workers: $1/" "$top_srcdir/dns/examples/bench.yaml" > "$W/cdn.yaml"
}

# knot: static zone (img is a plain A record)
knotconf() {  # knotconf WORKERS
    mkdir -p "$W/knot/db"
    zonefile 'img 30 A 127.0.20.1' > "$W/knot/shop.test.zone"
    cat > "$W/knot/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$PK
    rundir: $W/knot
    udp-workers: $1
    tcp-workers: 1
    background-workers: 1
    edns-client-subnet: on
log:
  - target: stderr
    any: warning
database:
    storage: $W/knot/db
template:
  - id: default
    storage: $W/knot
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: shop.test
    file: shop.test.zone
EOF
}

# gdnsd: geoip plugin with a nets map, http_status health checks (interval 2 s, 2 to change)
gdnsdconf() {  # gdnsdconf WORKERS
    mkdir -p "$W/gdnsd/zones" "$W/gdnsd/run" "$W/gdnsd/state"
    zonefile 'img 30 DYNA geoip!img' > "$W/gdnsd/zones/shop.test"
    cat > "$W/gdnsd/config" <<EOF
options => {
  listen => [ 127.0.0.1:$PG ]
  run_dir => $W/gdnsd/run
  state_dir => $W/gdnsd/state
  udp_threads => $1
  tcp_threads => 1
  edns_client_subnet => true
}
service_types => {
  edge_http => { plugin => http_status, port => 28053, url_path => /healthz,
                 interval => 2, timeout => 1, up_thresh => 2, ok_thresh => 2, down_thresh => 2 }
}
plugins => {
  geoip => {
    maps => {
      regions => {
        datacenters => [eu, us],
        nets => { 127.0.1.0/24 => [eu, us], 10.1.0.0/16 => [eu, us],
                  127.0.2.0/24 => [us, eu], 10.2.0.0/16 => [us, eu] }
      }
    }
    resources => {
      img => { map => regions, service_types => edge_http,
               dcmap => { eu => 127.0.20.1, us => 127.0.20.2 } }
    }
  }
}
EOF
}

# With one worker each, servers run on CPU 0 and dnsperf on CPU 1 (less noise); with two, no pinning.
PIN_SRV=""; PIN_CLI=""
start_all() {  # start_all WORKERS
    cdnconf "$1"; knotconf "$1"; gdnsdconf "$1"
    if [ "$1" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
        PIN_SRV="taskset -c 0"; PIN_CLI="taskset -c 1"
    else
        PIN_SRV=""; PIN_CLI=""
    fi
    bg cdn $PIN_SRV "$DNS" -c "$W/cdn.yaml"; CDN_PID=${pids[-1]}
    bg knot $PIN_SRV knotd -c "$W/knot/knot.conf"; KNOT_PID=${pids[-1]}
    bg gdnsd $PIN_SRV gdnsd -c "$W/gdnsd" start; GDNSD_PID=${pids[-1]}
    wait_udp "$PC"; wait_udp "$PK"; wait_udp "$PG"
}
stop_all() {
    for p in "$CDN_PID" "$KNOT_PID" "$GDNSD_PID"; do kill -TERM -- "-$p" 2>/dev/null; done
    for p in "$CDN_PID" "$KNOT_PID" "$GDNSD_PID"; do for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
}

echo "img.shop.test A" > "$W/q_cdn"
echo "www.shop.test A" > "$W/q_static"
ECS_US="8:000118007f0002"   # ECS 127.0.2.0/24: family 1, source 24, scope 0, 127.0.2

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# cell PID PORT QFILE CLIENTS [dnsperf args...] -> "QPS KQ_PER_CPU_S": queries/s seen by dnsperf, and
# thousands of queries per CPU-second of the server (dnsperf shares the cores and is often the
# limit, so the second number says how much work each server spends per query)
cell() {  # cell PID PORT QFILE SOCKETS THREADS [dnsperf args]
    local pid=$1 port=$2 q=$3 c=$4 t=$5 t0 t1 out; shift 5
    t0=$(cpu_ticks "$pid")
    out=$($PIN_CLI dnsperf -s 127.0.0.1 -p "$port" -d "$q" -l "$DUR" -c "$c" -T "$t" -q 500 -t 2 "$@" 2>&1)
    t1=$(cpu_ticks "$pid")
    python3 - "$out" "$t0" "$t1" "$(getconf CLK_TCK)" <<'PY'
import re, sys
out, t0, t1, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
m = re.search(r"Queries per second:\s+([0-9.]+)", out); c = re.search(r"Queries completed:\s+([0-9]+)", out)
qps = float(m.group(1)) if m else 0.0; done = int(c.group(1)) if c else 0
cpu = max(1, t1 - t0) / hz
print("%d %.0f" % (qps, done / cpu / 1000))
PY
}
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2f' % (a/b if b else 0))" "$1" "$2"; }

median() { python3 -c 'import sys, statistics; print("%d" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# answer PORT NAME ARGS...: the answer dnsperf's query gets (dig from 127.0.0.1 like dnsperf, no
# cookie; EDNS only with ECS, as dnsperf sends it)
answer() { local port=$1; shift; dig +norec +nocookie +time=1 +tries=1 @127.0.0.1 -p "$port" "$@" 2>/dev/null |
    awk '/^;; ->>HEADER/{st=$6; sub(",", "", st)} /^[^;].*IN/{printf "%s %s %s %s; ", $1, $2, $4, $5}
         /CLIENT-SUBNET/{printf "ecs %s; ", $3} /MSG SIZE/{sz=$NF}
         END{printf "(%s, %s bytes)", st, sz}'; }
check_answers() {  # every server, every row: the same records (knot is static: img is always the eu edge)
    local row q extra c g k bad=0
    echo "-- answers (dig from 127.0.0.1, as dnsperf asks)"
    for row in "CDN name|img.shop.test|+noedns" "static name|www.shop.test|+noedns" "CDN name + ECS|img.shop.test|+subnet=127.0.2.0/24"; do
        IFS='|' read -r name q extra <<< "$row"
        c=$(answer "$PC" $q A $extra); g=$(answer "$PG" $q A $extra); k=$(answer "$PK" $q A $extra)
        printf '%-16s cdn-dns: %s\n%-16s gdnsd:   %s\n%-16s knot:    %s\n' "$name" "$c" "" "$g" "" "$k"
        # the same records, ECS scope, rcode and size; TTLs may differ (gdnsd halves a DYNA record's TTL
        # while its monitors settle)
        [ "$(echo "$c" | sed 's/\. [0-9]* A /. A /g')" = "$(echo "$g" | sed 's/\. [0-9]* A /. A /g')" ] ||
            { echo "   cdn-dns and gdnsd differ"; bad=1; }
    done
    [ $bad = 0 ] || { echo "answers differ: not benchmarking"; exit 1; }
}

table() {  # table CLIENT-SOCKETS CLIENT-THREADS
    local c=$1 t=$2 row name q extra a b k r
    printf '%-16s %21s %21s %21s %11s %11s\n' "query" "cdn-dns qps kq/cpu-s" "gdnsd qps kq/cpu-s" \
        "knot qps kq/cpu-s" cdn/gdnsd cdn/knot
    for row in "CDN name|q_cdn|" "static name|q_static|" "CDN name + ECS|q_cdn|-E $ECS_US"; do
        IFS='|' read -r name q extra <<< "$row"
        local qa=() ca=() qb=() cb=() qk=() ck=()
        for r in $(seq 1 "$ROUNDS"); do
            # alternate the order: the machine is shared and noisy
            if [ $((r % 2)) = 1 ]; then
                a=$(cell "$CDN_PID" "$PC" "$W/$q" "$c" "$t" $extra); b=$(cell "$GDNSD_PID" "$PG" "$W/$q" "$c" "$t" $extra)
                k=$(cell "$KNOT_PID" "$PK" "$W/$q" "$c" "$t" $extra)
            else
                k=$(cell "$KNOT_PID" "$PK" "$W/$q" "$c" "$t" $extra); b=$(cell "$GDNSD_PID" "$PG" "$W/$q" "$c" "$t" $extra)
                a=$(cell "$CDN_PID" "$PC" "$W/$q" "$c" "$t" $extra)
            fi
            printf '  %-14s %12s %8s %12s %8s %12s %8s\n' "run $r" $a $b $k
            qa+=(${a%% *}); ca+=(${a##* }); qb+=(${b%% *}); cb+=(${b##* }); qk+=(${k%% *}); ck+=(${k##* })
        done
        a="$(median "${qa[@]}") $(median "${ca[@]}")"; b="$(median "${qb[@]}") $(median "${cb[@]}")"
        k="$(median "${qk[@]}") $(median "${ck[@]}")"
        printf '%-16s %12s %8s %12s %8s %12s %8s %11s %11s\n' "$name (median)" $a $b $k \
            "$(ratio ${a%% *} ${b%% *})/$(ratio ${a##* } ${b##* })" "$(ratio ${a%% *} ${k%% *})/$(ratio ${a##* } ${k##* })"
    done
    echo "(median of $ROUNDS runs; ratios: qps / queries per server CPU-second; > 1 means cdn-dns is faster / cheaper)"
}

echo "== one worker each: servers on CPU 0, dnsperf on CPU 1 (-c 1 -T 1: one socket, one thread; $DUR s per cell)"
start_all 1
check_answers
table 1 1
echo
echo "== failover lag: kill edge 127.0.20.1's health endpoint (connection refused from then on), time"
echo "   from the kill to the first answer without it for an eu client (ECS 127.0.1.0/24), polled every"
echo "   20 ms; both servers probe every 2 s with a 1 s timeout and need 2 failures to go down"
# poll PORT T0 MODE: seconds from T0 (epoch) until the eu answer is not (MODE=gone) / is (MODE=back)
# 127.0.20.1; prints "-" after 30 s
poll() {
    python3 - "$@" <<'PY'
import socket, struct, sys, time
port, t0, mode = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
def ask(i):
    q = struct.pack(">HHHHHH", i & 0xFFFF, 0, 1, 0, 0, 1) + b"\3img\4shop\4test\0\0\1\0\1"
    q += b"\0\0\x29\x04\xd0\0\0\0\0\0\x0b\0\x08\0\x07\0\x01\x18\0\x7f\0\x01"  # ECS 127.0.1.0/24
    try:
        s.sendto(q, ("127.0.0.1", port)); r = s.recv(4096)
        return ".".join(str(b) for b in r[r.find(b"\xc0\x0c\x00\x01") + 12:][:4])
    except Exception:
        return "?"
i = 0
while time.time() - t0 < 30:
    i += 1
    a = ask(i)
    if a != "?" and (a != "127.0.20.1") == (mode == "gone"):
        print("%.2f" % (time.time() - t0)); break
    time.sleep(0.02)
else:
    print("-")
PY
}
lc=(); lg=()
for r in $(seq 1 "$LAGS"); do
    # both back on the eu edge (and settled: rise 2 x 2 s) before the next kill
    now=$(date +%s.%N); poll "$PC" "$now" back >/dev/null; poll "$PG" "$now" back >/dev/null
    sleep $((3 + r % 2))
    kill -TERM -- "-$edge1" 2>/dev/null; t0=$(date +%s.%N)
    poll "$PC" "$t0" gone > "$W/lag_cdn" & l1=$!
    poll "$PG" "$t0" gone > "$W/lag_gdnsd" & l2=$!
    wait $l1 $l2
    lc+=("$(cat "$W/lag_cdn")"); lg+=("$(cat "$W/lag_gdnsd")")
    printf '  run %d: cdn-dns %s s, gdnsd %s s\n' "$r" "${lc[-1]}" "${lg[-1]}"
    start_edge 1
done
lagmed() { python3 -c 'import sys, statistics; v=[float(x) if x != "-" else 99 for x in sys.argv[1:]]; m=statistics.median(v); print("%.2f s (min %.2f, max %.2f)" % (m, min(v), max(v)) if m < 99 else "> 30 s")' "$@"; }
printf '%-10s %s\n%-10s %s\n' cdn-dns "$(lagmed "${lc[@]}")" gdnsd "$(lagmed "${lg[@]}")"
echo "(median of $LAGS kills; the floor is fall x interval minus the probe phase: between 2 and 4 s)"
stop_all

echo
echo "== one worker per core: 2 workers each, no pinning; dnsperf -c 8 -T 2 (8 sockets so SO_REUSEPORT"
echo "   spreads them over both workers of every server) shares the same 2 cores"
start_all 2
check_answers
table 8 2
stop_all
