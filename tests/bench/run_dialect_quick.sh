#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_dialect_quick.sh KILN PYTHON VALIDATOR SCHEMA OUTDIR
# Runs the suite `dialect` quick — its two cheaper cases (cpu_reduce_16M costs seconds a
# launch with fibers; test_dialect_cpu checks the kernel) — validates the JSON against
# SCHEMA and checks each case ran with the raw-opencl-pocl baseline, a ratio and its
# interval, on the opencl device the suite names. No timing is asserted. Exit 77 only
# where this machine has no OpenCL device (make check fails on a skipped opencl test).
set -u
kiln=$1 python=$2 validator=$3 schema=$4 out=$5
rm -rf "$out"; mkdir -p "$out"
if ! "$kiln" info --json | "$python" -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(b["name"] == "opencl" and b["available"] for b in d["backends"]) else 1)'
then
  echo "SKIP: no OpenCL device (kiln info says why)"; exit 77
fi
"$kiln" bench run dialect --quick --case cpu_vecadd_16M,cpu_atomic_histogram --json "$out/r.json"
rc=$?
if [ $rc -ne 0 ]; then echo "FAIL: kiln bench run exited $rc"; exit 1; fi
"$python" "$validator" "$schema" "$out/r.json" || exit $?
"$python" - "$out/r.json" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
got = sorted(r["name"] for r in doc["results"] if r["suite"] == "dialect")
if got != ["cpu_atomic_histogram", "cpu_vecadd_16M"]:
    sys.exit(f"FAIL: dialect results {got}")
for r in doc["results"]:
    if r["baseline"] is None or r["baseline"]["name"] != "raw-opencl-pocl" or r["ratio"] is None:
        sys.exit(f"FAIL: {r['name']}: no raw-opencl-pocl baseline or no ratio")
    lo, hi = r["ratio_ci95"]
    if not (0 < lo <= hi):
        sys.exit(f"FAIL: {r['name']}: ratio_ci95 [{lo}, {hi}] is not an interval")
    if r["device"]["backend"] != "opencl" or r["better"] != "lower" or r["unit"] != "ms":
        sys.exit(f"FAIL: {r['name']}: device {r['device']}, {r['unit']}, {r['better']}")
print("ok: " + ", ".join(f"{r['name']} {r['ratio']:.3g}" for r in doc["results"]))
PY
