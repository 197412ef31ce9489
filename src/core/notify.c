/* SPDX-License-Identifier: MIT */
/* Completion watches on ops, the pollable descriptors of streams and events
 * (kiln_stream_fd, kiln_event_fd) and completion callbacks on tokens and events.
 * Invariants: a watch fires exactly once (whoever takes the op's list with an exchange
 * fires it); a descriptor is readable exactly while its condition holds (a stream:
 * every op submitted so far has completed; an event: its current marker has
 * completed), its state changed only under the notify's lock; a descriptor is closed
 * once, under that lock, and never written after. Thread-safe. */
#include <errno.h>
#include <string.h>

#include "core/core.h"

struct kiln__notify {
  pthread_mutex_t lock;
  int fd;         /* -1 once closed */
  bool readable;  /* the eventfd's state (set written, not yet read back) */
  uint64_t epoch; /* events: bumped at each record; a watch of an older marker is stale */
  _Atomic int refs;
};

static kiln_status notify_new(const char *what, const void *handle, kiln__notify **out) {
  *out = NULL;
  kiln__notify *n = kiln__alloc(sizeof *n);
  if (!n)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory making the descriptor of %s %p", what, handle);
  int fd = kiln__efd_open();
  if (fd < 0) {
    int err = errno;
    kiln__free(n, sizeof *n);
    kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "eventfd for %s %p failed: %s", what, handle,
                strerror(err));
    kiln__error_suggest("raise the process's descriptor limit (ulimit -n) or close descriptors");
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  }
  pthread_mutex_init(&n->lock, NULL);
  n->fd = fd;
  n->readable = false;
  n->epoch = 0;
  atomic_store(&n->refs, 1);
  *out = n;
  return KILN_SUCCESS;
}

static void notify_unref(kiln__notify *n) {
  /* acq_rel: the last owner sees every other owner's writes before freeing. */
  if (atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) == 1) {
    pthread_mutex_destroy(&n->lock);
    kiln__free(n, sizeof *n);
  }
}

/* Make the descriptor's state `readable` (caller holds n->lock). */
static void notify_set_locked(kiln__notify *n, bool readable) {
  if (n->fd < 0 || n->readable == readable)
    return;
  if (readable)
    kiln__efd_set(n->fd);
  else
    kiln__efd_clear(n->fd);
  n->readable = readable;
}

static void notify_close(kiln__notify *n) {
  pthread_mutex_lock(&n->lock);
  if (n->fd >= 0)
    kiln__efd_close(n->fd);
  n->fd = -1;
  pthread_mutex_unlock(&n->lock);
  notify_unref(n);
}

/* ------------------------------------------------------------- watches */
static void fire_list(kiln__watch *w, kiln__op_obj *op) {
  while (w) {
    kiln__watch *next = w->next; /* fire may free w */
    w->fire(w, op);
    w = next;
  }
}

void kiln__op_watch(kiln__op_obj *op, kiln__watch *w) {
  if (atomic_load(&op->done)) {
    w->next = NULL;
    fire_list(w, op);
    return;
  }
  /* Ours for the call: the caller's reference may belong to the watch, which can fire
   * on another thread (and drop it) as soon as it is pushed. */
  kiln__op_ref(&op->view);
  kiln__watch *head = atomic_load(&op->watchers);
  do
    w->next = head;
  while (!atomic_compare_exchange_weak(&op->watchers, &head, w));
  /* seq_cst: the push, then kiln__op_done's loads, pair with kiln__op_complete's store
   * of `completed` then its load of `watchers`: one of us sees the other and takes the
   * list. */
  if (kiln__op_done(op)) {
    kiln__watch *list = atomic_exchange(&op->watchers, NULL);
    fire_list(list, op);
  } else if (op->h.ops->op_notify) {
    op->h.ops->op_notify(&op->stream->view, &op->view); /* completion comes unasked */
  }
  kiln__op_unref(&op->view);
}

/* The stream's descriptor follows "idle": every op submitted has completed. Called by
 * the completer (notify_users raised), the submitter (submit lock held) and
 * kiln_stream_fd (submit lock held); each stores its counter before, so the last one
 * under the lock sees both counters as they end up. */
static void stream_update(kiln__stream_obj *s, kiln__notify *n) {
  pthread_mutex_lock(&n->lock);
  notify_set_locked(n, atomic_load(&s->completed) >= atomic_load(&s->submitted));
  pthread_mutex_unlock(&n->lock);
}

void kiln__op_completed_notify(kiln__op_obj *op) {
  void (*hook)(kiln__op_obj *) = atomic_load(&kiln__test_hooks_now.before_notify);
  if (hook)
    hook(op);
  if (atomic_load(&op->watchers)) {
    kiln__watch *list = atomic_exchange(&op->watchers, NULL);
    fire_list(list, op);
  }
  kiln__stream_obj *s = op->stream;
  if (!atomic_load(&s->notify))
    return;
  /* seq_cst: raising notify_users, then loading notify, pairs with the teardown's
   * clearing of notify, then its load of notify_users (kiln__stream_notify_close). */
  atomic_fetch_add(&s->notify_users, 1);
  kiln__notify *n = atomic_load(&s->notify);
  if (n)
    stream_update(s, n);
  atomic_fetch_sub(&s->notify_users, 1);
}

void kiln__stream_submitted_notify(kiln__stream_obj *s) {
  kiln__notify *n = atomic_load_explicit(&s->notify, memory_order_relaxed); /* submit lock */
  if (n)
    stream_update(s, n);
}

void kiln__stream_notify_close(kiln__stream_obj *s) {
  kiln__notify *n = atomic_exchange(&s->notify, NULL);
  if (!n)
    return;
  /* A completer that loaded the pointer before the exchange is still using it. */
  while (atomic_load(&s->notify_users) > 0)
    kiln__yield();
  notify_close(n);
}

/* ------------------------------------------------------------- event descriptors */
typedef struct event_watch {
  kiln__watch w;
  kiln__notify *notify; /* ref held */
  uint64_t epoch;
} event_watch;

static void event_watch_fire(kiln__watch *w, kiln__op_obj *op) {
  (void)op;
  event_watch *ew = (event_watch *)(void *)w;
  pthread_mutex_lock(&ew->notify->lock);
  if (ew->notify->epoch == ew->epoch) /* still the event's current marker */
    notify_set_locked(ew->notify, true);
  pthread_mutex_unlock(&ew->notify->lock);
  notify_unref(ew->notify);
  kiln__free(ew, sizeof *ew);
}

kiln_status kiln__event_record_prepare(kiln__event_obj *ev, kiln__watch **watch) {
  *watch = NULL;
  if (!ev->notify)
    return KILN_SUCCESS;
  event_watch *ew = kiln__alloc(sizeof *ew);
  if (!ew)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory watching event %p for its descriptor", (void *)ev);
  ew->w.fire = event_watch_fire;
  ew->w.next = NULL;
  ew->notify = ev->notify;
  atomic_fetch_add(&ew->notify->refs, 1);
  ew->epoch = 0;
  *watch = &ew->w;
  return KILN_SUCCESS;
}

void kiln__event_recorded_locked(kiln__event_obj *ev, kiln__watch *watch) {
  kiln__notify *n = ev->notify;
  if (!n)
    return;
  pthread_mutex_lock(&n->lock);
  n->epoch++; /* the old marker's watch is stale from now on */
  notify_set_locked(n, false);
  if (watch)
    ((event_watch *)(void *)watch)->epoch = n->epoch;
  pthread_mutex_unlock(&n->lock);
}

void kiln__event_record_arm(kiln__op_obj *marker, kiln__watch *watch) {
  if (!watch)
    return;
  if (!marker) { /* the record failed */
    event_watch *ew = (event_watch *)(void *)watch;
    notify_unref(ew->notify);
    kiln__free(ew, sizeof *ew);
    return;
  }
  kiln__op_watch(marker, watch);
}

void kiln__event_notify_close(kiln__event_obj *ev) {
  kiln__notify *n = ev->notify;
  ev->notify = NULL;
  if (n)
    notify_close(n);
}

kiln_status kiln_event_fd(kiln_event event, int *fd) {
  KILN__API_ENTER();
  if (!fd)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "fd (the out-parameter) is NULL");
  *fd = -1;
  kiln_status st = kiln__check_handle(event, KILN__TAG_EVENT, "event");
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&event->lock);
  if (kiln__event_dead_locked(event)) { /* its destroy closed the descriptor already */
    pthread_mutex_unlock(&event->lock);
    return KILN_ERROR_INVALID_HANDLE;
  }
  if (event->notify) {
    *fd = event->notify->fd;
    pthread_mutex_unlock(&event->lock);
    return KILN_SUCCESS;
  }
  kiln__notify *n;
  st = notify_new("event", event, &n);
  event_watch *ew = NULL;
  kiln__op_obj *m = event->marker;
  if (st == KILN_SUCCESS && m && !atomic_load(&m->done)) {
    ew = kiln__alloc(sizeof *ew);
    if (!ew) {
      notify_close(n);
      st = kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory watching event %p for its descriptor", (void *)event);
    }
  }
  if (st != KILN_SUCCESS) {
    pthread_mutex_unlock(&event->lock);
    return st;
  }
  event->notify = n;
  if (m)
    kiln__op_ref(&m->view);
  if (!ew) { /* never recorded, or complete: readable now (before a record can clear it) */
    pthread_mutex_lock(&n->lock);
    notify_set_locked(n, true);
    pthread_mutex_unlock(&n->lock);
  }
  /* Under the event's lock: a destroy on another thread may close the descriptor (and
   * free its record) as soon as it is released. */
  *fd = n->fd;
  if (ew) {
    ew->w.fire = event_watch_fire;
    ew->w.next = NULL;
    ew->notify = n;
    atomic_fetch_add(&n->refs, 1);
    ew->epoch = 0; /* read under n->lock at fire: a record since has bumped it */
  }
  pthread_mutex_unlock(&event->lock);
  if (ew)
    kiln__op_watch(m, &ew->w);
  if (m)
    kiln__op_unref(&m->view);
  return KILN_SUCCESS;
}

kiln_status kiln_stream_fd(kiln_stream stream, int *fd) {
  KILN__API_ENTER();
  if (!fd)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "fd (the out-parameter) is NULL");
  *fd = -1;
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&stream->submit_lock);
  if (atomic_load_explicit(&stream->closed, memory_order_relaxed)) { /* torn down meanwhile */
    pthread_mutex_unlock(&stream->submit_lock);
    return kiln__error(KILN_ERROR_INVALID_HANDLE,
                       "stream %p was destroyed by another thread while this call used it",
                       (void *)stream);
  }
  kiln__notify *n = atomic_load_explicit(&stream->notify, memory_order_relaxed); /* our lock */
  if (!n) {
    st = notify_new("stream", stream, &n);
    if (st == KILN_SUCCESS) {
      /* seq_cst: see kiln__op_complete (its store of `completed`, then load of notify). */
      atomic_store(&stream->notify, n);
      stream_update(stream, n);
    }
  }
  bool pending = atomic_load(&stream->completed) < atomic_load(&stream->submitted);
  if (st == KILN_SUCCESS)
    *fd = n->fd;
  pthread_mutex_unlock(&stream->submit_lock);
  if (st == KILN_SUCCESS && pending && stream->h.ops->op_notify)
    stream->h.ops->op_notify(&stream->view, NULL); /* the work queued before the descriptor */
  return st;
}

/* ------------------------------------------------------------- callbacks on tokens, events */
static kiln__callback_item *item_of(kiln__watch *w) {
  return (kiln__callback_item *)(void *)((char *)w - offsetof(kiln__callback_item, watch));
}

static void callback_watch_fire(kiln__watch *w, kiln__op_obj *op) {
  kiln__callback_item *item = item_of(w);
  item->status = op->status;
  kiln__callback_post(op->h.ctx, item);
}

void kiln__callback_observe(kiln__callback_item *item) {
  kiln__op_obj *op = item->op;
  if (!op || !item->stream_uid)
    return;
  if (item->observe == KILN__OBSERVE_OP) {
    if (op->host_bytes)
      kiln__guard_release_op(op->stream, item->stream_uid, op->seq);
    /* The callback is the token's wait: it reports the op's failure. */
    if (op->status != KILN_SUCCESS && atomic_load(&op->stream->uid) == item->stream_uid)
      kiln__stream_error_reported(op->stream, op->seq);
  } else if (item->observe == KILN__OBSERVE_UPTO) {
    kiln__guard_release_upto(op->stream, item->stream_uid, op->seq);
  }
}

/* A callback item for fn/user, with the callback thread running. */
static kiln_status callback_item_new(kiln__context_obj *ctx, kiln_callback_fn fn, void *user,
                                     kiln__callback_item **out) {
  *out = NULL;
  if (!fn)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "fn is NULL");
  kiln_status st = kiln__callback_thread_start(ctx);
  if (st != KILN_SUCCESS)
    return st;
  kiln__callback_item *item = kiln__alloc(sizeof *item);
  if (!item)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory queuing a callback");
  memset(item, 0, sizeof *item);
  item->fn = fn;
  item->user = user;
  item->watch.fire = callback_watch_fire;
  *out = item;
  return KILN_SUCCESS;
}

kiln_status kiln_event_add_callback(kiln_event event, kiln_callback_fn fn, void *user) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(event, KILN__TAG_EVENT, "event");
  if (st != KILN_SUCCESS)
    return st;
  kiln__callback_item *item;
  st = callback_item_new(event->h.ctx, fn, user, &item);
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&event->lock);
  kiln__op_obj *m = event->marker;
  if (m) {
    kiln__op_ref(&m->view); /* the item's, dropped after fn returns */
    item->stream_uid = atomic_load(&m->stream->uid);
  }
  pthread_mutex_unlock(&event->lock);
  if (!m) { /* never recorded: complete */
    kiln__callback_post(event->h.ctx, item);
    return KILN_SUCCESS;
  }
  item->op = m;
  item->observe = KILN__OBSERVE_UPTO;
  kiln__op_watch(m, &item->watch);
  return KILN_SUCCESS;
}

kiln_status kiln_pending_add_callback_at(kiln_pending *token, kiln_callback_fn fn, void *user,
                                         const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  kiln__op_obj *op;
  uint64_t id = token && token != KILN_NO_TOKEN ? token->id : 0;
  kiln_status st = kiln__token_take(token, &op);
  if (st != KILN_SUCCESS)
    return st;
  kiln__callback_item *item;
  st = callback_item_new(op->h.ctx, fn, user, &item);
  if (st != KILN_SUCCESS) { /* give the token back as it was */
    atomic_fetch_or(&op->flags, KILN__OPF_TOKEN);
    token->id = id;
    return st;
  }
  item->op = op; /* the token's reference */
  item->observe = KILN__OBSERVE_OP;
  item->stream_uid = atomic_load(&op->stream->uid);
  kiln__op_watch(op, &item->watch);
  return KILN_SUCCESS;
}
