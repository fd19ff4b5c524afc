"""lab/devtools.py - a minimal Chrome DevTools protocol client on the Python standard library.

Used by `cdn-lab browse` (lab/browse.py) and tests/integration/shop_browser.py. Chromium is started
with --remote-debugging-port=0 and --user-data-dir=DIR; it writes the port and the browser's
websocket path to DIR/DevToolsActivePort, which `Browser.connect` reads. A tab is a flattened
session (Target.attachToTarget with flatten), so one websocket carries every tab. Everything waits
at most until the deadline given to the Browser.

    b = Browser.connect(DIR + "/DevToolsActivePort", deadline=time.time() + 30)
    t = b.tab(fresh_context=True)          # its own cache and cookies
    t.navigate("https://www.shop.test:8443/")
    t.js("document.title"); t.screenshot("home.png"); t.take_responses()
"""
import base64
import json
import os
import socket
import struct
import time
import urllib.parse


class WS:
    """Just enough of RFC 6455 for a local DevTools endpoint: text frames, client masking."""

    def __init__(self, url, deadline):
        u = urllib.parse.urlparse(url)
        self.deadline = deadline
        self.s = socket.create_connection((u.hostname, u.port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n") % (u.path, u.hostname, u.port, key)
        self.s.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(4096)
            if not chunk:
                raise OSError("websocket handshake: connection closed")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise OSError("websocket handshake: %r" % head[:80])

    def _read(self, n):
        while len(self.buf) < n:
            left = self.deadline - time.time()
            if left <= 0:
                raise TimeoutError("deadline")
            self.s.settimeout(min(left, 5))
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise OSError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            op = b0 & 0x0F
            if op == 0x8:
                raise OSError("websocket closed by the browser")
            if op in (0x9, 0xA):
                continue
            msg += payload
            if b0 & 0x80:
                return json.loads(msg)


class Browser:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events = []

    @classmethod
    def connect(cls, port_file, deadline):
        while not (os.path.exists(port_file) and os.path.getsize(port_file) > 0):
            if time.time() > deadline:
                raise TimeoutError("no DevTools port in " + port_file)
            time.sleep(0.05)
        lines = open(port_file).read().split("\n")
        return cls(WS("ws://127.0.0.1:%s%s" % (lines[0].strip(), lines[1].strip()), deadline))

    def call(self, method, params=None, session=None):
        self.next_id += 1
        mid = self.next_id
        m = {"id": mid, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        self.ws.send(m)
        while True:
            r = self.ws.recv()
            if r.get("id") == mid:
                if "error" in r:
                    raise RuntimeError("%s: %s" % (method, r["error"]))
                return r.get("result", {})
            self.events.append(r)

    def wait_event(self, name, session, timeout):
        end = min(self.ws.deadline, time.time() + timeout)
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == name and e.get("sessionId") == session:
                    del self.events[i]
                    return e
            if time.time() > end:
                raise TimeoutError("waiting for " + name)
            self.events.append(self.ws.recv())

    def tab(self, fresh_context=False, width=1280, height=900):
        p = {"url": "about:blank"}
        if fresh_context:
            p["browserContextId"] = self.call("Target.createBrowserContext")["browserContextId"]
        tid = self.call("Target.createTarget", p)["targetId"]
        sid = self.call("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        return Tab(self, sid, width, height)


class Tab:
    def __init__(self, b, sid, width, height):
        self.b, self.sid = b, sid
        for m in ("Page.enable", "Network.enable", "Runtime.enable"):
            b.call(m, session=sid)
        b.call("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=sid)

    def call(self, method, params=None):
        return self.b.call(method, params, session=self.sid)

    def js(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        return r.get("result", {}).get("value")

    def wait_load(self, timeout=20):
        """The load event, then every image finished (decoded or failed)."""
        self.b.wait_event("Page.loadEventFired", self.sid, timeout)
        self.js("Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))")

    def navigate(self, url, timeout=20):
        self.call("Page.navigate", {"url": url})
        self.wait_load(timeout)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def take_responses(self):
        """Responses of this tab since the last call: url, status, protocol, mime, Cache-Status, the
        bytes received for it (encodedDataLength: headers and body as they came) and whether the
        browser's own cache answered (memory or disk: then no bytes came, and its Cache-Status is
        the stored response's)."""
        by_id, sizes, cached, keep = {}, {}, set(), []
        for e in self.b.events:
            if e.get("sessionId") != self.sid:
                keep.append(e)
                continue
            m, p = e.get("method"), e.get("params", {})
            if m == "Network.responseReceived":
                r = p["response"]
                h = {k.lower(): v for k, v in r.get("headers", {}).items()}
                by_id[p["requestId"]] = {"url": r["url"], "status": r["status"], "protocol": r.get("protocol", ""),
                                         "mime": r.get("mimeType", ""), "cs": h.get("cache-status", ""),
                                         "bytes": 0, "browser_cache": bool(r.get("fromDiskCache"))}
            elif m == "Network.requestServedFromCache":
                cached.add(p["requestId"])
            elif m == "Network.loadingFinished":
                sizes[p["requestId"]] = p.get("encodedDataLength", 0)
            else:
                keep.append(e)
        self.b.events = keep
        for rid, n in sizes.items():
            if rid in by_id:
                by_id[rid]["bytes"] = n
        for rid in cached:
            if rid in by_id:
                by_id[rid]["browser_cache"] = True
        return list(by_id.values())
