#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_cpu_quick.sh KILN PYTHON VALIDATOR SCHEMA OUT
# Runs `kiln bench run cpu --quick --json OUT`, validates OUT against SCHEMA, and checks
# that the four goal cases are there, each with a baseline and a ratio. No timing is
# asserted. Exit 77 (skip) only when python3-jsonschema is missing.
set -u
kiln=$1 python=$2 validator=$3 schema=$4 out=$5
rm -f "$out"
"$kiln" bench run cpu --quick --json "$out"
rc=$?
if [ $rc -ne 0 ]; then echo "FAIL: kiln bench run exited $rc"; exit 1; fi
if [ -f "$validator" ]; then
  "$python" "$validator" "$schema" "$out"
  rc=$?
else
  "$python" - "$schema" "$out" <<'PY'
import json, sys
try:
    import jsonschema
except ImportError:
    sys.exit(77)
jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))
print("valid")
PY
  rc=$?
fi
[ $rc -eq 0 ] || exit $rc
"$python" - "$out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
want = ["op_roundtrip", "op_burst_10000", "event_record_query", "copy_64MiB"]
got = [r["name"] for r in doc["results"] if r["suite"] == "cpu"]
if got != want:
    sys.exit(f"FAIL: cpu results {got}, expected {want}")
for r in doc["results"]:
    if r["baseline"] is None or r["ratio"] is None or r["device"]["backend"] != "cpu":
        sys.exit(f"FAIL: {r['name']}: no baseline or ratio, or not on the cpu device")
    lo, hi = r["ratio_ci95"]
    if not lo <= hi:
        sys.exit(f"FAIL: {r['name']}: ratio_ci95 [{lo}, {hi}] is not an interval")
print("ok: " + ", ".join(f"{r['name']} ratio {r['ratio']:.3g}" for r in doc["results"]))
PY
