#!/usr/bin/env bash
# shop-app's "sid" session cookie must not be guessable: 128 bits from the OS, not a splitmix64
# stream a client can run forward. The old cookie was the next splitmix64 output (16 hex) plus
# the worker index (8 hex); inverting the output mix gives the state, and the state gives every
# later sid. The test fetches sids from one single-threaded worker and tries that prediction.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 5
APP=$(bin shop-app)
[ -x "$APP" ] || bail "shop-app is not built"
export XDG_CACHE_HOME="$T/cache"

"$APP" --generate 100 --seed 3 --db "$T/a.db" >"$T/gen.log" 2>&1 || bail "cannot generate a catalog"
p=$(free_port)
start app "$APP" -a 127.0.0.1:$p --db "$T/a.db" --name app --threads 1
wait_http http://127.0.0.1:$p/healthz || bail "shop-app did not start"

# one sid per request without a cookie, alternating the two cart pages
: >"$T/sids"
for i in $(seq 1 8); do
    path=/cart; [ $((i % 2)) = 0 ] && path=/api/cart
    curl -s --max-time 5 -D - -o /dev/null "http://127.0.0.1:$p$path" |
        tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: sid=\([^;]*\).*/\1/p' >>"$T/sids"
done
is "$(wc -l <"$T/sids" | tr -d ' ')" 8 "8 requests without a cookie: 8 sid cookies"
is "$(grep -Evc '^[0-9a-f]{32}$' "$T/sids")" 0 "every sid is 32 lower-case hex digits (128 bits)"
is "$(sort -u "$T/sids" | wc -l | tr -d ' ')" 8 "all sids differ"
# a sid made of one repeated or constant part (e.g. a worker index) would show up here
is "$(cut -c17-32 "$T/sids" | sort -u | wc -l | tr -d ' ')" 8 "no constant tail (the old one ended with the worker index)"

# The old predictor: invert splitmix64's output mix on the first 64 bits of a sid, step the
# state, mix again; it must not give the first 64 bits of the following sid.
hits=$(python3 - "$T/sids" <<'PY'
import sys
M = (1 << 64) - 1
G = 0x9E3779B97F4A7C15
def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)
def unxs(z, k):  # inverse of z ^= z >> k
    x = z
    for _ in range(64 // k + 1):
        x = z ^ (x >> k)
    return x
def unmix(z):
    z = unxs(z, 31)
    z = (z * pow(0x94D049BB133111EB, -1, 1 << 64)) & M
    z = unxs(z, 27)
    z = (z * pow(0xBF58476D1CE4E5B9, -1, 1 << 64)) & M
    return unxs(z, 30)
sids = [l.strip() for l in open(sys.argv[1]) if l.strip()]
hits = 0
for a, b in zip(sids, sids[1:]):
    try:
        x, y = int(a[:16], 16), int(b[:16], 16)
    except ValueError:
        continue
    assert mix(unmix(x)) == x
    # a few steps ahead, in case something else drew from the stream in between
    if any(mix((unmix(x) + k * G) & M) == y for k in range(1, 4)):
        hits += 1
print(hits)
PY
)
is "$hits" 0 "no sid is predicted from the one before (old splitmix64 predictor)"
