/* SPDX-License-Identifier: MIT */
/* The backend contract: one ops table per backend, registered in registry.c.
 * The core has validated every argument before calling an op (handles alive and of
 * this backend, sizes within the buffer and the device's limits, kernel arguments
 * matching the signature), so backends trust their inputs and only report what their
 * runtime reports. Ops never print; they set error detail with kiln__error*(). */
#ifndef KILN_BACKEND_H
#define KILN_BACKEND_H

#include "core/core.h"

/* The device language a backend compiles the kiln dialect to (the core rewrites the
 * source for it: core/prelude.h). */
typedef enum kiln__dialect_target {
  KILN__TARGET_OPENCL = 0, /* OpenCL C 1.2 */
  KILN__TARGET_CUDA = 1    /* CUDA C++ through NVRTC */
} kiln__dialect_target;

/* Every kernel gets three hidden trailing parameters, `kiln_u64 kiln__gs0, kiln__gs1,
 * kiln__gs2`: the global size the caller asked for in each dimension (1 for unused
 * dimensions), before rounding up to the local size. The launchers pass them as
 * 8-byte scalars after the user's arguments. */
#define KILN__HIDDEN_GS_PARAMS 3u
#define KILN__HIDDEN_GS_BYTES 8u

/* CUDA-style local memory: the byte offset of each local argument's part of the one
 * dynamic shared memory block is rounded up to this. */
#define KILN__LOCAL_ALIGN 16u

/* The line of a compiler's log that goes into COMPILE_FAILED's message: the first that
 * reports an error, else the first non-empty one, else "(<compiler> gave no log)". A
 * line "<renumber_prefix>N:..." (a compiler that names the input itself and ignores
 * the `#line 1` after the prelude, e.g. NVIDIA's OpenCL with "<kernel>:") is given as
 * "<source>:M:..." with M the user's line (N minus the prelude of `target`).
 * renumber_prefix NULL: none. Any thread; never allocates. */
void kiln__first_error_line(const char *log, const char *compiler, const char *renumber_prefix,
                            kiln__dialect_target target, char *out, size_t out_bytes);

typedef struct kiln__backend_ops {
  kiln_backend_kind kind;
  const char *name;
  /* Backends with program_build: the language the core rewrites the dialect to. */
  kiln__dialect_target dialect;
  /* Backends without program_build: why kiln_program_create is UNSUPPORTED (the rest
   * of the message and a suggestion; NULL: a generic one). */
  const char *no_source_why;
  const char *no_source_suggestion;

  /* Load the runtime and add every device with kiln__registry_add_device(), in the
   * backend's index order. Called once per process, single-threaded (the registry's
   * once-guard). On failure, write why into reason (e.g. "libcuda.so.1 not found")
   * and return an error; the backend is then listed as unavailable. */
  kiln_status (*probe)(const struct kiln__backend_ops *self, char *reason, size_t reason_bytes);

  /* Free and total memory of the device. */
  kiln_status (*mem_info)(kiln__device *device, uint64_t *free_bytes, uint64_t *total_bytes);

  /* ctx->device is set; set ctx->native. context_destroy runs after every object of
   * the context has been destroyed. */
  kiln_status (*context_create)(kiln__context *ctx);
  void (*context_destroy)(kiln__context *ctx);

  /* Set stream->native. stream_destroy is called with the stream idle (every submitted
   * op completed). */
  kiln_status (*stream_create)(kiln__stream *stream);
  void (*stream_destroy)(kiln__stream *stream);

  /* Allocate buffer->bytes (> 0, <= max_alloc_bytes) into buffer->native.
   * buffer_destroy is called with no pending work on the buffer. */
  kiln_status (*buffer_create)(kiln__buffer *buffer);
  void (*buffer_destroy)(kiln__buffer *buffer);

  /* Optional (NULL: page-aligned memory from kiln's allocator). Page-locked host
   * memory for kiln_host_alloc: `bytes` (> 0) at *ptr, aligned to 4096; *native is
   * the backend's own record (kept by the core, may be NULL). host_free gets the same
   * ptr, size and record back, with the context's queued work completed. */
  kiln_status (*host_alloc)(kiln__context *ctx, size_t bytes, void **ptr, void **native);
  void (*host_free)(kiln__context *ctx, void *ptr, size_t bytes, void *native);
  /* Optional (NULL: only recorded). Page-lock the program's memory [ptr, +bytes) for
   * kiln_host_register; host_unregister undoes it (queued work completed). */
  kiln_status (*host_register)(kiln__context *ctx, void *ptr, size_t bytes, void **native);
  void (*host_unregister)(kiln__context *ctx, void *ptr, size_t bytes, void *native);

  /* Compile dialect source already rewritten for this backend (prelude, hidden
   * parameters; kiln__dialect_rewrite) into program->native. Failure: set the build log
   * (kiln__set_build_log) and return KILN_ERROR_COMPILE_FAILED with the first error
   * line in the message. NULL: the backend takes no source (the core answers
   * KILN_ERROR_UNSUPPORTED). */
  kiln_status (*program_build)(kiln__program *program, const char *source, size_t bytes,
                               const char *options);
  void (*program_destroy)(kiln__program *program);
  /* Make the kernel named kernel->name of `program` (its params are filled from the
   * parsed signature; kernel->source is true) into kernel->native. */
  kiln_status (*kernel_create)(kiln__kernel *kernel, kiln__program *program);

  /* Prepare a native C kernel (name, fn, params already copied into the kernel).
   * NULL when the backend cannot run native kernels (the core then answers
   * KILN_ERROR_UNSUPPORTED). kernel_destroy runs once no launch refers to it. */
  kiln_status (*kernel_create_native)(kiln__kernel *kernel);
  void (*kernel_destroy)(kiln__kernel *kernel);
  /* Optional (NULL: the core's checks suffice). Refuse, at the launch call, a range
   * this backend cannot run with this kernel. The core has checked the kernel alive,
   * dims 1-3, each dimension against the device's limits, the work-group size, and
   * the total (each dimension rounded up to the caller's local size) against
   * KILN__MAX_TOTAL_ITEMS. Answer KILN_ERROR_LIMIT_EXCEEDED with a message naming the
   * kernel and the bound, else KILN_SUCCESS. Must not block or call the runtime. */
  kiln_status (*launch_check)(const kiln__kernel *kernel, const kiln_range *range);

  /* Queue `op` on `stream` behind the ops submitted before it. Called with the
   * stream's submit lock held, in seq order; op->seq is set. The op's dependencies
   * (op->deps: ops on other streams, see kiln__dep_wait) must complete before it
   * starts. The backend calls kiln__op_complete(op, status) exactly once per op, in
   * seq order per stream, when the op is done or failed. Submission cannot fail: a
   * backend whose runtime refuses the enqueue completes the op with that error, still
   * in seq order. Ops of kind MARKER set op->timestamp_ns (monotonic clock) when they
   * complete if op->flags has KILN__OPF_TIMING. */
  void (*submit)(kiln__stream *stream, kiln__op *op);
  /* Optional, for decorators (the mock): called by kiln__op_begin on the thread about to
   * run `op` (a host backend's worker), before the core's own checks. May delay; returns
   * the status the op must complete with without running (SUCCESS: run it). A
   * decorator keeps its per-object state in stream->decor and op->decor (NULL until it
   * sets them; the inner backend never touches them). */
  kiln_status (*op_begin)(kiln__op *op);

  /* Optional: a thread is about to block until `op` completes: finish it natively (e.g.
   * wait for its event) and complete it and the ops before it on its stream, so the
   * wait does not hang on a driver callback's latency. The op is referenced by the
   * waiter. Never called with a timeout. */
  void (*op_wait)(kiln__op *op);
  /* Optional: the same for all work submitted to the stream so far. */
  void (*stream_wait)(kiln__stream *stream);
  /* Optional: make finished work visible without blocking (complete, in order, the ops
   * whose native work has ended). Called by queries and timed waits; a backend that
   * completes ops only when asked (no per-op driver callback) needs it. */
  void (*poll)(kiln__stream *stream);

  /* Optional: interop. Write the native object of a handle (its type by tag:
   * KILN__TAG_DEVICE, _CONTEXT, _STREAM, _BUFFER, _KERNEL) for `kind` into out; answer
   * KILN_ERROR_UNSUPPORTED when the kind does not apply. */
  kiln_status (*get_native)(uint32_t tag, void *handle, kiln_native_kind kind, void *out);
  /* Wrap a native buffer (buffer->bytes set, validated > 0) / in-order queue: check it
   * belongs to the context, take a reference, set buffer->wrapped / ->native. */
  kiln_status (*buffer_wrap)(kiln__buffer *buffer, kiln_native_kind kind, const void *native);
  kiln_status (*stream_wrap)(kiln__stream *stream, kiln_native_kind kind, const void *native);

  /* Optional (NULL: nothing to do). Device reset after a loss: release what the old
   * generation held (CUDA: reset the primary context). Called by kiln_device_reset
   * with the device's generation already bumped. */
  kiln_status (*device_reset)(kiln__device *device);
  /* Optional (NULL: the core's generic probe). Prove the device works after a reset:
   * run a tiny kernel or copy. Failure keeps the device lost. */
  kiln_status (*device_probe)(kiln__device *device);
} kiln__backend_ops;

/* The registry: one entry per backend, designated initialisers keyed by kind. */
extern const kiln__backend_ops kiln__cpu_backend;
extern const kiln__backend_ops kiln__mock_backend;
extern const kiln__backend_ops kiln__opencl_backend;
extern const kiln__backend_ops kiln__cuda_backend;

#endif
