# tests/pglib.sh - private PostgreSQL servers for tests, sourced after tests/lib.sh.
#
# Debian's PostgreSQL 15 binaries (/usr/lib/postgresql/15/bin, not on PATH; override with PG_BIN)
# refuse to run as root: as root the servers run as the `postgres` user (runuser), otherwise as
# the caller. Each server: initdb into $T/NAME (trust authentication for the user `shop`, on
# loopback only), `postgres` in the foreground on a free 127.0.0.1 port with its socket in
# $T/NAME, started and stopped with the test like any other program (lib.sh's start/stop).
#
#   pg_usable || skip_all "$PG_SKIP"
#   start_postgres pg  && P=$PG_URL            # postgresql://shop@127.0.0.1:PORT/postgres
#   start_pg_replica rep pg                    # pg_basebackup -R from server pg, a hot standby
#   pg_sql "$PG_URL" "SELECT 1"                # psql -Atqc
: "${PG_BIN:=/usr/lib/postgresql/15/bin}"

# Sets PG_SKIP and returns 1 when no private server can run here.
pg_usable() {
    if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/postgres" ]; then
        PG_SKIP="no PostgreSQL binaries in $PG_BIN (apt-get install postgresql)"; return 1
    fi
    command -v psql >/dev/null 2>&1 || { PG_SKIP="no psql (apt-get install postgresql-client)"; return 1; }
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || { PG_SKIP="running as root and there is no postgres user to run the server as"; return 1; }
        command -v runuser >/dev/null 2>&1 || { PG_SKIP="running as root without runuser"; return 1; }
    fi
    return 0
}

# The command prefix that runs a server program as its unprivileged owner.
_pg_as() {
    if [ "$(id -u)" = 0 ]; then echo "runuser -u postgres --"; fi
}

_pg_dir() {  # _pg_dir NAME : $T/NAME, reachable and owned by the server's user
    local dir="$T/$1"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chmod o+x "$T"; chown postgres "$dir"; fi
    chmod 700 "$dir"
    echo "$dir"
}

# _pg_run NAME DIR PORT [postgres -c options...] : the server in the foreground, waited for.
_pg_run() {
    local name=$1 dir=$2 port=$3; shift 3
    # shellcheck disable=SC2046
    start "$name" $(_pg_as) "$PG_BIN/postgres" -D "$dir/data" -p "$port" -k "$dir" \
        -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=on -c full_page_writes=off \
        -c max_connections=100 -c shared_buffers=32MB -c dynamic_shared_memory_type=mmap "$@"
    wait_for 20 pg_isready -q -h 127.0.0.1 -p "$port" -U shop -d postgres || { diag "$name did not start: $(tail -n 5 "$T/$name.log")"; return 1; }
    # pg_isready answers before the database takes connections on a standby: ask once for real
    wait_for 20 psql -Atqc "SELECT 1" "postgresql://shop@127.0.0.1:$port/postgres" >/dev/null 2>&1
}

# start_postgres NAME [postgres -c options...] : a primary. Sets PG_PORT, PG_URL; the port is also
# in PG_PORT_<NAME>.
start_postgres() {
    local name=$1; shift
    pg_usable || return 1
    local dir; dir=$(_pg_dir "$name")
    # shellcheck disable=SC2046
    $(_pg_as) "$PG_BIN/initdb" -D "$dir/data" -A trust -U shop -E UTF8 --no-sync >"$T/$name.initdb.log" 2>&1 ||
        { PG_SKIP="initdb failed: $(tail -n 2 "$T/$name.initdb.log")"; return 1; }
    PG_PORT=$(free_port)
    eval "PG_PORT_${name//[^a-zA-Z0-9_]/_}=$PG_PORT"
    _pg_run "$name" "$dir" "$PG_PORT" "$@" || return 1
    PG_URL="postgresql://shop@127.0.0.1:$PG_PORT/postgres"
}

# start_pg_replica NAME PRIMARY : a streaming replica of server PRIMARY (pg_basebackup -R: it
# connects back as `shop`, trust on loopback), hot standby. Sets PG_PORT, PG_URL.
start_pg_replica() {
    local name=$1 primary=$2; shift 2
    local pport; eval "pport=\$PG_PORT_${primary//[^a-zA-Z0-9_]/_}"
    local dir; dir=$(_pg_dir "$name")
    # shellcheck disable=SC2046
    $(_pg_as) "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$pport" -U shop -D "$dir/data" -R -X stream -c fast \
        >"$T/$name.basebackup.log" 2>&1 || { diag "pg_basebackup failed: $(tail -n 3 "$T/$name.basebackup.log")"; return 1; }
    PG_PORT=$(free_port)
    eval "PG_PORT_${name//[^a-zA-Z0-9_]/_}=$PG_PORT"
    _pg_run "$name" "$dir" "$PG_PORT" -c hot_standby=on "$@" || return 1
    PG_URL="postgresql://shop@127.0.0.1:$PG_PORT/postgres"
}

# restart_pg NAME NEWNAME : runs a stopped server's data folder again (same port) as NEWNAME.
restart_pg() {
    local name=$1 new=$2 port; eval "port=\$PG_PORT_${name//[^a-zA-Z0-9_]/_}"
    _pg_run "$new" "$T/$name" "$port"
}

pg_sql() { psql -Atqc "$2" "$1"; }

# skip_all REASON : the whole test skips (TAP "1..0 # SKIP").
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
