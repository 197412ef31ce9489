/* SPDX-License-Identifier: MIT */
/* The OpenCL backend: any ICD, loaded at run time (cl_api.c). One cl_context per kiln
 * context, one in-order profiling queue per stream, one cl_event per op. Dependencies
 * on other streams become event wait lists (the other stream's latest event, which
 * over-synchronises at most). Completion arrives through clSetEventCallback on the
 * runtime's thread, which only marks the op; ops are then completed in stream order by
 * whoever drains (the callback, or a waiter). User callbacks never run there: the core
 * posts them to the context's callback thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/cl_api.h"
#include "core/backend.h"

#define MAX_CL_DEVICES 32

typedef struct ocl_device_data {
  cl_platform_id platform;
  cl_device_id id;
} ocl_device_data;

static ocl_device_data ocl_devices[MAX_CL_DEVICES]; /* process lifetime, like the devices */

typedef struct ocl_stream {
  cl_command_queue queue;
  pthread_mutex_t lock;          /* pending list, last_event */
  kiln__op *pend_head, *pend_tail;
  cl_event last_event;           /* retained: the latest enqueued command */
  _Atomic uint64_t submitted_seq; /* seq of the latest op handed to the queue */
} ocl_stream;

static cl_device_id dev_id(const kiln__device *d) { return ((ocl_device_data *)d->native)->id; }

/* ------------------------------------------------------------- probe */
static void info_str(cl_device_id d, cl_device_info what, char *out, size_t n) {
  out[0] = '\0';
  if (kiln__cl.clGetDeviceInfo(d, what, n, out, NULL) != CL_SUCCESS) out[0] = '\0';
  out[n - 1] = '\0';
}

static kiln_status ocl_probe(const kiln__backend_ops *self, char *reason, size_t reason_bytes) {
  kiln_status st = kiln__cl_load(reason, reason_bytes);
  if (st != KILN_SUCCESS) return st;
  cl_uint nplat = 0;
  cl_int err = kiln__cl.clGetPlatformIDs(0, NULL, &nplat);
  if (err != CL_SUCCESS || nplat == 0) {
    snprintf(reason, reason_bytes, "no OpenCL platform: clGetPlatformIDs returned %s (%d)",
             err == CL_SUCCESS ? "0 platforms" : kiln__cl_error_name(err), (int)err);
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  cl_platform_id plats[16];
  if (nplat > 16) nplat = 16;
  kiln__cl.clGetPlatformIDs(nplat, plats, NULL);
  unsigned added = 0;
  for (cl_uint p = 0; p < nplat; p++) {
    cl_uint ndev = 0;
    if (kiln__cl.clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &ndev) != CL_SUCCESS) continue;
    cl_device_id ids[16];
    if (ndev > 16) ndev = 16;
    kiln__cl.clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, ndev, ids, NULL);
    for (cl_uint i = 0; i < ndev && added < MAX_CL_DEVICES; i++) {
      cl_device_id d = ids[i];
      kiln_device_props pr = KILN_DEVICE_PROPS_INIT;
      cl_device_type type = 0;
      cl_ulong u64 = 0;
      cl_uint u32 = 0;
      size_t sz = 0;
      info_str(d, CL_DEVICE_NAME, pr.name, sizeof pr.name);
      info_str(d, CL_DEVICE_VENDOR, pr.vendor, sizeof pr.vendor);
      kiln__cl.clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
      pr.kind = (type & CL_DEVICE_TYPE_GPU)           ? KILN_DEVICE_KIND_GPU
                : (type & CL_DEVICE_TYPE_CPU)         ? KILN_DEVICE_KIND_CPU
                : (type & CL_DEVICE_TYPE_ACCELERATOR) ? KILN_DEVICE_KIND_ACCELERATOR
                                                      : KILN_DEVICE_KIND_OTHER;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u64, &u64, NULL) == CL_SUCCESS)
        pr.global_mem_bytes = u64;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u64, &u64, NULL) == CL_SUCCESS)
        pr.max_alloc_bytes = u64;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u32, &u32, NULL) == CL_SUCCESS)
        pr.compute_units = u32;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof sz, &sz, NULL) == CL_SUCCESS)
        pr.max_work_group_size = sz;
      size_t items[3] = {1, 1, 1};
      kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof items, items, NULL);
      for (int k = 0; k < 3; k++) {
        pr.max_work_item_sizes[k] = items[k];
        pr.max_global_size[k] = SIZE_MAX / 2;
      }
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof u64, &u64, NULL) == CL_SUCCESS)
        pr.local_mem_bytes = u64;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof u32, &u32, NULL) == CL_SUCCESS)
        pr.mem_align_bytes = u32 / 8u;
      /* NVIDIA: CL_DEVICE_PCI_BUS_ID_NV / CL_DEVICE_PCI_SLOT_ID_NV. */
      cl_uint bus = 0, slot = 0;
      if (kiln__cl.clGetDeviceInfo(d, 0x4008, sizeof bus, &bus, NULL) == CL_SUCCESS &&
          kiln__cl.clGetDeviceInfo(d, 0x4009, sizeof slot, &slot, NULL) == CL_SUCCESS)
        snprintf(pr.pci_bus_id, sizeof pr.pci_bus_id, "0000:%02x:%02x.0", bus, slot >> 3);
      ocl_devices[added].platform = plats[p];
      ocl_devices[added].id = d;
      if (kiln__registry_add_device(self, &pr, &ocl_devices[added], NULL) == KILN_SUCCESS) added++;
    }
  }
  if (!added) {
    snprintf(reason, reason_bytes, "the OpenCL platforms (%u) expose no device", (unsigned)nplat);
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  return KILN_SUCCESS;
}

static kiln_status ocl_mem_info(kiln__device *d, uint64_t *free_bytes, uint64_t *total_bytes) {
  *total_bytes = d->props.global_mem_bytes;
  *free_bytes = d->props.global_mem_bytes; /* OpenCL 1.2 has no portable query */
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- context, stream, buffer */
static kiln_status ocl_context_create(kiln__context *ctx) {
  ocl_device_data *dd = ctx->device->native;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)dd->platform, 0};
  cl_int err = CL_SUCCESS;
  cl_context c = kiln__cl.clCreateContext(props, 1, &dd->id, NULL, NULL, &err);
  if (!c) return kiln__cl_fail(err, "clCreateContext");
  kiln__cl_count(KILN__CLO_CONTEXT, 1);
  ctx->native = c;
  return KILN_SUCCESS;
}

static void ocl_context_destroy(kiln__context *ctx) {
  if (ctx->native) {
    kiln__cl.clReleaseContext(ctx->native);
    kiln__cl_count(KILN__CLO_CONTEXT, -1);
  }
  ctx->native = NULL;
}

static kiln_status ocl_stream_create(kiln__stream *s) {
  ocl_stream *cs = kiln__calloc(1, sizeof *cs);
  if (!cs) return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating a stream");
  cl_int err = CL_SUCCESS;
  cs->queue = kiln__cl.clCreateCommandQueue(s->h.ctx->native, dev_id(s->h.ctx->device),
                                           CL_QUEUE_PROFILING_ENABLE, &err);
  if (!cs->queue) {
    kiln__free(cs, sizeof *cs);
    return kiln__cl_fail(err, "clCreateCommandQueue");
  }
  kiln__cl_count(KILN__CLO_QUEUE, 1);
  pthread_mutex_init(&cs->lock, NULL);
  s->native = cs;
  return KILN_SUCCESS;
}

static void ocl_stream_destroy(kiln__stream *s) {
  ocl_stream *cs = s->native;
  kiln__cl.clFinish(cs->queue);
  if (cs->last_event) {
    kiln__cl.clReleaseEvent(cs->last_event);
    kiln__cl_count(KILN__CLO_EVENT, -1);
  }
  kiln__cl.clReleaseCommandQueue(cs->queue);
  kiln__cl_count(KILN__CLO_QUEUE, -1);
  pthread_mutex_destroy(&cs->lock);
  kiln__free(cs, sizeof *cs);
  s->native = NULL;
}

static kiln_status ocl_buffer_create(kiln__buffer *b) {
  cl_int err = CL_SUCCESS;
  cl_mem m = kiln__cl.clCreateBuffer(b->h.ctx->native, CL_MEM_READ_WRITE, b->bytes, NULL, &err);
  if (!m) return kiln__cl_fail(err, "clCreateBuffer");
  kiln__cl_count(KILN__CLO_MEM, 1);
  b->native = m;
  return KILN_SUCCESS;
}

static void ocl_buffer_destroy(kiln__buffer *b) {
  if (b->native) {
    kiln__cl.clReleaseMemObject(b->native);
    kiln__cl_count(KILN__CLO_MEM, -1);
  }
  b->native = NULL;
}

/* ------------------------------------------------------------- completion */
/* Complete, in order, every op at the head of the stream's pending list whose command
 * has finished. Any thread may call it. */
static void drain(kiln__stream *s) {
  ocl_stream *cs = s->native;
  pthread_mutex_lock(&cs->lock);
  kiln__op *op;
  while ((op = cs->pend_head) && atomic_load(&op->native_done)) {
    cs->pend_head = atomic_load_explicit(&op->next, memory_order_relaxed);
    if (!cs->pend_head) cs->pend_tail = NULL;
    cl_event ev = op->native;
    op->native = NULL;
    kiln__op_complete(op, op->native_status);
    if (ev) {
      kiln__cl.clReleaseEvent(ev);
      kiln__cl_count(KILN__CLO_EVENT, -1);
    }
  }
  pthread_mutex_unlock(&cs->lock);
}

static kiln_status exec_status_to_kiln(cl_int exec) {
  if (exec >= 0) return KILN_SUCCESS;
  if (exec == CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) return KILN_ERROR_DEPENDENCY_FAILED;
  if (exec == CL_OUT_OF_RESOURCES || exec == CL_MEM_OBJECT_ALLOCATION_FAILURE)
    return KILN_ERROR_OUT_OF_DEVICE_MEMORY;
  if (exec == CL_DEVICE_NOT_AVAILABLE) return KILN_ERROR_DEVICE_LOST;
  return KILN_ERROR_BACKEND;
}

/* Runs on the OpenCL runtime's thread: mark the op, then drain in order. */
static void CL_CALLBACK on_complete(cl_event ev, cl_int exec, void *user) {
  kiln__op *op = user;
  kiln__stream *s = op->stream; /* read before the op can be completed and freed */
  op->native_status = exec_status_to_kiln(exec);
  if (op->kind == KILN__OP_MARKER && (atomic_load(&op->flags) & KILN__OPF_TIMING)) {
    cl_ulong t = 0;
    if (kiln__cl.clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t, &t, NULL) == CL_SUCCESS)
      op->timestamp_ns = t;
    else
      op->timestamp_ns = kiln__now_ns();
  }
  if (exec == CL_DEVICE_NOT_AVAILABLE)
    kiln__device_mark_lost(s->h.ctx->device, "the OpenCL device is no longer available");
  /* seq_cst store publishes native_status and timestamp to the drainer. */
  atomic_store(&op->native_done, 1);
  drain(s);
}

/* Queue an already-failed op so it completes in order. */
static void queue_failed(kiln__stream *s, kiln__op *op, kiln_status st) {
  ocl_stream *cs = s->native;
  op->native = NULL;
  op->native_status = st;
  atomic_store(&op->native_done, 1);
  pthread_mutex_lock(&cs->lock);
  atomic_store_explicit(&op->next, NULL, memory_order_relaxed);
  if (cs->pend_tail)
    atomic_store_explicit(&cs->pend_tail->next, op, memory_order_relaxed);
  else
    cs->pend_head = op;
  cs->pend_tail = op;
  atomic_store(&cs->submitted_seq, op->seq);
  pthread_mutex_unlock(&cs->lock);
  drain(s);
}

/* ------------------------------------------------------------- submit */
/* The event of the latest command on the dependency's stream (retained), or NULL when
 * the dependency is already satisfied. Waits while that stream is between assigning
 * the sequence number and handing its op to the queue (deadlock-free: dependencies
 * only name ops whose hazard bookkeeping finished first). */
static cl_event dep_event(const kiln__dep *dep) {
  if (kiln__dep_done(dep)) return NULL;
  ocl_stream *ocs = dep->stream->native;
  for (unsigned i = 0; atomic_load(&ocs->submitted_seq) < dep->seq; i++) {
    if (kiln__dep_done(dep)) return NULL;
    if (i > 64) kiln__yield(); else kiln__cpu_relax();
  }
  pthread_mutex_lock(&ocs->lock);
  cl_event ev = ocs->last_event;
  if (ev) {
    kiln__cl.clRetainEvent(ev);
    kiln__cl_count(KILN__CLO_EVENT, 1);
  }
  pthread_mutex_unlock(&ocs->lock);
  return ev;
}

kiln_status kiln__cl_enqueue_launch(kiln__stream *s, kiln__op *op, cl_uint nwait, const cl_event *wait,
                                    cl_event *ev);

static void ocl_submit(kiln__stream *s, kiln__op *op) {
  ocl_stream *cs = s->native;
  kiln_status st = kiln__op_begin(op);
  if (st != KILN_SUCCESS) {
    queue_failed(s, op, st);
    return;
  }
  cl_event wait_inline[8], *wait = wait_inline;
  cl_uint nwait = 0;
  if (op->dep_count > 8) {
    wait = kiln__alloc(sizeof *wait * op->dep_count);
    if (!wait) {
      kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory building a wait list");
      queue_failed(s, op, KILN_ERROR_OUT_OF_HOST_MEMORY);
      return;
    }
  }
  for (uint32_t i = 0; i < op->dep_count; i++) {
    cl_event e = dep_event(&op->deps[i]);
    if (e) wait[nwait++] = e;
  }
  const cl_event *wl = nwait ? wait : NULL;
  cl_event ev = NULL;
  cl_int err = CL_SUCCESS;
  switch (op->kind) {
    case KILN__OP_WRITE:
      err = kiln__cl.clEnqueueWriteBuffer(cs->queue, op->u.write.buffer->native, CL_FALSE,
                                          op->u.write.offset, op->u.write.bytes, op->u.write.src,
                                          nwait, wl, &ev);
      break;
    case KILN__OP_READ:
      err = kiln__cl.clEnqueueReadBuffer(cs->queue, op->u.read.buffer->native, CL_FALSE,
                                         op->u.read.offset, op->u.read.bytes, op->u.read.dst, nwait,
                                         wl, &ev);
      break;
    case KILN__OP_COPY:
      err = kiln__cl.clEnqueueCopyBuffer(cs->queue, op->u.copy.src->native, op->u.copy.dst->native,
                                         op->u.copy.src_offset, op->u.copy.dst_offset,
                                         op->u.copy.bytes, nwait, wl, &ev);
      break;
    case KILN__OP_FILL:
      err = kiln__cl.clEnqueueFillBuffer(cs->queue, op->u.fill.buffer->native, op->u.fill.pattern,
                                         op->u.fill.pattern_bytes, op->u.fill.offset,
                                         op->u.fill.bytes, nwait, wl, &ev);
      break;
    case KILN__OP_LAUNCH: {
      kiln_status lst = kiln__cl_enqueue_launch(s, op, nwait, wl, &ev);
      err = lst == KILN_SUCCESS ? CL_SUCCESS : (cl_int)kiln_last_error()->native_code;
      if (lst != KILN_SUCCESS && err == CL_SUCCESS) err = CL_INVALID_VALUE;
      break;
    }
    case KILN__OP_MARKER:
    case KILN__OP_WAIT:
    case KILN__OP_CALLBACK:
      err = kiln__cl.clEnqueueMarkerWithWaitList(cs->queue, nwait, wl, &ev);
      break;
  }
  for (cl_uint i = 0; i < nwait; i++) {
    kiln__cl.clReleaseEvent(wait[i]);
    kiln__cl_count(KILN__CLO_EVENT, -1);
  }
  if (wait != wait_inline) kiln__free(wait, sizeof *wait * op->dep_count);
  if (err != CL_SUCCESS || !ev) {
    kiln_status fst = kiln__cl_fail(err, "enqueueing an operation");
    queue_failed(s, op, fst);
    return;
  }
  kiln__cl_count(KILN__CLO_EVENT, 1); /* the op's reference, released when it completes */
  op->native = ev;
  pthread_mutex_lock(&cs->lock);
  atomic_store_explicit(&op->next, NULL, memory_order_relaxed);
  if (cs->pend_tail)
    atomic_store_explicit(&cs->pend_tail->next, op, memory_order_relaxed);
  else
    cs->pend_head = op;
  cs->pend_tail = op;
  kiln__cl.clRetainEvent(ev);
  kiln__cl_count(KILN__CLO_EVENT, 1);
  cl_event old = cs->last_event;
  cs->last_event = ev;
  atomic_store(&cs->submitted_seq, op->seq);
  pthread_mutex_unlock(&cs->lock);
  if (old) {
    kiln__cl.clReleaseEvent(old);
    kiln__cl_count(KILN__CLO_EVENT, -1);
  }
  kiln__cl.clFlush(cs->queue);
  /* May run on_complete right here if the command already finished. */
  err = kiln__cl.clSetEventCallback(ev, CL_COMPLETE, on_complete, op);
  if (err != CL_SUCCESS) { /* no callback: wait here instead, then mark it */
    cl_int exec = kiln__cl.clWaitForEvents(1, &ev) == CL_SUCCESS ? CL_COMPLETE : err;
    on_complete(ev, exec, op);
  }
}

/* Launches come with the program support (program.c); until then, refuse. */
__attribute__((weak)) kiln_status kiln__cl_enqueue_launch(kiln__stream *s, kiln__op *op, cl_uint nwait,
                                                          const cl_event *wait, cl_event *ev) {
  (void)s, (void)op, (void)nwait, (void)wait, (void)ev;
  return kiln__error(KILN_ERROR_UNSUPPORTED, "OpenCL launches are not built in yet");
}

const kiln__backend_ops kiln__opencl_backend = {
    .kind = KILN_BACKEND_OPENCL,
    .name = "opencl",
    .probe = ocl_probe,
    .mem_info = ocl_mem_info,
    .context_create = ocl_context_create,
    .context_destroy = ocl_context_destroy,
    .stream_create = ocl_stream_create,
    .stream_destroy = ocl_stream_destroy,
    .buffer_create = ocl_buffer_create,
    .buffer_destroy = ocl_buffer_destroy,
    .kernel_create_native = NULL,
    .kernel_destroy = NULL,
    .submit = ocl_submit,
    .device_reset = NULL,
    .device_probe = NULL,
};
