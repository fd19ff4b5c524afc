#!/usr/bin/env bash
# A POST is delivered at most once (the security issue's item 3). libcurl silently resends a
# request when a reused keep-alive connection dies before any answer; for a POST that was a
# second order: 10 POSTs through shop-lb made 20 deliveries, 5 through cdn-edge made 10. The
# upstream here answers the first request of each connection and, for a POST that comes on a
# reused one, reads it whole and closes without answering: each such POST reached it once.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 6

EDGE=$(bin cdn-edge); LB=$(bin shop-lb)
[ -x "$EDGE" ] && [ -x "$LB" ] || bail "cdn-edge / shop-lb not built"
OP=$(free_port); EP=$(free_port); AP=$(free_port); LP=$(free_port)
cat > "$T/closer.py" <<'PY'
import socketserver, sys, threading
seen = {}
lock = threading.Lock()
class H(socketserver.StreamRequestHandler):
    def handle(self):
        n = 0
        while True:
            line = self.rfile.readline()
            if not line:
                return
            method, path = line.split()[0].decode(), line.split()[1].decode()
            clen = 0
            while True:
                h = self.rfile.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                if h.lower().startswith(b"content-length:"):
                    clen = int(h.split(b":")[1])
            if clen:
                self.rfile.read(clen)
            n += 1
            if path.startswith("/_count"):
                with lock:
                    body = str(seen.get(path.split("p=")[1], 0)).encode()
            else:
                with lock:
                    seen[path] = seen.get(path, 0) + 1
                if method == "POST" and n > 1:
                    return  # read it whole, then close without a word
                body = b"ok\n"
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nCache-Control: no-store\r\n\r\n" % len(body) + body)
            self.wfile.flush()
class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
start origin python3 "$T/closer.py" "$OP"
wait_port 127.0.0.1 "$OP" || bail "upstream did not start"
count() { curl -s "http://127.0.0.1:$OP/_count?p=$1"; }

# cdn-edge: warm a connection with a POST, then POST on it (a GET would not do: cdn-edge's plain
# GETs go over cdn_httpc's HTTP/1.1 engine and its own connections, POSTs over libcurl's)
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -w 1 -n t1
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
codes=""
for i in 1 2 3 4 5; do
    curl -s -o /dev/null -X POST -d warm "http://127.0.0.1:$EP/warm$i"
    codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -X POST -d "order=$i" "http://127.0.0.1:$EP/order$i")"
done
total=0; for i in 1 2 3 4 5; do total=$((total + $(count /order$i))); done
is "$total" 5 "cdn-edge: 5 POSTs on reused connections reached the upstream 5 times, not 10"
like "$codes" '^( 502)+$' "and each got 502 (the upstream closed without an answer), never a silent resend"
curl -s -o /dev/null -X POST -d x "http://127.0.0.1:$EP/fresh"
is "$(count /fresh)" 1 "a POST on a fresh connection is delivered once too"

# shop-lb, the same (its GETs go over the HTTP/1.1 engine too: warm with a POST)
start lb "$LB" -a "127.0.0.1:$LP" -b "http://127.0.0.1:$OP" --no-health
wait_port 127.0.0.1 "$LP" || bail "shop-lb did not start"
codes=""
for i in 1 2 3 4 5; do
    curl -s -o /dev/null -X POST -d warm "http://127.0.0.1:$LP/lbwarm$i"
    codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -X POST -d "order=$i" "http://127.0.0.1:$LP/lborder$i")"
done
total=0; for i in 1 2 3 4 5; do total=$((total + $(count /lborder$i))); done
is "$total" 5 "shop-lb: 5 POSTs on reused connections reached the backend 5 times, not 10"
like "$codes" '^( 50[0-9])+$' "and each got a 5xx"
curl -s -o /dev/null "http://127.0.0.1:$LP/get-after"
is "$(count /get-after)" 1 "a GET still goes through"
