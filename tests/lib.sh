# tests/lib.sh - the integration-test harness: TAP output, free loopback ports, real programs
# started in the background and always stopped (by PID, process group and all) when the test
# exits, even on failure or interruption.
#
#   . "$top_srcdir/tests/lib.sh"
#   plan 3
#   port=$(free_port)
#   start origin python3 -m http.server --bind 127.0.0.1 "$port"
#   wait_port 127.0.0.1 "$port" || bail "origin did not start"
#   is "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/)" 200 "origin answers"
#
# Variables: top_srcdir, top_builddir (set by make check; derived when run by hand), T (a private
# temp dir, removed at exit unless KEEP=1).
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
# Tests live two levels down (tests/integration/x.sh); fix up if run from elsewhere.
[ -f "$top_srcdir/tests/lib.sh" ] || top_srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/cdntest.XXXXXX")
# Labs a test brings up are registered in the test's own folder: a `cdn-lab down` without -s
# (a user's, or another test's) never finds them, and the test never finds theirs.
export CDN_LAB_REGISTRY="$T/lab-registry"
_tap_n=0
_tap_failed=0
_pids=()
_names=()

plan() { echo "1..$1"; }
_result() {  # _result ok|not ok, description
    _tap_n=$((_tap_n + 1))
    echo "$1 $_tap_n - $2"
}
ok() {  # ok CONDITION-EXIT-STATUS DESCRIPTION  e.g. ok $? "x"  or: cmd; ok $? "desc"
    if [ "$1" -eq 0 ]; then _result ok "$2"; else _result "not ok" "$2"; _tap_failed=1; fi
}
pass() { _result ok "$1"; }
fail() { _result "not ok" "$1"; _tap_failed=1; [ $# -gt 1 ] && diag "$2"; return 0; }
is() {  # is GOT EXPECTED DESCRIPTION
    if [ "$1" = "$2" ]; then _result ok "$3"; else
        _result "not ok" "$3"; _tap_failed=1; diag "got: '$1'"; diag "expected: '$2'"; fi
}
like() {  # like GOT EXTENDED-REGEX DESCRIPTION
    if printf '%s' "$1" | grep -Eq -- "$2"; then _result ok "$3"; else
        _result "not ok" "$3"; _tap_failed=1; diag "got: '$(printf '%s' "$1" | head -c 600)'"; diag "expected to match: $2"; fi
}
unlike() {
    if printf '%s' "$1" | grep -Eq -- "$2"; then _result "not ok" "$3"; _tap_failed=1;
        diag "got: '$(printf '%s' "$1" | head -c 600)'"; diag "expected not to match: $2"; else _result ok "$3"; fi
}
skip() { _result ok "# SKIP $1"; }
diag() { printf '# %s\n' "$*"; }
bail() { echo "Bail out! $*"; _dump_logs; exit 1; }

# A free TCP and UDP port on 127.0.0.1, drawn at random below the kernel's ephemeral range
# (ip_local_port_range): a port the kernel hands out may be taken by any outgoing connection of a
# test running beside us before our server binds it.
free_port() {
    python3 - <<'PY'
import random, socket
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except Exception:
    lo = 32768
lo = max(lo, 12000)
while True:
    p = random.randrange(10000, lo)
    t = socket.socket(); u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        t.bind(("127.0.0.1", p)); u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
PY
}

# start NAME CMD... : runs CMD in its own process group, output to $T/NAME.log; sets $! / pid_NAME.
start() {
    local name=$1; shift
    setsid "$@" >"$T/$name.log" 2>&1 </dev/null &
    local pid=$!
    _pids+=("$pid"); _names+=("$name")
    eval "pid_${name//[^a-zA-Z0-9_]/_}=$pid"
}
# stop NAME [SIGNAL] : signals the process group, waits up to 10 s, then kills. Returns the exit status.
stop() {
    local name=$1 sig=${2:-TERM} i pid=""
    for i in "${!_names[@]}"; do [ "${_names[$i]}" = "$name" ] && pid=${_pids[$i]}; done
    [ -n "$pid" ] || return 127
    kill -"$sig" -- "-$pid" 2>/dev/null || kill -"$sig" "$pid" 2>/dev/null
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
# running PID : alive and not a zombie (an orphan killed by a signal stays a zombie until init reaps it).
running() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$st" != Z ] && [ -n "$st" ]
}

# wait_port HOST PORT [SECONDS] : until something accepts TCP there.
wait_port() {
    local i n=$(( ${3:-10} * 20 ))
    for i in $(seq 1 $n); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
# wait_http URL [SECONDS] : until URL answers anything at all over HTTP.
wait_http() {
    local i n=$(( ${2:-10} * 20 ))
    for i in $(seq 1 $n); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.05
    done
    return 1
}
# wait_for SECONDS CMD... : until CMD succeeds.
wait_for() {
    local i n=$(( $1 * 20 )); shift
    for i in $(seq 1 $n); do "$@" && return 0; sleep 0.05; done
    return 1
}

_dump_logs() {
    local f
    for f in "$T"/*.log; do
        [ -f "$f" ] || continue
        diag "--- ${f##*/} (last 20 lines)"
        tail -n 20 "$f" | sed 's/^/#   /'
    done
}
# _group_alive PGID : some member of the process group is still running (not a zombie).
_group_alive() {
    local pg=$1 f line st pgrp
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null < "$f" || continue
        read -r st _ pgrp _ <<< "${line##*) }"
        [ "$pgrp" = "$pg" ] && [ "$st" != Z ] && return 0
    done
    return 1
}
_cleanup() {
    local rc=$? i
    for i in "${!_pids[@]}"; do kill -TERM -- "-${_pids[$i]}" 2>/dev/null; done
    for i in "${!_pids[@]}"; do
        for _ in $(seq 1 30); do kill -0 "${_pids[$i]}" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-${_pids[$i]}" 2>/dev/null
    done
    for i in "${!_pids[@]}"; do
        for _ in $(seq 1 40); do _group_alive "${_pids[$i]}" || break; sleep 0.05; done
    done
    wait 2>/dev/null
    [ "$_tap_failed" -ne 0 ] && _dump_logs
    [ "${KEEP:-0}" = 1 ] && echo "# kept $T" || rm -rf "$T"
    exit $rc
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

# sanitized PATH : the program is built with AddressSanitizer (./configure --enable-sanitizers). Its
# RSS then includes ASan's quarantine of freed memory: a test of memory growth skips there.
sanitized() { ldd "$1" 2>/dev/null | grep -q 'libasan'; }

# Programs built by make: bin NAME -> path.
bin() {
    local p
    for p in "$top_builddir/$1" "$top_builddir/edge/$1" "$top_builddir/dns/$1" "$top_builddir/origin/$1" \
             "$top_builddir/lab/$1" "$top_builddir/tests/$1"; do
        [ -x "$p" ] && { echo "$p"; return 0; }
    done
    echo "$1"
}

# start_redis NAME : a private redis-server on a free loopback port (AOF on, no RDB snapshots, its
# files under $T/NAME, DEBUG allowed from loopback: DEBUG SLEEP makes a slow Redis), stopped with
# the test like any other program. Sets REDIS_PORT and
# REDIS_URL (redis://127.0.0.1:PORT). Returns 1 when redis-server is missing or does not answer:
# the caller skips with that reason.
start_redis() {
    local name=${1:-redis}
    command -v redis-server >/dev/null 2>&1 || return 1
    REDIS_PORT=$(free_port)
    mkdir -p "$T/$name"
    start "$name" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync everysec --dir "$T/$name" --daemonize no --protected-mode yes --loglevel warning \
        --enable-debug-command local
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    wait_for 10 sh -c "redis-cli -p $REDIS_PORT ping 2>/dev/null | grep -q PONG"
}
