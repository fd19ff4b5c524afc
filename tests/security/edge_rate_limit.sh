#!/usr/bin/env bash
# The security issue's rate limiting, in cdn-edge: rate_limit {rate: 20/s, burst: 10} on /api/,
# keyed by X-Api-Key (else the client's address). One client floods /api/ with 300 requests over
# about 3 s: about 10 + 20 per second get through (asserted loosely: 50% to 130% of that, the
# test must not depend on the machine's timing), every other one is 429 with Retry-After and the
# RateLimit-Policy / RateLimit fields; other paths and another API key are not limited; the
# counters agree. Before the limiter, every request reached the origin (and the file's rate_limit
# was an unknown key).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 15

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
cat >"$T/edge.yaml" <<EOF
listen: ["127.0.0.1:$EP"]
admin: 127.0.0.1:$AP
origin: http://127.0.0.1:$OP
workers: 2
rate_limit: {rate: 20/s, burst: 10, key: "header:X-Api-Key", path_prefix: /api/, name: api}
EOF
start edge "$EDGE" -c "$T/edge.yaml"
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
E=http://127.0.0.1:$EP
metric() { curl -s "http://127.0.0.1:$AP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# burst N URL [CURL-ARGS...]: N requests at once; prints their status codes, one a line
burst() {
    local n=$1 u=$2 i args=(); shift 2
    for i in $(seq 1 "$n"); do args+=(-o /dev/null "$u?i=$i"); done
    curl -s --parallel --parallel-max "$n" -w '%{http_code}\n' "$@" "${args[@]}" 2>/dev/null
}

# the flood: 30 rounds of 10 requests at once, 0.07 s apart
fmt='%{http_code} %header{retry-after}|%header{ratelimit-policy}|%header{ratelimit}\n'
t0=$(date +%s.%N)
for r in $(seq 1 30); do
    args=()
    for i in $(seq 1 10); do args+=(-o /dev/null "$E/api/item?r=$r&i=$i"); done
    curl -s --parallel --parallel-max 10 -w "$fmt" "${args[@]}" >>"$T/flood.txt" 2>/dev/null
    sleep 0.07
done
t1=$(date +%s.%N)
n=$(wc -l <"$T/flood.txt")
ok200=$(grep -c '^200 ' "$T/flood.txt")
n429=$(grep -c '^429 ' "$T/flood.txt")
read -r lo hi want <<<"$(awk -v a="$t0" -v b="$t1" 'BEGIN { w = 10 + 20 * (b - a); printf "%d %d %.1f", w * 0.5, w * 1.3 + 1, w }')"
diag "flood: $n requests in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s: $ok200 admitted (expected about $want), $n429 refused"
is "$n" 300 "the flood sent 300 requests"
if [ "$ok200" -ge "$lo" ] && [ "$ok200" -le "$hi" ]; then pass "admitted $ok200: within 50%..130% of 10 + 20/s x elapsed ($lo..$hi)"
else fail "admitted $ok200: within 50%..130% of 10 + 20/s x elapsed ($lo..$hi)"; fi
[ "$n429" -gt 0 ] && [ "$((ok200 + n429))" -eq 300 ]; ok $? "every other request is 429 ($n429)"
is "$(curl -s "http://127.0.0.1:$OP/_count?p=/api/item")" "$ok200" "only the admitted ones reached the origin"
good=$(grep -cE '^429 [1-9][0-9]*\|"api";q=10;w=1\|"api";r=0;t=[1-9][0-9]*$' "$T/flood.txt")
[ "$n429" -gt 0 ] && [ "$good" -eq "$n429" ]; ok $? \
    "each 429 has Retry-After (seconds), RateLimit-Policy \"api\";q=10;w=1 and RateLimit \"api\";r=0;t=N"

# one refusal seen whole: the client keeps asking, on one keep-alive connection (no process per
# request: a loaded machine must not slow the client below the rate), until it gets one
urls=(); for i in $(seq 1 60); do urls+=("$E/api/item?seq=$i"); done
curl -s -D - "${urls[@]}" | tr -d '\r' >"$T/seq.txt"
seen=$(grep -c '^HTTP/1.1 429' "$T/seq.txt")
h=$(awk '/^HTTP\/1.1 429/ {p = 1} p && /^HTTP\/1.1 200/ {exit} p' "$T/seq.txt")
like "$h" '^HTTP/1.1 429 Too Many Requests' "the client still flooding is refused"
like "$h" '^[Rr]etry-[Aa]fter: [1-9][0-9]*$' "Retry-After is a whole number of seconds, at least 1"
like "$h" 'too many requests: retry in [0-9]+ s' "with a short text body"

# other paths of the same client, and another API key on /api/, are not limited
is "$(burst 20 "$E/other/x" | sort | uniq -c | xargs)" "20 200" "20 requests to /other/ at once: all 200"
is "$(burst 10 "$E/api/k" -H 'X-Api-Key: second' | sort | uniq -c | xargs)" "10 200" \
    "another X-Api-Key has its own budget: its burst of 10 at once admitted"
codes=$(burst 20 "$E/api/k" -H 'X-Api-Key: second')
n2=$(grep -c '^429' <<<"$codes")
[ "$n2" -gt 0 ]; ok $? "and is limited in its turn (20 more at once: $n2 refused)"

# the counters
limited=$(metric edge_ratelimit_limited_total)
like "$limited" '^[0-9]+$' "edge_ratelimit_limited_total is exported"
is "$limited" "$((n429 + seen + n2))" "edge_ratelimit_limited_total counts every 429"
keys=$(metric edge_ratelimit_keys)
[ "${keys:-0}" -ge 2 ]; ok $? "edge_ratelimit_keys ($keys) holds the flooding address and the second key"

# a bad limit is an error at its place in the file
printf 'listen: ["127.0.0.1:%s"]\norigin: http://127.0.0.1:%s\nrate_limit: {rate: 20/x}\n' "$EP" "$OP" >"$T/bad.yaml"
like "$( ("$EDGE" -t -c "$T/bad.yaml" 2>&1; echo "exit $?") | tr "\n" " ")" "bad.yaml:3:[0-9]+: rate '20/x': expected N/s.*exit 1" \
    "-t: rate: 20/x is refused with file:line:col"
