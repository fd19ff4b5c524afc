#!/usr/bin/env bash
# Type=notify (systemd): each daemon says READY=1 once its listeners accept, RELOADING=1 then
# READY=1 around a SIGHUP, STOPPING=1 when a graceful stop begins (sd_notify from libsystemd, to
# the NOTIFY_SOCKET the test binds as systemd would); without NOTIFY_SOCKET nothing is sent.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 9

EDGE=$(bin cdn-edge); DNS=$(bin cdn-dns); LB=$(bin shop-lb)
# run NAME CMD...: the daemon under a notify socket; HUP once it is ready, then TERM; prints what it said
run() {
    local name=$1 sock=$T/$1.sock i; shift
    python3 "$top_srcdir/tests/integration/sd_notify.py" "$sock" 8 >"$T/$name.notify" &
    local lp=$!
    for i in $(seq 1 40); do [ -S "$sock" ] && break; sleep 0.05; done
    NOTIFY_SOCKET=$sock start "$name" "$@"
    wait_for 10 grep -q '^READY=1' "$T/$name.notify"
    local v=pid_$name
    kill -HUP "${!v}"
    wait_for 10 sh -c "grep -c '^READY=1' '$T/$name.notify' | grep -q 2"
    stop "$name"
    sleep 0.3
    kill "$lp" 2>/dev/null; wait "$lp" 2>/dev/null
    grep -v '^STATUS=' "$T/$name.notify" | tr '\n' ' ' | sed 's/ $//'
}
P=$(free_port); A=$(free_port)
out=$(run edge "$EDGE" -a "127.0.0.1:$P" -A "127.0.0.1:$A" -b http://127.0.0.1:1 -w 1 -n t1)
is "$out" "READY=1 RELOADING=1 MONOTONIC_USEC=<n> READY=1 STOPPING=1" "cdn-edge: ready, reloading, ready, stopping"
like "$(cat "$T/edge.notify")" 'STATUS=cdn-edge: 1 worker' "cdn-edge: a status line"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$A/healthz" 2>/dev/null)" 000 "cdn-edge stopped"

P=$(free_port); A=$(free_port)
out=$(run lb "$LB" -a "127.0.0.1:$P" --admin "127.0.0.1:$A" -b http://127.0.0.1:1 --no-health)
is "$out" "READY=1 RELOADING=1 MONOTONIC_USEC=<n> READY=1 STOPPING=1" "shop-lb: ready, reloading, ready, stopping"

P=$(free_port); A=$(free_port)
sed -e "s/127.0.0.1:5399/127.0.0.1:$P/" -e "s/127.0.0.1:5398/127.0.0.1:$A/" -e 's|health: http://[^ ]*|health: ~|' \
    "$top_srcdir/dns/examples/bench.yaml" >"$T/dns.yaml"
out=$(run dns "$DNS" -c "$T/dns.yaml")
is "$out" "READY=1 RELOADING=1 MONOTONIC_USEC=<n> READY=1 STOPPING=1" "cdn-dns: ready, reloading, ready, stopping"

# READY comes after the listener accepts: a client connecting at READY gets an answer
P=$(free_port); A=$(free_port)
python3 "$top_srcdir/tests/integration/sd_notify.py" "$T/e2.sock" 6 >"$T/e2.notify" &
for i in $(seq 1 40); do [ -S "$T/e2.sock" ] && break; sleep 0.05; done
NOTIFY_SOCKET=$T/e2.sock start edge2 "$EDGE" -a "127.0.0.1:$P" -A "127.0.0.1:$A" -b http://127.0.0.1:1 -w 2 -n t2
wait_for 10 grep -q '^READY=1' "$T/e2.notify"; ok $? "cdn-edge with 2 workers: READY"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$A/healthz")" 200 "and its admin listener answers at once"
like "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/x")" '^50[24]$' "and its public one (502/504: no origin)"
stop edge2

# no NOTIFY_SOCKET: runs as before
P=$(free_port); A=$(free_port)
start edge3 "$EDGE" -a "127.0.0.1:$P" -A "127.0.0.1:$A" -b http://127.0.0.1:1 -w 1 -n t3
wait_http "http://127.0.0.1:$A/healthz"; ok $? "without NOTIFY_SOCKET the edge starts as before"
