#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The one prepared script for a lent GPU machine (design.md "GPU machines"). It builds
# a Release tree without -Werror in build-gpu/ (that machine's gcc is newer), makes
# NVIDIA's OpenCL driver visible for the run, and runs: kiln info, kiln demo, the
# `opencl` tests (the shared backend suite on the GPU), the `cuda` tests (the shared
# suite, pinned memory and staging, vecadd, the __trap() loss and reset, whose output
# is kept by its own step), the `cuda-nogpu` tests (the fake libcuda), then the OpenCL
# and CUDA benchmarks with their raw baselines under a hard budget. Every step has a timeout; JSON and logs go
# to $OUT when set (else build-gpu/out). It installs nothing into /: cmocka and jansson
# come from Debian .debs carried in .gpu-debs/ (scripts/gpu-debs.sh fetches them here)
# and unpacked with dpkg -x into build-gpu/prefix.
#   scripts/gpu-check.sh            run it (on the GPU machine)
#   scripts/gpu-check.sh --dry-run  check the script and the names it uses (make check)
#   scripts/gpu-check.sh --steps configure,build   only the steps named
# CUDA (CUDA I): kiln info with the driver's devices (KILN_LOG=info prints each CUDA
# device's architecture), the `^cuda$` tests (real GPU) and the `cuda-nogpu` ones;
# the `cuda` benchmark suite against the raw driver API (quick, JSON in $OUT).
# Compile cache (issue 16, ~15 s): the cache-cuda step (demo twice through one cache
# directory: NVRTC, then the stored CUBIN) and the cache_cuda suite (a warm-disk build
# vs NVRTC's compile).
# Hybrid dispatch (~10 s): the hybrid_cuda suite, cpu:0 + cuda:0, quick.
# Tracing: examples/pipeline on cuda:0 with KILN_TRACE (the trace in $OUT), summarised;
# every op of it must have a device-timed span (CUDA events, docs/observability.md).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dry=0
only=""   # --steps a,b: run only these steps (names as printed: configure, build, info, ...)
while (($#)); do
  case $1 in
    --dry-run) dry=1 ;;
    --steps) only=",$2,"; shift ;;
    *) echo "usage: $0 [--dry-run] [--steps name,name...]" >&2; exit 2 ;;
  esac
  shift
done
out=${OUT:-$root/build-gpu/out}
budget_start=$SECONDS
status=0

step() { # step NAME TIMEOUT_S CMD...: run with a timeout, log to $out/NAME.log
  local name=$1 limit=$2
  shift 2
  [[ -z $only || $only == *",$name,"* ]] || return 0
  echo "=== [$name] $* (timeout ${limit}s, at $((SECONDS - budget_start))s)"
  if ((dry)); then return 0; fi
  timeout --kill-after=5 "$limit" "$@" > >(tee "$out/$name.log") 2>&1
  local rc=$?
  [[ $rc -eq 0 ]] || { echo "=== [$name] FAILED (exit $rc)"; status=1; }
  return $rc
}

# The trace-device step's check of `kiln trace summary --json` (stdin).
device_check='import json, sys
d = json.load(sys.stdin)
print("device-timed ops: %d of %d" % (d["device_timed_ops"], d["ops"]))
sys.exit(0 if d["ops"] and d["device_timed_ops"] == d["ops"] else 1)'
# Names this script relies on; the dry run checks them against the tree.
suites=(ocl_mem ocl_vecadd ocl_events cuda pool cache_cuda async_ocl async_cuda streams streams_cuda
  hybrid_cuda)
if ((dry)); then
  bash -n "$0" || exit 1
  for tool in cmake ninja timeout; do
    command -v "$tool" >/dev/null || { echo "gpu-check: $tool missing"; exit 1; }
  done
  grep -q 'opencl' tests/README.md 2>/dev/null || echo "gpu-check: note: no opencl label documented in tests/README.md"
  grep -q 'cuda-nogpu' tests/README.md 2>/dev/null || echo "gpu-check: note: no cuda-nogpu label documented in tests/README.md"
  [[ -f tests/cuda.cmake ]] || { echo "gpu-check: tests/cuda.cmake missing (the CUDA steps need it)"; exit 1; }
  [[ -f examples/pipeline.c ]] || { echo "gpu-check: examples/pipeline.c missing (the trace step runs it)"; exit 1; }
  if [[ -x build/bin/kiln ]] && ! build/bin/kiln trace --help >/dev/null 2>&1; then
    echo "gpu-check: 'kiln trace' missing (the trace-summary step needs it)"; exit 1
  fi
  # The trace-device step's check, on the hand-written case (2 of its 3 ops are
  # device-timed, so the check must say so and fail).
  if [[ -x build/bin/kiln ]]; then
    said=$(build/bin/kiln trace summary tests/trace/device_case.json --json | python3 -c "$device_check")
    rc=$?
    [[ $said == "device-timed ops: 2 of 3" && $rc -eq 1 ]] ||
      { echo "gpu-check: the trace-device check misreads kiln trace summary --json ($said, exit $rc)"; exit 1; }
  fi
  if [[ -x build/bin/kiln ]]; then
    list=$(build/bin/kiln bench list 2>/dev/null || true)
    for s in "${suites[@]}"; do
      grep -qw "$s" <<<"$list" || echo "gpu-check: note: suite $s not in 'kiln bench list' yet (its step will be skipped)"
    done
  fi
fi

mkdir -p "$out" 2>/dev/null || true
prefix=$root/build-gpu/prefix
if ! ((dry)); then
  mkdir -p "$prefix"
  for deb in "$root"/.gpu-debs/*.deb; do [[ -e $deb ]] && dpkg -x "$deb" "$prefix"; done
  export PKG_CONFIG_SYSROOT_DIR=$prefix
  export PKG_CONFIG_PATH=$prefix/usr/lib/x86_64-linux-gnu/pkgconfig
  export CMAKE_PREFIX_PATH=$prefix/usr
  export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  # NVIDIA's OpenCL driver is present but not registered; the ocl-icd loader must be
  # the one loaded (NVIDIA's own loader comes first in that machine's library path).
  nv=/usr/local/nvidia/lib64/libnvidia-opencl.so.1
  if [[ -e $nv ]]; then
    mkdir -p "$root/build-gpu/icd"
    echo "$nv" >"$root/build-gpu/icd/nvidia.icd"
    export OCL_ICD_VENDORS=$root/build-gpu/icd
  fi
  for l in /lib/x86_64-linux-gnu/libOpenCL.so.1 /usr/lib/x86_64-linux-gnu/libOpenCL.so.1; do
    [[ -e $l ]] && { export KILN_OPENCL_LIBRARY=$l; break; }
  done
  export POCL_CACHE_DIR=$root/build-gpu/pocl-cache
fi

step configure 120 cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=OFF || exit 1
step build 240 cmake --build build-gpu -j 16 || exit 1
kiln=build-gpu/bin/kiln
step info 30 "$kiln" info
((dry)) || "$kiln" info --json >"$out/info.json" 2>/dev/null
# The first OpenCL GPU, else the first OpenCL device.
dev=opencl:0
if ! ((dry)); then
  idx=$("$kiln" info --json 2>/dev/null | python3 -c '
import json, sys
d = [x for x in json.load(sys.stdin)["devices"] if x["backend"] == "opencl"]
g = [x for x in d if x["kind"] == "gpu"]
print((g or d or [{"index": 0}])[0]["index"])' 2>/dev/null || echo 0)
  dev=opencl:$idx
fi
step demo 60 "$kiln" demo --device "$dev"
# Parallel ctest (16 cores; one context per test process on the one GPU).
step tests-opencl 180 env KILN_DEVICE="$dev" ctest --test-dir build-gpu -L '^opencl$' -j 4 --output-on-failure \
  --timeout 60 --output-junit "$out/junit-opencl.xml"
step info-cuda 30 env KILN_LOG=info "$kiln" info
step tests-cuda 180 ctest --test-dir build-gpu -L '^cuda$' -j 4 --output-on-failure --timeout 60 \
  --output-junit "$out/junit-cuda.xml"
# What a __trap() did to the device and what kiln_device_reset's probe answered, kept
# in its log whether the test passes or not (ctest shows output only on failure).
step trap-reset 60 build-gpu/tests/unit/test_cuda_gpu test_trap_loses_device_and_reset_recovers
# Tracing (#21): the pipeline example on CUDA device 0 under KILN_TRACE, then the
# trace's summary (spans per stream track, the time both streams were busy). ~5 s.
trace_file="$(cd "$out" 2>/dev/null && pwd || echo "$out")/trace-pipeline-cuda.json"
step trace-pipeline 30 env KILN_TRACE="$trace_file" build-gpu/examples/pipeline --device cuda:0 \
  --chunks 32 --chunk-mib 8
step trace-summary 15 "$kiln" trace summary "$trace_file"
# Device time (#21): every op of that trace timed on the GPU (a cat device span).
step trace-device 15 bash -c '"$0" trace summary "$1" --json | python3 -c "$2"' "$kiln" "$trace_file" \
  "$device_check"
step tests-cuda-nogpu 180 ctest --test-dir build-gpu -L '^cuda-nogpu$' -j 8 --output-on-failure --timeout 60 \
  --output-junit "$out/junit-cuda-nogpu.xml"
# The compile cache on CUDA (docs/cache.md, ~10 s): kiln demo twice on cuda:0 with one
# fresh cache directory: the first compiles with NVRTC and stores the CUBIN (or PTX),
# the second loads it; KILN_LOG=debug prints NVRTC's time and the load's; then
# `kiln cache verify`. The `create` lines of both runs are the figures to note.
step cache-cuda 60 bash -c 'd=$(mktemp -d) && for run in 1 2; do
  echo "--- run $run"; KILN_CACHE_DIR=$d KILN_LOG=debug "$0" demo --device cuda:0 2>&1 |
  grep -E "NVRTC|compile cache|create|PASS|FAIL"; done &&
  KILN_CACHE_DIR=$d "$0" cache verify; rc=$?; rm -rf "$d"; exit $rc' "$kiln"
have=$("$kiln" bench list 2>/dev/null || true)
for s in "${suites[@]}"; do
  # the OpenCL suites on the OpenCL GPU; cuda on CUDA device 0 (~15-30 s quick)
  sdev=$dev limit=60
  [[ $s == cuda ]] && sdev=cuda:0 limit=90
  # the device pool on CUDA device 0 (alloc_free_* against cuMemAlloc, host_alloc_free_4KiB
  # against cuMemHostAlloc+cuMemFreeHost, managed_roundtrip against the explicit calls, the
  # stream-ordered case against cuMemAllocAsync; ~8 s quick), then on the OpenCL GPU (~5 s)
  [[ $s == pool ]] && sdev=cuda:0 limit=30
  [[ $s == cache_cuda ]] && sdev=cuda:0 limit=30 # ~5 s: NVRTC samples of ~40 ms
  # issue #19: callback_latency vs cuLaunchHostFunc / clSetEventCallback, ~3 s quick each
  [[ $s == async_ocl ]] && limit=20
  [[ $s == async_cuda ]] && sdev=cuda:0 limit=20
  [[ $s == streams* ]] && sdev=cuda:0 limit=20 # #18: pools, overlap, pipeline (+ raw CUDA)
  # hybrid dispatch over cpu:0 and CUDA device 0 vs the best fixed target and the per-size
  # oracle (docs/hybrid.md; ~10 s quick: calibration passes, then 1 Ki..1 Mi workloads)
  [[ $s == hybrid_cuda ]] && sdev=cuda:0 limit=30
  if ((dry)) || grep -qw "$s" <<<"$have"; then
    step "bench-$s" "$limit" "$kiln" bench run "$s" --device "$sdev" --quick --json "$out/bench-$s.json"
  fi
  if [[ $s == pool ]] && { ((dry)) || grep -qw "$s" <<<"$have"; }; then
    step bench-pool-opencl 30 "$kiln" bench run pool --device "$dev" --quick \
      --json "$out/bench-pool-opencl.json"
  fi
done
echo "=== gpu-check: $( ((status)) && echo FAILED || echo passed ) in $((SECONDS - budget_start))s"
exit $status
