/* SPDX-License-Identifier: MIT */
/* The backend contract: one ops table per backend, registered in registry.c.
 * The core has validated every argument before calling an op (handles alive and of
 * this backend, sizes within the buffer and the device's limits, kernel arguments
 * matching the signature), so backends trust their inputs and only report what their
 * runtime reports. Ops never print; they set error detail with kiln__error*(). */
#ifndef KILN_BACKEND_H
#define KILN_BACKEND_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"
#include "platform/platform.h"

/* This header is the whole of what a backend sees of the core: the views of the core's
 * objects (the fields a backend reads or fills; the core keeps its own state after
 * them, out of sight), the types of an operation, the core services a backend may
 * call, and the ops table. No file under src/backends includes another core header
 * (ctest packaging.layering). Threads: "any" means any thread, including a backend's
 * own (workers, driver callbacks); the core's locks are never held when it calls an
 * op unless the op's comment says so. */

struct kiln__backend_ops;

/* ================================================================ core services */

/* ---- host memory: every host allocation kiln makes goes through these (the
 * program's kiln_set_allocator; the test allocator fails them on demand). Any thread.
 * Free with the size (and alignment) given at allocation. */
void *kiln__alloc(size_t bytes);
void *kiln__calloc(size_t count, size_t size);
void *kiln__alloc_aligned(size_t bytes, size_t align);
void kiln__free(void *ptr, size_t bytes);
void kiln__free_aligned(void *ptr, size_t bytes, size_t align);

/* ---- errors and log. Fill the calling thread's error detail (kiln_last_error) and
 * return `status`; never allocate. An op reports failure this way and returns the
 * status; a worker thread's detail is not seen by the program (set the op's cause). */
kiln_status kiln__error(kiln_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* As kiln__error, with the runtime's native code and its name ("CL_OUT_OF_RESOURCES"). */
kiln_status kiln__error_native(kiln_status status, kiln_backend_kind backend, int64_t code,
                               const char *code_name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Replace the default suggestion of the error just set. */
void kiln__error_suggest(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log lines (KILN_LOG, or the program's callback). Any thread; ops never print. */
void kiln__log(kiln_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool kiln__log_enabled(kiln_log_level level);
/* Keep a compiler's whole log for kiln_last_build_log() (the calling thread's). */
void kiln__set_build_log(const char *log, size_t len);
/* Copy a string into a fixed buffer, always terminated. */
void kiln__strlcpy(char *dst, const char *src, size_t dst_bytes);

/* ---- public functions a backend defines (the mock's kiln_mock_*) start, as the
 * core's do, with KILN__API_ENTER. */
/* It records the function's name
 * and the caller's file:line (when called through a macro) for kiln_last_error(). */
void kiln__api_enter(const char *function, const char *file, int line);
#define KILN__API_ENTER() kiln__api_enter(__func__, NULL, 0)
/* The public function the calling thread is in (for op records). */
const char *kiln__api_name(void);
#define KILN__API_ENTER_AT(file, line) kiln__api_enter(__func__, (file), (line))
/* As KILN__API_ENTER_AT for a call that neither queues work nor waits (its time is no
 * API span of the trace): no clock read while a trace records. */
void kiln__api_enter_quick(const char *function, const char *file, int line);
#define KILN__API_ENTER_QUICK_AT(file, line) kiln__api_enter_quick(__func__, (file), (line))

/* ---- kernels: the device language a backend compiles the kiln dialect to (the core
 * rewrites the source for it before program_build). */
typedef enum kiln__dialect_target {
  KILN__TARGET_OPENCL = 0, /* OpenCL C 1.2 */
  KILN__TARGET_CUDA = 1,   /* CUDA C++ through NVRTC */
  KILN__TARGET_C = 2       /* C11 (GNU) for the host compiler: the CPU backend */
} kiln__dialect_target;

/* Feature levels of the dialect (docs/kernels.md, core/levels.h): what a program
 * declares with KILN_FEATURE_LEVEL(name) beyond the base level. */
typedef enum kiln__level {
  KILN__LEVEL_BASE = 0,          /* OpenCL C 1.2 semantics: every device */
  KILN__LEVEL_SCOPED_ATOMICS = 1 /* memory orders and scopes (work-group, device) */
} kiln__level;

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

/* ---- the compile cache (src/kcache). A folder of kiln's cache directory for a
 * runtime's own cache (PoCL's kernel and work-group-function cache): "<dir>/<name>",
 * created 0700 and checked like the directory; `kiln cache clear` empties it. false
 * (out untouched) when the cache is off or its directory was refused. Any thread. */
bool kiln__kcache_runtime_dir(const char *name, char *out, size_t out_bytes);

/* ================================================================ views */

/* Type tags (handle->tag), e.g. for get_native's `tag`. */
#define KILN__TAG_CONTEXT 0x4b435458u  /* KCTX */
#define KILN__TAG_STREAM 0x4b535452u   /* KSTR */
#define KILN__TAG_EVENT 0x4b45564eu    /* KEVN */
#define KILN__TAG_BUFFER 0x4b425546u   /* KBUF */
#define KILN__TAG_KERNEL 0x4b4b524eu   /* KKRN */
#define KILN__TAG_OP 0x4b4f5053u       /* KOPS */
#define KILN__TAG_PROGRAM 0x4b505247u  /* KPRG */
#define KILN__TAG_DEVICE 0x4b444556u   /* KDEV: devices are not in slabs; for get_native */
#define KILN__TAG_DEAD 0x80000000u     /* or-ed into the tag of a destroyed object */
#define KILN__TAG_INTERNAL 0x20000000u /* or-ed into internal objects' tags */

/* A public handle (kiln_device, kiln_stream, ...) as its view. */
#define KILN__VIEW(type, handle) ((type *)(void *)(handle))

/* Each object the core hands to a backend starts with its view: the core's object is
 * `union { view; struct { the same fields } }` followed by the core's own state, so a
 * view pointer is the object's address. A field list is written once, as a macro
 * taking the types of the pointers it holds (views here, the core's objects in
 * core.h). Backends read the fields their comments allow and write only those marked
 * "backend". */
#define KILN__HANDLE_FIELDS(CTX)                                                    \
  const struct kiln__backend_ops *ops; /* the dispatch table, first (ICD style) */  \
  _Atomic uint32_t tag;                /* KILN__TAG_*; | DEAD once destroyed */     \
  uint32_t generation;                 /* the device generation it was made in */   \
  CTX *ctx;                            /* its context */                            \
  uint32_t slot;                       /* core: its slab slot */                    \
  _Atomic uint32_t slot_gen;           /* core: bumped when the slot is released */ \
  _Atomic uint32_t free_next;          /* core: free-stack link */

struct kiln__context_view;
typedef struct kiln__handle_view {
  KILN__HANDLE_FIELDS(struct kiln__context_view)
} kiln__handle;

#define KILN__DEVICE_FIELDS                                                                \
  const struct kiln__backend_ops *ops;                                                     \
  kiln_device_props props; /* filled by the backend's probe (kiln__registry_add_device) */ \
  void *native;            /* backend: its per-device data */
typedef struct kiln__device_view {
  KILN__DEVICE_FIELDS
} kiln__device;

#define KILN__CONTEXT_FIELDS(H, DEV) \
  H h;                               \
  DEV *device;                       \
  void *native; /* backend: its context (cl_context, CUcontext) */
typedef struct kiln__context_view {
  KILN__CONTEXT_FIELDS(kiln__handle, kiln__device)
} kiln__context;

#define KILN__STREAM_FIELDS(H)                                                         \
  H h;                                                                                 \
  int priority;         /* kiln_stream_desc.priority (> 0: higher) */                  \
  void *native;         /* backend: its queue */                                       \
  void *decor;          /* backend: a decorator's own (the mock's), or NULL */         \
  int priority_applied; /* backend (stream_create): the priority it applied, in kiln's \
                           terms (0 when it does not honour one) */
typedef struct kiln__stream_view {
  KILN__STREAM_FIELDS(kiln__handle)
} kiln__stream;

#define KILN__BUFFER_FIELDS(H)                                   \
  H h;                                                           \
  size_t bytes;                                                  \
  void *native; /* backend: its storage (cpu: a host pointer) */ \
  bool wrapped; /* backend (buffer_wrap): not kiln's memory, never freed by kiln */
typedef struct kiln__buffer_view {
  KILN__BUFFER_FIELDS(kiln__handle)
} kiln__buffer;

#define KILN__PROGRAM_FIELDS(H)     \
  H h;                              \
  char name[64]; /* for messages */ \
  void *native;  /* backend: its compiled program */
typedef struct kiln__program_view {
  KILN__PROGRAM_FIELDS(kiln__handle)
} kiln__program;

#define KILN__KERNEL_FIELDS(H)                                                         \
  H h;                                                                                 \
  char name[64];                                                                       \
  kiln_native_fn fn; /* native kernels */                                              \
  void *user;                                                                          \
  uint32_t param_count;                                                                \
  kiln_param params[KILN_MAX_KERNEL_ARGS];                                             \
  bool source; /* from a program (dialect source) */                                   \
  /* takes kiln's three hidden global-size parameters after its own: every source      \
   * kernel, except on OpenCL one that never reads kiln_global_size() (prelude.h) */   \
  bool hidden_sizes;                                                                   \
  void *native; /* backend */                                                          \
  /* backend, at kernel creation (0: only the device's apply); the core checks every   \
   * launch against them at the call: */                                               \
  size_t max_group_size;       /* work-items per group (CUDA MAX_THREADS_PER_BLOCK, */ \
                               /* CL_KERNEL_WORK_GROUP_SIZE) */                        \
  uint64_t static_local_bytes; /* local memory it declares itself */                   \
  size_t local_align_bytes;    /* each local argument's part starts at a multiple */
typedef struct kiln__kernel_view {
  KILN__KERNEL_FIELDS(kiln__handle)
} kiln__kernel;

/* ---- operations */

/* The first failure behind a failed op: where it was queued and the runtime's own
 * code. A backend failing an op sets backend, native_code, native_name and
 * native_call (static strings) before kiln__op_complete; the core fills the rest. */
typedef struct kiln__cause {
  kiln_status status; /* 0 when none */
  const char *api;    /* public function that queued it */
  const char *file;   /* its caller's file:line when known */
  int line;
  kiln_backend_kind backend; /* the runtime's own code for the failure, when a backend */
  int64_t native_code;       /* gave one (set before kiln__op_complete) */
  const char *native_name;   /* static string, e.g. "CL_OUT_OF_RESOURCES" */
  const char *native_call;   /* static string: the runtime call that failed, or NULL */
} kiln__cause;

/* (stream, uid, seq): "the op number seq on stream". uid tells a stream apart from a
 * later one reusing its slot: a dependency on a dead stream is satisfied, since a
 * stream is destroyed only once idle. */
typedef struct kiln__dep {
  struct kiln__stream_view *stream;
  uint64_t uid;
  uint64_t seq;
} kiln__dep;

/* Block until the op a dependency names has completed (or its stream is gone).
 * timeout_ns UINT64_MAX: none; SUCCESS or TIMEOUT. Any thread. */
kiln_status kiln__dep_wait(const kiln__dep *dep, uint64_t timeout_ns);
bool kiln__dep_done(const kiln__dep *dep);
/* For backends that turn a dependency into a native wait (an event of the other
 * stream): `listed` is the other stream's own counter, the seq of the last op it has
 * handed to its runtime (stored after the enqueue). Spins, then yields, while the
 * other stream is between assigning dep->seq and listing it (a short window: a
 * dependency only names an op whose bookkeeping is done). Returns true when the op is
 * already complete (nothing to wait for natively), false once it is listed. Any
 * thread but the other stream's submitter. */
bool kiln__dep_await_listed(const kiln__dep *dep, const _Atomic uint64_t *listed);

/* v rounded up to a multiple of m (m 0: v). */
static inline size_t kiln__round_up(size_t v, size_t m) {
  return m ? (v + m - 1) / m * m : v;
}

typedef enum kiln__op_kind {
  KILN__OP_WRITE = 1,
  KILN__OP_READ,
  KILN__OP_COPY,
  KILN__OP_FILL,
  KILN__OP_LAUNCH,
  KILN__OP_MARKER,
  KILN__OP_WAIT,
  KILN__OP_CALLBACK
} kiln__op_kind;

/* op->flags (read-only for backends). */
enum {
  KILN__OPF_TOKEN = 1u << 0,   /* a token refers to the op and was not yet consumed */
  KILN__OPF_TIMING = 1u << 1,  /* a marker that records a timestamp */
  KILN__OPF_WAITING = 1u << 2, /* a thread is waiting on the token */
  KILN__OPF_BLOCKING = 1u << 3 /* a blocking call: its thread waits right after submit, so
                                  a backend may run it synchronously in submit */
};

/* A launch argument as the op holds it. */
typedef struct kiln__launch_arg {
  kiln_arg_kind kind;
  bool reads, writes; /* buffers: from the parameter's access mode */
  struct kiln__buffer_view *buffer;
  size_t offset; /* into the op's scalar or local storage */
  size_t bytes;
} kiln__launch_arg;

/* Work-items one launch may have in all (each dimension rounded up to its local size):
 * linear ids and work-group counts stay within size_t on every backend. */
#define KILN__MAX_TOTAL_ITEMS (SIZE_MAX / 2)
#define KILN__INLINE_DEPS 4
#define KILN__INLINE_ARGS 8
#define KILN__INLINE_SCALAR_BYTES 64

/* An operation, as the backend receives it in submit. Every field but u and deps_inline
 * is set when the op is made (the backend's own fields to zero); the core fills kind,
 * stream, seq, flags, deps and u. The order keeps what a worker reads for every op in
 * the first lines (the header and queue line, then u's first fields), apart from what
 * only a failure, a dependency or device timing touches (after u): each line both the
 * submitting and the running thread touch moves between their cores for every op. */
#define KILN__OP_FIELDS(H, STREAM, BUFFER, KERNEL, OP)                                         \
  H h;                                                                                         \
  kiln__op_kind kind;                                                                          \
  _Atomic uint32_t flags; /* KILN__OPF_* */                                                    \
  STREAM *stream;                                                                              \
  uint64_t seq;     /* its number on the stream (1, 2, ...) */                                 \
  OP *_Atomic next; /* backend: its queue link */                                              \
  uint32_t dep_count, dep_cap;                                                                 \
  kiln__dep *deps;           /* ops of other streams that must complete before it starts */    \
  void *native;              /* backend: its per-op object (OpenCL: its cl_event) */           \
  void *native_aux;          /* backend: a second one (CUDA: a staged transfer's record) */    \
  void *decor;               /* backend: a decorator's own (the mock's), or NULL */            \
  _Atomic int native_done;   /* backend: completing out of order, finished */                  \
  kiln_status native_status; /* backend: and how (written before native_done) */               \
  uint64_t timestamp_ns;     /* backend: a timing marker's completion (monotonic clock) */     \
  union {                                                                                      \
    struct {                                                                                   \
      BUFFER *buffer;                                                                          \
      size_t offset, bytes;                                                                    \
      const void *src;                                                                         \
    } write;                                                                                   \
    struct {                                                                                   \
      BUFFER *buffer;                                                                          \
      size_t offset, bytes;                                                                    \
      void *dst;                                                                               \
    } read;                                                                                    \
    struct {                                                                                   \
      BUFFER *dst, *src;                                                                       \
      size_t dst_offset, src_offset, bytes;                                                    \
    } copy;                                                                                    \
    struct {                                                                                   \
      BUFFER *buffer;                                                                          \
      size_t offset, bytes, pattern_bytes;                                                     \
      unsigned char pattern[128];                                                              \
    } fill;                                                                                    \
    struct {                                                                                   \
      KERNEL *kernel;                                                                          \
      kiln_range range;                                                                        \
      uint32_t arg_count;                                                                      \
      kiln__launch_arg *args;                                                                  \
      unsigned char *storage; /* scalars, then local memory */                                 \
      size_t storage_bytes;                                                                    \
      kiln__launch_arg args_inline[KILN__INLINE_ARGS];                                         \
      unsigned char storage_inline[KILN__INLINE_SCALAR_BYTES];                                 \
    } launch;                                                                                  \
    struct {                                                                                   \
      struct kiln__callback_item *item; /* core */                                             \
    } callback;                                                                                \
    struct {                                                                                   \
      OP *marker; /* the event's marker (ref held) */                                          \
    } wait;                                                                                    \
  } u;                                                                                         \
  kiln__cause cause; /* backend: the native part of a failure */                               \
  kiln__dep deps_inline[KILN__INLINE_DEPS];                                                    \
  /* backend, optional: the op's span on the device, on the host's monotonic clock (ns),       \
   * set before kiln__op_complete for an op submitted while kiln__trace_device_time()          \
   * said so; 0 (untouched): the trace shows only the op's observed span */                    \
  uint64_t device_begin_ns, device_end_ns;                                                     \
  uint64_t device_error_ns; /* backend: how far off that mapping onto the host clock may be */ \
  void *native_timing;      /* backend: its device-timing record (CUDA: the event before it) */
typedef struct kiln__op_view {
  KILN__OP_FIELDS(kiln__handle, kiln__stream, kiln__buffer, kiln__kernel, struct kiln__op_view)
} kiln__op;

/* ---- services on operations (any thread unless said) */

/* Whether a trace records now (src/trace), so a device backend should time the ops it
 * submits on the device and fill their device_begin_ns/device_end_ns (docs/
 * observability.md, "Device time"). One relaxed load; call it at submit. Backends that
 * never fill them leave the trace its observed spans. */
bool kiln__trace_device_time(void);
/* A host backend's worker found its queue empty (the CPU backend's worker_main): in a
 * trace ring, the next op it begins does not start where its last one ended. Cheap:
 * one thread-local store. */
void kiln__trace_worker_idle(void);

/* Called by a backend that runs ops itself (host backends) on the thread about to run
 * `op`, after its dependencies: the status the op must complete with without running
 * (DEVICE_LOST, a decorator's injected failure, DEPENDENCY_FAILED when an input buffer
 * or awaited event failed), or SUCCESS to run it. */
kiln_status kiln__op_begin(kiln__op *op);
/* Exactly once per submitted op, in seq order per stream; after it the backend must
 * not touch the op unless it holds a reference. */
void kiln__op_complete(kiln__op *op, kiln_status status);
/* A reference keeps the op's memory and fields valid past its completion. */
void kiln__op_ref(kiln__op *op);
void kiln__op_unref(kiln__op *op);
/* A host backend's worker: batch the releases of completed ops between begin and
 * flush (a worker must flush before it sleeps or exits). */
void kiln__slab_defer_begin(void);
void kiln__slab_defer_flush(void);

/* ---- devices and host memory */

/* From the backend's probe only (single-threaded): add a device; props->index is
 * assigned; *out (may be NULL) receives it. */
kiln_status kiln__registry_add_device(const struct kiln__backend_ops *ops,
                                      const kiln_device_props *props, void *native,
                                      kiln__device **out);
/* A sticky error: the device is lost until kiln_device_reset(). The first `why` is
 * kept and named by every refusal. Any thread. */
void kiln__device_mark_lost(kiln__device *device, const char *why);
/* Whether [ptr, ptr + bytes) lies inside one kiln_host_alloc'ed or registered block of
 * the context (one atomic load when it has none). Any thread. */
bool kiln__host_pinned(kiln__context *ctx, const void *ptr, size_t bytes);
/* kiln_host_alloc's memory where a backend has no page-locking: page-aligned, from
 * kiln's allocator; freed with the same size. */
kiln_status kiln__host_alloc_plain(size_t bytes, void **ptr);
void kiln__host_free_plain(void *ptr, size_t bytes);

/* ================================================================ the ops table */

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
  /* Optional (NULL: the base level only). Whether `device` offers feature `level` (>
   * KILN__LEVEL_BASE), asked at kiln_program_create of a source that declares it, before
   * the rewrite. SUCCESS: *options receives the compiler options the level needs (a
   * static string, "" for none), which the core appends to the program's. Otherwise
   * KILN_ERROR_UNSUPPORTED with a message naming the level, the device and what it
   * lacks. May call the runtime (device queries); any thread. */
  kiln_status (*level_check)(const kiln__device *device, kiln__level level, const char **options);
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
  /* Optional (NULL: the caller's local size, else 1 in each dimension). The work-group
   * size this backend runs a launch of `kernel` over `range` with (checked as for a
   * launch) into local[3] (1 in unused dimensions), and how it was chosen into why
   * (NUL-terminated, a sentence). Must not block or call the runtime. */
  void (*launch_config)(const kiln__kernel *kernel, const kiln_range *range, size_t local[3],
                        char *why, size_t why_bytes);

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

  /* Optional, for the device pool (src/pool; NULL: the backend cannot carve buffers, and
   * the pool gives every block its own buffer_create). Make `view` a buffer for
   * [offset, offset + view->bytes) of `parent`, sharing its storage: view->h is set as
   * for a buffer of the parent's context, view->bytes > 0, offset a multiple of the
   * device's mem_align_bytes, the range inside the parent (made by buffer_create, not
   * wrapped). Set view->native to what every op takes as a buffer (cpu: a host pointer
   * inside the parent's; CUDA: a CUdeviceptr inside; OpenCL: a sub-buffer) and *host to
   * the view's host address when the process may touch the device's memory directly
   * (cpu), else NULL. API threads, under the pool's lock. */
  kiln_status (*buffer_view_create)(kiln__buffer *view, kiln__buffer *parent, size_t offset,
                                    void **host);
  /* Release a view made by buffer_view_create, before its parent is destroyed. Queued work
   * may still use it: the backend keeps what it needs alive until that work is done
   * (OpenCL retains a sub-buffer for its commands; pointers need nothing). */
  void (*buffer_view_destroy)(kiln__buffer *view);
  /* ---- the compile cache (src/kcache): optional, all three or none (NULL: programs
   * of this backend are always compiled). program_build's own behaviour is unchanged.
   * program_cache_id: every fact besides the source and the caller's options that the
   * compiled result depends on, as one line into out (NUL-terminated): the device
   * (OpenCL: platform, device and driver version; CUDA: compute capability, the target
   * kiln picks and, when that is PTX, the driver version), the compiler and its version,
   * every flag the backend adds. The core hashes it into the key (SHA-256) with the
   * rewritten source, the options, the backend's name and the cache format. Must not
   * compile; may load the compiler (NVRTC). `program` has its name and context. */
  kiln_status (*program_cache_id)(kiln__program *program, const char *options, char *out,
                                  size_t out_bytes);
  /* After a successful program_build: the program's binary, which program_import can
   * load on a device with the same cache id, into *binary (kiln__alloc'd, *bytes; the
   * core frees it with kiln__free). KILN_ERROR_UNSUPPORTED: this program is not to be
   * cached (e.g. CUDA fell back to PTX from a CUBIN target); nothing is stored. */
  kiln_status (*program_export)(kiln__program *program, void **binary, size_t *bytes);
  /* Fill program->native from a binary program_export made (the core has checked its
   * length and checksum, not its contents: a binary the runtime refuses is an error,
   * after which the core deletes the entry and compiles). `options` are the build's. */
  kiln_status (*program_import)(kiln__program *program, const void *binary, size_t bytes,
                                const char *options);
  /* Optional (NULL: a second build of the same key imports the binary again). Make
   * program->native another reference to from->native: a program of the same context
   * built from the same key, alive (the core holds its lock over the call, so it cannot
   * be destroyed meanwhile). Afterwards program_destroy of either leaves the other
   * working. Must not block. */
  kiln_status (*program_share)(kiln__program *program, kiln__program *from);
  /* Optional (NULL: the backend completes every op on its own, as host backends and
   * CUDA do). Something will learn of `op`'s completion without a thread blocked on it
   * (a completion callback, a descriptor or a future watches it; core/notify.c): make
   * kiln__op_complete(op) come without a wait or a poll, e.g. through a completion
   * callback on an event covering it; op NULL: the same for every op submitted to the
   * stream so far (a descriptor made while work is pending). Called after submit, from
   * any thread but a backend's own, without core locks held, with a reference on the
   * op held for the call; possibly more than once per op, and when the op has
   * completed meanwhile. */
  void (*op_notify)(kiln__stream *stream, kiln__op *op);
} kiln__backend_ops;

/* Backends are registered in core/registry.c (KILN__BACKENDS, one line each). The CPU
 * backend's table is visible to decorators (the mock runs ops through it). */
extern const kiln__backend_ops kiln__cpu_backend;

#endif
