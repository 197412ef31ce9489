/* SPDX-License-Identifier: MIT */
/* The CPU backend: buffers are host memory; each stream is a worker thread running its
 * ops in order (streams run concurrently); kernels are native C functions or kiln
 * dialect compiled by the host compiler (kexec.c, compile.c, fiber.c, workers.c). Workers spin
 * briefly before sleeping, and wake the submitter only when it sleeps. With
 * KILN_CPU_SHUFFLE=<seed> every op starts after a random delay, so independent work on
 * different streams completes in shuffled order (stress mode for hazard tests). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/backend.h"
#include "cpu_internal.h"

/* The queue is an intrusive MPSC list with a stub node (Vyukov): a push is one
 * exchange and one store, no lock; the worker alone pops. pop returns a node only once
 * it is no longer the tail, so no submitter writes into an op after it was handed on.
 * The mutex and condition serve only the worker's sleep. */
/* The submitters' line (tail, and the flags they read on every push but which change
 * rarely) apart from the worker's (head): one shared line moved between the two cores
 * on every op. */
typedef struct cpu_stream {
  _Alignas(64) kiln__op *_Atomic tail; /* submitters */
  _Atomic int sleeping;                /* the worker sleeps on cond */
  _Atomic int stop;
  _Alignas(64) kiln__op *head; /* worker only */
  uint64_t rng;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t thread;
  int priority;         /* kiln's (> 0 more urgent): the worker's niceness */
  int priority_applied; /* written by the worker before `started` */
  _Atomic int started;
  kiln__op stub;
} cpu_stream;

static void queue_push(cpu_stream *cs, kiln__op *op) {
  atomic_store_explicit(&op->next, NULL, memory_order_relaxed);
  /* seq_cst exchange: pairs with the worker's store of `sleeping` then load of `tail`. */
  kiln__op *prev = atomic_exchange(&cs->tail, op);
  /* release: the worker's acquire load of prev->next sees the op's contents. */
  atomic_store_explicit(&prev->next, op, memory_order_release);
}

static kiln__op *queue_pop(cpu_stream *cs) {
  kiln__op *head = cs->head;
  kiln__op *next = atomic_load_explicit(&head->next, memory_order_acquire);
  if (head == &cs->stub) {
    if (!next)
      return NULL;
    cs->head = head = next;
    next = atomic_load_explicit(&head->next, memory_order_acquire);
  }
  if (next) {
    cs->head = next;
    return head;
  }
  if (head != atomic_load(&cs->tail))
    return NULL; /* a push is between its two steps */
  queue_push(cs, &cs->stub);
  next = atomic_load_explicit(&head->next, memory_order_acquire);
  if (next) {
    cs->head = next;
    return head;
  }
  return NULL;
}

static bool queue_empty(cpu_stream *cs) {
  kiln__op *head = cs->head;
  return head == atomic_load(&cs->tail) && !atomic_load_explicit(&head->next, memory_order_acquire);
}

static uint64_t shuffle_seed; /* 0: off */

/* ------------------------------------------------------------- execution */
static void fill_pattern(unsigned char *dst, size_t bytes, const unsigned char *pattern,
                         size_t pb) {
  if (pb == 1) {
    memset(dst, pattern[0], bytes);
    return;
  }
  size_t first = pb < bytes ? pb : bytes;
  kiln__copy_bytes(dst, pattern, first);
  size_t done = first;
  while (done < bytes) { /* double the filled prefix each step */
    size_t n = done < bytes - done ? done : bytes - done;
    kiln__copy_bytes(dst + done, dst, n);
    done += n;
  }
}

static kiln_status run_launch(kiln__op *op) {
  kiln__kernel *k = op->u.launch.kernel;
  /* A source kernel compiled by this backend has no fn; one a decorator compiled its
   * own way (the mock's fake compiler) runs through the fn it set. */
  if (k->source && !k->fn)
    return kiln__cpu_run_source(op);
  void *argv[KILN_MAX_KERNEL_ARGS];
  for (uint32_t i = 0; i < op->u.launch.arg_count; i++) {
    kiln__launch_arg *a = &op->u.launch.args[i];
    argv[i] = a->kind == KILN_ARG_BUFFER ? a->buffer->native : op->u.launch.storage + a->offset;
  }
  kiln_native_range r;
  const kiln_range *in = &op->u.launch.range;
  r.dims = in->dims;
  for (unsigned d = 0; d < 3; d++) {
    r.global[d] = d < in->dims ? in->global[d] : 1;
    r.begin[d] = 0;
    r.end[d] = r.global[d];
  }
  k->fn(&r, argv, k->user);
  return KILN_SUCCESS;
}

static void execute(cpu_stream *cs, kiln__op *op) {
  for (uint32_t i = 0; i < op->dep_count; i++)
    kiln__dep_wait(&op->deps[i], UINT64_MAX);
  if (cs->rng) {
    uint64_t r = kiln__rand_next(&cs->rng);
    if ((r & 3u) == 0)
      kiln__sleep_ns((r >> 8) % 200000u);
    else if ((r & 3u) == 1)
      kiln__yield();
  }
  kiln_status st = kiln__op_begin(op);
  if (st != KILN_SUCCESS) {
    kiln__op_complete(op, st);
    return;
  }
  switch (op->kind) {
  case KILN__OP_WRITE:
    kiln__copy_large((unsigned char *)op->u.write.buffer->native + op->u.write.offset,
                     op->u.write.src, op->u.write.bytes);
    break;
  case KILN__OP_READ:
    kiln__copy_large(op->u.read.dst, (unsigned char *)op->u.read.buffer->native + op->u.read.offset,
                     op->u.read.bytes);
    break;
  case KILN__OP_COPY:
    kiln__copy_large((unsigned char *)op->u.copy.dst->native + op->u.copy.dst_offset,
                     (unsigned char *)op->u.copy.src->native + op->u.copy.src_offset,
                     op->u.copy.bytes);
    break;
  case KILN__OP_FILL:
    fill_pattern((unsigned char *)op->u.fill.buffer->native + op->u.fill.offset, op->u.fill.bytes,
                 op->u.fill.pattern, op->u.fill.pattern_bytes);
    break;
  case KILN__OP_LAUNCH:
    st = run_launch(op);
    break;
  case KILN__OP_MARKER:
    if (atomic_load(&op->flags) & KILN__OPF_TIMING)
      op->timestamp_ns = kiln__now_ns();
    break;
  case KILN__OP_WAIT:
  case KILN__OP_CALLBACK:
    break;
  }
  kiln__op_complete(op, st);
}

/* Stream priorities are the worker thread's niceness (Linux: per thread): priority p
 * asks for nice (creator's nice - p), clamped to -20..19. Anyone may lower a thread's
 * priority (p < 0); raising it (p > 0) needs root or RLIMIT_NICE, else it stays at the
 * creator's (applied 0). Returns the priority applied, in kiln's terms. */
static int apply_priority(int priority) {
  if (!priority)
    return 0;
  id_t tid = (id_t)syscall(SYS_gettid);
  errno = 0;
  int base = getpriority(PRIO_PROCESS, tid);
  if (base == -1 && errno)
    return 0;
  long want = (long)base - priority;
  if (want < -20)
    want = -20;
  if (want > 19)
    want = 19;
  if (want == base || setpriority(PRIO_PROCESS, tid, (int)want) != 0)
    return 0;
  return base - (int)want;
}

/* The priorities the CPU backend can apply here (device props): the niceness range
 * above the process's, and below it up to 19. */
static void priority_range(int *max, int *min) {
  errno = 0;
  int nice_now = getpriority(PRIO_PROCESS, 0);
  if (nice_now == -1 && errno)
    nice_now = 0;
  *min = -(19 - nice_now);
  int floor_nice = 20; /* the lowest nice value this process may set */
  struct rlimit rl;
  if (geteuid() == 0)
    floor_nice = -20;
  else if (getrlimit(RLIMIT_NICE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    floor_nice = 20 - (int)rl.rlim_cur;
  else if (getrlimit(RLIMIT_NICE, &rl) == 0)
    floor_nice = -20;
  *max = nice_now > floor_nice ? nice_now - floor_nice : 0;
}

static void *worker_main(void *arg) {
  kiln__stream *s = arg;
  cpu_stream *cs = s->native;
  cs->priority_applied = apply_priority(cs->priority);
  atomic_store(&cs->started, 1); /* seq_cst: the creator reads priority_applied after */
  /* Completed ops go back to the free stack in batches of 64, and before the worker
   * sleeps: not each time it finds the queue empty, which in a burst it does after
   * nearly every op, putting the op it had just freed (its lines in this core's cache)
   * on top of the stack for the submitter's next pop. A batch's ops are popped in
   * order, each pop fetching the next one's lines (slab.c). */
  kiln__slab_defer_begin();
  for (;;) {
    kiln__op *op = queue_pop(cs);
    if (op) {
      execute(cs, op); /* the op may be freed by its completion */
      continue;
    }
    kiln__trace_worker_idle(); /* a traced op begun later did not start at the last's end */
    if (queue_empty(cs) && atomic_load(&cs->stop))
      break;
    /* Spin a little: a submitter that comes back soon finds us awake. */
    uint64_t until = kiln__now_ns() + KILN__SPIN_NS;
    kiln__backoff backoff = {0};
    while (queue_empty(cs) && !atomic_load_explicit(&cs->stop, memory_order_relaxed)) {
      kiln__backoff_step(&backoff);
      if (kiln__now_ns() >= until)
        break;
    }
    if (!queue_empty(cs) || atomic_load(&cs->stop))
      continue;
    kiln__slab_defer_flush();
    pthread_mutex_lock(&cs->lock);
    /* seq_cst store, then the seq_cst loads in queue_empty: pairs with a submitter's
     * exchange of `tail` then load of `sleeping` (one of us sees the other). */
    atomic_store(&cs->sleeping, 1);
    while (queue_empty(cs) && !atomic_load(&cs->stop))
      pthread_cond_wait(&cs->cond, &cs->lock);
    atomic_store(&cs->sleeping, 0);
    pthread_mutex_unlock(&cs->lock);
  }
  kiln__slab_defer_flush();
  return NULL;
}

/* ------------------------------------------------------------- ops table */
static kiln_status cpu_probe(const kiln__backend_ops *self, char *reason, size_t reason_bytes) {
  (void)reason;
  (void)reason_bytes;
  uint64_t seed;
  if (kiln__parse_uint(getenv("KILN_CPU_SHUFFLE"), 0, UINT64_MAX, &seed) == 0)
    shuffle_seed = seed | 1u;
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  p.kind = KILN_DEVICE_KIND_CPU;
  kiln__cpu_model(p.name, sizeof p.name);
  if (!p.name[0])
    kiln__strlcpy(p.name, "host CPU", sizeof p.name);
  kiln__cpu_vendor(p.vendor, sizeof p.vendor);
  if (!p.vendor[0])
    kiln__strlcpy(p.vendor, "unknown", sizeof p.vendor);
  p.global_mem_bytes = kiln__total_memory_bytes();
  if (!p.global_mem_bytes)
    p.global_mem_bytes = 1ull << 30;
  p.max_alloc_bytes = p.global_mem_bytes / 2;
  p.compute_units = kiln__cpu_count();
  p.max_work_group_size = 4096;
  for (int d = 0; d < 3; d++) {
    p.max_work_item_sizes[d] = 4096;
    p.max_global_size[d] = SIZE_MAX / 2;
  }
  p.local_mem_bytes = 256u * 1024u;
  p.mem_align_bytes = 64;
  priority_range(&p.priority_max, &p.priority_min);
  return kiln__registry_add_device(self, &p, NULL, NULL);
}

/* Bytes of kiln's live cpu and mock buffers (the accounting below). */
static _Atomic uint64_t cpu_live_bytes;

static kiln_status cpu_mem_info(kiln__device *device, uint64_t *free_bytes, uint64_t *total_bytes) {
  *total_bytes = device->props.global_mem_bytes;
  uint64_t avail = kiln__available_memory_bytes(), live = atomic_load(&cpu_live_bytes);
  *free_bytes = avail > live ? avail - live : 0; /* as the accounting counts */
  return KILN_SUCCESS;
}

static kiln_status cpu_context_create(kiln__context *ctx) {
  ctx->native = NULL;
  return KILN_SUCCESS;
}

static void cpu_context_destroy(kiln__context *ctx) {
  (void)ctx;
}

static kiln_status cpu_stream_create(kiln__stream *s) {
  cpu_stream *cs = kiln__alloc_aligned(sizeof *cs, _Alignof(cpu_stream));
  if (!cs)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating a stream");
  memset(cs, 0, sizeof *cs);
  cs->head = &cs->stub;
  atomic_store(&cs->tail, &cs->stub);
  pthread_mutex_init(&cs->lock, NULL);
  pthread_cond_init(&cs->cond, NULL);
  uint64_t seed = shuffle_seed; /* KILN_CPU_SHUFFLE */
  cs->rng = seed ? (seed ^ ((uint64_t)(uintptr_t)s * 0x9E3779B97F4A7C15ull)) | 1u : 0;
  cs->priority = s->priority;
  s->native = cs;
  if (pthread_create(&cs->thread, NULL, worker_main, s) != 0) {
    pthread_mutex_destroy(&cs->lock);
    pthread_cond_destroy(&cs->cond);
    kiln__free_aligned(cs, sizeof *cs, _Alignof(cpu_stream));
    s->native = NULL;
    kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "could not start the stream's worker thread");
    kiln__error_suggest("the process may have too many threads: destroy unused streams");
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  }
  if (s->priority) { /* report what the worker could apply */
    while (!atomic_load(&cs->started))
      kiln__sleep_ns(10000);
    s->priority_applied = cs->priority_applied;
  }
  return KILN_SUCCESS;
}

static void cpu_stream_destroy(kiln__stream *s) {
  cpu_stream *cs = s->native;
  pthread_mutex_lock(&cs->lock);
  atomic_store(&cs->stop, 1);
  pthread_cond_signal(&cs->cond);
  pthread_mutex_unlock(&cs->lock);
  pthread_join(cs->thread, NULL);
  pthread_mutex_destroy(&cs->lock);
  pthread_cond_destroy(&cs->cond);
  kiln__free_aligned(cs, sizeof *cs, _Alignof(cpu_stream));
  s->native = NULL;
}

static void cpu_submit(kiln__stream *s, kiln__op *op) {
  cpu_stream *cs = s->native;
  queue_push(cs, op);
  if (atomic_load(&cs->sleeping)) {
    pthread_mutex_lock(&cs->lock);
    pthread_cond_signal(&cs->cond);
    pthread_mutex_unlock(&cs->lock);
  }
}

/* Accounting (issue #20): the machine overcommits, so an allocation far beyond its
 * memory succeeds and the failure comes later as an OOM kill. kiln counts the bytes of
 * every live buffer of the cpu and mock devices (one machine) and refuses one that
 * would take them past MemAvailable: kiln's buffers are counted whole, as if none of
 * their pages were resident yet (they may not be), so the check errs on the side of
 * refusing. MemAvailable is read again only when the live bytes pass half of the last
 * reading (reading /proc/meminfo costs microseconds). */
static _Atomic uint64_t cpu_avail_seen;

static kiln_status cpu_admit(size_t bytes) {
  uint64_t live = atomic_fetch_add(&cpu_live_bytes, bytes) + bytes;
  uint64_t seen = atomic_load(&cpu_avail_seen);
  if (seen && live <= seen / 2)
    return KILN_SUCCESS;
  seen = kiln__available_memory_bytes();
  atomic_store(&cpu_avail_seen, seen);
  if (!seen || live <= seen)
    return KILN_SUCCESS;
  atomic_fetch_sub(&cpu_live_bytes, bytes);
  kiln__error(KILN_ERROR_OUT_OF_DEVICE_MEMORY,
              "a buffer of %zu bytes on the CPU device would take kiln's live buffers to %llu "
              "bytes, more than the %llu bytes the machine has available (MemAvailable)",
              bytes, (unsigned long long)live, (unsigned long long)seen);
  kiln__error_suggest("free buffers or ask for less; kiln_budget_check says what fits");
  return KILN_ERROR_OUT_OF_DEVICE_MEMORY;
}

static kiln_status cpu_buffer_create(kiln__buffer *b) {
  kiln_status st = cpu_admit(b->bytes);
  if (st != KILN_SUCCESS)
    return st;
  b->native = kiln__alloc_aligned(b->bytes, 64);
  if (!b->native) {
    atomic_fetch_sub(&cpu_live_bytes, b->bytes);
    kiln__error(KILN_ERROR_OUT_OF_DEVICE_MEMORY,
                "could not allocate a buffer of %zu bytes on the CPU device (its memory is host "
                "memory)",
                b->bytes);
    return KILN_ERROR_OUT_OF_DEVICE_MEMORY;
  }
  return KILN_SUCCESS;
}

static void cpu_buffer_destroy(kiln__buffer *b) {
  if (!b->wrapped) {
    kiln__free_aligned(b->native, b->bytes, 64);
    atomic_fetch_sub(&cpu_live_bytes, b->bytes);
  }
  b->native = NULL;
}

/* A pool's block: a pointer inside the slab, which is host memory. */
static kiln_status cpu_buffer_view_create(kiln__buffer *view, kiln__buffer *parent, size_t offset,
                                          void **host) {
  view->native = (unsigned char *)parent->native + offset;
  *host = view->native;
  return KILN_SUCCESS;
}

static void cpu_buffer_view_destroy(kiln__buffer *view) {
  view->native = NULL;
}

static kiln_status cpu_get_native(uint32_t tag, void *handle, kiln_native_kind kind, void *out) {
  if (tag == KILN__TAG_BUFFER && kind == KILN_NATIVE_HOST_POINTER) {
    *(void **)out = ((kiln__buffer *)handle)->native;
    return KILN_SUCCESS;
  }
  kiln__error(KILN_ERROR_UNSUPPORTED,
              "native kind %d does not apply to a CPU-backend %s (only buffers have one: "
              "KILN_NATIVE_HOST_POINTER)",
              (int)kind, tag == KILN__TAG_BUFFER ? "buffer" : "object");
  return KILN_ERROR_UNSUPPORTED;
}

/* Wrap caller-owned host memory: zero-copy; the caller keeps it alive until destroy. */
static kiln_status cpu_buffer_wrap(kiln__buffer *b, kiln_native_kind kind, const void *native) {
  if (kind != KILN_NATIVE_HOST_POINTER)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "the CPU backend wraps only KILN_NATIVE_HOST_POINTER memory, not kind %d",
                       (int)kind);
  void *p = *(void *const *)native;
  if (!p)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "the host pointer to wrap is NULL");
  b->native = p;
  return KILN_SUCCESS;
}

static kiln_status cpu_kernel_create_native(kiln__kernel *k) {
  k->native = NULL;
  return KILN_SUCCESS;
}

/* Feature levels (docs/kernels.md): the C prelude maps scoped atomics and fences to
 * GCC's __atomic built-ins with the order asked for; every scope is the process. */
static kiln_status cpu_level_check(const kiln__device *device, kiln__level level,
                                   const char **options) {
  *options = "";
  if (level == KILN__LEVEL_SCOPED_ATOMICS)
    return KILN_SUCCESS;
  return kiln__error(KILN_ERROR_UNSUPPORTED, "device '%s' does not know feature level %d",
                     device->props.name, (int)level);
}

const kiln__backend_ops kiln__cpu_backend = {
    .kind = KILN_BACKEND_CPU,
    .name = "cpu",
    .dialect = KILN__TARGET_C,
    .probe = cpu_probe,
    .mem_info = cpu_mem_info,
    .context_create = cpu_context_create,
    .context_destroy = cpu_context_destroy,
    .stream_create = cpu_stream_create,
    .stream_destroy = cpu_stream_destroy,
    .buffer_create = cpu_buffer_create,
    .buffer_destroy = cpu_buffer_destroy,
    .program_build = kiln__cpu_program_build,
    .program_destroy = kiln__cpu_program_destroy,
    .level_check = cpu_level_check,
    .program_cache_id = kiln__cpu_program_cache_id,
    .program_export = kiln__cpu_program_export,
    .program_import = kiln__cpu_program_import,
    .program_share = kiln__cpu_program_share,
    .kernel_create = kiln__cpu_kernel_create,
    .kernel_create_native = cpu_kernel_create_native,
    .kernel_destroy = kiln__cpu_kernel_destroy,
    .launch_config = kiln__cpu_launch_config,
    .submit = cpu_submit,
    .get_native = cpu_get_native,
    .buffer_wrap = cpu_buffer_wrap,
    .buffer_view_create = cpu_buffer_view_create,
    .buffer_view_destroy = cpu_buffer_view_destroy,
};
