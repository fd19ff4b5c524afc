#!/usr/bin/env bash
# tests/bench/ratelimit.sh - rate limiting beside nginx's limit_req.
#
# 1. Under 10x overload: one client (10 connections, h2load --rps) sends 10 x RATE requests a
#    second for DUR seconds to a limit of RATE/s (burst BURST, per client address) in front of one
#    origin (nginx serving a 1 KiB file): cdn-edge (rate_limit), shop-lb (rate_limit, local table),
#    shop-lb (rate_limit shared through a private redis-server) and nginx (limit_req zone
#    rate=RATEr/s burst=BURST nodelay). Prints the admitted rate (2xx per second) and its ratio to
#    the configured RATE, and the same for nginx.
# 2. The edge's hit path with the limiter consulted on every request (a limit no client reaches)
#    against none: wrk on a cached 1 KiB object, medians of ROUNDS rounds in alternating order.
#
#   tests/bench/ratelimit.sh        (or: make bench BENCH=ratelimit)
#   RATE=200 DUR=10 ROUNDS=3 tests/bench/ratelimit.sh
# Bounded: about 4 x DUR + 2 x ROUNDS x HDUR seconds plus a few of set-up.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
RATE=${RATE:-100}
BURST=${BURST:-10}
DUR=${DUR:-10}
HDUR=${HDUR:-5}
ROUNDS=${ROUNDS:-3}
EDGE=$top_builddir/edge/cdn-edge
LB=$top_builddir/origin/shop-lb
[ -x "$EDGE" ] && [ -x "$LB" ] || { echo "build first (make)"; exit 1; }
need=""
for p in nginx:nginx-light wrk:wrk h2load:nghttp2-client redis-server:redis-server; do
    command -v "${p%%:*}" >/dev/null 2>&1 || need="$need ${p#*:}"
done
if [ -n "$need" ]; then
    [ "$(id -u)" = 0 ] || { echo "need:$need (run as root to install them)"; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null || exit 1
fi
for s in nginx redis-server; do systemctl stop "$s" >/dev/null 2>&1 || true; done
. "$top_srcdir/tests/lib.sh"
chmod 755 "$T"
PIN_SRV="" PIN_CLI=""
if [ "$(nproc)" -ge 2 ]; then PIN_SRV="taskset -c 0"; PIN_CLI="taskset -c 1"; fi

mkdir -p "$T/www/api" "$T/origin" "$T/ngx"
head -c 1024 /dev/urandom >"$T/www/api/item"
cp "$T/www/api/item" "$T/www/hit"
nginx_top() {
    printf '%s\n' "daemon off;" "worker_processes 1;" "pid $1/nginx.pid;" "error_log $1/error.log;" \
        "events { worker_connections 8192; }" "http {" "access_log off;" "keepalive_requests 1000000;" \
        "client_body_temp_path $1/b; proxy_temp_path $1/p; fastcgi_temp_path $1/f; uwsgi_temp_path $1/u; scgi_temp_path $1/s;"
}
PO=$(free_port)
{ nginx_top "$T/origin"
  printf '%s\n' "server { listen 127.0.0.1:$PO; root $T/www; add_header Cache-Control \"public, max-age=86400\"; }" "}"
} >"$T/origin/nginx.conf"
start origin $PIN_CLI nginx -c "$T/origin/nginx.conf" -p "$T/origin"
wait_http "http://127.0.0.1:$PO/hit" || bail "origin did not start"

# the limited servers
PN=$(free_port)
{ nginx_top "$T/ngx"
  printf '%s\n' "limit_req_zone \$binary_remote_addr zone=api:10m rate=${RATE}r/s;" "limit_req_status 429;" \
      "upstream origin { server 127.0.0.1:$PO; keepalive 64; }" \
      "server { listen 127.0.0.1:$PN;" \
      "  location /api/ { limit_req zone=api burst=$BURST nodelay; proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\"; }" \
      "}" "}"
} >"$T/ngx/nginx.conf"
start nginx $PIN_SRV nginx -c "$T/ngx/nginx.conf" -p "$T/ngx"
PE=$(free_port); AE=$(free_port)
printf '%s\n' "listen: [\"127.0.0.1:$PE\"]" "admin: 127.0.0.1:$AE" "origin: http://127.0.0.1:$PO" "workers: 1" \
    "log_level: warn" "rate_limit: {rate: $RATE/s, burst: $BURST, key: client, path_prefix: /api/}" >"$T/edge.yaml"
start edge $PIN_SRV "$EDGE" -c "$T/edge.yaml"
start_redis redis || bail "redis-server did not start"
lbconf() {  # lbconf NAME PORT [REDIS]
    local r=""
    [ -n "${3:-}" ] && r=", redis: \"$3\""
    printf '%s\n' "listen: 127.0.0.1:$2" "health: {enabled: false}" "log_level: warn" \
        "pools: {app: {backends: [{addr: 127.0.0.1:$PO}]}}" \
        "rate_limit: {rate: $RATE/s, burst: $BURST, key: client, path_prefix: /api/$r}" >"$T/$1.yaml"
}
PL=$(free_port); PR=$(free_port)
lbconf lb "$PL"; lbconf lbr "$PR" "$REDIS_URL"
start lb $PIN_SRV "$LB" -c "$T/lb.yaml"
start lbr $PIN_SRV "$LB" -c "$T/lbr.yaml"
for p in $PN $PE $PL $PR; do wait_port 127.0.0.1 "$p" || bail "a server on $p did not start"; done
sleep 1.5 # shop-lb's Redis connection

echo "== 10x overload: $((10 * RATE)) req/s for $DUR s against $RATE/s (burst $BURST), one client address"
printf '%-22s %10s %10s %12s %8s\n' server sent admitted "admitted/s" "/rate"
overload() {  # overload NAME PORT
    local out sent ok
    out=$($PIN_CLI h2load --h1 -c 10 --rps "$RATE" -D "$DUR" "http://127.0.0.1:$2/api/item" 2>/dev/null)
    sent=$(awk '/^requests:/ {print $6}' <<<"$out")
    ok=$(awk '/^status codes:/ {gsub(",", ""); print $3}' <<<"$out")
    awk -v n="$1" -v s="$sent" -v a="$ok" -v d="$DUR" -v r="$RATE" \
        'BEGIN { printf "%-22s %10d %10d %12.1f %8.3f\n", n, s, a, a / d, a / d / r }'
}
overload "nginx limit_req" "$PN"
overload "cdn-edge" "$PE"
overload "shop-lb (local)" "$PL"
overload "shop-lb (redis)" "$PR"
echo "(admitted/s includes the burst: at most ($BURST + $RATE x $DUR) / $DUR = $(awk -v b="$BURST" -v r="$RATE" -v d="$DUR" 'BEGIN { printf "%.1f", (b + r * d) / d }'))"

echo "== cdn-edge hit path: the limiter consulted on every request, or not there (wrk, $HDUR s, medians of $ROUNDS)"
PH=$(free_port); AH=$(free_port); PH0=$(free_port); AH0=$(free_port)
printf '%s\n' "listen: [\"127.0.0.1:$PH\"]" "admin: 127.0.0.1:$AH" "origin: http://127.0.0.1:$PO" "workers: 1" \
    "log_level: warn" "rate_limit: {rate: 1000000000/s, key: client}" >"$T/hit-on.yaml"
printf '%s\n' "listen: [\"127.0.0.1:$PH0\"]" "admin: 127.0.0.1:$AH0" "origin: http://127.0.0.1:$PO" "workers: 1" \
    "log_level: warn" >"$T/hit-off.yaml"
start hon $PIN_SRV "$EDGE" -c "$T/hit-on.yaml"
start hoff $PIN_SRV "$EDGE" -c "$T/hit-off.yaml"
wait_port 127.0.0.1 "$PH" && wait_port 127.0.0.1 "$PH0" || bail "edges did not start"
curl -s -o /dev/null "http://127.0.0.1:$PH/hit"; curl -s -o /dev/null "http://127.0.0.1:$PH0/hit"
# ticks of CPU the edge's threads used (utime + stime), to cost a request where req/s is noisy
ticks() { local t=0 f; for f in /proc/"$1"/task/*/stat; do t=$((t + $(sed 's/.*) //' "$f" | awk '{print $12 + $13}'))); done; echo $t; }
# one round -> "REQ_PER_S US_CPU_PER_REQUEST"
round() {
    local t0 t1 r
    t0=$(ticks "$2")
    r=$($PIN_CLI wrk -t1 -c50 -d"${HDUR}s" "http://127.0.0.1:$1/hit" 2>/dev/null | awk '/^Requests\/sec/ {print $2}')
    t1=$(ticks "$2")
    awk -v r="$r" -v d="$HDUR" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f %.2f", r, t / hz / (r * d) * 1e6 }'
}
on=() off=() con=() coff=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then a=$(round "$PH" "$pid_hon"); b=$(round "$PH0" "$pid_hoff")
    else b=$(round "$PH0" "$pid_hoff"); a=$(round "$PH" "$pid_hon"); fi
    on+=("${a% *}"); con+=("${a#* }"); off+=("${b% *}"); coff+=("${b#* }")
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
mon=$(med "${on[@]}"); moff=$(med "${off[@]}"); mcon=$(med "${con[@]}"); mcoff=$(med "${coff[@]}")
printf '%-14s %10s req/s %8s us CPU/req   rounds: %s\n' "limiter on" "$mon" "$mcon" "${on[*]}"
printf '%-14s %10s req/s %8s us CPU/req   rounds: %s\n' "no limiter" "$moff" "$mcoff" "${off[*]}"
awk -v a="$mon" -v b="$moff" -v c="$mcon" -v d="$mcoff" 'BEGIN { printf "on / off: %.3f in req/s, %.3f in CPU per request\n", a / b, c / d }'
