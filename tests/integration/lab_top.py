"""tests/integration/lab_top.py - cdn-lab top's status page in headless Chromium (lab_top.sh runs it).

    python3 lab_top.py DEVTOOLS_PORT_FILE URL SHOT.png EDGE[,EDGE...]

Opens the page, waits for frames, and prints one TAP-like line per check ("ok\tWHAT" or
"not ok\tWHAT\tWHY"; "# ..." lines are comments): the table has a row per edge, with a numeric
req/s; the client edges' req/s changes between frames while the load runs; every chart has a line
per edge; the page loaded nothing from elsewhere. Then a screenshot.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lab"))
from devtools import Browser  # noqa: E402

NCHECKS = 6


def main():
    port_file, url, shot, edges = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
    b = Browser.connect(port_file, deadline=time.time() + 50)
    t = b.tab(width=1400, height=1000)
    t.navigate(url)
    out = []

    def check(cond, what, why=""):
        out.append("ok\t%s" % what if cond else "not ok\t%s\t%s" % (what, why))

    # frames: the page reads status.json every second; wait for 3 of them
    end = time.time() + 20
    while time.time() < end and (t.js("window.cdnTop ? window.cdnTop.frames : 0") or 0) < 3:
        time.sleep(0.3)
    rows_js = ("Array.from(document.querySelectorAll('#edges tbody tr')).map(r => "
               "[r.dataset.edge, r.querySelector('.req').textContent, r.querySelector('.state').textContent])")
    first = t.js(rows_js) or []
    names = [r[0] for r in first]
    check(sorted(names) == sorted(edges), "status page: a row per edge (%s)" % ",".join(names), "want %s" % edges)
    nums = bool(first) and all(r[1] != "-" and float(r[1]) >= 0 for r in first)
    check(nums, "status page: every edge has a numeric req/s", repr(first))
    check(all(r[2] in ("ok", "draining", "FAILING", "DOWN") for r in first) and first,
          "status page: every edge has a state", repr(first))
    # the numbers move under load: the client edges' req/s, seen over the next frames
    seen = {n: set() for n in names}
    end = time.time() + 8
    while time.time() < end:
        for r in t.js(rows_js) or []:
            seen.setdefault(r[0], set()).add(r[1])
        if all(len(v) > 1 for v in seen.values()):
            break
        time.sleep(0.5)
    still = [n for n, v in seen.items() if len(v) < 2]
    check(seen and not still, "status page: every edge's req/s changes between frames under load", "unchanged: %s" % still)
    lines = t.js("Array.from(document.querySelectorAll('#c-req polyline')).map(p => p.dataset.edge)") or []
    check(sorted(lines) == sorted(edges), "status page: the req/s chart has a line per edge", repr(lines))
    res = t.js("performance.getEntriesByType('resource').map(e => e.name)") or []
    foreign = [u for u in res if not u.startswith(url.rstrip("/"))]
    check(res and not foreign, "status page: nothing loaded from elsewhere (%d resources, all from the page)" % len(res), repr(foreign[:3]))
    t.screenshot(shot)
    print("\n".join(out))
    print("# screenshot %s" % shot)


if __name__ == "__main__":
    main()
