#!/usr/bin/env bash
# shop-lb keeps a client's socket polled for reading while its request is proxied (cdn_req_hold_read:
# no epoll_ctl pair per request). Whatever the client sends meanwhile must reach h2o as before:
# pipelined requests (30 KB of them, more than one read) answered in order, a POST with a body
# among them, a half-closed client still answered, a client gone mid-request harmless. The
# backend waits 300 ms on /slow so that the bytes arrive while the first request is in flight;
# the checks hold whatever the timing.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 7

LB=$(bin shop-lb)
[ -x "$LB" ] || bail "shop-lb not built"
BP=$(free_port); LP=$(free_port)
cat > "$T/echo.py" <<'PY'
import socket, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def log_message(self, *a): pass
    def answer(self, extra=b""):
        if self.path.startswith("/slow"):
            time.sleep(0.3)
        body = b"path=" + self.path.encode() + extra + b"\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self): self.answer()
    def do_POST(self):
        self.answer(b" body=" + self.rfile.read(int(self.headers.get("Content-Length", 0))))
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
start backend python3 "$T/echo.py" "$BP"
wait_port 127.0.0.1 "$BP" || bail "backend did not start"
start lb "$LB" -a "127.0.0.1:$LP" -b "http://127.0.0.1:$BP" --no-health
wait_port 127.0.0.1 "$LP" || bail "shop-lb did not start"

cat > "$T/client.py" <<'PY'
import re, socket, sys, time
port, case = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(20)
def drain():
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            return data
        data += d
if case == "pipeline":
    s.sendall(b"GET /slow/0 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    reqs = b"".join(b"GET /r/%d HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n" % (i, b"a" * 3000) for i in range(1, 11))
    reqs += b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    reqs += b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    s.sendall(reqs)
    data = drain()
    print(" ".join(sorted(set(x.decode() for x in re.findall(rb"HTTP/1.1 (\d+)", data)))))
    print(" ".join(x.decode() for x in re.findall(rb"path=(\S+)", data)))
    print(data.count(b"body=hello"))
elif case == "halfclose":
    s.sendall(b"GET /slow/h HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    s.shutdown(socket.SHUT_WR)
    print(" ".join(x.decode() for x in re.findall(rb"path=(\S+)", drain())))
elif case == "gone":
    s.sendall(b"GET /slow/g HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    s.close()
PY
out=$(python3 "$T/client.py" "$LP" pipeline)
paths=$(echo "$out" | sed -n 2p)
is "$paths" "/slow/0 /r/1 /r/2 /r/3 /r/4 /r/5 /r/6 /r/7 /r/8 /r/9 /r/10 /post /last" \
    "requests pipelined while the first is proxied: every one answered, in order"
is "$(echo "$out" | sed -n 1p)" "200" "all of them 200"
is "$(echo "$out" | sed -n 3p)" "1" "a POST with a body among them reaches the backend whole"
is "$(python3 "$T/client.py" "$LP" halfclose)" "/slow/h" "a client that half-closes while its request is proxied still gets the answer"
python3 "$T/client.py" "$LP" gone
sleep 0.5  # let the backend answer the request whose client left
ok $? "a client gone while its request is proxied"
is "$(curl -s "http://127.0.0.1:$LP/after")" "path=/after" "shop-lb serves the next client"
running "$pid_lb"; ok $? "shop-lb is still running"
