#!/usr/bin/env bash
# The independent HTTP cache conformance suite (http-tests/cache-tests, npm package http-cache-tests,
# pinned below) run against cdn-edge: the suite's own origin on 127.0.0.1, cdn-edge in front of it,
# the suite's CLI client through the edge. Asserts (see tests/conformance/README.md):
#   a result for every test the CLI runs; every required test passes unless cachetests.expected
#   lists it; every listed test still fails (a fix must take it off the list); at least as many
#   passes as each peer cache whose results ship in the package (nginx, varnish, ATS, squid).
# The package is installed once with npm into a cache folder outside the source tree; without node,
# npm or the registry the test skips.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

CT_VERSION=0.4.5
HERE=$top_srcdir/tests/conformance

skip_all() { plan 1; skip "$1"; exit 0; }

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
command -v node >/dev/null 2>&1 || skip_all "node is not installed (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || skip_all "npm is not installed (apt-get install nodejs npm)"
# The package's engines field: node >= 14.8 (top-level await in its .mjs files).
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 14 || (a === 14 && b >= 8) ? 0 : 1)' ||
    skip_all "node $(node --version) is older than 14.8"

# The package cache: shared by every build and clone on the machine, kept between runs.
cache=${CDN_NPM_CACHE:-/var/cache/cdn-lab/npm}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
    cache=${HOME:-/nonexistent}/.cache/cdn-lab/npm
    mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || skip_all "no writable npm cache folder (set CDN_NPM_CACHE)"
fi
dest=$cache/http-cache-tests-$CT_VERSION
CT_DIR=$dest/node_modules/http-cache-tests
installed() {
    [ "$(node -p 'require(process.argv[1]).version' "$CT_DIR/package.json" 2>/dev/null)" = "$CT_VERSION" ] &&
        [ -f "$dest/.complete" ]
}
if ! installed; then
    # One installer at a time (parallel make check, several clones); install into a staging folder
    # and rename it into place, so an interrupted install is never taken for a complete one.
    exec 9>"$cache/.lock"
    flock -w 120 9 || skip_all "could not lock $cache/.lock"
    if ! installed; then
        stage=$(mktemp -d "$cache/.stage.XXXXXX")
        echo '{"private": true}' > "$stage/package.json"
        if ! timeout 120 npm install --prefix "$stage" --cache "$cache/_npm" --no-audit --no-fund \
                --no-update-notifier --loglevel=error "http-cache-tests@$CT_VERSION" > "$T/npm.log" 2>&1; then
            rm -rf "$stage"
            why=$(grep -m1 -E 'npm (ERR!|error) (code|errno|network|notarget|404)' "$T/npm.log" || tail -n 1 "$T/npm.log")
            skip_all "npm install http-cache-tests@$CT_VERSION failed: ${why//#/}"
        fi
        touch "$stage/.complete"
        rm -rf "$dest" && mv "$stage" "$dest"
    fi
    exec 9>&-
    installed || skip_all "http-cache-tests $CT_VERSION is not where npm was asked to put it"
fi
diag "http-cache-tests $CT_VERSION from $CT_DIR, node $(node --version)"

OP=$(free_port); EP=$(free_port); AP=$(free_port)
# The npm_config_* variables are how the suite's scripts take their settings (package.json config).
start origin env CT_DIR="$CT_DIR" npm_config_protocol=http npm_config_port="$OP" \
    npm_config_pidfile="$T/origin.pid" node "$HERE/origin-lo.mjs"
wait_port 127.0.0.1 "$OP" 20 || bail "the suite's origin did not start"
mkdir -p "$T/db"
start edge "$EDGE" -a "127.0.0.1:$EP" -A "127.0.0.1:$AP" -b "http://127.0.0.1:$OP" -d "$T/db" -w 1 -n ct \
    --edge-cc Surrogate-Control
wait_http "http://127.0.0.1:$AP/healthz" || bail "cdn-edge did not start"
# The origin must not be reachable from outside the machine: its port has one listener, on 127.0.0.1.
listeners=$(ss -Hltn "sport = :$OP" | awk '{print $4}' | sort -u | tr '\n' ' ')

# The whole suite, once. An empty id runs every test; the CLI prints test-id -> result as JSON.
timeout 50 env -u npm_config_id npm_package_config_id= npm_config_base="http://127.0.0.1:$EP" \
    node --no-warnings "$CT_DIR/cli.mjs" > "$T/cdn-edge.json" 2> "$T/cli.log"
rc=$?
[ $rc -eq 0 ] || bail "the suite's CLI exited with $rc (timeout: 124): $(tail -n 3 "$T/cli.log")"
node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$T/cdn-edge.json" 2>/dev/null ||
    bail "the suite's CLI printed no JSON: $(head -c 300 "$T/cdn-edge.json")"

node "$HERE/verdict.mjs" "$CT_DIR" "$T/cdn-edge.json" "$HERE/cachetests.expected" > "$T/verdict.tsv" 2> "$T/verdict.log" ||
    bail "verdict.mjs failed: $(tail -n 3 "$T/verdict.log")"

plan $(( $(grep -c -v '^diag' "$T/verdict.tsv") + 3 ))
is "$listeners" "127.0.0.1:$OP " "the suite's origin listens on 127.0.0.1 only"
running "$pid_edge"; ok $? "cdn-edge is still running after the suite"
# Exit 0 also means no leak report in a sanitizer build.
stop edge; is "$?" 0 "cdn-edge exits 0 on SIGTERM after the suite"
while IFS=$'\t' read -r kind desc detail; do
    case $kind in
        diag) diag "$desc" ;;
        ok) pass "$desc" ;;
        "not ok") if [ -n "${detail:-}" ]; then fail "$desc" "$detail"; else fail "$desc"; fi ;;
    esac
done < "$T/verdict.tsv"
diag "results: $T/cdn-edge.json (kept with KEEP=1); one test verbosely: see tests/conformance/README.md"
