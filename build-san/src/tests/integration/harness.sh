#!/usr/bin/env bash
# The harness itself: ports, readiness, and that nothing a test started outlives it, even when the
# test fails or is interrupted.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 8

p=$(free_port)
like "$p" '^[0-9]+$' "free_port gives a port number"
start web python3 -m http.server --bind 127.0.0.1 "$p" --directory "$T"
wait_port 127.0.0.1 "$p" 10; ok $? "wait_port sees the server listen"
echo hello > "$T/hello.txt"
is "$(curl -s "http://127.0.0.1:$p/hello.txt")" hello "a real client talks to it"
stop web
! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; ok $? "stop leaves the port closed"

# A child test that starts a server with a grandchild and then fails: both must be gone after it.
cat > "$T/child.sh" <<CHILD
. "$top_srcdir/tests/lib.sh"
start sleeper bash -c 'sleep 300 & echo \$! > "$T/grandchild.pid"; wait'
wait_for 5 test -s "$T/grandchild.pid"
echo \$pid_sleeper > "$T/child.pid"
plan 1
fail "deliberate failure"
exit 1
CHILD
out=$(bash "$T/child.sh" 2>&1); rc=$?
is "$rc" 1 "a failing test exits non-zero"
like "$out" 'not ok 1 - deliberate failure' "its failure is reported as TAP"
cpid=$(cat "$T/child.pid" 2>/dev/null); gpid=$(cat "$T/grandchild.pid" 2>/dev/null)
[ -n "$cpid" ] && ! running "$cpid"; ok $? "the failed test's server ($cpid) is gone"
[ -n "$gpid" ] && ! running "$gpid"; ok $? "and so is its grandchild ($gpid)"
