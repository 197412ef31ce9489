/* SPDX-License-Identifier: MIT */
/* Raw OpenCL baselines of the suite `dialect` (bench/baseline_dialect.c): the reductions
 * (local memory as a parameter, or declared in the kernel) and the histogram of the kiln side's CPU
 * kernels, written in OpenCL C against the OpenCL 1.2 API on PoCL's CPU device, in the same
 * process. Includes no kiln header; the object references no kiln_ symbol (checked with nm). */
#ifndef KILN_BENCH_BASELINE_DIALECT_H
#define KILN_BENCH_BASELINE_DIALECT_H

#include <stddef.h>
#include <stdint.h>

enum { BENCH_DIALECT_REDUCE = 1, BENCH_DIALECT_HISTOGRAM = 2, BENCH_DIALECT_REDUCE_STATIC = 3 };

typedef struct bench_dialect_args {
  void *device; /* the cl_device_id to run on (PoCL's CPU device) */
  int kernel;   /* BENCH_DIALECT_* */
  size_t items; /* elements of the input */
  size_t local; /* the work-group size (reduce: a power of two; the kiln side's) */
} bench_dialect_args;

/* Load libOpenCL (as bench_baseline_ocl_setup does), build the kernel, write the input,
 * run it once and check the result against the host's. `arg` is a bench_dialect_args. */
int bench_baseline_dialect_setup(void *arg, void **state);
void bench_baseline_dialect_teardown(void *state);
/* One launch (clEnqueueNDRangeKernel with an event) and clWaitForEvents per iteration
 * (the histogram also clears its bins first, with clEnqueueFillBuffer). */
int bench_baseline_dialect_run(void *state, uint64_t iters);

#endif
