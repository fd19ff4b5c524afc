#!/bin/bash
# tests/bench/httpc.sh - the httpc benchmark: cdn_httpc (libcurl multi-socket on the
# h2o loop; and its HTTP/1.1 engine, "httpc-h1") beside h2o's own upstream client, on one local origin, one thread, N small objects
# with C in flight; then both behind an h2o server driven by h2load (h2o_proxy_register_reverse_proxy
# vs a cdn_httpc handler). Prints times, req/s, the ratios, and the loop's largest heartbeat gap.
#
#   tests/bench/httpc.sh            (or: make bench BENCH=httpc)
#   N=10000 C=64 ROUNDS=3 tests/bench/httpc.sh
# The origin is nginx when installed, else httpc_bench's own tiny h2o origin.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
. "$top_srcdir/tests/lib.sh"
N=${N:-1000}
C=${C:-64}
ROUNDS=${ROUNDS:-3}

make -s -C "$top_builddir" tests/bench/httpc_bench >/dev/null || { echo "cannot build httpc_bench"; exit 1; }
B="$top_builddir/tests/bench/httpc_bench"

oport=$(free_port)
if command -v nginx >/dev/null 2>&1; then
    mkdir -p "$T/nginx"
    body=$(head -c 200 /dev/zero | tr '\0' x)
    cat >"$T/nginx/nginx.conf" <<EOF
daemon off; worker_processes 1; pid $T/nginx/nginx.pid; error_log $T/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off; client_body_temp_path $T/nginx; proxy_temp_path $T/nginx; fastcgi_temp_path $T/nginx;
  uwsgi_temp_path $T/nginx; scgi_temp_path $T/nginx; keepalive_requests 100000;
  server { listen 127.0.0.1:$oport; location / { return 200 "$body"; } }
}
EOF
    start origin nginx -c "$T/nginx/nginx.conf" -p "$T/nginx"
    origin_kind=nginx
else
    start origin "$B" origin "$oport"
    origin_kind="h2o (httpc_bench origin)"
fi
wait_port 127.0.0.1 "$oport" || bail "origin did not start"
echo "origin: $origin_kind on 127.0.0.1:$oport; $N objects, $C in flight, $ROUNDS rounds"

ms_of() { sed -n 's/.* ms=\([0-9]*\).*/\1/p'; }
for r in $(seq 1 "$ROUNDS"); do
    a=$("$B" httpc "127.0.0.1:$oport" "$N" "$C") || { echo "httpc run failed: $a"; exit 1; }
    e=$("$B" httpc-h1 "127.0.0.1:$oport" "$N" "$C") || { echo "httpc-h1 run failed: $e"; exit 1; }
    b=$("$B" h2o "127.0.0.1:$oport" "$N" "$C") || { echo "h2o run failed: $b"; exit 1; }
    echo "  round $r: $a"
    echo "  round $r: $e"
    echo "  round $r: $b"
    am=$(echo "$a" | ms_of); em=$(echo "$e" | ms_of); bm=$(echo "$b" | ms_of)
    awk -v a="$am" -v e="$em" -v b="$bm" -v r="$r" 'BEGIN { if (b > 0) printf "  round %s: httpc/h2o time ratio %.2f, httpc-h1/h2o %.2f\n", r, a / b, e / b }'
done

if command -v h2load >/dev/null 2>&1; then
    gport=$(free_port)
    start gateway "$B" gateway "$gport" "127.0.0.1:$oport"
    wait_port 127.0.0.1 "$gport" || bail "gateway did not start"
    echo "behind an h2o server (h2load --h1 -n $N -c $C):"
    for r in $(seq 1 "$ROUNDS"); do
        p=$(h2load --h1 -n "$N" -c "$C" "http://127.0.0.1:$gport/proxy/obj/1" 2>&1)
        h=$(h2load --h1 -n "$N" -c "$C" "http://127.0.0.1:$gport/httpc/obj/1" 2>&1)
        g=$(h2load --h1 -n "$N" -c "$C" "http://127.0.0.1:$gport/h1/obj/1" 2>&1)
        grps=$(echo "$g" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
        gok=$(echo "$g" | sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p')
        prps=$(echo "$p" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
        hrps=$(echo "$h" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
        pok=$(echo "$p" | sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p')
        hok=$(echo "$h" | sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p')
        awk -v p="$prps" -v h="$hrps" -v po="$pok" -v ho="$hok" -v g="$grps" -v go="$gok" -v r="$r" 'BEGIN {
            printf "  round %s: h2o proxy %.0f req/s (%s 2xx), cdn_httpc handler %.0f req/s (%s 2xx), h1 engine handler %.0f req/s (%s 2xx), proxy/httpc %.2f, proxy/h1 %.2f\n",
                r, p, po, h, ho, g, go, (h > 0 ? p / h : 0), (g > 0 ? p / g : 0) }'
    done
    stop gateway
else
    echo "h2load not installed: gateway comparison skipped"
fi
stop origin
exit 0
