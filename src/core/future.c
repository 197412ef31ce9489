/* SPDX-License-Identifier: MIT */
/* Futures (include/kiln/future.h): slab objects of their context named by value ids,
 * like tokens. A future of kind OP follows one op (a watch on it); PROMISE is completed
 * by the program (kiln_promise_complete, which holds a reference); THEN runs a
 * continuation on the callback thread after its predecessor; ALL and ANY combine
 * inputs. Invariants: a future completes once (done, then its one successor is told);
 * each future is consumed once (FF_HANDLE cleared) and has at most one successor;
 * `obs` lists the ops whose host ranges are released when the future is observed (a
 * wait, or a continuation running after it), each with a reference. References: the
 * handle, the successor's (pred / inputs), a watch or a posted continuation while
 * pending, a pending input's on its successor. Thread-safe. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

#define TAG_FUTURE 0x4b465554u /* KFUT */

enum { FUT_OP = 1, FUT_THEN, FUT_ALL, FUT_ANY, FUT_PROMISE };
/* FF_PROMISE: a promise (kiln_future_promise) is outstanding and holds a reference. */
enum { FF_HANDLE = 1u << 0, FF_WAITING = 1u << 1, FF_PROMISE = 1u << 2 };

typedef struct fut_obs {
  kiln__op_obj *op; /* ref held */
  uint64_t uid;     /* its stream's, read while alive */
  bool upto;        /* an event's marker: everything before it on its stream */
} fut_obs;

typedef struct kiln__future_obj {
  kiln__handle_obj h;
  pthread_mutex_t lock; /* succ, the ANY failure record */
  _Atomic int refs;
  _Atomic uint32_t flags;
  _Atomic int done;
  int kind;
  bool needs_cb; /* completing it takes the callback thread (a continuation) */
  kiln_status status;
  kiln__cause cause;
  const char *api, *file; /* where it was made */
  int line;
  struct kiln__future_obj *succ; /* ref held on it until it is told */
  size_t succ_index;
  fut_obs *obs;
  size_t obs_count, obs_cap;
  fut_obs obs_inline[1];
  kiln__op_obj *op; /* OP: the op (obs[0] holds the reference) */
  kiln__watch watch;
  kiln_future_fn fn; /* THEN */
  void *user;
  struct kiln__future_obj *pred; /* ref held */
  kiln__callback_item item;
  struct kiln__future_obj **inputs; /* ALL / ANY: refs held */
  size_t input_count;
  _Atomic size_t remaining; /* ALL */
  _Atomic int fired;        /* ANY */
  size_t failures;          /* ANY, under lock */
  kiln_status fail_status;  /* ANY: the first failure, under lock */
  kiln__cause fail_cause;
  char note[256]; /* PROMISE: the completer's message of a failure */
} kiln__future_obj;

void kiln__futures_init(kiln__context_obj *ctx) {
  kiln__slab_init(&ctx->futures, sizeof(kiln__future_obj), SIZE_MAX, TAG_FUTURE, 0);
}

/* id: [context index: 10 bits][slot: 22 bits][slot generation: 32 bits], as tokens */
static uint64_t fut_encode(const kiln__future_obj *f) {
  return ((uint64_t)f->h.ctx->index << 54) | ((uint64_t)f->h.slot << 32) |
         atomic_load_explicit(&f->h.slot_gen, memory_order_relaxed);
}

static kiln_status fut_new(kiln__context_obj *ctx, int kind, size_t obs_cap, const char *file,
                           int line, kiln__future_obj **out) {
  *out = NULL;
  void *e;
  kiln_status st = kiln__slab_alloc(&ctx->futures, &e);
  if (st != KILN_SUCCESS)
    return st;
  kiln__future_obj *f = e;
  f->obs = f->obs_inline;
  f->obs_cap = 1;
  if (obs_cap > 1) {
    f->obs = kiln__alloc(sizeof *f->obs * obs_cap);
    if (!f->obs) {
      kiln__slab_release(&ctx->futures, f);
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory making a future");
    }
    f->obs_cap = obs_cap;
  }
  f->h.ops = ctx->h.ops;
  f->h.generation = ctx->h.generation;
  f->h.ctx = ctx;
  pthread_mutex_init(&f->lock, NULL);
  atomic_store(&f->refs, 1);
  atomic_store(&f->flags, FF_HANDLE);
  f->kind = kind;
  f->note[0] = '\0';
  f->api = kiln__api_name();
  f->file = file;
  f->line = line;
  atomic_store(&f->h.tag, TAG_FUTURE);
  *out = f;
  return KILN_SUCCESS;
}

/* Drop the observations without releasing their ranges (never observed). */
static void obs_drop(kiln__future_obj *f) {
  for (size_t i = 0; i < f->obs_count; i++)
    kiln__op_unref(&f->obs[i].op->view);
  f->obs_count = 0;
}

/* The future was observed complete: release its ops' host ranges. When what observed
 * it saw a failure (`report`), the failures of its ops count as reported (their
 * streams' synchronize need not report them again); a when_any that succeeded reports
 * none. */
static void obs_release(kiln__future_obj *f, bool report) {
  for (size_t i = 0; i < f->obs_count; i++) {
    fut_obs *o = &f->obs[i];
    kiln__stream_obj *s = o->op->stream;
    if (o->upto)
      kiln__guard_release_upto(s, o->uid, o->op->seq);
    else if (o->op->host_bytes)
      kiln__guard_release_op(s, o->uid, o->op->seq);
    if (report && o->op->status != KILN_SUCCESS && atomic_load(&s->uid) == o->uid)
      kiln__stream_error_reported(s, o->op->seq);
  }
  obs_drop(f);
}

static void fut_free_parts(kiln__future_obj *f) {
  obs_drop(f);
  if (f->obs != f->obs_inline)
    kiln__free(f->obs, sizeof *f->obs * f->obs_cap);
  f->obs = f->obs_inline;
  if (f->inputs)
    kiln__free(f->inputs, sizeof *f->inputs * f->input_count);
  f->inputs = NULL;
  pthread_mutex_destroy(&f->lock);
}

static void fut_unref(kiln__future_obj *f) {
  /* acq_rel: the last owner sees every other owner's writes before freeing. */
  if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (f->pred)
    fut_unref(f->pred);
  for (size_t i = 0; f->inputs && i < f->input_count; i++)
    fut_unref(f->inputs[i]);
  fut_free_parts(f);
  kiln__slab_release(&f->h.ctx->futures, f);
}

static void input_done(kiln__future_obj *s, kiln__future_obj *f, size_t index);

/* Complete f; the caller holds a reference to it. */
static void fut_complete(kiln__future_obj *f, kiln_status st, const kiln__cause *cause) {
  pthread_mutex_lock(&f->lock);
  f->status = st;
  if (st != KILN_SUCCESS)
    f->cause = *cause;
  /* seq_cst: pairs with a waiter's increment of fut_waiters then load of done (as the
   * streams' wake_waiters); also publishes status, cause and obs to whoever sees done. */
  atomic_store(&f->done, 1);
  kiln__future_obj *s = f->succ;
  size_t index = f->succ_index;
  f->succ = NULL;
  pthread_mutex_unlock(&f->lock);
  kiln__context_obj *ctx = f->h.ctx;
  if (atomic_load(&ctx->fut_waiters) > 0) {
    pthread_mutex_lock(&ctx->fut_lock);
    pthread_cond_broadcast(&ctx->fut_cond);
    pthread_mutex_unlock(&ctx->fut_lock);
  }
  if (s) {
    input_done(s, f, index);
    fut_unref(s);
  }
}

/* f is consumed by s as its input `index`: tell s when f completes (now if it has). */
static void fut_link(kiln__future_obj *f, kiln__future_obj *s, size_t index) {
  pthread_mutex_lock(&f->lock);
  bool now = atomic_load(&f->done);
  if (!now) {
    atomic_fetch_add(&s->refs, 1);
    f->succ = s;
    f->succ_index = index;
  }
  pthread_mutex_unlock(&f->lock);
  if (now)
    input_done(s, f, index);
}

/* Move the observations of a completed input into s (capacity reserved at creation). */
static void obs_take(kiln__future_obj *s, kiln__future_obj *in) {
  for (size_t i = 0; i < in->obs_count && s->obs_count < s->obs_cap; i++)
    s->obs[s->obs_count++] = in->obs[i];
  in->obs_count = 0;
}

static void all_finish(kiln__future_obj *s) {
  kiln_status st = KILN_SUCCESS;
  kiln__cause cause = {0};
  for (size_t i = 0; i < s->input_count; i++) {
    kiln__future_obj *in = s->inputs[i];
    if (in->status != KILN_SUCCESS && st == KILN_SUCCESS) {
      st = in->status;
      cause = in->cause;
    }
    obs_take(s, in);
  }
  fut_complete(s, st, &cause);
}

static void any_finish(kiln__future_obj *s, kiln_status st, const kiln__cause *cause) {
  for (size_t i = 0; i < s->input_count; i++) /* only those that completed */
    if (atomic_load(&s->inputs[i]->done))
      obs_take(s, s->inputs[i]);
  fut_complete(s, st, cause);
}

static void run_then(kiln__callback_item *item) {
  kiln__future_obj *s =
      (kiln__future_obj *)(void *)((char *)item - offsetof(kiln__future_obj, item));
  kiln__future_obj *pred = s->pred;
  s->pred = NULL;
  /* the continuation observes its predecessor's completion (and is told a failure) */
  obs_release(pred, pred->status != KILN_SUCCESS);
  kiln_status st;
  kiln__cause cause = pred->cause;
  if (pred->status != KILN_SUCCESS) {
    st = pred->status;
    (void)s->fn(st, s->user); /* told, to release what user holds; the failure stands */
  } else {
    st = s->fn(KILN_SUCCESS, s->user);
    if (st != KILN_SUCCESS) {
      memset(&cause, 0, sizeof cause);
      cause.status = st;
      cause.api = "the continuation of kiln_future_then";
      cause.file = s->file;
      cause.line = s->line;
    }
  }
  fut_unref(pred);
  fut_complete(s, st, &cause);
  fut_unref(s); /* the posted item's */
}

static void input_done(kiln__future_obj *s, kiln__future_obj *f, size_t index) {
  (void)index;
  switch (s->kind) {
  case FUT_THEN:
    atomic_fetch_add(&s->refs, 1); /* the item's, dropped by run_then */
    kiln__callback_post(s->h.ctx, &s->item);
    break;
  case FUT_ALL:
    if (atomic_fetch_sub(&s->remaining, 1) == 1)
      all_finish(s);
    break;
  case FUT_ANY:
    if (f->status == KILN_SUCCESS) {
      int expected = 0;
      if (atomic_compare_exchange_strong(&s->fired, &expected, 1))
        any_finish(s, KILN_SUCCESS, NULL);
    } else {
      pthread_mutex_lock(&s->lock);
      if (s->fail_status == KILN_SUCCESS) {
        s->fail_status = f->status;
        s->fail_cause = f->cause;
      }
      bool all_failed = ++s->failures == s->input_count;
      kiln_status fst = s->fail_status;
      kiln__cause fcause = s->fail_cause;
      pthread_mutex_unlock(&s->lock);
      int expected = 0;
      if (all_failed && atomic_compare_exchange_strong(&s->fired, &expected, 1))
        any_finish(s, fst, &fcause);
    }
    break;
  default:
    break;
  }
}

static void op_watch_fire(kiln__watch *w, kiln__op_obj *op) {
  kiln__future_obj *f = (kiln__future_obj *)(void *)((char *)w - offsetof(kiln__future_obj, watch));
  fut_complete(f, op->status, &op->cause);
  fut_unref(f); /* the watch's */
}

/* Start following op (obs[0] holds a reference to it). */
static void fut_follow(kiln__future_obj *f, kiln__op_obj *op, bool upto) {
  f->op = op;
  f->obs[0].op = op;
  f->obs[0].uid = atomic_load(&op->stream->uid);
  f->obs[0].upto = upto;
  f->obs_count = 1;
  f->watch.fire = op_watch_fire;
  atomic_fetch_add(&f->refs, 1); /* the watch's */
  kiln__op_watch(op, &f->watch);
}

/* ------------------------------------------------------------- ids */
static kiln_status fut_lookup(const kiln_future *future, const char *what, kiln__future_obj **out) {
  *out = NULL;
  if (!future)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "%s is NULL", what);
  uint64_t id = future->id;
  if (id == 0) {
    kiln__error(KILN_ERROR_INVALID_HANDLE,
                "%s is empty: it was already waited, dropped or passed to then/when_all/"
                "when_any, or the call that made it failed",
                what);
    kiln__error_suggest("consume each future exactly once");
    return KILN_ERROR_INVALID_HANDLE;
  }
  uint32_t ci = (uint32_t)(id >> 54), slot = (uint32_t)(id >> 32) & ((1u << 22) - 1u);
  kiln__context_obj *ctx = kiln__context_at(ci);
  if (!ctx || atomic_load(&ctx->h.tag) != KILN__TAG_CONTEXT) {
    kiln__error(KILN_ERROR_INVALID_HANDLE,
                "%s 0x%016llx belongs to a context that was destroyed: the destroy waited for "
                "its work and dropped the future",
                what, (unsigned long long)id);
    kiln__error_suggest("wait or drop futures before destroying their context");
    return KILN_ERROR_INVALID_HANDLE;
  }
  kiln__future_obj *f = kiln__slab_at_gen(&ctx->futures, slot, (uint32_t)id);
  if (!f || atomic_load(&f->h.tag) != TAG_FUTURE || !(atomic_load(&f->flags) & FF_HANDLE)) {
    kiln__error(KILN_ERROR_INVALID_HANDLE,
                "%s 0x%016llx was already waited, dropped or passed on (or is stale)", what,
                (unsigned long long)id);
    kiln__error_suggest("consume each future exactly once; copies of a future are the same "
                        "future");
    return KILN_ERROR_INVALID_HANDLE;
  }
  *out = f;
  return KILN_SUCCESS;
}

static kiln_status fut_claim(const kiln_future *future, const char *what, kiln__future_obj **out) {
  kiln_status st = fut_lookup(future, what, out);
  if (st != KILN_SUCCESS)
    return st;
  kiln__future_obj *f = *out;
  uint32_t fl = atomic_load(&f->flags);
  for (;;) {
    if (!(fl & FF_HANDLE) || (fl & FF_WAITING)) {
      *out = NULL;
      return kiln__error(KILN_ERROR_INVALID_HANDLE,
                         "%s 0x%016llx is being waited or passed on by another thread, or was "
                         "already consumed",
                         what, (unsigned long long)future->id);
    }
    if (atomic_compare_exchange_weak(&f->flags, &fl, fl | FF_WAITING))
      return KILN_SUCCESS;
  }
}

static void fut_unclaim(kiln__future_obj *f) {
  atomic_fetch_and(&f->flags, ~(uint32_t)FF_WAITING);
}

/* Consume a claimed future: its handle's reference goes to the caller. */
static void fut_consume(kiln_future *future, kiln__future_obj *f) {
  atomic_fetch_and(&f->flags, ~(uint32_t)(FF_HANDLE | FF_WAITING));
  future->id = 0;
}

/* ------------------------------------------------------------- making futures */
kiln_status kiln_future_from_pending_at(kiln_pending *token, kiln_future *future, const char *file,
                                        int line) {
  KILN__API_ENTER_AT(file, line);
  if (!future)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "future (the out-parameter) is NULL");
  future->id = 0;
  uint64_t id = token && token != KILN_NO_TOKEN ? token->id : 0;
  kiln__op_obj *op;
  kiln_status st = kiln__token_take(token, &op);
  if (st != KILN_SUCCESS)
    return st;
  kiln__future_obj *f;
  st = fut_new(op->h.ctx, FUT_OP, 1, file, line, &f);
  if (st != KILN_SUCCESS) { /* give the token back as it was */
    atomic_fetch_or(&op->flags, KILN__OPF_TOKEN);
    token->id = id;
    return st;
  }
  fut_follow(f, op, false); /* the token's reference is the observation's */
  future->id = fut_encode(f);
  return KILN_SUCCESS;
}

kiln_status kiln_future_from_event_at(kiln_event event, kiln_future *future, const char *file,
                                      int line) {
  KILN__API_ENTER_AT(file, line);
  if (!future)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "future (the out-parameter) is NULL");
  future->id = 0;
  kiln_status st = kiln__check_handle(event, KILN__TAG_EVENT, "event");
  if (st != KILN_SUCCESS)
    return st;
  kiln__future_obj *f;
  st = fut_new(event->h.ctx, FUT_OP, 1, file, line, &f);
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&event->lock);
  kiln__op_obj *m = event->marker;
  if (m)
    kiln__op_ref(&m->view); /* the observation's */
  pthread_mutex_unlock(&event->lock);
  if (m)
    fut_follow(f, m, true);
  else
    fut_complete(f, KILN_SUCCESS, NULL); /* never recorded: complete */
  future->id = fut_encode(f);
  return KILN_SUCCESS;
}

kiln_status kiln_future_then_at(kiln_future *future, kiln_future_fn fn, void *user,
                                kiln_future *next, const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  if (!next)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "next (the out-parameter) is NULL");
  if (next != future) /* `then(&f, fn, u, &f)` chains in place: f is read first */
    next->id = 0;
  if (!fn)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "fn is NULL: a continuation needs a function");
  kiln__future_obj *pred;
  kiln_status st = fut_claim(future, "future", &pred);
  if (st != KILN_SUCCESS)
    return st;
  kiln__context_obj *ctx = pred->h.ctx;
  kiln__future_obj *s = NULL;
  st = kiln__callback_thread_start(ctx);
  if (st == KILN_SUCCESS)
    st = fut_new(ctx, FUT_THEN, 0, file, line, &s);
  if (st != KILN_SUCCESS) {
    fut_unclaim(pred);
    return st;
  }
  s->needs_cb = true;
  s->fn = fn;
  s->user = user;
  s->item.run = run_then;
  s->pred = pred; /* the handle's reference */
  fut_consume(future, pred);
  next->id = fut_encode(s);
  fut_link(pred, s, 0);
  return KILN_SUCCESS;
}

kiln_status kiln_future_promise_at(kiln_context context, kiln_future *future, kiln_promise *promise,
                                   const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  if (!future)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "future (the out-parameter) is NULL");
  future->id = 0;
  if (!promise)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "promise (the out-parameter) is NULL");
  promise->id = 0;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  kiln__future_obj *f;
  st = fut_new(context, FUT_PROMISE, 0, file, line, &f);
  if (st != KILN_SUCCESS)
    return st;
  atomic_fetch_add(&f->refs, 1); /* the promise's */
  atomic_fetch_or(&f->flags, FF_PROMISE);
  future->id = promise->id = fut_encode(f);
  return KILN_SUCCESS;
}

static bool status_known(kiln_status st) {
  switch (st) {
#define KILN_KNOWN_(name, value, msg, sugg) case KILN_##name:
    KILN_STATUS_MAP(KILN_KNOWN_)
#undef KILN_KNOWN_
    return true;
  default:
    return false;
  }
}

kiln_status kiln_promise_complete(kiln_promise *promise, kiln_status status, const char *message) {
  KILN__API_ENTER();
  if (!promise)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "promise is NULL");
  if (!status_known(status) || status == KILN_NOT_READY || status == KILN_TIMEOUT)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "status %d is not a final kiln_status: complete a promise with "
                       "KILN_SUCCESS or a KILN_ERROR_* status",
                       (int)status);
  uint64_t id = promise->id;
  if (id == 0) {
    kiln__error(KILN_ERROR_INVALID_HANDLE,
                "promise is empty: it was already completed, or the call that made it failed");
    kiln__error_suggest("complete each promise exactly once");
    return KILN_ERROR_INVALID_HANDLE;
  }
  uint32_t ci = (uint32_t)(id >> 54), slot = (uint32_t)(id >> 32) & ((1u << 22) - 1u);
  kiln__context_obj *ctx = kiln__context_at(ci);
  if (!ctx || atomic_load(&ctx->h.tag) != KILN__TAG_CONTEXT)
    return kiln__error(KILN_ERROR_INVALID_HANDLE,
                       "promise 0x%016llx belongs to a context that was destroyed",
                       (unsigned long long)id);
  kiln__future_obj *f = kiln__slab_at_gen(&ctx->futures, slot, (uint32_t)id);
  if (!f || atomic_load(&f->h.tag) != TAG_FUTURE || f->kind != FUT_PROMISE ||
      !(atomic_fetch_and(&f->flags, ~(uint32_t)FF_PROMISE) & FF_PROMISE)) {
    kiln__error(KILN_ERROR_INVALID_HANDLE, "promise 0x%016llx was already completed (or is stale)",
                (unsigned long long)id);
    kiln__error_suggest("complete each promise exactly once; copies of a promise are the same "
                        "promise");
    return KILN_ERROR_INVALID_HANDLE;
  }
  promise->id = 0;
  kiln__cause cause = {0};
  if (status != KILN_SUCCESS) {
    size_t n = message ? strlen(message) : 0;
    if (n >= sizeof f->note)
      n = sizeof f->note - 1;
    if (n)
      memcpy(f->note, message, n);
    f->note[n] = '\0';
    cause.status = status;
    cause.api = f->api;
    cause.file = f->file;
    cause.line = f->line;
  }
  fut_complete(f, status, &cause);
  fut_unref(f); /* the promise's */
  return KILN_SUCCESS;
}

static kiln_status combine(kiln_future *futures, size_t count, kiln_future *out, int kind,
                           const char *file, int line) {
  const char *name = kind == FUT_ALL ? "kiln_future_when_all" : "kiln_future_when_any";
  if (!out)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "the out-parameter of %s is NULL", name);
  /* The result may go into one of the inputs (`when_all(fs, n, &fs[0])`): read first. */
  bool aliased = false;
  for (size_t i = 0; futures && i < count && !aliased; i++)
    aliased = out == &futures[i];
  if (!aliased)
    out->id = 0;
  if (!futures)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "futures is NULL with count %zu", count);
  if (count == 0) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT, "count is 0: %s needs at least one future", name);
    kiln__error_suggest("pass an array of one or more futures");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if (count > (SIZE_MAX / 2) / sizeof(void *))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "count %zu is too large", count);
  size_t claimed = 0, obs_cap = 0;
  bool needs_cb = false;
  kiln__context_obj *ctx = NULL;
  kiln_status st = KILN_SUCCESS;
  char what[48];
  for (; claimed < count; claimed++) {
    kiln__future_obj *f;
    snprintf(what, sizeof what, "futures[%zu]", claimed);
    size_t dup = claimed;
    for (size_t j = 0; j < claimed && dup == claimed; j++)
      if (futures[j].id == futures[claimed].id)
        dup = j;
    if (dup < claimed && futures[claimed].id) {
      st = kiln__error(KILN_ERROR_INVALID_HANDLE,
                       "futures[%zu] duplicates futures[%zu] (future 0x%016llx): the same "
                       "future twice in one %s",
                       claimed, dup, (unsigned long long)futures[claimed].id, name);
      kiln__error_suggest("pass each future once; copies of a future are the same future");
      break;
    }
    st = fut_claim(&futures[claimed], what, &f);
    if (st != KILN_SUCCESS)
      break;
    if (ctx && f->h.ctx != ctx) {
      fut_unclaim(f);
      st = kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "futures[%zu] belongs to another context than futures[0]: %s combines "
                       "futures of one context",
                       claimed, name);
      break;
    }
    ctx = f->h.ctx;
    obs_cap += f->kind == FUT_THEN ? 0 : f->kind == FUT_OP ? 1 : f->obs_cap;
    needs_cb = needs_cb || f->needs_cb;
  }
  kiln__future_obj *s = NULL;
  kiln__future_obj **inputs = NULL;
  if (st == KILN_SUCCESS) {
    inputs = kiln__alloc(sizeof *inputs * count);
    if (!inputs)
      st = kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory combining %zu futures",
                       count);
  }
  if (st == KILN_SUCCESS)
    st = fut_new(ctx, kind, obs_cap, file, line, &s);
  if (st != KILN_SUCCESS) {
    if (inputs)
      kiln__free(inputs, sizeof *inputs * count);
    for (size_t j = 0; j < claimed; j++) {
      kiln__future_obj *f;
      if (fut_lookup(&futures[j], "future", &f) == KILN_SUCCESS)
        fut_unclaim(f);
    }
    return st;
  }
  for (size_t i = 0; i < count; i++) {
    fut_lookup(&futures[i], "future", &inputs[i]);
    fut_consume(&futures[i], inputs[i]); /* the handle's reference is s's */
  }
  s->needs_cb = needs_cb;
  s->inputs = inputs;
  s->input_count = count;
  atomic_store(&s->remaining, count);
  out->id = fut_encode(s);
  atomic_fetch_add(&s->refs, 1); /* ours while linking: inputs may complete it meanwhile */
  for (size_t i = 0; i < count; i++)
    fut_link(inputs[i], s, i);
  fut_unref(s);
  return KILN_SUCCESS;
}

kiln_status kiln_future_when_all_at(kiln_future *futures, size_t count, kiln_future *all,
                                    const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  return combine(futures, count, all, FUT_ALL, file, line);
}

kiln_status kiln_future_when_any_at(kiln_future *futures, size_t count, kiln_future *any,
                                    const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  return combine(futures, count, any, FUT_ANY, file, line);
}

/* ------------------------------------------------------------- waits */
static kiln_status fut_wait_done(kiln__future_obj *f, uint64_t timeout_ns) {
  if (atomic_load(&f->done))
    return KILN_SUCCESS;
  uint64_t start = kiln__now_ns();
  uint64_t deadline = timeout_ns == UINT64_MAX ? UINT64_MAX : start + timeout_ns;
  if (f->op) { /* the backend's own wait (and polling) for the op first */
    kiln_status st = kiln__op_wait(f->op, timeout_ns);
    if (st != KILN_SUCCESS)
      return st;
  }
  uint64_t spin_until = kiln__now_ns() + KILN__SPIN_NS;
  if (spin_until > deadline)
    spin_until = deadline;
  kiln__backoff backoff = {0};
  while (!atomic_load(&f->done) && kiln__now_ns() < spin_until)
    kiln__backoff_step(&backoff);
  if (atomic_load(&f->done))
    return KILN_SUCCESS;
  kiln__context_obj *ctx = f->h.ctx;
  kiln_status st = KILN_SUCCESS;
  pthread_mutex_lock(&ctx->fut_lock);
  atomic_fetch_add(&ctx->fut_waiters, 1); /* seq_cst: see fut_complete */
  while (!atomic_load(&f->done)) {
    if (deadline == UINT64_MAX) {
      pthread_cond_wait(&ctx->fut_cond, &ctx->fut_lock);
    } else if (kiln__now_ns() >= deadline ||
               kiln__cond_timedwait_ns(&ctx->fut_cond, &ctx->fut_lock, deadline) != 0) {
      if (!atomic_load(&f->done))
        st = KILN_TIMEOUT;
      break;
    }
  }
  atomic_fetch_sub(&ctx->fut_waiters, 1);
  pthread_mutex_unlock(&ctx->fut_lock);
  return st;
}

static kiln_status fut_wait(kiln_future *future, uint64_t timeout_ns) {
  kiln__future_obj *f;
  kiln_status st = fut_claim(future, "future", &f);
  if (st != KILN_SUCCESS)
    return st;
  if (!atomic_load(&f->done) && f->needs_cb && kiln__on_callback_thread(f->h.ctx)) {
    fut_unclaim(f);
    kiln__error(KILN_ERROR_INVALID_STATE,
                "future 0x%016llx (made at %s:%d) is waited on its context's callback thread, "
                "but completing it needs a continuation to run on that same thread: the wait "
                "would never return",
                (unsigned long long)future->id, f->file ? f->file : "?", f->line);
    kiln__error_suggest("chain the work with kiln_future_then instead of waiting inside a "
                        "callback, or wait from another thread");
    return KILN_ERROR_INVALID_STATE;
  }
  if (fut_wait_done(f, timeout_ns) == KILN_TIMEOUT) {
    fut_unclaim(f);
    return KILN_TIMEOUT;
  }
  obs_release(f, f->status != KILN_SUCCESS); /* observed complete */
  st = f->status;
  kiln__cause c = f->cause;
  const char *file = f->file ? f->file : "?";
  int line = f->line;
  char note[sizeof f->note];
  memcpy(note, f->note, sizeof note); /* f may be reused once unreferenced */
  fut_consume(future, f);
  fut_unref(f);
  if (st == KILN_SUCCESS)
    return st;
  char where[160] = "", native[160] = "";
  if (c.file)
    snprintf(where, sizeof where, " at %s:%d", c.file, c.line);
  if (c.native_name)
    snprintf(native, sizeof native, ": %s%s%s", c.native_name, c.native_call ? " from " : "",
             c.native_call ? c.native_call : "");
  kiln_status root = c.status ? c.status : st;
  if (note[0])
    return kiln__error_native(st, c.backend, c.native_code, c.native_name,
                              "the future made at %s:%d failed: %s", file, line, note);
  return kiln__error_native(st, c.backend, c.native_code, c.native_name,
                            "the future made at %s:%d failed: the operation queued by %s%s "
                            "failed with %s (%s)%s",
                            file, line, c.api ? c.api : "a kiln call", where,
                            kiln_status_name(root), kiln_status_message(root), native);
}

kiln_status kiln_future_wait_at(kiln_future *future, const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  return fut_wait(future, UINT64_MAX);
}

kiln_status kiln_future_wait_timeout_at(kiln_future *future, uint64_t timeout_ns, const char *file,
                                        int line) {
  KILN__API_ENTER_AT(file, line);
  return fut_wait(future, timeout_ns);
}

kiln_status kiln_future_query(const kiln_future *future) {
  KILN__API_ENTER();
  kiln__future_obj *f;
  kiln_status st = fut_lookup(future, "future", &f);
  if (st != KILN_SUCCESS)
    return st;
  if (!atomic_load(&f->done) && f->op)
    kiln__stream_poll(f->op->stream);
  return atomic_load(&f->done) ? KILN_SUCCESS : KILN_NOT_READY;
}

kiln_status kiln_future_drop_at(kiln_future *future, const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  kiln__future_obj *f;
  kiln_status st = fut_claim(future, "future", &f);
  if (st != KILN_SUCCESS)
    return st;
  fut_consume(future, f);
  fut_unref(f);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- context destroy */
static void teardown_one(void *elem, void *user) {
  kiln__future_obj *f = elem;
  kiln__context_obj *ctx = user;
  if (atomic_load(&f->flags) & FF_PROMISE)
    kiln__log(KILN_LOG_WARN,
              "the promise of the future made by %s at %s:%d was never completed before its "
              "context was destroyed",
              f->api ? f->api : "a kiln call", f->file ? f->file : "?", f->line);
  if (atomic_load(&f->flags) & FF_HANDLE) {
    atomic_fetch_add_explicit(&ctx->stat_tokens_forgotten, 1, memory_order_relaxed);
    kiln__log(KILN_LOG_ERROR,
              "future made by %s at %s:%d was neither waited nor dropped before its context "
              "was destroyed",
              f->api ? f->api : "a kiln call", f->file ? f->file : "?", f->line);
  }
  /* Every op has completed and every continuation run: only memory is left. */
  fut_free_parts(f);
  atomic_store(&f->h.tag, TAG_FUTURE | KILN__TAG_DEAD);
}

void kiln__futures_teardown(kiln__context_obj *ctx) {
  kiln__slab_each_alive(&ctx->futures, teardown_one, ctx);
}
