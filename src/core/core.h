/* SPDX-License-Identifier: MIT */
/* The core's own objects and services: the whole objects behind the views of
 * core/backend.h (each starts with its view), handle validation, slabs, errors,
 * operations and tokens, hazard tracking, the host-range guard. Only src/core includes
 * this (backends see core/backend.h alone); the public API is include/kiln. */
#ifndef KILN_CORE_H
#define KILN_CORE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"
#include "kiln.h"
#include "platform/platform.h"

#define KILN__HIDDEN __attribute__((visibility("hidden")))

/* ---------------------------------------------------------------- host memory */
/* Number of live contexts (kiln_set_allocator is refused while > 0). */
extern _Atomic int kiln__live_contexts;

/* ---------------------------------------------------------------- errors, log */

/* A user's value quoted for a message: its first KILN__QUOTE_CHARS bytes between single
 * quotes (not cutting a UTF-8 sequence; control characters shown as '?'), then "..."
 * and its whole length when it is longer, so that a long value cannot push the reason
 * out of a message's fixed buffer. Writes into out, returns it. */
#define KILN__QUOTE_CHARS 64
#define KILN__QUOTE_BYTES (KILN__QUOTE_CHARS + 48)
const char *kiln__quote(char out[KILN__QUOTE_BYTES], const char *value, size_t len);
/* Malformed kiln environment variables, named once per process at error level
 * (src/core/env.c; called by the first device enumeration). */
void kiln__env_report(void);
extern const char *const kiln__env_pool_words[];     /* KILN_POOL: on, off, debug */
extern const char *const kiln__env_autotune_words[]; /* KILN_AUTOTUNE: 0, 1, off, on */

/* ---------------------------------------------------------------- handles */
/* The core's whole handle header: the view's fields, with the context as the core's
 * object. Every slab element starts with it. */
typedef struct kiln__handle_obj {
  KILN__HANDLE_FIELDS(struct kiln_context_s)
} kiln__handle_obj;
_Static_assert(sizeof(kiln__handle_obj) % 8 == 0, "slab clearing works in 8-byte words");
_Static_assert(sizeof(kiln__handle_obj) == sizeof(kiln__handle), "a handle and its view agree");

/* Validate a handle argument of a public call: NULL, destroyed or
 * of another type -> INVALID_HANDLE, of an older device generation -> DEVICE_LOST. */
kiln_status kiln__check_handle(const void *handle, uint32_t tag, const char *what);
/* Validate only liveness and type (destroy of an old generation still succeeds). */
kiln_status kiln__check_alive(const void *handle, uint32_t tag, const char *what);
/* A destroy's claim, after kiln__check_alive: the tag goes from alive to dead in one
 * exchange, so of two destroys of one handle on different threads one proceeds and
 * the other gets INVALID_HANDLE (both used to tear it down: a double free). New calls
 * are refused from here on. */
kiln_status kiln__claim_destroy(void *handle, uint32_t tag, const char *what);
/* The same refusal, for a claim kept elsewhere than the tag (streams). */
kiln_status kiln__refuse_second_destroy(const char *what, const void *handle);

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
#define KILN__SLAB_KEEPS 2u  /* kiln__slab_keep ranges per slab */
#define KILN__SLAB_MAX_SLOTS (KILN__SLAB_CHUNK * KILN__SLAB_DIR * KILN__SLAB_DIRS)

typedef struct kiln__slab {
  pthread_mutex_t lock; /* growth; FIFO mode's queue */
  size_t elem_bytes;
  size_t zero_bytes;      /* bytes after the header cleared on alloc */
  uint64_t prefetch_mask; /* lines (bit i: bytes [64 i, 64 i + 64)) of the next free
                             element to fetch for writing at each lock-free pop */
  uint32_t tag;
  uint32_t quarantine;
  unsigned char *_Atomic *_Atomic dirs[KILN__SLAB_DIRS];
  _Atomic uint32_t used; /* slots ever handed out: indices [0, used) exist */
  uint32_t chunk_count;
  uint32_t *fifo; /* FIFO mode: free slot indices, capacity fifo_cap */
  uint32_t fifo_cap, fifo_head, fifo_count;
  _Atomic uint64_t free_top; /* LIFO mode: (ABA counter << 32) | (index + 1) */
  uint32_t gen_seed;
  void (*slot_init)(void *elem); /* kiln__slab_set_slot_life */
  void (*slot_fini)(void *elem);
  /* Byte ranges alloc does not clear (kiln__slab_keep): slot-lived state. */
  size_t keep_begin[KILN__SLAB_KEEPS], keep_end[KILN__SLAB_KEEPS];
  unsigned keeps;
} kiln__slab;

/* zero_bytes: how much of each element after the kiln__handle header alloc clears
 * (SIZE_MAX: all of it). */
/* Lock-free mode: at each pop, fetch the cache lines holding [offset, offset + bytes) of
 * the element now on top of the free stack, for writing, so the next alloc finds them
 * here rather than in the cache of the thread that freed it (ops: completed by a
 * worker). Within the first 64 lines; call before the slab is used. */
void kiln__slab_prefetch(kiln__slab *slab, size_t offset, size_t bytes);
void kiln__slab_init(kiln__slab *slab, size_t elem_bytes, size_t zero_bytes, uint32_t tag,
                     uint32_t quarantine);
/* State that lives as long as a slot rather than an object in it (a mutex a stale
 * user may still lock): init runs once per slot, when the slab first hands it out
 * (under the slab's lock, on zeroed memory), fini on every slot ever handed out when
 * the slab is destroyed. Keep such state past zero_bytes, or name its bytes with
 * kiln__slab_keep. Call before the slab is used. */
void kiln__slab_set_slot_life(kiln__slab *slab, void (*init)(void *elem), void (*fini)(void *elem));
/* Bytes [offset, offset + bytes) of each element that alloc does not clear (a multiple
 * of 8 each): slot-lived state inside the cleared part. At most KILN__SLAB_KEEPS calls
 * per slab, in increasing order of offset, the ranges apart. */
void kiln__slab_keep(kiln__slab *slab, size_t offset, size_t bytes);
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
/* kiln__slab_defer_begin/flush (backend.h): slots freed by the calling thread between
 * begin and flush reach the shared free stack in one step every 64 frees, and at each
 * flush. */
/* Call fn on each element whose tag is `tag` exactly (alive). */
void kiln__slab_each_alive(kiln__slab *slab, void (*fn)(void *elem, void *user), void *user);

/* ---------------------------------------------------------------- the objects */
/* Each object: its view (backend.h) as a union member, the same fields as an anonymous
 * struct (so the core names them directly, with its own object types for pointers),
 * then the core's own state. `&obj->view` is what the ops receive; KILN__OBJ turns a
 * view a backend passes back into the object (the view is at offset 0). */
#define KILN__OBJ(type, view) ((type *)(void *)(view))

struct kiln_context_s;
struct kiln_stream_s;
struct kiln_buffer_s;
struct kiln_kernel_s;
struct kiln_program_s;
struct kiln__op_obj;

typedef struct kiln_device_s {
  union {
    kiln__device view;
    struct {
      KILN__DEVICE_FIELDS
    };
  };
  _Atomic unsigned generation;
  _Atomic int lost;   /* a kiln_device_state: 0 ok, LOST, UNRECOVERABLE (nonzero: refuse) */
  char lost_why[192]; /* why (the runtime's error, or why the reset failed); with `lost`
                         written under registry.c's state lock */
} kiln__device_obj;

kiln_status kiln__registry_init(void);
/* The calling thread's copy of why the device is lost or unrecoverable ("" when not
 * known), valid until its next call. */
const char *kiln__device_lost_why(const kiln__device_obj *device);

typedef struct kiln_stream_s {
  union {
    kiln__stream view;
    struct {
      KILN__STREAM_FIELDS(kiln__handle_obj)
    };
  };
  _Atomic uint64_t uid; /* 0 once destroyed */
  /* kiln_stream_fd's descriptor (notify.c): set under submit_lock; completers read it
   * with notify_users raised, so teardown can wait them out before closing it. Read by
   * both sides for every op, written rarely: on the read-mostly line. */
  struct kiln__notify *_Atomic notify;
  /* The submitting side, then the completing side, each on its own cache line, apart
   * from the read-mostly view above: sharing a line made every submit and every
   * completion move it between the submitting thread's and the worker's cores. */
  /* seq order == order the backend receives ops. Lives as long as the slot (made when
   * the slab first hands it out, never cleared, destroyed with the context): a call
   * that checked the handle before a destroy on another thread still locks it, then
   * finds the stream closed. */
  _Alignas(64) pthread_mutex_t submit_lock;
  _Atomic uint64_t submitted; /* seq of the last op submitted */
  /* Set under submit_lock when the stream's teardown begins: kiln__submit refuses an op
   * then (relaxed: written and read under the lock). */
  _Atomic int closed;
  _Atomic uint64_t ops_counted; /* ops submitted (a statistic; written under submit_lock) */
  _Alignas(64) _Atomic uint64_t completed; /* seq of the last op completed (in order) */
  /* seq of the last op whose completion has also fired its watches (posted its token
   * callbacks, completed its futures): stored after `completed` by the completer, so
   * a waiter that saw `completed` may still find a callback not yet posted; the
   * context's synchronize and destroy wait for it (kiln__stream_wait_notified). */
  _Atomic uint64_t notified;
  _Atomic int waiters;
  /* Threads inside a wait on this stream (op.c: wait_until, kiln__dep_wait), which may
   * touch wait_lock, wait_cond and the backend's queue: raised before their first
   * done() check. Teardown waits it out once the stream is idle — then every done()
   * holds, so a thread that raises it later returns without touching them (another
   * stream's worker waiting for a dependency on this one while it is destroyed). */
  _Atomic int wait_users;
  /* The least seq a thread asleep on wait_cond waits for (UINT64_MAX: none; 0, as
   * made: any). A completion wakes the sleepers only once `completed` reaches it (a
   * burst's synchronize sleeps through the burst instead of waking at every op);
   * written under wait_lock (op.c: wait_until_used, wake_waiters). */
  _Atomic uint64_t wake_seq;
  _Atomic int notify_users;
  pthread_mutex_t wait_lock;
  pthread_cond_t wait_cond;
  _Alignas(64) _Atomic int first_error; /* first unreported failure (kiln_status); written
                              under fail_lock with first_error_seq */
  uint64_t first_error_seq;             /* the op that failed (under fail_lock) */
  kiln__cause first_error_cause;        /* and why (under fail_lock) */
  int internal;                         /* the context's default stream */
  /* first_error*, marker_cause. Lives as long as the slot (slab keep + slot life, like
   * submit_lock): kiln_stream_synchronize, kiln_context_synchronize and
   * kiln_event_synchronize (on the marker's stream) may take it after a destroy on
   * another thread has torn the stream down; they then find its last error. */
  pthread_mutex_t fail_lock;
  kiln__cause marker_cause;           /* first failure since the last marker */
  _Atomic uint64_t trace_last_end_ns; /* src/trace: its last op's end (completing side) */
  /* Identity and grouping (stream_pool.c); written before the stream is alive. */
  uint64_t number; /* kiln_stream_info.id: 1, 2, ... per context */
  char label[48];
  /* kiln_stream_destroy's claim (an exchange): of two destroys one tears it down. Not
   * the tag: the stream must look alive to kiln_kernel_destroy's and the context's
   * waits until its teardown has finished its work. */
  _Atomic int destroying;
  int owner;                    /* KILN__OWNER_*: who destroys it */
  struct kiln__spool_obj *pool; /* its pool or set, or NULL */
  uint32_t pool_index;
  int stats_on;            /* track busy time (pool and set streams) */
  uint64_t stats_ops_base; /* ops_counted when the group was made */
  /* Written by every acquire and release: a line of their own, apart from what they
   * read (tag, pool). */
  _Alignas(64) _Atomic int64_t held;     /* acquired, not released */
  _Atomic uint64_t picked;               /* times a pool's policy chose it */
  _Alignas(64) _Atomic uint64_t busy_ns; /* completer side (stats_on) */
  _Atomic uint64_t last_done_ns;         /* kept while stats_on or tuning */
  _Atomic int tuning;                    /* timed launches (tune.c) submitted, not completed */
} kiln__stream_obj;

enum { KILN__OWNER_NONE = 0, KILN__OWNER_POOL, KILN__OWNER_SET, KILN__OWNER_CONTEXT };
/* "stream 'label' (id N)" for messages, into a fixed buffer. */
#define KILN__STREAM_NAME_BYTES 96
const char *kiln__stream_name(char out[KILN__STREAM_NAME_BYTES], const kiln__stream_obj *s);

/* ---------------------------------------------------------------- operations */
/* A completion watch on an op (notify.c): fire runs once, on the thread that completes
 * the op (a worker, a driver's completion thread, the submitter) or, when the op had
 * completed already, on the registering thread. It must not block. */
typedef struct kiln__watch {
  void (*fire)(struct kiln__watch *watch, struct kiln__op_obj *op);
  struct kiln__watch *next;
} kiln__watch;

enum { /* kiln__callback_item.observe: what running the callback counts as observing */
       KILN__OBSERVE_NONE = 0,
       KILN__OBSERVE_OP,  /* the op itself (a token's callback): its host range */
       KILN__OBSERVE_UPTO /* everything up to the op on its stream (an event's marker) */
};

typedef struct kiln__callback_item {
  kiln_callback_fn fn;
  void *user;
  kiln_status status;
  struct kiln__callback_item *next;
  /* Callbacks on tokens and events (notify.c): a reference to the op whose completion
   * it follows; `observe` says which host ranges are released just before fn runs; the
   * reference is dropped after fn returns. NULL: none. */
  struct kiln__op_obj *op;
  int observe;
  uint64_t stream_uid; /* op's stream's uid, read while the stream was alive */
  kiln__watch watch;   /* fires on op's completion and posts the item */
  /* Internal work on the callback thread (future continuations): run instead of fn;
   * run owns the item (the thread does not free it). NULL: a plain callback. */
  void (*run)(struct kiln__callback_item *item);
} kiln__callback_item;

typedef struct kiln__op_obj {
  union {
    kiln__op view;
    struct {
      KILN__OP_FIELDS(kiln__handle_obj, kiln__stream_obj, struct kiln_buffer_s,
                      struct kiln_kernel_s, struct kiln__op_obj)
    };
  };
  /* Set by kiln__op_new. First what the running thread reads or writes for every op
   * (one cache line: asserted below), then what only the submitting side, a failure,
   * tracing, statistics or a guarded host range touch. */
  _Atomic int refs;
  _Atomic int done;
  kiln_status status;
  int line;
  kiln__watch *_Atomic watchers;       /* completion watches not yet fired (notify.c) */
  struct kiln__tune_entry *tune_entry; /* tune.c: a launch autotuning times, or NULL */
  const char *api;                     /* public function that made it */
  const char *file;
  size_t host_bytes;    /* host memory of an _async read/write (guarded) */
  const void *host_ptr; /* (valid when host_bytes != 0) */
  int pool_free;        /* a marker ordering a pool's free (src/pool): not an event's */
  int managed_sync;     /* a managed buffer's upload or download (managed.c): no hook */
  uint64_t trace_submit_ns, trace_api_ns, trace_begin_ns; /* src/trace, while tracing */
  uint64_t submit_ns; /* when submitted, on streams with stats_on, and timed launches */
  uint32_t tune_cand; /* and which of its candidates it runs */
  /* Not cleared: the last op of this slot whose token its stream's destroy released,
   * so a late wait of that token can say what became of it. Written and read under the
   * context's lock; orphan_gen 0: none. */
  uint32_t orphan_gen; /* its slot generation (the token's) */
  kiln_status orphan_status;
  const char *orphan_api, *orphan_file;
  int orphan_line;
} kiln__op_obj;
/* The op's running-side fields share one line (the slab's elements are 64-aligned): a
 * field added to the view may need the core's part reordered, or padded. */
_Static_assert(offsetof(kiln__op_obj, refs) / 64 ==
                   (offsetof(kiln__op_obj, tune_entry) + sizeof(void *) - 1) / 64,
               "refs, done, status, watchers and tune_entry share a cache line");

/* ---------------------------------------------------------------- buffers */
typedef struct kiln_buffer_s {
  union {
    kiln__buffer view;
    struct {
      KILN__BUFFER_FIELDS(kiln__handle_obj)
    };
  };
  char label[48];
  _Atomic int failed;     /* a failed op wrote it: readers fail too */
  kiln__cause fail_cause; /* under hazard_lock */
  kiln__dep last_write;   /* stream NULL when none */
  uint32_t reader_count, reader_cap;
  kiln__dep *readers; /* one per stream, since the last write */
  kiln__dep readers_inline[4];
  /* Pooled buffers (src/pool): the pool and block it came from (NULL: its own storage).
   * The block keeps the object across reissues; pool_next and pool_dep are the pool's
   * (a retired object waiting for its last work, under the pool's lock). */
  struct kiln_pool_s *pool;
  struct kiln__pool_block *pool_block;
  struct kiln_buffer_s *pool_next;
  kiln__dep pool_dep;
  /* The slot-lived tail, from `managed` on: the slab clears only what precedes it, and
   * a call on another thread that checked the handle before a destroy ran to its end
   * still finds these valid, then the buffer dead (kiln__submit; managed.c). */
  /* kiln_managed_create's host copy and state (managed.c). Kept, marked dead, when the
   * buffer is destroyed; freed when the slot is next handed out (kiln__buffer_new) or
   * with the context. */
  struct kiln__managed *managed;
  /* Made when the slab first hands the slot out, destroyed with the slab
   * (kiln__buffer_slot_init/fini). */
  pthread_mutex_t hazard_lock;
} kiln__buffer_obj;

/* ---------------------------------------------------------------- kernels */
typedef struct kiln_kernel_s {
  union {
    kiln__kernel view;
    struct {
      KILN__KERNEL_FIELDS(kiln__handle_obj)
    };
  };
  struct kiln_program_s *program;  /* source kernels (the program may be destroyed first) */
  const char *_Atomic trace_name;  /* src/trace: its name, interned at its first traced launch */
  struct kiln__tune *_Atomic tune; /* tune.c: its remembered and tuned launch sizes, or NULL */
} kiln__kernel_obj;

/* ---------------------------------------------------------------- programs */
struct kiln__kfunc;
typedef struct kiln_program_s {
  union {
    kiln__program view;
    struct {
      KILN__PROGRAM_FIELDS(kiln__handle_obj)
    };
  };
  size_t func_count;
  struct kiln__kfunc *funcs; /* parsed signatures (kiln__alloc) */
  /* The compile cache's key when it built the program (program.c's table of live
   * programs, for program_share). */
  unsigned char cache_key[32];
  bool cache_listed;                 /* in the table (under its lock) */
  struct kiln_program_s *cache_next; /* its chain there */
  /* kiln_kernel_create calls inside the program (raised, then the tag found alive):
   * the destroy claims the tag, then waits them out before it frees the backend's
   * program and the signatures (seq_cst both sides). Lives as long as the slot (slab
   * keep): a call that checked the handle before the destroy still raises it. */
  _Alignas(8) _Atomic int users;
} kiln__program_obj;

/* Release a program (backend part, signatures, slot). */
void kiln__program_free(kiln__program_obj *program);

/* Free a kernel no queued launch refers to (backend part, then the slot). */
void kiln__kernel_free(kiln__kernel_obj *kernel);

/* ---------------------------------------------------------------- events */
typedef struct kiln_event_s {
  kiln__handle_obj h;
  unsigned flags;
  /* Lives as long as the slot (made when the slab first hands it out, never cleared,
   * destroyed with the context): a call that checked the handle before a destroy on
   * another thread still locks it, then finds the event dead (kiln__event_dead_locked). */
  pthread_mutex_t lock;
  kiln__op_obj *marker;        /* ref held; NULL when never recorded */
  struct kiln__notify *notify; /* kiln_event_fd's descriptor (under lock), or NULL */
} kiln__event_obj;

/* ---------------------------------------------------------------- contexts */
typedef struct kiln_context_s {
  union {
    kiln__context view;
    struct {
      KILN__CONTEXT_FIELDS(kiln__handle_obj, kiln__device_obj)
    };
  };
  uint32_t index; /* in the context table */
  kiln__slab streams, events, buffers, kernels, programs, ops;
  kiln__slab futures;       /* future.c */
  pthread_mutex_t fut_lock; /* waits on futures sleep on fut_cond */
  pthread_cond_t fut_cond;
  _Atomic int fut_waiters;
  pthread_mutex_t lock; /* default stream and callback thread creation */
  kiln__stream_obj *default_stream;
  /* kiln_context_destroy's claim (an exchange): of two destroys one tears it down. Not
   * the tag: callbacks the destroy runs may still use the context. */
  _Atomic int destroying;
  /* callback thread */
  pthread_mutex_t cb_lock;
  pthread_cond_t cb_cond;
  kiln__callback_item *cb_head, *cb_tail;
  int cb_running, cb_stop, cb_busy;
  pthread_t cb_thread;
  kiln__callback_item cb_now; /* the callback running while cb_busy (fn, user) */
  uint64_t cb_started_ns;     /* when it started */
  uint64_t cb_ran;            /* callbacks and continuations run so far (under cb_lock) */
  _Atomic uint64_t next_stream_uid;
  _Atomic uint64_t next_stream_number;  /* kiln_stream_info.id */
  kiln__slab stream_pools, stream_sets; /* stream_pool.c */
  kiln__stream_obj *transfer_stream;    /* kiln_context_transfer_stream (under lock) */
  _Atomic uint64_t stat_ops, stat_cross_deps, stat_tokens_forgotten;
  /* kiln_host_alloc blocks, sorted by base (host.c) */
  pthread_mutex_t host_lock;
  struct kiln__host_block *host;
  size_t host_cap;
  _Atomic size_t host_count;
  struct kiln__host_pool *host_pool; /* kiln_host_alloc's pool (src/pool/host_pool.c),
                                        made at the first allocation under host_lock */
  /* device pools (src/pool): every live pool of the context (under lock), and the one
   * behind kiln_buffer_create (KILN_CONTEXT_POOLED), else NULL */
  struct kiln_pool_s *pools;
  struct kiln_pool_s *buffer_pool;
} kiln__context_obj;

#define KILN__MAX_CONTEXTS 1024u
kiln__context_obj *kiln__context_at(uint32_t index);
/* Queue a completion callback (allocated by the caller) on the context's callback
 * thread; never fails. */
void kiln__callback_post(kiln__context_obj *ctx, kiln__callback_item *item);
kiln_status kiln__callback_thread_start(kiln__context_obj *ctx);
kiln_status kiln__default_stream(kiln__context_obj *ctx, kiln__stream_obj **stream);
/* Make a stream (the public create, pools, sets, the transfer stream). label NULL:
 * "stream-<id>". */
kiln_status kiln__stream_new(kiln__context_obj *ctx, int priority, const char *label, int owner,
                             kiln__stream_obj **out);
/* kiln_stream_synchronize of a validated stream (error detail names it). */
kiln_status kiln__stream_synchronize(kiln__stream_obj *stream);
/* Set up (at context creation) and destroy (before its streams are torn down) the
 * context's stream pools and sets. */
void kiln__stream_groups_init(kiln__context_obj *ctx);
void kiln__stream_groups_teardown(kiln__context_obj *ctx);
/* A stream set keeps kiln_pipeline_run's device buffers between runs. take: false when
 * another run holds them (make your own, destroy them after); true: `in`/`out` hold the
 * kept buffers if depth and sizes match, else NULL (make them), and the run must give
 * them back (give) or destroy them and give back none (depth 0). */
#define KILN__PIPELINE_MAX_DEPTH 16u
bool kiln__set_scratch_take(kiln_stream_set set, unsigned depth, size_t in_bytes, size_t out_bytes,
                            kiln_buffer *in, kiln_buffer *out);
void kiln__set_scratch_give(kiln_stream_set set, unsigned depth, size_t in_bytes, size_t out_bytes,
                            const kiln_buffer *in, const kiln_buffer *out);
/* Stream-pool tags (stream_pool.c). */
#define KILN__TAG_STREAM_POOL 0x4b53504cu /* KSPL */
#define KILN__TAG_STREAM_SET 0x4b535354u  /* KSST */
/* Destroy a stream (core part; shared by the public destroy and context teardown). */
void kiln__stream_teardown(kiln__stream_obj *stream);
/* Report the stream's forgotten tokens and drop them. */
void kiln__report_forgotten_tokens(kiln__context_obj *ctx, kiln__stream_obj *stream);

/* ---------------------------------------------------------------- async integration */
/* Completion watches, pollable descriptors, callbacks on tokens and events (notify.c). */
typedef struct kiln__notify kiln__notify;
/* Fire w when op completes (now, on this thread, if it has). The caller holds a
 * reference to op at the call (it may be the one the watch drops when it fires). */
void kiln__op_watch(kiln__op_obj *op, kiln__watch *w);
/* From kiln__op_complete, after `done` and `completed` are stored: fire the op's
 * watches and update its stream's descriptor. */
void kiln__op_completed_notify(kiln__op_obj *op);
/* From kiln__submit, under the submit lock after `submitted` is stored. */
void kiln__stream_submitted_notify(kiln__stream_obj *stream);
/* Close a stream's / an event's descriptor (teardown, destroy). */
void kiln__stream_notify_close(kiln__stream_obj *stream);
void kiln__event_notify_close(kiln__event_obj *event);
/* Before kiln_event_record submits: a watch for the new marker when the event has a
 * descriptor (*watch NULL otherwise); then, with the new marker in place (event lock
 * held), kiln__event_recorded clears the descriptor and arms the watch. */
kiln_status kiln__event_record_prepare(kiln__event_obj *event, kiln__watch **watch);
void kiln__event_recorded_locked(kiln__event_obj *event, kiln__watch *watch);
void kiln__event_record_arm(kiln__op_obj *marker, kiln__watch *watch);
/* What running a callback item with an op observes (before fn); on the callback thread. */
void kiln__callback_observe(kiln__callback_item *item);
/* Claim and consume a token for a callback or a future: *op receives the op with the
 * token's reference (op.c). */
kiln_status kiln__token_take(kiln_pending *token, kiln__op_obj **op);
/* True when the calling thread is the context's callback thread. */
bool kiln__on_callback_thread(kiln__context_obj *ctx);
/* Futures (future.c): report and drop the context's futures at its destroy. */
void kiln__futures_init(kiln__context_obj *ctx);
void kiln__futures_teardown(kiln__context_obj *ctx);

/* ---------------------------------------------------------------- pinned host memory */
typedef struct kiln__host_block {
  uintptr_t base;
  size_t bytes;
  void *native;    /* the backend's record of the block */
  bool registered; /* kiln_host_register's (the program's memory), else kiln_host_alloc's */
  struct kiln__host_slab *slab; /* a slab of the host pool (its blocks are the allocations) */
} kiln__host_block;
/* Free every block left at context destroy (after every stream is gone). */
void kiln__host_teardown(kiln__context_obj *ctx);
/* host.c, for the host pool: record a slab of backend memory [base, base + bytes) in the
 * table (kiln__host_pinned sees it), take it out again, and find the slab holding ptr
 * (NULL: none, or a registered block: *registered says which). */
kiln_status kiln__host_backend_alloc(kiln__context_obj *ctx, size_t bytes, void **ptr,
                                     void **native);
kiln_status kiln__host_table_add(kiln__context_obj *ctx, const kiln__host_block *b);
void kiln__host_table_drop(kiln__context_obj *ctx, uintptr_t base);
void kiln__host_backend_release(kiln__context_obj *ctx, const kiln__host_block *b);
struct kiln__host_slab *kiln__host_table_slab(kiln__context_obj *ctx, uintptr_t p,
                                              bool *registered);
/* src/pool/host_pool.c: kiln_host_alloc's blocks, pooled. free with stream NULL waits
 * for the context's work first; with a stream it returns at once. trim returns whole
 * free slabs until at most `keep` bytes stay cached and gives the bytes it returned.
 * teardown (context destroy, streams gone) forgets the pool; the table's slabs are
 * released by kiln__host_teardown. */
kiln_status kiln__host_pool_alloc(kiln__context_obj *ctx, size_t bytes, void **ptr);
kiln_status kiln__host_pool_free(kiln__context_obj *ctx, void *ptr, kiln__stream_obj *stream);
/* The block back at once: the caller knows no queued work uses it (a managed buffer's
 * host copy, freed with its buffer). */
kiln_status kiln__host_pool_free_now(kiln__context_obj *ctx, void *ptr);
uint64_t kiln__host_pool_trim(kiln__context_obj *ctx, uint64_t keep);
void kiln__host_pool_teardown(kiln__context_obj *ctx);
/* Lock the context's host pool (NULL: none yet), then whether [p, p + bytes) lies in
 * one live block of the slab (called with that lock and host_lock). */
typedef struct kiln__host_pool kiln__host_pool;
kiln__host_pool *kiln__host_pool_lock(kiln__context_obj *ctx);
void kiln__host_pool_unlock(kiln__host_pool *pool);
bool kiln__host_pool_covers(const struct kiln__host_slab *slab, uintptr_t p, size_t bytes);

/* ---------------------------------------------------------------- device pools */
#define KILN__TAG_POOL 0x4b504f4cu /* KPOL (not handed to backends) */
/* src/pool/pool.c, called by the core: the pool behind kiln_buffer_create of a context
 * made with KILN_CONTEXT_POOLED (made at context create, after the backend's part);
 * a blocking destroy of a pooled buffer (its work completed); and, at context destroy
 * after every stream is gone and before the backend's context_destroy, the end of
 * every pool of the context (live pooled buffers go with them). */
kiln_status kiln__pool_context_init(kiln__context_obj *ctx);
kiln_status kiln__pool_buffer_create(kiln__context_obj *ctx, size_t bytes, const char *label,
                                     kiln__buffer_obj **out);
void kiln__pool_buffer_destroy(kiln__buffer_obj *buffer);
void kiln__pool_context_teardown(kiln__context_obj *ctx);
/* The free bytes every device pool of the context holds (the budget's cached_bytes), and
 * a trim of all of them (waiting for their frees), giving the bytes returned. Called
 * without any pool's lock. */
uint64_t kiln__pool_context_cached(kiln__context_obj *ctx);
uint64_t kiln__pool_context_trim(kiln__context_obj *ctx);

/* ---------------------------------------------------------------- host-range guard */
/* In AddressSanitizer builds: poison the host range of an _async read/write from its
 * submission until a wait observes its completion (guard.c). No-ops otherwise. */
#if defined(__SANITIZE_ADDRESS__)
void kiln__guard_add(const kiln__stream_obj *stream, uint64_t seq, const kiln__buffer_obj *buffer,
                     const void *ptr, size_t bytes);
void kiln__guard_release_op(const kiln__stream_obj *stream, uint64_t uid, uint64_t seq);
void kiln__guard_release_upto(const kiln__stream_obj *stream, uint64_t uid, uint64_t seq);
void kiln__guard_release_buffer(const kiln__buffer_obj *buffer);
void kiln__guard_release_context(const kiln__context_obj *ctx);
/* Drop the ranges inside [ptr, ptr + bytes) (a pinned block going back to its pool). */
void kiln__guard_release_range(const void *ptr, size_t bytes);
#else
#define kiln__guard_add(stream, seq, buffer, ptr, bytes) \
  ((void)(stream), (void)(seq), (void)(buffer), (void)(ptr), (void)(bytes))
#define kiln__guard_release_buffer(buffer) ((void)(buffer))
#define kiln__guard_release_op(stream, uid, seq) ((void)(stream), (void)(uid), (void)(seq))
#define kiln__guard_release_upto(stream, uid, seq) ((void)(stream), (void)(uid), (void)(seq))
#define kiln__guard_release_context(ctx) ((void)(ctx))
#define kiln__guard_release_range(ptr, bytes) ((void)(ptr), (void)(bytes))
#endif

/* ---------------------------------------------------------------- submission */
/* A buffer an op uses, and how. */
typedef struct kiln__use {
  kiln__buffer_obj *buffer;
  bool write;
} kiln__use;

/* Make an op of `kind` on `stream` (refs: 1 for the backend, +1 if a token). */
kiln_status kiln__op_new(kiln__stream_obj *stream, kiln__op_kind kind, kiln__op_obj **op);
/* Whether a submitted op has completed. kiln__op_complete stores `done` (release) and
 * then its stream's `completed` (seq_cst, the one locked instruction of the two): a
 * thread that makes a seq_cst store of its own (raising `waiters`, pushing a watch)
 * and then calls this, against a completer that stores `completed` and then loads what
 * that thread stored, sees the op done or is seen (Dekker). A stream's ops complete in
 * seq order, so `completed` past the op means it is done; an op not done has a live
 * stream. Either load synchronizes with the completion: its results are visible. */
static inline bool kiln__op_done(const kiln__op_obj *op) {
  return atomic_load(&op->done) || (op->seq && atomic_load(&op->stream->completed) >= op->seq);
}
/* Discard an op that was never submitted. */
void kiln__op_discard(kiln__op_obj *op);
/* Add a dependency (no-op for the op's own stream or a satisfied dep). */
kiln_status kiln__op_add_dep(kiln__op_obj *op, const kiln__dep *dep);
/* Take the stream's submit lock, assign seq, add hazard deps for `uses`, update the
 * buffers' trackers, hand the op to the backend. On success writes the token if asked
 * (token NULL: no token). On failure the op is discarded and *token left empty. */
kiln_status kiln__submit(kiln__op_obj *op, const kiln__use *uses, size_t use_count,
                         kiln_pending *token, const char *file, int line);
/* Wait until the op is done (timeout_ns UINT64_MAX: none); SUCCESS or TIMEOUT. */
kiln_status kiln__op_wait(kiln__op_obj *op, uint64_t timeout_ns);
/* Wait until every op submitted to the stream so far has completed. */
void kiln__stream_wait_idle(kiln__stream_obj *stream);
/* Then until the completer has fired the watches of every op completed so far, so a
 * callback drain that follows finds their callbacks queued (context.c). */
void kiln__stream_wait_notified(kiln__stream_obj *stream);
/* Tests only (static link), each called when set, so a test can place an event inside
 * a window a few instructions wide: before_notify by a completer between storing an
 * op's `completed` and firing its watches, waiting_notified by
 * kiln__stream_wait_notified when it has to wait (so a test sees who waits on that
 * window); pipeline_set_checked by kiln_pipeline_run between its check of the stream
 * set (or making its own) and taking the set's streams; group_checked by a stream pool's
 * or set's get, statistics and synchronize_all between the handle check and reading its
 * streams (a destroy on another thread placed there); before_backend_wait just before a
 * wait or query calls the backend's stream_wait, op_wait or poll on a stream another
 * thread may be destroying (the call holds the stream's wait_users then). */
typedef struct kiln__test_hooks {
  void (*_Atomic before_notify)(kiln__op_obj *op);
  void (*_Atomic waiting_notified)(kiln__stream_obj *stream);
  void (*_Atomic pipeline_set_checked)(kiln_context context);
  void (*_Atomic group_checked)(void *group);
  void (*_Atomic before_backend_wait)(kiln__stream_obj *stream);
} kiln__test_hooks;
extern kiln__test_hooks kiln__test_hooks_now;
/* Let the backend complete finished work (queries: see backend.h poll). */
void kiln__stream_poll(kiln__stream_obj *stream);
/* Take (and clear) the stream's first failure not yet reported; 0 when none. */
kiln_status kiln__stream_take_error(kiln__stream_obj *stream, kiln__cause *cause);
/* Fill the error detail for a synchronize that found `st` (from take_error) on a
 * stream or context ("stream", "context"): names the first failed op, as token waits
 * do. Returns st. */
kiln_status kiln__report_sync_failure(const char *what, kiln_status st, const kiln__cause *cause);
/* A wait reported the failure of op `seq`: the stream need not report it again. */
void kiln__stream_error_reported(kiln__stream_obj *stream, uint64_t seq);
/* Submit with an internal ref held, wait, return the op's status. */
kiln_status kiln__submit_and_wait(kiln__op_obj *op, const kiln__use *uses, size_t use_count);
/* Take a buffer slot of the context and fill the core's part (not yet alive). */
kiln_status kiln__buffer_new(kiln__context_obj *ctx, size_t bytes, const char *label,
                             kiln__buffer_obj **out);
/* Give back a buffer slot whose backend part failed (or is gone). */
void kiln__buffer_release(kiln__buffer_obj *buffer);
/* The event slab's slot life: the event's lock (event.c). */
void kiln__event_slot_init(void *elem);
void kiln__event_slot_fini(void *elem);
/* Under event->lock: the event was destroyed since the caller checked its handle (its
 * destroy claims the tag before it takes the lock); sets the error detail. */
bool kiln__event_dead_locked(const kiln__event_obj *event);
/* The stream slab's slot life: the submit lock (stream.c). */
void kiln__stream_slot_init(void *elem);
void kiln__stream_slot_fini(void *elem);
/* The buffer slab's slot life (kiln__slab_set_slot_life): the hazard mutex. */
void kiln__buffer_slot_init(void *elem);
void kiln__buffer_slot_fini(void *elem);
/* Wait until all work using the buffer has completed. */
void kiln__buffer_quiesce(kiln__buffer_obj *buffer);
/* Managed buffers (managed.c): before an op on `stream` uses the buffer (kiln__submit,
 * not for the op's own uploads): refuse it while the host holds the buffer, upload the
 * host copy first when it was written, mark device writes. Free the record with the
 * buffer (kiln__buffer_release). */
kiln_status kiln__managed_before_use(kiln__stream_obj *stream, kiln__buffer_obj *buffer,
                                     bool write);
/* The same refusal, checked with the call's other arguments, before anything is
 * allocated for the op (so a refused use says INVALID_STATE whatever memory is left);
 * SUCCESS for a buffer that is not managed. kiln__managed_before_use checks again. */
kiln_status kiln__managed_check_use(kiln__buffer_obj *buffer, bool write);
/* The buffer is destroyed (its work done): mark the record dead, so that a use which
 * checked the handle before is refused, and free the host copy. The record stays. */
void kiln__managed_retire(kiln__buffer_obj *buffer);
/* Free the record a slot kept (kiln__buffer_new, kiln__buffer_slot_fini). */
void kiln__managed_slot_free(kiln__buffer_obj *buffer);

#endif
