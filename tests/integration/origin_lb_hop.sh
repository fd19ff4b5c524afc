#!/usr/bin/env bash
# shop-lb and the fields a Connection header names (RFC 9110 7.6.1): they are for one hop, like
# the fixed hop-by-hop list, in both directions. Before, only the fixed list was dropped.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 4

LB=$(bin shop-lb)
[ -x "$LB" ] || bail "shop-lb not built"
BP=$(free_port); LP=$(free_port)
cat > "$T/echo.py" <<'PY'
import socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):  # head and body are two writes: no Nagle wait for a delayed ACK between them
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def log_message(self, *a): pass
    def do_GET(self):
        body = "".join("%s: %s\n" % (k.lower(), v) for k, v in self.headers.items()).encode()
        self.send_response(200)
        self.send_header("Connection", "X-Internal, keep-alive")
        self.send_header("X-Internal", "backend-only")
        self.send_header("X-Public", "ok")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
start backend python3 "$T/echo.py" "$BP"
wait_port 127.0.0.1 "$BP" || bail "backend did not start"
start lb "$LB" -a "127.0.0.1:$LP" -b "http://127.0.0.1:$BP" --no-health
wait_port 127.0.0.1 "$LP" || bail "shop-lb did not start"
out=$(curl -s -D "$T/h" -H 'Connection: X-Secret' -H 'X-Secret: client-hop' -H 'X-Kept: yes' "http://127.0.0.1:$LP/x")
unlike "$out" 'x-secret' "a request field the client's Connection names does not reach the backend"
like "$out" 'x-kept: yes' "the others do"
unlike "$(cat "$T/h")" '[Xx]-[Ii]nternal' "a response field the backend's Connection names does not reach the client"
like "$(cat "$T/h")" '[Xx]-[Pp]ublic: ok' "the others do"
