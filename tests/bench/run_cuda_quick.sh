#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_cuda_quick.sh KILN PYTHON VALIDATOR SCHEMA OUTDIR [FAKE_LIBCUDA]
# Runs `kiln bench run cuda --quick --json`, validates the JSON against SCHEMA and
# checks every case of the suite: on a cuda device, with the raw-cuda baseline and a
# ratio (module_load: no baseline), the timing it should have (vecadd_256M_device on
# the device, the rest on the host), the unit's direction, the transfer parameters.
# No timing is asserted.
#   Without FAKE_LIBCUDA (label `cuda`, a real GPU): exit 77 (skip) when no CUDA device
#   is available; every case must be measured.
#   With FAKE_LIBCUDA (label `cuda-nogpu`): the suite runs against the tests' fake
#   libcuda (KILN_FAKE_CUDA_LAUNCH=ok) and the real NVRTC, so both sides' set-up, runs
#   and teardown go through the driver API in CI (pinned cases through kiln_host_alloc
#   and the fake's cuMemHostAlloc, pageable ones through kiln's staging). The fake's
#   kernels never run here, so the vecadd cases (whose set-up checks the result) may
#   fail, named on stderr; every other case must be measured (vecadd at items=1M: the
#   fake's device memory is host memory). Exit 77 when no NVRTC library can be found.
set -u
kiln=$1 python=$2 validator=$3 schema=$4 out=$5 fake=${6:-}
rm -rf "$out"; mkdir -p "$out"
if [ -n "$fake" ]; then
  found=
  for f in ${KILN_NVRTC_LIBRARY:-} ${CUDA_HOME:+$CUDA_HOME/lib64/libnvrtc.so*} \
           /usr/local/cuda/lib64/libnvrtc.so*; do
    [ -e "$f" ] && found=$f
  done
  ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so\.1[23] ' && found=soname
  if [ -z "$found" ]; then echo "SKIP: no NVRTC library to compile the kernels"; exit 77; fi
  KILN_CUDA_LIBRARY=$fake; export KILN_CUDA_LIBRARY
  KILN_FAKE_CUDA_LAUNCH=ok; export KILN_FAKE_CUDA_LAUNCH
  budget=20 axis="--axis items=1M" # kernels never run on the fake: no 3 GiB of host memory
else
  if ! "$kiln" info --json | "$python" -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(b["name"] == "cuda" and b["available"] for b in d["backends"]) else 1)'
  then
    echo "SKIP: no CUDA device (kiln info says why)"; exit 77
  fi
  budget=100 axis=
fi
"$kiln" bench run cuda --quick --budget-ms $budget $axis --json "$out/r.json" --md "$out/r.md" \
  2>"$out/err.txt"
rc=$?
cat "$out/err.txt"
if [ $rc -ne 0 ] && { [ -z "$fake" ] || [ $rc -ne 1 ]; }; then
  echo "FAIL: kiln bench run cuda exited $rc"; exit 1
fi
"$python" "$validator" "$schema" "$out/r.json" || exit $?
"$python" - "$out/r.json" "$out/err.txt" "${fake:+fake}" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
err = open(sys.argv[2]).read()
fake = sys.argv[3] == "fake"
sizes = {"4KiB": 4096, "1MiB": 1 << 20, "256MiB": 256 << 20}
pinned = [f"{d}_pinned_{s}" for d in ("h2d", "d2h") for s in ("4KiB", "1MiB", "256MiB")]
pageable = ["h2d_pageable_256MiB", "d2h_pageable_256MiB"]
vecadd = ["vecadd_256M", "vecadd_256M_device"]
want = (["launch_roundtrip", "launch_enqueue", "event_record"] + pinned + pageable + vecadd +
        ["nvrtc_compile", "module_load", "kernel_create"])
got = [r["name"] for r in doc["results"] if r["suite"] == "cuda"]
missing = [n for n in want if n not in got]
if fake:  # what the fake cannot do, each with its reason on stderr
    if "expected 3.75" in err:
        missing = [n for n in missing if n not in vecadd]
if missing or sorted(set(got) - set(want)):
    sys.exit(f"FAIL: cuda results {got}; missing {missing}")
for r in doc["results"]:
    where = f"cuda/{r['name']}"
    if r["device"]["backend"] != "cuda":
        sys.exit(f"FAIL: {where} ran on {r['device']}, not on a cuda device")
    if r["name"] == "module_load":
        if r["baseline"] is not None or r["ratio"] is not None:
            sys.exit(f"FAIL: {where} should have no baseline")
    else:
        if r["baseline"] is None or r["baseline"]["name"] != "raw-cuda" or r["ratio"] is None:
            sys.exit(f"FAIL: {where}: no raw-cuda baseline or no ratio")
        lo, hi = r["ratio_ci95"]
        if not (0 < lo <= hi):
            sys.exit(f"FAIL: {where}: ratio_ci95 [{lo}, {hi}] is not an interval")
    timing = "device" if r["name"] == "vecadd_256M_device" else "host"
    if r["timing"] != timing:
        sys.exit(f"FAIL: {where}: timing {r['timing']}, expected {timing}")
    if r["name"] in pinned + pageable:
        memory = r["name"].split("_")[1]
        size = r["name"].rsplit("_", 1)[1]
        if (r["unit"] != "GB/s" or r["better"] != "higher" or r["params"]["bytes"] != sizes[size]
                or r["params"]["memory"] != memory):
            sys.exit(f"FAIL: {where}: unit {r['unit']}, params {r['params']}")
    elif r["better"] != "lower":
        sys.exit(f"FAIL: {where}: a time, but better = {r['better']}")
    if r["name"] == "launch_enqueue" and r["params"].get("ops") != 1000:
        sys.exit(f"FAIL: {where}: params {r['params']}")
print("ok: " + ", ".join(f"{r['name']} {r['ratio']:.3g}" if r["ratio"] is not None
                         else f"{r['name']} (no baseline)" for r in doc["results"]))
PY
