/* SPDX-License-Identifier: MIT */
/* Helpers of the OpenCL suites (ocl_common.h): public kiln API only. The baseline gets
 * the cl_device_id behind the kiln device, so raw OpenCL and kiln run on the same
 * device whatever the platform order or --device says. */
#include "ocl_common.h"

kiln_status kiln__bench_ocl_open(const kiln_bench_env *env, kiln_context *context,
                                 kiln_stream *stream) {
  *stream = NULL;
  kiln_status st = kiln_context_create(env->device, NULL, context);
  if (st == KILN_SUCCESS)
    st = kiln_stream_create(*context, NULL, stream);
  if (st != KILN_SUCCESS) {
    kiln_context_destroy(*context);
    *context = NULL;
  }
  return st;
}

int kiln__bench_ocl_raw_setup(const kiln_bench_env *env, bench_ocl_args *args, void **state) {
  *state = NULL;
  /* a cl_device_id is an object pointer: stored here as a void * of the same width */
  kiln_status st = kiln_device_get_native(env->device, KILN_NATIVE_CL_DEVICE, &args->device);
  if (st != KILN_SUCCESS)
    return st;
  return bench_baseline_ocl_setup(args, state);
}
