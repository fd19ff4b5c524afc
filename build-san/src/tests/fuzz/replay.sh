#!/usr/bin/env bash
# Replays every fuzz harness's seed corpus (tests/fuzz/corpus/<name>/) through the harness: one TAP
# line per harness. A crash, a sanitizer report or a hang fails it.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
names=()
for d in "$top_srcdir"/tests/fuzz/corpus/*/; do names+=("$(basename "$d")"); done
plan ${#names[@]}
for n in "${names[@]}"; do
    h="$top_builddir/tests/fuzz/fuzz_$n"
    if [ ! -x "$h" ]; then fail "fuzz_$n is built" "no harness at $h"; continue; fi
    files=("$top_srcdir/tests/fuzz/corpus/$n"/*)
    if timeout 120 "$h" "${files[@]}" >"$T/$n.log" 2>&1; then
        pass "fuzz_$n replays ${#files[@]} seeds"
    else
        fail "fuzz_$n replays ${#files[@]} seeds" "$(tail -n 20 "$T/$n.log")"
    fi
done
