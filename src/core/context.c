/* SPDX-License-Identifier: MIT */
/* Contexts: a static table (contexts never dangle) with FIFO quarantine of free slots,
 * each context owning the slabs of its objects and its callback thread. Handle
 * validation lives here too. Context create/destroy are thread-safe; destroying a
 * context while other threads use its objects is the caller's error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kcache/kcache.h"
#include "trace/trace.h"

static kiln__context_obj table[KILN__MAX_CONTEXTS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t free_fifo[KILN__MAX_CONTEXTS];
static uint32_t fifo_head, fifo_count;
static int table_ready;

kiln__context_obj *kiln__context_at(uint32_t index) {
  return index < KILN__MAX_CONTEXTS ? &table[index] : NULL;
}

static const char *tag_name(uint32_t tag) {
  switch (tag & ~(uint32_t)KILN__TAG_DEAD) {
  case KILN__TAG_CONTEXT:
    return "context";
  case KILN__TAG_STREAM:
    return "stream";
  case KILN__TAG_EVENT:
    return "event";
  case KILN__TAG_BUFFER:
    return "buffer";
  case KILN__TAG_KERNEL:
    return "kernel";
  case KILN__TAG_OP:
    return "operation";
  case KILN__TAG_PROGRAM:
    return "program";
  case KILN__TAG_POOL:
    return "pool";
  case KILN__TAG_STREAM_POOL:
    return "stream pool";
  case KILN__TAG_STREAM_SET:
    return "stream set";
  default:
    return "unknown object";
  }
}

/* "an" before a vowel ("an event", "an unknown object"), else "a". */
static const char *article(const char *word) {
  return word[0] && strchr("aeiou", word[0]) ? "an" : "a";
}

kiln_status kiln__check_alive(const void *handle, uint32_t tag, const char *what) {
  if (!handle) {
    kiln__error(KILN_ERROR_INVALID_HANDLE, "%s is NULL", what);
    kiln__error_suggest("pass a %s returned by a successful create call", tag_name(tag));
    return KILN_ERROR_INVALID_HANDLE;
  }
  const kiln__handle_obj *h = handle;
  uint32_t t = atomic_load(&h->tag);
  if (t == tag)
    return KILN_SUCCESS;
  if (t == (tag | KILN__TAG_DEAD))
    return kiln__error(KILN_ERROR_INVALID_HANDLE, "%s %p was destroyed", what, handle);
  if ((t & ~(uint32_t)KILN__TAG_DEAD) == tag || t == 0)
    return kiln__error(KILN_ERROR_INVALID_HANDLE, "%s %p is not a live kiln %s", what, handle,
                       tag_name(tag));
  char got[48];
  snprintf(got, sizeof got, "%s%s", (t & KILN__TAG_DEAD) ? "destroyed " : "", tag_name(t));
  return kiln__error(KILN_ERROR_INVALID_HANDLE, "%s %p is %s %s, not %s %s", what, handle,
                     article(got), got, article(tag_name(tag)), tag_name(tag));
}

static kiln_status refuse_second_destroy(const char *what, const void *handle) {
  kiln__error(KILN_ERROR_INVALID_HANDLE,
              "%s %p was destroyed by another thread while this call destroyed it", what, handle);
  kiln__error_suggest("destroy each handle once, from one thread");
  return KILN_ERROR_INVALID_HANDLE;
}

kiln_status kiln__claim_destroy(void *handle, uint32_t tag, const char *what) {
  kiln__handle_obj *h = handle;
  uint32_t alive = tag;
  if (atomic_compare_exchange_strong(&h->tag, &alive, tag | KILN__TAG_DEAD))
    return KILN_SUCCESS;
  return refuse_second_destroy(what, handle);
}

kiln_status kiln__refuse_second_destroy(const char *what, const void *handle) {
  return refuse_second_destroy(what, handle);
}

/* The refusal of a device that is lost or unrecoverable now (state: its `lost`). */
static kiln_status refuse_lost_device(const kiln__device_obj *dev, int state) {
  const char *backend = kiln_backend_name(dev->props.backend);
  if (state == KILN_DEVICE_STATE_UNRECOVERABLE) {
    kiln__error(KILN_ERROR_DEVICE_LOST,
                "device %s:%u could not be recovered (%s): restart the process", backend,
                dev->props.index, kiln__device_lost_why(dev));
    kiln__error_suggest("restart the process: the device's runtime may be inconsistent after "
                        "a sticky error (kiln_device_get_state says UNRECOVERABLE)");
  } else {
    kiln__error(KILN_ERROR_DEVICE_LOST, "device %s:%u is lost: %s", backend, dev->props.index,
                kiln__device_lost_why(dev));
    kiln__error_suggest("destroy the device's handles, call kiln_device_reset() and create new "
                        "ones");
  }
  return KILN_ERROR_DEVICE_LOST;
}

kiln_status kiln__check_handle(const void *handle, uint32_t tag, const char *what) {
  kiln_status st = kiln__check_alive(handle, tag, what);
  if (st != KILN_SUCCESS)
    return st;
  const kiln__handle_obj *h = handle;
  const kiln__device_obj *dev =
      tag == KILN__TAG_CONTEXT ? ((const kiln__context_obj *)handle)->device : h->ctx->device;
  unsigned gen = atomic_load(&dev->generation);
  int state = atomic_load(&dev->lost);
  if (h->generation != gen) {
    /* A stale handle: what the device is now says what to do instead. */
    const char *backend = kiln_backend_name(dev->props.backend);
    if (state == KILN_DEVICE_STATE_UNRECOVERABLE) {
      kiln__error(KILN_ERROR_DEVICE_LOST,
                  "%s %p was made in generation %u of device %s:%u, which could not be "
                  "recovered at generation %u (%s): restart the process",
                  what, handle, h->generation, backend, dev->props.index, gen,
                  kiln__device_lost_why(dev));
      kiln__error_suggest("restart the process: the device's runtime may be inconsistent "
                          "after a sticky error (kiln_device_get_state says UNRECOVERABLE)");
    } else if (state) {
      kiln__error(KILN_ERROR_DEVICE_LOST,
                  "%s %p was made in generation %u of device %s:%u; the device was reset "
                  "(generation %u) and is lost again: %s",
                  what, handle, h->generation, backend, dev->props.index, gen,
                  kiln__device_lost_why(dev));
      kiln__error_suggest("destroy it (that still succeeds), call kiln_device_reset() and make "
                          "a new one");
    } else {
      kiln__error(KILN_ERROR_DEVICE_LOST,
                  "%s %p was made in generation %u of device %s:%u; the device was reset "
                  "(generation %u): make a new one",
                  what, handle, h->generation, backend, dev->props.index, gen);
      kiln__error_suggest("destroy it (that still succeeds) and make a new one: the device "
                          "works, only handles of older generations are refused");
    }
    return KILN_ERROR_DEVICE_LOST;
  }
  if (state)
    return refuse_lost_device(dev, state);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- callback thread */
static void *callback_main(void *arg) {
  kiln__context_obj *ctx = arg;
  pthread_mutex_lock(&ctx->cb_lock);
  for (;;) {
    while (!ctx->cb_head && !ctx->cb_stop)
      pthread_cond_wait(&ctx->cb_cond, &ctx->cb_lock);
    kiln__callback_item *item = ctx->cb_head;
    if (!item)
      break; /* stop requested and the queue is drained */
    ctx->cb_head = item->next;
    if (!ctx->cb_head)
      ctx->cb_tail = NULL;
    ctx->cb_busy = 1;
    ctx->cb_now = *item;
    ctx->cb_started_ns = kiln__now_ns();
    pthread_mutex_unlock(&ctx->cb_lock);
    if (item->run) {
      item->run(item); /* a future's continuation (future.c); it owns the item */
    } else {
      kiln__callback_observe(item); /* host ranges the callback observes, just before it */
      item->fn(item->status, item->user);
      if (item->op)
        kiln__op_unref(&item->op->view);
      kiln__free(item, sizeof *item);
    }
    pthread_mutex_lock(&ctx->cb_lock);
    ctx->cb_busy = 0;
    ctx->cb_ran++;
    pthread_cond_broadcast(&ctx->cb_cond);
  }
  pthread_mutex_unlock(&ctx->cb_lock);
  return NULL;
}

void kiln__callback_post(kiln__context_obj *ctx, kiln__callback_item *item) {
  item->next = NULL;
  pthread_mutex_lock(&ctx->cb_lock);
  if (ctx->cb_tail)
    ctx->cb_tail->next = item;
  else
    ctx->cb_head = item;
  ctx->cb_tail = item;
  pthread_cond_broadcast(&ctx->cb_cond);
  pthread_mutex_unlock(&ctx->cb_lock);
}

/* The callback thread is started with the first callback (kiln_stream_add_callback). */
kiln_status kiln__callback_thread_start(kiln__context_obj *ctx) {
  pthread_mutex_lock(&ctx->lock);
  kiln_status st = KILN_SUCCESS;
  if (!ctx->cb_running) {
    if (pthread_create(&ctx->cb_thread, NULL, callback_main, ctx) != 0)
      st = kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "could not start the callback thread");
    else
      ctx->cb_running = 1;
  }
  pthread_mutex_unlock(&ctx->lock);
  return st;
}

static void callback_thread_stop(kiln__context_obj *ctx) {
  if (!ctx->cb_running)
    return;
  pthread_mutex_lock(&ctx->cb_lock);
  ctx->cb_stop = 1;
  pthread_cond_broadcast(&ctx->cb_cond);
  pthread_mutex_unlock(&ctx->cb_lock);
  pthread_join(ctx->cb_thread, NULL);
  ctx->cb_running = 0;
}

/* How long a synchronize or destroy waits for one running callback before it says so
 * (KILN_CALLBACK_WARN_MS, default 10 s). */
static uint64_t callback_warn_ns(void) {
  return kiln__env_uint("KILN_CALLBACK_WARN_MS", 1, KILN__ENV_CALLBACK_WARN_MS_MAX, 10000) *
         1000000u;
}

/* True when the calling thread is the context's callback thread (a callback calling
 * kiln). */
static bool on_callback_thread(kiln__context_obj *ctx) {
  pthread_mutex_lock(&ctx->lock);
  bool self = ctx->cb_running && pthread_equal(pthread_self(), ctx->cb_thread);
  pthread_mutex_unlock(&ctx->lock);
  return self;
}

bool kiln__on_callback_thread(kiln__context_obj *ctx) {
  return on_callback_thread(ctx);
}

/* Wait until every callback queued so far has run (not from the callback thread). A
 * callback still running after KILN_CALLBACK_WARN_MS is named in an error-level log
 * line, once per run, and waited for still: it may be blocked on something the
 * waiting thread holds, and only the program can break that. */
static void callback_drain(kiln__context_obj *ctx, const char *who) {
  if (!ctx->cb_running || on_callback_thread(ctx))
    return;
  uint64_t warn_ns = callback_warn_ns(), reported_start = 0;
  pthread_mutex_lock(&ctx->cb_lock);
  while (ctx->cb_head || ctx->cb_busy) {
    uint64_t now = kiln__now_ns();
    if (ctx->cb_busy && ctx->cb_started_ns != reported_start &&
        now - ctx->cb_started_ns >= warn_ns) {
      reported_start = ctx->cb_started_ns;
      char name[128], fn_text[2 * sizeof(void *) + 3];
      const void *addr;
      memcpy(&addr, &ctx->cb_now.fn, sizeof addr); /* ISO C: no cast to void * */
      kiln__symbol_name(addr, name, sizeof name);
      snprintf(fn_text, sizeof fn_text, "%p", addr);
      kiln__log(KILN_LOG_ERROR,
                "%s has waited %.1f s for the completion callback %s%s%s%s (user data %p) to "
                "return, and keeps waiting: a callback that blocks on something this thread "
                "holds (a lock, a join, this call's return) never returns",
                who, (double)(now - ctx->cb_started_ns) / 1e9, fn_text, name[0] ? " (" : "", name,
                name[0] ? ")" : "", ctx->cb_now.user);
    }
    uint64_t due = ctx->cb_busy ? ctx->cb_started_ns + warn_ns : now + warn_ns;
    if (ctx->cb_busy && ctx->cb_started_ns == reported_start)
      due = UINT64_MAX;
    if (due == UINT64_MAX)
      pthread_cond_wait(&ctx->cb_cond, &ctx->cb_lock);
    else
      kiln__cond_timedwait_ns(&ctx->cb_cond, &ctx->cb_lock, due);
  }
  pthread_mutex_unlock(&ctx->cb_lock);
}

/* ------------------------------------------------------------- create / destroy */
/* Free what a context owns in the core (its slabs, locks) and give its table slot
 * back, behind the others (FIFO). The backend part is gone already. */
static void release_slot(kiln__context_obj *ctx) {
  kiln__slab_destroy(&ctx->streams);
  kiln__slab_destroy(&ctx->events);
  kiln__slab_destroy(&ctx->buffers);
  kiln__slab_destroy(&ctx->kernels);
  kiln__slab_destroy(&ctx->programs);
  kiln__slab_destroy(&ctx->ops);
  kiln__slab_destroy(&ctx->futures);
  pthread_mutex_destroy(&ctx->fut_lock);
  pthread_cond_destroy(&ctx->fut_cond);
  kiln__slab_destroy(&ctx->stream_pools);
  kiln__slab_destroy(&ctx->stream_sets);
  pthread_mutex_destroy(&ctx->lock);
  pthread_mutex_destroy(&ctx->cb_lock);
  pthread_mutex_destroy(&ctx->host_lock);
  pthread_cond_destroy(&ctx->cb_cond);
  atomic_fetch_add(&ctx->h.slot_gen, 1);
  atomic_store(&ctx->h.tag, KILN__TAG_CONTEXT | KILN__TAG_DEAD);
  pthread_mutex_lock(&table_lock);
  free_fifo[(fifo_head + fifo_count) % KILN__MAX_CONTEXTS] = ctx->index;
  fifo_count++;
  bool last = atomic_fetch_sub(&kiln__live_contexts, 1) == 1;
  pthread_mutex_unlock(&table_lock);
  /* With no context left the program may change the allocator (kiln_set_allocator):
   * the compile cache's in-process copies, made with this one, go now. */
  if (last)
    kiln__kcache_drop_memory();
}
kiln_status kiln_context_create(kiln_device device, const kiln_context_desc *desc,
                                kiln_context *out) {
  KILN__API_ENTER();
  kiln__trace_env_init();
  if (!out)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "context (the out-parameter) is NULL");
  *out = NULL;
  if (!device)
    return kiln__error(KILN_ERROR_INVALID_HANDLE, "device is NULL");
  kiln_device_props probe = KILN_DEVICE_PROPS_INIT;
  kiln_status st = kiln_device_get_props(device, &probe);
  if (st != KILN_SUCCESS)
    return st;
  KILN__API_ENTER();
  if (desc && desc->struct_size < sizeof(kiln_context_desc))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_CONTEXT_DESC_INIT",
                       desc->struct_size, sizeof(kiln_context_desc));
  if (desc && (desc->flags & ~(unsigned)KILN_CONTEXT_POOLED))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->flags is 0x%x: the only flag defined is KILN_CONTEXT_POOLED (0x%x)",
                       desc->flags, (unsigned)KILN_CONTEXT_POOLED);
  kiln__device_obj *dev = (kiln__device_obj *)device;
  int state = atomic_load(&dev->lost);
  if (state)
    return refuse_lost_device(dev, state);

  pthread_mutex_lock(&table_lock);
  if (!table_ready) {
    for (uint32_t i = 0; i < KILN__MAX_CONTEXTS; i++)
      free_fifo[i] = i;
    fifo_count = KILN__MAX_CONTEXTS;
    table_ready = 1;
  }
  if (fifo_count == 0) {
    pthread_mutex_unlock(&table_lock);
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                       "%u contexts exist already, the most kiln allows: destroy one first, or "
                       "share a context between the program's parts (streams are cheap)",
                       KILN__MAX_CONTEXTS);
  }
  uint32_t index = free_fifo[fifo_head];
  fifo_head = (fifo_head + 1) % KILN__MAX_CONTEXTS;
  fifo_count--;
  atomic_fetch_add(&kiln__live_contexts, 1);
  pthread_mutex_unlock(&table_lock);

  kiln__context_obj *ctx = &table[index];
  uint32_t slot_gen = atomic_load(&ctx->h.slot_gen);
  memset(ctx, 0, sizeof *ctx);
  ctx->h.ops = dev->ops;
  ctx->h.generation = atomic_load(&dev->generation);
  ctx->h.ctx = ctx;
  ctx->h.slot = index;
  atomic_store(&ctx->h.slot_gen, slot_gen);
  ctx->device = dev;
  ctx->index = index;
  pthread_mutex_init(&ctx->lock, NULL);
  pthread_mutex_init(&ctx->cb_lock, NULL);
  pthread_mutex_init(&ctx->host_lock, NULL);
  kiln__cond_init(&ctx->cb_cond);
  kiln__slab_init(&ctx->streams, sizeof(kiln__stream_obj), SIZE_MAX, KILN__TAG_STREAM, 64);
  kiln__slab_keep(&ctx->streams, offsetof(kiln__stream_obj, submit_lock), sizeof(pthread_mutex_t));
  kiln__slab_keep(&ctx->streams, offsetof(kiln__stream_obj, fail_lock), sizeof(pthread_mutex_t));
  kiln__slab_set_slot_life(&ctx->streams, kiln__stream_slot_init, kiln__stream_slot_fini);
  kiln__slab_init(&ctx->events, sizeof(kiln__event_obj), SIZE_MAX, KILN__TAG_EVENT, 64);
  kiln__slab_keep(&ctx->events, offsetof(kiln__event_obj, lock), sizeof(pthread_mutex_t));
  kiln__slab_set_slot_life(&ctx->events, kiln__event_slot_init, kiln__event_slot_fini);
  /* A buffer's slot-lived tail (core.h: its managed record, its hazard mutex) is not
   * cleared when the slot is handed out again. */
  kiln__slab_init(&ctx->buffers, sizeof(kiln__buffer_obj), offsetof(kiln__buffer_obj, managed),
                  KILN__TAG_BUFFER, 64);
  kiln__slab_set_slot_life(&ctx->buffers, kiln__buffer_slot_init, kiln__buffer_slot_fini);
  kiln__slab_init(&ctx->kernels, sizeof(kiln__kernel_obj), SIZE_MAX, KILN__TAG_KERNEL, 64);
  kiln__slab_init(&ctx->programs, sizeof(kiln__program_obj), SIZE_MAX, KILN__TAG_PROGRAM, 64);
  kiln__slab_keep(&ctx->programs, offsetof(kiln__program_obj, users), sizeof(_Atomic int));
  /* The slab clears none of an op (kiln__op_new sets each field); each pop fetches the
   * lines kiln__op_new and a launch write of the next free op: its fixed part, u's
   * first fields, the cause and the core's part. */
  kiln__slab_init(&ctx->ops, sizeof(kiln__op_obj), 0, KILN__TAG_OP, 0);
  kiln__slab_prefetch(&ctx->ops, 0, offsetof(kiln__op_obj, u.launch.args_inline));
  kiln__slab_prefetch(&ctx->ops, offsetof(kiln__op_obj, cause), sizeof(kiln__cause));
  kiln__slab_prefetch(&ctx->ops, offsetof(kiln__op_obj, refs),
                      offsetof(kiln__op_obj, orphan_gen) - offsetof(kiln__op_obj, refs));
  kiln__futures_init(ctx);
  pthread_mutex_init(&ctx->fut_lock, NULL);
  kiln__cond_init(&ctx->fut_cond);
  atomic_store(&ctx->next_stream_uid, ((uint64_t)index << 40) + ((uint64_t)slot_gen << 20) + 1);
  atomic_store(&ctx->next_stream_number, 0);
  ctx->transfer_stream = NULL;
  kiln__stream_groups_init(ctx);

  st = dev->ops->context_create(&ctx->view);
  if (st != KILN_SUCCESS) {
    release_slot(ctx);
    return st;
  }
  atomic_store(&ctx->h.tag, KILN__TAG_CONTEXT);
  if (desc && (desc->flags & KILN_CONTEXT_POOLED) &&
      (st = kiln__pool_context_init(ctx)) != KILN_SUCCESS) {
    kiln_context_destroy(ctx);
    *out = NULL;
    return st;
  }
  *out = ctx;
  return KILN_SUCCESS;
}

kiln_status kiln_context_get_device(kiln_context context, kiln_device *device) {
  KILN__API_ENTER();
  if (!device)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device is NULL");
  *device = NULL;
  kiln_status st = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  *device = context->device;
  return KILN_SUCCESS;
}

struct sync_result {
  kiln_status first; /* the first failure found, in stream order */
  kiln__cause cause;
};

static void sync_stream(void *elem, void *user) {
  kiln__stream_obj *s = elem;
  struct sync_result *r = user;
  kiln__stream_wait_idle(s);
  kiln__stream_wait_notified(s); /* the callbacks of its last ops are queued now */
  kiln__cause cause;
  kiln_status err = kiln__stream_take_error(s, &cause);
  if (err != KILN_SUCCESS && r->first == KILN_SUCCESS) {
    r->first = err;
    r->cause = cause;
  }
}

static void count_ops(void *elem, void *user) {
  *(uint64_t *)user +=
      atomic_load_explicit(&((kiln__stream_obj *)elem)->ops_counted, memory_order_relaxed);
}

kiln_status kiln_context_get_stats(kiln_context context, kiln_context_stats *stats) {
  KILN__API_ENTER();
  if (!stats)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stats is NULL");
  if (stats->struct_size < sizeof(kiln_context_stats))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "stats->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_CONTEXT_STATS_INIT",
                       stats->struct_size, sizeof(kiln_context_stats));
  kiln_status st = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  uint64_t ops = atomic_load(&context->stat_ops); /* of streams destroyed */
  kiln__slab_each_alive(&context->streams, count_ops, &ops);
  pthread_mutex_lock(&context->lock);
  if (context->default_stream)
    count_ops(context->default_stream, &ops);
  pthread_mutex_unlock(&context->lock);
  stats->ops_submitted = ops;
  stats->cross_stream_waits = atomic_load(&context->stat_cross_deps);
  stats->tokens_forgotten = atomic_load(&context->stat_tokens_forgotten);
  return KILN_SUCCESS;
}

kiln_status kiln_context_synchronize(kiln_context context) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  struct sync_result r = {KILN_SUCCESS, {0}};
  kiln__slab_each_alive(&context->streams, sync_stream, &r);
  kiln__guard_release_context(context);
  callback_drain(context, "kiln_context_synchronize");
  if (r.first != KILN_SUCCESS)
    return kiln__report_sync_failure("context", r.first, &r.cause);
  return KILN_SUCCESS;
}

static void teardown_stream(void *elem, void *user) {
  (void)user;
  kiln__stream_teardown(elem);
}
static void teardown_event(void *elem, void *user) {
  kiln__event_obj *ev = elem;
  kiln__context_obj *ctx = user;
  if (ev->marker)
    kiln__op_unref(&ev->marker->view);
  ev->marker = NULL;
  kiln__event_notify_close(ev);
  kiln__slab_release(&ctx->events, ev);
}
static void teardown_buffer(void *elem, void *user) {
  kiln__buffer_obj *b = elem;
  (void)user;
  if (b->pool_block)
    return; /* its pool's (kiln__pool_context_teardown) */
  b->h.ops->buffer_destroy(&b->view);
  kiln__buffer_release(b);
}
static void teardown_program(void *elem, void *user) {
  (void)user;
  kiln__program_free(elem);
}
static void teardown_kernel(void *elem, void *user) {
  (void)user;
  kiln__kernel_obj *k = elem;
  atomic_store(&k->h.tag, KILN__TAG_KERNEL | KILN__TAG_DEAD);
  kiln__kernel_free(k); /* every stream is gone: no launch refers to it */
}

kiln_status kiln_context_destroy(kiln_context context) {
  KILN__API_ENTER();
  if (!context)
    return KILN_SUCCESS;
  kiln_status st = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  kiln__context_obj *ctx = context;
  /* Claimed before anything else of the context is touched: a second destroy that
   * passed the check above finds the claim, never the locks the first one destroys. */
  if (atomic_exchange(&ctx->destroying, 1)) /* another thread's destroy has it */
    return kiln__refuse_second_destroy("context", ctx);
  if (on_callback_thread(ctx)) {
    atomic_store(&ctx->destroying, 0); /* refused: the context stays */
    kiln__error(KILN_ERROR_INVALID_STATE,
                "kiln_context_destroy was called from a completion callback of this context: "
                "destroy waits for the context's callbacks to return, so its callback thread "
                "would wait for itself");
    kiln__error_suggest("destroy the context from another thread once the callback has returned "
                        "(e.g. signal the thread that created it)");
    return KILN_ERROR_INVALID_STATE;
  }
  /* Finish all work, then the callbacks it queued, then tear down in dependency order.
   * Every callback runs while the context is whole: until a round of waiting for the
   * work and draining the callbacks ran none, since a callback may queue more work with
   * callbacks of its own (those of a round's work are queued when sync_stream returns,
   * kiln__stream_wait_notified). */
  for (uint64_t ran = UINT64_MAX;;) {
    struct sync_result r = {KILN_SUCCESS, {0}};
    kiln__slab_each_alive(&ctx->streams, sync_stream, &r);
    kiln__guard_release_context(ctx);
    callback_drain(ctx, "kiln_context_destroy");
    pthread_mutex_lock(&ctx->cb_lock);
    uint64_t now_ran = ctx->cb_ran;
    pthread_mutex_unlock(&ctx->cb_lock);
    if (now_ran == ran)
      break;
    ran = now_ran;
  }
  kiln__stream_groups_teardown(ctx); /* pools and sets; their streams go next */
  kiln__slab_each_alive(&ctx->streams, teardown_stream, ctx);
  ctx->transfer_stream = NULL; /* an alive stream: torn down just above */
  if (ctx->default_stream) {
    kiln__stream_teardown(ctx->default_stream);
    ctx->default_stream = NULL;
  }
  callback_thread_stop(ctx);
  kiln__report_forgotten_tokens(ctx, NULL);
  kiln__futures_teardown(ctx);
  kiln__slab_each_alive(&ctx->events, teardown_event, ctx);
  kiln__slab_each_alive(&ctx->kernels, teardown_kernel, ctx);
  kiln__slab_each_alive(&ctx->programs, teardown_program, ctx);
  kiln__slab_each_alive(&ctx->buffers, teardown_buffer, ctx);
  kiln__pool_context_teardown(ctx);
  kiln__host_teardown(ctx);
  ctx->h.ops->context_destroy(&ctx->view);
  release_slot(ctx);
  kiln__trace_context_destroyed();
  return KILN_SUCCESS;
}
