#!/usr/bin/env bash
# tests/bench/dns.sh - cdn-dns versus knot (static zone, the speed ceiling) and gdnsd (geoip with a
# nets map, health-checked: the geo DNS to beat) on loopback, with dnsperf. Same data everywhere
# (dns/examples/bench.yaml). Prints queries/s per row and the ratios, then the failover lag (time
# from an edge's death to the first answer without it, probe interval 2 s, fall 2, for both geo
# servers). Installs its peers itself (apt-get install knot gdnsd dnsperf). Bounded: DUR seconds per
# measurement (default 5), a few minutes in all.
#   tests/bench/dns.sh                 (or: make bench BENCH=dns)
#   DUR=10 ROUNDS=2 tests/bench/dns.sh
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
DUR=${DUR:-5}
ROUNDS=${ROUNDS:-1}
DNS=$top_builddir/dns/cdn-dns
[ -x "$DNS" ] || { echo "build dns/cdn-dns first"; exit 1; }

need=""
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

# With one worker each, servers run on CPU 1 and dnsperf on CPU 0 (less noise); with two, no pinning.
PIN_SRV=""; PIN_CLI=""
start_all() {  # start_all WORKERS
    cdnconf "$1"; knotconf "$1"; gdnsdconf "$1"
    if [ "$1" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
        PIN_SRV="taskset -c 1"; PIN_CLI="taskset -c 0"
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
cell() {
    local pid=$1 port=$2 q=$3 c=$4 t0 t1 out; shift 4
    t0=$(cpu_ticks "$pid")
    out=$($PIN_CLI dnsperf -s 127.0.0.1 -p "$port" -d "$q" -l "$DUR" -c "$c" -T "$c" -q 500 -t 2 "$@" 2>&1)
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

table() {  # table CLIENTS
    local c=$1 row name q extra a b k
    printf '%-18s %20s %20s %20s %10s %10s\n' "query ($c client)" "cdn-dns qps kq/cpu-s" "gdnsd qps kq/cpu-s" \
        "knot qps kq/cpu-s" cdn/gdnsd cdn/knot
    for row in "CDN name|q_cdn|" "static name|q_static|" "CDN name + ECS|q_cdn|-E $ECS_US"; do
        IFS='|' read -r name q extra <<< "$row"
        for r in $(seq 1 "$ROUNDS"); do
            # alternate the order: the machine is shared and noisy
            if [ $((r % 2)) = 1 ]; then
                a=$(cell "$CDN_PID" "$PC" "$W/$q" "$c" $extra); b=$(cell "$GDNSD_PID" "$PG" "$W/$q" "$c" $extra)
                k=$(cell "$KNOT_PID" "$PK" "$W/$q" "$c" $extra)
            else
                k=$(cell "$KNOT_PID" "$PK" "$W/$q" "$c" $extra); b=$(cell "$GDNSD_PID" "$PG" "$W/$q" "$c" $extra)
                a=$(cell "$CDN_PID" "$PC" "$W/$q" "$c" $extra)
            fi
            printf '%-18s %12s %7s %12s %7s %12s %7s %10s %10s\n' "$name" $a $b $k \
                "$(ratio ${a%% *} ${b%% *})/$(ratio ${a##* } ${b##* })" "$(ratio ${a%% *} ${k%% *})/$(ratio ${a##* } ${k##* })"
        done
    done
    echo "(ratios: qps / work per query; > 1 means cdn-dns is faster / cheaper)"
}

echo "== one worker each (dnsperf: 1 thread, 1 socket... -c 1 -T 1, $DUR s per cell)"
start_all 1
table 1
echo
echo "== failover lag: kill edge 127.0.20.1's health endpoint, time until an eu client stops getting it"
echo "   (both servers probe every 2 s, 2 failures to go down)"
sleep 5   # both have seen the edge healthy twice
lag() {  # lag PORT -> seconds until img for an eu client is not 127.0.20.1 (max 20 s)
    python3 - "$1" <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
def ask():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
    q = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 1) + b"\3img\4shop\4test\0\0\1\0\1"
    q += b"\0\0\x29\x04\xd0\0\0\0\0\0\x0b\0\x08\0\x07\0\x01\x18\0\x7f\0\x01"  # ECS 127.0.1.0/24
    try:
        s.sendto(q, ("127.0.0.1", port)); r = s.recv(4096)
        return ".".join(str(b) for b in r[r.find(b"\xc0\x0c\x00\x01") + 12:][:4])
    except Exception:
        return "?"
t0 = time.time()
while time.time() - t0 < 20:
    a = ask()
    if a not in ("127.0.20.1", "?"):
        print("%.2f s (now %s)" % (time.time() - t0, a)); break
    time.sleep(0.05)
else:
    print("> 20 s")
PY
}
kill -TERM -- "-$edge1" 2>/dev/null
lag "$PC" > "$W/lag_cdn" & l1=$!
lag "$PG" > "$W/lag_gdnsd" & l2=$!
wait $l1 $l2
printf '%-10s %s\n' cdn-dns "$(cat "$W/lag_cdn")" gdnsd "$(cat "$W/lag_gdnsd")"
start_edge 1
stop_all

echo
echo "== one worker per core (2 workers each; dnsperf -c 2 -T 2 shares the same 2 cores)"
start_all 2
table 2
stop_all
