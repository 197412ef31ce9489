/* SPDX-License-Identifier: MIT */
/* Raw CUDA driver-API baselines of the suite `cuda` (bench/baseline_cuda.c): the same
 * work as the kiln side written directly against the driver API (and NVRTC for the
 * kernels), on the same device and in the same primary context, in the same process.
 * Like every baseline this header includes no kiln header and the object references
 * no kiln_ symbol (a test checks with nm). Run functions do `iters` iterations and
 * return 0, or the failing call's CUresult / nvrtcResult / errno (non-zero) after
 * printing which call failed, with the error's name, to stderr. */
#ifndef KILN_BENCH_BASELINE_CUDA_H
#define KILN_BENCH_BASELINE_CUDA_H

#include <stddef.h>
#include <stdint.h>

/* Launches per iteration of launch_enqueue: this many back-to-back launches, then one
 * synchronize (both sides); the figure is per launch. */
#define BENCH_CUDA_BURST 1000u

/* What the baseline builds at set-up. */
enum {
  BENCH_CUDA_KERNEL_NONE = 0,
  BENCH_CUDA_KERNEL_EMPTY = 1, /* extern "C" __global__ void empty(void) {} */
  BENCH_CUDA_KERNEL_VECADD = 2 /* c[i] = a[i] + b[i], int n */
};

/* What the baseline works with; zero fields are unused. */
typedef struct bench_cuda_args {
  int device;   /* the CUdevice (ordinal) of the kiln device being measured
                 * (kiln_device_get_native(..., KILN_NATIVE_CU_DEVICE, ...)) */
  int kernel;   /* BENCH_CUDA_KERNEL_*: compiled with NVRTC and loaded at set-up
                 * (vecadd with items = 0: the module only, no buffers) */
  int compile;  /* 1: NVRTC loaded and the target chosen (nvrtc_compile) */
  size_t bytes; /* transfer cases: one device buffer and one host block */
  int pinned;   /* transfer cases: 1: the host block is cuMemHostAlloc memory,
                 * 0: pageable (posix_memalign, touched at set-up) */
  size_t items; /* vecadd: three float buffers of this many elements (<= INT_MAX) */
  int timing;   /* 1: two timing events for the device-timed vecadd */
  int event;    /* 1: one untimed event (event_record) */
} bench_cuda_args;

/* Load libcuda (libcuda.so.1, or the absolute $KILN_CUDA_LIBRARY: the library kiln
 * loads) with dlopen, resolve its entries with cuGetProcAddress_v2 at CUDA 12.0 (so
 * cuMemAlloc is cuMemAlloc_v2, ...), cuInit(0); retain the device's primary context —
 * the very CUcontext kiln's contexts on that device use — once for the process (so it
 * is not destroyed and re-created between cases), make it current, and create one
 * non-blocking stream, the buffers (written once), the host block, and the kernel
 * (NVRTC: libnvrtc.so.13 / .12, or the absolute $KILN_NVRTC_LIBRARY, or
 * $CUDA_HOME/lib64 and /usr/local/cuda/lib64; CUBIN for the device's sm_XY when NVRTC
 * knows it, else PTX, as kiln chooses). Launch geometry is what kiln picks when the
 * caller gives no local size: the occupancy API's block size for the kernel, capped
 * to the range rounded up to a warp; grid = the range in whole blocks. vecadd is
 * launched once and checked. `arg` is a bench_cuda_args. */
int bench_baseline_cuda_setup(void *arg, void **state);
void bench_baseline_cuda_teardown(void *state);

/* launch_roundtrip: cuLaunchKernel of the empty kernel, cuStreamSynchronize. */
int bench_baseline_cuda_launch_roundtrip(void *state, uint64_t iters);
/* async_cuda callback_latency: the empty kernel, then cuLaunchHostFunc whose host
 * function signals a condvar the caller waits on, per iteration. */
int bench_baseline_cuda_host_func_roundtrip(void *state, uint64_t iters);
/* launch_enqueue: BENCH_CUDA_BURST launches of the empty kernel, cuStreamSynchronize. */
int bench_baseline_cuda_launch_enqueue(void *state, uint64_t iters);
/* event_record: cuEventRecord on the idle stream, cuEventQuery until CUDA_SUCCESS. */
int bench_baseline_cuda_event_record(void *state, uint64_t iters);
/* pool: cuMemAlloc + cuMemFree of args.bytes per iteration; and cuMemAllocAsync +
 * cuMemFreeAsync on the stream (the driver's default pool), synchronised per batch. */
int bench_baseline_cuda_alloc_free(void *state, uint64_t iters);
int bench_baseline_cuda_alloc_free_async(void *state, uint64_t iters);
/* host_alloc_free: cuMemHostAlloc + cuMemFreeHost of args.bytes (pinned host memory). */
int bench_baseline_cuda_host_alloc_free(void *state, uint64_t iters);
/* Transfers: cuMemcpyHtoDAsync_v2 / cuMemcpyDtoHAsync_v2 of the whole block on the
 * stream, then cuStreamSynchronize (the transfer is complete when it returns). */
int bench_baseline_cuda_h2d(void *state, uint64_t iters);
int bench_baseline_cuda_d2h(void *state, uint64_t iters);
/* vecadd: cuLaunchKernel, cuStreamSynchronize. */
int bench_baseline_cuda_vecadd(void *state, uint64_t iters);
/* The same, each launch between two timing events (cuEventElapsedTime). */
int bench_baseline_cuda_vecadd_timed(void *state, uint64_t iters, uint64_t *device_ns);
/* nvrtc_compile: vecadd's CUDA C++ source (made unique per iteration by a comment)
 * through nvrtcCreateProgram, nvrtcCompileProgram, nvrtcGetCUBIN (PTX where kiln would
 * take PTX), nvrtcDestroyProgram, then cuModuleLoadDataEx and cuModuleUnload: source
 * to a loaded module, as kiln_program_create + kiln_program_destroy. */
int bench_baseline_cuda_compile(void *state, uint64_t iters);
/* kernel_create: cuModuleGetFunction of vecadd from the module loaded at set-up. */
int bench_baseline_cuda_get_function(void *state, uint64_t iters);

/* ---- the streams suite's raw variants (suite streams_cuda, issue #18) ---- */
enum { BENCH_CUDA_OVERLAP = 1, BENCH_CUDA_PIPELINE = 2 };
#define BENCH_CUDA_OVERLAP_KERNELS 10u /* per stream, 4 streams */
typedef struct bench_cuda_streams_args {
  int device;                    /* the CUdevice ordinal (as bench_cuda_args) */
  int what;                      /* BENCH_CUDA_OVERLAP or _PIPELINE */
  unsigned long long spin_iters; /* overlap: the spin kernel's loop (the kiln side's
                                  * calibration, so both do the same work) */
  size_t bytes, chunk_bytes;     /* pipeline: pinned (cuMemHostAlloc) src and dst of
                                  * `bytes`, chunks of `chunk_bytes` (a divisor) */
} bench_cuda_streams_args;
/* Four non-blocking streams; overlap: the spin kernel (one work-item, 64-bit LCG loop)
 * and a buffer per stream; pipeline: the affine kernel (y = 2x + 1, kiln's launch
 * geometry), two slots of input and output buffers, three events per slot, and one run
 * checked. arg: a bench_cuda_streams_args. */
int bench_baseline_cuda_streams_setup(void *arg, void **state);
void bench_baseline_cuda_streams_teardown(void *state);
/* overlap_4x10_raw: 10 spin kernels on each of 4 streams, queued in turn, then all four
 * synchronized. */
int bench_baseline_cuda_overlap(void *state, uint64_t iters);
/* pipeline_256MiB_raw: the hand-written double-buffer pipeline on three streams ordered
 * by events (upload i+1, compute i, download i-1 at once). */
int bench_baseline_cuda_pipeline(void *state, uint64_t iters);

#endif
