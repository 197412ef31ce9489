/* SPDX-License-Identifier: MIT */
/* Recording: sessions (start, pause, stop, KILN_TRACE*), per-thread buffers, and the
 * hooks the core calls for ops, API spans and instant events. A thread appends to its
 * own buffer without a lock (the owner is the only writer; `count` is published with
 * release); the trace lock is taken only to register a buffer, to start or stop a
 * session and to write the file. Trace memory comes from libc, not kiln_set_allocator:
 * it outlives every context, and the allocator may change between contexts. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/buf.h"
#include "trace/trace.h"

_Atomic(kiln__trace_buf *) kiln__trace_bufs;
_Atomic uint64_t kiln__trace_session;
_Atomic uint64_t kiln__trace_ring;
_Atomic uint64_t kiln__trace_t0;
_Atomic int kiln__trace_active;

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t ring_cap; /* the session's per-thread ring: pow2 >= N, 0: full */
static char trace_path[PATH_MAX]; /* under trace_lock; "" when none */
static int trace_paused;          /* under trace_lock */
static uint32_t next_thread_no = 1;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t buf_key;
/* initial-exec: an fs-relative load on the completing thread's path, not a call to
 * __tls_get_addr (libkiln is loaded with the program, or early through dlopen; the
 * static TLS reserve holds these 8 bytes). */
static _Thread_local kiln__trace_buf *tl_buf __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------- buffers */
static void buf_release(void *arg) { /* thread exit: the next new thread may take it */
  kiln__trace_buf *b = arg;
  atomic_store_explicit(&b->owned, 0, memory_order_release); /* pairs with the CAS below */
}

static void make_key(void) {
  pthread_key_create(&buf_key, buf_release);
}

static kiln__trace_buf *buf_claim(void) {
  pthread_once(&key_once, make_key);
  /* A buffer a finished thread left behind, else a new one. */
  for (kiln__trace_buf *b = atomic_load(&kiln__trace_bufs); b; b = b->next) {
    int zero = 0;
    /* acquire: pairs with buf_release's store, so the old owner's writes are ours */
    if (!atomic_load_explicit(&b->owned, memory_order_relaxed) &&
        atomic_compare_exchange_strong_explicit(&b->owned, &zero, 1, memory_order_acquire,
                                                memory_order_relaxed)) {
      memset(b->run, 0, sizeof b->run); /* the old owner's ops are not ours */
      return b;
    }
  }
  kiln__trace_buf *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  atomic_store(&b->owned, 1);
  pthread_mutex_lock(&trace_lock);
  b->thread_no = next_thread_no++;
  b->next = atomic_load(&kiln__trace_bufs);
  atomic_store(&kiln__trace_bufs, b); /* seq_cst: publishes the filled buffer */
  pthread_mutex_unlock(&trace_lock);
  return b;
}

kiln__trace_buf *kiln__trace_my_buf(void) {
  kiln__trace_buf *b = tl_buf;
  if (!b) {
    b = buf_claim();
    if (!b)
      return NULL;
    tl_buf = b;
    pthread_setspecific(buf_key, b);
  }
  uint64_t session = atomic_load_explicit(&kiln__trace_session, memory_order_acquire);
  if (atomic_load_explicit(&b->session, memory_order_relaxed) != session) {
    /* A new session: start over (chunks are reused). */
    atomic_store_explicit(&b->count, 0, memory_order_relaxed);
    atomic_store_explicit(&b->dropped, 0, memory_order_relaxed);
    b->cur = atomic_load_explicit(&b->first, memory_order_relaxed);
    atomic_store_explicit(&b->session, session, memory_order_release);
  }
  return b;
}

/* Zeroed memory for events, 64-byte aligned (a slot's cache lines are its own). */
static void *events_alloc(size_t bytes) {
  void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (p)
    memset(p, 0, bytes);
  return p;
}

/* Rings replaced by one of another size (under trace_lock; reachable, never freed). */
typedef struct retired_ring {
  struct retired_ring *next;
  kiln__trace_ev *ring;
} retired_ring;
static retired_ring *retired;

/* The slot for event number n, growing the buffer; NULL when out of memory. */
static kiln__trace_ev *slot_for(kiln__trace_buf *b, uint64_t n) {
  /* Each thread keeps a power of two >= N (a mask, not a division, per event); the
   * writer keeps the last N of all. */
  uint64_t cap = atomic_load_explicit(&ring_cap, memory_order_relaxed);
  if (cap) {
    kiln__trace_ev *r = atomic_load_explicit(&b->ring, memory_order_relaxed);
    if (!r || atomic_load_explicit(&b->ring_cap, memory_order_relaxed) != cap) {
      /* A ring of another size: the old one is kept on the retired list (the writer
       * may be reading it), never freed. */
      retired_ring *node = calloc(1, sizeof *node);
      kiln__trace_ev *nr = node ? events_alloc(cap * sizeof *nr) : NULL;
      if (!nr) {
        free(node);
        return NULL;
      }
      if (r) {
        node->ring = r;
        pthread_mutex_lock(&trace_lock);
        node->next = retired;
        retired = node;
        pthread_mutex_unlock(&trace_lock);
      } else {
        free(node);
      }
      r = nr;
      atomic_store_explicit(&b->ring_cap, cap, memory_order_relaxed);
      atomic_store_explicit(&b->ring, r, memory_order_release); /* pairs with write.c */
    }
    return &r[n & (cap - 1)];
  }
  uint64_t i = n % KILN__CHUNK_EVENTS;
  if (!b->cur) {
    kiln__trace_chunk *c = atomic_load_explicit(&b->first, memory_order_relaxed);
    if (!c) {
      c = events_alloc(sizeof *c);
      if (!c)
        return NULL;
      atomic_store_explicit(&b->first, c, memory_order_release); /* pairs with write.c */
    }
    b->cur = c;
  } else if (i == 0 && n > 0) {
    kiln__trace_chunk *c = atomic_load_explicit(&b->cur->next, memory_order_relaxed);
    if (!c) {
      c = events_alloc(sizeof *c);
      if (!c)
        return NULL;
      atomic_store_explicit(&b->cur->next, c, memory_order_release); /* pairs with write.c */
    }
    b->cur = c;
  }
  return &b->cur->ev[i];
}

void kiln__trace_emit(const uint64_t w[KILN__EV_WORDS - 1]) {
  kiln__trace_emit_n(w, KILN__EV_WORDS - 1);
}

/* Write event number n into slot e of b and publish it. Seqlock: odd while being
 * written. The release stores of the words keep the odd value visible before any of
 * them; the final release store publishes them. A reader (write.c) loads the
 * sequence, the words (acquire) and the sequence again. */
static inline __attribute__((always_inline)) void
write_slot(kiln__trace_buf *b, uint64_t n, kiln__trace_ev *e, const uint64_t *w, unsigned words) {
  uint64_t s = atomic_load_explicit(&e->w[KILN__EV_SEQ], memory_order_relaxed);
  atomic_store_explicit(&e->w[KILN__EV_SEQ], s | 1u, memory_order_relaxed);
  for (unsigned k = 0; k < words; k++)
    atomic_store_explicit(&e->w[KILN__EV_SLOT(k)], w[k], memory_order_release);
  atomic_store_explicit(&e->w[KILN__EV_SEQ], (s | 1u) + 1u, memory_order_release);
  atomic_store_explicit(&b->count, n + 1, memory_order_release); /* pairs with write.c */
}

void kiln__trace_emit_n(const uint64_t *w, unsigned words) {
  kiln__trace_buf *b = kiln__trace_my_buf();
  if (!b)
    return;
  uint64_t n = atomic_load_explicit(&b->count, memory_order_relaxed);
  kiln__trace_ev *e = slot_for(b, n);
  if (!e) {
    atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
    return;
  }
  write_slot(b, n, e, w, words);
}

/* The op hooks' emit, inlined: the thread's buffer already in this session and its
 * next slot at hand (no new chunk, no new ring); anything else goes the general way. */
static inline __attribute__((always_inline)) void emit_fast(const uint64_t *w, unsigned words) {
  kiln__trace_buf *b = tl_buf;
  if (__builtin_expect(!b || atomic_load_explicit(&b->session, memory_order_relaxed) !=
                                 atomic_load_explicit(&kiln__trace_session, memory_order_acquire),
                       0)) {
    kiln__trace_emit_n(w, words);
    return;
  }
  uint64_t n = atomic_load_explicit(&b->count, memory_order_relaxed);
  kiln__trace_ev *e;
  uint64_t cap = atomic_load_explicit(&ring_cap, memory_order_relaxed);
  if (cap) {
    kiln__trace_ev *r = atomic_load_explicit(&b->ring, memory_order_relaxed);
    if (__builtin_expect(!r || atomic_load_explicit(&b->ring_cap, memory_order_relaxed) != cap,
                         0)) {
      kiln__trace_emit_n(w, words);
      return;
    }
    e = &r[n & (cap - 1)];
  } else {
    uint64_t i = n % KILN__CHUNK_EVENTS; /* the chunk of event n - 1 holds n too */
    if (__builtin_expect(!b->cur || i == 0, 0)) {
      kiln__trace_emit_n(w, words);
      return;
    }
    e = &b->cur->ev[i];
  }
  write_slot(b, n, e, w, words);
}

void kiln__trace_pack_name(uint64_t *words, const char *s) {
  char tmp[KILN__TRACE_NAME_BYTES] = {0};
  if (s)
    kiln__strlcpy(tmp, s, sizeof tmp);
  memcpy(words, tmp, sizeof tmp);
}

void kiln__trace_clock_init(void);

/* ------------------------------------------------------------- the core's hooks */
/* A stream's track: its uid (context slot << 40 | ... | its number in the context). */
static uint64_t track_of(kiln__stream_obj *s) {
  return atomic_load_explicit(&s->uid, memory_order_relaxed);
}

void kiln__trace_api_end(void) {
  uint64_t begin = kiln__trace_api_begin_ns;
  if (!begin)
    return;
  kiln__trace_api_begin_ns = 0;
  uint64_t w[KILN__EV_WORDS - 1] = {KILN__EV_HDR(KILN__EV_API, 0, 0, 0), begin, kiln__trace_clock(),
                                    (uint64_t)(uintptr_t)kiln__api_name()};
  kiln__trace_emit(w);
}

static void flow(uint64_t now, uint64_t from_track, uint64_t from_seq, const kiln__op_obj *to,
                 unsigned kind) {
  uint64_t w[KILN__EV_WORDS - 1] = {KILN__EV_HDR(KILN__EV_FLOW, kind, 0, 0),
                                    now,
                                    from_track,
                                    from_seq,
                                    track_of(to->stream),
                                    to->seq};
  kiln__trace_emit(w);
}

/* The op's start event: what the submitting thread knows (its data is hot here), so
 * the completing thread (a worker on another core) touches none of the op's cold
 * fields; write.c joins it with the op's end event by (track, seq). */
static void op_start(kiln__op_obj *op, uint64_t now, uint64_t api_ns);

void kiln__trace_op_submitted(kiln__op_obj *op) {
  bool full = atomic_load_explicit(&kiln__trace_on, memory_order_relaxed) == KILN__TRACE_FULL;
  uint64_t now = kiln__trace_clock();
  op->trace_submit_ns = now; /* for an inferred (observed) start */
  if (full) {
    uint64_t api_ns = kiln__trace_api_begin_ns;
    if (!(atomic_load_explicit(&op->flags, memory_order_relaxed) & KILN__OPF_BLOCKING))
      kiln__trace_api_begin_ns = 0; /* the op's own event carries the API span */
    op_start(op, now, api_ns);
  }
  for (uint32_t i = 0; i < op->dep_count; i++) {
    flow(now, op->deps[i].uid, op->deps[i].seq, op, 0);
  }
  if (op->dep_count)
    kiln__trace_instant("hazard", "hazard wait", 3, "stream",
                        (int64_t)(track_of(op->stream) & 0xfffffu), "seq", (int64_t)op->seq,
                        "waits_for", (int64_t)op->dep_count);
  if (op->kind == KILN__OP_WAIT && op->u.wait.marker) {
    kiln__op_obj *m = op->u.wait.marker;
    flow(now, track_of(m->stream), m->seq, op, 1);
  }
}

/* The ops a host backend's worker began and when: in the worker's own trace buffer,
 * not in the op (the op's memory is the submitting thread's, and a store there would
 * move a cache line between the cores for every op), nor in more TLS (libkiln's
 * initial-exec TLS must fit the static TLS reserve when it is dlopen'ed). A few at
 * once: a worker may begin another op while a fiber holds one. Matched by (op, its
 * stream's uid, seq), so a recycled op never takes a stale entry; an op completed by
 * another thread, or whose entry was reused, gets an inferred start (timing
 * "observed"). */
void kiln__trace_op_begin(kiln__op_obj *op) {
  /* Device backends call kiln__op_begin at submit, for its checks: their ops' spans
   * are observed (or device-timed), never the submit time as a start. */
  kiln_backend_kind k = op->h.ops->kind;
  if (k == KILN_BACKEND_CPU || k == KILN_BACKEND_MOCK) {
    kiln__trace_buf *b = tl_buf ? tl_buf : kiln__trace_my_buf();
    if (!b)
      return;
    kiln__trace_run *r = &b->run[b->run_next++ % KILN__TRACE_RUN_SLOTS];
    /* In a ring, an op the worker took straight after completing another began at that
     * one's end (the dequeue between, a few ns, counted in it): no clock read. */
    bool chained = b->chain_end &&
                   atomic_load_explicit(&kiln__trace_on, memory_order_relaxed) != KILN__TRACE_FULL;
    r->begin = chained ? b->chain_end : kiln__trace_clock();
    b->chain_end = 0;
    r->uid = track_of(op->stream);
    r->seq = op->seq;
    r->op = op;
  }
}

/* The worker's start of op (0 when not found); its slot is freed. */
static uint64_t run_begin(const kiln__op_obj *op, uint64_t uid) {
  kiln__trace_buf *b = tl_buf;
  if (!b)
    return 0;
  /* Newest first: a worker usually completes the op it began last. */
  for (unsigned i = 1; i <= KILN__TRACE_RUN_SLOTS; i++) {
    kiln__trace_run *r = &b->run[(b->run_next - i) % KILN__TRACE_RUN_SLOTS];
    if (r->op == op && r->seq == op->seq && r->uid == uid) {
      r->op = NULL;
      return r->begin;
    }
  }
  return 0;
}

void kiln__trace_worker_idle(void) {
  if (tl_buf) /* also with tracing off: a ring started later must not find an old end */
    tl_buf->chain_end = 0;
}

bool kiln__trace_device_time(void) {
  return KILN__TRACE_ON();
}

static uint64_t op_bytes(const kiln__op_obj *op) {
  switch (op->kind) {
  case KILN__OP_WRITE:
    return op->u.write.bytes;
  case KILN__OP_READ:
    return op->u.read.bytes;
  case KILN__OP_COPY:
    return op->u.copy.bytes;
  case KILN__OP_FILL:
    return op->u.fill.bytes;
  default:
    return 0;
  }
}

/* A stable copy of a kernel's name (kernels die with their context; the trace may be
 * written later): interned once per name, kept for the process. */
typedef struct name_node {
  struct name_node *next;
  char name[64];
} name_node;
static name_node *_Atomic names;

static const char *intern(const char *s) {
  for (name_node *n = atomic_load(&names); n; n = n->next)
    if (strcmp(n->name, s) == 0)
      return n->name;
  pthread_mutex_lock(&trace_lock);
  name_node *n = atomic_load(&names);
  for (; n; n = n->next)
    if (strcmp(n->name, s) == 0)
      break;
  if (!n && (n = calloc(1, sizeof *n)) != NULL) {
    kiln__strlcpy(n->name, s, sizeof n->name);
    n->next = atomic_load(&names);
    atomic_store(&names, n); /* seq_cst: publishes the filled node */
  }
  pthread_mutex_unlock(&trace_lock);
  return n ? n->name : NULL;
}

static const char *kernel_name(kiln__kernel_obj *k) {
  const char *n = atomic_load_explicit(&k->trace_name, memory_order_acquire);
  if (!n) {
    n = intern(k->name);
    atomic_store_explicit(&k->trace_name, n, memory_order_release); /* pairs with the load */
  }
  return n;
}

static void op_start(kiln__op_obj *op, uint64_t now, uint64_t api_ns) {
  unsigned flags = api_ns ? KILN__EVF_API : 0u;
  if (atomic_load_explicit(&op->flags, memory_order_relaxed) & KILN__OPF_BLOCKING)
    flags |= KILN__EVF_BLOCKING;
  const char *name = NULL;
  uint64_t g[3] = {0, 0, 0};
  if (op->kind == KILN__OP_LAUNCH && op->u.launch.kernel) {
    name = kernel_name(op->u.launch.kernel);
    for (unsigned d = 0; d < op->u.launch.range.dims && d < 3; d++)
      g[d] = op->u.launch.range.global[d];
  }
  /* The words of the joined op event (write.c), begin and end (1, 2) from the end. */
  uint64_t w[KILN__EV_WORDS - 1] = {KILN__EV_HDR(KILN__EV_OP_START, op->kind, flags, 0),
                                    0,
                                    0,
                                    now,
                                    api_ns,
                                    track_of(op->stream),
                                    op->seq,
                                    op_bytes(op),
                                    (uint64_t)(uintptr_t)name,
                                    (uint64_t)(uintptr_t)op->api,
                                    (uint64_t)(uintptr_t)op->file,
                                    (uint64_t)(uint32_t)op->line,
                                    g[0],
                                    g[1],
                                    g[2]};
  emit_fast(w, KILN__EV_WORDS - 1);
}

void kiln__trace_op_complete(kiln__op_obj *op, kiln_status status) {
  uint64_t end = kiln__trace_clock();
  kiln__stream_obj *s = op->stream;
  uint64_t track = track_of(s);
  uint64_t begin = run_begin(op, track);
  unsigned flags = 0;
  bool light = atomic_load_explicit(&kiln__trace_on, memory_order_relaxed) != KILN__TRACE_FULL;
  if (begin) { /* run by this worker: its own start */
    flags = KILN__EVF_RUN;
    if (light) /* its end is the next op's begin, unless the worker idles first */
      tl_buf->chain_end = end;
  } else { /* not run by a host backend's worker: it started when it could */
    uint64_t last = atomic_load_explicit(&s->trace_last_end_ns, memory_order_relaxed);
    atomic_store_explicit(&s->trace_last_end_ns, end, memory_order_relaxed);
    begin = op->trace_submit_ns > last ? op->trace_submit_ns : last;
    if (!begin || begin > end)
      begin = end;
  }
  /* Its kernel's name and its bytes too: a ring records no start event (and the
   * worker has both at hand: it ran the op). */
  const char *name = NULL;
  uint64_t bytes = 0;
  if (light || !(flags & KILN__EVF_RUN)) { /* else its start event has them */
    if (op->kind == KILN__OP_LAUNCH && op->u.launch.kernel)
      name = kernel_name(op->u.launch.kernel);
    bytes = op_bytes(op);
  }
  uint64_t w[7] = {KILN__EV_HDR(KILN__EV_OP_END, op->kind, flags, status),
                   begin,
                   end,
                   track,
                   op->seq,
                   (uint64_t)(uintptr_t)name,
                   bytes};
  emit_fast(w, 7);
  /* Device stamps, only of ops no host worker ran (reading them would pull another of
   * the op's cache lines to a host backend's worker). */
  if (!(flags & KILN__EVF_RUN) && op->device_end_ns && op->device_end_ns >= op->device_begin_ns &&
      op->device_begin_ns) {
    /* The device backend's own stamps (monotonic ns, not converted at the write). */
    uint64_t d[KILN__EV_WORDS - 1] = {KILN__EV_HDR(KILN__EV_DEVICE, op->kind, 0, status),
                                      op->device_begin_ns,
                                      op->device_end_ns,
                                      track_of(s),
                                      op->seq,
                                      op_bytes(op),
                                      (uint64_t)(uintptr_t)name,
                                      op->device_error_ns};
    kiln__trace_emit(d);
  }
  if (status != KILN_SUCCESS && atomic_load_explicit(&kiln__trace_ring, memory_order_relaxed)) {
    pthread_mutex_lock(&trace_lock);
    if (trace_path[0])
      kiln__trace_write_file(trace_path, "an operation failed");
    pthread_mutex_unlock(&trace_lock);
  }
}

void kiln__trace_instant(const char *category, const char *name, int nargs, ...) {
  if (!KILN__TRACE_ON())
    return;
  uint64_t w[KILN__EV_WORDS - 1] = {KILN__EV_HDR(KILN__EV_INSTANT, 0, 0, 0), kiln__trace_clock(),
                                    (uint64_t)(uintptr_t)category, (uint64_t)(uintptr_t)name};
  va_list ap;
  va_start(ap, nargs);
  if (nargs > 3)
    nargs = 3;
  for (int i = 0; i < nargs; i++) {
    w[5 + 2 * i] = (uint64_t)(uintptr_t)va_arg(ap, const char *);
    w[6 + 2 * i] = (uint64_t)va_arg(ap, int64_t);
  }
  va_end(ap);
  w[4] = (uint64_t)(nargs < 0 ? 0 : nargs);
  kiln__trace_emit(w);
}

void kiln__trace_instant_str(const char *category, const char *name, const char *key,
                             const char *value) {
  if (!KILN__TRACE_ON())
    return;
  uint64_t w[KILN__EV_WORDS - 1] = {KILN__EV_HDR(KILN__EV_INSTANT_STR, 0, 0, 0),
                                    kiln__trace_clock(), (uint64_t)(uintptr_t)category,
                                    (uint64_t)(uintptr_t)name, (uint64_t)(uintptr_t)key};
  kiln__trace_pack_name(&w[5], value);
  kiln__trace_emit(w);
}

/* ------------------------------------------------------------- the clock */
_Atomic uint64_t kiln__trace_anchor_tsc, kiln__trace_anchor_ns;

void kiln__trace_clock_pair(uint64_t *tsc, uint64_t *ns) {
#if defined(__x86_64__)
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 8 && best > 2000; i++) {
    uint64_t a = __builtin_ia32_rdtsc();
    uint64_t n = kiln__now_ns();
    uint64_t b = __builtin_ia32_rdtsc();
    if (b - a < best) {
      best = b - a;
      *tsc = a + (b - a) / 2;
      *ns = n;
    }
  }
#else
  *tsc = 0;
  *ns = kiln__now_ns();
#endif
}

/* At a trace's start: whether to count in TSC ticks (the kernel's clocksource is the
 * TSC: invariant and synchronised), and the process's first (TSC, ns) anchor. */
void kiln__trace_clock_init(void) {
#if defined(__x86_64__)
  if (atomic_load(&kiln__trace_anchor_ns))
    return;
  char cs[32] = "";
  FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
  if (f) {
    if (!fgets(cs, sizeof cs, f))
      cs[0] = '\0';
    fclose(f);
  }
  if (strncmp(cs, "tsc", 3) == 0 && (cs[3] == '\n' || cs[3] == '\0') &&
      kiln__env_flag("KILN_TRACE_NO_TSC", 0) != 1) {
    uint64_t tsc, ns;
    kiln__trace_clock_pair(&tsc, &ns);
    atomic_store(&kiln__trace_anchor_tsc, tsc);
    atomic_store(&kiln__trace_anchor_ns, ns);
    atomic_store(&kiln__trace_tsc, 1);
    return;
  }
#endif
  atomic_store(&kiln__trace_anchor_ns, kiln__now_ns());
}

/* ------------------------------------------------------------- stream names */
typedef struct track_name {
  uint64_t uid;
  char name[KILN__TRACE_NAME_BYTES];
} track_name;
static track_name *track_names; /* under trace_lock */
static size_t track_name_count, track_name_cap;

bool kiln__trace_track_name_locked(uint64_t uid, char *out) {
  for (size_t i = 0; i < track_name_count; i++)
    if (track_names[i].uid == uid) {
      memcpy(out, track_names[i].name, KILN__TRACE_NAME_BYTES);
      return true;
    }
  return false;
}

kiln_status kiln_trace_name_stream(kiln_stream stream, const char *name) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  if (!name)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "name is NULL");
  return kiln__trace_name_track(atomic_load(&stream->uid), name);
}

kiln_status kiln__trace_name_track(uint64_t uid, const char *name) {
  pthread_mutex_lock(&trace_lock);
  size_t i = 0;
  while (i < track_name_count && track_names[i].uid != uid)
    i++;
  if (i == track_name_count) {
    if (track_name_count == track_name_cap) {
      size_t cap = track_name_cap ? track_name_cap * 2 : 16;
      track_name *t = realloc(track_names, cap * sizeof *t);
      if (!t) {
        pthread_mutex_unlock(&trace_lock);
        return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory naming a stream");
      }
      track_names = t;
      track_name_cap = cap;
    }
    track_names[track_name_count++].uid = uid;
  }
  kiln__strlcpy(track_names[i].name, name, sizeof track_names[i].name);
  pthread_mutex_unlock(&trace_lock);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- sessions */
static void at_exit_flush(void) {
  pthread_mutex_lock(&trace_lock);
  if (atomic_load(&kiln__trace_active) && trace_path[0])
    kiln__trace_write_file(trace_path, "the program exits");
  pthread_mutex_unlock(&trace_lock);
}

/* Whether the trace can be written at `path` (the file if it exists, else its folder;
 * written later as PATH.tmp.PID then renamed), without creating anything; errno set
 * when not. */
static bool writable(const char *path) {
  if (access(path, F_OK) == 0)
    return access(path, W_OK) == 0;
  char dir[PATH_MAX];
  kiln__strlcpy(dir, path, sizeof dir);
  char *slash = strrchr(dir, '/');
  if (!slash)
    return access(".", W_OK | X_OK) == 0;
  if (slash == dir)
    slash[1] = '\0';
  else
    *slash = '\0';
  return access(dir, W_OK | X_OK) == 0;
}

/* Under trace_lock. */
static kiln_status start_locked(const char *path, uint64_t ring) {
  static int exit_hooked;
  if (atomic_load(&kiln__trace_active) && trace_path[0])
    kiln__trace_write_file(trace_path, "a new trace starts");
  atomic_store(&kiln__trace_on, 0);
  atomic_store(&kiln__trace_active, 0);
  trace_path[0] = '\0';
  if (path) {
    char q[KILN__QUOTE_BYTES];
    if (strlen(path) >= sizeof trace_path)
      return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "trace path %s is longer than %zu bytes",
                         kiln__quote(q, path, strlen(path)), sizeof trace_path - 1);
    if (!writable(path)) {
      char why[128];
      snprintf(why, sizeof why, "%s", strerror(errno));
      kiln__error(KILN_ERROR_IO, "cannot write the trace to %s: %s",
                  kiln__quote(q, path, strlen(path)), why);
      kiln__error_suggest("give a path in a writable folder (tracing stays off)");
      return KILN_ERROR_IO;
    }
    kiln__strlcpy(trace_path, path, sizeof trace_path);
  }
  uint64_t cap = 0;
  if (ring)
    for (cap = 1; cap < ring; cap <<= 1) {
    }
  atomic_store(&ring_cap, cap);
  atomic_store(&kiln__trace_ring, ring);
  kiln__trace_clock_init();
  atomic_store(&kiln__trace_t0, kiln__now_ns());
  atomic_fetch_add(&kiln__trace_session, 1); /* seq_cst: buffers start over */
  atomic_store(&kiln__trace_active, 1);
  trace_paused = 0;
  atomic_store(&kiln__trace_on, ring ? KILN__TRACE_RING : KILN__TRACE_FULL);
  if (!exit_hooked) {
    exit_hooked = 1;
    atexit(at_exit_flush);
  }
  return KILN_SUCCESS;
}

kiln_status kiln_trace_start(const kiln_trace_desc *desc) {
  KILN__API_ENTER();
  if (desc && desc->struct_size < sizeof(kiln_trace_desc))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->struct_size is %zu, smaller than kiln_trace_desc (%zu bytes)",
                       desc->struct_size, sizeof(kiln_trace_desc));
  pthread_mutex_lock(&trace_lock);
  kiln_status st = start_locked(desc ? desc->path : NULL, desc ? desc->ring_events : 0);
  pthread_mutex_unlock(&trace_lock);
  return st;
}

static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void env_init(void) {
  const char *path = getenv("KILN_TRACE");
  const char *ring_s = getenv("KILN_TRACE_RING");
  char q[KILN__QUOTE_BYTES];
  uint64_t ring = 0;
  if (ring_s && *ring_s) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(ring_s, &end, 10);
    if (errno || !end || *end || v == 0 || v > (1ull << 24) || ring_s[0] == '-') {
      kiln__log(KILN_LOG_ERROR,
                "KILN_TRACE_RING=%s is not a number of events from 1 to 16777216: tracing "
                "stays off",
                kiln__quote(q, ring_s, strlen(ring_s)));
      return;
    }
    ring = v;
  }
  if (!path || !*path) {
    if (ring)
      kiln__log(KILN_LOG_ERROR, "KILN_TRACE_RING is set but KILN_TRACE (the file to write) is "
                                "not: tracing stays off");
    return;
  }
  if (path[0] != '/') {
    kiln__log(KILN_LOG_ERROR,
              "KILN_TRACE=%s is not an absolute path: give the trace file as /abs/path.json "
              "(tracing stays off)",
              kiln__quote(q, path, strlen(path)));
    return;
  }
  pthread_mutex_lock(&trace_lock);
  kiln_status st = start_locked(path, ring);
  pthread_mutex_unlock(&trace_lock);
  if (st != KILN_SUCCESS)
    kiln__log(KILN_LOG_ERROR, "KILN_TRACE: %s; %s", kiln_last_error()->message,
              kiln_last_error()->suggestion);
}

void kiln__trace_env_init(void) {
  pthread_once(&env_once, env_init);
}

kiln_status kiln_trace_flush(void) {
  KILN__API_ENTER();
  pthread_mutex_lock(&trace_lock);
  kiln_status st;
  if (!atomic_load(&kiln__trace_active))
    st = kiln__error(KILN_ERROR_INVALID_STATE, "no trace is recording: nothing to flush");
  else if (!trace_path[0])
    st = kiln__error(KILN_ERROR_INVALID_STATE,
                     "the trace has no path: write it with kiln_trace_write(path)");
  else
    st = kiln__trace_write_file(trace_path, "kiln_trace_flush");
  pthread_mutex_unlock(&trace_lock);
  return st;
}

kiln_status kiln_trace_write(const char *path) {
  KILN__API_ENTER();
  if (!path)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "path is NULL");
  pthread_mutex_lock(&trace_lock);
  kiln_status st = atomic_load(&kiln__trace_active)
                       ? kiln__trace_write_file(path, "kiln_trace_write")
                       : kiln__error(KILN_ERROR_INVALID_STATE, "no trace is recording");
  pthread_mutex_unlock(&trace_lock);
  return st;
}

kiln_status kiln_trace_stop(void) {
  KILN__API_ENTER();
  pthread_mutex_lock(&trace_lock);
  kiln_status st = KILN_SUCCESS;
  if (atomic_load(&kiln__trace_active)) {
    atomic_store(&kiln__trace_on, 0);
    if (trace_path[0])
      st = kiln__trace_write_file(trace_path, "kiln_trace_stop");
    atomic_store(&kiln__trace_active, 0);
    trace_path[0] = '\0';
  }
  pthread_mutex_unlock(&trace_lock);
  return st;
}

void kiln__trace_context_destroyed(void) {
  if (!atomic_load_explicit(&kiln__trace_active, memory_order_relaxed))
    return;
  pthread_mutex_lock(&trace_lock);
  if (atomic_load(&kiln__trace_active) && trace_path[0])
    kiln__trace_write_file(trace_path, "a context was destroyed");
  pthread_mutex_unlock(&trace_lock);
}

bool kiln_trace_enabled(void) {
  return atomic_load(&kiln__trace_on) != 0;
}

void kiln_trace_pause(void) {
  pthread_mutex_lock(&trace_lock);
  trace_paused = 1;
  atomic_store(&kiln__trace_on, 0);
  pthread_mutex_unlock(&trace_lock);
}

void kiln_trace_resume(void) {
  pthread_mutex_lock(&trace_lock);
  trace_paused = 0;
  if (atomic_load(&kiln__trace_active))
    atomic_store(&kiln__trace_on,
                 atomic_load(&kiln__trace_ring) ? KILN__TRACE_RING : KILN__TRACE_FULL);
  pthread_mutex_unlock(&trace_lock);
}

uint64_t kiln_trace_dropped(void) {
  uint64_t session = atomic_load(&kiln__trace_session), n = 0;
  for (kiln__trace_buf *b = atomic_load(&kiln__trace_bufs); b; b = b->next)
    if (atomic_load(&b->session) == session)
      n += atomic_load(&b->dropped);
  return n;
}
