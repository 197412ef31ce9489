/* SPDX-License-Identifier: MIT */
/* Operations and their tokens, submission with automatic cross-stream hazards, and
 * every wait. Invariants: an op is referenced by the backend until it completes and
 * by its token until the token is waited or released; a stream's `completed` only
 * grows, in seq order; a dependency always names an op submitted earlier, so waits
 * between streams cannot form a cycle. Thread-safe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/tune.h"
#include "trace/trace.h"

/* token id: [context index: 10 bits][op slot: 22 bits][slot generation: 32 bits] */
static uint64_t token_encode(const kiln__op_obj *op) {
  return ((uint64_t)op->h.ctx->index << 54) | ((uint64_t)op->h.slot << 32) |
         atomic_load_explicit(&op->h.slot_gen, memory_order_relaxed);
}

/* ------------------------------------------------------------- op lifetime */
kiln_status kiln__op_new(kiln__stream_obj *stream, kiln__op_kind kind, kiln__op_obj **out) {
  *out = NULL;
  kiln__context_obj *ctx = stream->h.ctx;
  void *e;
  kiln_status st = kiln__slab_alloc(&ctx->ops, &e);
  if (st != KILN_SUCCESS)
    return st;
  kiln__op_obj *op = e;
  /* Each field set once, in place (the slab clears none of an op): the submitting
   * thread writes only the lines it needs, and the lines a worker never touches stay
   * in its cache. Atomic fields with relaxed stores: a stale reader (a token of the
   * slot's previous op, a scan for forgotten tokens) may load them now; the release
   * stores of refs and the tag below publish the rest to a reader that sees them. */
  op->h.ops = stream->h.ops;
  op->h.generation = stream->h.generation;
  op->h.ctx = ctx;
  op->kind = kind;
  atomic_store_explicit(&op->flags, 0, memory_order_relaxed);
  op->stream = stream;
  op->seq = 0;
  atomic_store_explicit(&op->next, NULL, memory_order_relaxed);
  op->dep_count = 0;
  op->dep_cap = KILN__INLINE_DEPS;
  op->deps = op->deps_inline;
  op->native = op->native_aux = op->decor = NULL;
  atomic_store_explicit(&op->native_done, 0, memory_order_relaxed);
  op->native_status = KILN_SUCCESS;
  op->timestamp_ns = 0;
  op->cause = (kiln__cause){0};
  op->device_begin_ns = op->device_end_ns = op->device_error_ns = 0;
  op->native_timing = NULL;
  atomic_store_explicit(&op->done, 0, memory_order_relaxed);
  op->status = KILN_SUCCESS;
  op->line = 0;
  op->api = op->file = NULL;
  atomic_store_explicit(&op->watchers, NULL, memory_order_relaxed);
  op->tune_entry = NULL;
  op->host_bytes = 0;
  op->host_ptr = NULL;
  op->pool_free = op->managed_sync = 0;
  op->trace_submit_ns = op->trace_api_ns = op->trace_begin_ns = 0;
  op->submit_ns = 0;
  op->tune_cand = 0;
  switch (kind) { /* u: what the kind's maker does not set itself */
  case KILN__OP_LAUNCH:
    op->u.launch.kernel = NULL;
    op->u.launch.args = NULL;
    op->u.launch.storage = NULL;
    op->u.launch.arg_count = 0;
    break;
  case KILN__OP_WAIT:
    op->u.wait.marker = NULL;
    break;
  case KILN__OP_CALLBACK:
    op->u.callback.item = NULL;
    break;
  default:
    break;
  }
  /* release: a scan's CAS of refs, or a load of the tag, that sees these stores sees
   * the op's fields (and the slot's new generation) set above. Plain stores on x86,
   * where a seq_cst store's locked exchange waited for every line written above. */
  atomic_store_explicit(&op->refs, 1, memory_order_release);
  atomic_store_explicit(&op->h.tag, KILN__TAG_OP, memory_order_release);
  *out = op;
  return KILN_SUCCESS;
}

static void op_free(kiln__op_obj *op) {
  if (op->deps != op->deps_inline)
    kiln__free(op->deps, sizeof(kiln__dep) * op->dep_cap);
  if (op->kind == KILN__OP_LAUNCH) {
    if (op->u.launch.args && op->u.launch.args != op->u.launch.args_inline)
      kiln__free(op->u.launch.args, sizeof(kiln__launch_arg) * op->u.launch.arg_count);
    if (op->u.launch.storage && op->u.launch.storage != op->u.launch.storage_inline)
      kiln__free_aligned(op->u.launch.storage, op->u.launch.storage_bytes, 64);
  }
  if (op->kind == KILN__OP_CALLBACK && op->u.callback.item)
    kiln__free(op->u.callback.item, sizeof(kiln__callback_item));
  kiln__slab_release(&op->h.ctx->ops, op);
}

void kiln__op_ref(kiln__op *view) {
  atomic_fetch_add(&KILN__OBJ(kiln__op_obj, view)->refs, 1);
}

void kiln__op_unref(kiln__op *view) {
  kiln__op_obj *op = KILN__OBJ(kiln__op_obj, view);
  /* acq_rel: the last owner must see every write made by the others before freeing. */
  if (atomic_fetch_sub_explicit(&op->refs, 1, memory_order_acq_rel) == 1)
    op_free(op);
}

void kiln__op_discard(kiln__op_obj *op) {
  if (op->tune_entry) /* a launch autotuning counted on: no sample from it */
    kiln__tune_record(op->tune_entry, op->tune_cand, 0, KILN_ERROR_INVALID_STATE);
  if (op->kind == KILN__OP_WAIT && op->u.wait.marker)
    kiln__op_unref(&op->u.wait.marker->view);
  op_free(op);
}

kiln_status kiln__op_add_dep(kiln__op_obj *op, const kiln__dep *dep) {
  if (!dep->stream || dep->stream == &op->stream->view || kiln__dep_done(dep))
    return KILN_SUCCESS;
  for (uint32_t i = 0; i < op->dep_count; i++)
    if (op->deps[i].stream == dep->stream && op->deps[i].uid == dep->uid) {
      if (dep->seq > op->deps[i].seq)
        op->deps[i].seq = dep->seq;
      return KILN_SUCCESS;
    }
  if (op->dep_count == op->dep_cap) {
    uint32_t cap = op->dep_cap * 2;
    kiln__dep *d = kiln__alloc(sizeof *d * cap);
    if (!d)
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory adding a dependency");
    memcpy(d, op->deps, sizeof *d * op->dep_count);
    if (op->deps != op->deps_inline)
      kiln__free(op->deps, sizeof *d * op->dep_cap);
    op->deps = d;
    op->dep_cap = cap;
  }
  op->deps[op->dep_count++] = *dep;
  atomic_fetch_add_explicit(&op->h.ctx->stat_cross_deps, 1,
                            memory_order_relaxed); /* a counter only */
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- completion and waits */
static void wake_waiters(kiln__stream_obj *s, uint64_t seq) {
  /* seq_cst: our seq_cst store of `completed`, then these loads, pair with the waiter's
   * seq_cst increment of `waiters` and store of `wake_seq`, then its seq_cst load of
   * the condition: either it sees our store or we see its registration. (No fence:
   * TSan lacks them.) Every sleeper is woken, and re-registers what it waits for. */
  if (atomic_load(&s->waiters) > 0 && seq >= atomic_load(&s->wake_seq)) {
    pthread_mutex_lock(&s->wait_lock);
    atomic_store_explicit(&s->wake_seq, UINT64_MAX, memory_order_relaxed); /* under the lock */
    pthread_cond_broadcast(&s->wait_cond);
    pthread_mutex_unlock(&s->wait_lock);
  }
}

/* ------------------------------------------------------------- failure propagation */
typedef void (*buffer_visit)(kiln__buffer_obj *b, bool whole, void *user);

/* Visit the buffers the op reads (writes = false) or writes (writes = true); `whole`
 * says the op covers the entire buffer. */
static void each_buffer(const kiln__op_obj *op, bool writes, buffer_visit fn, void *user) {
  switch (op->kind) {
  case KILN__OP_WRITE:
    if (writes)
      fn(op->u.write.buffer,
         op->u.write.offset == 0 && op->u.write.bytes == op->u.write.buffer->bytes, user);
    break;
  case KILN__OP_FILL:
    if (writes)
      fn(op->u.fill.buffer, op->u.fill.offset == 0 && op->u.fill.bytes == op->u.fill.buffer->bytes,
         user);
    break;
  case KILN__OP_READ:
    if (!writes)
      fn(op->u.read.buffer, false, user);
    break;
  case KILN__OP_COPY:
    if (writes)
      fn(op->u.copy.dst, op->u.copy.dst_offset == 0 && op->u.copy.bytes == op->u.copy.dst->bytes,
         user);
    else
      fn(op->u.copy.src, false, user);
    break;
  case KILN__OP_LAUNCH:
    for (uint32_t i = 0; i < op->u.launch.arg_count; i++) {
      const kiln__launch_arg *a = &op->u.launch.args[i];
      if (a->kind == KILN_ARG_BUFFER && (writes ? a->writes : a->reads))
        fn(KILN__OBJ(kiln__buffer_obj, a->buffer), false, user);
    }
    break;
  default:
    break;
  }
}

static void find_failed_input(kiln__buffer_obj *b, bool whole, void *user) {
  (void)whole;
  kiln__cause *cause = user;
  if (cause->status || !atomic_load(&b->failed))
    return;
  pthread_mutex_lock(&b->hazard_lock);
  *cause = b->fail_cause;
  pthread_mutex_unlock(&b->hazard_lock);
  if (!cause->status)
    cause->status = KILN_ERROR_DEPENDENCY_FAILED;
}

static void mark_failed(kiln__buffer_obj *b, bool whole, void *user) {
  (void)whole;
  const kiln__cause *cause = user;
  pthread_mutex_lock(&b->hazard_lock);
  if (!atomic_load(&b->failed))
    b->fail_cause = *cause; /* keep the first failure */
  atomic_store(&b->failed, 1);
  pthread_mutex_unlock(&b->hazard_lock);
}

static void clear_failed(kiln__buffer_obj *b, bool whole, void *user) {
  (void)user;
  if (!whole || !atomic_load(&b->failed))
    return;
  pthread_mutex_lock(&b->hazard_lock);
  atomic_store(&b->failed, 0);
  b->fail_cause.status = KILN_SUCCESS;
  pthread_mutex_unlock(&b->hazard_lock);
}

kiln_status kiln__op_begin(kiln__op *view) {
  kiln__op_obj *op = KILN__OBJ(kiln__op_obj, view);
  /* A decorator first (it may delay the op, or fail it: the mock's injections). */
  kiln_status decor = op->h.ops->op_begin ? op->h.ops->op_begin(&op->view) : KILN_SUCCESS;
  kiln__device_obj *dev = op->h.ctx->device;
  if (atomic_load(&dev->lost) || op->h.generation != atomic_load(&dev->generation))
    return KILN_ERROR_DEVICE_LOST;
  if (KILN__TRACE_ON())
    kiln__trace_op_begin(op);
  if (decor != KILN_SUCCESS)
    return decor;
  kiln__cause cause = {KILN_SUCCESS, NULL, NULL, 0, KILN_BACKEND_NONE, 0, NULL, NULL};
  each_buffer(op, false, find_failed_input, &cause);
  if (!cause.status && op->kind == KILN__OP_WAIT && op->u.wait.marker &&
      op->u.wait.marker->status != KILN_SUCCESS)
    cause = op->u.wait.marker->cause;
  if (cause.status) {
    op->cause = cause;
    return KILN_ERROR_DEPENDENCY_FAILED;
  }
  return KILN_SUCCESS;
}

void kiln__op_complete(kiln__op *view, kiln_status status) {
  kiln__op_obj *op = KILN__OBJ(kiln__op_obj, view);
  kiln__stream_obj *s = op->stream;
  if (KILN__TRACE_ON())
    kiln__trace_op_complete(op, status);
  if (status != KILN_SUCCESS) {
    if (!op->cause.status) { /* the op itself failed (a backend may have set native_*) */
      op->cause.status = status;
      op->cause.api = op->api;
      op->cause.file = op->file;
      op->cause.line = op->line;
    }
    each_buffer(op, true, mark_failed, &op->cause);
    pthread_mutex_lock(&s->fail_lock);
    if (!atomic_load(&s->first_error)) {
      atomic_store(&s->first_error, (int)status);
      s->first_error_seq = op->seq;
      s->first_error_cause = op->cause;
    }
    if (!s->marker_cause.status)
      s->marker_cause = op->cause;
    pthread_mutex_unlock(&s->fail_lock);
  } else if (op->kind == KILN__OP_MARKER && !op->pool_free) {
    /* An event completes with the first failure on its stream since the last event. */
    pthread_mutex_lock(&s->fail_lock);
    if (s->marker_cause.status) {
      op->cause = s->marker_cause;
      status = s->marker_cause.status;
      s->marker_cause.status = KILN_SUCCESS;
    }
    pthread_mutex_unlock(&s->fail_lock);
  } else {
    each_buffer(op, true, clear_failed, NULL);
  }
  op->status = status;
  if (op->kind == KILN__OP_WAIT && op->u.wait.marker) {
    kiln__op_unref(&op->u.wait.marker->view);
    op->u.wait.marker = NULL;
  }
  if (op->kind == KILN__OP_CALLBACK) {
    kiln__callback_item *item = op->u.callback.item;
    op->u.callback.item = NULL;
    item->status = (kiln_status)atomic_load(&s->first_error);
    item->op = op; /* running it observes the stream's work up to here (guard) */
    item->observe = KILN__OBSERVE_UPTO;
    item->stream_uid = atomic_load(&s->uid);
    kiln__op_ref(&op->view);
    kiln__callback_post(op->h.ctx, item);
  }
  if (s->stats_on || atomic_load_explicit(&s->tuning, memory_order_relaxed)) {
    /* Busy from the op's submission, or its predecessor's completion if later, to now.
     * Completions of one stream are in seq order, one at a time: relaxed is enough
     * (readers only sum statistics; `tuning` only says whether to keep last_done_ns,
     * and a predecessor that completed before a timed launch's submission needs none). */
    uint64_t now = kiln__now_ns();
    uint64_t last = atomic_load_explicit(&s->last_done_ns, memory_order_relaxed);
    uint64_t start = op->submit_ns > last ? op->submit_ns : last;
    if (s->stats_on && now > start)
      atomic_fetch_add_explicit(&s->busy_ns, now - start, memory_order_relaxed);
    atomic_store_explicit(&s->last_done_ns, now, memory_order_relaxed);
    if (op->tune_entry) {
      kiln__tune_record(op->tune_entry, op->tune_cand, now > start ? now - start : 0, status);
      op->tune_entry = NULL;
      atomic_fetch_sub_explicit(&s->tuning, 1, memory_order_relaxed);
    }
  }
  /* release: publishes the op's results (status, cause, timestamp, the bytes it wrote)
   * to whoever loads `done`. Only `completed` needs seq_cst (see kiln__op_done and
   * wake_waiters): one locked exchange per op rather than two. */
  atomic_store_explicit(&op->done, 1, memory_order_release);
  atomic_store(&s->completed, op->seq);
  wake_waiters(s, op->seq);
  /* seq_cst loads after the store of `completed`: they pair with kiln__op_watch's push
   * then kiln__op_done, and with kiln_stream_fd's store of `notify` then load of
   * `completed` (notify.c): either side sees the other. */
  if (atomic_load(&op->watchers) || atomic_load(&s->notify))
    kiln__op_completed_notify(op);
  /* release: pairs with the acquire load in kiln__stream_wait_notified — who sees this
   * seq sees the callbacks the watches posted. A plain store (one completer at a time,
   * in seq order), on `completed`'s line. */
  atomic_store_explicit(&s->notified, op->seq, memory_order_release);
  kiln__op_unref(&op->view);
}

/* Spin for a while, then sleep on the stream's condition until done() holds, which it
 * does once the stream's `completed` reaches `target` (or sooner). */
typedef bool (*done_fn)(const void *arg);

static kiln_status wait_until_used(kiln__stream_obj *s, done_fn done, const void *arg,
                                   uint64_t target, uint64_t timeout_ns) {
  if (done(arg))
    return KILN_SUCCESS;
  uint64_t start = kiln__now_ns();
  uint64_t spin_until = start + KILN__SPIN_NS;
  uint64_t deadline = timeout_ns == UINT64_MAX ? UINT64_MAX : start + timeout_ns;
  if (deadline < spin_until)
    spin_until = deadline;
  kiln__backoff backoff = {0};
  for (;;) {
    if (done(arg))
      return KILN_SUCCESS;
    kiln__backoff_step(&backoff);
    if (kiln__now_ns() >= spin_until)
      break;
  }
  kiln_status st = KILN_SUCCESS;
  pthread_mutex_lock(&s->wait_lock);
  atomic_fetch_add(&s->waiters, 1);
  for (;;) {
    /* seq_cst store, then done()'s seq_cst loads: see wake_waiters. Under wait_lock,
     * where completers reset it when they wake the sleepers. */
    if (atomic_load_explicit(&s->wake_seq, memory_order_relaxed) > target)
      atomic_store(&s->wake_seq, target);
    if (done(arg))
      break;
    if (deadline == UINT64_MAX) {
      pthread_cond_wait(&s->wait_cond, &s->wait_lock);
    } else if (kiln__now_ns() >= deadline ||
               kiln__cond_timedwait_ns(&s->wait_cond, &s->wait_lock, deadline) != 0) {
      if (!done(arg))
        st = KILN_TIMEOUT;
      break;
    }
  }
  atomic_fetch_sub(&s->waiters, 1);
  pthread_mutex_unlock(&s->wait_lock);
  return st;
}

/* wait_until_used with the stream's wait_users raised around it (see core.h). */
static kiln_status wait_until(kiln__stream_obj *s, done_fn done, const void *arg, uint64_t target,
                              uint64_t timeout_ns) {
  if (done(arg)) /* done already: no need to hold the stream (the common round trip) */
    return KILN_SUCCESS;
  atomic_fetch_add(&s->wait_users, 1);
  kiln_status st = wait_until_used(s, done, arg, target, timeout_ns);
  atomic_fetch_sub(&s->wait_users, 1);
  return st;
}

bool kiln__dep_done(const kiln__dep *dep) {
  if (!dep->stream)
    return true;
  kiln__stream_obj *s = KILN__OBJ(kiln__stream_obj, dep->stream);
  if (atomic_load(&s->uid) != dep->uid)
    return true; /* destroyed: it was idle */
  return atomic_load(&s->completed) >= dep->seq;
}

static bool dep_done_fn(const void *arg) {
  return kiln__dep_done(arg);
}

/* Tests (core.h): a destroy on another thread placed just before a backend call. */
static void before_backend_wait(kiln__stream_obj *s) {
  void (*hook)(kiln__stream_obj *) = atomic_load_explicit(
      &kiln__test_hooks_now.before_backend_wait, memory_order_relaxed); /* set before the call */
  if (hook)
    hook(s);
}

kiln_status kiln__dep_wait(const kiln__dep *dep, uint64_t timeout_ns) {
  if (kiln__dep_done(dep))
    return KILN_SUCCESS;
  kiln__stream_obj *s = KILN__OBJ(kiln__stream_obj, dep->stream);
  atomic_fetch_add(&s->wait_users, 1);
  kiln_status st = KILN_SUCCESS;
  if (!kiln__dep_done(dep)) { /* after raising wait_users: the stream is still alive */
    if (timeout_ns == UINT64_MAX && dep->stream->h.ops->stream_wait) {
      before_backend_wait(s);
      dep->stream->h.ops->stream_wait(dep->stream);
    }
    st = wait_until_used(s, dep_done_fn, dep, dep->seq, timeout_ns);
  }
  atomic_fetch_sub(&s->wait_users, 1);
  return st;
}

bool kiln__dep_await_listed(const kiln__dep *dep, const _Atomic uint64_t *listed) {
  for (unsigned i = 0; atomic_load(listed) < dep->seq; i++) {
    if (kiln__dep_done(dep))
      return true;
    if (i > 64)
      kiln__yield();
    else
      kiln__cpu_relax();
  }
  return kiln__dep_done(dep);
}

static bool op_done_fn(const void *arg) {
  return kiln__op_done(arg); /* after raising `waiters`: see kiln__op_done */
}

kiln_status kiln__op_wait(kiln__op_obj *op, uint64_t timeout_ns) {
  if (atomic_load(&op->done))
    return KILN_SUCCESS;
  kiln__stream_obj *s = op->stream;
  if (!op->h.ops->op_wait && !op->h.ops->poll) /* a host backend: nothing to ask it */
    return wait_until(s, op_done_fn, op, op->seq, timeout_ns);
  /* The backend's hooks reach the op's stream, which another thread may be destroying
   * (an event's marker): with wait_users raised and the op not done, its teardown has
   * not passed its wait for wait_users (seq_cst both sides, as kiln__stream_poll). */
  atomic_fetch_add(&s->wait_users, 1);
  kiln_status st = KILN_SUCCESS;
  if (timeout_ns == UINT64_MAX && op->h.ops->op_wait && !kiln__op_done(op)) {
    before_backend_wait(s);
    op->h.ops->op_wait(&op->view);
  }
  if (timeout_ns != UINT64_MAX && op->h.ops->poll) {
    /* A backend that completes ops only when asked: poll until done or the deadline. */
    uint64_t deadline = kiln__now_ns() + timeout_ns;
    while (!kiln__op_done(op)) {
      op->h.ops->poll(&s->view);
      if (atomic_load(&op->done))
        break;
      uint64_t now = kiln__now_ns();
      if (now >= deadline) {
        st = KILN_TIMEOUT;
        break;
      }
      kiln__sleep_ns(deadline - now < 20000 ? deadline - now : 20000);
    }
  } else {
    st = wait_until_used(s, op_done_fn, op, op->seq, timeout_ns);
  }
  atomic_fetch_sub(&s->wait_users, 1);
  return st;
}

void kiln__stream_poll(kiln__stream_obj *s) {
  if (!s->h.ops->poll)
    return;
  /* The caller may race the stream's destroy (a query whose handle check came first, an
   * event's marker on a stream another thread destroys): wait_users raised, then work
   * still queued, proves the teardown has not passed its wait for wait_users, so the
   * backend's stream is whole. Both seq_cst: the teardown's idle check (`completed`),
   * then its load of wait_users, pair with them. */
  atomic_fetch_add(&s->wait_users, 1);
  if (atomic_load(&s->completed) < atomic_load(&s->submitted)) {
    before_backend_wait(s);
    s->h.ops->poll(&s->view);
  }
  atomic_fetch_sub(&s->wait_users, 1);
}

void kiln__stream_wait_idle(kiln__stream_obj *s) {
  /* kiln__dep_wait calls the backend's stream_wait itself, after raising wait_users:
   * calling it here first, unguarded, reached a stream another thread's destroy had
   * torn down meanwhile (kiln_stream_synchronize, or a context synchronize or kernel
   * destroy walking the streams, racing kiln_stream_destroy). */
  kiln__dep dep = {&s->view, atomic_load(&s->uid), atomic_load(&s->submitted)};
  kiln__dep_wait(&dep, UINT64_MAX);
}

kiln__test_hooks kiln__test_hooks_now;

void kiln__stream_wait_notified(kiln__stream_obj *s) {
  uint64_t target = atomic_load(&s->completed);
  /* acquire: pairs with the completer's release store after it fired the watches. The
   * window is a few instructions of the completer's, unless it was preempted there. */
  if (atomic_load_explicit(&s->notified, memory_order_acquire) >= target)
    return;
  void (*hook)(kiln__stream_obj *) = atomic_load(&kiln__test_hooks_now.waiting_notified);
  if (hook)
    hook(s);
  for (unsigned i = 0; atomic_load_explicit(&s->notified, memory_order_acquire) < target; i++) {
    if (i < 64)
      kiln__cpu_relax();
    else
      kiln__yield();
  }
}

/* ------------------------------------------------------------- submission */
static int cmp_use(const void *a, const void *b) {
  const kiln__use *x = a, *y = b;
  return x->buffer < y->buffer ? -1 : x->buffer > y->buffer;
}

static kiln_status reserve_reader(kiln__buffer_obj *b) {
  if (b->reader_count < b->reader_cap)
    return KILN_SUCCESS;
  uint32_t cap = b->reader_cap ? b->reader_cap * 2 : 4;
  kiln__dep *r = kiln__alloc(sizeof *r * cap);
  if (!r)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory tracking readers");
  if (b->reader_count)
    memcpy(r, b->readers, sizeof *r * b->reader_count);
  if (b->readers && b->readers != b->readers_inline)
    kiln__free(b->readers, sizeof *r * b->reader_cap);
  b->readers = r;
  b->reader_cap = cap;
  return KILN_SUCCESS;
}

kiln_status kiln__submit(kiln__op_obj *op, const kiln__use *uses_in, size_t use_count,
                         kiln_pending *token, const char *file, int line) {
  kiln__stream_obj *s = op->stream;
  kiln__use uses[KILN_MAX_KERNEL_ARGS];
  if (use_count > KILN_MAX_KERNEL_ARGS)
    use_count = KILN_MAX_KERNEL_ARGS; /* validated earlier */
  if (use_count) {
    memcpy(uses, uses_in, sizeof *uses * use_count);
    /* Lock buffers in address order (deadlock-free); a buffer used twice counts once,
     * as a write if either use writes. */
    qsort(uses, use_count, sizeof *uses, cmp_use);
  }
  size_t n = 0;
  for (size_t i = 0; i < use_count; i++) {
    if (n && uses[n - 1].buffer == uses[i].buffer) {
      uses[n - 1].write = uses[n - 1].write || uses[i].write;
      continue;
    }
    uses[n++] = uses[i];
  }
  for (size_t i = 0; i < n && !op->managed_sync; i++)
    if (uses[i].buffer->managed) { /* uploads before the op, refusals (managed.c) */
      kiln_status mst = kiln__managed_before_use(s, uses[i].buffer, uses[i].write);
      if (mst != KILN_SUCCESS) {
        kiln__op_discard(op);
        return mst;
      }
    }
  op->api = kiln__api_name();
  /* KILN_NO_TOKEN: no token, but the call site is kept and the host range guarded
   * until a covering stream, event or context wait. */
  bool no_token = token == KILN_NO_TOKEN;
  if (no_token) {
    token = NULL;
    op->file = file;
    op->line = line;
  }
  if (token) { /* not yet visible to another thread: the backend's queue publishes it */
    atomic_store_explicit(&op->refs, 2, memory_order_relaxed);
    atomic_store_explicit(&op->flags,
                          atomic_load_explicit(&op->flags, memory_order_relaxed) | KILN__OPF_TOKEN,
                          memory_order_relaxed);
    op->file = file;
    op->line = line;
  }

  pthread_mutex_lock(&s->submit_lock);
  /* relaxed: `closed` is written under the submit lock, which we hold. */
  if (atomic_load_explicit(&s->closed, memory_order_relaxed)) {
    pthread_mutex_unlock(&s->submit_lock);
    kiln__op_discard(op);
    return kiln__error(KILN_ERROR_INVALID_HANDLE,
                       "stream %p was destroyed by another thread while this call used it",
                       (void *)s);
  }
  uint64_t seq = atomic_load(&s->submitted) + 1;
  uint64_t uid = atomic_load(&s->uid);
  kiln_status st = KILN_SUCCESS;
  for (size_t i = 0; i < n; i++)
    pthread_mutex_lock(&uses[i].buffer->hazard_lock);
  for (size_t i = 0; i < n && st == KILN_SUCCESS; i++) {
    kiln__buffer_obj *b = uses[i].buffer;
    /* A destroy or pool free on another thread since the call checked the handle:
     * they mark the buffer dead before they look at its work under this lock, so an op
     * is either registered here first (and waited for) or refused. The pool free's own
     * marker (pool_free) is the one op of a dead buffer. */
    if (!op->pool_free && (atomic_load(&b->h.tag) & KILN__TAG_DEAD) != 0) {
      st = kiln__error(KILN_ERROR_INVALID_HANDLE,
                       "buffer %p was destroyed by another thread while this call used it",
                       (void *)b);
      break;
    }
    st = kiln__op_add_dep(op, &b->last_write);
    if (uses[i].write)
      for (uint32_t r = 0; r < b->reader_count && st == KILN_SUCCESS; r++)
        st = kiln__op_add_dep(op, &b->readers[r]);
    else if (st == KILN_SUCCESS)
      st = reserve_reader(b);
  }
  if (st == KILN_SUCCESS) {
    kiln__dep me = {&s->view, uid, seq};
    for (size_t i = 0; i < n; i++) {
      kiln__buffer_obj *b = uses[i].buffer;
      if (uses[i].write) {
        b->last_write = me;
        b->reader_count = 0;
        continue;
      }
      uint32_t r = 0;
      while (r < b->reader_count && b->readers[r].stream != &s->view)
        r++;
      if (r == b->reader_count)
        b->reader_count++;
      b->readers[r] = me;
    }
  }
  for (size_t i = n; i-- > 0;)
    pthread_mutex_unlock(&uses[i].buffer->hazard_lock);
  if (st != KILN_SUCCESS) {
    pthread_mutex_unlock(&s->submit_lock);
    kiln__op_discard(op);
    return st;
  }
  op->seq = seq;
  /* A statistic, written only under the submit lock: a relaxed load and store, no
   * locked instruction (kiln_context_get_stats sums the streams). */
  atomic_store_explicit(&s->ops_counted,
                        atomic_load_explicit(&s->ops_counted, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  uint64_t id = token ? token_encode(op) : 0;
  if ((token || no_token) && op->host_bytes) /* a read or write: its one use is its buffer */
    kiln__guard_add(s, seq, uses[0].buffer, op->host_ptr, op->host_bytes);
  if (KILN__TRACE_ON() && kiln__trace_submit_records(op))
    kiln__trace_op_submitted(op);
  /* A stream with a descriptor (kiln_stream_fd) needs its ops to complete unasked. The
   * relaxed load: `notify` is written only under the submit lock, which we hold. */
  bool notify_op =
      s->h.ops->op_notify && atomic_load_explicit(&s->notify, memory_order_relaxed) != NULL;
  if (notify_op)
    kiln__op_ref(&op->view); /* ours, past the submit */
  if (op->tune_entry)        /* an autotuned launch: completions keep last_done_ns from now */
    atomic_fetch_add_explicit(&s->tuning, 1, memory_order_relaxed);
  if (s->stats_on || op->tune_entry) /* busy time of pool and set streams, timed launches */
    op->submit_ns = kiln__now_ns();
  s->h.ops->submit(&s->view, &op->view);
  /* release (and the unlock below): whoever reads `submitted` then waits for `completed`
   * to reach it; no Dekker pairing rests on this store (that is on `completed` and
   * `waiters`, see wake_waiters). */
  atomic_store_explicit(&s->submitted, seq, memory_order_release);
  /* relaxed: `notify` is written only under the submit lock, which we hold. */
  if (atomic_load_explicit(&s->notify, memory_order_relaxed))
    kiln__stream_submitted_notify(s); /* new work: the descriptor is not readable */
  pthread_mutex_unlock(&s->submit_lock);
  if (notify_op) {
    s->h.ops->op_notify(&s->view, &op->view);
    kiln__op_unref(&op->view);
  }
  if (token)
    token->id = id;
  return KILN_SUCCESS;
}

kiln_status kiln__stream_take_error(kiln__stream_obj *s, kiln__cause *cause) {
  if (!atomic_load(&s->first_error))
    return KILN_SUCCESS;
  pthread_mutex_lock(&s->fail_lock);
  kiln_status st = (kiln_status)atomic_exchange(&s->first_error, 0);
  s->first_error_seq = 0;
  if (cause)
    *cause = s->first_error_cause;
  pthread_mutex_unlock(&s->fail_lock);
  return st;
}

void kiln__stream_error_reported(kiln__stream_obj *s, uint64_t seq) {
  if (!atomic_load(&s->first_error))
    return;
  pthread_mutex_lock(&s->fail_lock);
  if (s->first_error_seq && s->first_error_seq <= seq) {
    atomic_store(&s->first_error, 0);
    s->first_error_seq = 0;
  }
  pthread_mutex_unlock(&s->fail_lock);
}

/* ": CUDA_ERROR_X from cuCall" (what of them the cause has), for failure messages. */
static const char *native_suffix(const kiln__cause *cause, char *buf, size_t bytes) {
  snprintf(buf, bytes, "%s%s%s%s", cause->native_name ? ": " : "",
           cause->native_name ? cause->native_name : "", cause->native_call ? " from " : "",
           cause->native_call ? cause->native_call : "");
  return buf;
}

kiln_status kiln__report_sync_failure(const char *what, kiln_status st, const kiln__cause *cause) {
  char suffix[160], where[160] = "";
  if (cause->file)
    snprintf(where, sizeof where, " at %s:%d", cause->file, cause->line);
  kiln_status root = cause->status ? cause->status : st;
  return kiln__error_native(st, cause->backend, cause->native_code, cause->native_name,
                            "work on the %s failed earlier: the operation queued by %s%s failed "
                            "with %s (%s)%s",
                            what, cause->api ? cause->api : "a kiln call", where,
                            kiln_status_name(root), kiln_status_message(root),
                            native_suffix(cause, suffix, sizeof suffix));
}

/* Fill the error detail of a failed op for the wait that reports it. */
/* `on` names the op's stream (" on stream 'h2d-0' (id 3)"), or is "". */
static kiln_status report_failure(kiln_status st, const kiln__cause *cause, const char *file,
                                  int line, const char *on) {
  char suffix[160];
  if (st == KILN_ERROR_DEPENDENCY_FAILED && cause->status && cause->status != st)
    return kiln__error_native(st, cause->backend, cause->native_code, cause->native_name,
                              "the operation queued at %s:%d%s did not run: it depends on the "
                              "operation queued at %s:%d (%s), which failed with %s%s%s",
                              file, line, on, cause->file ? cause->file : "?", cause->line,
                              cause->api ? cause->api : "?", kiln_status_name(cause->status),
                              cause->native_name ? ": " : "",
                              cause->native_name ? cause->native_name : "");
  return kiln__error_native(st, cause->backend, cause->native_code, cause->native_name,
                            "the operation queued at %s:%d (%s)%s failed: %s%s", file, line,
                            cause->api ? cause->api : "?", on, kiln_status_message(st),
                            native_suffix(cause, suffix, sizeof suffix));
}

kiln_status kiln__submit_and_wait(kiln__op_obj *op, const kiln__use *uses, size_t use_count) {
  atomic_fetch_add(&op->refs, 1); /* ours, dropped below */
  atomic_fetch_or(&op->flags, KILN__OPF_BLOCKING);
  kiln_status st = kiln__submit(op, uses, use_count, NULL, NULL, 0);
  if (st != KILN_SUCCESS)
    return st; /* submit discarded the op, both refs */
  kiln__op_wait(op, UINT64_MAX);
  st = op->status;
  if (st != KILN_SUCCESS) {
    kiln__cause cause = op->cause;
    kiln__stream_error_reported(op->stream, op->seq);
    if (st == KILN_ERROR_DEPENDENCY_FAILED && cause.status && cause.status != st)
      report_failure(st, &cause, "(this blocking call)", 0, "");
    else {
      char suffix[160];
      kiln__error_native(st, cause.backend, cause.native_code, cause.native_name, "%s failed: %s%s",
                         op->api ? op->api : "the call", kiln_status_message(st),
                         native_suffix(&cause, suffix, sizeof suffix));
    }
  }
  kiln__op_unref(&op->view);
  if (KILN__TRACE_ON())
    kiln__trace_api_end();
  return st;
}

/* ------------------------------------------------------------- tokens */
/* A token whose stream was destroyed before it was waited: the destroy waited for the
 * op and released the token (forgotten_one kept the op's outcome in its slot). Fills
 * the error and answers true when slot `op` remembers generation `gen`. */
static bool orphan_report(kiln__context_obj *ctx, kiln__op_obj *op, uint32_t gen, uint64_t id) {
  pthread_mutex_lock(&ctx->lock);
  bool found = op->orphan_gen == gen;
  kiln__cause c = {0};
  if (found) {
    c.status = op->orphan_status;
    c.api = op->orphan_api;
    c.file = op->orphan_file;
    c.line = op->orphan_line;
  }
  pthread_mutex_unlock(&ctx->lock);
  if (!found)
    return false;
  kiln__error(KILN_ERROR_INVALID_HANDLE,
              "token 0x%016llx is of the operation queued by %s at %s:%d, whose stream was "
              "destroyed before the token was waited: the destroy waited for the operation "
              "(it completed with %s) and released the token",
              (unsigned long long)id, c.api ? c.api : "a kiln call", c.file ? c.file : "?", c.line,
              kiln_status_name(c.status));
  kiln__error_suggest("wait or release a stream's tokens before destroying the stream");
  return true;
}

static kiln_status token_lookup(const kiln_pending *token, kiln__op_obj **out) {
  *out = NULL;
  if (!token)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "token is NULL");
  if (token == KILN_NO_TOKEN) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                "token is KILN_NO_TOKEN: that sentinel says no token was made (a later stream, "
                "event or context wait covers the operation), so there is nothing to wait, "
                "query or release");
    kiln__error_suggest("wait the operation's stream (kiln_stream_synchronize), an event "
                        "recorded after it, or the context; or pass a kiln_pending to the "
                        "_async call to get a token");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  uint64_t id = token->id;
  if (id == 0) {
    kiln__error(KILN_ERROR_INVALID_HANDLE, "the token is empty: it was already waited or "
                                           "released, or its _async call failed");
    kiln__error_suggest("wait each token exactly once, and only tokens of successful calls");
    return KILN_ERROR_INVALID_HANDLE;
  }
  uint32_t ci = (uint32_t)(id >> 54), slot = (uint32_t)(id >> 32) & ((1u << 22) - 1u);
  uint32_t gen = (uint32_t)id;
  kiln__context_obj *ctx = kiln__context_at(ci);
  if (!ctx || atomic_load(&ctx->h.tag) != KILN__TAG_CONTEXT)
    return kiln__error(KILN_ERROR_INVALID_HANDLE,
                       "token 0x%016llx belongs to a context that was destroyed",
                       (unsigned long long)id);
  kiln__op_obj *op = kiln__slab_at_gen(&ctx->ops, slot, gen);
  if (!op || atomic_load(&op->h.tag) != KILN__TAG_OP ||
      !(atomic_load(&op->flags) & KILN__OPF_TOKEN)) {
    kiln__op_obj *any = kiln__slab_at(&ctx->ops, slot);
    if (any && orphan_report(ctx, any, gen, id))
      return KILN_ERROR_INVALID_HANDLE;
    kiln__error(KILN_ERROR_INVALID_HANDLE,
                "token 0x%016llx was already waited or released (or is stale)",
                (unsigned long long)id);
    kiln__error_suggest("wait each token exactly once; copies of a token are the same token");
    return KILN_ERROR_INVALID_HANDLE;
  }
  *out = op;
  return KILN_SUCCESS;
}

/* Claim the token: for this thread's wait (WAITING set: a concurrent second wait is
 * refused), or, with consume, for good (TOKEN cleared in the same exchange: the
 * token's reference is the caller's, its id still to be zeroed). */
static kiln_status token_claim_as(const kiln_pending *token, bool consume, kiln__op_obj **out) {
  kiln_status st = token_lookup(token, out);
  if (st != KILN_SUCCESS)
    return st;
  kiln__op_obj *op = *out;
  uint32_t f = atomic_load(&op->flags);
  for (;;) {
    if (!(f & KILN__OPF_TOKEN) || (f & KILN__OPF_WAITING)) {
      *out = NULL;
      return kiln__error(KILN_ERROR_INVALID_HANDLE,
                         "token 0x%016llx is being waited by another thread, or was already waited",
                         (unsigned long long)token->id);
    }
    uint32_t want = consume ? f & ~(uint32_t)KILN__OPF_TOKEN : f | KILN__OPF_WAITING;
    if (atomic_compare_exchange_weak(&op->flags, &f, want))
      return KILN_SUCCESS;
  }
}

static kiln_status token_claim(const kiln_pending *token, kiln__op_obj **out) {
  return token_claim_as(token, false, out);
}

static void token_unclaim(kiln__op_obj *op) {
  atomic_fetch_and(&op->flags, ~(uint32_t)KILN__OPF_WAITING);
}

/* Consume a claimed, completed token: return the op's status with detail. */
static kiln_status token_finish(kiln_pending *token, kiln__op_obj *op) {
  kiln_status st = op->status;
  kiln__cause cause = op->cause;
  if (op->host_bytes)
    kiln__guard_release_op(op->stream, atomic_load(&op->stream->uid), op->seq);
  const char *file = op->file ? op->file : "?";
  int line = op->line;
  char on[KILN__STREAM_NAME_BYTES + 4] = "";
  if (st != KILN_SUCCESS) {
    kiln__stream_error_reported(op->stream, op->seq);
    char name[KILN__STREAM_NAME_BYTES];
    snprintf(on, sizeof on, " on %s", kiln__stream_name(name, op->stream));
  }
  atomic_fetch_and(&op->flags, ~(uint32_t)(KILN__OPF_TOKEN | KILN__OPF_WAITING));
  token->id = 0;
  kiln__op_unref(&op->view);
  if (st != KILN_SUCCESS)
    report_failure(st, &cause, file, line, on);
  return st;
}

kiln_status kiln_wait_at(kiln_pending *token, const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  kiln__op_obj *op;
  kiln_status st = token_claim(token, &op);
  if (st != KILN_SUCCESS)
    return st;
  kiln__op_wait(op, UINT64_MAX);
  if (KILN__TRACE_ON())
    kiln__trace_api_end();
  return token_finish(token, op);
}

kiln_status kiln_wait_timeout_at(kiln_pending *token, uint64_t timeout_ns, const char *file,
                                 int line) {
  KILN__API_ENTER_AT(file, line);
  kiln__op_obj *op;
  kiln_status st = token_claim(token, &op);
  if (st != KILN_SUCCESS)
    return st;
  if (kiln__op_wait(op, timeout_ns) == KILN_TIMEOUT) {
    token_unclaim(op);
    return KILN_TIMEOUT;
  }
  return token_finish(token, op);
}

kiln_status kiln_wait_all_at(kiln_pending *tokens, size_t count, const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  if (!tokens && count)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "tokens is NULL with count %zu", count);
  if (tokens == KILN_NO_TOKEN && count) {
    kiln_pending *none = KILN_NO_TOKEN;
    kiln__op_obj *op;
    return token_lookup(none, &op); /* its message */
  }
  /* Claim every token first, so a bad one is refused before any is consumed. */
  for (size_t i = 0; i < count; i++) {
    kiln__op_obj *op;
    kiln_status st = token_claim(&tokens[i], &op);
    if (st != KILN_SUCCESS) {
      char msg[sizeof kiln_last_error()->message];
      kiln__strlcpy(msg, kiln_last_error()->message, sizeof msg);
      size_t dup = i;
      for (size_t j = 0; j < i && dup == i; j++)
        if (tokens[j].id == tokens[i].id)
          dup = j;
      for (size_t j = 0; j < i; j++) {
        kiln__op_obj *prev;
        if (token_lookup(&tokens[j], &prev) == KILN_SUCCESS)
          token_unclaim(prev);
      }
      if (dup < i) {
        kiln__error(st,
                    "tokens[%zu] duplicates tokens[%zu] (token 0x%016llx): the same token "
                    "twice in one kiln_wait_all",
                    i, dup, (unsigned long long)tokens[i].id);
        kiln__error_suggest("pass each token once; copies of a token are the same token");
        return st;
      }
      kiln__error(st, "tokens[%zu]: %s", i, msg);
      return st;
    }
  }
  /* Wait from the last token back: tokens usually come in submission order, and on an
   * in-order stream the last op's completion completes those before it, so the waits
   * after the first find their ops done (one native wait for a burst, not one each). */
  for (size_t i = count; i-- > 0;) {
    kiln__op_obj *op;
    token_lookup(&tokens[i], &op);
    kiln__op_wait(op, UINT64_MAX);
  }
  kiln_status first = KILN_SUCCESS;
  size_t first_index = 0;
  for (size_t i = 0; i < count; i++) {
    kiln__op_obj *op;
    token_lookup(&tokens[i], &op);
    kiln_status st = token_finish(&tokens[i], op);
    if (st != KILN_SUCCESS && first == KILN_SUCCESS) {
      first = st;
      first_index = i;
    }
  }
  if (first != KILN_SUCCESS)
    kiln__error(first, "tokens[%zu] failed: %s", first_index, kiln_status_message(first));
  return first;
}

kiln_status kiln_pending_query(const kiln_pending *token) {
  KILN__API_ENTER();
  kiln__op_obj *op;
  kiln_status st = token_lookup(token, &op);
  if (st != KILN_SUCCESS)
    return st;
  if (!atomic_load(&op->done))
    kiln__stream_poll(op->stream);
  return atomic_load(&op->done) ? KILN_SUCCESS : KILN_NOT_READY;
}

kiln_status kiln_pending_release_at(kiln_pending *token, const char *file, int line) {
  KILN__API_ENTER_QUICK_AT(file, line); /* one per op of a burst: no trace stamp */
  kiln__op_obj *op;
  kiln_status st = token_claim_as(token, true, &op);
  if (st != KILN_SUCCESS)
    return st;
  token->id = 0;
  kiln__op_unref(&op->view);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- forgotten tokens */
struct forgotten_scan {
  kiln__stream_obj *stream;
  unsigned count;
};

/* Take a reference to an op seen alive in a scan, if it still is the same op: other
 * threads may free and reuse its slot meanwhile (the memory itself stays). */
static bool op_try_ref(kiln__op_obj *op, uint32_t gen) {
  int refs = atomic_load(&op->refs);
  do {
    if (refs <= 0)
      return false;
  } while (!atomic_compare_exchange_weak(&op->refs, &refs, refs + 1));
  /* Our reference now pins whatever op lives in the slot; is it the one we saw? */
  if (atomic_load(&op->h.tag) != KILN__TAG_OP || atomic_load(&op->h.slot_gen) != gen) {
    kiln__op_unref(&op->view);
    return false;
  }
  return true;
}

static void forgotten_one(void *elem, void *user) {
  kiln__op_obj *op = elem;
  struct forgotten_scan *scan = user;
  uint32_t gen = atomic_load(&op->h.slot_gen);
  if (!(atomic_load(&op->flags) & KILN__OPF_TOKEN) || !op_try_ref(op, gen))
    return;
  uint32_t f = atomic_load(&op->flags);
  if ((scan->stream && op->stream != scan->stream) || !(f & KILN__OPF_TOKEN) ||
      (f & KILN__OPF_WAITING) ||
      !atomic_compare_exchange_strong(&op->flags, &f, f & ~(uint32_t)KILN__OPF_TOKEN)) {
    kiln__op_unref(&op->view);
    return;
  }
  scan->count++;
  if (scan->stream) { /* the op has completed: its stream is idle */
    pthread_mutex_lock(&op->h.ctx->lock);
    op->orphan_gen = gen;
    op->orphan_status = op->status;
    op->orphan_api = op->api;
    op->orphan_file = op->file;
    op->orphan_line = op->line;
    pthread_mutex_unlock(&op->h.ctx->lock);
  }
  atomic_fetch_add_explicit(&op->h.ctx->stat_tokens_forgotten, 1, memory_order_relaxed);
  /* Error level: the default log prints it, so a forgotten token is seen without
   * KILN_LOG (KILN_NO_TOKEN is the way to say no wait is wanted). */
  kiln__log(KILN_LOG_ERROR,
            "token of the operation queued at %s:%d was neither waited nor released before "
            "its %s was destroyed (pass KILN_NO_TOKEN where a later wait covers it)",
            op->file ? op->file : "?", op->line, scan->stream ? "stream" : "context");
  kiln__op_unref(&op->view); /* the token's reference */
  kiln__op_unref(&op->view); /* ours */
}

void kiln__report_forgotten_tokens(kiln__context_obj *ctx, kiln__stream_obj *stream) {
  struct forgotten_scan scan = {stream, 0};
  kiln__slab_each_alive(&ctx->ops, forgotten_one, &scan);
}

/* ------------------------------------------------------------- tokens handed on */
kiln_status kiln__token_take(kiln_pending *token, kiln__op_obj **out) {
  kiln_status st = token_claim_as(token, true, out);
  if (st != KILN_SUCCESS)
    return st;
  token->id = 0; /* the token's reference is the caller's now */
  return KILN_SUCCESS;
}
