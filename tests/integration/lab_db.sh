#!/usr/bin/env bash
# The lab with PostgreSQL (lab/topologies/db.yaml): cdn-lab up starts a primary and two replicas
# (one behind the WAN in namespaces mode), status shows their replication, and each database fault
# runs from one command: lag (read-your-writes through shop-lb), replica-down (reads go on),
# primary-down (writes 503, reads go on), db-start, promote (writes come back); down leaves no
# server behind. Namespaces mode as root, loopback otherwise; skipped without PostgreSQL.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/pglib.sh"
lab=$(bin cdn-lab)
for p in cdn-edge cdn-dns shop-app shop-lb cdn-lab; do
    [ -x "$(bin $p)" ] || skip_all "$p is not built"
done
pg_usable || skip_all "$PG_SKIP"
plan 21
S="$T/st"
chmod o+x "$T" # the servers run as the postgres user under root: their folders are in $T/st
out=$("$lab" -s "$S" up "$top_srcdir/lab/topologies/db.yaml" 2>&1); rc=$?
is "$rc" 0 "up with db: primary and two replicas"
[ $rc -eq 0 ] || { diag "$out"; "$lab" -s "$S" down >/dev/null 2>&1; exit 1; }
trap '"$lab" -s "$S" down >/dev/null 2>&1; _cleanup' EXIT
like "$out" "db +db-r2 +eu +postgresql://" "up names the database servers"
eval "$("$lab" -s "$S" env)"
ns=${LAB_NS_lb:-}; ex=(); [ -n "$ns" ] && ex=(ip netns exec "$ns")
lb=http://$LAB_LB
reads() {  # N: product pages through shop-lb, prints how many failed
    local f=0 i
    for i in $(seq 1 "$1"); do
        [ "$("${ex[@]}" curl -s -o /dev/null -m 5 -w '%{http_code}' "$lb/p/$((RANDOM % 500 + 1))")" = 200 ] || f=$((f + 1))
    done
    echo "$f"
}
wait_for 20 sh -c "'$lab' -s '$S' status | grep -q 'replica db-r2 *streaming'"
st=$("$lab" -s "$S" status 2>&1)
like "$st" "replica db-r1 +streaming +replay lag [0-9]+ bytes" "status: db-r1 streams, with its lag"
like "$st" "replica db-r2 +streaming" "status: db-r2 streams"
like "$("$lab" -s "$S" top --once 2>&1)" "replica db-r1 +streaming +replay lag [0-9]+ bytes" "top: the replicas' lag under the edges"
is "$(reads 10)" 0 "catalog reads through shop-lb"

# a price change reaches an edge's cached copy with nothing done by hand (outbox -> relay -> purge)
nc=${LAB_NS_c_eu:-}; exc=(); [ -n "$nc" ] && exc=(ip netns exec "$nc")
price() { "${exc[@]}" curl -s -m 5 -H 'Host: www.shop.test' "http://$LAB_ADDR_e_eu1:8080/api/products/150" | sed -n 's/.*"price_cents":\([0-9]*\).*/\1/p'; }
old=$(price); price >/dev/null # cached at the edge now
"$lab" -s "$S" change price 150 77777 >"$T/change.out" 2>&1; ok $? "change price: one command ($(cat "$T/change.out"))"
wait_for 10 sh -c "grep -q '^outbox [0-9]* product-150 ' '$S/logs/outbox.log'"
like "$(grep '^outbox [0-9]* product-150 ' "$S/logs/outbox.log")" "replayed [0-9]+ published [0-9]+ acked" "the relay published the product's tags after the replicas replayed"
got=""; for t in $(seq 1 50); do got=$(price); [ "$got" = 77777 ] && break; sleep 0.1; done
is "$got" 77777 "the edge answers the new price (it was $old)"

out=$("$lab" -s "$S" fault lag db-r1 2>&1)
like "$out" "read its own cart \(sid \+ dbw, from the primary\): yes" "lag: the writer reads its own write"
like "$out" "without dbw \(the replica\): the older cart" "lag: the replica lags behind meanwhile"

out=$("$lab" -s "$S" fault replica-down db-r1 2>&1)
like "$out" "replica-down db-r1" "replica-down: one command"
is "$(reads 20)" 0 "replica down: 20 reads, 0 failed"
"$lab" -s "$S" fault db-start db-r1 >/dev/null 2>&1; ok $? "db-start db-r1"

out=$("$lab" -s "$S" fault primary-down db-primary 2>&1)
like "$out" "now answers 503" "primary-down: cart writes answer 503"
is "$(reads 20)" 0 "primary down: 20 reads, 0 failed"
"$lab" -s "$S" fault db-start db-primary >/dev/null 2>&1; ok $? "db-start db-primary"

out=$("$lab" -s "$S" fault promote db-r1 2>&1)
like "$out" "writes answered 200 again [0-9.]+ s after the fault began" "promote: the apps follow, writes come back"
diag "$out"
like "$("$lab" -s "$S" status 2>&1)" "db db-r1 +primary" "promote: db-r1 takes writes"
wait_for 20 sh -c "'$lab' -s '$S' status | grep -q 'replica db-r2 *streaming'"
ok $? "promote: db-r2 streams from the new primary"

"$lab" -s "$S" down >/dev/null 2>&1
trap _cleanup EXIT
! pgrep -f "postgres -D $S/" >/dev/null; ok $? "down: no database server left"
