#!/usr/bin/env python3
"""A scripted origin for the cdn-edge integration tests: behaviour by path prefix, and a counter
of requests per path (without query) plus the last request's headers, so that tests check what
reached the origin and what the edge sent upstream.

  /_count?p=/x     -> number of requests for /x        /_last?p=/x -> JSON of its last request headers
  /_bytes?p=/x     -> body bytes sent for /x
  /_sick?on=1|0    -> while sick, /healthz and every other path answer 503 (a failing parent)
  /_maxconc        -> the most requests it ever had in progress at once (?reset: start again)
  /_hang?on=1|0    -> while on, every other request is counted and then held unanswered (a hung
                      origin: the connection stays open) until it is turned off
  /_hangafter?p=/x&n=N -> requests for /x beyond its Nth are held unanswered like /_hang
                      (until /_hang?on=0, which also forgets every such rule)
  /_midhang?on=1|0 -> while on, /partial/... stops after 250000 of its 300000 body bytes
                      until it is turned off (a fill in flight that holds a body)
  /partial/...     -> 300000 bytes, max-age=60 (see /_midhang)
  /_slow?ms=N      -> every other request is answered N ms late (0: at once)
  /_fail?on=1|0    -> while on, every other request is counted and answered 500 (no caching headers)
  /_total          -> requests counted so far, all paths together
  /max60/...       -> Cache-Control: max-age=60, ETag, Last-Modified
  /slow/...        -> the same after 1 s
  /vary/...        -> Vary: Accept-Language, body echoes it
  /varyae/...      -> Vary: Accept-Encoding, body echoes it (no Content-Encoding: the body is text)
  /reval/...       -> max-age=1, ETag "r1"; If-None-Match "r1" -> 304 with max-age=60, X-Refreshed
  /sie/...         -> max-age=1, stale-if-error=600, ETag
  /swr/...         -> max-age=1, stale-while-revalidate=60; body counts requests
  /short/...       -> max-age=2 (no stale windows, no validators)
  /private/...     -> private; /nostore/... -> no-store; /cookie/... -> Set-Cookie + max-age
  /cdncc/...       -> Cache-Control: no-store, CDN-Cache-Control: max-age=60
  /age/...         -> max-age=60 with Age: 50
  /dated/...       -> max-age=600, ETag "d1", Date 30 s ago (also in X-Origin-Date); ?cc=VALUE sets
                      Cache-Control instead; ?form=850 sends the Date in the obsolete RFC 850 form
  /nodate/...      -> max-age=600 and no Date at all
  /badte/...       -> Transfer-Encoding: gzip (not chunked), body until the connection closes
  /qual/...        -> max-age=60, private="X-Secret", no-cache="X-Token" with X-Secret, X-Token, X-Keep
  /early-slow/...  -> after 1.5 s a 103, after 0.5 s more the 200 (max-age=60); ?late=1: 0.2 s, 2.5 s
  /early/...       -> 103 Early Hints (Link, X-Interim) first, then 200 with max-age=60 (?old=1:
                      with a Date 30 s ago, also in X-Origin-Date; ?one=1: that too, and the 103
                      and the whole 200 in one write)
  POST ... with X-Fail: 1 -> 500 (an unsafe method that failed)
  /big/...         -> 300000 bytes, max-age=60; /mid/... the same pattern, 50000 bytes; both
                      answer "Range: bytes=A-B" with 206
  /own/...         -> max-age=600, a body of its own: 20,000-40,000 bytes made from the path
                      (own_body; tests compare what an edge serves with it)
  /bigns/...       -> the 300000 bytes of /big/ with Cache-Control: no-store (an uncacheable pass)
  /hop/...         -> Connection: X-Hop with X-Hop header, max-age=60
  /echoid/...      -> max-age=60, and the request's X-Request-Id reflected in the response
  /status/NNN/...  -> that status, no caching headers
  anything else    -> 200, no caching headers (heuristic rules apply)
  POST ...?loc=URL / ?cloc=URL -> 201 with that Location / Content-Location (URL-decoded)
Any method is accepted; POST/PUT/DELETE bodies are echoed in X-Body-Len. Usage: edge_origin.py PORT
"""
import email.utils
import socket
import json
import sys
import urllib.parse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIG = bytes((i * 7 + 3) % 251 for i in range(300000))

counts = {}
last = {}
conc = {"now": 0, "max": 0}
sick = [False]
hang = threading.Event()  # set: requests answer; clear: they wait (a hung origin)
hang.set()
slow_ms = [0]
fail = [False]
midhang = threading.Event()  # set: /partial/ sends its whole body
midhang.set()
def own_body(path):
    """A body only this path has: its SHA-256 in hex, repeated to 20,000-40,000 bytes."""
    import hashlib
    h = hashlib.sha256(path.encode()).hexdigest().encode()
    n = 20000 + int(h[:8], 16) % 20001
    return (h * (n // len(h) + 1))[:n]


hang_after = {}  # path -> hold its requests beyond this count (until unhold is set)
unhold = threading.Event()
total = [0]
sent = {}
lock = threading.Lock()
LM = "Tue, 14 Nov 2023 22:13:20 GMT"


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        # a head and its body go out in two writes: without TCP_NODELAY the body waits for the
        # edge's delayed ACK of the head (40 ms a response on a kept-alive connection)
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *a):
        pass

    def send(self, status, headers, body=b""):
        self.send_response_only(status)
        if not any(k.lower() == "date" for k, _ in headers):
            self.send_header("Date", self.date_time_string())
        for k, v in headers:
            if v is not None:  # ("Date", None): no Date at all
                self.send_header(k, v)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            with lock:  # counted before the write: a client that has the body sees the count
                p = self.path.split("?", 1)[0]
                sent[p] = sent.get(p, 0) + len(body)
            self.wfile.write(body)

    def handle_any(self):
        path = self.path.split("?", 1)[0]
        if path == "/_count":
            p = self.path.split("p=", 1)[1] if "p=" in self.path else ""
            with lock:
                n = counts.get(p, 0)
            return self.send(200, [("Content-Type", "text/plain")], str(n).encode())
        if path == "/_last":
            p = self.path.split("p=", 1)[1] if "p=" in self.path else ""
            with lock:
                d = last.get(p, {})
            return self.send(200, [("Content-Type", "application/json")], json.dumps(d).encode())
        if path == "/_bytes":
            p = self.path.split("p=", 1)[1] if "p=" in self.path else ""
            with lock:
                n = sent.get(p, 0)
            return self.send(200, [("Content-Type", "text/plain")], str(n).encode())
        if path == "/_sick":
            sick[0] = "on=1" in self.path
            return self.send(200, [("Content-Type", "text/plain")], b"sick\n" if sick[0] else b"well\n")
        if path == "/_midhang":
            if "on=1" in self.path:
                midhang.clear()
            else:
                midhang.set()
            return self.send(200, [("Content-Type", "text/plain")], b"ok\n")
        if path == "/_hangafter":
            q = urllib.parse.parse_qs(self.path.split("?", 1)[1]) if "?" in self.path else {}
            with lock:
                hang_after[q.get("p", [""])[0]] = int(q.get("n", ["0"])[0])
                unhold.clear()
            return self.send(200, [("Content-Type", "text/plain")], b"ok\n")
        if path == "/_hang":
            if "on=1" in self.path:
                hang.clear()
            else:
                with lock:
                    hang_after.clear()
                unhold.set()
                hang.set()
            return self.send(200, [("Content-Type", "text/plain")], b"hang\n" if not hang.is_set() else b"answer\n")
        if path == "/_slow":
            q = urllib.parse.parse_qs(self.path.split("?", 1)[1]) if "?" in self.path else {}
            slow_ms[0] = int(q.get("ms", ["0"])[0])
            return self.send(200, [("Content-Type", "text/plain")], b"slow %d\n" % slow_ms[0])
        if path == "/_fail":
            fail[0] = "on=1" in self.path
            return self.send(200, [("Content-Type", "text/plain")], b"fail\n" if fail[0] else b"ok\n")
        if path == "/_total":
            with lock:
                n = total[0]
            return self.send(200, [("Content-Type", "text/plain")], str(n).encode())
        if path == "/_maxconc":
            with lock:
                m = conc["max"]
                if "reset" in self.path:
                    conc["max"] = 0
            return self.send(200, [("Content-Type", "text/plain")], str(m).encode())
        with lock:
            conc["now"] += 1
            conc["max"] = max(conc["max"], conc["now"])
        try:
            return self.handle_counted(path)
        finally:
            with lock:
                conc["now"] -= 1

    def handle_counted(self, path):
        n = 0
        clen = int(self.headers.get("Content-Length") or 0)
        body_in = self.rfile.read(clen) if clen else b""
        with lock:
            counts[path] = counts.get(path, 0) + 1
            n = counts[path]
            last[path] = {"method": self.command, "headers": [[k, v] for k, v in self.headers.items()],
                          "body_len": len(body_in)}
            total[0] += 1
            held = path in hang_after and n > hang_after[path]
        if held:  # beyond its count (/_hangafter): held like a hung origin
            unhold.wait(300)
        if not hang.is_set():  # a hung origin: counted, then nothing until /_hang?on=0
            hang.wait(300)
        if slow_ms[0] > 0:
            time.sleep(slow_ms[0] / 1000.0)
        if fail[0]:
            return self.send(500, [("Content-Type", "text/plain")], b"failing on cue\n")
        body = ("body of %s #%d\n" % (path, n)).encode()
        h = [("Content-Type", "text/plain"), ("X-Body-Len", str(len(body_in)))]
        if sick[0]:
            return self.send(503, h, b"sick\n")
        if self.command in ("POST", "PUT", "DELETE", "PATCH") and self.headers.get("X-Fail"):
            return self.send(500, h, b"failed\n")
        inm = self.headers.get("If-None-Match")
        if path.startswith("/max60/") or path.startswith("/slow/"):
            if path.startswith("/slow/"):
                time.sleep(1)
            body = ("body of %s\n" % path).encode()
            return self.send(200, h + [("Cache-Control", "max-age=60"), ("ETag", '"e1"'), ("Last-Modified", LM)], body)
        if path.startswith("/vary/"):
            lang = self.headers.get("Accept-Language", "none")
            return self.send(200, h + [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
                             ("lang=%s #%d\n" % (lang, n)).encode())
        if path.startswith("/varyae/"):
            ae = ", ".join(self.headers.get_all("Accept-Encoding") or ["none"])
            return self.send(200, h + [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")],
                             ("ae=%s #%d\n" % (ae, n)).encode())
        if path.startswith("/reval/"):
            if inm == '"r1"':
                return self.send(304, [("Cache-Control", "max-age=60"), ("ETag", '"r1"'), ("X-Refreshed", "yes"),
                                       ("Content-Length", "999")])
            return self.send(200, h + [("Cache-Control", "max-age=1"), ("ETag", '"r1"')], b"revalidate me\n")
        if path.startswith("/sie/"):
            if inm == '"s1"':
                return self.send(304, [("Cache-Control", "max-age=1, stale-if-error=600"), ("ETag", '"s1"')])
            return self.send(200, h + [("Cache-Control", "max-age=1, stale-if-error=600"), ("ETag", '"s1"')],
                             b"stale but useful\n")
        if path.startswith("/short/"):
            return self.send(200, h + [("Cache-Control", "max-age=2")], body)
        if path.startswith("/swr/"):
            return self.send(200, h + [("Cache-Control", "max-age=1, stale-while-revalidate=60")], body)
        if path.startswith("/private/"):
            return self.send(200, h + [("Cache-Control", "private, max-age=60")], body)
        if path.startswith("/nostore/"):
            return self.send(200, h + [("Cache-Control", "no-store")], body)
        if path.startswith("/cookie/"):
            return self.send(200, h + [("Cache-Control", "max-age=60"), ("Set-Cookie", "id=%d" % n)], body)
        if path.startswith("/cdncc/"):
            return self.send(200, h + [("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=60"),
                                       ("Edge-Cache-Control", "max-age=60")], body)
        if path.startswith("/age/"):
            return self.send(200, h + [("Cache-Control", "max-age=60"), ("Age", "50")], body)
        if path.startswith("/dated/"):
            q = urllib.parse.parse_qs(self.path.split("?", 1)[1]) if "?" in self.path else {}
            t = time.time() - 30
            d = email.utils.formatdate(t, usegmt=True)
            if q.get("form") == ["850"]:
                d = time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(t))
            return self.send(200, h + [("Cache-Control", q.get("cc", ["max-age=600"])[0]), ("ETag", '"d1"'),
                                       ("Date", d), ("X-Origin-Date", d)], body)
        if path.startswith("/qual/"):
            return self.send(200, h + [("Cache-Control", 'max-age=60, private="X-Secret", no-cache="X-Token"'),
                                       ("X-Secret", "s1"), ("X-Token", "t1"), ("X-Keep", "k1")], body)
        if path.startswith("/early-slow/"):  # 1.5 s, the 103, 0.5 s, the 200 (clients gather first)
            before, after = (0.2, 2.5) if "late=1" in self.path else (1.5, 0.5)
            time.sleep(before)
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
            self.wfile.flush()
            time.sleep(after)
            return self.send(200, h + [("Cache-Control", "max-age=60")], ("body of %s\n" % path).encode())
        if path.startswith("/early/"):
            early = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nX-Interim: yes\r\n\r\n"
            if "one=1" in self.path:  # the 103 and the whole 200 in one write
                d = email.utils.formatdate(time.time() - 30, usegmt=True)
                head = ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\n"
                        "Date: %s\r\nX-Origin-Date: %s\r\nContent-Length: %d\r\n\r\n" % (d, d, len(body)))
                self.wfile.write(early + head.encode() + body)
                return
            self.wfile.write(early)
            self.wfile.flush()
            extra = []
            if "old=1" in self.path:  # a Date 30 s ago, also in X-Origin-Date
                d = email.utils.formatdate(time.time() - 30, usegmt=True)
                extra = [("Date", d), ("X-Origin-Date", d)]
            return self.send(200, h + [("Cache-Control", "max-age=60")] + extra, body)
        if path.startswith("/badte/"):
            self.close_connection = True
            self.send_response_only(200)
            self.send_header("Transfer-Encoding", "gzip")
            self.send_header("Cache-Control", "max-age=600")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"raw body until close\n")
            return
        if path.startswith("/nodate/"):
            return self.send(200, h + [("Cache-Control", "max-age=600"), ("Date", None)], body)
        if path.startswith("/partial/"):  # 300000 bytes, max-age=60; stops at 250000 while /_midhang
            big = bytes((i * 7 + 3) % 251 for i in range(300000))
            self.send_response_only(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Cache-Control", "max-age=60")
            self.send_header("Content-Length", str(len(big)))
            self.end_headers()
            self.wfile.write(big[:250000])
            self.wfile.flush()
            midhang.wait(300)
            self.wfile.write(big[250000:])
            return
        if path.startswith("/own/"):
            return self.send(200, [("Content-Type", "application/octet-stream"), ("Cache-Control", "max-age=600")],
                             own_body(path))
        if path.startswith("/big/") or path.startswith("/mid/"):
            big = bytes((i * 7 + 3) % 251 for i in range(300000 if path.startswith("/big/") else 50000))
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes=") and "," not in rng:
                a, _, b = rng[6:].partition("-")
                if a.isdigit() and (b.isdigit() or b == "") and int(a) < len(big):
                    a, b = int(a), min(int(b) if b else len(big) - 1, len(big) - 1)
                    return self.send(206, [("Content-Type", "application/octet-stream"),
                                           ("Cache-Control", "max-age=60"), ("ETag", '"big"'),
                                           ("Content-Range", "bytes %d-%d/%d" % (a, b, len(big)))], big[a:b + 1])
            return self.send(200, [("Content-Type", "application/octet-stream"), ("Cache-Control", "max-age=60"),
                                   ("ETag", '"big"')], big)
        if path.startswith("/bigns/"):
            return self.send(200, [("Content-Type", "application/octet-stream"), ("Cache-Control", "no-store")], BIG)
        if path.startswith("/hop/"):
            return self.send(200, h + [("Cache-Control", "max-age=60"), ("Connection", "X-Hop"), ("X-Hop", "secret")], body)
        if path.startswith("/echoid/"):  # reflects the request's X-Request-Id (as many apps do)
            return self.send(200, h + [("Cache-Control", "max-age=60"),
                                       ("X-Request-Id", self.headers.get("X-Request-Id", "none"))], body)
        if path.startswith("/tag/"):
            return self.send(200, h + [("Cache-Control", "max-age=60"), ("Surrogate-Key", "group-a " + path)], body)
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            return self.send(code, h, body)
        q = urllib.parse.parse_qs(self.path.split("?", 1)[1]) if "?" in self.path else {}
        if self.command == "POST" and ("loc" in q or "cloc" in q):
            name = "Location" if "loc" in q else "Content-Location"
            return self.send(201, h + [(name, q.get("loc", q.get("cloc"))[0])], body)
        if self.command in ("POST", "PUT", "DELETE", "PATCH"):
            return self.send(200, h + [("Location", path.replace("/post", "/max60"))], body)
        return self.send(200, h, body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_FOO = handle_any


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
