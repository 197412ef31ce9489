/* SPDX-License-Identifier: MIT */
/* Interop with vendor libraries: the native objects behind kiln handles, and kiln
 * handles around native objects that already exist. `out` and `native` point to
 * storage of the native type named by the kind (cl_mem, CUdeviceptr, void *...). */
#ifndef KILN_NATIVE_H
#define KILN_NATIVE_H

#include <stddef.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

typedef enum kiln_native_kind {
  KILN_NATIVE_HOST_POINTER = 1,      /* void *: a CPU-backend buffer's storage */
  KILN_NATIVE_CL_PLATFORM = 10,      /* cl_platform_id (device) */
  KILN_NATIVE_CL_DEVICE = 11,        /* cl_device_id (device) */
  KILN_NATIVE_CL_CONTEXT = 12,       /* cl_context (context) */
  KILN_NATIVE_CL_COMMAND_QUEUE = 13, /* cl_command_queue (stream) */
  KILN_NATIVE_CL_MEM = 14,           /* cl_mem (buffer) */
  KILN_NATIVE_CL_PROGRAM = 15,       /* cl_program (program) */
  KILN_NATIVE_CL_KERNEL = 16,        /* cl_kernel (kernel) */
  KILN_NATIVE_CU_DEVICE = 20,        /* CUdevice */
  KILN_NATIVE_CU_CONTEXT = 21,       /* CUcontext */
  KILN_NATIVE_CU_STREAM = 22,        /* CUstream */
  KILN_NATIVE_CU_DEVICEPTR = 23,     /* CUdeviceptr */
  KILN_NATIVE_CU_MODULE = 24,        /* CUmodule */
  KILN_NATIVE_CU_FUNCTION = 25       /* CUfunction */
} kiln_native_kind;

KILN_BEGIN_DECLS

/* The native object behind a handle, written to *out (a cl_mem for KILN_NATIVE_CL_MEM,
 * ...). kiln keeps ownership: do not release it. A kind that does not belong to the
 * handle's type or backend: KILN_ERROR_UNSUPPORTED naming both. */
KILN_API kiln_status kiln_device_get_native(kiln_device device, kiln_native_kind kind, void *out);
KILN_API kiln_status kiln_context_get_native(kiln_context context, kiln_native_kind kind,
                                             void *out);
KILN_API kiln_status kiln_stream_get_native(kiln_stream stream, kiln_native_kind kind, void *out);
KILN_API kiln_status kiln_buffer_get_native(kiln_buffer buffer, kiln_native_kind kind, void *out);
KILN_API kiln_status kiln_kernel_get_native(kiln_kernel kernel, kiln_native_kind kind, void *out);

/* Wrap an existing native buffer of `bytes` bytes (it must belong to the context's
 * native context; *native is e.g. a cl_mem). kiln takes its own reference (OpenCL:
 * clRetainMemObject) and drops it at kiln_buffer_destroy; the caller keeps theirs. */
KILN_API kiln_status kiln_buffer_wrap_native(kiln_context context, kiln_native_kind kind,
                                             const void *native, size_t bytes, kiln_buffer *buffer);
/* Wrap an existing in-order native queue or stream as a kiln stream (OpenCL: a queue
 * without CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE; events recorded on it are timed only
 * if the queue has profiling on). kiln retains it and releases it at destroy. */
KILN_API kiln_status kiln_stream_wrap_native(kiln_context context, kiln_native_kind kind,
                                             const void *native, kiln_stream *stream);

KILN_END_DECLS
#endif
