#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make check`: every test, in three build trees, with ctest -j2:
#   build/       Release, -Werror                      all tests
#   build-asan/  RelWithDebInfo, ASan+UBSan, -Werror   all tests
#   build-tsan/  RelWithDebInfo, TSan, -Werror         tests labelled `stress`
# then scripts/gpu-check.sh --dry-run when it exists, then fails if a test labelled
# cpu, mock, opencl or cuda-nogpu was skipped (scripts/check-skips.py). Prints each
# phase's duration. Test failures of one tree do not stop the next (all results are
# shown); build failures stop at once. scripts/deps.sh is run by the Makefile.
# Environment: KILN_CHECK_JOBS (ctest -j, default 2), KILN_CHECK_PHASES (default
# "release asan tsan").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

jobs=${KILN_CHECK_JOBS:-2}
phases=${KILN_CHECK_PHASES:-release asan tsan}
failed=()
summary=()
skip_args=()

now() { date +%s; }
fmt() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# run_tree NAME DIR BUILD_TYPE SANITIZE TARGET NO_TESTS [ctest args...]
run_tree() {
  local name=$1 dir=$2 type=$3 san=$4 target=$5 no_tests=$6
  shift 6
  local start rc=0
  start=$(now)
  echo "=== [$name] configure + build $dir ($type${san:+, $san})"
  cmake -S "$root" -B "$root/$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DKILN_WERROR=ON \
    -DKILN_SANITIZE="$san"
  cmake --build "$root/$dir" --target "$target"
  local built
  built=$(now)
  echo "=== [$name] ctest -j$jobs $* ($(fmt $((built - start))) to build)"
  rm -f "$root/$dir/ctest-junit.xml"
  (cd "$root/$dir" && ctest -j"$jobs" --output-on-failure --no-tests="$no_tests" \
    --output-junit "$root/$dir/ctest-junit.xml" "$@") || rc=$?
  (cd "$root/$dir" && ctest --show-only=json-v1 "$@") >"$root/$dir/ctest-tests.json"
  if [[ -f "$root/$dir/ctest-junit.xml" ]]; then
    skip_args+=("$root/$dir/ctest-junit.xml:$root/$dir/ctest-tests.json")
  fi
  local end
  end=$(now)
  local verdict=passed
  if [[ $rc -ne 0 ]]; then
    verdict="FAILED (ctest exit $rc)"
    failed+=("$name")
  fi
  summary+=("$(printf '%-8s %-12s build %s  tests %s  total %s  %s' "$name" "$dir/" \
    "$(fmt $((built - start)))" "$(fmt $((end - built)))" "$(fmt $((end - start)))" "$verdict")")
  echo "=== [$name] $verdict in $(fmt $((end - start)))"
}

t0=$(now)
for phase in $phases; do
  case $phase in
  release) run_tree release build Release "" all error ;;
  asan) run_tree asan build-asan RelWithDebInfo asan all error ;;
  # Only the test executables (only stress ones exist there): no CLI, no benchmarks.
  tsan) run_tree tsan build-tsan RelWithDebInfo tsan kiln-tests ignore -L '^stress$' ;;
  *) echo "check.sh: unknown phase '$phase'" >&2; exit 2 ;;
  esac
done

if [[ -x scripts/gpu-check.sh ]]; then
  start=$(now)
  echo "=== [gpu-dry-run] scripts/gpu-check.sh --dry-run"
  verdict=passed
  scripts/gpu-check.sh --dry-run || { verdict=FAILED; failed+=(gpu-dry-run); }
  summary+=("$(printf '%-8s %-12s total %s  %s' gpu-dry "" "$(fmt $(($(now) - start)))" "$verdict")")
fi

echo "=== [skips] tests labelled cpu, mock, opencl, cuda-nogpu must not skip"
if [[ ${#skip_args[@]} -eq 0 ]]; then
  echo "check.sh: no JUnit output to check" >&2
  failed+=(skips)
elif ! /usr/bin/python3 scripts/check-skips.py "${skip_args[@]}"; then
  failed+=(skips)
fi

echo
echo "=== make check summary ($(fmt $(($(now) - t0))) in all)"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -ne 0 ]]; then
  echo "make check FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "make check passed"
