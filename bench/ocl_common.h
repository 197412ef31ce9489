/* SPDX-License-Identifier: MIT */
/* What the OpenCL suites (bench/ocl_*_suite.c) share: the kiln side's context and
 * stream on the suite's device, and the raw baseline's set-up on that same device
 * (kiln hands its cl_device_id over, so both sides always measure one device). */
#ifndef KILN_BENCH_OCL_COMMON_H
#define KILN_BENCH_OCL_COMMON_H

#include "kiln.h"
#include "kiln/bench.h"
#include "baseline_opencl.h"

/* A context and one stream on env->device; both NULL on failure. */
kiln_status kiln__bench_ocl_open(const kiln_bench_env *env, kiln_context *context,
                                 kiln_stream *stream);
/* Set up the raw baseline on env->device: args->device is filled in here, the caller
 * sets the rest. Returns the baseline's code, or a kiln_status when the device has no
 * cl_device_id. */
int kiln__bench_ocl_raw_setup(const kiln_bench_env *env, bench_ocl_args *args, void **state);

#endif
