#!/usr/bin/env bash
# shop-app's POSTs honour Idempotency-Key (IETF httpapi draft "The Idempotency-Key HTTP Header
# Field"): a client that retries a POST with the same key gets the first answer again and the
# cart is changed once; the same key with another body is 422; a key whose first request is still
# being served is 409. Keys are scoped to the client (sid cookie, bearer token): another client's
# key never hands out the first client's answer (its Set-Cookie, its cart).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 19
APP=$(bin shop-app)
[ -x "$APP" ] || bail "shop-app is not built"
export XDG_CACHE_HOME="$T/cache"

"$APP" --generate 100 --seed 3 --db "$T/a.db" >"$T/gen.log" 2>&1 || bail "cannot generate a catalog"
p=$(free_port)
start app "$APP" -a 127.0.0.1:$p --db "$T/a.db" --name app --threads 2
wait_http http://127.0.0.1:$p/healthz || bail "shop-app did not start"
U=http://127.0.0.1:$p
S1=0123456789abcdef0123456789abcdef
S2=fedcba9876543210fedcba9876543210
# post NAME ARGS...: headers to $T/NAME.h, body to $T/NAME.b; prints the status
post() { local n=$1; shift; curl -s --max-time 10 -D "$T/$n.h" -o "$T/$n.b" -w '%{http_code}' -X POST "$@"; }
# the parts of an answer that matter: status line, Set-Cookie, Content-Type, body
answer() { { tr -d '\r' <"$T/$1.h" | grep -iE '^(HTTP/|set-cookie:|content-type:)'; cat "$T/$1.b"; } }
cart_of() { tr -d '\r' <"$T/$1.h" | sed -n 's/^[Ss]et-[Cc]ookie: cart=\([^;]*\).*/\1/p'; }

# --- one key, the same request twice: applied once, the same answer twice ---------------------
is "$(post k1a -b "sid=$S1" -H 'Idempotency-Key: "k-1"' "$U/api/cart?add=42")" 200 "first POST with a key: 200"
is "$(cart_of k1a)" "42:1" "first POST: the cart holds the item once"
# the client now holds cart=42:1 and retries: without the key this would make 42:2
is "$(post k1b -b "sid=$S1; cart=42:1" -H 'Idempotency-Key: "k-1"' "$U/api/cart?add=42")" 200 "retry with the key: 200"
is "$(cart_of k1b)" "42:1" "retry with the key: the item is still there once"
is "$(answer k1b)" "$(answer k1a)" "retry with the key: the same answer as the first"

# --- the same key with another body: 422 --------------------------------------------------------
is "$(post k1c -b "sid=$S1; cart=42:1" -H 'Idempotency-Key: "k-1"' "$U/api/cart?add=7")" 422 "same key, another request: 422"
like "$(tr -d '\r' <"$T/k1c.h" | grep -i '^content-type:')" 'application/problem\+json' "422: problem JSON"
like "$(cat "$T/k1c.b")" '"status":422' "422: the problem says its status"

# --- without a key every POST is applied --------------------------------------------------------
post n1 -b "sid=$S1" "$U/api/cart?add=42" >/dev/null
post n2 -b "sid=$S1; cart=$(cart_of n1)" "$U/api/cart?add=42" >/dev/null
is "$(cart_of n2)" "42:2" "two POSTs without a key: added twice"

# --- another client's key does not return the first client's answer ----------------------------
is "$(post o1 -b "sid=$S2; cart=7:3" -H 'Idempotency-Key: "k-1"' "$U/api/cart?add=42")" 200 "another sid, the same key: 200"
like "$(cat "$T/o1.b")" '"id":7' "another sid, the same key: its own cart, not the first client's answer"
post t1 -H 'Authorization: Bearer token-one' -H 'Idempotency-Key: "k-2"' "$U/api/cart?add=5" >/dev/null
post t2 -H 'Authorization: Bearer token-two' -H 'cookie: cart=9:1' -H 'Idempotency-Key: "k-2"' "$U/api/cart?add=5" >/dev/null
like "$(cat "$T/t2.b")" '"id":9' "another bearer token, the same key: its own answer"

# counted: the one replay, the one 422
m=$(curl -s $U/metrics)
like "$m" 'shop_idempotency_total\{result="replayed"\} 1' "metrics: one replay"
like "$m" 'shop_idempotency_total\{result="mismatch"\} 1' "metrics: one mismatch"

# --- malformed keys ----------------------------------------------------------------------------
is "$(post bad1 -b "sid=$S1" -H 'Idempotency-Key: ""' "$U/api/cart?add=1")" 400 "an empty key: 400"
is "$(post bad2 -b "sid=$S1" -H "Idempotency-Key: \"$(printf 'x%.0s' $(seq 1 300))\"" "$U/api/cart?add=1")" 400 \
    "a 300-character key: 400"

# --- a key whose first request is still being served: 409 --------------------------------------
p2=$(free_port)
start slow "$APP" -a 127.0.0.1:$p2 --db "$T/a.db" --name slow --threads 2 --delay 1500
wait_http http://127.0.0.1:$p2/healthz || bail "the slow shop-app did not start"
post s1 -b "sid=$S1" -H 'Idempotency-Key: "k-3"' "http://127.0.0.1:$p2/api/cart?add=3" >"$T/s1.code" &
bg=$!
sleep 0.4
is "$(post s2 -b "sid=$S1" -H 'Idempotency-Key: "k-3"' "http://127.0.0.1:$p2/api/cart?add=3")" 409 \
    "the same key while the first is in progress: 409"
wait $bg
is "$(cat "$T/s1.code")" 200 "the first request still completes: 200"
is "$(post s3 -b "sid=$S1" -H 'Idempotency-Key: "k-3"' "http://127.0.0.1:$p2/api/cart?add=3")$(answer s3)" \
    "200$(answer s1)" "a retry after the first completed: its answer again"
