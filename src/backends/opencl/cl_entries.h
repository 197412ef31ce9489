/* SPDX-License-Identifier: MIT */
/* The OpenCL entry points kiln resolves from the ICD loader, as an X-macro list: the
 * loader table of cl_api.h, and the counting layer of kiln's call-stream tests
 * (tests/opencl/cl_calls.c), which must interpose exactly these. No includes. */
#ifndef KILN_CL_ENTRIES_H
#define KILN_CL_ENTRIES_H

#define KILN__CL_ENTRIES(X)      \
  X(clGetPlatformIDs)            \
  X(clGetPlatformInfo)           \
  X(clGetDeviceIDs)              \
  X(clGetDeviceInfo)             \
  X(clCreateContext)             \
  X(clRetainContext)             \
  X(clReleaseContext)            \
  X(clCreateCommandQueue)        \
  X(clRetainCommandQueue)        \
  X(clReleaseCommandQueue)       \
  X(clGetCommandQueueInfo)       \
  X(clCreateBuffer)              \
  X(clCreateSubBuffer)           \
  X(clRetainMemObject)           \
  X(clReleaseMemObject)          \
  X(clGetMemObjectInfo)          \
  X(clEnqueueWriteBuffer)        \
  X(clEnqueueReadBuffer)         \
  X(clEnqueueCopyBuffer)         \
  X(clEnqueueFillBuffer)         \
  X(clEnqueueMapBuffer)          \
  X(clEnqueueUnmapMemObject)     \
  X(clEnqueueMarkerWithWaitList) \
  X(clEnqueueNDRangeKernel)      \
  X(clCreateProgramWithSource)   \
  X(clCreateProgramWithBinary)   \
  X(clGetProgramInfo)            \
  X(clBuildProgram)              \
  X(clGetProgramBuildInfo)       \
  X(clReleaseProgram)            \
  X(clRetainProgram)             \
  X(clCreateKernel)              \
  X(clReleaseKernel)             \
  X(clSetKernelArg)              \
  X(clGetKernelWorkGroupInfo)    \
  X(clSetEventCallback)          \
  X(clRetainEvent)               \
  X(clReleaseEvent)              \
  X(clGetEventInfo)              \
  X(clGetEventProfilingInfo)     \
  X(clWaitForEvents)             \
  X(clFlush)                     \
  X(clFinish)

#endif
