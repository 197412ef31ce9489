/* SPDX-License-Identifier: MIT */
/* Programs and kernels: dialect source (already rewritten for OpenCL C by the core)
 * built for the context's device, the whole build log kept on failure; one shared
 * cl_kernel per kiln kernel with the work-group facts launches need, and the kernel's
 * limits (work-group size, its own local memory) filled for the core's checks at the
 * call. Called through the ops table only; kernel_destroy runs once no launch refers to
 * the kernel. */
#include <string.h>

#include "backends/opencl/opencl_internal.h"

kiln_status kiln__ocl_program_build(kiln__program *p, const char *src, size_t bytes,
                                    const char *options) {
  cl_int err = CL_SUCCESS;
  const char *srcs[1] = {src};
  size_t lens[1] = {bytes};
  cl_program prog = kiln__cl.clCreateProgramWithSource(p->h.ctx->native, 1, srcs, lens, &err);
  if (!prog)
    return kiln__cl_fail(err, "clCreateProgramWithSource");
  kiln__cl_count(KILN__CLO_PROGRAM, 1);
  cl_device_id dev = kiln__ocl_dev_id(p->h.ctx->device);
  err = kiln__cl.clBuildProgram(prog, 1, &dev, options, NULL, NULL);
  if (err == CL_SUCCESS) {
    p->native = prog;
    return KILN_SUCCESS;
  }
  size_t log_len = 0;
  kiln__cl.clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_len);
  char *log = log_len ? kiln__alloc(log_len + 1) : NULL;
  char first[400] = "(no build log)";
  if (log) {
    if (kiln__cl.clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, log_len, log, NULL) !=
        CL_SUCCESS)
      log[0] = '\0';
    log[log_len] = '\0';
    kiln__set_build_log(log, strlen(log));
    kiln__first_error_line(log, "the OpenCL compiler", "<kernel>:", KILN__TARGET_OPENCL, first,
                           sizeof first);
    kiln__free(log, log_len + 1);
  } else {
    kiln__set_build_log("", 0);
  }
  kiln__cl.clReleaseProgram(prog);
  kiln__cl_count(KILN__CLO_PROGRAM, -1);
  kiln_status st = err == CL_BUILD_PROGRAM_FAILURE || err == CL_INVALID_BUILD_OPTIONS
                       ? KILN_ERROR_COMPILE_FAILED
                       : KILN_ERROR_BACKEND;
  kiln__error_native(st, KILN_BACKEND_OPENCL, err, kiln__cl_error_name(err), "program '%s': %s",
                     p->name, first);
  kiln__error_suggest("read the whole log with kiln_last_build_log()");
  return st;
}

void kiln__ocl_program_destroy(kiln__program *p) {
  if (p->native) {
    kiln__cl.clReleaseProgram(p->native);
    kiln__cl_count(KILN__CLO_PROGRAM, -1);
  }
  p->native = NULL;
}

kiln_status kiln__ocl_kernel_create(kiln__kernel *k, kiln__program *p) {
  kiln__ocl_kernel *ok = kiln__calloc(1, sizeof *ok);
  if (!ok)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating kernel '%s'",
                       k->name);
  cl_int err = CL_SUCCESS;
  ok->kernel = kiln__cl.clCreateKernel(p->native, k->name, &err);
  if (!ok->kernel) {
    kiln__free(ok, sizeof *ok);
    return kiln__cl_fail(err, "clCreateKernel");
  }
  kiln__cl_count(KILN__CLO_KERNEL, 1);
  cl_device_id dev = kiln__ocl_dev_id(k->h.ctx->device);
  /* The kernel's limits, which the core checks at the launch call. Its local memory is
   * asked before any argument is set: the answer is then its own __local declarations
   * (afterwards it would include the local arguments set last). */
  cl_ulong own_local = 0;
  if (kiln__cl.clGetKernelWorkGroupInfo(ok->kernel, dev, CL_KERNEL_LOCAL_MEM_SIZE, sizeof own_local,
                                        &own_local, NULL) == CL_SUCCESS)
    k->static_local_bytes = own_local;
  if (kiln__cl.clGetKernelWorkGroupInfo(ok->kernel, dev, CL_KERNEL_WORK_GROUP_SIZE,
                                        sizeof ok->wg_max, &ok->wg_max, NULL) == CL_SUCCESS)
    k->max_group_size = ok->wg_max; /* 0: only the device's limit applies */
  else
    ok->wg_max = k->h.ctx->device->props.max_work_group_size;
  if (kiln__cl.clGetKernelWorkGroupInfo(ok->kernel, dev,
                                        CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE,
                                        sizeof ok->multiple, &ok->multiple, NULL) != CL_SUCCESS ||
      !ok->multiple)
    ok->multiple = 1;
  if (!ok->wg_max)
    ok->wg_max = 1;
  pthread_mutex_init(&ok->lock, NULL);
  k->native = ok;
  return KILN_SUCCESS;
}

void kiln__ocl_kernel_destroy(kiln__kernel *k) {
  kiln__ocl_kernel *ok = k->native;
  if (!ok)
    return;
  kiln__cl.clReleaseKernel(ok->kernel);
  kiln__cl_count(KILN__CLO_KERNEL, -1);
  pthread_mutex_destroy(&ok->lock);
  kiln__free(ok, sizeof *ok);
  k->native = NULL;
}
