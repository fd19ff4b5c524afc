#!/usr/bin/env python3
"""The storefront in headless Chromium through cdn-edge, driven over the DevTools protocol.

Usage: shop_browser.py DEVTOOLS_PORT_FILE BASE_URL SHOT_DIR DEADLINE_S

With lab/devtools.py (a DevTools client on the Python standard library only): opens a tab, then
home, a category, a product, search, add to cart (the product page's form, a real POST and 303),
and the home page again with the browser's cache off, so that every asset and image is asked
from the edge again. It records each response (URL, status, protocol, MIME type, Cache-Status)
and prints one line per check: "ok<TAB>what" or "not ok<TAB>what<TAB>why". Screenshots go to
SHOT_DIR. Everything is bounded by DEADLINE_S.
"""
import os
import sys
import time

sys.dont_write_bytecode = True  # nothing written next to the sources
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lab"))
from devtools import Browser  # noqa: E402  (lab/devtools.py: the DevTools client)

CHECKS = []
NCHECKS = 20  # the checks main() makes when it runs to the end (the shell test's plan counts on it)


def check(cond, what, why=""):
    CHECKS.append((bool(cond), what, why))
    print(("ok\t%s" % what) if cond else ("not ok\t%s\t%s" % (what, why)), flush=True)


def main():
    port_file, base, shots, budget = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3], float(sys.argv[4])
    b = Browser.connect(port_file, time.time() + budget)
    tab = b.tab()

    def js(expr):
        return tab.js(expr)

    def responses():
        return tab.take_responses()

    def go(url, name):
        tab.navigate(url)
        tab.screenshot(os.path.join(shots, name + ".png"))

    def after_submit(name):
        tab.wait_load()
        tab.screenshot(os.path.join(shots, name + ".png"))

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
    after_submit("4-search")
    responses()
    check(js("location.pathname + location.search") == "/search?q=lamp" and
          js("document.querySelectorAll('.card').length") > 0, "search: an HTML page of results")
    images_ok("search")

    # 5. add to cart: the product page's form (a POST answered 303, followed to /cart)
    go(prod, "5-product-again")
    responses()
    js("document.querySelector('form.buy').submit()")
    after_submit("6-cart")
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
    tab = b.tab(fresh_context=True)
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
