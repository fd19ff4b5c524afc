#!/usr/bin/env python3
"""The storefront in headless Chromium through cdn-edge, driven over the DevTools protocol.

Usage: shop_browser.py DEVTOOLS_PORT_FILE BASE_URL SHOT_DIR DEADLINE_S

A minimal DevTools client (a websocket over the Python standard library only): opens a tab, then
home, a category, a product, search, add to cart (the product page's form, a real POST and 303),
and the home page again with the browser's cache off, so that every asset and image is asked
from the edge again. It records each response (URL, status, protocol, MIME type, Cache-Status)
and prints one line per check: "ok<TAB>what" or "not ok<TAB>what<TAB>why". Screenshots go to
SHOT_DIR. Everything is bounded by DEADLINE_S.
"""
import base64
import json
import os
import socket
import struct
import sys
import time
import urllib.parse

CHECKS = []
NCHECKS = 20  # the checks main() makes when it runs to the end (the shell test's plan counts on it)


def check(cond, what, why=""):
    CHECKS.append((bool(cond), what, why))
    print(("ok\t%s" % what) if cond else ("not ok\t%s\t%s" % (what, why)), flush=True)


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
        self.next_id = 0
        self.events = []

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

    def call(self, method, params=None, session=None):
        self.next_id += 1
        mid = self.next_id
        m = {"id": mid, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        self.send(m)
        while True:
            r = self.recv()
            if r.get("id") == mid:
                if "error" in r:
                    raise RuntimeError("%s: %s" % (method, r["error"]))
                return r.get("result", {})
            self.events.append(r)

    def wait_event(self, name, session, timeout):
        end = min(self.deadline, time.time() + timeout)
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == name and e.get("sessionId") == session:
                    del self.events[i]
                    return e
            if time.time() > end:
                raise TimeoutError("waiting for " + name)
            self.events.append(self.recv())


def main():
    port_file, base, shots, budget = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3], float(sys.argv[4])
    deadline = time.time() + budget
    while not os.path.exists(port_file) and time.time() < deadline:
        time.sleep(0.05)
    lines = open(port_file).read().split("\n")
    ws = WS("ws://127.0.0.1:%s%s" % (lines[0].strip(), lines[1].strip()), deadline)
    tid = ws.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    sid = ws.call("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
    for m in ("Page.enable", "Network.enable", "Runtime.enable"):
        ws.call(m, session=sid)
    ws.call("Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=sid)

    def js(expr):
        r = ws.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True},
                    session=sid)
        return r.get("result", {}).get("value")

    def responses():
        """Responses seen since the last call: (url, status, protocol, mime, cache-status, from cache)."""
        out, keep = [], []
        for e in ws.events:
            if e.get("method") == "Network.responseReceived" and e.get("sessionId") == sid:
                r = e["params"]["response"]
                h = {k.lower(): v for k, v in r.get("headers", {}).items()}
                out.append({"url": r["url"], "status": r["status"], "protocol": r.get("protocol", ""),
                            "mime": r.get("mimeType", ""), "cs": h.get("cache-status", ""),
                            "cached": bool(r.get("fromDiskCache"))})
            else:
                keep.append(e)
        ws.events = keep
        return out

    def settle():
        """After the load event: every image finished (decoded or failed)."""
        js("Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))")

    def go(url, name):
        ws.call("Page.navigate", {"url": url}, session=sid)
        ws.wait_event("Page.loadEventFired", sid, 20)
        settle()
        shot(name)

    def shot(name):
        data = ws.call("Page.captureScreenshot", {"format": "png"}, session=sid)["data"]
        with open(os.path.join(shots, name + ".png"), "wb") as f:
            f.write(base64.b64decode(data))

    def images_ok(what):
        r = js("(() => { const a = Array.from(document.images); return {n: a.length,"
               " bad: a.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src),"
               " webp: a.filter(i => /\\/img\\/\\d+\\/\\d+$/.test(i.currentSrc)).length}; })()")
        check(r and r["n"] > 0 and not r["bad"], "%s: every image decoded (naturalWidth > 0; %s images)"
              % (what, r and r["n"]), "not decoded: %s" % (r and r["bad"][:3]))
        return r

    # 1. home, cold
    go(base + "/", "1-home")
    res = responses()
    doc = [r for r in res if r["url"].rstrip("/") == base]
    check(doc and doc[0]["status"] == 200 and doc[0]["protocol"] == "h2",
          "home: 200 over h2 (TLS) through cdn-edge", "doc: %s" % doc[:1])
    css = [r for r in res if r["url"].endswith(".css")]
    jsr = [r for r in res if r["url"].endswith(".js")]
    check(css and css[0]["status"] == 200 and jsr and jsr[0]["status"] == 200,
          "home: the hashed stylesheet and script loaded", "css %s js %s" % (css[:1], jsr[:1]))
    check(js("getComputedStyle(document.querySelector('.grid')).display") == "grid",
          "home: the stylesheet applies (the products are a CSS grid)")
    above = js("(() => { const c = document.querySelector('.card'); const r = c && c.getBoundingClientRect();"
               " return r ? r.top < innerHeight : false; })()")
    check(above, "home: a product card is above the fold (1280x900)")
    images_ok("home")
    imgs = [r for r in res if "/img/" in r["url"]]
    check(imgs and all(r["mime"] == "image/webp" for r in imgs),
          "home: WebP chosen for every image (%d)" % len(imgs),
          "types: %s" % sorted(set(r["mime"] for r in imgs)))
    check(imgs and all("detail=accept-webp" in r["cs"] for r in imgs),
          "home: the edge normalised Accept (Cache-Status detail=accept-webp)",
          "e.g. %s" % (imgs[:1] and imgs[0]["cs"]))
    widths = js("Array.from(document.images).map(i => i.currentSrc.split('/').pop())")
    check(widths and all(w in ("160", "320", "640") for w in widths),
          "home: the browser picked srcset widths (%s)" % ",".join(sorted(set(widths or []))))

    # 2. a category, from the home page's link
    cat = js("document.querySelector('.cats a').href")
    go(cat, "2-category")
    responses()
    check(js("document.querySelectorAll('.card').length") > 0, "category: product cards")
    images_ok("category")

    # 3. a product, from the category's first card
    prod = js("document.querySelector('.card a').href")
    go(prod, "3-product")
    responses()
    name = js("document.querySelector('h1').textContent")
    check(name and js("!!document.querySelector('form.buy')"), "product: a page with an Add to cart form (%s)" % name)
    images_ok("product")

    # 4. search, through the header's form
    js("(() => { const f = document.querySelector('form.search'); f.q.value = 'lamp'; f.submit(); })()")
    ws.wait_event("Page.loadEventFired", sid, 20)
    settle()
    shot("4-search")
    responses()
    check(js("location.pathname + location.search") == "/search?q=lamp" and
          js("document.querySelectorAll('.card').length") > 0, "search: an HTML page of results")
    images_ok("search")

    # 5. add to cart: the product page's form (a POST answered 303, followed to /cart)
    go(prod, "5-product-again")
    responses()
    js("document.querySelector('form.buy').submit()")
    ws.wait_event("Page.loadEventFired", sid, 20)
    settle()
    shot("6-cart")
    res = responses()
    check(js("location.pathname") == "/cart", "add to cart: the form's 303 lands on /cart")
    cart = js("document.querySelector('table.cart') ? document.querySelector('table.cart').textContent : ''")
    check(name and name in (cart or ""), "cart: shows the item", "cart text: %r" % (cart or "")[:200])
    check(js("document.getElementById('cart-count').textContent") == "1", "cart: the script shows 1 in the header")
    pages = [r for r in res if r["url"].endswith("/cart")]
    check(pages and "hit" not in pages[0]["cs"] and "stored" not in pages[0]["cs"],
          "cart: not stored by the edge (%s)" % (pages[:1] and pages[0]["cs"]))

    # 6. a second visitor (a fresh browser context: its own empty cache, no cookies) on the home
    # page: the stylesheet, the script and every image come from the edge's cache. (Turning the
    # tab's cache off would not do: DevTools then sends no-cache, and the edge rightly revalidates.)
    ctx = ws.call("Target.createBrowserContext")["browserContextId"]
    tid2 = ws.call("Target.createTarget", {"url": "about:blank", "browserContextId": ctx})["targetId"]
    sid = ws.call("Target.attachToTarget", {"targetId": tid2, "flatten": True})["sessionId"]
    for m in ("Page.enable", "Network.enable", "Runtime.enable"):
        ws.call(m, session=sid)
    ws.call("Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=sid)
    go(base + "/", "7-home-second-visitor")
    res = responses()
    assets = [r for r in res if r["url"].endswith((".css", ".js")) or "/img/" in r["url"]]
    misses = ["%s (%s)" % (r["url"].split("/", 3)[-1], r["cs"]) for r in assets if "; hit" not in r["cs"]]
    check(len(assets) >= 14 and not misses,
          "second visitor: the stylesheet, the script and every image hits in cdn-edge (%d)" % len(assets),
          "not hits: %s" % misses[:4])
    images_ok("second visitor")
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    except Exception as e:  # a broken run: the shell fails the checks not reached
        print("# the browser run stopped: %s: %s" % (type(e).__name__, e), flush=True)
        rc = 1
    sys.exit(rc)
