/* SPDX-License-Identifier: MIT */
/* Interop: the native OpenCL object behind a kiln handle (cl_device_id and
 * cl_platform_id, cl_context, the stream's current cl_command_queue, cl_mem, cl_kernel),
 * and wrapping a user's cl_mem or in-order queue (checked against the kiln context,
 * then retained; a wrapped queue never moves to a profiling queue). Called through the
 * ops table only. */
#include "backends/opencl/opencl_internal.h"

kiln_status kiln__ocl_stream_wrap(kiln__stream *s, kiln_native_kind kind, const void *native) {
  if (kind != KILN_NATIVE_CL_COMMAND_QUEUE)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "the OpenCL backend wraps KILN_NATIVE_CL_COMMAND_QUEUE streams, not kind %d",
                       (int)kind);
  cl_command_queue q = *(const cl_command_queue *)native;
  cl_context c = NULL;
  cl_command_queue_properties props = 0;
  cl_int err = kiln__cl.clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof c, &c, NULL);
  if (err == CL_SUCCESS)
    err = kiln__cl.clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
  if (err != CL_SUCCESS)
    return kiln__cl_fail(err, "clGetCommandQueueInfo on the queue to wrap");
  if (c != s->h.ctx->native)
    return kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "the queue to wrap belongs to another cl_context than the kiln context's");
  if (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "the queue to wrap is out-of-order: kiln streams are in-order queues");
  kiln__ocl_stream *cs = kiln__calloc(1, sizeof *cs);
  if (!cs)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory wrapping a queue");
  kiln__cl.clRetainCommandQueue(q);
  kiln__cl_count(KILN__CLO_QUEUE, 1);
  cs->queue = q;
  cs->no_switch = 1; /* the user's queue */
  cs->profiled = (props & CL_QUEUE_PROFILING_ENABLE) != 0;
  pthread_mutex_init(&cs->lock, NULL);
  pthread_mutex_init(&cs->anchor_lock, NULL);
  s->native = cs;
  return KILN_SUCCESS;
}

kiln_status kiln__ocl_buffer_wrap(kiln__buffer *b, kiln_native_kind kind, const void *native) {
  if (kind != KILN_NATIVE_CL_MEM)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "the OpenCL backend wraps KILN_NATIVE_CL_MEM buffers, not kind %d",
                       (int)kind);
  cl_mem m = *(const cl_mem *)native;
  cl_context c = NULL;
  size_t size = 0;
  cl_int err = kiln__cl.clGetMemObjectInfo(m, CL_MEM_CONTEXT, sizeof c, &c, NULL);
  if (err == CL_SUCCESS)
    err = kiln__cl.clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof size, &size, NULL);
  if (err != CL_SUCCESS)
    return kiln__cl_fail(err, "clGetMemObjectInfo on the cl_mem to wrap");
  if (c != b->h.ctx->native)
    return kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "the cl_mem to wrap belongs to another cl_context than the kiln context's");
  if (size < b->bytes)
    return kiln__error(KILN_ERROR_OUT_OF_RANGE,
                       "the cl_mem to wrap has %zu bytes, fewer than the %zu asked for", size,
                       b->bytes);
  kiln__cl.clRetainMemObject(m);
  kiln__cl_count(KILN__CLO_MEM, 1);
  b->native = m;
  return KILN_SUCCESS;
}

kiln_status kiln__ocl_get_native(uint32_t tag, void *handle, kiln_native_kind kind, void *out) {
  switch (tag) {
  case KILN__TAG_DEVICE: {
    const kiln__ocl_device *dd = ((kiln__device *)handle)->native;
    if (kind == KILN_NATIVE_CL_DEVICE) {
      *(cl_device_id *)out = dd->id;
      return KILN_SUCCESS;
    }
    if (kind == KILN_NATIVE_CL_PLATFORM) {
      *(cl_platform_id *)out = dd->platform;
      return KILN_SUCCESS;
    }
    break;
  }
  case KILN__TAG_CONTEXT:
    if (kind == KILN_NATIVE_CL_CONTEXT) {
      *(cl_context *)out = ((kiln__context *)handle)->native;
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_STREAM:
    if (kind == KILN_NATIVE_CL_COMMAND_QUEUE) {
      *(cl_command_queue *)out = kiln__ocl_queue(((kiln__stream *)handle)->native);
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_BUFFER:
    if (kind == KILN_NATIVE_CL_MEM) {
      *(cl_mem *)out = ((kiln__buffer *)handle)->native;
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_KERNEL:
    if (kind == KILN_NATIVE_CL_KERNEL && ((kiln__kernel *)handle)->native) {
      *(cl_kernel *)out = ((kiln__ocl_kernel *)((kiln__kernel *)handle)->native)->kernel;
      return KILN_SUCCESS;
    }
    break;
  default:
    break;
  }
  kiln__error(KILN_ERROR_UNSUPPORTED, "native kind %d does not apply to this OpenCL-backend object",
              (int)kind);
  kiln__error_suggest("devices give CL_DEVICE/CL_PLATFORM, contexts CL_CONTEXT, streams "
                      "CL_COMMAND_QUEUE, buffers CL_MEM, kernels CL_KERNEL");
  return KILN_ERROR_UNSUPPORTED;
}
