#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_opencl_quick.sh KILN PYTHON VALIDATOR SCHEMA OUTDIR
# Runs `kiln bench run ocl_mem ocl_vecadd ocl_events --quick --json`, validates the JSON
# against SCHEMA and checks that every goal case of design.md is there, on the opencl
# device, with the raw-opencl baseline, a ratio and its interval, and the timing each
# case should have (vecadd_16M_device on the device, the rest on the host); the Markdown
# names the device. No timing is asserted. Exit 77 (skip) only when this machine has
# no OpenCL device or python3-jsonschema is missing — make check fails on a skipped
# `opencl` test, so on the build machine this always runs (PoCL).
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
"$kiln" bench run ocl_mem ocl_vecadd ocl_events --quick --json "$out/r.json" --md "$out/r.md"
rc=$?
if [ $rc -ne 0 ]; then echo "FAIL: kiln bench run exited $rc"; exit 1; fi
"$python" "$validator" "$schema" "$out/r.json" || exit $?
"$python" - "$out/r.json" "$out/r.md" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
want = {
    "ocl_mem": [f"{d}_{m}_{s}" for m in ("blocking", "async") for d in ("write", "read")
                for s in ("4KiB", "1MiB", "64MiB")] + ["write_pinned_64MiB", "read_pinned_64MiB"],
    "ocl_vecadd": ["vecadd_16M", "vecadd_16M_device"],
    "ocl_events": ["kernel_roundtrip", "launch_backtoback_1000", "event_record_query"],
}
for suite, names in want.items():
    got = sorted(r["name"] for r in doc["results"] if r["suite"] == suite)
    if got != sorted(names):
        sys.exit(f"FAIL: {suite} results {got}, expected {sorted(names)}")
sizes = {"4KiB": 4096, "1MiB": 1 << 20, "64MiB": 64 << 20}
for r in doc["results"]:
    where = f"{r['suite']}/{r['name']}"
    if r["device"]["backend"] != "opencl":
        sys.exit(f"FAIL: {where} ran on {r['device']}, not on an opencl device")
    if r["baseline"] is None or r["baseline"]["name"] != "raw-opencl" or r["ratio"] is None:
        sys.exit(f"FAIL: {where}: no raw-opencl baseline or no ratio")
    lo, hi = r["ratio_ci95"]
    if not (0 < lo <= hi):
        sys.exit(f"FAIL: {where}: ratio_ci95 [{lo}, {hi}] is not an interval")
    timing = "device" if r["name"] == "vecadd_16M_device" else "host"
    if r["timing"] != timing:
        sys.exit(f"FAIL: {where}: timing {r['timing']}, expected {timing}")
    if r["suite"] == "ocl_mem":
        size = r["name"].rsplit("_", 1)[1]
        if r["unit"] != "GB/s" or r["better"] != "higher" or r["params"]["bytes"] != sizes[size]:
            sys.exit(f"FAIL: {where}: unit {r['unit']}, params {r['params']}")
    elif r["better"] != "lower":
        sys.exit(f"FAIL: {where}: a time, but better = {r['better']}")
name = doc["results"][0]["device"]["name"]
if name not in open(sys.argv[2]).read():
    sys.exit(f"FAIL: the Markdown report does not name the device '{name}'")
print("ok: " + ", ".join(f"{r['name']} {r['ratio']:.3g}" for r in doc["results"]))
PY
