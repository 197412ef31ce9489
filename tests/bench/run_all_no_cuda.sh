#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_all_no_cuda.sh KILN OUTDIR
# With the CUDA backend unavailable (KILN_CUDA_LIBRARY naming a library that does not
# exist, so this holds on a GPU machine too; OpenCL and StarPU hidden as well, to keep
# `all` short), `kiln bench run all` still succeeds: the cpu suite runs and the cuda suite is
# skipped with one line that says why; `kiln bench run cuda` on its own exits 1 with
# that reason, and `--device cuda:0` is a usage error (2) naming the missing device.
set -u
kiln=$1 out=$2
rm -rf "$out"; mkdir -p "$out/icd"
OCL_ICD_VENDORS="$out/icd"; export OCL_ICD_VENDORS
KILN_CUDA_LIBRARY="$out/no-such-libcuda.so.1"; export KILN_CUDA_LIBRARY
unset KILN_OPENCL_LIBRARY
KILN_STARPU_LIBRARY="$out/no-such-libstarpu.so.9"; export KILN_STARPU_LIBRARY
status=0
"$kiln" bench run all --quick --budget-ms 20 --axis bytes=4K --axis ops=100 --axis buffers=1 \
  --axis threads=1 --axis streams=1 --json "$out/r.json" \
  >"$out/out.txt" 2>"$out/err.txt"
rc=$?
if [ $rc -ne 0 ]; then
  echo "FAIL: kiln bench run all exited $rc without CUDA"; cat "$out/err.txt"; status=1
fi
n=$(grep -c "^kiln bench: skipping suite cuda: no cuda device: .*no-such-libcuda.so.1 could not be loaded" "$out/err.txt")
if [ "$n" -ne 1 ]; then
  echo "FAIL: $n skip lines for cuda (with the loader's reason), expected 1:"; cat "$out/err.txt"
  status=1
fi
if ! grep -q '"suite": "cpu"' "$out/r.json" || grep -q '"suite": "cuda"' "$out/r.json"; then
  echo "FAIL: the JSON should hold the cpu suite's results and no cuda one"; status=1
fi
"$kiln" bench run cuda --quick >"$out/out2.txt" 2>"$out/err2.txt"
rc=$?
if [ $rc -ne 1 ] ||
   ! grep -q "^kiln bench: cannot run suite cuda: no cuda device: .*could not be loaded" "$out/err2.txt" ||
   grep -q "running suite cuda" "$out/err2.txt"; then
  echo "FAIL: kiln bench run cuda without CUDA exited $rc:"; cat "$out/err2.txt"; status=1
fi
"$kiln" bench run cuda --quick --device cuda:0 >"$out/out3.txt" 2>"$out/err3.txt"
rc=$?
if [ $rc -ne 2 ] || grep -q "running suite cuda" "$out/err3.txt"; then
  echo "FAIL: kiln bench run cuda --device cuda:0 without CUDA exited $rc (expected 2):"
  cat "$out/err3.txt"; status=1
fi
[ $status -eq 0 ] && echo "ok: cuda suite skipped under 'all', refused when named ($(head -c 200 "$out/err2.txt"))"
exit $status
