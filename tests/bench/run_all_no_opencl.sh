#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: run_all_no_opencl.sh KILN OUTDIR
# With no OpenCL driver (OCL_ICD_VENDORS naming an empty folder), `kiln bench run all`
# still succeeds: the cpu suite runs and each OpenCL suite is skipped with one line
# that says why; naming an OpenCL suite on its own fails (exit 1) with that line.
# StarPU is hidden too (KILN_STARPU_LIBRARY naming a missing file): the cpu suite then
# runs without its two StarPU cases, and one line names them and the loader's reason.
set -u
kiln=$1 out=$2
rm -rf "$out"; mkdir -p "$out/icd"
OCL_ICD_VENDORS="$out/icd"; export OCL_ICD_VENDORS
unset KILN_OPENCL_LIBRARY
KILN_STARPU_LIBRARY="$out/no-such-libstarpu.so.9"; export KILN_STARPU_LIBRARY
status=0
"$kiln" bench run all --quick --budget-ms 20 --axis bytes=4K --axis ops=100 --axis buffers=1 \
  --axis threads=1 --axis streams=1 --json "$out/r.json" \
  >"$out/out.txt" 2>"$out/err.txt"
rc=$?
if [ $rc -ne 0 ]; then
  echo "FAIL: kiln bench run all exited $rc without OpenCL"; cat "$out/err.txt"; status=1
fi
for s in ocl_mem ocl_vecadd ocl_events; do
  n=$(grep -c "^kiln bench: skipping suite $s: no opencl device: ." "$out/err.txt")
  if [ "$n" -ne 1 ]; then
    echo "FAIL: $n skip lines for $s, expected 1:"; cat "$out/err.txt"; status=1
  fi
done
n=$(grep -c "^kiln bench: skipping cases op_burst_10000_starpu, op_roundtrip_starpu of suite cpu: .*no-such-libstarpu.so.9 could not be loaded" "$out/err.txt")
if [ "$n" -ne 1 ]; then
  echo "FAIL: $n skip lines for the StarPU cases (with the loader's reason), expected 1:"
  cat "$out/err.txt"; status=1
fi
if grep -q '_starpu"' "$out/r.json"; then
  echo "FAIL: the JSON holds a StarPU case although StarPU could not be loaded"; status=1
fi
if ! grep -q '"suite": "cpu"' "$out/r.json" || grep -q '"suite": "ocl_' "$out/r.json"; then
  echo "FAIL: the JSON should hold the cpu suite's results and no OpenCL one"; status=1
fi
"$kiln" bench run ocl_events --quick >"$out/out2.txt" 2>"$out/err2.txt"
rc=$?
if [ $rc -ne 1 ] || ! grep -q "^kiln bench: cannot run suite ocl_events: no opencl device" "$out/err2.txt"; then
  echo "FAIL: kiln bench run ocl_events without OpenCL exited $rc:"; cat "$out/err2.txt"; status=1
fi
[ $status -eq 0 ] && echo "ok: OpenCL suites skipped under 'all', refused when named"
exit $status
