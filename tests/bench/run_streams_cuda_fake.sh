#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_streams_cuda_fake.sh KILN PYTHON VALIDATOR SCHEMA OUTDIR FAKE_LIBCUDA
# Suite streams_cuda against the tests' fake libcuda (KILN_FAKE_CUDA_LAUNCH=ok) and the
# real NVRTC, so that its kiln side (a pool's streams, the pipeline helper: the same
# functions as suite streams) and the raw-CUDA baselines' set-up, runs and teardown
# (kernels compiled by NVRTC, four CUstreams, events, pinned memory) go through the
# driver API in CI. The fake's kernels never run, so the raw pipeline's set-up check
# must fail, named on stderr, and overlap_4x10_raw be measured. No timing is asserted.
# Exit 77 when no NVRTC library exists.
set -u
kiln=$1 python=$2 validator=$3 schema=$4 out=$5 fake=$6
rm -rf "$out"; mkdir -p "$out"
found=
for f in ${KILN_NVRTC_LIBRARY:-} ${CUDA_HOME:+$CUDA_HOME/lib64/libnvrtc.so*} \
         /usr/local/cuda/lib64/libnvrtc.so*; do
  [ -e "$f" ] && found=$f
done
ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so\.1[23] ' && found=soname
if [ -z "$found" ]; then echo "SKIP: no NVRTC library to compile the kernels"; exit 77; fi
KILN_CUDA_LIBRARY=$fake; export KILN_CUDA_LIBRARY
KILN_FAKE_CUDA_LAUNCH=ok; export KILN_FAKE_CUDA_LAUNCH
status=0
"$kiln" bench run streams_cuda --quick --budget-ms 20 --json "$out/c.json" 2>"$out/c.err"
rc=$?
if [ $rc -ne 1 ] || ! grep -q "raw-cuda baseline: pipeline y\[0\] = 0, expected 1" "$out/c.err"; then
  echo "FAIL: streams_cuda exited $rc; expected 1 with the raw pipeline's check failing:"
  cat "$out/c.err"; status=1
fi
"$python" "$validator" "$schema" "$out/c.json" || status=1
"$python" - "$out/c.json" <<'PY' || status=1
import json, sys
c = {r["name"]: r for r in json.load(open(sys.argv[1]))["results"]}
r = c.get("overlap_4x10_raw")
if r is None or r["baseline"] is None or r["baseline"]["name"] != "raw-cuda" or r["ratio"] is None:
    sys.exit(f"FAIL: overlap_4x10_raw not measured against raw-cuda: {r}")
if r["device"]["backend"] != "cuda":
    sys.exit(f"FAIL: {r['name']} ran on {r['device']}")
print("ok: " + ", ".join(sorted(c)))
PY
exit $status
