#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_cpu_quick.sh KILN PYTHON VALIDATOR SCHEMA CHECKER OUTDIR
# Runs `kiln bench run cpu --quick` (40 ms per case) with every output format and the
# scaling axes cut short (bytes 3 values, ops, buffers, threads and streams 2 each),
# validates the JSON against SCHEMA, checks that the goal cases are there with a
# baseline and a ratio, that each scaling case ran once per axis value (submit_threads
# once per threads x streams) with canonical params and gave its series, that op_burst
# said how many bytes a queued op holds, that the CSV, Markdown, LaTeX and HTML are
# valid (CHECKER: the HTML parses as XML with one scaling plot per series, of 3, 2, ...
# points), and that compare finds a run equal to itself.
# The StarPU cases (op_burst_10000_starpu, op_roundtrip_starpu: libstarpu-1.3-9, from
# scripts/deps.sh) must be there with the starpu baseline; StarPU's calibration files
# go to OUTDIR.starpu-home (kept between runs, so StarPU calibrates its bus model once
# per build tree). No timing is asserted. Exit 77 (skip) only when
# python3-jsonschema is missing.
set -u
kiln=$1 python=$2 validator=$3 schema=$4 checker=$5 out=$6
rm -rf "$out"; mkdir -p "$out" "$out.starpu-home"
STARPU_HOME="$out.starpu-home"; export STARPU_HOME
unset KILN_STARPU_LIBRARY
"$kiln" bench run cpu --quick --budget-ms 40 --axis bytes=4K,64KiB,1M --axis ops=100,1000 \
  --axis buffers=1,4 --axis threads=1,2 --axis streams=1,2 --json "$out/r.json" --csv "$out/r.csv" --md "$out/r.md" --html "$out/r.html" --latex "$out/r.tex" 2>"$out/err.txt"
rc=$?
cat "$out/err.txt" >&2
if [ $rc -ne 0 ]; then echo "FAIL: kiln bench run exited $rc"; exit 1; fi
if grep -q "skipping cases.*starpu" "$out/err.txt"; then
  echo "FAIL: the StarPU cases were skipped (install libstarpu-dev: scripts/deps.sh)"; exit 1
fi
for n in 100 1000; do
  if ! grep -Eq "^kiln bench: cpu/op_burst ops=$n: [1-9][0-9]*\.[0-9] bytes of kiln's host memory per queued op" "$out/err.txt"; then
    echo "FAIL: op_burst ops=$n did not report the memory per queued op"; exit 1
  fi
done
"$python" "$validator" "$schema" "$out/r.json" || exit $?
"$python" - "$out/r.json" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
want = ["op_roundtrip", "op_burst_10000", "op_burst_10000_trace_on", "op_burst_10000_trace_ring",
        "event_record_query", "copy_64MiB"] + ["copy"] * 3
want += ["op_burst"] * 2 + ["launch_buffers"] * 2 + ["submit_threads"] * 4
want += ["op_burst_10000_starpu", "op_roundtrip_starpu"]
got = [r["name"] for r in doc["results"] if r["suite"] == "cpu"]
if got != want:
    sys.exit(f"FAIL: cpu results {got}, expected {want}")
for r in doc["results"]:
    base = "starpu" if r["name"].endswith("_starpu") else None
    if "_trace_" in r["name"]:
        base = "ref-trace-off"
    if base and r["baseline"]["name"] != base:
        sys.exit(f"FAIL: {r['name']}: baseline {r['baseline']['name']}, expected {base}")
for r in doc["results"]:
    if r["baseline"] is None or r["ratio"] is None or r["device"]["backend"] != "cpu":
        sys.exit(f"FAIL: {r['name']}: no baseline or ratio, or not on the cpu device")
    lo, hi = r["ratio_ci95"]
    if not lo <= hi:
        sys.exit(f"FAIL: {r['name']}: ratio_ci95 [{lo}, {hi}] is not an interval")
def ran(name, *keys):
    return [tuple(r["params"][k] for k in keys) for r in doc["results"] if r["name"] == name]
for name, keys, want_runs in (
        ("copy", ("bytes",), [(4096,), (65536,), (1048576,)]),
        ("op_burst", ("ops",), [(100,), (1000,)]),
        ("launch_buffers", ("buffers",), [(1,), (4,)]),
        ("submit_threads", ("threads", "streams"), [(1, 1), (1, 2), (2, 1), (2, 2)])):
    if ran(name, *keys) != want_runs:
        sys.exit(f"FAIL: {name} ran at {ran(name, *keys)}, expected the --axis values {want_runs}")
unit = {r["name"]: r["unit"] for r in doc["results"]}
if unit["op_burst"] != "Mitems/s" or unit["launch_buffers"] != "ns" or unit["submit_threads"] != "ns":
    sys.exit(f"FAIL: units {unit}")
series = [(s["name"], s["axis"], s["n"]) for s in doc["scaling"]]
want_series = [("copy", "bytes", [4096, 65536, 1048576]), ("op_burst", "ops", [100, 1000]),
               ("launch_buffers", "buffers", [1, 4])] + [
               ("submit_threads", a, [1, 2]) for a in ("threads", "streams") * 2]
if series != want_series:
    sys.exit(f"FAIL: scaling series {series}, expected {want_series}")
print("ok: " + ", ".join(f"{r['name']} ratio {r['ratio']:.3g}" for r in doc["results"]))
PY
"$python" "$checker" --html "$out/r.html" --points 3,2,2,2,2,2,2 --json "$out/r.json" --csv "$out/r.csv" \
  --md "$out/r.md" --tex "$out/r.tex" || exit 1
"$kiln" bench compare "$out/r.json" "$out/r.json" || { echo "FAIL: compare with itself"; exit 1; }
