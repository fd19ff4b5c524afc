#!/usr/bin/env python3
"""lab/browse.py - `cdn-lab browse`: real page loads in Chromium from every client region.

    cdn-lab [-s STATE] browse [-o DIR] [--product ID] [--timeout S]

For each region of the lab that is up, the client's view: the name www.shop.test is resolved by
the lab's DNS from that region's client address (so the edge is the one cdn-dns gives that region,
or the anycast address), and headless Chromium runs inside the region's client namespace
(namespaces mode: behind the WAN delays), with www.shop.test and img.shop.test mapped to that
answer. Two visitors per region, each in a fresh browser context (no browser cache): "cold", the
first, and "warm", the same pages again right after, so the edge has what the first one pulled.
Each loads the home page and one product page (--product, default one that changes every run, so
its page and images are new to the edges). For every page: navigation timing (TTFB, LCP, load),
the requests that crossed the network (not those the browser's own cache answered, e.g. the
stylesheet on the second page), and the bytes that came from the edge's cache, a parent's cache or the origin (by the
Cache-Status list: the last member is the edge the browser talked to).

Writes DIR (default STATE/report/browse): browse.tsv, browse.txt (the table, also printed),
index.html (the table beside the screenshots) and REGION-VISITOR-PAGE.png.

The same script is its own worker: `browse.py --worker ...` runs inside a namespace (via
ip netns exec) and prints one JSON line per page.
"""
import argparse
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # nothing written next to the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

NAMES = ("www.shop.test", "img.shop.test")
PORT = 8443


def chromium_path():
    for c in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if c:
            return c
    return None


# ------------------------------------------------------------------ the worker (in a namespace)

NAV_JS = """(() => { const n = performance.getEntriesByType('navigation')[0];
  return {ttfb: n.responseStart - n.startTime, load: (n.loadEventEnd || n.loadEventStart) - n.startTime,
          proto: n.nextHopProtocol}; })()"""
LCP_JS = """new Promise(r => { try { new PerformanceObserver(l => { const e = l.getEntries();
  r(e.length ? e[e.length - 1].startTime : -1); }).observe({type: 'largest-contentful-paint', buffered: true}); }
  catch (x) { r(-1); } setTimeout(() => r(-1), 2000); })"""


def where(cs):
    """Which cache answered, from a Cache-Status list (RFC 9211: each cache appends its member, so
    the last is the edge the browser talked to, earlier ones its parents): "edge" (a hit there),
    "parent" (a miss there that a parent's cache answered), "origin", or "" (no Cache-Status)."""
    members = [m.strip() for m in cs.split(",") if m.strip()]
    if not members:
        return ""
    hit = ["hit" in [p.strip() for p in m.split(";")[1:]] for m in members]
    return "edge" if hit[-1] else "parent" if any(hit[:-1]) else "origin"


def worker(a):
    from devtools import Browser
    prof = tempfile.mkdtemp(prefix="cdnlab-browse.")
    rules = ", ".join("MAP %s %s" % (n, a.addr) for n in NAMES) + ", MAP * ~NOTFOUND"
    cmd = [a.chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--user-data-dir=" + prof, "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
           "--host-resolver-rules=" + rules, "--ignore-certificate-errors", "--no-proxy-server",
           "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
           "--disable-features=Translate,OptimizationHints,MediaRouter", "--window-size=1280,900", "about:blank"]
    log = open(os.path.join(prof, "chromium.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        b = Browser.connect(os.path.join(prof, "DevToolsActivePort"), time.time() + a.timeout)
        base = "https://www.shop.test:%d" % PORT
        pages = [("home", base + "/"), ("product", base + "/p/%d" % a.product)]
        for visitor in ("cold", "warm"):
            tab = b.tab(fresh_context=True)
            for name, url in pages:
                t0 = time.time()
                tab.navigate(url, timeout=max(5, a.timeout / 4))
                wall = (time.time() - t0) * 1000
                nav = tab.js(NAV_JS) or {}
                lcp = tab.js(LCP_JS)
                res = [r for r in tab.take_responses() if not r["browser_cache"]]  # what crossed the network
                shot = "%s-%s-%s.png" % (a.region, visitor, name)
                tab.screenshot(os.path.join(a.out, shot))
                edge = sum(r["bytes"] for r in res if where(r["cs"]) == "edge")
                parent = sum(r["bytes"] for r in res if where(r["cs"]) == "parent")
                origin = sum(r["bytes"] for r in res if where(r["cs"]) == "origin")
                imgs = tab.js("Array.from(document.images).filter(i => i.naturalWidth > 0).length")
                print(json.dumps({"region": a.region, "edge": a.addr, "visitor": visitor, "page": name,
                                  "ttfb_ms": round(nav.get("ttfb", -1)), "lcp_ms": round(lcp if lcp is not None else -1),
                                  "load_ms": round(nav.get("load", -1)), "wall_ms": round(wall),
                                  "proto": nav.get("proto", ""), "requests": len(res),
                                  "hit_requests": sum(1 for r in res if where(r["cs"]) == "edge"),
                                  "bytes_edge": edge, "bytes_parent": parent, "bytes_origin": origin,
                                  "images": imgs, "shot": shot}),
                      flush=True)
        return 0
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # chromium and the children it started, by our child's group
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(prof, ignore_errors=True)


# ------------------------------------------------------------------ the orchestrator

def lab_env(lab, state):
    out = subprocess.run([lab, "-s", state, "env"], capture_output=True, text=True, timeout=20)
    if out.returncode != 0:
        sys.exit("cdn-lab browse: no lab up in %s (%s)" % (state, out.stderr.strip()))
    env = {}
    for line in out.stdout.splitlines():
        k, _, v = line.partition("=")
        env[k] = v
    return env


def resolve(env, ns, client, name):
    """The lab DNS's answer for name, asked from the client's address (its region's view)."""
    dns, _, port = env["LAB_DNS"].rpartition(":")
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["dig", "+short", "+time=2", "+tries=2", "-b", client,
                                                          "-p", port, "@" + dns, name, "A"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=15).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return next((a for a in out if a.count(".") == 3), None)


def table(rows):
    head = ["region", "edge", "visitor", "page", "TTFB ms", "LCP ms", "load ms", "proto", "requests", "edge hits",
            "KB edge cache", "KB parent cache", "KB origin", "images"]
    lines = [head]
    for r in rows:
        lines.append([r["region"], r["edge"], r["visitor"], r["page"], str(r["ttfb_ms"]), str(r["lcp_ms"]),
                      str(r["load_ms"]), r["proto"], str(r["requests"]), str(r["hit_requests"]),
                      "%.1f" % (r["bytes_edge"] / 1024), "%.1f" % (r["bytes_parent"] / 1024),
                      "%.1f" % (r["bytes_origin"] / 1024), str(r["images"])])
    w = [max(len(l[i]) for l in lines) for i in range(len(head))]
    return lines, "\n".join("  ".join(c.ljust(w[i]) for i, c in enumerate(l)).rstrip() for l in lines) + "\n"


def write_html(path, lines, rows):
    with open(path, "w") as f:
        f.write("<!doctype html><meta charset=utf-8><title>cdn-lab browse</title>"
                "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
                "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}"
                ".shots{display:flex;flex-wrap:wrap;gap:1em}.shots figure{margin:0;width:320px}"
                ".shots img{width:320px;border:1px solid #ccc}</style>\n"
                "<h1>Page loads in Chromium, per region</h1>\n<p>Each visitor is a fresh browser (no browser"
                " cache): <em>cold</em> first, <em>warm</em> right after. Bytes as received (encoded), split by"
                " who answered in Cache-Status: the region's edge, a parent (shield) cache, or the origin.</p>\n<table>\n")
        f.write("<tr>" + "".join("<th>%s</th>" % html.escape(c) for c in lines[0]) + "</tr>\n")
        for l in lines[1:]:
            f.write("<tr>" + "".join("<td>%s</td>" % html.escape(c) for c in l) + "</tr>\n")
        f.write("</table>\n<div class=shots>\n")
        for r in rows:
            f.write("<figure><img src=\"%s\" alt=\"\"><figcaption>%s %s %s: load %s ms</figcaption></figure>\n"
                    % (html.escape(r["shot"]), html.escape(r["region"]), r["visitor"], r["page"], r["load_ms"]))
        f.write("</div>\n")


def main():
    ap = argparse.ArgumentParser(prog="cdn-lab browse")
    ap.add_argument("-o", "--out")
    ap.add_argument("--product", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60, help="seconds per region")
    ap.add_argument("--lab", default="cdn-lab")
    ap.add_argument("-s", "--state", default=os.environ.get("CDN_LAB_DIR") or "/tmp/cdn-lab-%d" % os.getuid())
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--region", help=argparse.SUPPRESS)
    ap.add_argument("--addr", help=argparse.SUPPRESS)
    ap.add_argument("--chromium", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a)

    chromium = chromium_path()
    if chromium is None:
        sys.exit("cdn-lab browse: chromium is not installed (apt-get install chromium)")
    if shutil.which("dig") is None:
        sys.exit("cdn-lab browse: dig is not installed (apt-get install dnsutils)")
    env = lab_env(a.lab, a.state)
    out = os.path.abspath(a.out or os.path.join(env.get("LAB_STATE", a.state), "report", "browse"))
    os.makedirs(out, exist_ok=True)
    product = a.product or 1 + int(time.time()) % 1000  # new to the edges on most runs
    regions = sorted(k[len("LAB_ADDR_c_"):] for k in env if k.startswith("LAB_ADDR_c_"))
    rows, failed = [], 0
    for reg in regions:
        client = env["LAB_ADDR_c_" + reg]
        ns = env.get("LAB_NS_c_" + reg, "") if env.get("LAB_MODE") == "netns" else ""
        edge = resolve(env, ns, client, NAMES[0])
        if edge is None:
            print("cdn-lab browse: %s: the lab DNS gave no address for %s" % (reg, NAMES[0]), file=sys.stderr)
            failed += 1
            continue
        cmd = (["ip", "netns", "exec", ns] if ns else []) + [
            sys.executable, os.path.abspath(__file__), "--worker", "--region", reg, "--addr", edge,
            "--chromium", chromium, "-o", out, "--product", str(product), "--timeout", str(a.timeout)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout + 15)
        except subprocess.TimeoutExpired:
            print("cdn-lab browse: %s: timed out" % reg, file=sys.stderr)
            failed += 1
            continue
        got = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        rows += got
        if p.returncode != 0 or len(got) != 4:
            failed += 1
            print("cdn-lab browse: %s: %s" % (reg, (p.stderr.strip().splitlines() or ["?"])[-1]), file=sys.stderr)
    if not rows:
        return 1
    lines, text = table(rows)
    with open(os.path.join(out, "browse.tsv"), "w") as f:
        f.write("\t".join(rows[0].keys()) + "\n")
        for r in rows:
            f.write("\t".join(str(v) for v in r.values()) + "\n")
    with open(os.path.join(out, "browse.txt"), "w") as f:
        f.write(text)
    write_html(os.path.join(out, "index.html"), lines, rows)
    sys.stdout.write(text)
    print("product page /p/%d; screenshots and index.html in %s" % (product, out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
