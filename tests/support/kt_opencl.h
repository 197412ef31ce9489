/* SPDX-License-Identifier: MIT */
/* The few raw OpenCL entry points tests use next to kiln (interop, the host-side gate),
 * resolved from the ICD loader with dlopen at run time: no test links libOpenCL
 * (design.md "Devices and backends"). Types come from the Khronos headers. */
#ifndef KT_OPENCL_H
#define KT_OPENCL_H

#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

#define KT_CL_ENTRIES(X)         \
  X(clGetPlatformInfo)           \
  X(clGetDeviceInfo)             \
  X(clGetContextInfo)            \
  X(clCreateContext)             \
  X(clReleaseContext)            \
  X(clCreateCommandQueue)        \
  X(clReleaseCommandQueue)       \
  X(clGetCommandQueueInfo)       \
  X(clCreateBuffer)              \
  X(clReleaseMemObject)          \
  X(clGetMemObjectInfo)          \
  X(clEnqueueWriteBuffer)        \
  X(clEnqueueReadBuffer)         \
  X(clEnqueueMarkerWithWaitList) \
  X(clEnqueueNDRangeKernel)      \
  X(clGetKernelInfo)             \
  X(clSetKernelArg)              \
  X(clCreateUserEvent)           \
  X(clSetUserEventStatus)        \
  X(clReleaseEvent)              \
  X(clFinish)

typedef struct kt_cl_api {
#define KT_CL_MEMBER(name) __typeof__(&name) name;
  KT_CL_ENTRIES(KT_CL_MEMBER)
#undef KT_CL_MEMBER
} kt_cl_api;

/* Resolved on first call (thread-safe); NULL when libOpenCL.so.1 or an entry is
 * missing (the reason printed once to stderr). */
const kt_cl_api *kt_cl(void);
/* kt_cl(), asserting (cmocka) that it loaded. */
const kt_cl_api *kt_cl_required(void);

#endif
