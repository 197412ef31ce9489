/* SPDX-License-Identifier: MIT */
/* The core's internal objects and services: handle header and validation, slabs,
 * errors and logging, host allocation, operations and tokens, hazard tracking.
 * Only src/core and the backends include this; the public API is include/kiln. */
#ifndef KILN_CORE_H
#define KILN_CORE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"
#include "platform/platform.h"

#define KILN__HIDDEN __attribute__((visibility("hidden")))

struct kiln__backend_ops;

/* ---------------------------------------------------------------- host memory */
/* Every host allocation kiln makes goes through these (kiln_set_allocator). */
void *kiln__alloc(size_t bytes);
void *kiln__calloc(size_t count, size_t size);
void *kiln__alloc_aligned(size_t bytes, size_t align);
void kiln__free(void *ptr, size_t bytes);
void kiln__free_aligned(void *ptr, size_t bytes, size_t align);
/* Number of live contexts (kiln_set_allocator is refused while > 0). */
extern _Atomic int kiln__live_contexts;

/* ---------------------------------------------------------------- errors, log */
/* Every public function starts with KILN__API_ENTER: it records the function's name
 * and the caller's file:line (when called through a macro) for kiln_last_error(). */
void kiln__api_enter(const char *function, const char *file, int line);
#define KILN__API_ENTER() kiln__api_enter(__func__, NULL, 0)
/* The public function the calling thread is in (for op records). */
const char *kiln__api_name(void);
#define KILN__API_ENTER_AT(file, line) kiln__api_enter(__func__, (file), (line))

/* Fill the thread's error detail and return `status`. Never allocates. */
kiln_status kiln__error(kiln_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* As kiln__error, with the backend's native code and its name. */
kiln_status kiln__error_native(kiln_status status, kiln_backend_kind backend, int64_t code,
                               const char *code_name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Replace the default suggestion of the error just set. */
void kiln__error_suggest(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void kiln__log(kiln_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool kiln__log_enabled(kiln_log_level level);

/* A user's value quoted for a message: its first KILN__QUOTE_CHARS bytes between single
 * quotes (not cutting a UTF-8 sequence; control characters shown as '?'), then "..."
 * and its whole length when it is longer, so that a long value cannot push the reason
 * out of a message's fixed buffer. Writes into out, returns it. */
#define KILN__QUOTE_CHARS 64
#define KILN__QUOTE_BYTES (KILN__QUOTE_CHARS + 48)
const char *kiln__quote(char out[KILN__QUOTE_BYTES], const char *value, size_t len);

/* Copy a string into a fixed buffer, always terminated. */
void kiln__strlcpy(char *dst, const char *src, size_t dst_bytes);

/* ---------------------------------------------------------------- handles */
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

/* Common header of every handle: dispatch pointer first (ICD style). */
typedef struct kiln__handle {
  const struct kiln__backend_ops *ops;
  _Atomic uint32_t tag; /* type tag; | KILN__TAG_DEAD once destroyed; 0 never used */
  uint32_t generation;  /* device generation at creation */
  struct kiln_context_s *ctx;
  uint32_t slot;              /* index in its slab */
  _Atomic uint32_t slot_gen;  /* bumped each time the slot is released */
  _Atomic uint32_t free_next; /* slab free stack link (index + 1, 0 = end) */
} kiln__handle;
_Static_assert(sizeof(kiln__handle) % 8 == 0, "slab clearing works in 8-byte words");

/* Validate a handle argument of a public call: NULL, destroyed or
 * of another type -> INVALID_HANDLE, of an older device generation -> DEVICE_LOST. */
kiln_status kiln__check_handle(const void *handle, uint32_t tag, const char *what);
/* Validate only liveness and type (destroy of an old generation still succeeds). */
kiln_status kiln__check_alive(const void *handle, uint32_t tag, const char *what);

/* ---------------------------------------------------------------- slabs */
/* Per-type slab of fixed-size elements, each starting with a kiln__handle. Memory is
 * freed only by kiln__slab_destroy (with the context), so reading the header of a
 * destroyed handle is safe, and elements are found by index without a lock (a fixed
 * two-level table: directories of chunk pointers, each written once). Freed slots are
 * reused either in FIFO order after `quarantine` others (handles; under the mutex) or,
 * with quarantine 0, from a lock-free LIFO stack (ops: the hot path; tokens detect
 * reuse through slot_gen). */
#define KILN__SLAB_CHUNK 64u /* elements per chunk */
#define KILN__SLAB_DIR 256u  /* chunks per directory */
#define KILN__SLAB_DIRS 64u  /* directories: at most 64 * 256 * 64 = 1M slots */
#define KILN__SLAB_MAX_SLOTS (KILN__SLAB_CHUNK * KILN__SLAB_DIR * KILN__SLAB_DIRS)

typedef struct kiln__slab {
  pthread_mutex_t lock; /* growth; FIFO mode's queue */
  size_t elem_bytes;
  size_t zero_bytes; /* bytes after the header cleared on alloc */
  uint32_t tag;
  uint32_t quarantine;
  unsigned char *_Atomic *_Atomic dirs[KILN__SLAB_DIRS];
  _Atomic uint32_t used; /* slots ever handed out: indices [0, used) exist */
  uint32_t chunk_count;
  uint32_t *fifo; /* FIFO mode: free slot indices, capacity fifo_cap */
  uint32_t fifo_cap, fifo_head, fifo_count;
  _Atomic uint64_t free_top; /* LIFO mode: (ABA counter << 32) | (index + 1) */
  uint32_t gen_seed;
} kiln__slab;

/* zero_bytes: how much of each element after the kiln__handle header alloc clears
 * (SIZE_MAX: all of it). */
void kiln__slab_init(kiln__slab *slab, size_t elem_bytes, size_t zero_bytes, uint32_t tag,
                     uint32_t quarantine);
void kiln__slab_destroy(kiln__slab *slab);
/* Element with header slot/slot_gen set, the rest of the header as it was (tag dead
 * or 0; the caller fills ops/generation/ctx and sets the tag last). */
kiln_status kiln__slab_alloc(kiln__slab *slab, void **elem);
/* Mark dead (tag | DEAD), bump slot_gen, make the slot reusable. */
void kiln__slab_release(kiln__slab *slab, void *elem);
/* Element at index, or NULL when the index was never handed out. Lock-free. */
void *kiln__slab_at(kiln__slab *slab, uint32_t index);
/* Element at index if its slot generation is `slot_gen`, or NULL. Lock-free. */
void *kiln__slab_at_gen(kiln__slab *slab, uint32_t index, uint32_t slot_gen);
/* Batch the LIFO releases of the calling thread (a host backend's worker): slots freed
 * between begin and flush reach the shared free stack in one step every 64 frees, and
 * at each flush. A thread must flush before it sleeps or exits. */
void kiln__slab_defer_begin(void);
void kiln__slab_defer_flush(void);
/* Call fn on each element whose tag is `tag` exactly (alive). */
void kiln__slab_each_alive(kiln__slab *slab, void (*fn)(void *elem, void *user), void *user);

/* ---------------------------------------------------------------- devices */
typedef struct kiln_device_s {
  const struct kiln__backend_ops *ops;
  kiln_device_props props;
  _Atomic unsigned generation;
  _Atomic int lost;
  _Atomic int lost_claimed; /* the thread that marks it lost writes lost_why first */
  char lost_why[192];       /* why it was lost (the runtime's error), once lost */
  void *native;             /* backend's per-device data */
} kiln__device;

kiln_status kiln__registry_init(void);
/* A backend saw a sticky error: the device is lost until kiln_device_reset(). The
 * first `why` is kept: refusals name it. */
void kiln__device_mark_lost(kiln__device *device, const char *why);
/* Why the device is lost ("" when not known); valid once `lost` is seen set. */
const char *kiln__device_lost_why(const kiln__device *device);
/* Called by a backend's probe to add a device; props->index is assigned. *out (may be
 * NULL) receives the device. */
kiln_status kiln__registry_add_device(const struct kiln__backend_ops *ops,
                                      const kiln_device_props *props, void *native,
                                      kiln__device **out);

/* ---------------------------------------------------------------- failures */
/* The first failure behind a failed op, buffer or event: where it was queued. */
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

/* ---------------------------------------------------------------- streams */
/* (stream, uid, seq): "the op number seq on stream". uid tells a stream apart from a
 * later one reusing its slot: a dependency on a dead stream is satisfied, since a
 * stream is destroyed only once idle. */
typedef struct kiln__dep {
  struct kiln_stream_s *stream;
  uint64_t uid;
  uint64_t seq;
} kiln__dep;

typedef struct kiln_stream_s {
  kiln__handle h;
  _Atomic uint64_t uid;        /* 0 once destroyed */
  pthread_mutex_t submit_lock; /* seq order == order the backend receives ops */
  _Atomic uint64_t submitted;  /* seq of the last op submitted */
  _Atomic uint64_t completed;  /* seq of the last op completed (in order) */
  pthread_mutex_t wait_lock;
  pthread_cond_t wait_cond;
  _Atomic int waiters;
  _Atomic int first_error;       /* first unreported failure (kiln_status); written
                                    under fail_lock with first_error_seq */
  uint64_t first_error_seq;      /* the op that failed (under fail_lock) */
  kiln__cause first_error_cause; /* and why (under fail_lock) */
  int internal;                  /* the context's default stream */
  int priority;
  pthread_mutex_t fail_lock; /* marker_cause */
  kiln__cause marker_cause;  /* first failure since the last marker */
  void *native;              /* backend's stream */
  void *decor;               /* a decorating backend's own (the mock's), or NULL */
} kiln__stream;

/* Block until the op numbered seq on stream has completed (or the stream with uid is
 * gone). timeout_ns = UINT64_MAX for none; returns SUCCESS or TIMEOUT. */
kiln_status kiln__dep_wait(const kiln__dep *dep, uint64_t timeout_ns);
bool kiln__dep_done(const kiln__dep *dep);

/* ---------------------------------------------------------------- operations */
typedef struct kiln__callback_item {
  kiln_callback_fn fn;
  void *user;
  kiln_status status;
  struct kiln__callback_item *next;
} kiln__callback_item;

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

enum {
  KILN__OPF_TOKEN = 1u << 0,   /* a token refers to the op and was not yet consumed */
  KILN__OPF_TIMING = 1u << 1,  /* a marker that records a timestamp */
  KILN__OPF_WAITING = 1u << 2, /* a thread is waiting on the token */
  KILN__OPF_BLOCKING = 1u << 3 /* a blocking call: its thread waits right after submit, so
                                  a backend may run it synchronously in submit */
};

typedef struct kiln__launch_arg {
  kiln_arg_kind kind;
  bool reads, writes; /* buffers: from the parameter's access mode */
  struct kiln_buffer_s *buffer;
  size_t offset; /* into the op's scalar or local storage */
  size_t bytes;
} kiln__launch_arg;

/* Work-items one launch may have in all (each dimension rounded up to its local size):
 * linear ids and work-group counts stay within size_t on every backend. */
#define KILN__MAX_TOTAL_ITEMS (SIZE_MAX / 2)
#define KILN__INLINE_DEPS 4
#define KILN__INLINE_ARGS 8
#define KILN__INLINE_SCALAR_BYTES 64

typedef struct kiln__op {
  kiln__handle h;
  kiln__op_kind kind;
  struct kiln_stream_s *stream;
  uint64_t seq;
  _Atomic int refs;
  _Atomic uint32_t flags;
  _Atomic int done;
  kiln_status status;
  kiln__cause cause; /* of a failed op: the first failure behind it */
  uint64_t timestamp_ns;
  const char *api; /* public function that made it */
  const char *file;
  int line;
  const void *host_ptr; /* host memory of an _async read/write (guarded) */
  size_t host_bytes;
  void *native;                  /* backend's per-op object (OpenCL: its cl_event) */
  void *native_aux;              /* a second one (CUDA: a staged transfer's record) */
  void *decor;                   /* a decorating backend's own (the mock's), or NULL */
  _Atomic int native_done;       /* backends completing out of order: finished */
  kiln_status native_status;     /* and how (written before native_done) */
  struct kiln__op *_Atomic next; /* backend queue link */
  uint32_t dep_count, dep_cap;
  kiln__dep *deps;
  kiln__dep deps_inline[KILN__INLINE_DEPS];
  union {
    struct {
      struct kiln_buffer_s *buffer;
      size_t offset, bytes;
      const void *src;
    } write;
    struct {
      struct kiln_buffer_s *buffer;
      size_t offset, bytes;
      void *dst;
    } read;
    struct {
      struct kiln_buffer_s *dst, *src;
      size_t dst_offset, src_offset, bytes;
    } copy;
    struct {
      struct kiln_buffer_s *buffer;
      size_t offset, bytes, pattern_bytes;
      unsigned char pattern[128];
    } fill;
    struct {
      struct kiln_kernel_s *kernel;
      kiln_range range;
      uint32_t arg_count;
      kiln__launch_arg *args;
      unsigned char *storage; /* scalars, then local memory */
      size_t storage_bytes;
      kiln__launch_arg args_inline[KILN__INLINE_ARGS];
      unsigned char storage_inline[KILN__INLINE_SCALAR_BYTES];
    } launch;
    struct {
      kiln__callback_item *item; /* allocated at add_callback, posted at completion */
    } callback;
    struct {
      struct kiln__op *marker; /* the event's marker (ref held) */
    } wait;
  } u;
  /* Outside the part cleared at reuse (after u): the last op of this slot whose token
   * its stream's destroy released, so a late wait of that token can say what became of
   * it. Written and read under the context's lock; orphan_gen 0: none. */
  uint32_t orphan_gen; /* its slot generation (the token's) */
  kiln_status orphan_status;
  const char *orphan_api, *orphan_file;
  int orphan_line;
} kiln__op;

/* Called by a backend that executes ops itself (host backends) just before running an
 * op: returns the status the op must complete with *without running* (DEVICE_LOST,
 * an injected fault, DEPENDENCY_FAILED when an input buffer or awaited event failed),
 * or SUCCESS to run it. */
kiln_status kiln__op_begin(kiln__op *op);
/* Called by the backend exactly once per submitted op, in seq order per stream, from
 * any thread; after it the backend must not touch the op. */
void kiln__op_complete(kiln__op *op, kiln_status status);
void kiln__op_unref(kiln__op *op);

/* ---------------------------------------------------------------- buffers */
typedef struct kiln_buffer_s {
  kiln__handle h;
  size_t bytes;
  void *native; /* backend storage (CPU: host pointer) */
  bool wrapped; /* made by kiln_buffer_wrap_native: not kiln's memory */
  char label[48];
  _Atomic int failed;     /* a failed op wrote it: readers fail too */
  kiln__cause fail_cause; /* under hazard_lock */
  pthread_mutex_t hazard_lock;
  kiln__dep last_write; /* stream NULL when none */
  uint32_t reader_count, reader_cap;
  kiln__dep *readers; /* one per stream, since the last write */
  kiln__dep readers_inline[4];
} kiln__buffer;

/* ---------------------------------------------------------------- kernels */
typedef struct kiln_kernel_s {
  kiln__handle h;
  char name[64];
  kiln_native_fn fn; /* native kernels */
  void *user;
  uint32_t param_count;
  kiln_param params[KILN_MAX_KERNEL_ARGS];
  struct kiln_program_s *program; /* source kernels (the program may be destroyed first) */
  bool source;                    /* takes kiln's hidden global-size parameters */
  void *native;
  /* Limits of this kernel, filled by the backend's kernel_create(_native) (0: only the
   * device's apply); the core checks every launch against them at the call. */
  size_t max_group_size;       /* work-items per group it can run with (CUDA
                                  MAX_THREADS_PER_BLOCK, CL_KERNEL_WORK_GROUP_SIZE) */
  uint64_t static_local_bytes; /* local memory it declares itself */
  size_t local_align_bytes;    /* each local argument's part starts at a multiple of this */
} kiln__kernel;

/* ---------------------------------------------------------------- programs */
struct kiln__kfunc;
typedef struct kiln_program_s {
  kiln__handle h;
  char name[64];
  size_t func_count;
  struct kiln__kfunc *funcs; /* parsed signatures (kiln__alloc) */
  void *native;
} kiln__program;

/* Keep the whole compiler log for kiln_last_build_log() (thread-local; grown with the
 * C library's allocator on the compile path, marked truncated if it cannot grow). */
void kiln__set_build_log(const char *log, size_t len);
/* Release a program (backend part, signatures, slot). */
void kiln__program_free(kiln__program *program);

/* Free a kernel no queued launch refers to (backend part, then the slot). */
void kiln__kernel_free(kiln__kernel *kernel);

/* ---------------------------------------------------------------- events */
typedef struct kiln_event_s {
  kiln__handle h;
  unsigned flags;
  pthread_mutex_t lock;
  kiln__op *marker; /* ref held; NULL when never recorded */
} kiln__event;

/* ---------------------------------------------------------------- contexts */
typedef struct kiln_context_s {
  kiln__handle h;
  kiln__device *device;
  uint32_t index; /* in the context table */
  void *native;
  kiln__slab streams, events, buffers, kernels, programs, ops;
  pthread_mutex_t lock; /* default stream and callback thread creation */
  kiln__stream *default_stream;
  /* callback thread */
  pthread_mutex_t cb_lock;
  pthread_cond_t cb_cond;
  kiln__callback_item *cb_head, *cb_tail;
  int cb_running, cb_stop, cb_busy;
  pthread_t cb_thread;
  kiln__callback_item cb_now; /* the callback running while cb_busy (fn, user) */
  uint64_t cb_started_ns;     /* when it started */
  _Atomic uint64_t next_stream_uid;
  _Atomic uint64_t stat_ops, stat_cross_deps, stat_tokens_forgotten;
  /* kiln_host_alloc blocks, sorted by base (host.c) */
  pthread_mutex_t host_lock;
  struct kiln__host_block *host;
  size_t host_cap;
  _Atomic size_t host_count;
} kiln__context;

#define KILN__MAX_CONTEXTS 1024u
kiln__context *kiln__context_at(uint32_t index);
/* Queue a completion callback (allocated by the caller) on the context's callback
 * thread; never fails. */
void kiln__callback_post(kiln__context *ctx, kiln__callback_item *item);
kiln_status kiln__callback_thread_start(kiln__context *ctx);
kiln_status kiln__default_stream(kiln__context *ctx, kiln__stream **stream);
/* Destroy a stream (core part; shared by the public destroy and context teardown). */
void kiln__stream_teardown(kiln__stream *stream);
/* Report the stream's forgotten tokens and drop them. */
void kiln__report_forgotten_tokens(kiln__context *ctx, kiln__stream *stream);

/* ---------------------------------------------------------------- pinned host memory */
typedef struct kiln__host_block {
  uintptr_t base;
  size_t bytes;
  void *native;    /* the backend's record of the block */
  bool registered; /* kiln_host_register's (the program's memory), else kiln_host_alloc's */
} kiln__host_block;
/* Whether [ptr, ptr + bytes) lies inside one block of ctx, kiln_host_alloc'ed or
 * registered (cheap when the context has none: one atomic load). */
bool kiln__host_pinned(kiln__context *ctx, const void *ptr, size_t bytes);
/* kiln_host_alloc's memory where the backend has no page-locking: page-aligned, from
 * kiln's allocator; freed with the same size. */
kiln_status kiln__host_alloc_plain(size_t bytes, void **ptr);
void kiln__host_free_plain(void *ptr, size_t bytes);
/* Free every block left at context destroy (after every stream is gone). */
void kiln__host_teardown(kiln__context *ctx);

/* ---------------------------------------------------------------- host-range guard */
/* In AddressSanitizer builds: poison the host range of an _async read/write from its
 * submission until a wait observes its completion (guard.c). No-ops otherwise. */
#if defined(__SANITIZE_ADDRESS__)
void kiln__guard_add(const kiln__stream *stream, uint64_t seq, const struct kiln_buffer_s *buffer,
                     const void *ptr, size_t bytes);
void kiln__guard_release_op(const kiln__stream *stream, uint64_t uid, uint64_t seq);
void kiln__guard_release_upto(const kiln__stream *stream, uint64_t uid, uint64_t seq);
void kiln__guard_release_buffer(const struct kiln_buffer_s *buffer);
void kiln__guard_release_context(const kiln__context *ctx);
#else
#define kiln__guard_add(stream, seq, buffer, ptr, bytes) \
  ((void)(stream), (void)(seq), (void)(buffer), (void)(ptr), (void)(bytes))
#define kiln__guard_release_buffer(buffer) ((void)(buffer))
#define kiln__guard_release_op(stream, uid, seq) ((void)(stream), (void)(uid), (void)(seq))
#define kiln__guard_release_upto(stream, uid, seq) ((void)(stream), (void)(uid), (void)(seq))
#define kiln__guard_release_context(ctx) ((void)(ctx))
#endif

/* ---------------------------------------------------------------- submission */
/* A buffer an op uses, and how. */
typedef struct kiln__use {
  kiln__buffer *buffer;
  bool write;
} kiln__use;

/* Make an op of `kind` on `stream` (refs: 1 for the backend, +1 if a token). */
kiln_status kiln__op_new(kiln__stream *stream, kiln__op_kind kind, kiln__op **op);
/* Discard an op that was never submitted. */
void kiln__op_discard(kiln__op *op);
/* Add a dependency (no-op for the op's own stream or a satisfied dep). */
kiln_status kiln__op_add_dep(kiln__op *op, const kiln__dep *dep);
/* Take the stream's submit lock, assign seq, add hazard deps for `uses`, update the
 * buffers' trackers, hand the op to the backend. On success writes the token if asked
 * (token NULL: no token). On failure the op is discarded and *token left empty. */
kiln_status kiln__submit(kiln__op *op, const kiln__use *uses, size_t use_count, kiln_pending *token,
                         const char *file, int line);
/* Wait until the op is done (timeout_ns UINT64_MAX: none); SUCCESS or TIMEOUT. */
kiln_status kiln__op_wait(kiln__op *op, uint64_t timeout_ns);
/* Wait until every op submitted to the stream so far has completed. */
void kiln__stream_wait_idle(kiln__stream *stream);
/* Let the backend complete finished work (queries: see backend.h poll). */
void kiln__stream_poll(kiln__stream *stream);
/* Take (and clear) the stream's first failure not yet reported; 0 when none. */
kiln_status kiln__stream_take_error(kiln__stream *stream, kiln__cause *cause);
/* Fill the error detail for a synchronize that found `st` (from take_error) on a
 * stream or context ("stream", "context"): names the first failed op, as token waits
 * do. Returns st. */
kiln_status kiln__report_sync_failure(const char *what, kiln_status st, const kiln__cause *cause);
/* A wait reported the failure of op `seq`: the stream need not report it again. */
void kiln__stream_error_reported(kiln__stream *stream, uint64_t seq);
/* Submit with an internal ref held, wait, return the op's status. */
kiln_status kiln__submit_and_wait(kiln__op *op, const kiln__use *uses, size_t use_count);
/* Take a buffer slot of the context and fill the core's part (not yet alive). */
kiln_status kiln__buffer_new(kiln__context *ctx, size_t bytes, const char *label,
                             kiln__buffer **out);
/* Give back a buffer slot whose backend part failed (or is gone). */
void kiln__buffer_release(kiln__buffer *buffer);
/* Wait until all work using the buffer has completed. */
void kiln__buffer_quiesce(kiln__buffer *buffer);

#endif
