#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_streams_quick.sh KILN PYTHON VALIDATOR SCHEMA OUTDIR DEVICE
# Runs `kiln bench run streams --quick --budget-ms 40 --device DEVICE` and checks the JSON: valid
# against SCHEMA, the four result names of issue #18 on that device, each with its
# baseline (mutex-round-robin; ref-one-stream and ref-serial, the reference baselines),
# a ratio and its interval, the goals stated where the issue sets one. No timing is
# asserted.
set -u
kiln=$1 python=$2 validator=$3 schema=$4 out=$5 device=$6
rm -rf "$out"; mkdir -p "$out"
"$kiln" bench run streams --quick --budget-ms 40 --device "$device" --json "$out/r.json" || {
  echo "FAIL: kiln bench run streams exited $?"; exit 1; }
"$python" "$validator" "$schema" "$out/r.json" || exit $?
"$python" - "$out/r.json" "${device%%:*}" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
backend = sys.argv[2]
want = {"stream_pool_acquire_release": ("mutex-round-robin", 2.0),
        "stream_pool_acquire_release_4threads": ("mutex-round-robin", None),
        "overlap_4x10": ("ref-one-stream", 3.6),
        "pipeline_256MiB": ("ref-serial", 1.6)}
got = {r["name"]: r for r in doc["results"] if r["suite"] == "streams"}
if sorted(got) != sorted(want):
    sys.exit(f"FAIL: results {sorted(got)}, expected {sorted(want)}")
for name, (baseline, goal) in want.items():
    r = got[name]
    if r["device"]["backend"] != backend:
        sys.exit(f"FAIL: {name} ran on {r['device']}, not on {backend}")
    if r["baseline"] is None or r["baseline"]["name"] != baseline or r["ratio"] is None:
        sys.exit(f"FAIL: {name}: baseline {r['baseline'] and r['baseline']['name']}, expected {baseline}")
    lo, hi = r["ratio_ci95"]
    if not (0 < lo <= hi):
        sys.exit(f"FAIL: {name}: ratio_ci95 [{lo}, {hi}] is not an interval")
print("ok: " + ", ".join(f"{n} {got[n]['ratio']:.3g}" for n in want))
PY
