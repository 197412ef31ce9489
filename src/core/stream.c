/* SPDX-License-Identifier: MIT */
/* Streams: creation, teardown (waits, reports forgotten tokens), synchronisation,
 * cross-stream event waits and completion callbacks. The context's default stream
 * (for blocking buffer calls) is an internal stream created on first use. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "trace/trace.h"

const char *kiln__stream_name(char out[KILN__STREAM_NAME_BYTES], const kiln__stream_obj *s) {
  char q[KILN__QUOTE_BYTES];
  if (s->internal)
    snprintf(out, KILN__STREAM_NAME_BYTES, "internal stream of the context");
  else
    snprintf(out, KILN__STREAM_NAME_BYTES, "stream %s (id %llu)",
             kiln__quote(q, s->label, strlen(s->label)), (unsigned long long)s->number);
  return out;
}

static kiln_status stream_new(kiln__context_obj *ctx, int priority, int internal, const char *label,
                              int owner, kiln_native_kind wrap_kind, const void *wrap,
                              kiln__stream_obj **out) {
  *out = NULL;
  void *e;
  kiln_status st = kiln__slab_alloc(&ctx->streams, &e);
  if (st != KILN_SUCCESS)
    return st;
  kiln__stream_obj *s = e;
  s->h.ops = ctx->h.ops;
  s->h.generation = ctx->h.generation;
  s->h.ctx = ctx;
  s->priority = priority;
  s->priority_applied = 0;
  s->internal = internal;
  s->owner = owner;
  s->pool = NULL;
  s->stats_on = 0;
  atomic_store(&s->held, 0);
  atomic_store(&s->picked, 0);
  atomic_store(&s->busy_ns, 0);
  atomic_store(&s->last_done_ns, 0);
  s->number = internal ? 0 : atomic_fetch_add(&ctx->next_stream_number, 1) + 1;
  if (label)
    kiln__strlcpy(s->label, label, sizeof s->label);
  else
    snprintf(s->label, sizeof s->label, internal ? "internal" : "stream-%llu",
             (unsigned long long)s->number);
  pthread_mutex_init(&s->wait_lock, NULL);
  kiln__cond_init(&s->wait_cond);
  atomic_store(&s->uid, atomic_fetch_add(&ctx->next_stream_uid, 1));
  st = wrap ? ctx->h.ops->stream_wrap(&s->view, wrap_kind, wrap)
            : ctx->h.ops->stream_create(&s->view);
  if (st != KILN_SUCCESS) {
    atomic_store(&s->uid, 0);
    pthread_mutex_destroy(&s->wait_lock);
    pthread_cond_destroy(&s->wait_cond);
    kiln__slab_release(&ctx->streams, s);
    return st;
  }
  /* A trace recording now shows the stream's track under its label (a failure to
   * record the name only leaves the track unnamed). */
  if (KILN__TRACE_ON() && !internal)
    (void)kiln__trace_name_track(atomic_load(&s->uid), s->label);
  /* An internal stream is not listed as alive (teardown handles it separately). */
  atomic_store(&s->h.tag, internal ? (KILN__TAG_STREAM | KILN__TAG_INTERNAL) : KILN__TAG_STREAM);
  *out = s;
  return KILN_SUCCESS;
}

kiln_status kiln__stream_new(kiln__context_obj *ctx, int priority, const char *label, int owner,
                             kiln__stream_obj **out) {
  return stream_new(ctx, priority, 0, label, owner, (kiln_native_kind)0, NULL, out);
}

kiln_status kiln__default_stream(kiln__context_obj *ctx, kiln__stream_obj **out) {
  kiln_status st = KILN_SUCCESS;
  pthread_mutex_lock(&ctx->lock);
  if (!ctx->default_stream)
    st = stream_new(ctx, 0, 1, NULL, KILN__OWNER_CONTEXT, (kiln_native_kind)0, NULL,
                    &ctx->default_stream);
  *out = ctx->default_stream;
  pthread_mutex_unlock(&ctx->lock);
  return st;
}

void kiln__stream_slot_init(void *elem) {
  pthread_mutex_init(&((kiln__stream_obj *)elem)->submit_lock, NULL);
  pthread_mutex_init(&((kiln__stream_obj *)elem)->fail_lock, NULL);
}

void kiln__stream_slot_fini(void *elem) {
  pthread_mutex_destroy(&((kiln__stream_obj *)elem)->submit_lock);
  pthread_mutex_destroy(&((kiln__stream_obj *)elem)->fail_lock);
}

void kiln__stream_teardown(kiln__stream_obj *s) {
  kiln__context_obj *ctx = s->h.ctx;
  /* Closed before its work is waited for: a call on another thread that checked the
   * handle earlier is refused when it submits (kiln__submit checks under the same
   * lock), so nothing is queued on a stream whose worker is gone. */
  pthread_mutex_lock(&s->submit_lock);
  atomic_store_explicit(&s->closed, 1, memory_order_relaxed);
  pthread_mutex_unlock(&s->submit_lock);
  kiln__stream_wait_idle(s);
  kiln__stream_notify_close(s);
  kiln__guard_release_upto(s, atomic_load(&s->uid), UINT64_MAX);
  kiln__report_forgotten_tokens(ctx, s);
  atomic_fetch_add(&ctx->stat_ops, atomic_load(&s->ops_counted)); /* its count stays */
  /* Idle now: wait out the threads still inside a wait on this stream (core.h). */
  for (unsigned i = 0; atomic_load(&s->wait_users) != 0; i++) {
    if (i < 64)
      kiln__cpu_relax();
    else
      kiln__yield();
  }
  s->h.ops->stream_destroy(&s->view);
  atomic_store(&s->uid, 0);
  pthread_mutex_destroy(&s->wait_lock);
  pthread_cond_destroy(&s->wait_cond);
  kiln__slab_release(&ctx->streams, s);
}

kiln_status kiln_stream_create(kiln_context context, const kiln_stream_desc *desc,
                               kiln_stream *stream) {
  KILN__API_ENTER();
  if (!stream)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stream (the out-parameter) is NULL");
  *stream = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  /* The first fields (up to priority) are the original struct; label was appended. */
  size_t first = offsetof(kiln_stream_desc, priority) + sizeof(int);
  if (desc && desc->struct_size < first)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_STREAM_DESC_INIT",
                       desc->struct_size, first);
  if (desc && desc->flags)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc->flags is 0x%x: no flags are defined yet",
                       desc->flags);
  const char *label =
      desc && desc->struct_size >= offsetof(kiln_stream_desc, label) + sizeof(const char *)
          ? desc->label
          : NULL;
  return stream_new(context, desc ? desc->priority : 0, 0, label, KILN__OWNER_NONE,
                    (kiln_native_kind)0, NULL, stream);
}

kiln_status kiln_stream_wrap_native(kiln_context context, kiln_native_kind kind, const void *native,
                                    kiln_stream *stream) {
  KILN__API_ENTER();
  if (!stream)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stream (the out-parameter) is NULL");
  *stream = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (!native)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "native is NULL");
  if (!context->h.ops->stream_wrap) {
    kiln__error(KILN_ERROR_UNSUPPORTED, "backend '%s' has no native streams to wrap (kind %d)",
                context->h.ops->name, (int)kind);
    return KILN_ERROR_UNSUPPORTED;
  }
  return stream_new(context, 0, 0, NULL, KILN__OWNER_NONE, kind, native, stream);
}

kiln_status kiln_stream_destroy(kiln_stream stream) {
  KILN__API_ENTER();
  if (!stream)
    return KILN_SUCCESS;
  kiln_status st = kiln__check_alive(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  if (stream->owner != KILN__OWNER_NONE) {
    char name[KILN__STREAM_NAME_BYTES];
    kiln__error(KILN_ERROR_INVALID_STATE, "%s belongs to its %s: it is destroyed with it",
                kiln__stream_name(name, stream),
                stream->owner == KILN__OWNER_POOL  ? "stream pool"
                : stream->owner == KILN__OWNER_SET ? "stream set"
                                                   : "context (the transfer stream)");
    kiln__error_suggest("destroy the %s instead, or leave the stream alone",
                        stream->owner == KILN__OWNER_POOL  ? "pool (kiln_stream_pool_destroy)"
                        : stream->owner == KILN__OWNER_SET ? "set (kiln_stream_set_destroy)"
                                                           : "context");
    return KILN_ERROR_INVALID_STATE;
  }
  if (atomic_exchange(&stream->destroying, 1)) /* another thread's destroy has it */
    return kiln__refuse_second_destroy("stream", stream);
  kiln__stream_teardown(stream);
  return KILN_SUCCESS;
}

kiln_status kiln_stream_synchronize(kiln_stream stream) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  return kiln__stream_synchronize(stream);
}

kiln_status kiln__stream_synchronize(kiln__stream_obj *stream) {
  uint64_t upto = atomic_load(&stream->submitted);
  kiln__stream_wait_idle(stream);
  if (KILN__TRACE_ON())
    kiln__trace_api_end();
  kiln__guard_release_upto(stream, atomic_load(&stream->uid), upto);
  kiln__cause cause;
  kiln_status err = kiln__stream_take_error(stream, &cause);
  if (err != KILN_SUCCESS) {
    char name[KILN__STREAM_NAME_BYTES];
    return kiln__report_sync_failure(kiln__stream_name(name, stream), err, &cause);
  }
  return KILN_SUCCESS;
}

kiln_status kiln_stream_pending(kiln_stream stream, uint64_t *count) {
  KILN__API_ENTER();
  if (!count)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "count (the out-parameter) is NULL");
  *count = 0;
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  /* completed first: it never passes submitted, so the difference never wraps. */
  uint64_t done = atomic_load_explicit(&stream->completed, memory_order_relaxed);
  uint64_t sub = atomic_load_explicit(&stream->submitted, memory_order_relaxed);
  *count = sub > done ? sub - done : 0;
  return KILN_SUCCESS;
}

kiln_status kiln_stream_get_info(kiln_stream stream, kiln_stream_info *info) {
  KILN__API_ENTER();
  if (!info)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "info is NULL");
  if (info->struct_size < sizeof(kiln_stream_info))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "info->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_STREAM_INFO_INIT",
                       info->struct_size, sizeof(kiln_stream_info));
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  info->id = stream->number;
  kiln__strlcpy(info->label, stream->label, sizeof info->label);
  info->priority = stream->priority;
  info->priority_applied = stream->priority_applied;
  uint64_t done = atomic_load(&stream->completed), sub = atomic_load(&stream->submitted);
  info->pending = sub > done ? sub - done : 0;
  info->ops = atomic_load_explicit(&stream->ops_counted, memory_order_relaxed);
  info->owned = stream->owner != KILN__OWNER_NONE;
  return KILN_SUCCESS;
}

kiln_status kiln_context_transfer_stream(kiln_context context, kiln_stream *stream) {
  KILN__API_ENTER();
  if (!stream)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stream (the out-parameter) is NULL");
  *stream = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&context->lock);
  if (!context->transfer_stream)
    st = kiln__stream_new(context, 0, "transfer", KILN__OWNER_CONTEXT, &context->transfer_stream);
  *stream = context->transfer_stream;
  pthread_mutex_unlock(&context->lock);
  return st;
}

kiln_status kiln_stream_query(kiln_stream stream) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  if (atomic_load(&stream->completed) < atomic_load(&stream->submitted))
    kiln__stream_poll(stream);
  return atomic_load(&stream->completed) >= atomic_load(&stream->submitted) ? KILN_SUCCESS
                                                                            : KILN_NOT_READY;
}

kiln_status kiln_stream_wait_event(kiln_stream stream, kiln_event event) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  st = kiln__check_handle(event, KILN__TAG_EVENT, "event");
  if (st != KILN_SUCCESS)
    return st;
  if (event->h.ctx != stream->h.ctx)
    return kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "event %p and stream %p belong to different contexts", (void *)event,
                       (void *)stream);
  kiln__dep dep = {NULL, 0, 0};
  pthread_mutex_lock(&event->lock);
  if (kiln__event_dead_locked(event)) { /* destroyed since the check: its marker is gone */
    pthread_mutex_unlock(&event->lock);
    return KILN_ERROR_INVALID_HANDLE;
  }
  kiln__op_obj *marker = event->marker;
  if (marker) {
    dep.stream = &marker->stream->view;
    dep.uid = atomic_load(&marker->stream->uid);
    dep.seq = marker->seq;
    atomic_fetch_add(&marker->refs, 1);
  }
  pthread_mutex_unlock(&event->lock);
  if (!marker)
    return KILN_SUCCESS;
  /* Even a completed or same-stream event is waited through an op when it failed, so
   * the failure reaches the work behind it. */
  if ((dep.stream == &stream->view || kiln__dep_done(&dep)) && atomic_load(&marker->done) &&
      marker->status == KILN_SUCCESS) {
    kiln__op_unref(&marker->view);
    return KILN_SUCCESS;
  }
  kiln__op_obj *op;
  st = kiln__op_new(stream, KILN__OP_WAIT, &op);
  if (st != KILN_SUCCESS) {
    kiln__op_unref(&marker->view);
    return st;
  }
  op->u.wait.marker = marker;
  st = kiln__op_add_dep(op, &dep);
  if (st != KILN_SUCCESS) {
    kiln__op_discard(op);
    return st;
  }
  return kiln__submit(op, NULL, 0, NULL, NULL, 0);
}

kiln_status kiln_stream_add_callback(kiln_stream stream, kiln_callback_fn fn, void *user) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  if (!fn)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "fn is NULL");
  kiln__context_obj *ctx = stream->h.ctx;
  st = kiln__callback_thread_start(ctx);
  if (st != KILN_SUCCESS)
    return st;
  kiln__callback_item *item = kiln__alloc(sizeof *item);
  if (!item)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory queuing a callback");
  item->fn = fn;
  item->user = user;
  memset(item, 0, sizeof *item);
  item->fn = fn;
  item->user = user;
  kiln__op_obj *op;
  st = kiln__op_new(stream, KILN__OP_CALLBACK, &op);
  if (st != KILN_SUCCESS) {
    kiln__free(item, sizeof *item);
    return st;
  }
  op->u.callback.item = item;
  return kiln__submit(op, NULL, 0, NULL, NULL, 0);
}
