#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: compare_cli.sh KILN DIR — `kiln bench compare` on hand-written documents
# (valid against schemas/bench.json): exit 0 when nothing got slower beyond the
# threshold, 1 on a regression (and the table says which), 2 with one clear line on
# stderr and no verdict on malformed, foreign or mismatched input and on impossible
# statistics (issue #12: a zero or negative median, an inverted interval, +-1e308,
# batch_size -1, a directory given as a file each used to print a verdict and exit 0).
set -u
kiln=$1 dir=$2
mkdir -p "$dir"
status=0
doc() { # doc FILE SUITE MEDIAN LO HI [BATCH]: one result of unit us (lower is better)
  cat >"$1" <<JSON
{"kiln_version": "0.1.0", "host": {"hostname": "h", "cpu": "c", "cores": 2, "os": "o"},
 "timing_note": "t", "results": [
 {"suite": "$2", "name": "op_roundtrip", "device": {"backend": "cpu", "index": 0, "name": "x"},
  "params": {"ops": 1}, "unit": "us", "better": "lower", "timing": "host",
  "batch_size": ${6:-100},
  "kiln": {"median": $3, "mean": $3, "min": 1, "max": 20, "p5": 2, "p50": $3, "p95": 15,
           "p99": 19, "stddev": 1, "ci95": [$4, $5], "samples": 30, "outliers": 0},
  "baseline": null, "ratio": null, "ratio_ci95": null}]}
JSON
}
expect() { # expect CODE TEXT ARGS...: the exit status, and TEXT (fixed) in the output
  code=$1 pattern=$2; shift 2
  out=$("$kiln" bench compare "$@" 2>"$dir/stderr"); rc=$?
  err=$(cat "$dir/stderr")
  text=$(printf '%s\n%s' "$out" "$err")
  if [ $rc -ne "$code" ]; then
    echo "FAIL: compare $* exited $rc, expected $code"; printf '%s\n' "$text"; status=1
  elif ! printf '%s\n' "$text" | grep -q -F -- "$pattern"; then
    echo "FAIL: compare $*: no '$pattern' in:"; printf '%s\n' "$text"; status=1
  elif [ "$code" -eq 2 ] && { [ -n "$out" ] || [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ]; }; then
    echo "FAIL: compare $*: bad input must print one line on stderr and no verdict:"
    printf '%s\n' "$text"; status=1
  else
    echo "ok: compare $* -> $rc"
  fi
}
doc "$dir/old.json" cpu 10.0 9.9 10.1
doc "$dir/same.json" cpu 10.05 9.95 10.15
doc "$dir/slow.json" cpu 11.0 10.9 11.1
doc "$dir/fast.json" cpu 9.0 8.9 9.1
doc "$dir/slightly.json" cpu 10.3 10.2 10.4
doc "$dir/other.json" ocl_mem 10.0 9.9 10.1
printf '{"kiln_version": "0.1.0", "results": [\n' >"$dir/trunc.json"
printf '{"results": 3}\n' >"$dir/foreign.json"
expect 0 "same (intervals overlap)" "$dir/old.json" "$dir/same.json"
expect 1 "SLOWER: REGRESSION" "$dir/old.json" "$dir/slow.json"
expect 1 "1 regression beyond 5.0%" "$dir/old.json" "$dir/slow.json"
expect 0 "slower (within threshold)" "$dir/old.json" "$dir/slow.json" --threshold 15
expect 0 "faster" "$dir/old.json" "$dir/fast.json"
expect 0 "slower (within threshold)" "$dir/old.json" "$dir/slightly.json"
expect 2 "malformed JSON at line 2" "$dir/old.json" "$dir/trunc.json"
expect 2 "not a kiln bench document" "$dir/foreign.json" "$dir/old.json"
expect 2 "no result in common" "$dir/old.json" "$dir/other.json"
expect 2 "nosuch.json" "$dir/old.json" "$dir/nosuch.json"

# Impossible statistics (issue #12), in either file: refused with the file, the result,
# the field, its value and what is expected.
doc "$dir/negative.json" cpu -70350.7 9.9 10.1
doc "$dir/zero.json" cpu 0 9.9 10.1
doc "$dir/inverted.json" cpu 10.0 5000 1
doc "$dir/huge.json" cpu 1e308 9.9 10.1
doc "$dir/minus_huge.json" cpu -1e308 9.9 10.1
doc "$dir/batch.json" cpu 10.0 9.9 10.1 -1
r="results[0] (cpu/op_roundtrip)"
expect 2 "$dir/negative.json: $r: kiln.median is -70350.7: expected a positive, finite number" \
  "$dir/old.json" "$dir/negative.json"
expect 2 "$dir/zero.json: $r: kiln.median is 0: expected a positive, finite number" \
  "$dir/zero.json" "$dir/old.json"
expect 2 "$dir/inverted.json: $r: kiln.ci95 is [5000, 1]: expected [lo, hi] with lo <= kiln.median (10) <= hi" \
  "$dir/old.json" "$dir/inverted.json"
expect 2 "$dir/huge.json: $r: kiln.ci95 is [9.9, 10.1]: expected [lo, hi] with lo <= kiln.median (1e+308) <= hi" \
  "$dir/old.json" "$dir/huge.json"
expect 2 "$dir/minus_huge.json: $r: kiln.median is -1e+308: expected a positive, finite number" \
  "$dir/old.json" "$dir/minus_huge.json"
expect 2 "$dir/batch.json: $r: batch_size is -1: expected an integer >= 1" \
  "$dir/old.json" "$dir/batch.json"
flat() { # flat FILE VALUE: every figure VALUE, a consistent document
  doc "$1.tmp" cpu "$2" "$2" "$2"
  sed -e "s/\"min\": 1,/\"min\": $2,/" -e "s/\"max\": 20,/\"max\": $2,/" \
      -e "s/\"p5\": 2,/\"p5\": $2,/" -e "s/\"p95\": 15,/\"p95\": $2,/" \
      -e "s/\"p99\": 19,/\"p99\": $2,/" "$1.tmp" >"$1" && rm -f "$1.tmp"
}
flat "$dir/far.json" 1e300
flat "$dir/tiny.json" 1e-10
expect 0 "same (intervals overlap)" "$dir/far.json" "$dir/far.json"  # valid on its own
# ... but its quotient with tiny.json's median overflows: no verdict on an infinite change
expect 2 "cpu/op_roundtrip {\"ops\":1}: the kiln medians 1e+300 ($dir/far.json) and 1e-10 ($dir/tiny.json) are too far apart to compare" \
  "$dir/far.json" "$dir/tiny.json"
mkdir -p "$dir/a_directory"
expect 2 "kiln bench compare: '$dir/a_directory' is a directory, expected a JSON file from kiln bench run --json" \
  "$dir/old.json" "$dir/a_directory"
exit $status
