#!/usr/bin/env bash
# cdn-lab top and the status page (issue 14, "a live view while the lab runs"), and the lab found
# without CDN_LAB_DIR. The default lab up (namespaces when root, else loopback), a bounded shopper
# load from every region in the background, then: `top --once` shows every edge with a nonzero
# req/s and a state; `top --http` serves /status.json (every edge, its figures) and the HTML page,
# which headless Chromium shows with a row and a chart line per edge and numbers that change under
# load (tests/integration/lab_top.py; skipped with the reason when Chromium cannot start); every
# region's progress and summary are in the load's logs; `down` without -s or CDN_LAB_DIR finds the
# only lab up, keeps the logs, and says so when none is up; with two labs registered, commands ask
# which. Counts and states only, no timing assertions. The labs are registered in a registry of
# this test's own (CDN_LAB_REGISTRY), so labs of other tests running meanwhile do not count.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
lab=$(bin cdn-lab)
for p in cdn-lab cdn-load cdn-edge cdn-dns shop-app shop-lb; do
    [ -x "$(bin $p)" ] || { echo "1..0 # SKIP $p is not built"; exit 0; }
done
plan 34
unset CDN_LAB_DIR
export CDN_LAB_REGISTRY="$T/registry"
S="$T/lab"

# nothing up: down says so (and succeeds), status says there is no lab
out=$("$lab" down 2>&1); rc=$?
like "$rc $out" "^0 no lab is up" "down with no lab up: says so, exit 0"

prom=""; command -v prometheus >/dev/null 2>&1 && prom=--prometheus  # optional (Debian's prometheus)
out=$("$lab" -s "$S" up $prom "$top_srcdir/lab/topologies/default.yaml" 2>&1); rc=$?
is "$rc" 0 "up"
[ $rc -eq 0 ] || { diag "$out"; "$lab" -s "$S" down --drop-logs >/dev/null 2>&1; for i in $(seq 3 34); do skip "the lab is not up"; done; exit 0; }
edges="eu1 us1 ap1 shield"
# up --prometheus: every daemon is a target, and each is up (waits for the first scrapes)
if [ -n "$prom" ]; then
    eval "$("$lab" -s "$S" env)"
    ex=(); [ -n "$LAB_NS_dns" ] && ex=(ip netns exec "$LAB_NS_dns")
    targets() { "${ex[@]}" curl -s -m 2 "http://$LAB_ADDR_dns:9090/api/v1/targets" | python3 -c '
import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"]
print(len(t), sum(1 for x in t if x["health"] == "up"))' 2>/dev/null; }
    for i in $(seq 1 60); do got=$(targets); [ "$got" = "10 10" ] && break; sleep 0.5; done
    is "$got" "10 10" "up --prometheus: 10 targets (4 edges, dns, shop-lb, 3 apps, itself), all up"
else
    skip "prometheus is not installed: up --prometheus"
fi

# the load: without -s, found through the registry
"$lab" load -w shopper -c 2 -d 40s -W 1s >"$T/load.out" 2>"$T/load.err" &
loadpid=$!
sleep 4
"$lab" top --once --interval 2 >"$T/top1.txt" 2>"$T/top1.err"; rc=$?
is "$rc" 0 "top --once (lab found without -s)"
like "$(cat "$T/top1.err")" "using the only lab up, in $S" "top: says which lab it found"
cat "$T/top1.txt" | sed 's/^/#   /'
for e in $edges; do
    line=$(awk -v e="$e" '$1 == e || $1 == e"*" {print}' "$T/top1.txt")
    rs=$(echo "$line" | awk '{print $3}'); st=$(echo "$line" | awk '{print $(NF-1)}')
    ok $(awk -v r="${rs:-0}" 'BEGIN {exit !(r + 0 > 0)}'; echo $?) "top --once: $e has a nonzero req/s (${rs:--}) and is $st"
done
is "$(grep -cE ' ok +[0-9-]+$' "$T/top1.txt")" 4 "top --once: all 4 edges ok, purge lag shown"
like "$(cat "$T/top1.txt")" "origin \(shop-lb\) [0-9.]+ req/s" "top --once: the origin's requests/s"

# the status page and its JSON
P=$(free_port)
start top "$lab" -s "$S" top --http "127.0.0.1:$P"
wait_http "http://127.0.0.1:$P/status.json" 10 || bail "top --http did not start"
sleep 2.5
curl -s "http://127.0.0.1:$P/status.json" >"$T/status.json"
chk=$(python3 - "$T/status.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = d["edges"]
names = sorted(x["name"] for x in e)
moving = sum(1 for x in e if (x["req_s"] or 0) > 0)
complete = all(k in x for x in e for k in ("hit", "byte_hit", "tiers", "p50_ms", "p99_ms", "origin_s", "err_s", "state", "lag"))
hist = all(len(d["history"]["edges"][x["name"]]["req_s"]) >= 1 for x in e)
print(" ".join(names), moving, complete, hist)
PY
)
is "$chk" "ap1 eu1 shield us1 4 True True" "status.json: every edge, each with traffic, every figure, a history"
is "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "http://127.0.0.1:$P/")" "200 text/html; charset=utf-8" "status page: / is HTML"
grep -q '<svg id="c-req"' <(curl -s "http://127.0.0.1:$P/"); ok $? "status page: has the charts"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/nothing")" 404 "status page: 404 elsewhere"

# the page in Chromium
CHROME=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
why=""
if [ -z "$CHROME" ]; then
    why="chromium is not installed"
else
    mkdir -p "$T/chrome" "$T/shots"
    start chromium "$CHROME" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --user-data-dir="$T/chrome" --remote-debugging-port=0 --remote-debugging-address=127.0.0.1 \
        --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" --no-proxy-server --no-first-run --no-default-browser-check \
        --disable-background-networking --disable-component-update --disable-sync --disable-default-apps \
        --disable-extensions --window-size=1400,1000 about:blank
    if ! wait_for 15 test -s "$T/chrome/DevToolsActivePort"; then
        why="chromium did not start: $(grep -v '^\s*$' "$T/chromium.log" | tail -n 1)"
    fi
fi
want=$(sed -n 's/^NCHECKS = \([0-9]*\).*/\1/p' "$top_srcdir/tests/integration/lab_top.py")
if [ -n "$why" ]; then
    for i in $(seq 1 "$want"); do skip "$why"; done
else
    timeout 60 python3 "$top_srcdir/tests/integration/lab_top.py" "$T/chrome/DevToolsActivePort" \
        "http://127.0.0.1:$P/" "$T/shots/top.png" "$(echo $edges | tr ' ' ,)" >"$T/browser.out" 2>"$T/browser.err"
    n=0
    while IFS=$'\t' read -r res what why2; do
        case "$res" in
        ok) pass "$what"; n=$((n + 1)) ;;
        "not ok") fail "$what" "$why2"; n=$((n + 1)) ;;
        \#*) diag "${res#\# }" ;;
        esac
    done <"$T/browser.out"
    while [ "$n" -lt "$want" ]; do n=$((n + 1)); fail "browser check $n not reached" "$(tail -n 3 "$T/browser.err")"; done
    [ -n "${TOP_SHOT:-}" ] && cp "$T/shots/top.png" "$TOP_SHOT"
fi
stop top

# the load: every region's progress and summary, in the output and in the logs
wait $loadpid; ok $? "load finished"
for r in eu us ap; do
    n=$(grep -c "^\[$r\] " "$T/load.err"); s=$(grep -c "^cdn-load: $r: [0-9]* requests" "$S/logs/load-$r.txt" 2>/dev/null)
    ok $([ "$n" -ge 2 ] && [ "$s" = 1 ]; echo $?) "load: region $r: $n progress lines off a terminal, its summary in logs/load-$r.txt"
done

# the origin's access logs are what their names say: JSON lines
js=$(python3 - "$S/logs" <<'PY'
import json, sys
bad = []
for f in ("access-app1.json", "access-lb.json"):
    try:
        lines = open(sys.argv[1] + "/" + f).read().splitlines()
        n = sum(1 for l in lines if "status" in json.loads(l))
        bad += [] if n and n == len(lines) else [f]
    except (OSError, ValueError):
        bad.append(f)
print(" ".join(bad) or "json")
PY
)
is "$js" json "shop-app's and shop-lb's logs/access-*.json are JSON lines"

# the report (lab found without -s): the hit-ratio curve is a 5 s window with no thin last bin
"$lab" report -o "$T/rep" >"$T/report.out" 2>&1; ok $? "report (without -s)"
if [ -s "$T/rep/hitratio.tsv" ]; then
    thin=$(awk -F'\t' '/^#/ {e = $0; next} NF == 4 && $4 < 5 {print e, $0}' "$T/rep/hitratio.tsv")
    npts=$(grep -c '^[0-9]' "$T/rep/hitratio.tsv")
    is "$thin $(grep -c '^# ' "$T/rep/hitratio.tsv") $([ "$npts" -ge 9 ] && echo enough)" " 3 enough" \
        "report: hitratio.tsv, a curve per client edge, every point over at least 5 requests ($npts points)"
else
    skip "gnuplot is not installed: no plots"
fi

# states: a killed edge is DOWN, a drained one draining (cdn-edge's admin POST /drain, with the token)
"$lab" -s "$S" fault kill eu1 >/dev/null 2>&1
eval "$("$lab" -s "$S" env)"
ex=(); [ -n "${LAB_NS_e_us1:-}" ] && ex=(ip netns exec "$LAB_NS_e_us1")
"${ex[@]}" curl -s -o /dev/null -X POST -H "Authorization: Bearer $(cat "$S/admin.key")" "http://${LAB_MGMT_e_us1:-$LAB_ADDR_e_us1}:9080/drain"  # the admin: the management network in namespaces
st=$("$lab" -s "$S" top --once --interval 0.5 | awk '$1 ~ /^(eu1|us1|ap1|shield)/ {printf "%s=%s ", $1, $(NF-1)}')
is "$st" "eu1=DOWN us1=draining ap1=ok shield*=ok " "top: a killed edge is DOWN, a drained one draining, the others ok"

# two labs registered: a command without -s asks which one
mkdir -p "$T/other"; echo "mode loopback" >"$T/other/state"; echo "$T/other" >"$CDN_LAB_REGISTRY/cdnlab-test"
out=$("$lab" status 2>&1); rc=$?
like "$rc $out" "^2 cdn-lab: 2 labs are up; say which one" "two labs up: a command without -s asks which"
rm -f "$CDN_LAB_REGISTRY/cdnlab-test"

# down without -s: the only lab up; the logs kept beside it
out=$("$lab" down 2>&1); rc=$?; out=$(echo "$out" | tr '\n' ' ')
like "$rc $out" "^0 .*using the only lab up, in $S.*lab down: .* removed.*logs kept in $T/rep/lab-logs-" \
    "down without CDN_LAB_DIR finds the lab, keeps the logs beside the last report"
kept=$(ls -d "$T"/rep/lab-logs-* 2>/dev/null | head -1)
ok $([ -s "$kept/load-eu.log" ] && [ -s "$kept/logs/load-ap.txt" ] && [ -d "$kept/logs" ] && [ ! -d "$S" ]; echo $?) \
    "down: load logs and daemon logs kept in ${kept##*/}, the state directory removed"
out=$("$lab" down 2>&1); rc=$?
like "$rc $out" "^0 no lab is up" "down again: no lab is up"
is "$(pgrep -fc -- "$S/prometheus.yml")" 0 "down: no prometheus left"
