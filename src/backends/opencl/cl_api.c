/* SPDX-License-Identifier: MIT */
/* Loading the OpenCL ICD loader with dlopen: by soname (libOpenCL.so.1), or from the
 * absolute path in KILN_OPENCL_LIBRARY (a relative path is refused). Every entry point
 * is resolved through `void **` (ISO C forbids casting dlsym's result to a function
 * pointer). Called once, under the registry's once-guard. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/cl_api.h"

kiln__cl_api kiln__cl;
_Atomic long kiln__cl_live[KILN__CLO_COUNT_];

long kiln__cl_live_total(void) {
  long n = 0;
  for (int i = 0; i < KILN__CLO_COUNT_; i++)
    n += atomic_load(&kiln__cl_live[i]);
  return n;
}

kiln_status kiln__cl_load(char *reason, size_t reason_bytes) {
  const char *path = getenv("KILN_OPENCL_LIBRARY");
  if (path && *path && path[0] != '/') {
    snprintf(reason, reason_bytes,
             "KILN_OPENCL_LIBRARY='%s' is a relative path: give an absolute one", path);
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  const char *name = path && *path ? path : "libOpenCL.so.1";
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *err = dlerror();
    snprintf(reason, reason_bytes, "%s could not be loaded: %s", name, err ? err : "unknown error");
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
#define KILN__CL_RESOLVE(fn)                                                                       \
  *(void **)&kiln__cl.fn = dlsym(lib, #fn);                                                        \
  if (!kiln__cl.fn) {                                                                              \
    snprintf(reason, reason_bytes, "%s has no %s: an OpenCL 1.2 ICD loader is needed", name, #fn); \
    dlclose(lib);                                                                                  \
    memset(&kiln__cl, 0, sizeof kiln__cl);                                                         \
    return KILN_ERROR_BACKEND_UNAVAILABLE;                                                         \
  }
  KILN__CL_ENTRIES(KILN__CL_RESOLVE)
  KILN__CL_RESOLVE(clGetExtensionFunctionAddressForPlatform)
#undef KILN__CL_RESOLVE
  /* The library stays loaded for the process: devices and their handles never go. */
  return KILN_SUCCESS;
}

const char *kiln__cl_error_name(cl_int code) {
  switch (code) {
#define N(c) \
  case c:    \
    return #c
    N(CL_SUCCESS);
    N(CL_DEVICE_NOT_FOUND);
    N(CL_DEVICE_NOT_AVAILABLE);
    N(CL_COMPILER_NOT_AVAILABLE);
    N(CL_MEM_OBJECT_ALLOCATION_FAILURE);
    N(CL_OUT_OF_RESOURCES);
    N(CL_OUT_OF_HOST_MEMORY);
    N(CL_PROFILING_INFO_NOT_AVAILABLE);
    N(CL_MEM_COPY_OVERLAP);
    N(CL_IMAGE_FORMAT_MISMATCH);
    N(CL_IMAGE_FORMAT_NOT_SUPPORTED);
    N(CL_BUILD_PROGRAM_FAILURE);
    N(CL_MAP_FAILURE);
    N(CL_MISALIGNED_SUB_BUFFER_OFFSET);
    N(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
    N(CL_COMPILE_PROGRAM_FAILURE);
    N(CL_LINKER_NOT_AVAILABLE);
    N(CL_LINK_PROGRAM_FAILURE);
    N(CL_DEVICE_PARTITION_FAILED);
    N(CL_KERNEL_ARG_INFO_NOT_AVAILABLE);
    N(CL_INVALID_VALUE);
    N(CL_INVALID_DEVICE_TYPE);
    N(CL_INVALID_PLATFORM);
    N(CL_INVALID_DEVICE);
    N(CL_INVALID_CONTEXT);
    N(CL_INVALID_QUEUE_PROPERTIES);
    N(CL_INVALID_COMMAND_QUEUE);
    N(CL_INVALID_HOST_PTR);
    N(CL_INVALID_MEM_OBJECT);
    N(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR);
    N(CL_INVALID_IMAGE_SIZE);
    N(CL_INVALID_SAMPLER);
    N(CL_INVALID_BINARY);
    N(CL_INVALID_BUILD_OPTIONS);
    N(CL_INVALID_PROGRAM);
    N(CL_INVALID_PROGRAM_EXECUTABLE);
    N(CL_INVALID_KERNEL_NAME);
    N(CL_INVALID_KERNEL_DEFINITION);
    N(CL_INVALID_KERNEL);
    N(CL_INVALID_ARG_INDEX);
    N(CL_INVALID_ARG_VALUE);
    N(CL_INVALID_ARG_SIZE);
    N(CL_INVALID_KERNEL_ARGS);
    N(CL_INVALID_WORK_DIMENSION);
    N(CL_INVALID_WORK_GROUP_SIZE);
    N(CL_INVALID_WORK_ITEM_SIZE);
    N(CL_INVALID_GLOBAL_OFFSET);
    N(CL_INVALID_EVENT_WAIT_LIST);
    N(CL_INVALID_EVENT);
    N(CL_INVALID_OPERATION);
    N(CL_INVALID_GL_OBJECT);
    N(CL_INVALID_BUFFER_SIZE);
    N(CL_INVALID_MIP_LEVEL);
    N(CL_INVALID_GLOBAL_WORK_SIZE);
    N(CL_INVALID_PROPERTY);
    N(CL_INVALID_IMAGE_DESCRIPTOR);
    N(CL_INVALID_COMPILER_OPTIONS);
    N(CL_INVALID_LINKER_OPTIONS);
    N(CL_INVALID_DEVICE_PARTITION_COUNT);
#undef N
  case -1001:
    return "CL_PLATFORM_NOT_FOUND_KHR";
  default:
    return "CL_UNKNOWN_ERROR";
  }
}

kiln_status kiln__cl_fail(cl_int code, const char *what) {
  kiln_status st;
  switch (code) {
  case CL_OUT_OF_HOST_MEMORY:
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
    break;
  case CL_MEM_OBJECT_ALLOCATION_FAILURE:
  case CL_OUT_OF_RESOURCES:
    st = KILN_ERROR_OUT_OF_DEVICE_MEMORY;
    break;
  case CL_BUILD_PROGRAM_FAILURE:
    st = KILN_ERROR_COMPILE_FAILED;
    break;
  case CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST:
    st = KILN_ERROR_DEPENDENCY_FAILED;
    break;
  case CL_INVALID_KERNEL_ARGS:
  case CL_INVALID_ARG_SIZE:
  case CL_INVALID_ARG_VALUE:
    st = KILN_ERROR_KERNEL_ARGS;
    break;
  case CL_INVALID_WORK_GROUP_SIZE:
  case CL_INVALID_WORK_ITEM_SIZE:
  case CL_INVALID_GLOBAL_WORK_SIZE:
    st = KILN_ERROR_LIMIT_EXCEEDED;
    break;
  case CL_DEVICE_NOT_AVAILABLE:
    st = KILN_ERROR_DEVICE_LOST;
    break;
  default:
    st = KILN_ERROR_BACKEND;
    break;
  }
  return kiln__error_native(st, KILN_BACKEND_OPENCL, code, kiln__cl_error_name(code),
                            "%s failed: %s (%d)", what, kiln__cl_error_name(code), (int)code);
}
