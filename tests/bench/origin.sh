#!/usr/bin/env bash
# tests/bench/origin.sh - shop-lb versus HAProxy and nginx in front of the same two shop-apps, same load
# (h2load over HTTP/1.1, bounded in requests and time): req/s and server CPU time per request, the
# median of ROUNDS runs, for 1 and 2 worker threads per proxy.
#
#   tests/bench/origin.sh [BUILDDIR]          (default: $top_builddir, else the current directory)
#   N=20000 C=20 ROUNDS=3 THREADS="1 2" tests/bench/origin.sh
#   LB_B=/path/to/other/shop-lb tests/bench/origin.sh     (adds that binary as "shop-lb-b": A/B a change)
#   RAW=1 ...                                             (prints every run as it is measured)
#   PEERS="shop-lb shop-lb-b haproxy" ...                 (only these rows: shorter A/B runs)
#   PEERS="shop-lb haproxy haproxy-fw" ...                (haproxy-fw, only when named: HAProxy doing the header
#                                                          work shop-lb does: X-Forwarded-For/-Proto, Via both
#                                                          ways, X-Request-Id to the app and back, X-Backend)
#   QUIET=1 ...                                           (before each run, wait up to 60 s for half a second
#                                                          with the CPUs 90% idle: a machine shared with others)
#
# Same number of worker threads for each proxy: shop-lb --threads T, HAProxy nbthread T, nginx
# worker_processes T. With T=1 the proxy under test runs on CPU 0 and h2load and the apps on CPU 1
# (taskset); with T>1 nothing is pinned. "cpu us/req" is the proxy's CPU time (user+system, every
# thread and process of it, from /proc) divided by the requests: what one request costs it. On a
# shared machine it moves much less than req/s, which depends on what else runs.
# Needs h2load (nghttp2-client); haproxy and nginx-light are installed when missing (as root, with
# apt-get), else those rows are skipped. Everything listens on 127.0.0.1 and is stopped at exit.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-${top_builddir:-.}}" && pwd)
top_srcdir=$src top_builddir=$build
. "$src/tests/lib.sh"
N=${N:-20000}
C=${C:-20}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1 2}
PATHS=${PATHS:-/p/42 /img/42/medium.png}
APP=$build/origin/shop-app
LB=$build/origin/shop-lb
LB_B=${LB_B:-}
[ -x "$APP" ] && [ -x "$LB" ] || { echo "build shop-app and shop-lb first (make)"; exit 1; }
command -v h2load >/dev/null || { echo "h2load is missing: apt-get install nghttp2-client"; exit 1; }
if { ! command -v haproxy || ! command -v nginx; } >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends haproxy nginx-light >/dev/null 2>&1 ||
        echo "(could not install haproxy/nginx-light: their rows are skipped)"
fi
PIN0="" PIN1=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then PIN0="taskset -c 0" PIN1="taskset -c 1"; fi
HZ=$(getconf CLK_TCK)

"$APP" --generate 10000 --seed 1 --db "$T/cat.db" >/dev/null 2>&1 || { echo "catalog failed"; exit 1; }
a1=$(free_port); a2=$(free_port)
start app1 $PIN1 "$APP" -a 127.0.0.1:$a1 --db "$T/cat.db"
start app2 $PIN1 "$APP" -a 127.0.0.1:$a2 --db "$T/cat.db"
wait_http http://127.0.0.1:$a1/healthz && wait_http http://127.0.0.1:$a2/healthz || { echo "apps did not start"; exit 1; }
for p in $a1 $a2; do curl -s -o /dev/null http://127.0.0.1:$p/img/42/medium.png; done  # rendered once

declare -A url pid
peers=(shop-lb)
[ -n "$LB_B" ] && peers+=(shop-lb-b)
command -v haproxy >/dev/null && peers+=(haproxy)
command -v haproxy >/dev/null && [[ " ${PEERS:-} " == *" haproxy-fw "* ]] && peers+=(haproxy-fw)
command -v nginx >/dev/null && peers+=(nginx)
peers+=(direct)
if [ -n "${PEERS:-}" ]; then  # keep only the rows asked for, in their usual order
    keep=()
    for v in "${peers[@]}"; do [[ " $PEERS " == *" $v "* ]] && keep+=("$v"); done
    peers=("${keep[@]}")
fi

start_peers() {  # start_peers THREADS PIN
    local t=$1 pin=$2 l h n
    l=$(free_port)
    start shoplb-$t $pin "$LB" --threads "$t" -a 127.0.0.1:$l -b 127.0.0.1:$a1 -b 127.0.0.1:$a2 --slow-start 0
    wait_for 10 curl -sf -o /dev/null http://127.0.0.1:$l/healthz && url[shop-lb]=http://127.0.0.1:$l pid[shop-lb]=$!
    if [ -n "$LB_B" ]; then
        l=$(free_port)
        start shoplbb-$t $pin "$LB_B" --threads "$t" -a 127.0.0.1:$l -b 127.0.0.1:$a1 -b 127.0.0.1:$a2 --slow-start 0
        wait_for 10 curl -sf -o /dev/null http://127.0.0.1:$l/healthz && url[shop-lb-b]=http://127.0.0.1:$l pid[shop-lb-b]=$!
    fi
    if command -v haproxy >/dev/null; then
        h=$(free_port)
        cat >"$T/haproxy-$t.cfg" <<EOF
global
    maxconn 4096
    nbthread $t
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend fe
    bind 127.0.0.1:$h
    default_backend apps
backend apps
    balance roundrobin
    option httpchk GET /healthz
    http-reuse always
    server a1 127.0.0.1:$a1 check inter 1s
    server a2 127.0.0.1:$a2 check inter 1s
EOF
        start haproxy-$t $pin haproxy -f "$T/haproxy-$t.cfg" -db
        wait_for 10 curl -sf -o /dev/null http://127.0.0.1:$h/healthz && url[haproxy]=http://127.0.0.1:$h pid[haproxy]=$!
        if [[ " ${peers[*]} " == *" haproxy-fw "* ]]; then
            h=$(free_port)
            # the same, plus the fields shop-lb adds (docs/ORIGIN.md, "Headers"): equal work per request
            awk -v bind="    bind 127.0.0.1:$h" '/^    bind /{print bind; while ((getline l < "/dev/stdin") > 0) print l; next} {print}' \
                "$T/haproxy-$t.cfg" >"$T/haproxy-fw-$t.cfg" <<'EOF2'
    option forwardfor
    unique-id-format %{+X}o\ %ci%cp%fi%fp%Ts%rt%pid
    unique-id-header X-Request-Id
    http-request set-header X-Forwarded-Proto http
    http-request add-header Via "1.1 shop-lb"
    http-response add-header Via "1.1 shop-lb"
    http-response set-header X-Request-Id %[unique-id]
    http-response set-header X-Backend %s
EOF2
            start haproxyfw-$t $pin haproxy -f "$T/haproxy-fw-$t.cfg" -db
            wait_for 10 curl -sf -o /dev/null http://127.0.0.1:$h/healthz && url[haproxy-fw]=http://127.0.0.1:$h pid[haproxy-fw]=$!
        fi
    fi
    if command -v nginx >/dev/null; then
        n=$(free_port)
        mkdir -p "$T/nginx-$t"
        cat >"$T/nginx-$t/nginx.conf" <<EOF
daemon off;
worker_processes $t;
pid $T/nginx-$t/nginx.pid;
error_log $T/nginx-$t/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/nginx-$t/body;
    proxy_temp_path $T/nginx-$t/proxy;
    fastcgi_temp_path $T/nginx-$t/fcgi;
    uwsgi_temp_path $T/nginx-$t/uwsgi;
    scgi_temp_path $T/nginx-$t/scgi;
    upstream apps { server 127.0.0.1:$a1; server 127.0.0.1:$a2; keepalive 64; }
    server {
        listen 127.0.0.1:$n;
        location / { proxy_pass http://apps; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
        start nginx-$t $pin nginx -c "$T/nginx-$t/nginx.conf" -p "$T/nginx-$t"
        wait_for 10 curl -sf -o /dev/null http://127.0.0.1:$n/healthz && url[nginx]=http://127.0.0.1:$n pid[nginx]=$!
    fi
    url[direct]=http://127.0.0.1:$a1 pid[direct]=$pid_app1
}
stop_peers() {  # stop_peers THREADS
    local s
    for s in shoplb shoplbb haproxy haproxyfw nginx; do stop "$s-$1" 2>/dev/null; done
    for s in shop-lb shop-lb-b haproxy haproxy-fw nginx; do unset "url[$s]"; done
}
# CPU ticks of every process in the session that PID leads (all their threads included)
sess_ticks() {
    local t=0 p
    for p in $(ps -o pid= -s "$1"); do
        t=$((t + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13; exit} END {if (!NR) print 0}')))
    done
    echo $t
}
wait_quiet() {
    local k a b
    for k in $(seq 120); do
        a=($(awk '$1=="cpu"{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)); sleep 0.5
        b=($(awk '$1=="cpu"{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat))
        [ $(( (b[0] - a[0]) * 10 )) -le $(( b[0] - a[0] + b[1] - a[1] )) ] && return 0
    done
}
run() {  # run VIA URL PIN -> "req/s cpu_us_per_req failed"
    local out t0 t1 rps failed
    [ "${QUIET:-0}" = 1 ] && wait_quiet
    t0=$(sess_ticks "${pid[$1]}")
    out=$(timeout 120 $3 h2load --h1 -n "$N" -c "$C" -t 1 "$2" 2>&1)
    t1=$(sess_ticks "${pid[$1]}")
    rps=$(echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
    failed=$(echo "$out" | sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p')
    echo "${rps:-0} $(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$N" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }') ${failed:--1}"
}

RES=""
for t in $THREADS; do
    pin=""; cpin=""
    [ "$t" = 1 ] && pin=$PIN0 cpin=$PIN1
    start_peers "$t" "$pin"
    for via in "${peers[@]}"; do  # warm-up: connections to the apps, pools
        [ -n "${url[$via]:-}" ] && timeout 60 $cpin h2load --h1 -n 2000 -c "$C" -t 1 "${url[$via]}/p/1" >/dev/null 2>&1
    done
    order=("${peers[@]}")
    for r in $(seq 1 "$ROUNDS"); do
        for path in $PATHS; do
            for via in "${order[@]}"; do
                [ -n "${url[$via]:-}" ] || continue
                res=$(run "$via" "${url[$via]}$path" "$cpin")
                [ "${RAW:-0}" = 1 ] && echo "threads=$t $path $via $res"
                RES+="$t $path $via $res"$'\n'
            done
        done
        order=($(printf '%s\n' "${order[@]}" | tac))  # alternate the order: the machine is noisy
    done
    stop_peers "$t"
done

echo "== h2load --h1 -n $N -c $C -t 1; median of $ROUNDS runs$([ -n "$PIN0" ] && echo "; 1 thread: proxy on CPU 0, h2load and apps on CPU 1")"
python3 - "$RES" <<'PY'
import statistics, sys
rows = {}
for line in sys.argv[1].splitlines():
    t, path, via, rps, cpu, failed = line.split()
    rows.setdefault((t, path), {}).setdefault(via, []).append((float(rps), float(cpu), int(failed)))
print("%-7s %-20s %-10s %9s %12s %7s %10s %10s" % ("threads", "path", "via", "req/s", "cpu us/req", "failed",
                                                  "req/s/lb", "cpu/lb"))
for (t, path), vias in rows.items():
    med = {v: (statistics.median(x[0] for x in c), statistics.median(x[1] for x in c), sum(x[2] for x in c))
           for v, c in vias.items()}
    base = med.get("shop-lb")
    for v, (rps, cpu, failed) in med.items():
        print("%-7s %-20s %-10s %9.0f %12.1f %7d %10s %10s" % (t, path, v, rps, cpu, failed,
              "%.2f" % (rps / base[0]) if base and base[0] else "-",
              "%.2f" % (cpu / base[1]) if base and base[1] else "-"))
PY
