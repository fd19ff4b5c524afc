#!/usr/bin/env bash
# cdn-edge SIGHUP: the config file is read again and the vhost table swapped (a new vhost is
# served, a changed origin used); a bad file keeps the running table and the error names
# file:line; a changed key that a reload cannot apply (listen, workers, ram, ...) is logged by name
# with its old and new values as needing a restart; the process keeps serving throughout. Without
# dir: the store folder is made in TMPDIR and removed at exit.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 16

EDGE=$(bin cdn-edge)
[ -x "$EDGE" ] || bail "cdn-edge not built"
O1P=$(free_port); O2P=$(free_port); EP=$(free_port); AP=$(free_port)
O1=http://127.0.0.1:$O1P; O2=http://127.0.0.1:$O2P
start o1 python3 "$top_srcdir/tests/integration/edge_origin.py" "$O1P"
start o2 python3 "$top_srcdir/tests/integration/edge_origin.py" "$O2P"
wait_port 127.0.0.1 "$O1P" && wait_port 127.0.0.1 "$O2P" || bail "origins did not start"
conf() {  # conf VHOSTS-YAML [WORKERS [MORE-YAML]]: the whole file, listeners fixed
    printf 'listen: ["127.0.0.1:%s"]\nadmin: 127.0.0.1:%s\nworkers: %s\nname: rl\n%svhosts:\n%s\n' \
        "$EP" "$AP" "${2:-2}" "${3:-}" "$1" > "$T/edge.yaml"
}
conf "  a.test: {origin: \"$O1\"}"
mkdir "$T/tmp"
TMPDIR=$T/tmp start edge "$EDGE" -c "$T/edge.yaml"
wait_http "http://127.0.0.1:$AP/healthz" || bail "edge did not start"
store=$(ls -d "$T"/tmp/cdn-edge.* 2>/dev/null)
[ -n "$store" ] && [ -d "$store" ]; ok $? "without dir: the store folder is made in TMPDIR ($store)"
get() { curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$EP$2"; }
count() { curl -s "$1/_count?p=$2"; }
logged() { grep -q -- "$1" "$T/edge.log"; }

is "$(get a.test /max60/1)" 200 "a.test is served"
is "$(get b.test /max60/1)" 421 "b.test is not (yet)"

# add b.test (on the other origin) and move a.test there too
conf "  a.test: {origin: \"$O2\"}
  b.test: {origin: \"$O2\"}"
kill -HUP "$pid_edge"
wait_for 10 logged 'reloaded .*edge.yaml: 2 vhost names'; ok $? "SIGHUP: reloaded (logged)"
is "$(get b.test /max60/2)" 200 "b.test is served after the reload"
is "$(count "$O2" /max60/2)" 1 "from its origin"
get a.test /max60/3 >/dev/null
is "$(count "$O2" /max60/3)/$(count "$O1" /max60/3)" "1/0" "a.test's new origin is used"
logged 'needs a restart'; is "$?" 1 "a reload that changed vhosts only names no key as not applied"

# keys a reload cannot apply: each changed one is named with its values, the rest still applies
conf "  a.test: {origin: \"$O2\"}
  b.test: {origin: \"$O2\"}
  c.test: {origin: \"$O1\"}" 4 'ram: 64m
'
kill -HUP "$pid_edge"
wait_for 10 logged 'reloaded .*edge.yaml: 3 vhost names'; ok $? "SIGHUP: reloaded c.test"
logged "reload: 'workers' changed (2 -> 4): needs a restart, not applied"; ok $? "the log names 'workers' (2 -> 4) as not applied"
logged "reload: 'ram' changed (.* -> 67108864 bytes): needs a restart, not applied"; ok $? "... and 'ram'"
logged "reloaded .*edge.yaml: .*2 changed keys not applied"; ok $? "... and the reload does not claim the whole file"

# a broken file: the error names file:line, the running vhosts stay
printf 'listen: ["127.0.0.1:%s"]\nvhosts:\n  c.test: {origin: 42x, nope: [}\n' "$EP" > "$T/edge.yaml"
kill -HUP "$pid_edge"
wait_for 10 logged 'reload failed, keeping the running vhosts: .*edge.yaml:3'; ok $? "a bad file: the error names edge.yaml:3"
is "$(get b.test /max60/4)" 200 "b.test is still served"
stop edge; is "$?" 0 "SIGTERM after reloads: clean exit 0"
[ -n "$store" ] && [ ! -e "$store" ]; ok $? "the store folder in TMPDIR is removed at exit"
