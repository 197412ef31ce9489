/* SPDX-License-Identifier: MIT */
/* The CUDA backend: the driver API through cuda_api.c (dlopen'ed, never linked), one
 * retained primary context per kiln context, one non-blocking CUstream per stream,
 * kernels compiled by NVRTC (CUBIN for the device's architecture, PTX as fallback).
 * Every op is followed by a CUevent; a completion thread per stream waits for them in
 * order (cuEventSynchronize with blocking sync) and completes ops in seq order, so no
 * kiln code runs inside a driver callback. Dependencies on other streams become
 * cuStreamWaitEvent on that stream's latest event (over-synchronising at most).
 * Sticky CUDA errors mark the device lost; device_reset resets the primary context.
 * Parts not yet run on a GPU are listed in docs/cuda.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_api.h"
#include "core/backend.h"

#define MAX_CU_DEVICES 32
#define EVENT_POOL 64
#define DEFAULT_SMEM_BYTES (48u * 1024u) /* dynamic shared memory without opting in */

typedef struct cu_device {
  kiln_CUdevice dev;
  int cc_major, cc_minor;
  int smem_bytes, smem_optin_bytes;
  unsigned grid_max[3];
} cu_device;

static cu_device cu_devices[MAX_CU_DEVICES]; /* process lifetime, like the devices */

typedef struct cu_stream {
  kiln_CUstream stream;
  kiln_CUcontext pctx;
  kiln__device *device;
  int wrapped;          /* a user's CUstream: not ours to destroy */
  pthread_mutex_t lock; /* list, last_event, pool, stop */
  pthread_cond_t cond;
  kiln__op *head, *tail;          /* submitted, not yet completed (op->native: its event) */
  kiln_CUevent last_event;        /* the latest recorded event; NULL once it completed */
  _Atomic uint64_t submitted_seq; /* seq of the latest op handed to the list */
  kiln_CUevent pool[EVENT_POOL];  /* idle untimed events */
  int pool_count;
  int stop;
  pthread_t thread;
  kiln_CUevent ref_event; /* timing: recorded at ref_ns (host monotonic clock) */
  uint64_t ref_ns;
  /* Pinned staging blocks of pageable transfers (under lock): idle ones, kept for
   * reuse; those of ops that failed half-way (a DMA may still use them), freed at
   * stream destroy; and the bytes of all of them, capped by STAGE_MAX_BYTES. */
  struct stage_block *stage_free, *stage_dead;
  size_t stage_bytes;
} cu_stream;

#define STAGE_CHUNK_MIN ((size_t)4 << 20)   /* a transfer is cut into <= 16 chunks of >= this */
#define STAGE_DIRECT_MAX ((size_t)64 << 10) /* pageable writes up to this go to the driver */
#define STAGE_MAX_BYTES ((size_t)1 << 30)   /* pinned staging per stream, at most */

/* A loaded module, shared by its program and every kernel made from it: kernels stay
 * valid after kiln_program_destroy (include/kiln/program.h), so the module is unloaded
 * when the last of them goes. */
typedef struct cu_module {
  kiln_CUmodule mod;
  kiln_CUcontext ctx;
  _Atomic int refs;
} cu_module;

typedef struct cu_kernel {
  cu_module *module; /* referenced */
  kiln_CUfunction fn;
  int max_threads;              /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK */
  int static_smem;              /* CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES */
  _Atomic int dyn_smem_allowed; /* MAX_DYNAMIC_SHARED_SIZE_BYTES set so far */
  pthread_mutex_t lock;         /* raising dyn_smem_allowed */
} cu_kernel;

_Atomic long kiln__cu_live[5]; /* contexts, streams, events, allocations, modules */
enum { CUO_CONTEXT, CUO_STREAM, CUO_EVENT, CUO_MEM, CUO_MODULE };
static void count(int kind, long delta) {
  atomic_fetch_add_explicit(&kiln__cu_live[kind], delta, memory_order_relaxed); /* counter only */
}
long kiln__cu_live_total(void);
long kiln__cu_live_total(void) {
  long n = 0;
  for (int i = 0; i < 5; i++)
    n += atomic_load(&kiln__cu_live[i]);
  return n;
}

static cu_device *cud(const kiln__device *d) {
  return d->native;
}

/* A failed driver call: error detail, and a sticky error marks the device lost. */
static kiln_status fail(kiln__device *d, kiln_CUresult r, const char *what) {
  kiln_status st = kiln__cu_fail(r, what);
  if (d && kiln__cu_is_sticky(r)) {
    char why[160];
    snprintf(why, sizeof why, "%s: %s (%d)", what, kiln__cu_error_name(r), (int)r);
    kiln__device_mark_lost(d, why);
  }
  return st;
}

/* Make ctx current on the calling (API) thread for a few driver calls. */
static kiln_CUresult push(kiln_CUcontext ctx) {
  return kiln__cu.cuCtxPushCurrent(ctx);
}
static void pop(void) {
  kiln_CUcontext dummy = NULL;
  kiln__cu.cuCtxPopCurrent(&dummy);
}

/* ------------------------------------------------------------- probe */
/* Internal, for tests and `kiln info` once the props carry it: compute capability,
 * opt-in shared memory and the driver version of CUDA device `index`. */
kiln_status kiln__cuda_device_info(unsigned index, int *cc_major, int *cc_minor,
                                   int *smem_optin_bytes, int *driver_version);
kiln_status kiln__cuda_device_info(unsigned index, int *cc_major, int *cc_minor,
                                   int *smem_optin_bytes, int *driver_version) {
  kiln_device d = NULL;
  kiln_status st = kiln_device_find(KILN_BACKEND_CUDA, index, &d);
  if (st != KILN_SUCCESS)
    return st;
  const cu_device *cd = cud(KILN__VIEW(kiln__device, d));
  *cc_major = cd->cc_major;
  *cc_minor = cd->cc_minor;
  *smem_optin_bytes = cd->smem_optin_bytes;
  *driver_version = kiln__cu.driver_version;
  return KILN_SUCCESS;
}

static kiln_status cu_probe(const kiln__backend_ops *self, char *reason, size_t reason_bytes) {
  kiln_status st = kiln__cu_load(reason, reason_bytes);
  if (st != KILN_SUCCESS)
    return st;
  int n = 0;
  kiln_CUresult r = kiln__cu.cuDeviceGetCount(&n);
  if (r != kiln_CUDA_SUCCESS) {
    snprintf(reason, reason_bytes, "cuDeviceGetCount failed: %s (%d)", kiln__cu_error_name(r),
             (int)r);
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  if (n <= 0) {
    snprintf(reason, reason_bytes,
             "CUDA_ERROR_NO_DEVICE (100): the NVIDIA driver reports no CUDA device");
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  unsigned added = 0;
  char last[200] = "";
  for (int i = 0; i < n && added < MAX_CU_DEVICES; i++) {
    cu_device *cd = &cu_devices[added];
    kiln_device_props pr = KILN_DEVICE_PROPS_INIT;
    size_t total = 0;
    static const struct {
      kiln_CUdevice_attribute attr;
      const char *name;
    } want[] = {
        {kiln_CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, "MAX_THREADS_PER_BLOCK"},
        {kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, "MAX_BLOCK_DIM_X"},
        {kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, "MAX_BLOCK_DIM_Y"},
        {kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, "MAX_BLOCK_DIM_Z"},
        {kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, "MAX_GRID_DIM_X"},
        {kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, "MAX_GRID_DIM_Y"},
        {kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, "MAX_GRID_DIM_Z"},
        {kiln_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, "MAX_SHARED_MEMORY_PER_BLOCK"},
        {kiln_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
         "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN"},
        {kiln_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "MULTIPROCESSOR_COUNT"},
        {kiln_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "COMPUTE_CAPABILITY_MAJOR"},
        {kiln_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "COMPUTE_CAPABILITY_MINOR"},
        {kiln_CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, "PCI_DOMAIN_ID"},
        {kiln_CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, "PCI_BUS_ID"},
        {kiln_CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, "PCI_DEVICE_ID"},
    };
    int v[sizeof want / sizeof want[0]];
    const char *what = "cuDeviceGet";
    r = kiln__cu.cuDeviceGet(&cd->dev, i);
    for (size_t a = 0; r == kiln_CUDA_SUCCESS && a < sizeof want / sizeof want[0]; a++) {
      what = want[a].name;
      r = kiln__cu.cuDeviceGetAttribute(&v[a], want[a].attr, cd->dev);
    }
    if (r == kiln_CUDA_SUCCESS) {
      what = "cuDeviceGetName";
      r = kiln__cu.cuDeviceGetName(pr.name, (int)sizeof pr.name, cd->dev);
    }
    if (r == kiln_CUDA_SUCCESS) {
      what = "cuDeviceTotalMem";
      r = kiln__cu.cuDeviceTotalMem(&total, cd->dev);
    }
    if (r != kiln_CUDA_SUCCESS) {
      snprintf(last, sizeof last, "CUDA device %d: %s failed: %s (%d)", i, what,
               kiln__cu_error_name(r), (int)r);
      kiln__log(KILN_LOG_WARN, "cuda: %s; the device is left out", last);
      continue;
    }
    pr.name[sizeof pr.name - 1] = '\0';
    kiln__strlcpy(pr.vendor, "NVIDIA", sizeof pr.vendor);
    pr.kind = KILN_DEVICE_KIND_GPU;
    pr.global_mem_bytes = total;
    pr.max_alloc_bytes = total;
    pr.max_work_group_size = (size_t)v[0];
    for (int d = 0; d < 3; d++) {
      pr.max_work_item_sizes[d] = (size_t)v[1 + d];
      cd->grid_max[d] = (unsigned)v[4 + d];
      pr.max_global_size[d] = (size_t)v[4 + d] * (size_t)v[1 + d];
    }
    cd->smem_bytes = v[7];
    cd->smem_optin_bytes = v[8] > v[7] ? v[8] : v[7];
    pr.local_mem_bytes = (uint64_t)cd->smem_optin_bytes;
    pr.compute_units = (unsigned)v[9];
    cd->cc_major = v[10];
    cd->cc_minor = v[11];
    pr.mem_align_bytes = 256; /* cuMemAlloc's guarantee */
    snprintf(pr.pci_bus_id, sizeof pr.pci_bus_id, "%04x:%02x:%02x.0", (unsigned)v[12] & 0xffffu,
             (unsigned)v[13] & 0xffu, (unsigned)v[14] & 0x1fu);
    kiln__log(
        KILN_LOG_INFO,
        "cuda:%u %s: sm_%d%d, %u SMs, %zu bytes, shared memory %d (opt-in %d), PCI %s, driver %d",
        added, pr.name, cd->cc_major, cd->cc_minor, pr.compute_units, total, cd->smem_bytes,
        cd->smem_optin_bytes, pr.pci_bus_id, kiln__cu.driver_version);
    snprintf(pr.arch, sizeof pr.arch, "sm_%d%d", cd->cc_major, cd->cc_minor);
    /* Informational: a driver without them (or the fake) leaves 0. */
    int clk = 0, mclk = 0, bus = 0;
    if (kiln__cu.cuDeviceGetAttribute(&clk, kiln_CU_DEVICE_ATTRIBUTE_CLOCK_RATE, cd->dev) ==
            kiln_CUDA_SUCCESS &&
        clk > 0)
      pr.clock_mhz = (unsigned)clk / 1000u;
    if (kiln__cu.cuDeviceGetAttribute(&mclk, kiln_CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, cd->dev) ==
            kiln_CUDA_SUCCESS &&
        mclk > 0)
      pr.memory_clock_mhz = (unsigned)mclk / 1000u;
    if (kiln__cu.cuDeviceGetAttribute(&bus, kiln_CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH,
                                      cd->dev) == kiln_CUDA_SUCCESS &&
        bus > 0)
      pr.memory_bus_width_bits = (unsigned)bus;
    pr.driver_version = kiln__cu.driver_version > 0 ? (unsigned)kiln__cu.driver_version : 0u;
    if (kiln__registry_add_device(self, &pr, cd, NULL) == KILN_SUCCESS)
      added++;
  }
  if (!added) {
    kiln__strlcpy(reason, last[0] ? last : "no usable CUDA device", reason_bytes);
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  return KILN_SUCCESS;
}

static kiln_status cu_mem_info(kiln__device *d, uint64_t *free_bytes, uint64_t *total_bytes) {
  kiln_CUcontext c = NULL;
  kiln_CUresult r = kiln__cu.cuDevicePrimaryCtxRetain(&c, cud(d)->dev);
  if (r != kiln_CUDA_SUCCESS)
    return fail(d, r, "cuDevicePrimaryCtxRetain");
  size_t f = 0, t = 0;
  r = push(c);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuMemGetInfo(&f, &t);
    pop();
  }
  kiln__cu.cuDevicePrimaryCtxRelease(cud(d)->dev);
  if (r != kiln_CUDA_SUCCESS)
    return fail(d, r, "cuMemGetInfo");
  *free_bytes = f;
  *total_bytes = t;
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- context, buffers */
static kiln_status cu_context_create(kiln__context *ctx) {
  kiln_CUcontext c = NULL;
  kiln_CUresult r = kiln__cu.cuDevicePrimaryCtxRetain(&c, cud(ctx->device)->dev);
  if (r != kiln_CUDA_SUCCESS)
    return fail(ctx->device, r, "cuDevicePrimaryCtxRetain");
  count(CUO_CONTEXT, 1);
  ctx->native = c;
  return KILN_SUCCESS;
}

static void cu_context_destroy(kiln__context *ctx) {
  if (ctx->native) {
    kiln__cu.cuDevicePrimaryCtxRelease(cud(ctx->device)->dev);
    count(CUO_CONTEXT, -1);
  }
  ctx->native = NULL;
}

static kiln_status cu_buffer_create(kiln__buffer *b) {
  kiln__context *ctx = b->h.ctx;
  kiln_CUdeviceptr p = 0;
  kiln_CUresult r = push(ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuMemAlloc(&p, b->bytes);
    pop();
  }
  if (r != kiln_CUDA_SUCCESS) {
    char what[96];
    snprintf(what, sizeof what, "cuMemAlloc of %zu bytes", b->bytes);
    return fail(ctx->device, r, what);
  }
  count(CUO_MEM, 1);
  b->native = (void *)(uintptr_t)p;
  return KILN_SUCCESS;
}

static void cu_buffer_destroy(kiln__buffer *b) {
  if (b->native && !b->wrapped) {
    if (push(b->h.ctx->native) == kiln_CUDA_SUCCESS) {
      kiln__cu.cuMemFree((kiln_CUdeviceptr)(uintptr_t)b->native);
      pop();
    }
    count(CUO_MEM, -1);
  }
  b->native = NULL;
}

static kiln_status cu_buffer_wrap(kiln__buffer *b, kiln_native_kind kind, const void *native) {
  if (kind != KILN_NATIVE_CU_DEVICEPTR)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "the CUDA backend wraps KILN_NATIVE_CU_DEVICEPTR buffers, not kind %d",
                       (int)kind);
  kiln_CUdeviceptr p = *(const kiln_CUdeviceptr *)native;
  if (!p)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "the CUdeviceptr to wrap is 0");
  if (kiln__cu.cuMemGetAddressRange) {
    kiln_CUdeviceptr base = 0;
    size_t size = 0;
    kiln_CUresult r = push(b->h.ctx->native);
    if (r == kiln_CUDA_SUCCESS) {
      r = kiln__cu.cuMemGetAddressRange(&base, &size, p);
      pop();
    }
    if (r != kiln_CUDA_SUCCESS)
      return fail(b->h.ctx->device, r, "cuMemGetAddressRange on the CUdeviceptr to wrap");
    if (base + size < p + b->bytes)
      return kiln__error(KILN_ERROR_OUT_OF_RANGE,
                         "the allocation of the CUdeviceptr to wrap ends %llu bytes after it, "
                         "fewer than the %zu asked for",
                         (unsigned long long)(base + size - p), b->bytes);
  }
  b->native = (void *)(uintptr_t)p;
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- events */
/* An event for one op: untimed ones from the stream's pool. Called with cs->lock. */
static kiln_CUresult event_get_locked(cu_stream *cs, int timing, kiln_CUevent *ev) {
  if (!timing && cs->pool_count) {
    *ev = cs->pool[--cs->pool_count];
    return kiln_CUDA_SUCCESS;
  }
  unsigned flags =
      kiln_CU_EVENT_BLOCKING_SYNC | (timing ? 0u : (unsigned)kiln_CU_EVENT_DISABLE_TIMING);
  kiln_CUresult r = kiln__cu.cuEventCreate(ev, flags);
  if (r == kiln_CUDA_SUCCESS)
    count(CUO_EVENT, 1);
  return r;
}

static void event_put_locked(cu_stream *cs, kiln_CUevent ev, int timing) {
  if (!timing && cs->pool_count < EVENT_POOL) {
    cs->pool[cs->pool_count++] = ev;
    return;
  }
  kiln__cu.cuEventDestroy(ev);
  count(CUO_EVENT, -1);
}

/* ------------------------------------------------------------- completion */
static void stage_teardown(cu_stream *cs);
typedef struct stage_op stage_op;
static kiln_status stage_copy_out(cu_stream *cs, stage_op *so);
static void stage_finish(cu_stream *cs, stage_op *so, bool queued_whole);

static kiln_status complete_status(cu_stream *cs, kiln_CUresult r) {
  if (r == kiln_CUDA_SUCCESS)
    return KILN_SUCCESS;
  return fail(cs->device, r, "work on a CUDA stream");
}

/* A timing marker's event: host-clock time from the stream's reference event; the
 * reference moves to the newest marker after a second, to keep float precision. */
static void set_timestamp(cu_stream *cs, kiln__op *op, kiln_CUevent ev, int *keep) {
  float ms = 0.0f;
  *keep = 0;
  if (!cs->ref_event || kiln__cu.cuEventElapsedTime(&ms, cs->ref_event, ev) != kiln_CUDA_SUCCESS) {
    op->timestamp_ns = kiln__now_ns();
    return;
  }
  op->timestamp_ns = cs->ref_ns + (uint64_t)((double)ms * 1e6);
  if (ms > 1000.0f) {
    pthread_mutex_lock(&cs->lock);
    event_put_locked(cs, cs->ref_event, 1);
    cs->ref_event = ev;
    cs->ref_ns = op->timestamp_ns;
    pthread_mutex_unlock(&cs->lock);
    *keep = 1;
  }
}

static void *completion_main(void *arg) {
  kiln__stream *s = arg;
  cu_stream *cs = s->native;
  kiln__cu.cuCtxSetCurrent(cs->pctx);
  pthread_mutex_lock(&cs->lock);
  for (;;) {
    while (!cs->head && !cs->stop)
      pthread_cond_wait(&cs->cond, &cs->lock);
    kiln__op *op = cs->head;
    if (!op)
      break; /* stop, and nothing left */
    kiln_CUevent ev = op->native;
    stage_op *so = op->native_aux;
    pthread_mutex_unlock(&cs->lock);
    kiln_status st = op->native_status;
    int timing = 0, keep = 0;
    if (so && ev)
      st = stage_copy_out(cs, so); /* a staged read: chunk by chunk, as they land */
    if (ev) {
      kiln_CUresult r = kiln__cu.cuEventSynchronize(ev);
      if (st == KILN_SUCCESS)
        st = complete_status(cs, r);
      /* A failed wait that is not the stream's own failure (the driver's errors here are
       * sticky, but not every one need be): let the stream's queued copies end before
       * the op is reported, so none writes memory its owner may free on hearing it. */
      if (st != KILN_SUCCESS && !kiln__cu_is_sticky(r))
        kiln__cu.cuStreamSynchronize(cs->stream);
      timing = op->kind == KILN__OP_MARKER && (atomic_load(&op->flags) & KILN__OPF_TIMING);
      if (st == KILN_SUCCESS && timing)
        set_timestamp(cs, op, ev, &keep);
    }
    pthread_mutex_lock(&cs->lock);
    cs->head = atomic_load_explicit(&op->next, memory_order_relaxed);
    if (!cs->head)
      cs->tail = NULL;
    if (ev) {
      if (cs->last_event == ev)
        cs->last_event = NULL;
      if (!keep)
        event_put_locked(cs, ev, timing);
    }
    op->native = NULL;
    op->native_aux = NULL;
    pthread_mutex_unlock(&cs->lock);
    if (so)
      stage_finish(cs, so, ev != NULL);
    kiln__op_complete(op, st);
    pthread_mutex_lock(&cs->lock);
  }
  pthread_mutex_unlock(&cs->lock);
  return NULL;
}

/* Append op (its event in op->native, or NULL with native_status set) to the list. */
static void append_locked(cu_stream *cs, kiln__op *op) {
  atomic_store_explicit(&op->next, NULL, memory_order_relaxed);
  if (cs->tail)
    atomic_store_explicit(&cs->tail->next, op, memory_order_relaxed);
  else
    cs->head = op;
  cs->tail = op;
  atomic_store(&cs->submitted_seq, op->seq);
  pthread_cond_signal(&cs->cond);
}

static void queue_failed(cu_stream *cs, kiln__op *op, kiln_status st, const char *call) {
  const kiln_error_info *e = kiln_last_error();
  if (e->backend == KILN_BACKEND_CUDA && e->native_code) { /* keep the driver's code */
    op->cause.backend = KILN_BACKEND_CUDA;
    op->cause.native_code = e->native_code;
    op->cause.native_name = kiln__cu_error_name((kiln_CUresult)e->native_code);
    op->cause.native_call = call;
  }
  op->native = NULL;
  op->native_status = st;
  pthread_mutex_lock(&cs->lock);
  append_locked(cs, op);
  pthread_mutex_unlock(&cs->lock);
}

/* ------------------------------------------------------------- streams */
static kiln_status stream_init(kiln__stream *s, kiln_CUstream stream, int wrapped) {
  kiln__context *ctx = s->h.ctx;
  cu_stream *cs = kiln__calloc(1, sizeof *cs);
  if (!cs)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating a stream");
  cs->pctx = ctx->native;
  cs->device = ctx->device;
  cs->wrapped = wrapped;
  kiln_CUresult r = push(cs->pctx);
  if (r == kiln_CUDA_SUCCESS && !stream) {
    /* kiln's priority > 0 is more urgent; CUDA counts down from 0 (least) to its
     * greatest priority (-5 on current GPUs): clamped into the device's range. */
    int least = 0, greatest = 0;
    if (s->priority > 0 && kiln__cu.cuStreamCreateWithPriority &&
        kiln__cu.cuCtxGetStreamPriorityRange &&
        kiln__cu.cuCtxGetStreamPriorityRange(&least, &greatest) == kiln_CUDA_SUCCESS &&
        greatest < least) {
      int p = least - s->priority;
      if (p < greatest)
        p = greatest;
      r = kiln__cu.cuStreamCreateWithPriority(&stream, kiln_CU_STREAM_NON_BLOCKING, p);
      kiln__log(KILN_LOG_DEBUG, "cuda: stream priority %d -> CUDA priority %d (range %d..%d)",
                s->priority, p, least, greatest);
    } else {
      r = kiln__cu.cuStreamCreate(&stream, kiln_CU_STREAM_NON_BLOCKING);
    }
    if (r != kiln_CUDA_SUCCESS)
      stream = NULL;
  }
  cs->stream = stream;
  /* The timing reference: an event recorded now, its host time taken once it passed. */
  if (r == kiln_CUDA_SUCCESS)
    r = kiln__cu.cuEventCreate(&cs->ref_event, kiln_CU_EVENT_BLOCKING_SYNC);
  if (r == kiln_CUDA_SUCCESS) {
    count(CUO_EVENT, 1);
    r = kiln__cu.cuEventRecord(cs->ref_event, stream);
    if (r == kiln_CUDA_SUCCESS)
      r = kiln__cu.cuEventSynchronize(cs->ref_event);
    cs->ref_ns = kiln__now_ns();
  } else {
    cs->ref_event = NULL;
  }
  if (r != kiln_CUDA_SUCCESS) {
    kiln_status st =
        fail(cs->device, r, wrapped ? "preparing the CUstream to wrap" : "cuStreamCreate");
    if (cs->ref_event) {
      kiln__cu.cuEventDestroy(cs->ref_event);
      count(CUO_EVENT, -1);
    }
    if (stream && !wrapped)
      kiln__cu.cuStreamDestroy(stream);
    pop();
    kiln__free(cs, sizeof *cs);
    return st;
  }
  pop();
  if (!wrapped)
    count(CUO_STREAM, 1);
  pthread_mutex_init(&cs->lock, NULL);
  pthread_cond_init(&cs->cond, NULL);
  s->native = cs;
  if (pthread_create(&cs->thread, NULL, completion_main, s) != 0) {
    s->native = NULL;
    pthread_cond_destroy(&cs->cond);
    pthread_mutex_destroy(&cs->lock);
    push(cs->pctx);
    kiln__cu.cuEventDestroy(cs->ref_event);
    count(CUO_EVENT, -1);
    if (!wrapped) {
      kiln__cu.cuStreamDestroy(cs->stream);
      count(CUO_STREAM, -1);
    }
    pop();
    kiln__free(cs, sizeof *cs);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "cannot start the stream's completion thread");
  }
  return KILN_SUCCESS;
}

static kiln_status cu_stream_create(kiln__stream *s) {
  return stream_init(s, NULL, 0);
}

static kiln_status cu_stream_wrap(kiln__stream *s, kiln_native_kind kind, const void *native) {
  if (kind != KILN_NATIVE_CU_STREAM)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "the CUDA backend wraps KILN_NATIVE_CU_STREAM streams, not kind %d",
                       (int)kind);
  kiln_CUstream st = *(const kiln_CUstream *)native;
  if (!st)
    return kiln__error(
        KILN_ERROR_INVALID_ARGUMENT,
        "the CUstream to wrap is the legacy default stream (NULL): wrap a created stream");
  return stream_init(s, st, 1);
}

static void cu_stream_destroy(kiln__stream *s) {
  cu_stream *cs = s->native;
  pthread_mutex_lock(&cs->lock);
  cs->stop = 1;
  pthread_cond_signal(&cs->cond);
  pthread_mutex_unlock(&cs->lock);
  pthread_join(cs->thread, NULL);
  push(cs->pctx);
  kiln__cu.cuStreamSynchronize(cs->stream);
  stage_teardown(cs);
  for (int i = 0; i < cs->pool_count; i++)
    kiln__cu.cuEventDestroy(cs->pool[i]);
  count(CUO_EVENT, -cs->pool_count);
  if (cs->ref_event) {
    kiln__cu.cuEventDestroy(cs->ref_event);
    count(CUO_EVENT, -1);
  }
  if (!cs->wrapped) {
    kiln__cu.cuStreamDestroy(cs->stream);
    count(CUO_STREAM, -1);
  }
  pop();
  pthread_cond_destroy(&cs->cond);
  pthread_mutex_destroy(&cs->lock);
  kiln__free(cs, sizeof *cs);
  s->native = NULL;
}

/* ------------------------------------------------------------- pinned host memory */
/* A refused cuMemHostAlloc/cuMemHostRegister: OUT_OF_HOST_MEMORY with a suggestion when
 * the system could not lock that much, else the driver's error. */
static kiln_status pin_failed(kiln__context *ctx, kiln_CUresult r, const char *what) {
  kiln_status st = fail(ctx->device, r, what);
  if (r != kiln_CUDA_ERROR_OUT_OF_MEMORY)
    return st;
  st = kiln__error_native(KILN_ERROR_OUT_OF_HOST_MEMORY, KILN_BACKEND_CUDA, r,
                          kiln__cu_error_name(r),
                          "%s: the system could not pin that much host memory", what);
  kiln__error_suggest(
      "pin less (the system's limit on locked memory, ulimit -l, applies) or reuse blocks");
  return st;
}

static kiln_status cu_host_alloc(kiln__context *ctx, size_t bytes, void **ptr, void **native) {
  (void)native;
  if (!kiln__cu.cuMemHostAlloc || !kiln__cu.cuMemFreeHost)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "this CUDA driver lacks cuMemHostAlloc/cuMemFreeHost");
  kiln_CUresult r = push(ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuMemHostAlloc(ptr, bytes, kiln_CU_MEMHOSTALLOC_PORTABLE);
    pop();
  }
  if (r == kiln_CUDA_SUCCESS) {
    count(CUO_MEM, 1);
    return KILN_SUCCESS;
  }
  char what[96];
  snprintf(what, sizeof what, "cuMemHostAlloc of %zu bytes", bytes);
  return pin_failed(ctx, r, what);
}

static void cu_host_free(kiln__context *ctx, void *ptr, size_t bytes, void *native) {
  (void)bytes, (void)native;
  if (push(ctx->native) == kiln_CUDA_SUCCESS) {
    kiln__cu.cuMemFreeHost(ptr);
    pop();
  }
  count(CUO_MEM, -1);
}

static kiln_status cu_host_register(kiln__context *ctx, void *ptr, size_t bytes, void **native) {
  (void)native;
  if (!kiln__cu.cuMemHostRegister || !kiln__cu.cuMemHostUnregister)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "this CUDA driver lacks cuMemHostRegister/cuMemHostUnregister");
  kiln_CUresult r = push(ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuMemHostRegister(ptr, bytes, kiln_CU_MEMHOSTREGISTER_PORTABLE);
    pop();
  }
  if (r == kiln_CUDA_SUCCESS)
    return KILN_SUCCESS;
  char what[96];
  snprintf(what, sizeof what, "cuMemHostRegister of %zu bytes at %p", bytes, ptr);
  return pin_failed(ctx, r, what);
}

static void cu_host_unregister(kiln__context *ctx, void *ptr, size_t bytes, void *native) {
  (void)bytes, (void)native;
  if (push(ctx->native) == kiln_CUDA_SUCCESS) {
    kiln__cu.cuMemHostUnregister(ptr);
    pop();
  }
}

/* Page-locked memory: kiln_host_alloc's (the context's table), else memory the
 * program registered or allocated with CUDA itself (both ends of the range). */
static bool host_range_pinned(kiln__context *ctx, const void *p, size_t n) {
  if (kiln__host_pinned(ctx, p, n))
    return true;
  if (!kiln__cu.cuPointerGetAttribute)
    return false;
  unsigned type[2] = {0, 0};
  if (kiln__cu.cuPointerGetAttribute(&type[0], kiln_CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                     (kiln_CUdeviceptr)(uintptr_t)p) != kiln_CUDA_SUCCESS ||
      type[0] != kiln_CU_MEMORYTYPE_HOST)
    return false;
  if (kiln__cu.cuPointerGetAttribute(&type[1], kiln_CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                     (kiln_CUdeviceptr)((uintptr_t)p + n - 1)) != kiln_CUDA_SUCCESS)
    return false;
  return type[1] == kiln_CU_MEMORYTYPE_HOST;
}

/* ------------------------------------------------------------- staging */
/* A pinned block of the stream's staging cache. */
typedef struct stage_block {
  void *ptr;
  size_t bytes;
  struct stage_block *next;
} stage_block;

/* A staged transfer (op->native_aux): its block and, for a read, one event per chunk,
 * so the completion thread copies each chunk out as soon as it has landed while the
 * DMA of the next ones goes on. */
struct stage_op {
  stage_block *blk;
  bool read;
  void *user; /* read: the user's destination */
  size_t bytes, chunk;
  size_t rec_bytes; /* this record's size */
  unsigned chunks;  /* chunk events recorded so far (read) */
  kiln_CUevent ev[];
};

static size_t stage_chunk(size_t bytes) {
  size_t c = (bytes + 15) / 16;
  c = (c + 4095) / 4096 * 4096;
  return c < STAGE_CHUNK_MIN ? STAGE_CHUNK_MIN : c;
}

/* Blocks come in a few sizes, well reused: 64 KiB << k up to 64 MiB, then multiples
 * of 64 MiB (so a 300 MiB transfer pins 320 MiB, not 512). */
static size_t stage_block_size(size_t need) {
  const size_t big = (size_t)64 << 20;
  if (need > big)
    return need / big * big + (need % big ? big : 0);
  size_t b = (size_t)64 << 10;
  while (b < need)
    b <<= 1;
  return b;
}

/* A block of at least `need` bytes: the smallest idle one, else a new one (ctx
 * current). NULL when none can be had (cap reached, allocation refused): the caller
 * then hands the transfer to the driver. Submitting thread. */
static stage_block *stage_take(cu_stream *cs, size_t need) {
  pthread_mutex_lock(&cs->lock);
  stage_block **best = NULL;
  for (stage_block **pp = &cs->stage_free; *pp; pp = &(*pp)->next)
    if ((*pp)->bytes >= need && (!best || (*pp)->bytes < (*best)->bytes))
      best = pp;
  stage_block *blk = NULL;
  if (best) {
    blk = *best;
    *best = blk->next;
  }
  size_t size = stage_block_size(need);
  bool room = !blk && cs->stage_bytes + size <= STAGE_MAX_BYTES;
  if (room)
    cs->stage_bytes += size; /* reserved */
  pthread_mutex_unlock(&cs->lock);
  if (blk || !room)
    return blk;
  blk = kiln__alloc(sizeof *blk);
  kiln_CUresult r = kiln_CUDA_ERROR_OUT_OF_MEMORY;
  if (blk && kiln__cu.cuMemHostAlloc)
    r = kiln__cu.cuMemHostAlloc(&blk->ptr, size, 0);
  if (r == kiln_CUDA_SUCCESS) {
    blk->bytes = size;
    count(CUO_MEM, 1);
    return blk;
  }
  kiln__log(KILN_LOG_INFO,
            "cuda: no pinned staging block of %zu bytes (%s); the driver copies this transfer",
            size, blk ? kiln__cu_error_name(r) : "out of host memory");
  kiln__free(blk, sizeof *blk);
  pthread_mutex_lock(&cs->lock);
  cs->stage_bytes -= size;
  pthread_mutex_unlock(&cs->lock);
  return NULL;
}

/* After the op (completion thread): the block back to the cache, the chunk events to
 * the pool. An op that failed before all of it was queued may still have DMAs using
 * its block: the block waits in `dead` for stream destroy, its events are destroyed
 * (the driver releases them once they passed). */
static void stage_finish(cu_stream *cs, stage_op *so, bool queued_whole) {
  pthread_mutex_lock(&cs->lock);
  for (unsigned i = 0; i < so->chunks; i++) {
    if (queued_whole) {
      event_put_locked(cs, so->ev[i], 0);
    } else {
      kiln__cu.cuEventDestroy(so->ev[i]);
      count(CUO_EVENT, -1);
    }
  }
  stage_block **list = queued_whole ? &cs->stage_free : &cs->stage_dead;
  so->blk->next = *list;
  *list = so->blk;
  pthread_mutex_unlock(&cs->lock);
  kiln__free(so, so->rec_bytes);
}

/* A staged read's copy-out (completion thread): wait for each chunk's event, copy it
 * to the user's memory (uninstrumented: the range is the ASan guard's until the wait
 * that observes this op). */
static kiln_status stage_copy_out(cu_stream *cs, stage_op *so) {
  if (!so->read)
    return KILN_SUCCESS;
  for (unsigned i = 0; i < so->chunks; i++) {
    kiln_CUresult r = kiln__cu.cuEventSynchronize(so->ev[i]);
    if (r != kiln_CUDA_SUCCESS)
      return complete_status(cs, r);
    size_t off = (size_t)i * so->chunk,
           n = so->bytes - off < so->chunk ? so->bytes - off : so->chunk;
    kiln__copy_large((char *)so->user + off, (char *)so->blk->ptr + off, n);
  }
  return KILN_SUCCESS;
}

static void stage_teardown(cu_stream *cs) {
  stage_block *lists[2] = {cs->stage_free, cs->stage_dead};
  for (int l = 0; l < 2; l++) {
    for (stage_block *b = lists[l], *next; b; b = next) {
      next = b->next;
      kiln__cu.cuMemFreeHost(b->ptr);
      count(CUO_MEM, -1);
      kiln__free(b, sizeof *b);
    }
  }
  cs->stage_free = cs->stage_dead = NULL;
  cs->stage_bytes = 0;
}

/* Queue a staged transfer in chunks (ctx current). Write: copy chunk i of the user's
 * memory into the block (on this thread, as the driver does for pageable memory),
 * then its DMA, so the DMA of one chunk overlaps the copy of the next. Read: the DMA
 * of every chunk into the block, each followed by an event for the completion
 * thread. op->native_aux stays NULL when it was not staged (no block or record): the
 * caller then goes direct. */
static kiln_CUresult enqueue_staged(cu_stream *cs, kiln__op *op, bool read, kiln_CUdeviceptr dev,
                                    void *host, size_t bytes, const char **what) {
  size_t chunk = stage_chunk(bytes), chunks = (bytes + chunk - 1) / chunk;
  size_t rec_bytes = sizeof(stage_op) + (read ? chunks : 0) * sizeof(kiln_CUevent);
  stage_op *so = kiln__alloc(rec_bytes);
  if (!so)
    return kiln_CUDA_SUCCESS; /* not staged */
  so->blk = stage_take(cs, bytes);
  if (!so->blk) {
    kiln__free(so, rec_bytes);
    return kiln_CUDA_SUCCESS; /* not staged */
  }
  so->read = read;
  so->user = host;
  so->bytes = bytes;
  so->chunk = chunk;
  so->rec_bytes = rec_bytes;
  so->chunks = 0;
  op->native_aux = so; /* from here on, the completion thread gives everything back */
  kiln_CUresult r = kiln_CUDA_SUCCESS;
  for (size_t i = 0; i < chunks && r == kiln_CUDA_SUCCESS; i++) {
    size_t off = i * chunk, n = bytes - off < chunk ? bytes - off : chunk;
    char *stage = (char *)so->blk->ptr + off;
    if (!read) {
      kiln__copy_large(stage, (const char *)host + off, n);
      *what = "cuMemcpyHtoDAsync";
      r = kiln__cu.cuMemcpyHtoDAsync(dev + off, stage, n, cs->stream);
      continue;
    }
    *what = "cuMemcpyDtoHAsync";
    r = kiln__cu.cuMemcpyDtoHAsync(stage, dev + off, n, cs->stream);
    kiln_CUevent ev = NULL;
    if (r == kiln_CUDA_SUCCESS) {
      *what = "cuEventCreate";
      pthread_mutex_lock(&cs->lock);
      r = event_get_locked(cs, 0, &ev);
      pthread_mutex_unlock(&cs->lock);
    }
    if (r == kiln_CUDA_SUCCESS) {
      *what = "cuEventRecord";
      so->ev[so->chunks++] = ev; /* given back by stage_finish, recorded or not */
      r = kiln__cu.cuEventRecord(ev, cs->stream);
    }
  }
  return r;
}

/* A host<->device transfer: pinned memory straight to the driver (asynchronous);
 * pageable memory staged through a pinned block, except small writes (the driver
 * copies them into its own staging at the call) and small blocking reads (nothing to
 * overlap). Without a block, the driver's pageable copy: a read then blocks the
 * caller until it is done (CUDA's rule for pageable device-to-host copies). */
static kiln_CUresult enqueue_transfer(cu_stream *cs, kiln__op *op, bool read, const char **what) {
  kiln__buffer *b = read ? op->u.read.buffer : op->u.write.buffer;
  kiln_CUdeviceptr dev =
      (kiln_CUdeviceptr)(uintptr_t)b->native + (read ? op->u.read.offset : op->u.write.offset);
  void *host = read ? op->u.read.dst : (void *)(uintptr_t)op->u.write.src;
  size_t bytes = read ? op->u.read.bytes : op->u.write.bytes;
  bool blocking =
      (atomic_load_explicit(&op->flags, memory_order_relaxed) & KILN__OPF_BLOCKING) != 0;
  bool direct = (read ? blocking : true) && bytes <= STAGE_DIRECT_MAX;
  if (!direct && !host_range_pinned(b->h.ctx, host, bytes)) {
    kiln_CUresult r = enqueue_staged(cs, op, read, dev, host, bytes, what);
    if (op->native_aux)
      return r;
  }
  *what = read ? "cuMemcpyDtoHAsync" : "cuMemcpyHtoDAsync";
  return read ? kiln__cu.cuMemcpyDtoHAsync(host, dev, bytes, cs->stream)
              : kiln__cu.cuMemcpyHtoDAsync(dev, host, bytes, cs->stream);
}

/* ------------------------------------------------------------- submit */
/* Make cs wait for the op dep names: cuStreamWaitEvent on the latest event of the
 * dependency's stream, under that stream's lock (its event cannot be recycled
 * meanwhile). Waits while that stream is between assigning the seq and listing the op
 * (deadlock-free: dependencies only name ops whose bookkeeping finished first). */
static kiln_CUresult wait_dep(cu_stream *cs, const kiln__dep *dep) {
  if (kiln__dep_done(dep))
    return kiln_CUDA_SUCCESS;
  cu_stream *other = dep->stream->native;
  for (unsigned i = 0; atomic_load(&other->submitted_seq) < dep->seq; i++) {
    if (kiln__dep_done(dep))
      return kiln_CUDA_SUCCESS;
    if (i > 64)
      kiln__yield();
    else
      kiln__cpu_relax();
  }
  kiln_CUresult r = kiln_CUDA_SUCCESS;
  pthread_mutex_lock(&other->lock);
  if (other->last_event)
    r = kiln__cu.cuStreamWaitEvent(cs->stream, other->last_event, 0);
  pthread_mutex_unlock(&other->lock);
  return r;
}

/* Fill: D8/D16/D32 memsets for patterns of 1, 2, 4 bytes (or wider ones made of one
 * repeated 1/2/4-byte unit); wider patterns by one upload of the pattern and doubling
 * device-to-device copies (log2(bytes / pattern) copies). */
static kiln_CUresult enqueue_fill(cu_stream *cs, kiln__op *op) {
  kiln_CUdeviceptr base =
      (kiln_CUdeviceptr)(uintptr_t)op->u.fill.buffer->native + op->u.fill.offset;
  const unsigned char *pat = op->u.fill.pattern;
  size_t pb = op->u.fill.pattern_bytes, bytes = op->u.fill.bytes;
  size_t unit = pb;
  for (size_t u = 1; u < pb && u <= 4; u *= 2) { /* smallest repeating unit */
    bool repeats = true;
    for (size_t i = u; i < pb && repeats; i++)
      repeats = pat[i] == pat[i % u];
    if (repeats) {
      unit = u;
      break;
    }
  }
  if (unit == 1)
    return kiln__cu.cuMemsetD8Async(base, pat[0], bytes, cs->stream);
  if (unit == 2) {
    unsigned short v;
    memcpy(&v, pat, 2);
    return kiln__cu.cuMemsetD16Async(base, v, bytes / 2, cs->stream);
  }
  if (unit == 4) {
    unsigned int v;
    memcpy(&v, pat, 4);
    return kiln__cu.cuMemsetD32Async(base, v, bytes / 4, cs->stream);
  }
  /* The pattern stays in the op until it completes, so the upload may be async. */
  kiln_CUresult r = kiln__cu.cuMemcpyHtoDAsync(base, pat, pb, cs->stream);
  for (size_t done = pb; r == kiln_CUDA_SUCCESS && done < bytes; done *= 2) {
    size_t n = done < bytes - done ? done : bytes - done;
    r = kiln__cu.cuMemcpyDtoDAsync(base + done, base, n, cs->stream);
  }
  return r;
}

static size_t round_up(size_t v, size_t m) {
  return m ? (v + m - 1) / m * m : v;
}

/* A refusal kiln detects itself sets the detail and *own (then the CUresult returned
 * is only non-zero). */
static kiln_CUresult enqueue_launch(cu_stream *cs, kiln__op *op, kiln_status *own) {
  kiln__kernel *k = op->u.launch.kernel;
  cu_kernel *ck = k->native;
  const cu_device *cd = cud(cs->device);
  const kiln_range *rg = &op->u.launch.range;
  void *params[KILN_MAX_KERNEL_ARGS + KILN__HIDDEN_GS_PARAMS];
  kiln_CUdeviceptr ptrs[KILN_MAX_KERNEL_ARGS];
  uint32_t offs[KILN_MAX_KERNEL_ARGS];
  uint64_t gs[3];
  size_t smem = 0;
  uint32_t n = op->u.launch.arg_count;
  for (uint32_t i = 0; i < n; i++) {
    const kiln__launch_arg *a = &op->u.launch.args[i];
    if (a->kind == KILN_ARG_BUFFER) {
      ptrs[i] = (kiln_CUdeviceptr)(uintptr_t)a->buffer->native;
      params[i] = &ptrs[i];
    } else if (a->kind == KILN_ARG_SCALAR) {
      params[i] = op->u.launch.storage + a->offset;
    } else { /* local memory: a part of the dynamic shared block (prelude.h) */
      smem = round_up(smem, KILN__LOCAL_ALIGN);
      offs[i] = (uint32_t)smem;
      smem += a->bytes;
      params[i] = &offs[i];
    }
  }
  for (unsigned d = 0; d < 3; d++) {
    gs[d] = d < rg->dims ? (uint64_t)rg->global[d] : 1u;
    params[n + d] = &gs[d];
  }
  /* Dynamic shared memory beyond the default needs the kernel's opt-in. */
  if (smem + (size_t)ck->static_smem > (size_t)cd->smem_optin_bytes) {
    kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                "kernel '%s': %zu bytes of local memory (+%d static) exceed the device's %d bytes "
                "of shared memory",
                k->name, smem, ck->static_smem, cd->smem_optin_bytes);
    *own = KILN_ERROR_LIMIT_EXCEEDED;
    return kiln_CUDA_ERROR_INVALID_VALUE;
  }
  if (smem > DEFAULT_SMEM_BYTES && (int)smem > atomic_load(&ck->dyn_smem_allowed)) {
    kiln_CUresult r = kiln_CUDA_ERROR_NOT_SUPPORTED;
    pthread_mutex_lock(&ck->lock);
    if (kiln__cu.cuFuncSetAttribute)
      r = kiln__cu.cuFuncSetAttribute(ck->fn, kiln_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                      (int)(cd->smem_optin_bytes - ck->static_smem));
    if (r == kiln_CUDA_SUCCESS)
      atomic_store(&ck->dyn_smem_allowed, cd->smem_optin_bytes - ck->static_smem);
    pthread_mutex_unlock(&ck->lock);
    if (r != kiln_CUDA_SUCCESS)
      return r;
  }
  /* Block: the caller's local size, else the occupancy API's (1-D) or 16x16 / 8x8x4. */
  size_t block[3] = {1, 1, 1};
  bool given = false;
  for (unsigned d = 0; d < rg->dims; d++)
    given = given || rg->local[d];
  size_t limit = (size_t)ck->max_threads;
  if (given) {
    for (unsigned d = 0; d < rg->dims; d++)
      block[d] = rg->local[d] ? rg->local[d] : 1;
  } else if (rg->dims == 1) {
    int min_grid = 0, best = 0;
    if (!kiln__cu.cuOccupancyMaxPotentialBlockSize ||
        kiln__cu.cuOccupancyMaxPotentialBlockSize(&min_grid, &best, ck->fn, NULL, smem,
                                                  (int)limit) != kiln_CUDA_SUCCESS ||
        best <= 0)
      best = limit < 256 ? (int)limit : 256;
    block[0] = (size_t)best;
    size_t small = round_up(rg->global[0], 32);
    if (block[0] > small)
      block[0] = small;
  } else {
    block[0] = rg->dims == 3 ? 8 : 16;
    block[1] = rg->dims == 3 ? 8 : 16;
    block[2] = rg->dims == 3 ? 4 : 1;
    while (block[0] * block[1] * block[2] > limit && block[1] > 1)
      block[1] /= 2;
    while (block[0] * block[1] * block[2] > limit && block[0] > 1)
      block[0] /= 2;
  }
  if (block[0] * block[1] * block[2] > limit) {
    kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                "kernel '%s': a block of %zu threads exceeds the kernel's limit of %zu", k->name,
                block[0] * block[1] * block[2], limit);
    *own = KILN_ERROR_LIMIT_EXCEEDED;
    return kiln_CUDA_ERROR_INVALID_VALUE;
  }
  unsigned grid[3];
  for (unsigned d = 0; d < 3; d++) {
    size_t g = d < rg->dims ? (rg->global[d] + block[d] - 1) / block[d] : 1;
    if (g > cd->grid_max[d]) {
      kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                  "kernel '%s': %zu blocks in dimension %u exceed the device's %u", k->name, g, d,
                  cd->grid_max[d]);
      *own = KILN_ERROR_LIMIT_EXCEEDED;
      return kiln_CUDA_ERROR_INVALID_VALUE;
    }
    grid[d] = (unsigned)g;
  }
  if (kiln__log_enabled(KILN_LOG_DEBUG))
    kiln__log(KILN_LOG_DEBUG,
              "launch '%s': grid %ux%ux%u, block %zux%zux%zu, %zu bytes of dynamic shared memory",
              k->name, grid[0], grid[1], grid[2], block[0], block[1], block[2], smem);
  return kiln__cu.cuLaunchKernel(ck->fn, grid[0], grid[1], grid[2], (unsigned)block[0],
                                 (unsigned)block[1], (unsigned)block[2], (unsigned)smem, cs->stream,
                                 params, NULL);
}

static void cu_submit(kiln__stream *s, kiln__op *op) {
  cu_stream *cs = s->native;
  kiln_status st = kiln__op_begin(op);
  if (st != KILN_SUCCESS) {
    queue_failed(cs, op, st, NULL);
    return;
  }
  kiln_CUresult r = push(cs->pctx);
  if (r != kiln_CUDA_SUCCESS) {
    queue_failed(cs, op, fail(cs->device, r, "cuCtxPushCurrent"), "cuCtxPushCurrent");
    return;
  }
  for (uint32_t i = 0; i < op->dep_count && r == kiln_CUDA_SUCCESS; i++)
    r = wait_dep(cs, &op->deps[i]);
  const char *what = "cuStreamWaitEvent";
  kiln_status own = KILN_SUCCESS; /* enqueue_launch set the detail itself */
  if (r == kiln_CUDA_SUCCESS) {
    switch (op->kind) {
    case KILN__OP_WRITE:
      what = "cuMemcpyHtoDAsync";
      r = enqueue_transfer(cs, op, false, &what);
      break;
    case KILN__OP_READ:
      what = "cuMemcpyDtoHAsync";
      r = enqueue_transfer(cs, op, true, &what);
      break;
    case KILN__OP_COPY:
      what = "cuMemcpyDtoDAsync";
      r = kiln__cu.cuMemcpyDtoDAsync(
          (kiln_CUdeviceptr)(uintptr_t)op->u.copy.dst->native + op->u.copy.dst_offset,
          (kiln_CUdeviceptr)(uintptr_t)op->u.copy.src->native + op->u.copy.src_offset,
          op->u.copy.bytes, cs->stream);
      break;
    case KILN__OP_FILL:
      what = "filling a buffer (cuMemsetD*Async)";
      r = enqueue_fill(cs, op);
      break;
    case KILN__OP_LAUNCH:
      what = "cuLaunchKernel";
      r = enqueue_launch(cs, op, &own);
      break;
    case KILN__OP_MARKER:
    case KILN__OP_WAIT:
    case KILN__OP_CALLBACK:
      break; /* the op's event is the whole op */
    }
  }
  if (r != kiln_CUDA_SUCCESS) {
    pop();
    queue_failed(cs, op, own != KILN_SUCCESS ? own : fail(cs->device, r, what), what);
    return;
  }
  int timing = op->kind == KILN__OP_MARKER && (atomic_load(&op->flags) & KILN__OPF_TIMING);
  kiln_CUevent ev = NULL;
  pthread_mutex_lock(&cs->lock);
  r = event_get_locked(cs, timing, &ev);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuEventRecord(ev, cs->stream);
    if (r != kiln_CUDA_SUCCESS)
      event_put_locked(cs, ev, timing);
  }
  if (r == kiln_CUDA_SUCCESS) {
    op->native = ev;
    cs->last_event = ev;
    append_locked(cs, op);
    pthread_mutex_unlock(&cs->lock);
    pop();
    return;
  }
  pthread_mutex_unlock(&cs->lock);
  /* The work is queued but cannot be tracked by an event: wait for the stream. */
  kiln_CUresult sync = kiln__cu.cuStreamSynchronize(cs->stream);
  pop();
  queue_failed(
      cs, op,
      fail(cs->device, sync != kiln_CUDA_SUCCESS ? sync : r, "cuEventRecord after an operation"),
      sync != kiln_CUDA_SUCCESS ? "cuStreamSynchronize" : "cuEventRecord");
}

/* ------------------------------------------------------------- programs, kernels */
static kiln_status load_module(kiln__program *p, const void *image, kiln_CUmodule *mod) {
  /* The JIT's logs (PTX only; a CUBIN loads without them): errors into the build log
   * on failure, information (spills, registers) at debug level. */
  char log[4096] = "", info[2048] = "";
  kiln_CUjit_option opts[4] = {kiln_CU_JIT_ERROR_LOG_BUFFER,
                               kiln_CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, kiln_CU_JIT_INFO_LOG_BUFFER,
                               kiln_CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
  void *vals[4] = {log, (void *)(uintptr_t)sizeof log, info, (void *)(uintptr_t)sizeof info};
  kiln_CUresult r = push(p->h.ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuModuleLoadDataEx(mod, image, 4, opts, vals);
    pop();
  }
  info[sizeof info - 1] = '\0';
  if (info[0] && kiln__log_enabled(KILN_LOG_DEBUG))
    kiln__log(KILN_LOG_DEBUG, "cuda: program '%s': JIT: %s", p->name, info);
  if (r == kiln_CUDA_SUCCESS) {
    count(CUO_MODULE, 1);
    return KILN_SUCCESS;
  }
  log[sizeof log - 1] = '\0';
  if (log[0])
    kiln__set_build_log(log, strlen(log));
  char what[128];
  snprintf(what, sizeof what, "cuModuleLoadDataEx of program '%s'", p->name);
  return fail(p->h.ctx->device, r, what);
}

static kiln_status cu_program_build(kiln__program *p, const char *src, size_t bytes,
                                    const char *options) {
  const cu_device *cd = cud(p->h.ctx->device);
  char arch[32];
  int want_ptx = 0;
  kiln_status st = kiln__cuda_pick_arch(cd->cc_major, cd->cc_minor, arch, sizeof arch, &want_ptx);
  if (st != KILN_SUCCESS)
    return st;
  void *image = NULL;
  size_t image_bytes = 0;
  st = kiln__cuda_compile(src, bytes, p->name, arch, want_ptx, options, &image, &image_bytes);
  if (st != KILN_SUCCESS)
    return st;
  kiln_CUmodule mod = NULL;
  st = load_module(p, image, &mod);
  kiln__cuda_image_free(image, image_bytes);
  if (st != KILN_SUCCESS && !want_ptx &&
      kiln_last_error()->native_code == kiln_CUDA_ERROR_NO_BINARY_FOR_GPU) {
    /* the CUBIN does not fit the device after all: PTX, JIT-compiled by the driver */
    snprintf(arch, sizeof arch, "compute_%d%d", cd->cc_major, cd->cc_minor);
    kiln__log(KILN_LOG_INFO, "cuda: program '%s': the CUBIN was refused, loading PTX for %s",
              p->name, arch);
    st = kiln__cuda_compile(src, bytes, p->name, arch, 1, options, &image, &image_bytes);
    if (st != KILN_SUCCESS)
      return st;
    st = load_module(p, image, &mod);
    kiln__cuda_image_free(image, image_bytes);
  }
  if (st != KILN_SUCCESS)
    return st;
  cu_module *m = kiln__calloc(1, sizeof *m);
  if (!m) {
    if (push(p->h.ctx->native) == kiln_CUDA_SUCCESS) {
      kiln__cu.cuModuleUnload(mod);
      pop();
    }
    count(CUO_MODULE, -1);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory loading program '%s'",
                       p->name);
  }
  m->mod = mod;
  m->ctx = p->h.ctx->native;
  atomic_store(&m->refs, 1); /* the program's */
  p->native = m;
  return KILN_SUCCESS;
}

static void module_unref(cu_module *m) {
  if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
    return;
  if (push(m->ctx) == kiln_CUDA_SUCCESS) {
    kiln__cu.cuModuleUnload(m->mod);
    pop();
  }
  count(CUO_MODULE, -1);
  kiln__free(m, sizeof *m);
}

static void cu_program_destroy(kiln__program *p) {
  module_unref(p->native);
  p->native = NULL;
}

static kiln_status cu_kernel_create(kiln__kernel *k, kiln__program *p) {
  cu_kernel *ck = kiln__calloc(1, sizeof *ck);
  if (!ck)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating kernel '%s'",
                       k->name);
  cu_module *m = p->native;
  kiln_CUresult r = push(p->h.ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuModuleGetFunction(&ck->fn, m->mod, k->name);
    if (r == kiln_CUDA_SUCCESS &&
        kiln__cu.cuFuncGetAttribute(&ck->max_threads, kiln_CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                                    ck->fn) != kiln_CUDA_SUCCESS)
      ck->max_threads = (int)k->h.ctx->device->props.max_work_group_size;
    if (r == kiln_CUDA_SUCCESS &&
        kiln__cu.cuFuncGetAttribute(&ck->static_smem, kiln_CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
                                    ck->fn) != kiln_CUDA_SUCCESS)
      ck->static_smem = 0;
    pop();
  }
  if (r != kiln_CUDA_SUCCESS) {
    kiln__free(ck, sizeof *ck);
    char what[128];
    snprintf(what, sizeof what, "cuModuleGetFunction('%s')", k->name);
    return fail(k->h.ctx->device, r, what);
  }
  if (ck->max_threads <= 0)
    ck->max_threads = 1;
  ck->module = m;
  atomic_fetch_add(&m->refs, 1);
  atomic_store(&ck->dyn_smem_allowed, (int)DEFAULT_SMEM_BYTES);
  pthread_mutex_init(&ck->lock, NULL);
  k->native = ck;
  return KILN_SUCCESS;
}

static void cu_kernel_destroy(kiln__kernel *k) {
  cu_kernel *ck = k->native;
  if (!ck)
    return;
  module_unref(ck->module);
  pthread_mutex_destroy(&ck->lock);
  kiln__free(ck, sizeof *ck);
  k->native = NULL;
}

/* ------------------------------------------------------------- interop, reset */
static kiln_status cu_get_native(uint32_t tag, void *handle, kiln_native_kind kind, void *out) {
  switch (tag) {
  case KILN__TAG_DEVICE:
    if (kind == KILN_NATIVE_CU_DEVICE) {
      *(kiln_CUdevice *)out = cud(handle)->dev;
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_CONTEXT:
    if (kind == KILN_NATIVE_CU_CONTEXT) {
      *(kiln_CUcontext *)out = ((kiln__context *)handle)->native;
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_STREAM:
    if (kind == KILN_NATIVE_CU_STREAM) {
      *(kiln_CUstream *)out = ((cu_stream *)((kiln__stream *)handle)->native)->stream;
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_BUFFER:
    if (kind == KILN_NATIVE_CU_DEVICEPTR) {
      *(kiln_CUdeviceptr *)out = (kiln_CUdeviceptr)(uintptr_t)((kiln__buffer *)handle)->native;
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_KERNEL:
    if (kind == KILN_NATIVE_CU_FUNCTION && ((kiln__kernel *)handle)->native) {
      *(kiln_CUfunction *)out = ((cu_kernel *)((kiln__kernel *)handle)->native)->fn;
      return KILN_SUCCESS;
    }
    if (kind == KILN_NATIVE_CU_MODULE && ((kiln__kernel *)handle)->native) {
      *(kiln_CUmodule *)out = ((cu_kernel *)((kiln__kernel *)handle)->native)->module->mod;
      return KILN_SUCCESS;
    }
    break;
  default:
    break;
  }
  kiln__error(KILN_ERROR_UNSUPPORTED, "native kind %d does not apply to this CUDA-backend object",
              (int)kind);
  kiln__error_suggest("devices give CU_DEVICE, contexts CU_CONTEXT, streams CU_STREAM, buffers "
                      "CU_DEVICEPTR, kernels CU_FUNCTION or CU_MODULE");
  return KILN_ERROR_UNSUPPORTED;
}

static kiln_status cu_device_reset(kiln__device *d) {
  kiln_CUresult r = kiln__cu.cuDevicePrimaryCtxReset(cud(d)->dev);
  if (r != kiln_CUDA_SUCCESS)
    return kiln__cu_fail(r, "cuDevicePrimaryCtxReset");
  return KILN_SUCCESS;
}

const kiln__backend_ops kiln__cuda_backend = {
    .kind = KILN_BACKEND_CUDA,
    .name = "cuda",
    .dialect = KILN__TARGET_CUDA,
    .probe = cu_probe,
    .mem_info = cu_mem_info,
    .context_create = cu_context_create,
    .context_destroy = cu_context_destroy,
    .stream_create = cu_stream_create,
    .stream_destroy = cu_stream_destroy,
    .buffer_create = cu_buffer_create,
    .buffer_destroy = cu_buffer_destroy,
    .host_alloc = cu_host_alloc,
    .host_free = cu_host_free,
    .host_register = cu_host_register,
    .host_unregister = cu_host_unregister,
    .program_build = cu_program_build,
    .program_destroy = cu_program_destroy,
    .kernel_create = cu_kernel_create,
    .kernel_create_native = NULL,
    .kernel_destroy = cu_kernel_destroy,
    .submit = cu_submit,
    .get_native = cu_get_native,
    .buffer_wrap = cu_buffer_wrap,
    .stream_wrap = cu_stream_wrap,
    .device_reset = cu_device_reset,
    .device_probe = NULL,
};
