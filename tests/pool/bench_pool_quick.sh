#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: bench_pool_quick.sh KILN PYTHON VALIDATOR SCHEMA OUTDIR
# `kiln bench run pool --quick` on the mock device (KILN_MOCK=1, so fragmentation_1M is
# in the suite), with the JSON validated against SCHEMA: every alloc_free case has the
# raw-alloc baseline and a ratio, host_alloc_free_4KiB the raw-host-alloc one,
# managed_roundtrip the ref-explicit one,
# fragmentation_1M is in unit x with timing "measured",
# the best-fit baseline and a ratio; the HTML report renders a result in unit x too.
# No figure is asserted. Exit 77 (skip) only when python3-jsonschema is missing.
set -u
kiln=$1 python=$2 validator=$3 schema=$4 out=$5
rm -rf "$out"; mkdir -p "$out"
KILN_MOCK=1; export KILN_MOCK
"$kiln" bench run pool --quick --budget-ms 20 --device mock:0 --json "$out/r.json" \
  --html "$out/r.html" --csv "$out/r.csv" 2>"$out/err.txt" >"$out/out.txt"
rc=$?
if [ $rc -ne 0 ]; then echo "FAIL: kiln bench run pool exited $rc"; cat "$out/err.txt"; exit 1; fi
"$python" "$validator" "$schema" "$out/r.json"
v=$?
if [ $v -eq 77 ]; then exit 77; fi
if [ $v -ne 0 ]; then echo "FAIL: the JSON does not match $schema"; exit 1; fi
"$python" - "$out/r.json" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
res = {r["name"]: r for r in doc["results"] if r["suite"] == "pool"}
need = ["alloc_free_256B", "alloc_free_4KiB", "alloc_free_64KiB", "alloc_free_256KiB",
        "alloc_free_4KiB_2threads", "fragmentation_1M", "host_alloc_free_4KiB", "managed_roundtrip"]
missing = [n for n in need if n not in res]
if missing:
    sys.exit("FAIL: missing results: %s" % missing)
for n in need[:4]:
    r = res[n]
    if r["baseline"] is None or r["baseline"]["name"] != "raw-alloc" or r["ratio"] is None:
        sys.exit("FAIL: %s lacks the raw-alloc baseline or its ratio" % n)
h = res["host_alloc_free_4KiB"]
if h["baseline"] is None or h["baseline"]["name"] != "raw-host-alloc" or h["ratio"] is None:
    sys.exit("FAIL: host_alloc_free_4KiB lacks the raw-host-alloc baseline or its ratio")
m = res["managed_roundtrip"]
if m["baseline"] is None or m["baseline"]["name"] != "ref-explicit" or m["ratio"] is None:
    sys.exit("FAIL: managed_roundtrip lacks the ref-explicit baseline or its ratio")
f = res["fragmentation_1M"]
if f["unit"] != "x" or f["timing"] != "measured" or f["better"] != "lower":
    sys.exit("FAIL: fragmentation_1M is %s/%s/%s" % (f["unit"], f["timing"], f["better"]))
if f["baseline"]["name"] != "bestfit" or not (f["kiln"]["median"] >= 1.0) or f["ratio"] is None:
    sys.exit("FAIL: fragmentation_1M: %r" % f)
print("pool suite: %d results, fragmentation overhead kiln %.3f, best fit %.3f" %
      (len(res), f["kiln"]["median"], f["baseline"]["median"]))
PY
