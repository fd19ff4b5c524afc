#!/usr/bin/env bash
# Item 8 of the security issue: a client cannot pass for another edge, and one client's
# X-Request-Id never reaches another. Before the fix, "CDN-Loop: cdn-edge-x" from any client got
# the internal answers (Surrogate-Key and CDN-Cache-Control on responses, the parent's own
# /healthz), and an origin that reflected X-Request-Id had it stored and shown to later clients.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 9

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -w 1 -n p --edge-key "s3cret-$$"
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
E=http://127.0.0.1:$EP
count() { curl -s "http://127.0.0.1:$OP/_count?p=$1"; }
get() { curl -s -D - -o /dev/null "$@" | tr -d '\r'; }

spoof=(-H 'CDN-Loop: cdn-edge-evil')
unlike "$(get "${spoof[@]}" "$E/tag/a")" '^[Ss]urrogate-[Kk]ey:' "spoofed CDN-Loop: no Surrogate-Key on a miss"
unlike "$(get "${spoof[@]}" "$E/cdncc/a")" '^[Cc][Dd][Nn]-[Cc]ache-[Cc]ontrol:' "spoofed CDN-Loop: no CDN-Cache-Control"
curl -s -o /dev/null "${spoof[@]}" "$E/healthz"
is "$(count /healthz)" 1 "spoofed CDN-Loop: /healthz is an ordinary URL (forwarded), not the edge's own answer"
curl -s -o /dev/null "${spoof[@]}" -H 'CDN-Edge-Key: guess' "$E/healthz"
is "$(count /healthz)" 2 "a wrong key changes nothing"
is "$(curl -s "${spoof[@]}" -H "CDN-Edge-Key: s3cret-$$" "$E/healthz")" ok "the right key: the edge answers its child's check"
like "$(get "${spoof[@]}" -H "CDN-Edge-Key: s3cret-$$" "$E/tag/b")" '[Ss]urrogate-[Kk]ey:' "and shows Surrogate-Key"
unlike "$(curl -s "http://127.0.0.1:$OP/_last?p=/tag/b")" 's3cret' "the key is never passed on to the origin"

# X-Request-Id reflected by the origin: never stored
curl -s -o /dev/null -H 'X-Request-Id: victim-1' "$E/echoid/s"
h=$(get "$E/echoid/s")
like "$h" 'cdn-edge-p; hit' "a later client gets a hit"
unlike "$h" 'victim-1' "without the first client's id"
