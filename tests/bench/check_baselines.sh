#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: check_baselines.sh NM LIBRARY BENCH_DIR
# The baselines' objects reference no kiln symbol (nm, defined or undefined) and their
# sources and headers include no kiln header; the library must hold the baselines (no
# vacuous pass): the queue, memcpy, raw OpenCL, raw CUDA, StarPU and ring ones. No object
# needs a vendor runtime's or StarPU's symbol either (cu*, nvrtc*, cl*, starpu_*
# undefined): those are dlopen'ed.
set -u
nm_tool=$1 lib=$2 dir=$3
syms=$("$nm_tool" -A "$lib") || { echo "nm failed on $lib"; exit 1; }
status=0
for want in bench_baseline_queue_roundtrip bench_baseline_queue_burst_10000 \
            bench_baseline_queue_burst bench_baseline_queue_threads bench_fanout_run \
            bench_baseline_queue_marker_poll bench_baseline_memcpy_run \
            bench_baseline_ocl_setup bench_baseline_ocl_write_blocking \
            bench_baseline_ocl_read_async bench_baseline_ocl_vecadd_timed \
            bench_baseline_ocl_launch_backtoback bench_baseline_ocl_marker_poll \
            bench_baseline_ocl_build_warm bench_baseline_ocl_build_cold \
            bench_baseline_cuda_setup bench_baseline_cuda_launch_roundtrip \
            bench_baseline_cuda_launch_enqueue bench_baseline_cuda_event_record \
            bench_baseline_cuda_h2d bench_baseline_cuda_d2h bench_baseline_cuda_vecadd_timed \
            bench_baseline_cuda_compile bench_baseline_starpu_available \
            bench_baseline_starpu_setup bench_baseline_starpu_burst_10000 \
            bench_baseline_starpu_roundtrip bench_baseline_handoff_run \
            bench_baseline_ocl_callback_roundtrip bench_baseline_cuda_host_func_roundtrip \
            bench_baseline_stream_rr_run bench_baseline_cuda_overlap bench_baseline_cuda_pipeline \
            bench_baseline_mutex_ring_setup bench_baseline_ck_ring_setup \
            bench_baseline_ck_ring_available bench_baseline_ring_stream \
            bench_baseline_ring_pingpong bench_ring_pair_stream bench_ring_pair_pingpong; do
  if ! printf '%s\n' "$syms" | grep -q " T $want\$"; then
    echo "FAIL: $lib does not define $want"; status=1
  fi
done
# the symbol is the last field (the archive's own name, -A's prefix, holds "kiln_")
bad=$(printf '%s\n' "$syms" | awk 'tolower($NF) ~ /kiln_/')
if [ -n "$bad" ]; then
  echo "FAIL: baseline objects reference kiln symbols:"; printf '%s\n' "$bad"; status=1
fi
vendor=$(printf '%s\n' "$syms" | awk '$(NF-1) == "U" && ($NF ~ /^(cu|nvrtc|cl)[A-Z]/ || $NF ~ /^_?starpu_/)')
if [ -n "$vendor" ]; then
  echo "FAIL: baseline objects link vendor runtime symbols (they must dlopen them):"
  printf '%s\n' "$vendor"; status=1
fi
inc=$(grep -n '#[[:space:]]*include.*kiln' "$dir"/baseline_*.[ch] "$dir"/baselines.h)
if [ -n "$inc" ]; then
  echo "FAIL: baseline sources include a kiln header:"; printf '%s\n' "$inc"; status=1
fi
[ $status -eq 0 ] && echo "ok: $(printf '%s\n' "$syms" | grep -c ' [TU] ') symbols, none of kiln"
exit $status
