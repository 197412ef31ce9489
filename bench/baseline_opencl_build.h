/* SPDX-License-Identifier: MIT */
/* Raw OpenCL baseline of the `cache` suite (bench/baseline_opencl_build.c): building a
 * program from OpenCL C source, as a program without kiln does — clCreateProgramWithSource
 * + clBuildProgram, which PoCL serves from its own cache (POCL_CACHE_DIR) when it has
 * built the same source before. Includes no kiln header; references no kiln_ symbol. */
#ifndef KILN_BENCH_BASELINE_OPENCL_BUILD_H
#define KILN_BENCH_BASELINE_OPENCL_BUILD_H

#include <stdint.h>

/* args: the cl_device_id of the kiln device measured (void *). Loads libOpenCL (the
 * library kiln loads: libOpenCL.so.1 or the absolute $KILN_OPENCL_LIBRARY), makes a
 * context, and builds the suite's source once (so PoCL's cache holds it). */
int bench_baseline_ocl_build_setup(void *device, void **state);
void bench_baseline_ocl_build_teardown(void *state);
/* Per iteration: create the program from the same source, build it, release it. */
int bench_baseline_ocl_build_warm(void *state, uint64_t iters);
/* Per iteration: a source never built before (a unique comment first), so nothing
 * can serve it: PoCL compiles. */
int bench_baseline_ocl_build_cold(void *state, uint64_t iters);

#endif
