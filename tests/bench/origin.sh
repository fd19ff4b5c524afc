#!/usr/bin/env bash
# tests/bench/origin.sh - shop-lb versus HAProxy and nginx in front of the same two shop-apps, same load
# (h2load over HTTP/1.1, bounded in requests and time), printed as req/s and ratios to shop-lb.
#
#   tests/bench/origin.sh [BUILDDIR]          (default: $top_builddir, else the current directory)
#   N=20000 C=20 tests/bench/origin.sh        (requests and connections per run)
#
# Needs h2load (nghttp2-client); haproxy and nginx-light are installed when missing (as root, with
# apt-get), else those rows are skipped.
# Everything listens on 127.0.0.1 and is stopped at exit. Numbers vary 2-3x between runs on a
# shared machine: compare the ratios of one run.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-${top_builddir:-.}}" && pwd)
top_srcdir=$src top_builddir=$build
. "$src/tests/lib.sh"
N=${N:-20000}
C=${C:-20}
APP=$build/origin/shop-app
LB=$build/origin/shop-lb
[ -x "$APP" ] && [ -x "$LB" ] || { echo "build shop-app and shop-lb first (make)"; exit 1; }
command -v h2load >/dev/null || { echo "h2load is missing: apt-get install nghttp2-client"; exit 1; }
if { ! command -v haproxy || ! command -v nginx; } >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends haproxy nginx-light >/dev/null 2>&1 ||
        echo "(could not install haproxy/nginx-light: their rows are skipped)"
fi

"$APP" --generate 10000 --seed 1 --db "$T/cat.db" >/dev/null 2>&1 || { echo "catalog failed"; exit 1; }
a1=$(free_port); a2=$(free_port)
start app1 "$APP" -a 127.0.0.1:$a1 --db "$T/cat.db"
start app2 "$APP" -a 127.0.0.1:$a2 --db "$T/cat.db"
wait_http http://127.0.0.1:$a1/healthz && wait_http http://127.0.0.1:$a2/healthz || { echo "apps did not start"; exit 1; }
for p in $a1 $a2; do curl -s -o /dev/null http://127.0.0.1:$p/img/42/medium.png; done  # rendered once

declare -A url
url[direct]=http://127.0.0.1:$a1
l=$(free_port)
start shoplb "$LB" -a 127.0.0.1:$l -b 127.0.0.1:$a1 -b 127.0.0.1:$a2 --slow-start 0
wait_for 10 curl -sf -o /dev/null http://127.0.0.1:$l/healthz && url[shop-lb]=http://127.0.0.1:$l

if command -v haproxy >/dev/null; then
    h=$(free_port)
    cat >"$T/haproxy.cfg" <<EOF
global
    maxconn 4096
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
    start haproxy haproxy -f "$T/haproxy.cfg" -db
    wait_for 10 curl -sf -o /dev/null http://127.0.0.1:$h/healthz && url[haproxy]=http://127.0.0.1:$h
fi
if command -v nginx >/dev/null; then
    n=$(free_port)
    mkdir -p "$T/nginx"
    cat >"$T/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    upstream apps { server 127.0.0.1:$a1; server 127.0.0.1:$a2; keepalive 64; }
    server {
        listen 127.0.0.1:$n;
        location / { proxy_pass http://apps; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
    start nginx nginx -c "$T/nginx/nginx.conf" -p "$T/nginx"
    wait_for 10 curl -sf -o /dev/null http://127.0.0.1:$n/healthz && url[nginx]=http://127.0.0.1:$n
fi

run() {  # run URL -> "req/s failed"
    local out
    out=$(timeout 120 h2load --h1 -n "$N" -c "$C" -t 1 "$1" 2>&1)
    echo "$(echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p') $(echo "$out" | sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p')"
}
printf '%-22s %-10s %12s %8s %10s\n' path via req/s failed vs-shop-lb
for path in /p/42 /img/42/medium.png; do
    base=""
    for via in shop-lb direct haproxy nginx; do
        [ -n "${url[$via]:-}" ] || { printf '%-22s %-10s %12s\n' "$path" "$via" "(not installed)"; continue; }
        read -r rps failed <<<"$(run "${url[$via]}$path")"
        [ "$via" = shop-lb ] && base=$rps
        ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        printf '%-22s %-10s %12s %8s %10s\n' "$path" "$via" "$rps" "$failed" "$ratio"
    done
done
