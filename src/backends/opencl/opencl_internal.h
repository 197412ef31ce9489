/* SPDX-License-Identifier: MIT */
/* What the files of the OpenCL backend share: the records behind the core's device,
 * stream and kernel (`native`), the states of an op's command, the settings read at
 * probe, the small helpers of the hot path (inline), and the ops each file defines for
 * the table in opencl.c. Only src/backends/opencl includes this. */
#ifndef KILN_OPENCL_INTERNAL_H
#define KILN_OPENCL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backends/opencl/cl_api.h"
#include "core/backend.h"

/* ---------------------------------------------------------------- device (device.c) */
/* kiln__device->native: where the device was found (process lifetime, like devices). */
/* cl_khr_create_command_queue's constructor, for cl_khr_priority_hints queues. */
typedef cl_command_queue (*kiln__ocl_create_queue_props_fn)(cl_context, cl_device_id,
                                                            const cl_properties *, cl_int *);
typedef struct kiln__ocl_device {
  cl_platform_id platform;
  cl_device_id id;
  /* Set at probe when the device has cl_khr_priority_hints and the platform gives
   * clCreateCommandQueueWithPropertiesKHR; NULL: priorities accepted, reported as 0. */
  kiln__ocl_create_queue_props_fn create_queue_props;
  /* Every command gets a cl_event (submit.c, knob 1): set at probe for PoCL, which
   * makes an event for every command whether asked or not (KILN_OPENCL_EVENTS). */
  bool events_always;
  _Atomic uint64_t live_bytes; /* kiln's buffers on it now (kiln__ocl_mem_info's estimate) */
} kiln__ocl_device;
/* A command queue for stream s, with `props` (0 or CL_QUEUE_PROFILING_ENABLE), at the
 * stream's priority where the device honours priority hints (stream.c); *applied (may
 * be NULL) receives the priority applied then, in kiln's terms (left alone otherwise). */
cl_command_queue kiln__ocl_queue_create(kiln__stream *s, cl_command_queue_properties props,
                                        cl_int *err, int *applied);

static inline cl_device_id kiln__ocl_dev_id(const kiln__device *d) {
  return ((const kiln__ocl_device *)d->native)->id;
}

kiln_status kiln__ocl_probe(const kiln__backend_ops *self, char *reason, size_t reason_bytes);
kiln_status kiln__ocl_mem_info(kiln__device *d, uint64_t *free_bytes, uint64_t *total_bytes);
kiln_status kiln__ocl_context_create(kiln__context *ctx);
void kiln__ocl_context_destroy(kiln__context *ctx);

/* ---------------------------------------------------------------- stream (stream.c) */
/* op->native_done: PENDING, then CLAIMED by the one thread that records the outcome of
 * the op's command (the event callback or a waiter), then DONE, which drain reads. */
enum { KILN__OCL_PENDING = 0, KILN__OCL_CLAIMED = 1, KILN__OCL_DONE = 2 };

/* kiln__stream->native. The pending list holds the ops handed to the queue and not yet
 * completed, in seq order; op->native is the op's cl_event (retained) or NULL. */
typedef struct kiln__ocl_stream {
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
  _Atomic uint64_t drained_seq;   /* seq of the latest op drained (idle when equal) */
  _Atomic int callbacks;          /* event callbacks set and not yet returned */
  _Atomic int unflushed;          /* commands enqueued since the last clFlush */
  unsigned since_callback;        /* ops since the last one given a callback (submit lock) */
  /* Device time while a trace records (device_time.c): the anchor mapping the device's
   * profiling clock onto the host's monotonic clock, under anchor_lock. */
  pthread_mutex_t anchor_lock;
  cl_event anchor_ev;            /* retained: a marker enqueued between host reads h0, h1 */
  uint64_t anchor_h0, anchor_h1; /* and not yet read back */
  uint64_t anchor_at_ns;         /* when the latest anchor marker was enqueued (submit lock) */
  int64_t device_offset_ns;      /* host ns = device ns + offset, once anchor_ok */
  uint64_t anchor_error_ns;      /* its error: (h1 - h0) / 2 */
  int anchor_ok;
} kiln__ocl_stream;

/* The queue commands go to now. */
static inline cl_command_queue kiln__ocl_queue(kiln__ocl_stream *cs) {
  /* queue_prof is written before use_prof (seq_cst): who sees the flag sees the queue. */
  return atomic_load(&cs->use_prof) ? cs->queue_prof : cs->queue;
}

/* clFlush the current queue if commands were enqueued since the last flush. */
static inline void kiln__ocl_flush(kiln__ocl_stream *cs) {
  if (atomic_exchange(&cs->unflushed, 0))
    kiln__cl.clFlush(kiln__ocl_queue(cs));
}

static inline void kiln__ocl_release_event(cl_event ev) {
  if (!ev)
    return;
  kiln__cl.clReleaseEvent(ev);
  kiln__cl_count(KILN__CLO_EVENT, -1);
}

kiln_status kiln__ocl_stream_create(kiln__stream *s);
void kiln__ocl_stream_destroy(kiln__stream *s);
/* A retained event covering every op now in the pending list (the tail's own, or a
 * marker), *covers set to the seq it covers; NULL when the list is empty. Under cs->lock. */
cl_event kiln__ocl_covering_locked(kiln__ocl_stream *cs, uint64_t *covers);
/* Move the stream to a profiling queue. Under the stream's submit lock. */
void kiln__ocl_switch_to_profiling(kiln__stream *s, kiln__ocl_stream *cs);

/* ---------------------------------------------------------------- submit (submit.c) */
/* Settings read once at probe (submit.c's header comment): KILN_OPENCL_PROFILING gives
 * kiln__ocl_profiling 1 (every queue profiled), 0 (never), else -1 (on demand);
 * KILN_OPENCL_FLUSH_IDLE=0 clears kiln__ocl_flush_idle; KILN_OPENCL_EVENTS gives
 * kiln__ocl_events 1 (=all: an event on every command), 0 (=needed: only where knob 1
 * says), else -1 (per platform: all on PoCL, needed elsewhere). */
extern int kiln__ocl_flush_idle, kiln__ocl_profiling, kiln__ocl_events;
void kiln__ocl_read_settings(void);
void kiln__ocl_submit(kiln__stream *s, kiln__op *op);

/* ---------------------------------------------------------------- device time (device_time.c) */
/* While a trace records: move the stream to a profiling queue (once) and renew its
 * anchor; true when the op must carry an event (its command is profiled). Under the
 * stream's submit lock, before the op's command is enqueued. */
bool kiln__ocl_device_time_prepare(kiln__stream *s, kiln__ocl_stream *cs);
/* The op's command finished (its event ev, complete): fill op->device_begin_ns and
 * device_end_ns from its profiling info and the stream's anchor, when both exist. */
void kiln__ocl_device_time_read(kiln__ocl_stream *cs, kiln__op *op, cl_event ev);
void kiln__ocl_device_time_destroy(kiln__ocl_stream *cs);

/* ---------------------------------------------------------------- completion (complete.c) */
/* Complete, in order, the ops at the head of the pending list whose commands finished. */
void kiln__ocl_drain(kiln__stream *s);
/* The event callback (its user data is the op, with a reference the callback drops). */
void CL_CALLBACK kiln__ocl_on_complete(cl_event ev, cl_int exec, void *user);
void kiln__ocl_op_wait(kiln__op *op);
/* Every op up to seq `upto` is known to have finished (a blocking enqueue of it
 * returned CL_SUCCESS): record them so, then drain. */
void kiln__ocl_finished_upto(kiln__stream *s, uint64_t upto);
void kiln__ocl_stream_wait(kiln__stream *s);
void kiln__ocl_poll(kiln__stream *s);
/* notify.c: the op is watched (a callback, descriptor or future): complete it unasked. */
void kiln__ocl_op_notify(kiln__stream *s, kiln__op *op);

/* ---------------------------------------------------------------- memory (memory.c) */
kiln_status kiln__ocl_buffer_create(kiln__buffer *b);
void kiln__ocl_buffer_destroy(kiln__buffer *b);
kiln_status kiln__ocl_buffer_view_create(kiln__buffer *view, kiln__buffer *parent, size_t offset,
                                         void **host);
void kiln__ocl_buffer_view_destroy(kiln__buffer *view);
kiln_status kiln__ocl_host_alloc(kiln__context *ctx, size_t bytes, void **ptr, void **native);
void kiln__ocl_host_free(kiln__context *ctx, void *ptr, size_t bytes, void *native);

/* ---------------------------------------------------------------- programs (program.c) */
/* The value last set for one argument of a cl_kernel, so an unchanged argument is not set
 * again (clSetKernelArg costs on some drivers; back-to-back launches repeat args). */
typedef struct kiln__ocl_arg_cache {
  unsigned char set; /* 0: unknown; 1: value; 2: local memory of `size` bytes */
  unsigned char size;
  unsigned char bytes[16];
} kiln__ocl_arg_cache;

/* kiln__kernel->native. */
typedef struct kiln__ocl_kernel {
  cl_kernel kernel;
  kiln__ocl_arg_cache cache[KILN_MAX_KERNEL_ARGS + 3];
  pthread_mutex_t lock; /* arguments are set on the shared cl_kernel: set + enqueue atomically */
  size_t wg_max;        /* CL_KERNEL_WORK_GROUP_SIZE */
  size_t multiple;      /* CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE */
} kiln__ocl_kernel;

kiln_status kiln__ocl_program_build(kiln__program *p, const char *src, size_t bytes,
                                    const char *options);
void kiln__ocl_program_destroy(kiln__program *p);
/* program_cache.c: the compile cache's ops (CL_PROGRAM_BINARIES, clCreateProgramWithBinary). */
kiln_status kiln__ocl_program_cache_id(kiln__program *p, const char *options, char *out,
                                       size_t out_bytes);
kiln_status kiln__ocl_program_export(kiln__program *p, void **binary, size_t *bytes);
kiln_status kiln__ocl_program_import(kiln__program *p, const void *binary, size_t bytes,
                                     const char *options);
kiln_status kiln__ocl_program_share(kiln__program *p, kiln__program *from);
kiln_status kiln__ocl_kernel_create(kiln__kernel *k, kiln__program *p);
void kiln__ocl_kernel_destroy(kiln__kernel *k);

/* ---------------------------------------------------------------- launch (launch.c) */
kiln_status kiln__ocl_launch_check(const kiln__kernel *k, const kiln_range *r);
/* levels.c: the level_check op; and its decision on given capabilities (true when
 * the scoped-atomics level is missing, why says what lacks). */
kiln_status kiln__ocl_level_check(const kiln__device *device, kiln__level level,
                                  const char **options);
bool kiln__ocl_level_missing(bool has_c30, cl_bitfield memory_caps, cl_bitfield fence_caps,
                             char *why, size_t why_bytes);
void kiln__ocl_launch_config(const kiln__kernel *k, const kiln_range *r, size_t local[3], char *why,
                             size_t why_bytes);
/* Set the launch's arguments and enqueue it on the stream's current queue behind the
 * wait list; *ev (ev not NULL) receives the command's event. Under the submit lock. */
kiln_status kiln__ocl_enqueue_launch(kiln__stream *s, kiln__op *op, cl_uint nwait,
                                     const cl_event *wait, cl_event *ev);

/* ---------------------------------------------------------------- interop (native.c) */
kiln_status kiln__ocl_get_native(uint32_t tag, void *handle, kiln_native_kind kind, void *out);
kiln_status kiln__ocl_buffer_wrap(kiln__buffer *b, kiln_native_kind kind, const void *native);
kiln_status kiln__ocl_stream_wrap(kiln__stream *s, kiln_native_kind kind, const void *native);

#endif
