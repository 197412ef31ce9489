#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: compare_cli.sh KILN DIR — `kiln bench compare` on hand-written documents:
# exit 0 when nothing got slower beyond the threshold, 1 on a regression (and the
# table says which), 2 with a clear message on malformed, foreign or mismatched input.
set -u
kiln=$1 dir=$2
mkdir -p "$dir"
status=0
doc() { # doc FILE SUITE MEDIAN LO HI: one result of unit us (lower is better)
  cat >"$1" <<JSON
{"kiln_version": "0.1.0", "host": {"hostname": "h", "cpu": "c", "cores": 2, "os": "o"},
 "timing_note": "t", "results": [
 {"suite": "$2", "name": "op_roundtrip", "device": {"backend": "cpu", "index": 0, "name": "x"},
  "params": {"ops": 1}, "unit": "us", "better": "lower", "timing": "host", "batch_size": 100,
  "kiln": {"median": $3, "min": 1, "max": 20, "p95": 15, "stddev": 1, "ci95": [$4, $5],
           "samples": 30},
  "baseline": null, "ratio": null, "ratio_ci95": null}]}
JSON
}
expect() { # expect CODE PATTERN ARGS...
  code=$1 pattern=$2; shift 2
  text=$("$kiln" bench compare "$@" 2>&1); rc=$?
  if [ $rc -ne "$code" ]; then
    echo "FAIL: compare $* exited $rc, expected $code"; printf '%s\n' "$text"; status=1
  elif ! printf '%s\n' "$text" | grep -q -- "$pattern"; then
    echo "FAIL: compare $*: no '$pattern' in:"; printf '%s\n' "$text"; status=1
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
exit $status
