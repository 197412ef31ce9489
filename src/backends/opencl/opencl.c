/* SPDX-License-Identifier: MIT */
/* The OpenCL backend: any ICD, loaded at run time (cl_api.c). One cl_context per kiln
 * context, one in-order profiling queue per stream, one cl_event per op. Dependencies
 * on other streams become event wait lists (the other stream's latest event, which
 * over-synchronises at most). Completion arrives through clSetEventCallback on the
 * runtime's thread, which only marks the op; ops are then completed in stream order by
 * whoever drains (the callback, or a waiter). User callbacks never run there: the core
 * posts them to the context's callback thread. */
#include <stdbool.h>
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

static ocl_device_data ocl_devices[MAX_CL_DEVICES];

/* op->native_done: NATIVE_PENDING, then NATIVE_CLAIMED by the one thread that records
 * the outcome (the event callback or a waiter), then NATIVE_DONE, which drain reads. */
enum {
  NATIVE_PENDING = 0,
  NATIVE_CLAIMED = 1,
  NATIVE_DONE = 2
}; /* process lifetime, like the devices */

typedef struct ocl_stream {
  cl_command_queue queue;      /* the stream's first queue (created, or wrapped) */
  cl_command_queue queue_prof; /* a profiling queue, made at the first timing event */
  _Atomic int use_prof;        /* commands now go to queue_prof (written once) */
  int profiled;                /* `queue` itself has profiling on */
  int no_switch; /* never move to a profiling queue: `queue` is the user's, or making one failed */
  cl_event switch_event; /* retained: the next command waits for it (the old queue's
                            last, when the stream moved to a profiling queue) */
  pthread_mutex_t lock;  /* pending list, marker */
  kiln__op *pend_head, *pend_tail;
  cl_event marker; /* retained: a marker covering ops up to marker_seq, made
                      on demand when the latest op has no event of its own */
  uint64_t marker_seq;
  _Atomic uint64_t submitted_seq; /* seq of the latest op handed to the queue */
  _Atomic int callbacks;          /* event callbacks set and not yet returned */
  _Atomic int unflushed;          /* commands enqueued since the last clFlush */
  unsigned since_callback;        /* ops since the last one given a callback (submit lock) */
} ocl_stream;

/* Per-op costs matter (NVIDIA's clSetEventCallback and clFlush take microseconds each):
 * a callback is set only on completion-callback ops and on every CALLBACK_EVERY-th op
 * (so a stream nobody waits on still frees its finished ops); waits, queries and
 * dependencies complete and flush on demand; a queue is flushed when it was idle, after
 * FLUSH_EVERY commands, and whenever something waits on it. */
#define CALLBACK_EVERY 32u
#define FLUSH_EVERY 16

/* Queue profiling costs ~6 us per command on NVIDIA's OpenCL (H200, measured), so a
 * stream's queue gets profiling only when the stream records its first timing event:
 * kiln then moves the stream to a new profiling queue whose first command waits for the
 * old queue's last (in-order semantics kept). KILN_OPENCL_PROFILING=1 profiles every
 * queue from the start, =0 never (timing events then use the host clock);
 * KILN_OPENCL_FLUSH_IDLE=0 stops flushing a queue that was idle (diagnostics, read once
 * at probe; docs/architecture.md). */
static int flush_idle = 1, profiling = -1; /* -1: on demand */

static cl_device_id dev_id(const kiln__device *d) {
  return ((ocl_device_data *)d->native)->id;
}

static cl_command_queue cur_queue(ocl_stream *cs) {
  /* queue_prof is written before use_prof (seq_cst): who sees the flag sees the queue. */
  return atomic_load(&cs->use_prof) ? cs->queue_prof : cs->queue;
}

static void flush(ocl_stream *cs) {
  if (atomic_exchange(&cs->unflushed, 0))
    kiln__cl.clFlush(cur_queue(cs));
}

/* Most ops carry no cl_event (creating one per command costs on some drivers): an op
 * gets one when it is a marker, wait or callback op, when it gets a progress callback,
 * when its queue was idle, or when a blocking call waits on it. Whoever must wait for
 * an op without one waits for a later event, or for a marker enqueued then: the queue
 * is in order. Returns a retained event covering every op now in the pending list and
 * sets *covers to the seq it covers; NULL when the list is empty. Under cs->lock. */
static cl_event covering_locked(ocl_stream *cs, uint64_t *covers) {
  kiln__op *tail = cs->pend_tail;
  if (!tail)
    return NULL;
  cl_event ev = NULL;
  if (tail->native) {
    ev = tail->native;
    *covers = tail->seq;
  } else if (cs->marker && cs->marker_seq >= tail->seq) {
    ev = cs->marker;
    *covers = cs->marker_seq;
  } else {
    cl_event m = NULL;
    if (kiln__cl.clEnqueueMarkerWithWaitList(cur_queue(cs), 0, NULL, &m) != CL_SUCCESS || !m)
      return NULL;
    kiln__cl_count(KILN__CLO_EVENT, 1);
    atomic_fetch_add(&cs->unflushed, 1);
    if (cs->marker) {
      kiln__cl.clReleaseEvent(cs->marker);
      kiln__cl_count(KILN__CLO_EVENT, -1);
    }
    cs->marker = m;
    cs->marker_seq = tail->seq;
    ev = m;
    *covers = tail->seq;
  }
  kiln__cl.clRetainEvent(ev);
  kiln__cl_count(KILN__CLO_EVENT, 1);
  return ev;
}

static void release_event(cl_event ev) {
  if (!ev)
    return;
  kiln__cl.clReleaseEvent(ev);
  kiln__cl_count(KILN__CLO_EVENT, -1);
}

/* Move the stream to a profiling queue (called under the stream's submit lock). */
static void switch_to_profiling(kiln__stream *s, ocl_stream *cs) {
  cl_int err = CL_SUCCESS;
  cl_command_queue q = kiln__cl.clCreateCommandQueue(s->h.ctx->native, dev_id(s->h.ctx->device),
                                                     CL_QUEUE_PROFILING_ENABLE, &err);
  if (!q) { /* timing falls back to the host clock */
    kiln__log(KILN_LOG_WARN, "opencl: no profiling queue (%s): timing events use the host clock",
              kiln__cl_error_name(err));
    cs->no_switch = 1; /* do not try again */
    return;
  }
  kiln__cl_count(KILN__CLO_QUEUE, 1);
  uint64_t covers = 0;
  pthread_mutex_lock(&cs->lock); /* the old queue's last, before the switch */
  cs->switch_event = covering_locked(cs, &covers);
  pthread_mutex_unlock(&cs->lock);
  kiln__cl.clFlush(cs->queue);
  cs->queue_prof = q;
  atomic_store(&cs->use_prof, 1);
}

/* ------------------------------------------------------------- probe */
/* A string property, cut to fit `out` (the query itself refuses a short buffer). */
static void info_str(cl_device_id d, cl_device_info what, char *out, size_t n) {
  char buf[1024];
  if (kiln__cl.clGetDeviceInfo(d, what, sizeof buf, buf, NULL) != CL_SUCCESS)
    buf[0] = '\0';
  buf[sizeof buf - 1] = '\0';
  kiln__strlcpy(out, buf, n);
}

static kiln_status ocl_probe(const kiln__backend_ops *self, char *reason, size_t reason_bytes) {
  const char *v = getenv("KILN_OPENCL_FLUSH_IDLE");
  if (v && strcmp(v, "0") == 0)
    flush_idle = 0;
  v = getenv("KILN_OPENCL_PROFILING");
  if (v && strcmp(v, "0") == 0)
    profiling = 0;
  if (v && strcmp(v, "1") == 0)
    profiling = 1;
  kiln_status st = kiln__cl_load(reason, reason_bytes);
  if (st != KILN_SUCCESS)
    return st;
  cl_uint nplat = 0;
  cl_int err = kiln__cl.clGetPlatformIDs(0, NULL, &nplat);
  if (err != CL_SUCCESS || nplat == 0) {
    snprintf(reason, reason_bytes, "no OpenCL platform: clGetPlatformIDs returned %s (%d)",
             err == CL_SUCCESS ? "0 platforms" : kiln__cl_error_name(err), (int)err);
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  cl_platform_id plats[16];
  if (nplat > 16)
    nplat = 16;
  kiln__cl.clGetPlatformIDs(nplat, plats, NULL);
  unsigned added = 0;
  for (cl_uint p = 0; p < nplat; p++) {
    cl_uint ndev = 0;
    if (kiln__cl.clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &ndev) != CL_SUCCESS)
      continue;
    cl_device_id ids[16];
    if (ndev > 16)
      ndev = 16;
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
      info_str(d, CL_DEVICE_VERSION, pr.arch, sizeof pr.arch);
      kiln__cl.clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
      pr.kind = (type & CL_DEVICE_TYPE_GPU)           ? KILN_DEVICE_KIND_GPU
                : (type & CL_DEVICE_TYPE_CPU)         ? KILN_DEVICE_KIND_CPU
                : (type & CL_DEVICE_TYPE_ACCELERATOR) ? KILN_DEVICE_KIND_ACCELERATOR
                                                      : KILN_DEVICE_KIND_OTHER;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u64, &u64, NULL) ==
          CL_SUCCESS)
        pr.global_mem_bytes = u64;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u64, &u64, NULL) ==
          CL_SUCCESS)
        pr.max_alloc_bytes = u64;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u32, &u32, NULL) ==
          CL_SUCCESS)
        pr.compute_units = u32;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof u32, &u32, NULL) ==
          CL_SUCCESS)
        pr.clock_mhz = u32;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof sz, &sz, NULL) ==
          CL_SUCCESS)
        pr.max_work_group_size = sz;
      size_t items[3] = {1, 1, 1};
      kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof items, items, NULL);
      for (int k = 0; k < 3; k++) {
        pr.max_work_item_sizes[k] = items[k];
        pr.max_global_size[k] = SIZE_MAX / 2;
      }
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof u64, &u64, NULL) ==
          CL_SUCCESS)
        pr.local_mem_bytes = u64;
      if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof u32, &u32, NULL) ==
          CL_SUCCESS)
        pr.mem_align_bytes = u32 / 8u;
      /* NVIDIA: CL_DEVICE_PCI_BUS_ID_NV, _SLOT_ID_NV (the device number, as CUDA's
       * PCI_DEVICE_ID) and _DOMAIN_ID_NV, so the same GPU reads the same through CUDA. */
      cl_uint bus = 0, slot = 0, domain = 0;
      if (kiln__cl.clGetDeviceInfo(d, 0x4008, sizeof bus, &bus, NULL) == CL_SUCCESS &&
          kiln__cl.clGetDeviceInfo(d, 0x4009, sizeof slot, &slot, NULL) == CL_SUCCESS) {
        if (kiln__cl.clGetDeviceInfo(d, 0x400A, sizeof domain, &domain, NULL) != CL_SUCCESS)
          domain = 0;
        snprintf(pr.pci_bus_id, sizeof pr.pci_bus_id, "%04x:%02x:%02x.0", domain, bus, slot);
      }
      ocl_devices[added].platform = plats[p];
      ocl_devices[added].id = d;
      if (kiln__registry_add_device(self, &pr, &ocl_devices[added], NULL) == KILN_SUCCESS)
        added++;
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
  if (!c)
    return kiln__cl_fail(err, "clCreateContext");
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

/* ------------------------------------------------------------- pinned host memory */
/* kiln_host_alloc: a CL_MEM_ALLOC_HOST_PTR buffer mapped for the block's lifetime, the
 * way NVIDIA's OpenCL hands out page-locked memory its transfers recognise (other
 * platforms give ordinary memory). The mapping is not page-aligned by the standard,
 * so the buffer is a page longer and the block starts at the first page boundary. */
typedef struct ocl_host_block {
  cl_mem mem;
  void *mapped;
  size_t map_bytes;
} ocl_host_block;

#define OCL_PAGE ((size_t)4096)

static kiln_status ocl_host_alloc(kiln__context *ctx, size_t bytes, void **ptr, void **native) {
  ocl_host_block *hb = kiln__calloc(1, sizeof *hb);
  if (!hb)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory allocating %zu bytes",
                       bytes);
  cl_int err = CL_SUCCESS;
  const char *what = "clCreateCommandQueue";
  cl_command_queue q = kiln__cl.clCreateCommandQueue(ctx->native, dev_id(ctx->device), 0, &err);
  if (q) {
    kiln__cl_count(KILN__CLO_QUEUE, 1);
    hb->map_bytes = bytes + OCL_PAGE - 1;
    what = "clCreateBuffer(CL_MEM_ALLOC_HOST_PTR)";
    hb->mem = kiln__cl.clCreateBuffer(ctx->native, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR,
                                      hb->map_bytes, NULL, &err);
  }
  if (hb->mem) {
    kiln__cl_count(KILN__CLO_MEM, 1);
    what = "clEnqueueMapBuffer";
    hb->mapped = kiln__cl.clEnqueueMapBuffer(q, hb->mem, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0,
                                             hb->map_bytes, 0, NULL, NULL, &err);
  }
  if (q) {
    kiln__cl.clReleaseCommandQueue(q);
    kiln__cl_count(KILN__CLO_QUEUE, -1);
  }
  if (!hb->mapped) {
    if (err == CL_SUCCESS)
      err = CL_OUT_OF_HOST_MEMORY;
    if (hb->mem) {
      kiln__cl.clReleaseMemObject(hb->mem);
      kiln__cl_count(KILN__CLO_MEM, -1);
    }
    kiln__free(hb, sizeof *hb);
    kiln_status st = kiln__cl_fail(err, what);
    if (err == CL_OUT_OF_HOST_MEMORY || err == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
        err == CL_OUT_OF_RESOURCES)
      st = kiln__error_native(KILN_ERROR_OUT_OF_HOST_MEMORY, KILN_BACKEND_OPENCL, err,
                              kiln__cl_error_name(err),
                              "%s could not provide %zu bytes of host memory", what, bytes);
    return st;
  }
  *ptr = (void *)(((uintptr_t)hb->mapped + OCL_PAGE - 1) / OCL_PAGE * OCL_PAGE);
  *native = hb;
  return KILN_SUCCESS;
}

static void ocl_host_free(kiln__context *ctx, void *ptr, size_t bytes, void *native) {
  (void)ptr, (void)bytes;
  ocl_host_block *hb = native;
  cl_int err = CL_SUCCESS;
  cl_command_queue q = kiln__cl.clCreateCommandQueue(ctx->native, dev_id(ctx->device), 0, &err);
  if (q) { /* unmapped before the release; without a queue the release alone frees it */
    kiln__cl_count(KILN__CLO_QUEUE, 1);
    if (kiln__cl.clEnqueueUnmapMemObject(q, hb->mem, hb->mapped, 0, NULL, NULL) == CL_SUCCESS)
      kiln__cl.clFinish(q);
    kiln__cl.clReleaseCommandQueue(q);
    kiln__cl_count(KILN__CLO_QUEUE, -1);
  }
  kiln__cl.clReleaseMemObject(hb->mem);
  kiln__cl_count(KILN__CLO_MEM, -1);
  kiln__free(hb, sizeof *hb);
}

static kiln_status ocl_stream_create(kiln__stream *s) {
  ocl_stream *cs = kiln__calloc(1, sizeof *cs);
  if (!cs)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating a stream");
  cl_int err = CL_SUCCESS;
  cs->profiled = profiling == 1;
  cs->queue = kiln__cl.clCreateCommandQueue(s->h.ctx->native, dev_id(s->h.ctx->device),
                                            cs->profiled ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  if (!cs->queue) {
    kiln__free(cs, sizeof *cs);
    return kiln__cl_fail(err, "clCreateCommandQueue");
  }
  kiln__cl_count(KILN__CLO_QUEUE, 1);
  pthread_mutex_init(&cs->lock, NULL);
  s->native = cs;
  return KILN_SUCCESS;
}

static kiln_status ocl_stream_wrap(kiln__stream *s, kiln_native_kind kind, const void *native) {
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
  ocl_stream *cs = kiln__calloc(1, sizeof *cs);
  if (!cs)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory wrapping a queue");
  kiln__cl.clRetainCommandQueue(q);
  kiln__cl_count(KILN__CLO_QUEUE, 1);
  cs->queue = q;
  cs->no_switch = 1; /* the user's queue */
  cs->profiled = (props & CL_QUEUE_PROFILING_ENABLE) != 0;
  pthread_mutex_init(&cs->lock, NULL);
  s->native = cs;
  return KILN_SUCCESS;
}

static void ocl_stream_destroy(kiln__stream *s) {
  ocl_stream *cs = s->native;
  kiln__cl.clFinish(cs->queue);
  if (cs->queue_prof)
    kiln__cl.clFinish(cs->queue_prof);
  /* Callbacks may still be on their way after clFinish: they touch cs. */
  for (unsigned i = 0; atomic_load(&cs->callbacks) > 0; i++)
    if (i < 64)
      kiln__cpu_relax();
    else
      kiln__sleep_ns(20000);
  release_event(cs->marker);
  release_event(cs->switch_event);
  kiln__cl.clReleaseCommandQueue(cs->queue);
  kiln__cl_count(KILN__CLO_QUEUE, -1);
  if (cs->queue_prof) {
    kiln__cl.clReleaseCommandQueue(cs->queue_prof);
    kiln__cl_count(KILN__CLO_QUEUE, -1);
  }
  pthread_mutex_destroy(&cs->lock);
  kiln__free(cs, sizeof *cs);
  s->native = NULL;
}

static kiln_status ocl_buffer_create(kiln__buffer *b) {
  cl_int err = CL_SUCCESS;
  cl_mem m = kiln__cl.clCreateBuffer(b->h.ctx->native, CL_MEM_READ_WRITE, b->bytes, NULL, &err);
  if (!m)
    return kiln__cl_fail(err, "clCreateBuffer");
  kiln__cl_count(KILN__CLO_MEM, 1);
  b->native = m;
  return KILN_SUCCESS;
}

static kiln_status ocl_buffer_wrap(kiln__buffer *b, kiln_native_kind kind, const void *native) {
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
  while ((op = cs->pend_head) && atomic_load(&op->native_done) == NATIVE_DONE) {
    cs->pend_head = atomic_load_explicit(&op->next, memory_order_relaxed);
    if (!cs->pend_head)
      cs->pend_tail = NULL;
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
  if (exec >= 0)
    return KILN_SUCCESS;
  if (exec == CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    return KILN_ERROR_DEPENDENCY_FAILED;
  if (exec == CL_OUT_OF_RESOURCES || exec == CL_MEM_OBJECT_ALLOCATION_FAILURE)
    return KILN_ERROR_OUT_OF_DEVICE_MEMORY;
  if (exec == CL_DEVICE_NOT_AVAILABLE)
    return KILN_ERROR_DEVICE_LOST;
  return KILN_ERROR_BACKEND;
}

/* Record how the op's command ended (once, whoever comes first). */
static void finish_native(kiln__op *op, cl_event ev, cl_int exec) {
  int expected = NATIVE_PENDING;
  if (!atomic_compare_exchange_strong(&op->native_done, &expected, NATIVE_CLAIMED))
    return;
  op->native_status = exec_status_to_kiln(exec);
  if (exec < 0) {
    op->cause.backend = KILN_BACKEND_OPENCL;
    op->cause.native_code = exec;
    op->cause.native_name = kiln__cl_error_name(exec);
  }
  if (op->kind == KILN__OP_MARKER && (atomic_load(&op->flags) & KILN__OPF_TIMING)) {
    cl_ulong t = 0;
    if (ev && kiln__cl.clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t, &t, NULL) ==
                  CL_SUCCESS)
      op->timestamp_ns = t;
    else
      op->timestamp_ns = kiln__now_ns();
  }
  if (exec == CL_DEVICE_NOT_AVAILABLE)
    kiln__device_mark_lost(op->stream->h.ctx->device, "the OpenCL device is no longer available");
  /* seq_cst store publishes native_status, cause and timestamp to the drainer. */
  atomic_store(&op->native_done, NATIVE_DONE);
}

static void finish_upto(kiln__stream *s, uint64_t upto, int known_done);

/* Runs on the OpenCL runtime's thread; holds a reference on the op (taken when the
 * callback was set), so a waiter that finished the op first cannot free it under us. */
static void CL_CALLBACK on_complete(cl_event ev, cl_int exec, void *user) {
  kiln__op *op = user;
  kiln__stream *s = op->stream;
  ocl_stream *cs = s->native;
  finish_native(op, ev, exec);
  finish_upto(s, op->seq, exec == CL_COMPLETE); /* ops before it: in order, done too */
  kiln__op_unref(op);
  /* Last: the stream's destroy waits for this before freeing cs. */
  atomic_fetch_sub(&cs->callbacks, 1);
}

/* Record the outcome of the ops at the head of the pending list that have finished,
 * then drain. known_done: every op with seq <= upto is known to have finished (a wait
 * on an event covering it succeeded): mark them without asking the driver. Otherwise
 * ask, op by op from the head, for the ops that have an event: an op that finished
 * proves every op before it finished too (in-order queue), events or not. */
static void finish_upto(kiln__stream *s, uint64_t upto, int known_done) {
  ocl_stream *cs = s->native;
  pthread_mutex_lock(&cs->lock);
  if (known_done) {
    for (kiln__op *op = cs->pend_head; op && op->seq <= upto;
         op = atomic_load_explicit(&op->next, memory_order_relaxed))
      if (atomic_load(&op->native_done) == NATIVE_PENDING)
        finish_native(op, op->native, CL_COMPLETE);
  } else {
    kiln__op *from = cs->pend_head; /* first op not yet known to have finished */
    for (kiln__op *op = cs->pend_head; op && op->seq <= upto;
         op = atomic_load_explicit(&op->next, memory_order_relaxed)) {
      if (atomic_load(&op->native_done) != NATIVE_PENDING || !op->native)
        continue;
      cl_int exec = CL_COMPLETE;
      if (kiln__cl.clGetEventInfo(op->native, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec, &exec,
                                  NULL) != CL_SUCCESS)
        exec = CL_COMPLETE;
      if (exec > CL_COMPLETE)
        break; /* in-order queue: nothing after it has finished */
      for (; from != op; from = atomic_load_explicit(&from->next, memory_order_relaxed))
        if (atomic_load(&from->native_done) == NATIVE_PENDING)
          finish_native(from, NULL, CL_COMPLETE);
      finish_native(op, op->native, exec);
      from = atomic_load_explicit(&op->next, memory_order_relaxed);
    }
  }
  pthread_mutex_unlock(&cs->lock);
  drain(s);
}

/* Wait (natively) for an event covering the op `target` (NULL: every op now queued),
 * then finish what it covers. */
static void wait_covering(kiln__stream *s, kiln__op *target) {
  ocl_stream *cs = s->native;
  uint64_t covers = 0;
  pthread_mutex_lock(&cs->lock);
  cl_event ev = NULL;
  if (target && atomic_load(&target->native_done) != NATIVE_PENDING) {
    ev = NULL; /* already finished: nothing to wait for */
  } else if (target && target->native) {
    ev = target->native;
    covers = target->seq;
    kiln__cl.clRetainEvent(ev);
    kiln__cl_count(KILN__CLO_EVENT, 1);
  } else {
    ev = covering_locked(cs, &covers);
  }
  pthread_mutex_unlock(&cs->lock);
  if (!ev) {
    drain(s);
    return;
  }
  flush(cs);
  int ok = kiln__cl.clWaitForEvents(1, &ev) == CL_SUCCESS;
  release_event(ev);
  finish_upto(s, covers, ok);
}

/* A thread blocks on `op`: wait natively rather than for a callback. */
static void ocl_op_wait(kiln__op *op) {
  wait_covering(op->stream, op);
}

/* Wait for an event covering the stream's ops (not clFinish: PoCL's clFinish can miss a
 * user event completed from another thread while it waits). */
static void ocl_stream_wait(kiln__stream *s) {
  wait_covering(s, NULL);
}

static void ocl_poll(kiln__stream *s) {
  ocl_stream *cs = s->native;
  uint64_t covers = 0;
  cl_int exec = CL_QUEUED;
  pthread_mutex_lock(&cs->lock);
  kiln__op *tail = cs->pend_tail;
  cl_event ev = NULL;
  if (tail && tail->native) { /* the common case: asked under the lock, no reference taken */
    ev = tail->native;
    covers = tail->seq;
    if (kiln__cl.clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec, &exec, NULL) !=
        CL_SUCCESS)
      exec = CL_QUEUED;
  } else if (tail) { /* ops without events at the tail: a marker (made once) covers them */
    ev = covering_locked(cs, &covers);
    if (ev && kiln__cl.clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec, &exec,
                                      NULL) != CL_SUCCESS)
      exec = CL_QUEUED;
    release_event(ev);
  }
  pthread_mutex_unlock(&cs->lock);
  flush(cs);
  if (ev && exec == CL_COMPLETE)
    finish_upto(s, covers, 1);
  else
    finish_upto(s, UINT64_MAX, 0);
}

/* Put the op at the end of the pending list; it is now the stream's latest. */
static void append_locked(ocl_stream *cs, kiln__op *op) {
  atomic_store_explicit(&op->next, NULL, memory_order_relaxed);
  if (cs->pend_tail)
    atomic_store_explicit(&cs->pend_tail->next, op, memory_order_relaxed);
  else
    cs->pend_head = op;
  cs->pend_tail = op;
  atomic_store(&cs->submitted_seq, op->seq);
}

/* Queue an already-failed op so it completes in order. */
static void queue_failed(kiln__stream *s, kiln__op *op, kiln_status st) {
  ocl_stream *cs = s->native;
  const kiln_error_info *e = kiln_last_error();
  if (e->backend == KILN_BACKEND_OPENCL && e->native_code) { /* keep the driver's code */
    op->cause.backend = KILN_BACKEND_OPENCL;
    op->cause.native_code = e->native_code;
    op->cause.native_name = kiln__cl_error_name((cl_int)e->native_code);
  }
  op->native = NULL;
  op->native_status = st;
  atomic_store(&op->native_done, NATIVE_DONE);
  pthread_mutex_lock(&cs->lock);
  append_locked(cs, op);
  pthread_mutex_unlock(&cs->lock);
  drain(s);
}

/* ------------------------------------------------------------- submit */
/* The event of the latest command on the dependency's stream (retained), or NULL when
 * the dependency is already satisfied. Waits while that stream is between assigning
 * the sequence number and handing its op to the queue (deadlock-free: dependencies
 * only name ops whose hazard bookkeeping finished first). */
static cl_event dep_event(const kiln__dep *dep) {
  if (kiln__dep_done(dep))
    return NULL;
  ocl_stream *ocs = dep->stream->native;
  for (unsigned i = 0; atomic_load(&ocs->submitted_seq) < dep->seq; i++) {
    if (kiln__dep_done(dep))
      return NULL;
    if (i > 64)
      kiln__yield();
    else
      kiln__cpu_relax();
  }
  uint64_t covers = 0;
  pthread_mutex_lock(&ocs->lock);
  cl_event ev = covering_locked(ocs, &covers); /* covers dep->seq: it is in the list or done */
  pthread_mutex_unlock(&ocs->lock);
  flush(ocs); /* the other queue must make progress for our wait list to */
  return ev;
}

static kiln_status enqueue_launch(kiln__stream *s, kiln__op *op, cl_uint nwait,
                                  const cl_event *wait, cl_event *ev);

static void ocl_submit(kiln__stream *s, kiln__op *op) {
  ocl_stream *cs = s->native;
  kiln_status st = kiln__op_begin(op);
  if (st != KILN_SUCCESS) {
    queue_failed(s, op, st);
    return;
  }
  if (op->kind == KILN__OP_MARKER && (atomic_load(&op->flags) & KILN__OPF_TIMING) &&
      !cs->profiled && !atomic_load(&cs->use_prof) && !cs->no_switch && profiling != 0)
    switch_to_profiling(s, cs);
  cl_event wait_inline[9], *wait = wait_inline;
  cl_uint nwait = 0;
  if (op->dep_count > 8) {
    wait = kiln__alloc(sizeof *wait * (op->dep_count + 1u));
    if (!wait) {
      kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory building a wait list");
      queue_failed(s, op, KILN_ERROR_OUT_OF_HOST_MEMORY);
      return;
    }
  }
  for (uint32_t i = 0; i < op->dep_count; i++) {
    cl_event e = dep_event(&op->deps[i]);
    if (e)
      wait[nwait++] = e;
  }
  if (cs->switch_event) { /* the first command on the profiling queue waits for the old one */
    wait[nwait++] = cs->switch_event; /* its reference goes with the wait list's */
    cs->switch_event = NULL;
  }
  const cl_event *wl = nwait ? wait : NULL;
  cl_event ev = NULL;
  pthread_mutex_lock(&cs->lock);
  bool was_idle = cs->pend_head == NULL;
  pthread_mutex_unlock(&cs->lock);
  bool want_callback = op->kind == KILN__OP_CALLBACK || cs->since_callback + 1 >= CALLBACK_EVERY;
  bool need_event = want_callback || was_idle || op->kind == KILN__OP_MARKER ||
                    op->kind == KILN__OP_WAIT || (atomic_load(&op->flags) & KILN__OPF_BLOCKING);
  cl_event *evp = need_event ? &ev : NULL;
  /* A blocking kiln call's transfer runs as a blocking OpenCL call: drivers copy pageable
   * memory in the calling thread then, where a non-blocking read of pageable memory is
   * finished later by a driver thread (NVIDIA: 4 KiB read 51 us vs 11 us). */
  cl_bool blocking = (atomic_load(&op->flags) & KILN__OPF_BLOCKING) ? CL_TRUE : CL_FALSE;
  cl_int err = CL_SUCCESS;
  switch (op->kind) {
  case KILN__OP_WRITE:
    err = kiln__cl.clEnqueueWriteBuffer(cur_queue(cs), op->u.write.buffer->native, blocking,
                                        op->u.write.offset, op->u.write.bytes, op->u.write.src,
                                        nwait, wl, evp);
    break;
  case KILN__OP_READ:
    err = kiln__cl.clEnqueueReadBuffer(cur_queue(cs), op->u.read.buffer->native, blocking,
                                       op->u.read.offset, op->u.read.bytes, op->u.read.dst, nwait,
                                       wl, evp);
    break;
  case KILN__OP_COPY:
    err = kiln__cl.clEnqueueCopyBuffer(cur_queue(cs), op->u.copy.src->native,
                                       op->u.copy.dst->native, op->u.copy.src_offset,
                                       op->u.copy.dst_offset, op->u.copy.bytes, nwait, wl, evp);
    break;
  case KILN__OP_FILL:
    err = kiln__cl.clEnqueueFillBuffer(cur_queue(cs), op->u.fill.buffer->native, op->u.fill.pattern,
                                       op->u.fill.pattern_bytes, op->u.fill.offset,
                                       op->u.fill.bytes, nwait, wl, evp);
    break;
  case KILN__OP_LAUNCH: {
    kiln_status lst = enqueue_launch(s, op, nwait, wl, evp);
    err = lst == KILN_SUCCESS ? CL_SUCCESS : (cl_int)kiln_last_error()->native_code;
    if (lst != KILN_SUCCESS && err == CL_SUCCESS)
      err = CL_INVALID_VALUE;
    break;
  }
  case KILN__OP_MARKER:
  case KILN__OP_WAIT:
  case KILN__OP_CALLBACK:
    err = kiln__cl.clEnqueueMarkerWithWaitList(cur_queue(cs), nwait, wl, evp);
    break;
  }
  for (cl_uint i = 0; i < nwait; i++) {
    kiln__cl.clReleaseEvent(wait[i]);
    kiln__cl_count(KILN__CLO_EVENT, -1);
  }
  if (wait != wait_inline)
    kiln__free(wait, sizeof *wait * (op->dep_count + 1u));
  if (err != CL_SUCCESS || (need_event && !ev)) {
    kiln_status fst = kiln__cl_fail(err, "enqueueing an operation");
    queue_failed(s, op, fst);
    return;
  }
  if (ev)
    kiln__cl_count(KILN__CLO_EVENT, 1); /* the op's reference, released when it completes */
  op->native = ev;
  pthread_mutex_lock(&cs->lock);
  append_locked(cs, op);
  pthread_mutex_unlock(&cs->lock);
  cs->since_callback++;
  if (atomic_fetch_add(&cs->unflushed, 1) + 1 >= FLUSH_EVERY || (was_idle && flush_idle) ||
      want_callback)
    flush(cs);
  if (!want_callback)
    return;
  cs->since_callback = 0;
  /* The callback's reference on the op; it may run right here if the command finished. */
  kiln__op_ref(op);
  atomic_fetch_add(&cs->callbacks, 1);
  err = kiln__cl.clSetEventCallback(ev, CL_COMPLETE, on_complete, op);
  if (err != CL_SUCCESS) { /* no callback: wait here instead, then mark it */
    cl_int exec = kiln__cl.clWaitForEvents(1, &ev) == CL_SUCCESS ? CL_COMPLETE : err;
    on_complete(ev, exec, op);
  }
}

/* ------------------------------------------------------------- programs and kernels */
/* The value last set for one argument of a cl_kernel, so an unchanged argument is not set
 * again (clSetKernelArg costs on some drivers; back-to-back launches repeat args). */
typedef struct arg_cache {
  unsigned char set; /* 0: unknown; 1: value; 2: local memory of `size` bytes */
  unsigned char size;
  unsigned char bytes[16];
} arg_cache;

typedef struct ocl_kernel {
  cl_kernel kernel;
  arg_cache cache[KILN_MAX_KERNEL_ARGS + 3];
  pthread_mutex_t lock; /* arguments are set on the shared cl_kernel: set + enqueue atomically */
  size_t wg_max;        /* CL_KERNEL_WORK_GROUP_SIZE */
  size_t multiple;      /* CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE */
} ocl_kernel;

static kiln_status ocl_program_build(kiln__program *p, const char *src, size_t bytes,
                                     const char *options) {
  cl_int err = CL_SUCCESS;
  const char *srcs[1] = {src};
  size_t lens[1] = {bytes};
  cl_program prog = kiln__cl.clCreateProgramWithSource(p->h.ctx->native, 1, srcs, lens, &err);
  if (!prog)
    return kiln__cl_fail(err, "clCreateProgramWithSource");
  kiln__cl_count(KILN__CLO_PROGRAM, 1);
  cl_device_id dev = dev_id(p->h.ctx->device);
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

static void ocl_program_destroy(kiln__program *p) {
  if (p->native) {
    kiln__cl.clReleaseProgram(p->native);
    kiln__cl_count(KILN__CLO_PROGRAM, -1);
  }
  p->native = NULL;
}

static kiln_status ocl_kernel_create(kiln__kernel *k, kiln__program *p) {
  ocl_kernel *ok = kiln__calloc(1, sizeof *ok);
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
  cl_device_id dev = dev_id(k->h.ctx->device);
  if (kiln__cl.clGetKernelWorkGroupInfo(ok->kernel, dev, CL_KERNEL_WORK_GROUP_SIZE,
                                        sizeof ok->wg_max, &ok->wg_max, NULL) != CL_SUCCESS)
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

static void ocl_kernel_destroy(kiln__kernel *k) {
  ocl_kernel *ok = k->native;
  if (!ok)
    return;
  kiln__cl.clReleaseKernel(ok->kernel);
  kiln__cl_count(KILN__CLO_KERNEL, -1);
  pthread_mutex_destroy(&ok->lock);
  kiln__free(ok, sizeof *ok);
  k->native = NULL;
}

static size_t round_up(size_t v, size_t m) {
  return m ? (v + m - 1) / m * m : v;
}

/* clSetKernelArg unless the cache says the argument already has this value. value NULL:
 * local memory of `size` bytes. Called under ok->lock. */
static cl_int set_arg(ocl_kernel *ok, cl_uint i, size_t size, const void *value) {
  arg_cache *c = &ok->cache[i];
  unsigned char kind = value ? 1 : 2;
  if (c->set == kind && c->size == size && size <= sizeof c->bytes &&
      (!value || memcmp(c->bytes, value, size) == 0))
    return CL_SUCCESS;
  cl_int err = kiln__cl.clSetKernelArg(ok->kernel, i, size, value);
  if (err == CL_SUCCESS && size <= sizeof c->bytes) {
    c->set = kind;
    c->size = (unsigned char)size;
    if (value)
      memcpy(c->bytes, value, size);
  } else {
    c->set = 0;
  }
  return err;
}

/* The local size: the caller's, else a multiple of the kernel's preferred multiple
 * within its work-group limit, aiming at 64-256 work-items (design.md "Kernels"). */
static void choose_local(const ocl_kernel *ok, const kiln_device_props *p, const kiln_range *r,
                         size_t local[3]) {
  bool given = false;
  for (unsigned d = 0; d < r->dims; d++)
    given = given || r->local[d];
  if (given) {
    for (unsigned d = 0; d < 3; d++)
      local[d] = d < r->dims && r->local[d] ? r->local[d] : 1;
    return;
  }
  size_t limit = ok->wg_max < p->max_work_group_size ? ok->wg_max : p->max_work_group_size;
  size_t m = ok->multiple;
  local[0] = local[1] = local[2] = 1;
  if (r->dims == 1) {
    size_t want = 256 < limit ? 256 : limit;
    if (want > p->max_work_item_sizes[0])
      want = p->max_work_item_sizes[0];
    size_t small = round_up(r->global[0], m);
    if (want > small)
      want = small;
    if (want >= m)
      want = want / m * m;
    local[0] = want ? want : 1;
  } else {
    size_t x = 16, y = 16, z = r->dims == 3 ? 4 : 1;
    if (r->dims == 3)
      x = y = 8;
    while (x * y * z > limit && y > 1)
      y /= 2;
    while (x * y * z > limit && x > 1)
      x /= 2;
    local[0] = x;
    local[1] = y;
    local[2] = z;
    for (unsigned d = 0; d < 3; d++)
      if (local[d] > p->max_work_item_sizes[d])
        local[d] = p->max_work_item_sizes[d] ? p->max_work_item_sizes[d] : 1;
  }
}

/* Work-groups one launch may have in all. OpenCL reports no such bound; PoCL's CPU
 * drivers count a launch's work-groups in 32 bits (and abort beyond), and GPU drivers
 * schedule far fewer in one launch, so kiln refuses more at the call. */
#define OCL_MAX_TOTAL_GROUPS ((size_t)UINT32_MAX)

static kiln_status ocl_launch_check(const kiln__kernel *k, const kiln_range *r) {
  size_t local[3], groups = 1;
  choose_local(k->native, &k->h.ctx->device->props, r, local);
  for (unsigned d = 0; d < r->dims; d++) {
    size_t n = r->global[d] / local[d] + (r->global[d] % local[d] != 0);
    if (n > OCL_MAX_TOTAL_GROUPS / groups) {
      kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                  "kernel '%s': a range of %zu x %zu x %zu work-items in groups of %zu x %zu x %zu "
                  "makes more than the %zu work-groups kiln runs in one OpenCL launch",
                  k->name, r->global[0], r->dims > 1 ? r->global[1] : (size_t)1,
                  r->dims > 2 ? r->global[2] : (size_t)1, local[0], local[1], local[2],
                  OCL_MAX_TOTAL_GROUPS);
      kiln__error_suggest("split the work into several launches, or give a larger local size");
      return KILN_ERROR_LIMIT_EXCEEDED;
    }
    groups *= n;
  }
  return KILN_SUCCESS;
}

static kiln_status enqueue_launch(kiln__stream *s, kiln__op *op, cl_uint nwait,
                                  const cl_event *wait, cl_event *ev) {
  ocl_stream *cs = s->native;
  kiln__kernel *k = op->u.launch.kernel;
  ocl_kernel *ok = k->native;
  const kiln_range *r = &op->u.launch.range;
  size_t local[3], global[3];
  choose_local(ok, &s->h.ctx->device->props, r, local);
  for (unsigned d = 0; d < 3; d++)
    global[d] = d < r->dims ? round_up(r->global[d], local[d]) : 1;
  if (kiln__log_enabled(KILN_LOG_DEBUG))
    kiln__log(KILN_LOG_DEBUG, "launch '%s': global %zux%zux%zu (asked %zu), local %zux%zux%zu",
              k->name, global[0], global[1], global[2], r->global[0], local[0], local[1], local[2]);
  pthread_mutex_lock(&ok->lock);
  cl_int err = CL_SUCCESS;
  cl_uint i = 0;
  for (; i < op->u.launch.arg_count && err == CL_SUCCESS; i++) {
    const kiln__launch_arg *a = &op->u.launch.args[i];
    if (a->kind == KILN_ARG_BUFFER) {
      cl_mem m = a->buffer->native;
      err = set_arg(ok, i, sizeof m, &m);
    } else if (a->kind == KILN_ARG_SCALAR) {
      err = set_arg(ok, i, a->bytes, op->u.launch.storage + a->offset);
    } else {
      err = set_arg(ok, i, a->bytes, NULL);
    }
  }
  for (unsigned d = 0; d < 3 && err == CL_SUCCESS; d++) { /* hidden: sizes asked for */
    cl_ulong g = d < r->dims ? (cl_ulong)r->global[d] : 1u;
    err = set_arg(ok, i + d, sizeof g, &g);
  }
  if (err == CL_SUCCESS)
    err = kiln__cl.clEnqueueNDRangeKernel(cur_queue(cs), ok->kernel, r->dims, NULL, global, local,
                                          nwait, wait, ev);
  pthread_mutex_unlock(&ok->lock);
  if (err != CL_SUCCESS) {
    char what[96];
    snprintf(what, sizeof what, "launching kernel '%s'", k->name);
    return kiln__cl_fail(err, what);
  }
  return KILN_SUCCESS;
}

static kiln_status ocl_get_native(uint32_t tag, void *handle, kiln_native_kind kind, void *out) {
  switch (tag) {
  case KILN__TAG_DEVICE: {
    const ocl_device_data *dd = ((kiln__device *)handle)->native;
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
      *(cl_command_queue *)out = cur_queue(((kiln__stream *)handle)->native);
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
      *(cl_kernel *)out = ((ocl_kernel *)((kiln__kernel *)handle)->native)->kernel;
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

const kiln__backend_ops kiln__opencl_backend = {
    .kind = KILN_BACKEND_OPENCL,
    .name = "opencl",
    .dialect = KILN__TARGET_OPENCL,
    .probe = ocl_probe,
    .mem_info = ocl_mem_info,
    .context_create = ocl_context_create,
    .context_destroy = ocl_context_destroy,
    .stream_create = ocl_stream_create,
    .stream_destroy = ocl_stream_destroy,
    .buffer_create = ocl_buffer_create,
    .buffer_destroy = ocl_buffer_destroy,
    .host_alloc = ocl_host_alloc,
    .host_free = ocl_host_free,
    .program_build = ocl_program_build,
    .program_destroy = ocl_program_destroy,
    .kernel_create = ocl_kernel_create,
    .launch_check = ocl_launch_check,
    .kernel_create_native = NULL,
    .kernel_destroy = ocl_kernel_destroy,
    .submit = ocl_submit,
    .op_wait = ocl_op_wait,
    .stream_wait = ocl_stream_wait,
    .poll = ocl_poll,
    .get_native = ocl_get_native,
    .buffer_wrap = ocl_buffer_wrap,
    .stream_wrap = ocl_stream_wrap,
    .device_reset = NULL,
    .device_probe = NULL,
};
