#!/usr/bin/env bash
# tests/fuzz/run.sh - `make fuzz`: every libFuzzer harness for a bounded time under ASan + UBSan.
#
#   tests/fuzz/run.sh [SECONDS] [NAME...]      (default 60 s each; NAME as in fuzz_NAME, e.g. edge_cc)
#
# Builds an instrumented copy out of the tree (BUILD, default ./build-fuzz: CC=clang
# --enable-fuzzers --enable-sanitizers), runs each harness on a scratch copy of its seed corpus
# (tests/fuzz/corpus/NAME/), then merges what it found back into that folder minimised (-merge=1),
# so the grown corpus can be committed and `make check` replays it. A crash, leak or sanitizer
# report stops that harness, keeps the input under BUILD/crashes/ and makes the run fail.
# Needs clang (Debian's clang); bounded: SECONDS per harness, nothing runs longer.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}; [ $# -gt 0 ] && shift
build=${BUILD:-$top/build-fuzz}
command -v clang >/dev/null 2>&1 || { echo "fuzz: clang is not installed (apt-get install clang)"; exit 1; }
mkdir -p "$build"
src=$top
if [ -f "$top/config.status" ]; then
    # autoconf builds out of a tree only when the tree is not configured itself: build from a copy
    # of the distributed sources instead, refreshed every run (timestamps kept: make rebuilds
    # only what changed)
    src=$build/src
    make -C "$top" distdir distdir="$src" >"$build/fuzz-distdir.log" 2>&1 ||
        { tail -n 20 "$build/fuzz-distdir.log"; echo "fuzz: make distdir failed"; exit 1; }
fi
if [ ! -f "$build/Makefile" ]; then
    (cd "$build" && "$src/configure" -q CC=clang --enable-fuzzers --enable-sanitizers) ||
        { echo "fuzz: configure failed"; exit 1; }
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for d in "$top"/tests/fuzz/corpus/*/; do names+=("$(basename "$d")"); done
fi
make -C "$build" -j2 $(printf 'tests/fuzz/fuzz_%s ' "${names[@]}") >"$build/fuzz-build.log" 2>&1 ||
    { tail -n 30 "$build/fuzz-build.log"; echo "fuzz: build failed"; exit 1; }
mkdir -p "$build/crashes"
failed=0; passed=0
for n in "${names[@]}"; do
    h="$build/tests/fuzz/fuzz_$n"
    seeds="$top/tests/fuzz/corpus/$n"
    work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$n.XXXXXX")
    cp -r "$seeds/." "$work/" 2>/dev/null
    before=$(ls "$seeds" | wc -l)
    if "$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
           -artifact_prefix="$build/crashes/$n-" "$work" >"$build/fuzz-$n.log" 2>&1; then
        mkdir -p "$work.min"
        "$h" -merge=1 "$work.min" "$seeds" "$work" >>"$build/fuzz-$n.log" 2>&1
        # keep the seeds as they are; add only what the merge found new
        for f in "$work.min"/*; do [ -e "$seeds/$(basename "$f")" ] || cp "$f" "$seeds/"; done
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/fuzz-$n.log" | tail -1 | grep -o '[0-9]*$')
        echo "fuzz_$n: ${secs} s, ${runs:-?} runs, clean; corpus $before -> $(ls "$seeds" | wc -l)"
        passed=$((passed + 1))
    else
        echo "fuzz_$n: FAILED (see $build/fuzz-$n.log; input in $build/crashes/)"
        grep -m 5 -E 'ERROR|SUMMARY|runtime error' "$build/fuzz-$n.log" | sed 's/^/  /'
        failed=$((failed + 1))
    fi
    rm -rf "$work" "$work.min"
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
