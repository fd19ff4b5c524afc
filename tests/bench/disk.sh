#!/usr/bin/env bash
# tests/bench/disk.sh - hits from the disk tier: cdn-edge's RocksDB tier beside nginx proxy_cache's
# files (page cache, sendfile), Varnish's file storage (an mmap'ed file: the page cache is its RAM)
# and Apache Traffic Server's disk cache, with a RAM tier much smaller than the working set (issue
# 15's RocksDB-tier rows; also run by tests/bench/edge.sh for its disk-uniform and disk-zipf rows).
#
#   NOBJ objects of SIZE bytes (default 3000 x 60 KiB = 176 MiB); every server is warmed with every
#   object (three passes: cdn-edge writes an object to RocksDB on its second request) and the origin's
#   request count is shown to be unchanged while measuring. RAM tiers: cdn-edge -s RAM, ATS's
#   ram_cache.size RAM (default 16 MiB); nginx has none of its own (its files sit in the page cache,
#   as RocksDB's blob files do for cdn-edge). Rows:
#     uniform   every request a random object of the NOBJ (the worst case for a RAM tier)
#     zipf      Zipf(ALPHA, default 0.9) over the NOBJ, ranks shuffled
#   Prints req/s, p99 and CPU microseconds per request of the server (utime + stime of its
#   processes / requests), medians over ROUNDS rounds in alternating order, and cdn-edge's ratio to
#   the better peer.
#
#   tests/bench/disk.sh                              (or: make bench BENCH=disk)
#   DIR=/dev/shm tests/bench/disk.sh                 (caches on tmpfs instead of the disk)
#   PEERS="cdn-edge nginx" DUR=5 ROUNDS=3 RAM=16MiB tests/bench/disk.sh
#   EDGE_B=/other/build/edge/cdn-edge tests/bench/disk.sh     (adds that binary as "edge-b": A/B)
# Servers pinned to CPU 0 with one worker, wrk and the origin to CPU 1. Bounded: about
# ROUNDS * 2 rows * peers * DUR seconds plus the warm-up (NOBJ * 3 requests per server).
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
DUR=${DUR:-5}
ROUNDS=${ROUNDS:-3}
NOBJ=${NOBJ:-3000}
SIZE=${SIZE:-61440}
RAM=${RAM:-16MiB}
ALPHA=${ALPHA:-0.9}
CONNS=${CONNS:-50}
PEERS=${PEERS:-"cdn-edge nginx varnish ats"}
ROWS=${ROWS:-"uniform zipf"}
DIR=${DIR:-/var/tmp}
EDGE=$top_builddir/edge/cdn-edge
[ -x "$EDGE" ] || { echo "build edge/cdn-edge first"; exit 1; }
EDGE_B=${EDGE_B:-}
[ -z "$EDGE_B" ] || PEERS="$PEERS edge-b"

need=""
for p in nginx:nginx-light varnishd:varnish traffic_server:trafficserver wrk:wrk h2load:nghttp2-client python3:python3; do
    command -v "${p%%:*}" >/dev/null 2>&1 || need="$need ${p#*:}"
done
if [ -n "$need" ]; then
    [ "$(id -u)" = 0 ] || { echo "need:$need (run as root to install them)"; exit 1; }
    echo "installing:$need"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
        --no-install-recommends $need >/dev/null || exit 1
fi
for s in nginx varnish trafficserver; do systemctl stop "$s" >/dev/null 2>&1 || true; done

export TMPDIR=$DIR
. "$top_srcdir/tests/lib.sh"
chmod 755 "$T"
W=$T
cd "$W"
echo "caches under $W ($(df --output=fstype "$W" | tail -1)); RAM tier $RAM; $NOBJ objects of $SIZE bytes"
ram_bytes=$(python3 -c "import re,sys; m=re.match(r'(\d+)(KiB|MiB|GiB)?$', sys.argv[1]); print(int(m.group(1)) << {None:0,'KiB':10,'MiB':20,'GiB':30}[m.group(2)])" "$RAM") ||
    { echo "RAM: a size like 16MiB"; exit 1; }

PIN_SRV="" PIN_CLI=""
if [ "$(nproc)" -ge 2 ]; then PIN_SRV="taskset -c 0"; PIN_CLI="taskset -c 1"; fi

python3 - "$W" "$NOBJ" "$SIZE" "$ALPHA" <<'PY' || { echo "corpus failed"; exit 1; }
import os, random, sys, bisect, itertools
w, n, size, alpha = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rnd = random.Random(42)
os.makedirs(w + "/www/o")
names = ["/o/%05d.jpg" % i for i in range(n)]
for p in names:
    with open(w + "/www" + p, "wb") as f:
        f.write(rnd.randbytes(size))
with open(w + "/paths.txt", "w") as f:
    f.write("".join(p + "\n" for p in names))
with open(w + "/uniform.txt", "w") as f:
    f.write("".join(rnd.choice(names) + "\n" for _ in range(300000)))
rank = names[:]; rnd.shuffle(rank)
cum = list(itertools.accumulate(1.0 / (i + 1) ** alpha for i in range(n)))
with open(w + "/zipf.txt", "w") as f:
    f.write("".join(rank[bisect.bisect(cum, rnd.random() * cum[-1])] + "\n" for _ in range(300000)))
PY
cat >"$W/list.lua" <<'EOF'
local reqs, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do reqs[#reqs + 1] = wrk.format("GET", line) end
  i = math.random(#reqs)
end
function request()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
EOF

# --- the origin: nginx serving the files, counting requests in its access log
PO=$(free_port)
mkdir -p "$W/origin"
cat >"$W/origin/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $W/origin/nginx.pid;
error_log $W/origin/error.log;
events { worker_connections 4096; }
http {
    access_log $W/origin/access.log;
    sendfile on;
    keepalive_requests 1000000;
    client_body_temp_path $W/origin/b; proxy_temp_path $W/origin/p; fastcgi_temp_path $W/origin/f;
    uwsgi_temp_path $W/origin/u; scgi_temp_path $W/origin/s;
    server {
        listen 127.0.0.1:$PO;
        root $W/www;
        location / { add_header Cache-Control "public, max-age=86400"; }
    }
}
EOF
start origin $PIN_CLI nginx -c "$W/origin/nginx.conf" -p "$W/origin"
origin_reqs() { wc -l <"$W/origin/access.log"; }

declare -A H1 SID
start_edge() {  # start_edge NAME BINARY
    local p=$(free_port) v=pid_${1//-/_}
    start "$1" $PIN_SRV "$2" -a "127.0.0.1:$p" -b "http://127.0.0.1:$PO" -w 1 -s "$RAM" -S 4GiB \
        -d "$W/$1-rdb" -l warn
    H1[$1]=http://127.0.0.1:$p; SID[$1]=${!v}
}
start_varnish() {  # file storage: an mmap'ed file on the same disk; no RAM tier of its own
    local p=$(free_port) d=$W/varnish
    mkdir -p "$d"
    printf '%s\n' 'vcl 4.1;' "backend origin { .host = \"127.0.0.1\"; .port = \"$PO\"; }" >"$d/default.vcl"
    start varnish $PIN_SRV varnishd -F -j none -n "$d/n" -a "127.0.0.1:$p,HTTP" -f "$d/default.vcl" \
        -s "file,$d/storage.bin,1G" -T none -p thread_pools=1
    H1[varnish]=http://127.0.0.1:$p; SID[varnish]=$pid_varnish
}
start_nginx() {
    local p=$(free_port) d=$W/nginx
    mkdir -p "$d"
    cat >"$d/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path $d/b; proxy_temp_path $d/p; fastcgi_temp_path $d/f; uwsgi_temp_path $d/u;
    scgi_temp_path $d/s;
    proxy_cache_path $d/cache levels=1:2 keys_zone=edge:64m max_size=4g inactive=2h use_temp_path=off;
    upstream origin { server 127.0.0.1:$PO; keepalive 64; }
    server {
        listen 127.0.0.1:$p;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;
            proxy_cache_lock on;
        }
    }
}
EOF
    start nginx $PIN_SRV nginx -c "$d/nginx.conf" -p "$d"
    H1[nginx]=http://127.0.0.1:$p; SID[nginx]=$pid_nginx
}
start_ats() {
    local p=$(free_port) d=$W/ats
    mkdir -p "$d/etc" "$d/run" "$d/log" "$d/cache" "$d/var"
    cp -r /etc/trafficserver/. "$d/etc/"
    printf '%s\n' "prefix: /usr" "exec_prefix: /usr" "bindir: /usr/bin" "sbindir: /usr/sbin" "sysconfdir: $d/etc" \
        "datadir: /usr/share/trafficserver" "includedir: /usr/include" "libdir: /usr/lib/trafficserver" \
        "libexecdir: /usr/lib/trafficserver/modules" "localstatedir: $d/var" "runtimedir: $d/run" \
        "logdir: $d/log" "cachedir: $d/cache" >"$d/runroot.yaml"
    cat >"$d/etc/records.config" <<EOF
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT 1
CONFIG proxy.config.exec_thread.affinity INT 0
CONFIG proxy.config.accept_threads INT 0
CONFIG proxy.config.task_threads INT 1
CONFIG proxy.config.cache.ram_cache.size INT $ram_bytes
CONFIG proxy.config.cache.ram_cache.compress INT 0
CONFIG proxy.config.reverse_proxy.enabled INT 1
CONFIG proxy.config.url_remap.remap_required INT 1
CONFIG proxy.config.http.server_ports STRING $p
CONFIG proxy.config.http.insert_request_via_str INT 0
CONFIG proxy.config.http.insert_response_via_str INT 0
CONFIG proxy.config.http.keep_alive_no_activity_timeout_in INT 120
CONFIG proxy.config.net.max_requests_in INT 0
CONFIG proxy.config.http.cache.http INT 1
CONFIG proxy.config.log.logging_enabled INT 0
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.dns.nameservers STRING 127.0.0.1:9
CONFIG proxy.config.dns.resolv_conf STRING NULL
CONFIG proxy.config.diags.debug.enabled INT 0
EOF
    echo "map http://127.0.0.1:$p/ http://127.0.0.1:$PO/" >"$d/etc/remap.config"
    echo "$d/cache 1G" >"$d/etc/storage.config"
    : >"$d/etc/plugin.config"
    : >"$d/etc/ssl_multicert.config"
    start ats $PIN_SRV traffic_server --run-root="$d/runroot.yaml"
    H1[ats]=http://127.0.0.1:$p; SID[ats]=$pid_ats
}
pin() {  # ATS threads set their own affinity: put every thread back on CPU 0
    [ -n "$PIN_SRV" ] || return 0
    local pid
    for pid in $(ps -o pid= -s "${SID[$1]}"); do taskset -a -p -c 0 "$pid" >/dev/null 2>&1; done
}

wait_http "http://127.0.0.1:$PO/o/00000.jpg" 10 || bail "origin did not start"
for s in $PEERS; do
    case $s in cdn-edge) start_edge cdn-edge "$EDGE" ;; edge-b) start_edge edge-b "$EDGE_B" ;; nginx) start_nginx ;;
        varnish) start_varnish ;; ats) start_ats ;; *) echo "unknown server $s"; exit 1 ;; esac
done
for s in $PEERS; do
    wait_http "${H1[$s]}/o/00000.jpg" 30 || bail "$s did not start"
    pin "$s"
    sed "s|^|${H1[$s]}|" "$W/paths.txt" >"$W/warm.txt"
    for pass in 1 2 3; do
        $PIN_CLI h2load --h1 -t1 -c1 -n "$NOBJ" -i "$W/warm.txt" >"$W/warm-$s.log" 2>&1
        grep -q " 0 failed, 0 errored" "$W/warm-$s.log" || { echo "warm-up of $s failed:"; tail -5 "$W/warm-$s.log"; exit 1; }
    done
    for f in $(shuf -n 8 --random-source=<(yes) "$W/paths.txt"); do
        curl -s "${H1[$s]}$f" | cmp -s - "$W/www$f" || { echo "$s: wrong body for $f"; exit 1; }
    done
done
sync
echo "warmed: $NOBJ objects through each of $PEERS (origin requests so far: $(origin_reqs))"
[ -z "${H1[cdn-edge]:-}" ] || echo "cdn-edge: $(curl -s -D - -o /dev/null "${H1[cdn-edge]}/o/00001.jpg" | tr -d '\r' | grep -i '^cache-status')"

sess_ticks() { local t=0 p; for p in $(ps -o pid= -s "$1"); do t=$((t + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13; exit} END {if (!NR) print 0}'))); done; echo $t; }
cell() {  # cell ROW SERVER -> "REQ_PER_S P99_MS ERRORS US_CPU_PER_REQ"
    local s=$2 t0 t1 out
    pin "$s"
    t0=$(sess_ticks "${SID[$s]}")
    out=$(timeout $((DUR + 30)) $PIN_CLI wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$W/list.lua" "${H1[$s]}" -- "$W/$1.txt" 2>&1)
    t1=$(sess_ticks "${SID[$s]}")
    echo "$out" | python3 -c '
import re, sys
t, dur, ticks, hz = sys.stdin.read(), float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rps = re.search(r"Requests/sec:\s+([0-9.]+)", t)
p = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s)\b", t, re.M)
bad = sum(int(x) for x in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout)[: ]+(\d+)", t))
ms = float(p.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p.group(2)] if p else 0
r = float(rps.group(1)) if rps else 0
print("%d %.2f %d %.1f" % (r, ms, bad if rps else -1, ticks / hz / (r * dur) * 1e6 if r else 0))' \
        "$DUR" $((t1 - t0)) "$(getconf CLK_TCK)"
}

declare -A RES
order=($PEERS)
before=$(origin_reqs)
for r in $(seq 1 "$ROUNDS"); do
    for row in $ROWS; do
        for s in "${order[@]}"; do
            c=$(cell "$row" "$s")
            [ "${RAW:-0}" = 1 ] && echo "$row $s $c"
            RES[$row,$s]="${RES[$row,$s]:-} ${c// /,}"
        done
    done
    order=($(printf '%s\n' "${order[@]}" | tac))
done
after=$(origin_reqs)

python3 - "$ROWS" "$PEERS" "$(for k in "${!RES[@]}"; do echo "$k=${RES[$k]}"; done)" <<'PY'
import statistics, sys
rows, peers = sys.argv[1].split(), sys.argv[2].split()
res = {}
for line in sys.argv[3].splitlines():
    k, v = line.split("=", 1)
    res[k] = [tuple(float(x) for x in c.split(",")) for c in v.split()]
print("%-8s %-9s %8s %8s %5s %10s %10s %10s" % ("row", "server", "req/s", "p99 ms", "err", "us CPU/req", "/best req/s", "/best CPU"))
for row in rows:
    med = {}
    for s in peers:
        cs = res.get(row + "," + s, [])
        if cs:
            med[s] = tuple(statistics.median(c[i] for c in cs) for i in range(4))
    others = [s for s in med if s not in ("cdn-edge", "edge-b") and med[s][0] > 0]
    best = max(others, key=lambda s: med[s][0]) if others else None
    for s in peers:
        if s not in med:
            continue
        rps, p99, err, cpu = med[s]
        rr = rc = ""
        if s in ("cdn-edge", "edge-b") and best:
            rr = "%.2fx" % (rps / med[best][0])
            rc = "%.2fx" % (cpu / med[best][3]) if med[best][3] else ""
        print("%-8s %-9s %8.0f %8.2f %5d %10.1f %10s %10s" % (row, s, rps, p99, err, cpu, rr, rc))
print("(/best: cdn-edge against the peer with the most req/s in that row; CPU below 1.00x is less)")
PY
echo "origin requests while measuring: $((after - before)) (0: every request was a cache hit)"
