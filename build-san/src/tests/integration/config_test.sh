#!/usr/bin/env bash
# `-t` (config test) in every daemon: cdn-edge, cdn-dns, shop-app and shop-lb exit 0 on a good
# file and 1 on a bad one (2 stays for a bad command line); every error in a file, a value that
# does not parse as well as one that parses but makes no sense (an address, a vhost named twice,
# an unreadable certificate, a route to a pool that does not exist), names FILE:LINE:COL and the
# reason; and a config test writes nothing (TMPDIR, HOME and XDG_CACHE_HOME stay empty).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 49

EDGE=$(bin cdn-edge); DNS=$(bin cdn-dns); APP=$(bin shop-app); LB=$(bin shop-lb)
for p in "$EDGE" "$DNS" "$APP" "$LB"; do [ -x "$p" ] || bail "$p not built"; done
mkdir -p "$T/tmp" "$T/home" "$T/cache" "$T/c"
export TMPDIR=$T/tmp HOME=$T/home XDG_CACHE_HOME=$T/cache
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
    -subj /CN=localhost >/dev/null 2>&1 || bail "openssl"

# t NAME PROG ARGS... : runs PROG ARGS -t -c $T/c/NAME.yaml (the file written before), sets out/rc
t() {
    local name=$1 prog=$2; shift 2
    out=$("$prog" "$@" -t -c "$T/c/$name.yaml" 2>&1); rc=$?
}
# bad NAME LINE REASON-REGEX PROG [ARGS]: the file is refused with exit 1 and NAME.yaml:LINE:COL: REASON
bad() {
    local name=$1 line=$2 re=$3; shift 3
    t "$name" "$@"
    is "$rc" 1 "${1##*/} -t $name.yaml: exit 1"
    like "$out" "$name\.yaml:$line:[0-9]+: .*$re" "${1##*/} -t $name.yaml: file:line:col and the reason"
}
y() { cat > "$T/c/$1.yaml"; }

# --- cdn-edge
y edge-good <<'Y'
listen: ["127.0.0.1:18080"]
origin: http://127.0.0.1:18000
name: lab-1.eu_a
Y
t edge-good "$EDGE"; is "$rc" 0 "cdn-edge -t: a good file exits 0 ($out)"
y edge-listen <<'Y'
origin: http://127.0.0.1:18000
listen: ["127.0.0.1:18080", "127.0.0.1:99999"]
Y
bad edge-listen 2 "listen" "$EDGE"
y edge-tls <<'Y'
origin: http://127.0.0.1:18000
listen: ["127.0.0.1:18080"]
tls_listen: ["nowhere:x"]
Y
bad edge-tls 3 "tls_listen" "$EDGE"
y edge-admin <<'Y'
origin: http://127.0.0.1:18000
listen: ["127.0.0.1:18080"]
admin: "127.0.0.1:port"
Y
bad edge-admin 3 "admin" "$EDGE"
y edge-scheme <<'Y'
listen: ["127.0.0.1:18080"]
origin: ftp://127.0.0.1:18000
Y
bad edge-scheme 2 "http:// or https://" "$EDGE"
y edge-twice <<'Y'
listen: ["127.0.0.1:18080"]
vhosts:
  a.test: {origin: "http://127.0.0.1:18000"}
  b.test: {origin: "http://127.0.0.1:18000", aliases: [A.Test]}
Y
bad edge-twice 4 "a.test.* two vhosts" "$EDGE"
y edge-cert <<Y
listen: ["127.0.0.1:18080"]
tls_listen: ["127.0.0.1:18443"]
origin: http://127.0.0.1:18000
cert: $T/nonexistent.pem
key: $T/key.pem
Y
bad edge-cert 4 "cert" "$EDGE"
y edge-key <<Y
listen: ["127.0.0.1:18080"]
tls_listen: ["127.0.0.1:18443"]
origin: http://127.0.0.1:18000
cert: $T/cert.pem
key: $T/cert.pem
Y
bad edge-key 5 "key" "$EDGE"
y edge-name <<'Y'
listen: ["127.0.0.1:18080"]
origin: http://127.0.0.1:18000
name: my edge
Y
bad edge-name 3 "a token" "$EDGE"
y edge-nolisten <<'Y'
origin: http://127.0.0.1:18000
Y
t edge-nolisten "$EDGE"; is "$rc" 1 "cdn-edge -t: a file without a listener exits 1"
out=$("$EDGE" -t -a 127.0.0.1:18080 -b http://127.0.0.1:18000 -n "my edge" 2>&1); rc=$?
is "$rc" 2 "cdn-edge -n 'my edge': exit 2"
like "$out" "name.*my edge.*a token" "cdn-edge -n 'my edge': the error says why"
out=$("$EDGE" -t -a 127.0.0.1:18080 -b http://127.0.0.1:18000 -n "1edge" 2>&1); rc=$?
is "$rc" 2 "cdn-edge -n 1edge (a digit first is no token): exit 2"
"$EDGE" -t -a 127.0.0.1:18080 -b http://127.0.0.1:18000 -n "a/b" >/dev/null 2>&1; rc=$?
is "$rc" 2 "cdn-edge -n a/b ('/' is no token character: Via and CDN-Loop would break): exit 2"

# --- cdn-dns
sed 's/^listen: .*/listen: [127.0.0.1:15399]/; s/^admin: .*/admin: 127.0.0.1:15398/' \
    "$top_srcdir/dns/examples/lab.yaml" > "$T/c/dns-good.yaml"
t dns-good "$DNS"; is "$rc" 0 "cdn-dns -t: a good file exits 0"
y dns-region <<'Y'
listen: [127.0.0.1:15399]
regions:
  eu: {subnets: [127.0.1.0/24]}
edges:
  - {name: e1, region: mars, addresses: [127.0.20.1]}
zones:
  - {name: x.test, soa: "ns1 hostmaster 1 3600 600 86400 30", records: ["@ NS ns1"]}
Y
bad dns-region 5 "unknown region" "$DNS"
y dns-listen <<'Y'
listen: [127.0.0.1:99999]
zones:
  - {name: x.test, soa: "ns1 hostmaster 1 3600 600 86400 30", records: ["@ NS ns1"]}
Y
bad dns-listen 1 "" "$DNS"

# --- shop-app (the catalog does not exist: a config test must not make it)
y app-good <<'Y'
listen: 127.0.0.1:18081
Y
t app-good "$APP"; is "$rc" 0 "shop-app -t: a good file exits 0 ($out)"
y app-gooddb <<Y
listen: 127.0.0.1:18081
db: $T/c/catalog.db
Y
t app-gooddb "$APP"; is "$rc" 0 "shop-app -t: a good file naming a catalog still to be made exits 0"
[ ! -e "$T/c/catalog.db" ]; ok $? "shop-app -t: the catalog named in the file is not generated"
echo "not sqlite" > "$T/c/junk.db"
y app-junkdb <<Y
listen: 127.0.0.1:18081
db: $T/c/junk.db
Y
bad app-junkdb 2 "not a catalog" "$APP"
y app-prefix <<'Y'
listen: 127.0.0.1:18081
headers:
  - prefix: img
Y
bad app-prefix 3 "prefix must start with '/'" "$APP"
y app-level <<'Y'
listen: 127.0.0.1:18081
log_level: loud
Y
bad app-level 2 "debug, info" "$APP"
y app-nolisten <<'Y'
name: a
Y
t app-nolisten "$APP"; is "$rc" 1 "shop-app -t: a file without listen exits 1"

# --- shop-lb
y lb-good <<'Y'
listen: 127.0.0.1:18082
pools:
  app: {backends: [{addr: 127.0.0.1:18081}]}
routes:
  - {prefix: /, pool: app}
Y
t lb-good "$LB"; is "$rc" 0 "shop-lb -t: a good file exits 0 ($out)"
y lb-pool <<'Y'
listen: 127.0.0.1:18082
pools:
  app: {backends: [{addr: 127.0.0.1:18081}]}
routes:
  - {prefix: /, pool: nope}
Y
bad lb-pool 5 "unknown pool" "$LB"
y lb-backend <<'Y'
listen: 127.0.0.1:18082
pools:
  app:
    backends:
      - {addr: 127.0.0.1:18081}
      - {addr: "no port"}
Y
bad lb-backend 6 "host:port" "$LB"
y lb-protect <<'Y'
listen: 127.0.0.1:18082
pools:
  app: {backends: [{addr: 127.0.0.1:18081}]}
protected:
  - {prefix: api, token: x}
Y
bad lb-protect 5 "start with '/'" "$LB"
y lb-health <<'Y'
listen: 127.0.0.1:18082
health: {path: healthz}
pools:
  app: {backends: [{addr: 127.0.0.1:18081}]}
Y
bad lb-health 2 "health.path" "$LB"
y lb-level <<'Y'
listen: 127.0.0.1:18082
log_level: loud
pools:
  app: {backends: [{addr: 127.0.0.1:18081}]}
Y
bad lb-level 2 "log_level" "$LB"

# --- nothing written by any of the config tests above
is "$(cd "$T" && find tmp home cache -mindepth 1 | head -5 | tr '\n' ' ')" "" "config tests wrote nothing to TMPDIR, HOME or XDG_CACHE_HOME"
