#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_cpu_quick.sh KILN PYTHON VALIDATOR SCHEMA CHECKER OUTDIR
# Runs `kiln bench run cpu --quick` with every output format and a 3-value bytes axis,
# validates the JSON against SCHEMA, checks that the goal cases are there with a
# baseline and a ratio, that the scaling case ran once per axis value with canonical
# params, that the CSV, Markdown, LaTeX and HTML are valid (CHECKER: the HTML parses as
# XML with one scaling plot of 3 points), and that compare finds a run equal to itself.
# The StarPU cases (op_burst_10000_starpu, op_roundtrip_starpu: libstarpu-1.3-9, from
# scripts/deps.sh) must be there with the starpu baseline; StarPU's calibration files
# go to OUTDIR/starpu-home. No timing is asserted. Exit 77 (skip) only when
# python3-jsonschema is missing.
set -u
kiln=$1 python=$2 validator=$3 schema=$4 checker=$5 out=$6
rm -rf "$out"; mkdir -p "$out/starpu-home"
STARPU_HOME="$out/starpu-home"; export STARPU_HOME
unset KILN_STARPU_LIBRARY
"$kiln" bench run cpu --quick --axis bytes=4K,64KiB,1M --json "$out/r.json" \
  --csv "$out/r.csv" --md "$out/r.md" --html "$out/r.html" --latex "$out/r.tex" 2>"$out/err.txt"
rc=$?
cat "$out/err.txt" >&2
if [ $rc -ne 0 ]; then echo "FAIL: kiln bench run exited $rc"; exit 1; fi
if grep -q "skipping cases.*starpu" "$out/err.txt"; then
  echo "FAIL: the StarPU cases were skipped (install libstarpu-dev: scripts/deps.sh)"; exit 1
fi
"$python" "$validator" "$schema" "$out/r.json" || exit $?
"$python" - "$out/r.json" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
want = ["op_roundtrip", "op_burst_10000", "event_record_query", "copy_64MiB"] + ["copy"] * 3
want += ["op_burst_10000_starpu", "op_roundtrip_starpu"]
got = [r["name"] for r in doc["results"] if r["suite"] == "cpu"]
if got != want:
    sys.exit(f"FAIL: cpu results {got}, expected {want}")
for r in doc["results"]:
    base = "starpu" if r["name"].endswith("_starpu") else None
    if base and r["baseline"]["name"] != base:
        sys.exit(f"FAIL: {r['name']}: baseline {r['baseline']['name']}, expected {base}")
for r in doc["results"]:
    if r["baseline"] is None or r["ratio"] is None or r["device"]["backend"] != "cpu":
        sys.exit(f"FAIL: {r['name']}: no baseline or ratio, or not on the cpu device")
    lo, hi = r["ratio_ci95"]
    if not lo <= hi:
        sys.exit(f"FAIL: {r['name']}: ratio_ci95 [{lo}, {hi}] is not an interval")
sizes = [r["params"]["bytes"] for r in doc["results"] if r["name"] == "copy"]
if sizes != [4096, 65536, 1048576]:
    sys.exit(f"FAIL: the copy case ran at {sizes}, expected the --axis values")
if len(doc["scaling"]) != 1 or doc["scaling"][0]["n"] != [4096, 65536, 1048576]:
    sys.exit(f"FAIL: scaling {doc['scaling']}")
print("ok: " + ", ".join(f"{r['name']} ratio {r['ratio']:.3g}" for r in doc["results"]))
PY
"$python" "$checker" --html "$out/r.html" --points 3 --json "$out/r.json" --csv "$out/r.csv" \
  --md "$out/r.md" --tex "$out/r.tex" || exit 1
"$kiln" bench compare "$out/r.json" "$out/r.json" || { echo "FAIL: compare with itself"; exit 1; }
