#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_mpi_quick.sh MPIRUN KILN_MPI_BENCH PYTHON VALIDATOR SCHEMA OUTDIR
# `mpirun -np 2 kiln-mpi-bench --quick` on the cpu device, the 8-byte cases only (the
# time budget of make check): the JSON validates against SCHEMA, both cases are there
# with their baselines (ref-manual-staging, raw-mpi) and a ratio, on backend cpu. No
# timing is asserted. The environment (Open MPI's) comes from tests/mpi.cmake.
set -u
mpirun=$1 bench=$2 python=$3 validator=$4 schema=$5 out=$6
rm -rf "$out"; mkdir -p "$out"
"$mpirun" -np 2 --oversubscribe --bind-to none "$bench" --quick --case 'pingpong_8B*' \
  --json "$out/r.json" >"$out/out.txt" 2>&1
rc=$?
cat "$out/out.txt"
if [ $rc -ne 0 ]; then echo "FAIL: kiln-mpi-bench exited $rc"; exit 1; fi
"$python" "$validator" "$schema" "$out/r.json" || { echo "FAIL: schema"; exit 1; }
"$python" - "$out/r.json" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
want = {"pingpong_8B": "ref-manual-staging", "pingpong_8B_raw": "raw-mpi"}
got = {r["name"]: r for r in doc["results"] if r["suite"] == "mpi"}
for name, base in want.items():
    r = got.get(name)
    if r is None:
        sys.exit("FAIL: no result %s" % name)
    if not r["baseline"] or r["baseline"]["name"] != base or r["ratio"] is None:
        sys.exit("FAIL: %s has no %s baseline and ratio" % (name, base))
    if r["device"]["backend"] != "cpu" or r["params"] != {} and r["params"] is None:
        sys.exit("FAIL: %s device %s" % (name, r["device"]))
print("mpi bench: %d results, schema-valid" % len(got))
PY
