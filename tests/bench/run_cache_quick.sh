#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_cache_quick.sh KILN PYTHON VALIDATOR SCHEMA OUTDIR
# Runs `kiln bench run cache --quick --json` on the OpenCL device (PoCL here) in a
# cache directory of its own, validates the JSON against SCHEMA and checks that every
# case is there with its baseline (raw-opencl or its ref- one), a ratio and its
# interval, and that build_warm_disk carries its goal. No timing is asserted. Exit 77
# only without an OpenCL device or python3-jsonschema (make check fails on a skipped
# `opencl` test, so here it always runs).
set -u
kiln=$1 python=$2 validator=$3 schema=$4 out=$5
rm -rf "$out"; mkdir -p "$out"
KILN_CACHE_DIR="$out/cache"; export KILN_CACHE_DIR
if ! "$kiln" info --json | "$python" -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(b["name"] == "opencl" and b["available"] for b in d["backends"]) else 1)'
then
  echo "SKIP: no OpenCL device (kiln info says why)"; exit 77
fi
"$kiln" bench run cache --quick --budget-ms 50 --json "$out/r.json"
rc=$?
if [ $rc -ne 0 ]; then echo "FAIL: kiln bench run cache exited $rc"; exit 1; fi
"$python" "$validator" "$schema" "$out/r.json" || exit $?
"$python" - "$out/r.json" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
want = {"build_warm_disk": "raw-opencl", "build_in_process": "ref-disk-hit",
        "first_launch_new_process": "ref-uncached", "build_cold": "raw-opencl"}
got = {r["name"]: r for r in doc["results"] if r["suite"] == "cache"}
bad = 0
for name, base in want.items():
    r = got.get(name)
    if r is None:
        print(f"FAIL: no result cache/{name}"); bad = 1; continue
    if r["device"]["backend"] != "opencl" or (r["baseline"] or {}).get("name") != base:
        print(f"FAIL: cache/{name}: device {r['device']} baseline {r['baseline']}"); bad = 1
    if r["ratio"] is None or r["ratio_ci95"] is None or r["unit"] != "ms":
        print(f"FAIL: cache/{name}: ratio {r['ratio']} {r['ratio_ci95']} unit {r['unit']}"); bad = 1
sys.exit(bad)
PY
echo "ok: the cache suite ran every case against its baseline"
