#!/usr/bin/env bash
# cdn-lab browse (issue 14): the default lab up (namespaces when root, else loopback), then real
# Chromium page loads from every client region through the edge its DNS answer names, cold and
# warm: the table (TTFB, LCP, load, bytes from the edge's cache / a parent's / the origin), the
# screenshots and index.html; then down. Skips with the reason without chromium or dig.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
command -v chromium >/dev/null 2>&1 || { echo "1..0 # SKIP chromium is not installed"; exit 0; }
command -v dig >/dev/null 2>&1 || { echo "1..0 # SKIP dig is not installed"; exit 0; }
lab=$(bin cdn-lab)
for p in cdn-lab cdn-edge cdn-dns shop-app shop-lb; do
    [ -x "$(bin $p)" ] || { echo "1..0 # SKIP $p is not built"; exit 0; }
done
plan 12
S="$T/lab"
export CDN_LAB_BROWSE="$top_srcdir/lab/browse.py"
out=$("$lab" -s "$S" up "$top_srcdir/lab/topologies/default.yaml" 2>&1); rc=$?
is "$rc" 0 "up"
[ $rc -eq 0 ] || diag "$out"
[ $rc -eq 0 ] || { "$lab" -s "$S" down >/dev/null 2>&1; for i in $(seq 2 10); do skip "the lab is not up"; done; exit 0; }
t0=$(date +%s)
"$lab" -s "$S" browse -o "$T/rep/browse" --product 777 --timeout 60 >"$T/browse.out" 2>"$T/browse.err"
rc=$?
is "$rc" 0 "browse: every region ran (in $(( $(date +%s) - t0 )) s)"
[ $rc -eq 0 ] || diag "$(tail -n 5 "$T/browse.err")"
tsv="$T/rep/browse/browse.tsv"
col() { awk -F'\t' -v c="$1" 'NR==1 {for (i = 1; i <= NF; i++) if ($i == c) k = i; next} {print $k}' "$tsv"; }
is "$(col region | sort -u | paste -sd' ')" "ap eu us" "browse: a row set per region"
is "$(tail -n +2 "$tsv" | wc -l)" 12 "browse: cold and warm, home and product, per region"
is "$(col proto | sort -u)" h2 "browse: every page over h2 (TLS) to the region's edge"
bad=$(awk -F'\t' 'NR==1 {for (i = 1; i <= NF; i++) h[$i] = i; next} $h["images"] < 1 || $h["load_ms"] <= 0 || $h["ttfb_ms"] < 0 {print $h["region"], $h["visitor"], $h["page"]}' "$tsv")
is "$bad" "" "browse: every page loaded with its images decoded and its timings"
# the warm visitor: everything the cold one pulled is now in the region's edge
warm=$(awk -F'\t' 'NR==1 {for (i = 1; i <= NF; i++) h[$i] = i; next} $h["visitor"] == "warm" && $h["hit_requests"] != $h["requests"] {print $h["region"], $h["page"]}' "$tsv")
is "$warm" "" "browse: the warm visitor's requests are all edge hits"
cold=$(awk -F'\t' 'NR==1 {for (i = 1; i <= NF; i++) h[$i] = i; next} $h["visitor"] == "cold" && $h["page"] == "product" {s += $h["bytes_parent"] + $h["bytes_origin"]} END {print s + 0}' "$tsv")
[ "$cold" -gt 0 ]; ok $? "browse: the cold product pages came from upstream ($cold bytes from a parent or the origin)"
is "$(ls "$T/rep/browse"/*.png | wc -l)" 12 "browse: a screenshot per page"
grep -q '<img src="eu-cold-home.png"' "$T/rep/browse/index.html"; ok $? "browse: index.html shows the table beside the screenshots"
# the lab report (after a short load) shows the table and links the screenshots
"$lab" -s "$S" load -w shopper -c 2 -d 4s -W 1s >"$T/load.out" 2>&1
"$lab" -s "$S" report -o "$T/rep" >"$T/report.out" 2>&1
grep -A2 '^page loads in Chromium per region' "$T/rep/report.txt" | grep -q 'eu *198\|TTFB ms'; ok $? "report: report.txt has the page-load table"
if command -v gnuplot >/dev/null 2>&1; then
    grep -q 'href=browse/index.html' "$T/rep/index.html"; ok $? "report: index.html links the screenshots"
else
    skip "gnuplot is not installed: cdn-lab report writes no index.html"
fi
"$lab" -s "$S" down >/dev/null 2>&1
