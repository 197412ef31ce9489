#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_graph_quick.sh KILN PYTHON VALIDATOR SCHEMA OUTDIR
# Runs `kiln bench run graph --quick --json` (short budget), validates the JSON against
# SCHEMA and checks that every case is there with its baseline (ref-hand-issued, and
# starpu where libstarpu loads: scripts/deps.sh installs it here), a ratio and its
# interval, and a positive median on both sides. No timing is asserted.
set -u
kiln=$1 python=$2 validator=$3 schema=$4 out=$5
rm -rf "$out"; mkdir -p "$out"
"$kiln" bench run graph --quick --budget-ms 50 --json "$out/r.json" >"$out/out.txt" 2>"$out/err.txt"
rc=$?
if [ $rc -ne 0 ]; then echo "FAIL: kiln bench run graph exited $rc"; cat "$out/err.txt"; exit 1; fi
"$python" "$validator" "$schema" "$out/r.json" || exit $?
"$python" - "$out/r.json" "$out/err.txt" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
skipped = "skipping cases layered_1000_w8_starpu" in open(sys.argv[2]).read()
want = {"device_fan4": "ref-hand-issued"}
if not skipped:
    want.update({"layered_1000_w8_starpu": "starpu", "chain_1000_starpu": "starpu",
                 "layered_work_160_w8_starpu": "starpu"})
got = {r["name"]: r for r in doc["results"] if r["suite"] == "graph"}
if sorted(got) != sorted(want):
    sys.exit(f"FAIL: graph results {sorted(got)}, expected {sorted(want)}")
for name, base in want.items():
    r = got[name]
    if r["baseline"] is None or r["baseline"]["name"] != base:
        sys.exit(f"FAIL: {name}: baseline {r['baseline']}, expected {base}")
    if not (r["kiln"]["median"] > 0 and r["baseline"]["median"] > 0 and r["ratio"] > 0):
        sys.exit(f"FAIL: {name}: medians {r['kiln']['median']} / {r['baseline']['median']}")
    if r["ratio_ci95"] is None or r["unit"] != "us" or r["better"] != "lower":
        sys.exit(f"FAIL: {name}: ratio_ci95 {r['ratio_ci95']}, unit {r['unit']}")
print("graph suite: every case measured with its baseline")
PY
