#!/usr/bin/env bash
# tests/coverage.sh - `make coverage`: line coverage of the whole test suite, per program folder.
#
# Builds an instrumented copy out of the tree (BUILD, default ./build-cov: gcc --coverage -O0)
# from the distributed sources, runs `make check` there, and prints the lines covered in dns/,
# edge/, lib/, origin/, lab/ and in total (gcovr 5.2 from Debian: installed here when missing, as
# the benchmark scripts install their peers). MIN=88 makes it fail below that total.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build-cov}
if ! command -v gcovr >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcovr >/dev/null 2>&1
    command -v gcovr >/dev/null 2>&1 || { echo "coverage: gcovr is needed (apt-get install gcovr)"; exit 1; }
fi
mkdir -p "$build"
src=$top
if [ -f "$top/config.status" ]; then
    src=$build/src
    make -C "$top" distdir distdir="$src" >"$build/distdir.log" 2>&1 || { echo "coverage: make distdir failed"; exit 1; }
fi
if [ ! -f "$build/Makefile" ]; then
    # -O0 for lines that map to the source; gcc then warns of "maybe uninitialised" buffers that
    # are outputs (a const void * argument): not an error in this build
    (cd "$build" && "$src/configure" -q CFLAGS="-O0 -g --coverage -Wno-error=maybe-uninitialized" LDFLAGS="--coverage") ||
        { echo "coverage: configure failed"; exit 1; }
fi
find "$build" -name '*.gcda' -delete
make -C "$build" -j2 >"$build/build.log" 2>&1 || { tail -n 30 "$build/build.log"; exit 1; }
make -C "$build" -j2 check >"$build/check.log" 2>&1
npass=$(grep -c '^PASS:' "$build/check.log")
echo "make check: $npass passed, $(grep -cE '^(FAIL|ERROR):' "$build/check.log") failed"
[ "$npass" -gt 0 ] || { tail -n 20 "$build/check.log"; echo "coverage: make check did not run"; exit 1; }
total=""
for d in dns edge lib origin lab ""; do
    # gcovr 5.2 (bookworm): --print-summary; filters are regexes on absolute paths
    line=$(cd "$build" && gcovr -r "$src" --object-directory "$build" ${d:+--filter "$src/$d/"} \
        --exclude "$src/tests/" --print-summary -o /dev/null 2>/dev/null | grep '^lines:')
    printf '%-8s %s\n' "${d:-total}" "${line#lines: }"
    [ -z "$d" ] && total=$(echo "$line" | grep -o '[0-9.]*%' | head -1 | tr -d %)
done
if [ -n "${MIN:-}" ] && [ -n "$total" ] && awk -v t="$total" -v m="$MIN" 'BEGIN { exit !(t < m) }'; then
    echo "coverage: $total% is below $MIN%"
    exit 1
fi
