#!/usr/bin/env bash
# The purge bus when Redis is not there (issue 12): with `start: wait` (the default) an edge does
# not listen until it has reached Redis and applied its backlog, and SIGTERM still stops it while
# it waits; with `start: serve` it serves at once and says so (Cache-Status `purge-backlog`, a
# counter, edge_purge_bus_ready 0) until it has caught up; a Redis restarted from its AOF loses no
# purge and the edges reconnect by themselves.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 13

EDGE=$(bin cdn-edge); PURGE=$(bin cdn-purge)
[ -x "$EDGE" ] && [ -x "$PURGE" ] || bail "cdn-edge or cdn-purge not built"
command -v redis-server >/dev/null 2>&1 || { for i in $(seq 1 13); do skip "redis-server is not installed"; done; exit 0; }
OP=$(free_port); RP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
O=http://127.0.0.1:$OP; R=redis://127.0.0.1:$RP
mkdir -p "$T/redis"
redis_up() {
    start redis redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always \
        --dir "$T/redis" --daemonize no --loglevel warning
    wait_for 10 sh -c "redis-cli -p $RP ping 2>/dev/null | grep -q PONG"
}
declare -A PORT ADMIN
edge() {  # NAME START-MODE
    PORT[$1]=${PORT[$1]:-$(free_port)}; ADMIN[$1]=${ADMIN[$1]:-$(free_port)}
    cat > "$T/$1.yaml" <<EOF
name: $1
listen: ["127.0.0.1:${PORT[$1]}"]
admin: "127.0.0.1:${ADMIN[$1]}"
origin: "$O"
dir: "$T/db-$1"
workers: 1
purge_bus: {redis: "$R", start: $2, block: 200ms}
EOF
    start "$1" "$EDGE" -c "$T/$1.yaml"
}
cs() { curl -s -D - -o /dev/null "http://127.0.0.1:${PORT[$1]}$2" | tr -d '\r' | sed -n 's/^[Cc]ache-[Ss]tatus: //p'; }
metric() { curl -s "http://127.0.0.1:${ADMIN[$1]}/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# 1. no Redis, start: wait -> no listener; SIGTERM stops it
edge w wait
sleep 1.5
is "$(code -m 1 "http://127.0.0.1:${ADMIN[w]}/healthz")" 000 "start: wait, Redis unreachable: the edge does not listen"
is "$(code -m 1 "http://127.0.0.1:${PORT[w]}/max60/a")" 000 "(nor its public listener)"
t0=$(date +%s%N); stop w; t1=$(date +%s%N)
ok $([ $(( (t1 - t0) / 1000000 )) -lt 3000 ]; echo $?) "SIGTERM stops it while it waits ($(( (t1 - t0) / 1000000 )) ms)"
like "$(cat "$T/w.log" 2>/dev/null || cat "$T"/w*.log 2>/dev/null)" "cannot reach $R" "and it said why it waited"

# 2. no Redis, start: serve -> serves, and says so
edge s serve
wait_http "http://127.0.0.1:${ADMIN[s]}/healthz" || bail "edge s did not start"
curl -s -o /dev/null "http://127.0.0.1:${PORT[s]}/max60/a"
like "$(cs s /max60/a)" '; hit; purge-backlog$' "start: serve before the backlog: a hit says purge-backlog"
is "$(metric s edge_purge_backlog_hits_total)/$(metric s edge_purge_bus_ready)/$(metric s edge_purge_bus_up)" 1/0/0 \
    "counted; edge_purge_bus_ready 0, edge_purge_bus_up 0"

# 3. Redis comes: both catch up; a waiting edge starts listening
edge w wait
redis_up || bail "redis did not start"
wait_http "http://127.0.0.1:${ADMIN[w]}/healthz"; ok $? "start: wait: it listens once Redis answers and the backlog is applied"
wait_for 10 sh -c "curl -s http://127.0.0.1:${ADMIN[s]}/metrics | grep -q '^edge_purge_bus_ready 1'"; ok $? "start: serve: caught up"
like "$(cs s /max60/a)" '; hit$' "then hits no longer say purge-backlog"

# 4. Redis restarted from its AOF: a purge published while an edge is down is not lost
curl -s -o /dev/null "http://127.0.0.1:${PORT[w]}/max60/b"
stop w
"$PURGE" --redis "$R" url http://x.test/max60/b >/dev/null; ok $? "published while w is down"
stop redis
redis_up || bail "redis did not restart"
edge w wait
wait_http "http://127.0.0.1:${ADMIN[w]}/healthz" || bail "w did not restart"
is "$(metric w 'edge_purge_commands_total{result="applied"}')" 1 "w applied the purge kept in Redis's AOF across its restart"
"$PURGE" --redis "$R" --wait=5 url http://x.test/max60/c >/dev/null; ok $? "and s reconnected by itself: both ack a new purge"
like "$("$PURGE" --redis "$R" status)" 's +0 +0 ' "cdn-purge status: s has no lag"
