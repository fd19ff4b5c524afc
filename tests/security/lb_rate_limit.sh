#!/usr/bin/env bash
# The security issue's rate limiting in shop-lb's gateway: per bearer token (else per address),
# GCRA with the edge's 429 fields; shared by several shop-lb instances through Redis (one Lua
# script per request); when Redis is down or slow each instance falls back to its local table and
# says so in its metrics, and goes back to Redis when it returns. Before: shop-lb had no limit
# (rate_limit was an unknown key).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 23

LB=$(bin shop-lb)
[ -x "$LB" ] || bail "shop-lb not built"
OP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"

# lbconf NAME PORT ADMIN [REDIS-URL]
lbconf() {
    local r=""
    [ -n "${4:-}" ] && r=", redis: \"$4\", redis_timeout: 50ms"
    printf '%s\n' "listen: 127.0.0.1:$2" "admin: 127.0.0.1:$3" "health: {enabled: false}" \
        "pools: {app: {backends: [{addr: 127.0.0.1:$OP}]}}" \
        "rate_limit: {rate: 5/s, burst: 5, key: token, path_prefix: /api/, name: api$r}" >"$T/$1.yaml"
}
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
# burst N PORT [CURL-ARGS...]: N requests to /api/ at once; their status codes, one a line
burst() {
    local n=$1 p=$2 i args=(); shift 2
    for i in $(seq 1 "$n"); do args+=(-o /dev/null "http://127.0.0.1:$p/api/item?i=$i"); done
    curl -s --parallel --parallel-max "$n" -w '%{http_code}\n' "$@" "${args[@]}" 2>/dev/null
}
n200() { grep -c '^200$'; }

# 1. one shop-lb, no Redis: the local table
P1=$(free_port); A1=$(free_port)
lbconf local "$P1" "$A1"
"$LB" -t -c "$T/local.yaml" >/dev/null 2>&1; ok $? "-t accepts rate_limit"
printf 'listen: 127.0.0.1:1\npools: {app: {backends: [{addr: 127.0.0.1:2}]}}\nrate_limit: {rate: 5/x}\n' >"$T/bad.yaml"
like "$("$LB" -t -c "$T/bad.yaml" 2>&1)" "bad.yaml:3:[0-9]+: rate '5/x'" "a bad rate is refused at its file:line:col"
start lb1 "$LB" -c "$T/local.yaml"
wait_http "http://127.0.0.1:$A1/healthz" || bail "shop-lb did not start"
codes=$(burst 20 "$P1" -H 'Authorization: Bearer alpha')
a=$(n200 <<<"$codes")
[ "$a" -ge 5 ] && [ "$a" -le 7 ]; ok $? "token alpha: 20 at once, its burst of 5 admitted (+ what 5/s refilled): $a"
is "$(grep -c '^429$' <<<"$codes")" "$((20 - a))" "the others are 429"
h=$(curl -s -D - -H 'Authorization: Bearer alpha' "http://127.0.0.1:$P1/api/one" | tr -d '\r')
like "$h" '^HTTP/1.1 429' "alpha is still refused"
like "$h" '[Rr]etry-[Aa]fter: [1-9][0-9]*' "with Retry-After"
like "$h" '"api";q=5;w=1' "RateLimit-Policy: the bucket of 5, full again in 1 s"
like "$h" '[Rr]ate[Ll]imit: "api";r=0;t=[0-9]+' "RateLimit: nothing left"
b=$(burst 5 "$P1" -H 'Authorization: Bearer beta' | n200)
is "$b" 5 "token beta has its own budget"
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer alpha' "http://127.0.0.1:$P1/other/x")" 200 \
    "paths outside path_prefix are not limited"
is "$(metric "$A1" 'shop_lb_ratelimit_decisions_total{by="local"}')" "$((20 + 1 + 5))" "decisions counted as local"

# 2. two shop-lbs sharing one Redis: one budget for a token, not one each
if ! start_redis redis; then
    for _ in $(seq 12 23); do skip "redis-server cannot start here"; done
    exit 0
fi
P2=$(free_port); A2=$(free_port); P3=$(free_port); A3=$(free_port)
lbconf shared2 "$P2" "$A2" "$REDIS_URL"; lbconf shared3 "$P3" "$A3" "$REDIS_URL"
start lb2 "$LB" -c "$T/shared2.yaml"; start lb3 "$LB" -c "$T/shared3.yaml"
wait_http "http://127.0.0.1:$A2/healthz" && wait_http "http://127.0.0.1:$A3/healthz" || bail "shop-lbs did not start"
wait_for 10 sh -c "curl -s http://127.0.0.1:$A2/metrics | grep -q '^shop_lb_ratelimit_redis_up 1' && curl -s http://127.0.0.1:$A3/metrics | grep -q '^shop_lb_ratelimit_redis_up 1'"
ok $? "both connected to Redis (shop_lb_ratelimit_redis_up 1)"
burst 10 "$P2" -H 'Authorization: Bearer gamma' >"$T/g2" & g=$!
burst 10 "$P3" -H 'Authorization: Bearer gamma' >"$T/g3"
wait $g
both=$(( $(n200 <"$T/g2") + $(n200 <"$T/g3") ))
[ "$both" -ge 5 ] && [ "$both" -le 7 ]; ok $? "token gamma, 10 at once to each instance: $both admitted in all (one shared burst of 5, not 5 each)"
is "$(( $(metric "$A2" 'shop_lb_ratelimit_decisions_total{by="redis"}') + $(metric "$A3" 'shop_lb_ratelimit_decisions_total{by="redis"}') ))" 20 \
    "all 20 decided by Redis"
like "$(redis-cli -p "$REDIS_PORT" --scan --pattern 'shop-lb:rl:*' | head -1)" '^shop-lb:rl:[0-9a-f]{32}$' \
    "the key in Redis is a hash (no token in clear)"
is "$(redis-cli -p "$REDIS_PORT" --scan --pattern '*gamma*' | wc -l)" 0 "the token itself is nowhere in Redis"

# 3. Redis slow (DEBUG SLEEP blocks it for 1.5 s): each request decided locally once 50 ms pass
redis-cli -p "$REDIS_PORT" debug sleep 1.5 >/dev/null &
rs=$!
sleep 0.2
codes=$(burst 3 "$P2" -H 'Authorization: Bearer delta')
wait $rs
is "$(n200 <<<"$codes")" 3 "Redis asleep: requests are still answered (delta's burst, by the local table)"
[ "$(metric "$A2" 'shop_lb_ratelimit_decisions_total{by="local-timeout"}')" -ge 3 ]; ok $? "counted as local-timeout"

# 4. Redis down: the local table decides at once; back when Redis is back
stop redis
codes=$(burst 10 "$P2" -H 'Authorization: Bearer eps')
a=$(n200 <<<"$codes")
[ "$a" -ge 5 ] && [ "$a" -le 7 ] && [ "$(grep -c '^429$' <<<"$codes")" -eq $((10 - a)) ]; ok $? \
    "Redis down: still limited, locally ($a of 10 admitted)"
[ "$(metric "$A2" 'shop_lb_ratelimit_decisions_total{by="local-down"}')" -ge 10 ]; ok $? "counted as local-down"
is "$(metric "$A2" shop_lb_ratelimit_redis_up)" 0 "shop_lb_ratelimit_redis_up 0"
start redis2 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning
wait_for 10 sh -c "curl -s http://127.0.0.1:$A2/metrics | grep -q '^shop_lb_ratelimit_redis_up 1'"
ok $? "it reconnects when Redis is back"
n0=$(metric "$A2" 'shop_lb_ratelimit_decisions_total{by="redis"}')
burst 2 "$P2" -H 'Authorization: Bearer zeta' >/dev/null
is "$(metric "$A2" 'shop_lb_ratelimit_decisions_total{by="redis"}')" "$((n0 + 2))" "and Redis decides again"
