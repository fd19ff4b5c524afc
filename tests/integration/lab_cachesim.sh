#!/usr/bin/env bash
# cdn-cachesim on the shipped 10k-request CloudPhysics traces (tests/data/traces: oracleGeneral and
# CSV, both .zst): counts, the compulsory-miss floor at 100% of the working set, miss ratios that
# never rise with the cache size, .zst == plain, CSV header == --csv-cols, --limit, clear errors for
# a cut-short .zst, a cut-short .bin and bad options; cdn-load reads .zst traces. When the full
# cloudPhysicsIO trace is there (CDN_TRACES, or ../shared/traces beside the source tree), LRU, S3-FIFO and SIEVE must reproduce libCacheSim's published
# miss counts exactly (its test/test_evictionAlgo.c, 128 MiB..1 GiB).
. "$top_srcdir/tests/lib.sh"
plan 24
sim=$(bin cdn-cachesim)
like "$({ "$sim" -V 2>&1; echo "rc=$?"; } | tr '\n' ' ')" '^cdn-cachesim [0-9.]+ rc=0 $' "-V prints the version and exits 0 (it exited 2)"
D="$top_srcdir/tests/data/traces"
og="$D/cloudPhysicsIO_10k.oracleGeneral.bin.zst"
csv="$D/cloudPhysicsIO_10k.csv.zst"
# field N of the row for POLICY and SIZE in a table on stdin
col() { awk -v p="$1" -v s="$2" -v c="$3" '$1 == p && $2 == s { print $c }'; }

"$sim" -s 1%,10%,100% "$og" >"$T/og.out" 2>"$T/og.err"
ok $? "cdn-cachesim runs on the .bin.zst trace"
like "$(cat "$T/og.out")" "requests 10000  objects 5581  working_set_bytes 216636416( |$)" "request, object and working-set counts"
for p in lru s3fifo sieve; do
    is "$(col $p 100% 6 <"$T/og.out")" 5581 "$p at 100% of the working set misses each object once"
done
l1=$(col lru 1% 6 <"$T/og.out"); l10=$(col lru 10% 6 <"$T/og.out")
[ "$l1" -ge "$l10" ] && [ "$l10" -ge 5581 ]; ok $? "LRU misses never rise with the size ($l1 >= $l10 >= 5581)"
like "$(cat "$T/og.err")" "M requests/s" "speed reported on stderr"

if command -v zstd >/dev/null; then
    zstd -q -d -c "$og" >"$T/plain.oracleGeneral.bin"
    "$sim" -s 1%,10%,100% "$T/plain.oracleGeneral.bin" >"$T/plain.out" 2>/dev/null
    is "$(tail -n +2 "$T/plain.out")" "$(tail -n +2 "$T/og.out")" "the plain .bin gives the same table as the .zst"
    head -c 100000 "$T/plain.oracleGeneral.bin" >"$T/cut.bin"   # 4166 records and 16 stray bytes
    out=$("$sim" "$T/cut.bin" 2>&1); rc=$?
    is "$rc" 1 "a cut-short .bin exits 1"
    like "$out" "cut.bin: truncated: 100000 bytes is 4166 records and 16 stray bytes" "... and says where"
else
    skip "zstd CLI not installed"; skip "zstd CLI not installed"; skip "zstd CLI not installed"
fi

"$sim" -p lru -s 1% "$csv" >"$T/csv.out" 2>/dev/null
like "$(cat "$T/csv.out")" "requests 10000  objects 5581 " "CSV .zst: columns found by the header names"
"$sim" -p lru -s 1% -f csv --csv-cols id=5,size=4,time=2 "$csv" >"$T/csv2.out" 2>/dev/null
is "$(tail -n +2 "$T/csv2.out")" "$(tail -n +2 "$T/csv.out")" "--csv-cols gives the same as the header"
like "$("$sim" -p lru -n 1000 "$og" 2>/dev/null)" "requests 1000 " "--limit 1000 replays 1000 requests"

head -c 20000 "$og" >"$T/cut.bin.zst"
out=$("$sim" "$T/cut.bin.zst" 2>&1); rc=$?
is "$rc" 1 "a cut-short .zst exits 1"
like "$out" "cut.bin.zst: zstd: truncated" "... with a clear reason"
unlike "$out" "policy" "... and no table"
out=$("$sim" -p lru,fifo "$og" 2>&1); is "$?" 2 "an unknown policy is a usage error"
like "$out" "unknown policy" "... that names the problem"

# cdn-load takes the same .zst (the trace is read before any network use; DNS here is a closed port).
load=$(bin cdn-load)
out=$(timeout 20 "$load" -D 127.0.0.1:9 -w "trace:$T/cut.bin.zst" -N 1 -d 1s 2>&1); rc=$?
[ "$rc" = 1 ] && [[ "$out" == *"zstd: truncated"* ]]; ok $? "cdn-load reports a cut-short .zst trace"
out=$(timeout 20 "$load" -D 127.0.0.1:9 -w "trace:$og" --h2c -N 1 -d 1s 2>&1)
# (its first line names the workload and the seed; anything else about the trace is a complaint)
unlike "$(echo "$out" | grep -v ': workload trace:')" "trace|zst" "cdn-load accepts a .bin.zst trace"

# Against libCacheSim's published numbers (test/test_evictionAlgo.c, cloudPhysicsIO.oracleGeneral.bin).
full=""
for d in "${CDN_TRACES:-}" "$top_srcdir/../shared/traces" /work/shared/traces; do
    [ -n "$d" ] && [ -f "$d/cloudPhysicsIO.oracleGeneral.bin" ] && { full="$d/cloudPhysicsIO.oracleGeneral.bin"; break; }
done
if [ -n "$full" ]; then
    "$sim" -p lru,s3fifo,sieve -s 128M,256M,384M,512M,640M,768M,896M,1024M "$full" >"$T/full.out" 2>/dev/null
    got() { awk -v p="$1" '$1 == p { printf "%s%s", sep, $6 "/" $7; sep = " " }' "$T/full.out"; }
    is "$(got lru)" "93374/4214303232 89783/4061242368 83572/3778040320 81722/3660569600 72494/3100927488 72104/3078128640 71972/3075403776 71704/3061662720" \
        "LRU: libCacheSim's miss counts and bytes at 128 MiB..1 GiB"
    is "$(got sieve)" "91699/4158632960 86720/3917211648 78578/3536227840 76707/3455379968 69945/3035580416 66221/2801699328 64445/2699456000 64376/2696345600" \
        "SIEVE: libCacheSim's miss counts and bytes at 128 MiB..1 GiB"
    is "$(got s3fifo)" "90117/4058576896 80915/3573827584 75060/3244417024 72191/3061737984 69815/2898109952 65542/2628363776 60799/2425027072 56045/2327934464" \
        "S3-FIFO: libCacheSim's miss counts and bytes at 128 MiB..1 GiB"
else
    skip "no ../shared/traces/cloudPhysicsIO.oracleGeneral.bin (set CDN_TRACES)"
    skip "no ../shared/traces/cloudPhysicsIO.oracleGeneral.bin (set CDN_TRACES)"
    skip "no ../shared/traces/cloudPhysicsIO.oracleGeneral.bin (set CDN_TRACES)"
fi
