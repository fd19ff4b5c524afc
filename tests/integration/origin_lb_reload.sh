#!/usr/bin/env bash
# shop-lb reloaded 100 times (SIGHUP, each waited for): every reload is taken (none refused, as
# the 65th was when old configs were kept until exit), it still serves and applies the last file,
# its RSS stays flat (replaced configs are freed), and it stops cleanly.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 8
APP=$(bin shop-app)
LB=$(bin shop-lb)
[ -x "$APP" ] && [ -x "$LB" ] || bail "shop-app / shop-lb are not built"
"$APP" --generate 100 --seed 3 --db "$T/cat.db" >"$T/gen.log" 2>&1 || bail "catalog"
P=$(free_port); L=$(free_port); A=$(free_port)
start app "$APP" -a 127.0.0.1:$P --db "$T/cat.db" --name app1
wait_http http://127.0.0.1:$P/healthz || bail "app did not start"
conf() {  # conf N: the config of reload N (a token that changes, a route per reload parity)
    cat >"$T/lb.yaml" <<YAML
listen: 127.0.0.1:$L
admin: 127.0.0.1:$A
health: {interval: 200ms, rise: 1, slow_start: 0s}
pools:
  shop: {algo: rr, backends: [{addr: 127.0.0.1:$P}]}
routes:
  - {prefix: /, pool: shop}
  - {prefix: /r$(( $1 % 2 ))/, pool: shop}
protected:
  - {prefix: /secret/, token: t$1}
YAML
}
conf 0
start lb "$LB" --threads 2 -c "$T/lb.yaml"
serves() { test "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$L/p/$1)" = 200; }
reloads() { curl -s http://127.0.0.1:$A/metrics | sed -n 's/^shop_lb_reloads_total{result="ok"} //p'; }
reloaded() { test "$(reloads)" = "$1"; }
wait_for 10 serves 1 || bail "lb does not serve"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid_lb/status"; }
served=0
for i in $(seq 1 100); do
    conf $i
    kill -HUP "$pid_lb"
    wait_for 5 reloaded $i || break
    [ $i = 20 ] && rss20=$(rss)
    if [ $((i % 10)) = 0 ]; then
        serves $i && served=$((served + 1))
    fi
done
is "$(reloads)" 100 "100 reloads taken"
is "$served" 10 "it served between reloads"
grep -q 'reload refused' "$T/lb.log"; [ $? -ne 0 ]; ok $? "no reload refused"
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer t100' http://127.0.0.1:$L/secret/x) $(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer t99' http://127.0.0.1:$L/secret/x)" \
    "404 401" "the last file is the one in force"
retired() { test "$(curl -s http://127.0.0.1:$A/metrics | sed -n 's/^shop_lb_config_retired //p')" = 0; }
wait_for 5 retired; ok $? "every replaced config freed (shop_lb_config_retired 0)"
rss100=$(rss)
growth=$(( rss100 - ${rss20:-0} ))
if sanitized "$LB"; then skip "RSS under ASan counts its quarantine of freed memory (${rss20:-?} -> $rss100 kB)"
else [ -n "$rss20" ] && [ $growth -lt 4096 ]; ok $? "RSS flat from reload 20 to 100 (${rss20:-?} -> $rss100 kB)"; fi
running "$pid_lb"; ok $? "still running"
stop lb; is "$?" 0 "graceful stop after the reloads"
