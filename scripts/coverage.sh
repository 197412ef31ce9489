#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make coverage`: line and branch coverage of src/ by the test suite.
#   1. configure + build build-coverage/ (RelWithDebInfo as the test trees, so NDEBUG as
#      there, but -O0 --coverage: KILN_COVERAGE=ON), libkiln shared + static + tests
#   2. zero the counters (delete *.gcda), run ctest -j2 (tests needing a GPU skip, 77)
#   3. gcovr over src/ only (tests/, bench/, tools/, examples/ and the fake libcuda are
#      built instrumented too, but left out of the report), with the gcov of the
#      compiler that built the tree, writing into build-coverage/:
#        coverage.html (+ coverage.*.html)  per-file pages with each line's counts
#        coverage.json                      gcovr's JSON (gcovr --add-tracefile reads it)
#        coverage-summary.json              per-file totals (gcovr --json-summary)
#        coverage.xml                       Cobertura XML
#        coverage.txt                       gcovr's text report: lines, uncovered ranges
#      and prints a per-file / per-directory table of lines and branches to stdout.
# Not part of `make check`. Test failures do not stop the report, but make the script
# exit 1 after it. scripts/deps.sh (gcovr) is run by the Makefile.
# Environment: KILN_COVERAGE_JOBS (ctest -j, default 2), KILN_COVERAGE_CTEST_ARGS
# (extra ctest arguments, e.g. "-L ^unit$"), KILN_GCOV (the gcov command).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
dir=$root/build-coverage
jobs=${KILN_COVERAGE_JOBS:-2}

now() { date +%s; }
fmt() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
t0=$(now)

echo "=== [coverage] configure + build build-coverage/ (RelWithDebInfo, -O0 --coverage)"
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_COVERAGE=ON \
  -DKILN_SANITIZE= -DKILN_WERROR=OFF
cmake --build "$dir"
t_build=$(now)

# The gcov matching the compiler: gcov-<major> for gcc, llvm-cov gcov for clang.
gcov_cmd=${KILN_GCOV:-}
if [[ -z "$gcov_cmd" ]]; then
  compiler_file=$(find "$dir/CMakeFiles" -maxdepth 2 -name CMakeCCompiler.cmake | head -1)
  cc_id=$(sed -n 's/^set(CMAKE_C_COMPILER_ID "\(.*\)")$/\1/p' "$compiler_file")
  major=$(sed -n 's/^set(CMAKE_C_COMPILER_VERSION "\([0-9]*\).*")$/\1/p' "$compiler_file")
  case $cc_id in
  GNU)
    if command -v "gcov-$major" >/dev/null; then gcov_cmd=gcov-$major; else gcov_cmd=gcov; fi
    ;;
  Clang)
    if command -v "llvm-cov-$major" >/dev/null; then gcov_cmd="llvm-cov-$major gcov"
    else gcov_cmd="llvm-cov gcov"; fi
    ;;
  *) echo "coverage.sh: unknown compiler '$cc_id'; set KILN_GCOV" >&2; exit 2 ;;
  esac
fi
echo "=== [coverage] gcov: $gcov_cmd ($($gcov_cmd --version | head -1))"

echo "=== [coverage] ctest -j$jobs ${KILN_COVERAGE_CTEST_ARGS:-} ($(fmt $((t_build - t0))) to build)"
find "$dir" -name '*.gcda' -delete
rc=0
# shellcheck disable=SC2086 # KILN_COVERAGE_CTEST_ARGS is a list of arguments
(cd "$dir" && ctest -j"$jobs" --output-on-failure ${KILN_COVERAGE_CTEST_ARGS:-}) || rc=$?
t_test=$(now)

echo "=== [coverage] gcovr over src/ ($(fmt $((t_test - t_build))) of tests)"
rm -f "$dir"/coverage*.html "$dir"/coverage*.css
# --root: paths relative to the source root; --filter: src/ only, so the tests, bench/,
# tools/, examples/ and tests/cuda/fake_libcuda.c are left out; search path: the tree,
# where the .gcno/.gcda lie next to the objects (kiln_objects.dir/ serves libkiln.so
# and libkiln.a alike); --object-directory: gcov runs (and writes its .gcov files) in
# the tree, not in the source root (objects name their sources by absolute path).
# --exclude-unreachable-branches drops the branches gcc places on lines without code
# (closing braces).
gcovr --root "$root" --filter "$root/src/" --object-directory "$dir" \
  --gcov-executable "$gcov_cmd" -j "$jobs" --exclude-unreachable-branches \
  --html-details "$dir/coverage.html" --html-title "kiln: coverage of src/ by the tests" \
  --json "$dir/coverage.json" --json-summary-pretty --json-summary "$dir/coverage-summary.json" \
  --cobertura "$dir/coverage.xml" --txt "$dir/coverage.txt" \
  "$dir"

/usr/bin/python3 - "$dir/coverage-summary.json" <<'EOF'
import json, os, sys
doc = json.load(open(sys.argv[1]))
def pct(c, t):
    return f"{100.0 * c / t:5.1f}%" if t else "    -"
def row(name, lc, lt, bc, bt):
    return f"{name:<40} {lc:>5}/{lt:<5} {pct(lc, lt)}   {bc:>5}/{bt:<5} {pct(bc, bt)}"
head = f"{'':<40} {'lines':^18}   {'branches':^18}"
dirs = {}
print(head)
for f in sorted(doc["files"], key=lambda f: f["filename"]):
    lc, lt = f["line_covered"], f["line_total"]
    bc, bt = f["branch_covered"], f["branch_total"]
    print(row(f["filename"], lc, lt, bc, bt))
    d = dirs.setdefault(os.path.dirname(f["filename"]), [0, 0, 0, 0])
    for i, v in enumerate((lc, lt, bc, bt)):
        d[i] += v
print()
print(head)
for name in sorted(dirs):
    print(row(name + "/", *dirs[name]))
print(row("TOTAL src/", doc["line_covered"], doc["line_total"],
          doc["branch_covered"], doc["branch_total"]))
EOF

t_end=$(now)
echo "=== [coverage] report: $dir/coverage.html (per-line detail), coverage.txt (uncovered"
echo "    line ranges), coverage.json, coverage-summary.json, coverage.xml"
echo "=== [coverage] build $(fmt $((t_build - t0)))  tests $(fmt $((t_test - t_build)))" \
  " report $(fmt $((t_end - t_test)))  total $(fmt $((t_end - t0)))"
if [[ $rc -ne 0 ]]; then
  echo "coverage.sh: ctest failed (exit $rc); the figures above miss what those tests reach" >&2
  exit 1
fi
