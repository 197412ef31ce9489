/* SPDX-License-Identifier: MIT */
/* What the files of the CUDA backend share: the backend's records behind each handle's
 * `native` (device, stream, module, kernel), the count of live CUDA objects, the
 * helpers every op uses (the current-context push/pop, a failed driver call marking the
 * device lost) and the functions one file calls in another. Only src/backends/cuda
 * includes this; the driver's entry points themselves are in cuda_api.h. */
#ifndef KILN_CUDA_INTERNAL_H
#define KILN_CUDA_INTERNAL_H

#include "backends/cuda/cuda_api.h"
#include "core/backend.h"

#define KILN__CU_MAX_DEVICES 32
#define KILN__CU_EVENT_POOL 64
#define KILN__CU_DEFAULT_SMEM_BYTES (48u * 1024u) /* dynamic shared memory without opting in */

/* ------------------------------------------------------------- records */
/* A device (kiln__device.native; process lifetime, like the devices). */
typedef struct cu_device {
  kiln_CUdevice dev;
  int cc_major, cc_minor;
  int smem_bytes, smem_optin_bytes;
  unsigned grid_max[3];
} cu_device;

struct stage_block;

/* A stream (kiln__stream.native): the CUstream, the ops submitted and not yet
 * completed, the completion thread that completes them in order (stream.c). */
typedef struct cu_stream {
  kiln_CUstream stream;
  kiln_CUcontext pctx;
  kiln__device *device;
  int wrapped;          /* a user's CUstream: not ours to destroy */
  pthread_mutex_t lock; /* list, last_event, pool, stop, staging */
  pthread_cond_t cond;
  kiln__op *head, *tail;                  /* submitted, not yet completed (op->native: its event) */
  kiln_CUevent last_event;                /* the latest recorded event; NULL once it completed */
  _Atomic uint64_t submitted_seq;         /* seq of the latest op handed to the list */
  kiln_CUevent pool[KILN__CU_EVENT_POOL]; /* idle untimed events */
  int pool_count;
  kiln_CUevent tpool[KILN__CU_EVENT_POOL]; /* idle timed events (timing markers, trace) */
  int tpool_count;
  int stop;
  pthread_t thread;
  kiln_CUevent ref_event; /* timing: recorded at ref_ns (host monotonic clock) */
  uint64_t ref_ns;
  uint64_t ref_taken_ns; /* when ref_event was last anchored to the host clock */
  uint64_t ref_error_ns; /* that anchor's error: half the host reads' distance */
  int no_device_time;    /* a failed event call turned the trace's device time off */
  /* Pinned staging blocks of pageable transfers (under lock; staging.c): idle ones,
   * kept for reuse; those of ops that failed half-way (a DMA may still use them),
   * freed at stream destroy; and the bytes of all of them, capped. */
  struct stage_block *stage_free, *stage_dead;
  size_t stage_bytes;
} cu_stream;

/* A loaded module, shared by its program and every kernel made from it: kernels stay
 * valid after kiln_program_destroy (include/kiln/program.h), so the module is unloaded
 * when the last of them goes. */
typedef struct cu_module {
  kiln_CUmodule mod;
  kiln_CUcontext ctx;
  _Atomic int refs;
  /* The image it was loaded from, for the compile cache's program_export (freed with
   * the module). image_ptx: PTX, else CUBIN;
   * picked_ptx: what kiln__cuda_pick_arch chose (they differ after a refused CUBIN). */
  void *image;
  size_t image_bytes;
  int image_ptx, picked_ptx;
} cu_module;

/* A kernel (kiln__kernel.native). */
typedef struct cu_kernel {
  cu_module *module; /* referenced */
  kiln_CUfunction fn;
  int max_threads;              /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK */
  int static_smem;              /* CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES */
  int occupancy_block;          /* block of 1-D launches without a local size */
  _Atomic int dyn_smem_allowed; /* MAX_DYNAMIC_SHARED_SIZE_BYTES set so far */
  pthread_mutex_t lock;         /* raising dyn_smem_allowed */
} cu_kernel;

/* ------------------------------------------------------------- shared helpers */
/* Live CUDA objects kiln holds, by kind (cuda.c); the tests check they return to 0. */
enum { KILN__CUO_CONTEXT, KILN__CUO_STREAM, KILN__CUO_EVENT, KILN__CUO_MEM, KILN__CUO_MODULE };
extern _Atomic long kiln__cu_live[5];
long kiln__cu_live_total(void);
static inline void kiln__cu_count(int kind, long delta) {
  atomic_fetch_add_explicit(&kiln__cu_live[kind], delta, memory_order_relaxed); /* counter only */
}

static inline cu_device *kiln__cu_dev(const kiln__device *d) {
  return d->native;
}

/* Make ctx current on the calling (API) thread for a few driver calls. */
static inline kiln_CUresult kiln__cu_push(kiln_CUcontext ctx) {
  return kiln__cu.cuCtxPushCurrent(ctx);
}
static inline void kiln__cu_pop(void) {
  kiln_CUcontext dummy = NULL;
  kiln__cu.cuCtxPopCurrent(&dummy);
}

/* A failed driver call: error detail, and a sticky error marks d lost (d may be NULL).
 * device.c. */
kiln_status kiln__cu_fail_device(kiln__device *d, kiln_CUresult r, const char *what);
/* device.c, for tests and `kiln info` once the props carry it: compute capability,
 * opt-in shared memory and the driver version of CUDA device `index`. */
kiln_status kiln__cuda_device_info(unsigned index, int *cc_major, int *cc_minor,
                                   int *smem_optin_bytes, int *driver_version);

/* ------------------------------------------------------------- across files */
/* stream.c: events of the stream's pool (untimed) or new (timing), with cs->lock held. */
kiln_CUresult kiln__cu_event_get_locked(cu_stream *cs, int timing, kiln_CUevent *ev);
void kiln__cu_event_put_locked(cu_stream *cs, kiln_CUevent ev, int timing);
/* device_time.c: while a trace records, time op on the device: re-anchor the stream's
 * reference event to the host clock when the stream is idle and the anchor is older
 * than 100 ms, then record a timed event before the op's work into op->native_timing
 * (ctx current, submit lock held, its dependencies already waited for). false: the op
 * keeps its observed span. */
bool kiln__cu_device_time_begin(cu_stream *cs, kiln__op *op);
/* device_time.c, completion thread, the op's (timed) end event passed: fill its
 * device_begin_ns/device_end_ns from the two events against the stream's reference;
 * *keep: the end event became the new reference (the caller must not recycle it).
 * Gives the begin event back. A failure turns device time off for the stream, with a
 * warning (once per process). */
void kiln__cu_device_time_end(cu_stream *cs, kiln__op *op, kiln_CUevent end, int *keep);
/* stream.c: hand op to the completion thread (its event in op->native, or NULL with
 * op->native_status set), with cs->lock held. */
void kiln__cu_append_locked(cu_stream *cs, kiln__op *op);
/* stream.c: hand op to the completion thread as failed with st; `call` names the
 * driver call whose error detail is in kiln_last_error(). */
void kiln__cu_queue_failed(cu_stream *cs, kiln__op *op, kiln_status st, const char *call);
/* stream.c: the status of work on cs whose wait returned r. */
kiln_status kiln__cu_complete_status(cu_stream *cs, kiln_CUresult r);

/* memory.c: whether host memory [p, +n) is page-locked (kiln's, or CUDA's own). */
bool kiln__cu_host_range_pinned(kiln__context *ctx, const void *p, size_t n);

/* staging.c: a host<->device transfer (ctx current, submitting thread); *what names
 * the driver call a failure comes from. */
kiln_CUresult kiln__cu_enqueue_transfer(cu_stream *cs, kiln__op *op, bool read, const char **what);
/* staging.c, completion thread: a staged op (op->native_aux) — the read's copy-out as
 * its chunks land, then its block and events given back. */
typedef struct stage_op stage_op;
kiln_status kiln__cu_stage_copy_out(cu_stream *cs, stage_op *so);
void kiln__cu_stage_finish(cu_stream *cs, stage_op *so, bool queued_whole);
/* staging.c, stream destroy (ctx current, stream idle): free every staging block. */
void kiln__cu_stage_teardown(cu_stream *cs);

/* kernel.c: queue op's launch (ctx current, submitting thread); its limits were
 * checked at the call (the core, kiln__cu_launch_check). */
kiln_CUresult kiln__cu_enqueue_launch(cu_stream *cs, kiln__op *op);

/* program.c: drop a reference to a module (the last one unloads it). */
void kiln__cu_module_unref(cu_module *m);

/* ------------------------------------------------------------- the ops (cuda.c's table) */
kiln_status kiln__cu_probe(const kiln__backend_ops *self, char *reason, size_t reason_bytes);
kiln_status kiln__cu_mem_info(kiln__device *d, uint64_t *free_bytes, uint64_t *total_bytes);
kiln_status kiln__cu_context_create(kiln__context *ctx);
void kiln__cu_context_destroy(kiln__context *ctx);
kiln_status kiln__cu_device_reset(kiln__device *d);

kiln_status kiln__cu_stream_create(kiln__stream *s);
kiln_status kiln__cu_stream_wrap(kiln__stream *s, kiln_native_kind kind, const void *native);
void kiln__cu_stream_destroy(kiln__stream *s);
void kiln__cu_submit(kiln__stream *s, kiln__op *op);

kiln_status kiln__cu_buffer_create(kiln__buffer *b);
void kiln__cu_buffer_destroy(kiln__buffer *b);
kiln_status kiln__cu_buffer_view_create(kiln__buffer *view, kiln__buffer *parent, size_t offset,
                                        void **host);
void kiln__cu_buffer_view_destroy(kiln__buffer *view);
kiln_status kiln__cu_buffer_wrap(kiln__buffer *b, kiln_native_kind kind, const void *native);
kiln_status kiln__cu_host_alloc(kiln__context *ctx, size_t bytes, void **ptr, void **native);
void kiln__cu_host_free(kiln__context *ctx, void *ptr, size_t bytes, void *native);
kiln_status kiln__cu_host_register(kiln__context *ctx, void *ptr, size_t bytes, void **native);
void kiln__cu_host_unregister(kiln__context *ctx, void *ptr, size_t bytes, void *native);

kiln_status kiln__cu_program_build(kiln__program *p, const char *src, size_t bytes,
                                   const char *options);
void kiln__cu_program_destroy(kiln__program *p);
kiln_status kiln__cu_program_cache_id(kiln__program *p, const char *options, char *out,
                                      size_t out_bytes);
kiln_status kiln__cu_program_export(kiln__program *p, void **binary, size_t *bytes);
kiln_status kiln__cu_program_import(kiln__program *p, const void *binary, size_t bytes,
                                    const char *options);
kiln_status kiln__cu_program_share(kiln__program *p, kiln__program *from);
kiln_status kiln__cu_kernel_create(kiln__kernel *k, kiln__program *p);
void kiln__cu_kernel_destroy(kiln__kernel *k);
kiln_status kiln__cu_launch_check(const kiln__kernel *k, const kiln_range *rg);
void kiln__cu_launch_config(const kiln__kernel *k, const kiln_range *rg, size_t local[3], char *why,
                            size_t why_bytes);

kiln_status kiln__cu_get_native(uint32_t tag, void *handle, kiln_native_kind kind, void *out);

#endif
