#!/usr/bin/env bash
# tests/bench/edge.sh - cdn-edge hot hits beside nginx proxy_cache, Varnish and Apache Traffic
# Server, all in front of one origin (nginx serving a generated product-image corpus), with h2o
# serving the same files directly as the ceiling (no proxy, no cache lookup). Every peer is set up
# alike: no access logs, unlimited keep-alive, a cache larger than the corpus, and WORKERS worker
# threads/processes each (default 1).
#
# Rows (every object is a hit: each server is warmed with the whole corpus first, and the origin's
# request counter is printed to show that nothing reached it while measuring):
#   1k h1      one 1 KiB object, wrk HTTP/1.1
#   60k h2     one 60 KiB image, h2load h2 over TLS (ALPN)
#   60k h2c    the same, h2c prior knowledge (servers that speak it)
#   zipf h1    Zipf(ALPHA) over the whole corpus (CORPUS_MB, log-normal sizes), wrk HTTP/1.1
# and the miss path (every request a new URL: a query no one asked before, so each one goes to
# the origin and is stored; h2o-proxy, a reverse proxy without a cache, is the bare hop):
#   miss-4k h1, miss-60k h1    a 4 KiB / 60 KiB object under a fresh query each time, wrk HTTP/1.1
#   pass-4k h1                 a 4 KiB object the origin marks no-store (nothing is stored)
#   miss-4k-h2, pass-4k-h2     the same over h2 with TLS (h2load; the miss row on one connection
#                              with H2C x H2M streams, since h2load gives every connection the same
#                              list of fresh URLs)
# and hits from the disk tier (tests/bench/disk.sh, run after the table with its own servers, RAM
# tier much smaller than the working set, caches on DIR, default /var/tmp: the real disk):
#   disk-uniform, disk-zipf
# Caches live on tmpfs by default (nginx's and ATS's caches are files, so this makes them memory
# caches as the others are); CACHE_DIR=/var/tmp puts cdn-edge's RocksDB tier, nginx's cache files and
# ATS's cache on the disk instead (Varnish keeps malloc storage), for the miss rows on a real disk.
# Prints req/s and p99 (medians over ROUNDS rounds, order alternating), RSS after the run, and
# each server's ratio to the fastest peer and to the ceiling.
#
# With WORKERS=1 (default) servers are pinned to CPU 0 and the load tools and origin to CPU 1.
# Installs its peers with apt-get when missing (nginx-light, varnish, trafficserver, h2o, wrk,
# nghttp2-client). Bounded: about ROUNDS * 4 rows * 5 servers * DUR seconds plus ~30 s set-up.
#   tests/bench/edge.sh                     (or: make bench BENCH=edge)
#   DUR=5 ROUNDS=3 WORKERS=2 tests/bench/edge.sh
#   PEERS="cdn-edge h2o" ROWS="1k-h1" tests/bench/edge.sh    (a subset, for profiling)
#   EDGE_B=/other/build/edge/cdn-edge tests/bench/edge.sh     (adds that binary as "edge-b": A/B of a change)
#   CACHE_DIR=/var/tmp ROWS="miss-4k miss-60k" tests/bench/edge.sh   (the caches on the disk)
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
DUR=${DUR:-3}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-1}
CORPUS_MB=${CORPUS_MB:-128}
ALPHA=${ALPHA:-0.9}
CONNS=${CONNS:-50}          # wrk connections
H2C=${H2C:-10}              # h2load connections
H2M=${H2M:-10}              # h2load streams per connection
PEERS=${PEERS:-"cdn-edge nginx varnish ats h2o h2o-proxy"}
ROWS=${ROWS:-"1k-h1 60k-h2 60k-h2c zipf-h1 miss-4k miss-60k pass-4k miss-4k-h2 pass-4k-h2 disk-uniform disk-zipf"}
DISK_ROWS=""
for r in $ROWS; do case $r in disk-*) DISK_ROWS="$DISK_ROWS ${r#disk-}" ;; esac; done
ROWS=$(for r in $ROWS; do case $r in disk-*) ;; *) printf '%s ' "$r" ;; esac; done)
CACHE_DIR=${CACHE_DIR:-}
EDGE=$top_builddir/edge/cdn-edge
[ -x "$EDGE" ] || { echo "build edge/cdn-edge first"; exit 1; }
EDGE_B=${EDGE_B:-}
[ -z "$EDGE_B" ] || PEERS="$PEERS edge-b"

need=""
for p in nginx:nginx-light varnishd:varnish traffic_server:trafficserver h2o:h2o wrk:wrk \
         h2load:nghttp2-client openssl:openssl python3:python3; do
    command -v "${p%%:*}" >/dev/null 2>&1 || need="$need ${p#*:}"
done
if [ -n "$need" ]; then
    [ "$(id -u)" = 0 ] || { echo "need:$need (run as root to install them)"; exit 1; }
    echo "installing:$need"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
        --no-install-recommends $need >/dev/null || exit 1
fi
# the Debian packages may start their own services; ours run on other ports with their own configs
for s in nginx varnish trafficserver h2o; do systemctl stop "$s" >/dev/null 2>&1 || true; done

# Everything (corpus, caches, RocksDB) lives on tmpfs: nginx's and ATS's caches are files, so this
# makes them memory caches as the others are.
export TMPDIR=/dev/shm
. "$top_srcdir/tests/lib.sh"
chmod 755 "$T"
W=$T
cd "$W"
CD=$W   # where the caches live
if [ -n "$CACHE_DIR" ]; then
    CD=$(mktemp -d "$CACHE_DIR/cdn-bench.XXXXXX") || exit 1
    chmod 755 "$CD"
    trap 'rm -rf "$CD"; _cleanup' EXIT
fi
echo "caches on $CD ($(df --output=fstype "$CD" | tail -1))"

PIN_SRV="" PIN_CLI=""
if [ "$WORKERS" = 1 ] && [ "$(nproc)" -ge 2 ]; then PIN_SRV="taskset -c 0"; PIN_CLI="taskset -c 1"; fi

# --- corpus: /1k.bin, /img60k.jpg, /img/N.jpg with log-normal sizes (median 40 KiB, 1 KiB..1 MiB)
# and a Zipf-ordered request list over /img/ (ranks shuffled so popularity and size are unrelated)
python3 - "$W" "$CORPUS_MB" "$ALPHA" <<'PY' || { echo "corpus failed"; exit 1; }
import os, random, sys, bisect, itertools
w, mb, alpha = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rnd = random.Random(42)
os.makedirs(w + "/www/img")
def put(path, n):
    with open(w + "/www" + path, "wb") as f:
        f.write(rnd.randbytes(n))
put("/1k.bin", 1024)
put("/4k.bin", 4096)
put("/img60k.jpg", 60 * 1024)
total, names = 0, []
while total < mb << 20:
    n = int(min(max(rnd.lognormvariate(10.6, 0.9), 1024), 1 << 20))
    names.append("/img/%05d.jpg" % len(names)); put(names[-1], n); total += n
with open(w + "/all.txt", "w") as f:
    f.write("".join("http://127.0.0.1" + n + "\n" for n in names))
rank = names[:]; rnd.shuffle(rank)
cum = list(itertools.accumulate(1.0 / (i + 1) ** alpha for i in range(len(rank))))
with open(w + "/zipf.txt", "w") as f:
    for _ in range(200000):
        f.write(rank[bisect.bisect(cum, rnd.random() * cum[-1])] + "\n")
print("corpus: %d images, %.0f MiB, zipf alpha %.2f" % (len(names), total / 1048576, alpha))
PY
cat >"$W/fresh.lua" <<'EOF'
-- every request a URL no one asked for before: PATH?u=RUN-N
local path, run, n = "/", "x", 0
function init(args) path, run = args[1], args[2] end
function request()
  n = n + 1
  return wrk.format("GET", path .. "?u=" .. run .. "-" .. n)
end
EOF
cat >"$W/zipf.lua" <<'EOF'
local reqs, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do reqs[#reqs + 1] = wrk.format("GET", line) end
end
function request()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
    -keyout "$W/key.pem" -out "$W/cert.pem" >/dev/null 2>&1 || { echo "openssl failed"; exit 1; }
chmod 644 "$W/key.pem"

nginx_common() {  # nginx_common DIR: the top of an nginx.conf (DIR exists)
    cat <<EOF
daemon off;
worker_processes $WORKERS;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
EOF
}

# --- the origin: nginx static with a long max-age, on the load tools' core
PO=$(free_port)
mkdir -p "$W/origin"
{ nginx_common "$W/origin"; cat <<EOF
    server {
        listen 127.0.0.1:$PO;
        root $W/www;
        add_header Cache-Control "public, max-age=86400";
        location = /origin_status { stub_status; access_log off; }
        location /pass/ { alias $W/www/; add_header Cache-Control "no-store"; }
    }
}
EOF
} >"$W/origin/nginx.conf"
start origin $PIN_CLI nginx -c "$W/origin/nginx.conf" -p "$W/origin"
wait_http "http://127.0.0.1:$PO/1k.bin" || bail "origin did not start"
origin_reqs() { curl -s "http://127.0.0.1:$PO/origin_status" | awk '/^ *[0-9]+ +[0-9]+ +[0-9]+/ {print $3}'; }

declare -A H1 H2C TLS SID
# --- cdn-edge
start_edge() {  # start_edge NAME BINARY
    local p=$(free_port) pt=$(free_port) v=pid_${1//-/_}
    start "$1" $PIN_SRV "$2" -a "127.0.0.1:$p" --tls "127.0.0.1:$pt" --cert "$W/cert.pem" --key "$W/key.pem" \
        -b "http://127.0.0.1:$PO" -w "$WORKERS" -s 1GiB -S 2GiB -d "$CD/$1-rdb" -l warn
    H1[$1]=http://127.0.0.1:$p; H2C[$1]=http://127.0.0.1:$p; TLS[$1]=https://127.0.0.1:$pt
    SID[$1]=${!v}
}
# --- nginx proxy_cache: h1, h2c (separate port, prior knowledge only) and TLS h2
start_nginx() {
    local p=$(free_port) pc=$(free_port) pt=$(free_port) d=$W/nginx
    mkdir -p "$d"
    { nginx_common "$d"; cat <<EOF
    proxy_cache_path $CD/nginx-cache levels=1:2 keys_zone=edge:64m max_size=1g inactive=2h use_temp_path=off;
    upstream origin { server 127.0.0.1:$PO; keepalive 64; }
    server {
        listen 127.0.0.1:$p;
        listen 127.0.0.1:$pc http2;
        listen 127.0.0.1:$pt ssl http2;
        ssl_certificate $W/cert.pem;
        ssl_certificate_key $W/key.pem;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;
            proxy_cache_lock on;
            add_header X-Cache \$upstream_cache_status;
        }
        # pass: nginx at its best, told the route is never cached (with the cache and its lock,
        # requests for one uncacheable URL wait for each other: about 400 req/s here)
        location /pass/ {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    } >"$d/nginx.conf"
    start nginx $PIN_SRV nginx -c "$d/nginx.conf" -p "$d"
    H1[nginx]=http://127.0.0.1:$p; H2C[nginx]=http://127.0.0.1:$pc; TLS[nginx]=https://127.0.0.1:$pt
    SID[nginx]=$pid_nginx
}
# --- Varnish: h1 and h2c on one port, no TLS
start_varnish() {
    local p=$(free_port) d=$W/varnish
    mkdir -p "$d"
    cat >"$d/default.vcl" <<EOF
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$PO"; }
sub vcl_deliver { if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; } }
EOF
    start varnish $PIN_SRV varnishd -F -j none -n "$d/n" -a "127.0.0.1:$p,HTTP" -f "$d/default.vcl" \
        -s malloc,1g -T none -p feature=+http2 -p thread_pools="$WORKERS"
    H1[varnish]=http://127.0.0.1:$p; H2C[varnish]=http://127.0.0.1:$p; TLS[varnish]=""
    SID[varnish]=$pid_varnish
}
# --- Apache Traffic Server: h1 and TLS h2 (no h2c), own runroot, memory-backed store
start_ats() {
    local p=$(free_port) pt=$(free_port) d=$W/ats
    mkdir -p "$d/etc" "$d/run" "$d/log" "$d/cache" "$d/var"
    cp -r /etc/trafficserver/. "$d/etc/"
    cat >"$d/runroot.yaml" <<EOF
prefix: /usr
exec_prefix: /usr
bindir: /usr/bin
sbindir: /usr/sbin
sysconfdir: $d/etc
datadir: /usr/share/trafficserver
includedir: /usr/include
libdir: /usr/lib/trafficserver
libexecdir: /usr/lib/trafficserver/modules
localstatedir: $d/var
runtimedir: $d/run
logdir: $d/log
cachedir: $d/cache
EOF
    cat >"$d/etc/records.config" <<EOF
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT $WORKERS
CONFIG proxy.config.exec_thread.affinity INT 0
CONFIG proxy.config.accept_threads INT 0
CONFIG proxy.config.task_threads INT 1
CONFIG proxy.config.cache.ram_cache.size INT 1073741824
CONFIG proxy.config.cache.ram_cache.compress INT 0
CONFIG proxy.config.cache.ram_cache_cutoff INT 4194304
CONFIG proxy.config.reverse_proxy.enabled INT 1
CONFIG proxy.config.url_remap.remap_required INT 1
CONFIG proxy.config.http.server_ports STRING $p $pt:ssl
CONFIG proxy.config.http.insert_request_via_str INT 0
CONFIG proxy.config.http.insert_response_via_str INT 0
CONFIG proxy.config.http.keep_alive_no_activity_timeout_in INT 120
CONFIG proxy.config.net.max_requests_in INT 0
CONFIG proxy.config.http.cache.http INT 1
CONFIG proxy.config.log.logging_enabled INT 0
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.ssl.server.cert.path STRING $W
CONFIG proxy.config.ssl.server.private_key.path STRING $W
CONFIG proxy.config.dns.nameservers STRING 127.0.0.1:9
CONFIG proxy.config.dns.resolv_conf STRING NULL
CONFIG proxy.config.diags.debug.enabled INT 0
EOF
    cat >"$d/etc/remap.config" <<EOF
map http://127.0.0.1:$p/ http://127.0.0.1:$PO/
map https://127.0.0.1:$pt/ http://127.0.0.1:$PO/
EOF
    echo "dest_ip=* ssl_cert_name=cert.pem ssl_key_name=key.pem" >"$d/etc/ssl_multicert.config"
    mkdir -p "$CD/ats-cache"
    echo "$CD/ats-cache 1G" >"$d/etc/storage.config"
    : >"$d/etc/plugin.config"
    start ats $PIN_SRV traffic_server --run-root="$d/runroot.yaml"
    H1[ats]=http://127.0.0.1:$p; H2C[ats]=""; TLS[ats]=https://127.0.0.1:$pt
    SID[ats]=$pid_ats
}
# --- h2o as a reverse proxy without a cache: the bare hop of the miss and pass rows
start_h2o_proxy() {
    local p=$(free_port) pt=$(free_port) d=$W/h2o-proxy
    mkdir -p "$d"
    printf '%s\n' "num-threads: $WORKERS" "user: root" "pid-file: $d/h2o.pid" "error-log: $d/error.log" \
        "listen:" "  host: 127.0.0.1" "  port: $p" "listen:" "  host: 127.0.0.1" "  port: $pt" "  ssl:" \
        "    certificate-file: $W/cert.pem" "    key-file: $W/key.pem" "    ocsp-update-interval: 0" \
        "hosts:" "  default:" "    paths:" "      /:" \
        "        proxy.reverse.url: http://127.0.0.1:$PO/" >"$d/h2o.conf"
    start h2o_proxy $PIN_SRV h2o -c "$d/h2o.conf"
    H1[h2o-proxy]=http://127.0.0.1:$p; H2C[h2o-proxy]=""; TLS[h2o-proxy]=https://127.0.0.1:$pt
    SID[h2o-proxy]=$pid_h2o_proxy
}
# --- h2o static: the ceiling (same files, same header, no proxy)
start_h2o() {
    local p=$(free_port) pt=$(free_port) d=$W/h2o
    mkdir -p "$d"
    cat >"$d/h2o.conf" <<EOF
num-threads: $WORKERS
user: root
pid-file: $d/h2o.pid
error-log: $d/error.log
http2-max-concurrent-requests-per-connection: 128
listen:
  host: 127.0.0.1
  port: $p
listen:
  host: 127.0.0.1
  port: $pt
  ssl:
    certificate-file: $W/cert.pem
    key-file: $W/key.pem
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        file.dir: $W/www
        header.add: "Cache-Control: public, max-age=86400"
EOF
    start h2o $PIN_SRV h2o -c "$d/h2o.conf"
    H1[h2o]=http://127.0.0.1:$p; H2C[h2o]=http://127.0.0.1:$p; TLS[h2o]=https://127.0.0.1:$pt
    SID[h2o]=$pid_h2o
}

pin() {  # pin NAME: ATS threads set their own affinity (hwloc); put every thread back on CPU 0
    [ -n "$PIN_SRV" ] || return 0
    local pid
    for pid in $(ps -o pid= -s "${SID[$1]}"); do taskset -a -p -c 0 "$pid" >/dev/null 2>&1; done
}
rss_mib() { ps -o rss= -s "$1" | awk '{s += $1} END {printf "%.0f", s / 1024}'; }

for s in $PEERS; do
    case $s in cdn-edge) start_edge cdn-edge "$EDGE" ;; edge-b) start_edge edge-b "$EDGE_B" ;; nginx) start_nginx ;; varnish) start_varnish ;; ats) start_ats ;;
        h2o) start_h2o ;; h2o-proxy) start_h2o_proxy ;; *) echo "unknown server $s"; exit 1 ;; esac
done
for s in $PEERS; do
    wait_http "${H1[$s]}/1k.bin" 20 || bail "$s did not start"
    pin "$s"
done

# --- warm-up: the whole corpus through each cache, twice (one connection: one fetch per object)
sed "s|^http://127.0.0.1||" "$W/all.txt" >"$W/paths.txt"
NIMG=$(wc -l <"$W/all.txt")
for s in $PEERS; do
    [ "$s" = h2o ] || [ "$s" = h2o-proxy ] && continue
    base=${H1[$s]}
    sed "s|^|$base|" "$W/paths.txt" >"$W/warm.txt"
    echo "$base/1k.bin" >>"$W/warm.txt"; echo "$base/img60k.jpg" >>"$W/warm.txt"
    for pass in 1 2; do
        $PIN_CLI h2load --h1 -t1 -c1 -n $((NIMG + 2)) -i "$W/warm.txt" >"$W/warm-$s.log" 2>&1
        grep -q " 0 failed, 0 errored" "$W/warm-$s.log" || { echo "warm-up of $s failed:"; tail -5 "$W/warm-$s.log"; exit 1; }
    done
    # a cache may key on the scheme (cdn-edge does): warm the object the TLS row asks for too
    [ -z "${TLS[$s]}" ] || curl -skf -o /dev/null "${TLS[$s]}/img60k.jpg" || { echo "$s: TLS fetch failed"; exit 1; }
done
# the bodies are right: a few objects through every server, compared with the files
for s in $PEERS; do
    for f in /1k.bin /img60k.jpg $(shuf -n 8 --random-source=<(yes) "$W/paths.txt"); do
        curl -s "${H1[$s]}$f" | cmp -s - "$W/www$f" || { echo "$s: wrong body for $f"; exit 1; }
    done
done
echo "warmed: $NIMG images + 2 through each cache; origin requests so far: $(origin_reqs)"

# --- one measurement -> "REQ_PER_S P99_MS ERRORS"
p99_of() {  # p99 in ms from an h2load log file (column 3: microseconds)
    sort -n -k3,3 "$1" | awk '{v[NR] = $3} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] / 1000}'
}
run_wrk() {  # run_wrk URL [-s script -- args]
    local out
    out=$(timeout $((DUR + 30)) $PIN_CLI wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "$@" 2>&1)
    echo "$out" | python3 -c '
import re, sys
t = sys.stdin.read()
rps = re.search(r"Requests/sec:\s+([0-9.]+)", t)
p = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s)\b", t, re.M)
bad = sum(int(x) for x in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout)[: ]+(\d+)", t))
ms = float(p.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p.group(2)] if p else 0
print("%d %.2f %d" % (float(rps.group(1)) if rps else 0, ms, bad if rps else -1))'
}
run_h2load() {  # run_h2load URL | -c N -m M -i FILE
    local out rps bad
    rm -f "$W/h2.log"
    if [ "$1" = -c ]; then
        out=$(timeout $((DUR + 30)) $PIN_CLI h2load -t1 "$@" -D "$DUR" --log-file="$W/h2.log" 2>&1)
    else
        out=$(timeout $((DUR + 30)) $PIN_CLI h2load -t1 -c"$H2C" -m"$H2M" -D "$DUR" --log-file="$W/h2.log" "$1" 2>&1)
    fi
    rps=$(echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
    bad=$(echo "$out" | sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored.*/\1 \2/p' | awk '{print $1 + $2}')
    [ -n "$rps" ] || { echo "0 0 -1"; return; }
    echo "${rps%.*} $(p99_of "$W/h2.log") ${bad:--1}"
}
sess_ticks() { local t=0 p; for p in $(ps -o pid= -s "$1"); do t=$((t + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13; exit} END {if (!NR) print 0}'))); done; echo $t; }
# cell ROW SERVER -> "REQ_PER_S P99_MS ERRORS KREQ_PER_CPU_S", nothing if the server does not speak it.
# The last number (thousands of requests per CPU-second of the server's processes) is what each
# request costs the server; it moves less than req/s when other work shares the machine.
cell() {
    local s=$2 t0 t1 out
    pin "$s"
    t0=$(sess_ticks "${SID[$s]}")
    case $1 in
        1k-h1) out=$(run_wrk "${H1[$s]}/1k.bin") ;;
        60k-h2) [ -n "${TLS[$s]}" ] && out=$(run_h2load "${TLS[$s]}/img60k.jpg") ;;
        60k-h2c) [ -n "${H2C[$s]}" ] && out=$(run_h2load "${H2C[$s]}/img60k.jpg") ;;
        zipf-h1) out=$(run_wrk "${H1[$s]}/" -s "$W/zipf.lua" -- "$W/zipf.txt") ;;
        # the miss path (h2o's static files are the ceiling of nothing here)
        miss-4k) [ "$s" != h2o ] && out=$(run_wrk "${H1[$s]}/" -s "$W/fresh.lua" -- /4k.bin "$s-$RANDOM$RANDOM") ;;
        miss-60k) [ "$s" != h2o ] && out=$(run_wrk "${H1[$s]}/" -s "$W/fresh.lua" -- /img60k.jpg "$s-$RANDOM$RANDOM") ;;
        pass-4k) [ "$s" != h2o ] && out=$(run_wrk "${H1[$s]}/pass/4k.bin") ;;
        miss-4k-h2) [ "$s" != h2o ] && [ -n "${TLS[$s]}" ] && {
            local run="$s-$RANDOM$RANDOM"
            awk -v b="${TLS[$s]}" -v r="$run" 'BEGIN { for (i = 1; i <= 400000; i++) print b "/4k.bin?u=" r "-" i }' >"$W/fresh-h2.txt"
            out=$(run_h2load -c 1 -m $((H2C * H2M)) -i "$W/fresh-h2.txt"); } ;;
        pass-4k-h2) [ "$s" != h2o ] && [ -n "${TLS[$s]}" ] && out=$(run_h2load "${TLS[$s]}/pass/4k.bin") ;;
    esac
    [ -n "${out:-}" ] || return 0
    t1=$(sess_ticks "${SID[$s]}")
    echo "$out $(awk -v r="${out%% *}" -v d="$DUR" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f", (t > 0 ? r * d / (t / hz) / 1000 : 0) }')"
}

declare -A RES ORIG
# RAW=1 prints every cell as it is measured (row server req/s p99 errors kreq/cpu-s)
order=($PEERS)
for r in $(seq 1 "$ROUNDS"); do
    for row in $ROWS; do
        for s in "${order[@]}"; do
            a=$(origin_reqs)
            c=$(cell "$row" "$s")
            [ "${RAW:-0}" = 1 ] && echo "$row $s $c"
            RES[$row,$s]="${RES[$row,$s]:-} ${c// /,}"
            case $row in miss-*|pass-*) ;; *)  # the hit rows: nothing should reach the origin
                ORIG[$s]=$(( ${ORIG[$s]:-0} + $(origin_reqs) - a - 1 )) ;; esac  # the status request counts itself
        done
    done
    # alternate the order: the machine is shared and noisy
    order=($(printf '%s\n' "${order[@]}" | tac))
done

echo
echo "== hot hits, $WORKERS worker(s) per server$([ -n "$PIN_SRV" ] && echo ", servers on CPU 0, load on CPU 1"); median of $ROUNDS x ${DUR}s"
echo "   wrk -t1 -c$CONNS (h1); h2load -t1 -c$H2C -m$H2M (h2, h2c)"
python3 - "$ROWS" "$PEERS" "$(for k in "${!RES[@]}"; do echo "$k=${RES[$k]}"; done)" <<'PY'
import statistics, sys
rows, peers = sys.argv[1].split(), sys.argv[2].split()
res = {}
for line in sys.argv[3].splitlines():
    k, v = line.split("=", 1)
    cells = [tuple(float(x or 0) for x in c.split(",")) for c in v.split() if c.count(",") == 3]
    if cells:
        res[k] = cells
print("%-8s %-9s %8s %7s %4s %10s %9s %10s %9s" % ("row", "server", "req/s", "p99 ms", "err", "/best-peer", "/ceiling",
                                                    "kreq/cpu-s", "/best-peer"))
for row in rows:
    med = {}
    for s in peers:
        c = res.get(row + "," + s)
        if c:
            med[s] = (statistics.median(x[0] for x in c), statistics.median(x[1] for x in c), sum(max(x[2], 0) for x in c),
                      any(x[2] < 0 for x in c), statistics.median(x[3] for x in c))
    others = [s for s in med if s not in ("cdn-edge", "edge-b", "h2o", "h2o-proxy")]
    best = max(others, key=lambda s: med[s][0]) if others else None
    bestc = max(med[s][4] for s in others) if others else 0
    # the ceiling: h2o serving the files for the hit rows, h2o's bare proxy for the miss path
    ceil = med.get("h2o-proxy" if row.startswith(("miss", "pass")) else "h2o", (0,))[0]
    for s in peers:
        if s not in med:
            print("%-8s %-9s %9s" % (row, s, "-"))
            continue
        rps, p99, err, broken, kc = med[s]
        rb = "%.2f" % (rps / med[best][0]) if best and med[best][0] else "-"
        rc = "%.2f" % (rps / ceil) if ceil else "-"
        print("%-8s %-9s %8.0f %7.2f %4s %10s %9s %10.1f %9s" % (row, s, rps, p99, "FAIL" if broken else int(err), rb, rc,
                                                              kc, "%.2f" % (kc / bestc) if bestc else "-"))
    if best:
        print("%-8s (fastest peer by req/s: %s; by kreq/cpu-s: %s)" % ("", best, max(others, key=lambda s: med[s][4])))
PY
printf 'RSS after the run (MiB, all processes):'
for s in $PEERS; do printf ' %s %s' "$s" "$(rss_mib "${SID[$s]}")"; done
echo
printf 'origin requests while measuring the hit rows (0: every one was a hit):'
for s in $PEERS; do printf ' %s %s' "$s" "${ORIG[$s]:-0}"; done
echo

# --- the disk tier's rows: tests/bench/disk.sh with its own servers and corpus
if [ -n "${DISK_ROWS# }" ]; then
    dp=""
    for p in $PEERS; do case $p in cdn-edge|nginx|varnish|ats|edge-b) [ "$p" = edge-b ] || dp="$dp $p" ;; esac; done
    echo
    echo "== hits from the disk tier (tests/bench/disk.sh)"
    ROWS="${DISK_ROWS# }" PEERS="${dp# }" DUR="$DUR" ROUNDS="$ROUNDS" EDGE_B="$EDGE_B" \
        "$top_srcdir/tests/bench/disk.sh"
fi
