#!/usr/bin/env bash
# Strict HTTP/1.1 framing (RFC 9112 3.2, 5.1, 5.2, 6.1, 6.3, 7.1) in front of h2o 2.2.5's lenient
# parser, in cdn-edge (plain and TLS) and shop-lb. Before the fix: two Content-Length values were
# accepted (the first won), two Host fields got 200 (the last keyed the cache), a request with
# both Transfer-Encoding and Content-Length left the connection open and the bytes after it were
# read as the next request (smuggling), obs-fold was dropped silently, and a chunk size `1g` read
# as 1. Each is now a 400 and the connection is closed; what RFC 9112 allows still works.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 36

EDGE=$(bin cdn-edge); LB=$(bin shop-lb)
[ -x "$EDGE" ] && [ -x "$LB" ] || bail "cdn-edge / shop-lb not built"
OP=$(free_port); EP=$(free_port); TP=$(free_port); AP=$(free_port); LP=$(free_port)
start origin python3 "$top_srcdir/tests/integration/edge_origin.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "origin did not start"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
    -subj /CN=localhost >/dev/null 2>&1 || bail "openssl"
start edge "$EDGE" -a "127.0.0.1:$EP" --tls "127.0.0.1:$TP" --cert "$T/cert.pem" --key "$T/key.pem" \
    -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -w 1 -n t1
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
start lb "$LB" -a "127.0.0.1:$LP" -b "http://127.0.0.1:$OP" --no-health
wait_port 127.0.0.1 "$LP" || bail "shop-lb did not start"
count() { curl -s "http://127.0.0.1:$OP/_count?p=$1"; }
# raw PORT BYTES [--tls] : the status of each response and CLOSED/OPEN, on one line
raw() { printf "$2" | python3 "$top_srcdir/tests/security/h1raw.py" 127.0.0.1 "$1" ${3:-} | tr '\n' ' ' | sed 's/ $//'; }

H='Host: www.shop.test\r\n'
# 1. what must keep working: pipelined keep-alive requests, repeated identical Content-Length,
# a chunked body with an extension and a trailer, HTTP/1.0 without Host
is "$(raw "$EP" "GET /max60/k HTTP/1.1\r\n$H\r\nGET /max60/k HTTP/1.1\r\n$H\r\n")" "200 200 OPEN" "two pipelined requests, connection kept"
is "$(raw "$EP" "POST /p1 HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nabcde")" "200 OPEN" "the same Content-Length twice is one length"
is "$(raw "$EP" "POST /p2 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;name=\"v\"\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")" "200 OPEN" "chunked body with an extension and a trailer"
like "$(curl -s "http://127.0.0.1:$OP/_last?p=/p2")" '"body_len": 8\}' "the origin got the 8 decoded bytes"
is "$(raw "$EP" "GET /max60/k HTTP/1.0\r\n\r\n")" "200 CLOSED" "HTTP/1.0 without Host is served"

# 2. each refused with 400 and the connection closed, on the edge's plain listener
n0=$(count /p)
is "$(raw "$EP" "POST /p HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde")" "400 CLOSED" "two different Content-Length values"
is "$(raw "$EP" "POST /p HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nabcde")" "400 CLOSED" "Content-Length that is not 1*DIGIT"
is "$(raw "$EP" "GET /max60/h HTTP/1.1\r\n${H}Host: evil.test\r\n\r\n")" "400 CLOSED" "two Host fields"
is "$(raw "$EP" "GET /max60/h HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n")" "400 CLOSED" "two Host fields, even equal"
is "$(raw "$EP" "GET /max60/h HTTP/1.1\r\nX-A: b\r\n\r\n")" "400 CLOSED" "HTTP/1.1 without Host"
is "$(raw "$EP" "POST /p HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /max60/smuggled HTTP/1.1\r\n$H\r\n")" "400 CLOSED" "Transfer-Encoding with Content-Length: one 400, nothing after it is read"
is "$(count /max60/smuggled)" 0 "the smuggled request never reached the origin"
is "$(raw "$EP" "POST /p HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")" "400 CLOSED" "Transfer-Encoding other than chunked"
is "$(raw "$EP" "POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")" "400 CLOSED" "two Transfer-Encoding fields"
is "$(raw "$EP" "POST /p HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")" "400 CLOSED" "Transfer-Encoding on HTTP/1.0"
is "$(raw "$EP" "GET /max60/f HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n")" "400 CLOSED" "obs-fold"
is "$(raw "$EP" "GET /max60/f HTTP/1.1\r\n${H}X-A: b\x01c\r\n\r\n")" "400 CLOSED" "a control character in a field value"
is "$(raw "$EP" "GET /max60/f HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n")" "400 CLOSED" "a bare CR in a field value"
is "$(raw "$EP" "GET  /max60/f HTTP/1.1\r\n$H\r\n")" "400 CLOSED" "two spaces in the request line"
is "$(raw "$EP" "POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1g\r\nx\r\n0\r\n\r\n")" "400 CLOSED" "chunk size 1g"
is "$(raw "$EP" "POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n")" "400 CLOSED" "chunk data not followed by CRLF"
is "$(raw "$EP" "POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx\r\n")" "400 CLOSED" "a chunk size of 17 hex digits"
is "$(raw "$EP" "POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n")" "400 CLOSED" "garbage after a chunk size"
is "$(count /p)" "$n0" "none of the refused requests reached the origin"
like "$(curl -s "http://127.0.0.1:$AP/metrics" | grep '^edge_bad_request_total')" '^edge_bad_request_total 1[0-9]$' "head refusals counted in edge_bad_request_total (the rest are h2o's own 400s)"
body=$(printf "GET /max60/h HTTP/1.1\r\n${H}Host: evil.test\r\n\r\n" | python3 -c "
import socket,sys; s=socket.create_connection(('127.0.0.1',$EP)); s.sendall(sys.stdin.buffer.read()); s.settimeout(2)
d=b''
while True:
    b=s.recv(9999)
    if not b: break
    d+=b
print(d.decode(errors='replace'))")
like "$body" 'more than one Host field' "the 400 says why"
like "$body" 'detail=bad-request' "and Cache-Status names it"

# 3. the same checks on TLS (h2o decrypts, then parses through the same hook)
is "$(raw "$TP" "GET /max60/t HTTP/1.1\r\n$H\r\nGET /max60/t HTTP/1.1\r\n$H\r\n" --tls)" "200 200 OPEN" "TLS: pipelined requests"
is "$(raw "$TP" "POST /p HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /max60/smuggled HTTP/1.1\r\n$H\r\n" --tls)" "400 CLOSED" "TLS: Transfer-Encoding with Content-Length"
is "$(raw "$TP" "POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1g\r\nx\r\n0\r\n\r\n" --tls)" "400 CLOSED" "TLS: chunk size 1g"

# 4. shop-lb, the same parser hook
is "$(raw "$LP" "GET /max60/l HTTP/1.1\r\n$H\r\nGET /max60/l HTTP/1.1\r\n$H\r\n")" "200 200 OPEN" "shop-lb: pipelined requests"
is "$(raw "$LP" "POST /p HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde")" "400 CLOSED" "shop-lb: two Content-Length values"
is "$(raw "$LP" "POST /p HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /max60/smuggled HTTP/1.1\r\n$H\r\n")" "400 CLOSED" "shop-lb: Transfer-Encoding with Content-Length"
is "$(raw "$LP" "GET /max60/l HTTP/1.1\r\n${H}Host: x\r\n\r\n")" "400 CLOSED" "shop-lb: two Host fields"
is "$(raw "$LP" "POST /p HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1g\r\nx\r\n0\r\n\r\n")" "400 CLOSED" "shop-lb: chunk size 1g"
is "$(count /max60/smuggled)" 0 "nothing smuggled reached the origin"
