/* SPDX-License-Identifier: MIT */
/* Events: a reference to a marker op on a stream. Recording replaces the marker;
 * completion and timestamps are the marker's. Thread-safe under event->lock. */
#include <string.h>

#include "core/core.h"

kiln_status kiln_event_create(kiln_context context, const kiln_event_desc *desc,
                              kiln_event *event) {
  KILN__API_ENTER();
  if (!event)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "event (the out-parameter) is NULL");
  *event = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (desc && desc->struct_size < sizeof(kiln_event_desc))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_EVENT_DESC_INIT",
                       desc->struct_size, sizeof(kiln_event_desc));
  if (desc && (desc->flags & ~(unsigned)KILN_EVENT_TIMING))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->flags 0x%x has unknown bits: only KILN_EVENT_TIMING is defined",
                       desc->flags);
  void *e;
  st = kiln__slab_alloc(&context->events, &e);
  if (st != KILN_SUCCESS)
    return st;
  kiln__event_obj *ev = e;
  ev->h.ops = context->h.ops;
  ev->h.generation = context->h.generation;
  ev->h.ctx = context;
  ev->flags = desc ? desc->flags : 0;
  atomic_store(&ev->h.tag, KILN__TAG_EVENT);
  *event = ev;
  return KILN_SUCCESS;
}

kiln_status kiln_event_destroy(kiln_event event) {
  KILN__API_ENTER();
  if (!event)
    return KILN_SUCCESS;
  kiln_status st = kiln__check_alive(event, KILN__TAG_EVENT, "event");
  if (st == KILN_SUCCESS)
    st = kiln__claim_destroy(event, KILN__TAG_EVENT, "event");
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&event->lock);
  kiln__op_obj *marker = event->marker;
  event->marker = NULL;
  pthread_mutex_unlock(&event->lock);
  if (marker)
    kiln__op_unref(&marker->view);
  kiln__event_notify_close(event);
  kiln__slab_release(&event->h.ctx->events, event);
  return KILN_SUCCESS;
}

void kiln__event_slot_init(void *elem) {
  pthread_mutex_init(&((kiln__event_obj *)elem)->lock, NULL);
}

void kiln__event_slot_fini(void *elem) {
  pthread_mutex_destroy(&((kiln__event_obj *)elem)->lock);
}

bool kiln__event_dead_locked(const kiln__event_obj *event) {
  if ((atomic_load(&event->h.tag) & KILN__TAG_DEAD) == 0)
    return false;
  kiln__error(KILN_ERROR_INVALID_HANDLE,
              "event %p was destroyed by another thread while this call used it",
              (const void *)event);
  return true;
}

kiln_status kiln_event_record(kiln_event event, kiln_stream stream) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(event, KILN__TAG_EVENT, "event");
  if (st != KILN_SUCCESS)
    return st;
  st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  if (event->h.ctx != stream->h.ctx)
    return kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "event %p and stream %p belong to different contexts", (void *)event,
                       (void *)stream);
  kiln__op_obj *op;
  st = kiln__op_new(stream, KILN__OP_MARKER, &op);
  if (st != KILN_SUCCESS)
    return st;
  if (event->flags & KILN_EVENT_TIMING)
    atomic_store(&op->flags, KILN__OPF_TIMING);
  /* The event's lock is held from here until the new marker is in place, so that a
   * concurrent kiln_event_fd sees the old marker or the new one with its watch. Lock
   * order: event, then the stream's submit lock (nothing takes them the other way). */
  kiln__watch *watch = NULL; /* kiln_event_fd's, for the new marker */
  pthread_mutex_lock(&event->lock);
  st = kiln__event_dead_locked(event) ? KILN_ERROR_INVALID_HANDLE
                                      : kiln__event_record_prepare(event, &watch);
  if (st != KILN_SUCCESS) {
    pthread_mutex_unlock(&event->lock);
    kiln__op_discard(op);
    return st;
  }
  /* the backend's, the event's and (with a watch) ours until it is armed */
  atomic_store(&op->refs, watch ? 3 : 2);
  st = kiln__submit(op, NULL, 0, NULL, NULL, 0);
  if (st != KILN_SUCCESS) {
    pthread_mutex_unlock(&event->lock);
    kiln__event_record_arm(NULL, watch); /* frees it */
    return st;
  }
  kiln__op_obj *old = event->marker;
  event->marker = op;
  kiln__event_recorded_locked(event, watch);
  pthread_mutex_unlock(&event->lock);
  if (old)
    kiln__op_unref(&old->view);
  if (watch) {
    kiln__event_record_arm(op, watch);
    kiln__op_unref(&op->view);
  }
  return KILN_SUCCESS;
}

/* Take a reference to the current marker (*m NULL if never recorded). INVALID_HANDLE
 * when a destroy on another thread claimed the event after the caller's handle check:
 * its marker is gone then, and "never recorded" or "complete" would be a wrong answer. */
static kiln_status marker_get(kiln__event_obj *ev, kiln__op_obj **m) {
  pthread_mutex_lock(&ev->lock);
  if (kiln__event_dead_locked(ev)) {
    pthread_mutex_unlock(&ev->lock);
    *m = NULL;
    return KILN_ERROR_INVALID_HANDLE;
  }
  *m = ev->marker;
  if (*m)
    atomic_fetch_add(&(*m)->refs, 1);
  pthread_mutex_unlock(&ev->lock);
  return KILN_SUCCESS;
}

kiln_status kiln_event_query(kiln_event event) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(event, KILN__TAG_EVENT, "event");
  if (st != KILN_SUCCESS)
    return st;
  kiln__op_obj *m;
  st = marker_get(event, &m);
  if (!m)
    return st;
  if (!atomic_load(&m->done))
    kiln__stream_poll(m->stream);
  st = atomic_load(&m->done) ? KILN_SUCCESS : KILN_NOT_READY;
  kiln__op_unref(&m->view);
  return st;
}

kiln_status kiln_event_synchronize(kiln_event event) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(event, KILN__TAG_EVENT, "event");
  if (st != KILN_SUCCESS)
    return st;
  kiln__op_obj *m;
  st = marker_get(event, &m);
  if (!m)
    return st;
  kiln__op_wait(m, UINT64_MAX);
  kiln__guard_release_upto(m->stream, atomic_load(&m->stream->uid), m->seq);
  st = m->status;
  kiln__cause cause = m->cause;
  if (st != KILN_SUCCESS)
    kiln__stream_error_reported(m->stream, m->seq);
  kiln__op_unref(&m->view);
  if (st != KILN_SUCCESS)
    return kiln__error(st,
                       "work before the event failed: the operation queued at %s:%d (%s) "
                       "failed with %s",
                       cause.file ? cause.file : "?", cause.line, cause.api ? cause.api : "?",
                       kiln_status_name(cause.status ? cause.status : st));
  return KILN_SUCCESS;
}

kiln_status kiln_event_elapsed_ns(kiln_event start, kiln_event end, uint64_t *elapsed_ns) {
  KILN__API_ENTER();
  if (!elapsed_ns)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "elapsed_ns is NULL");
  *elapsed_ns = 0;
  kiln_status st = kiln__check_handle(start, KILN__TAG_EVENT, "start");
  if (st != KILN_SUCCESS)
    return st;
  st = kiln__check_handle(end, KILN__TAG_EVENT, "end");
  if (st != KILN_SUCCESS)
    return st;
  if (start->h.ctx != end->h.ctx)
    return kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "start and end events belong to different contexts");
  for (int i = 0; i < 2; i++) {
    kiln__event_obj *ev = i ? end : start;
    if (!(ev->flags & KILN_EVENT_TIMING)) {
      kiln__error(KILN_ERROR_INVALID_STATE, "%s event %p was created without KILN_EVENT_TIMING",
                  i ? "end" : "start", (void *)ev);
      kiln__error_suggest("create both events with desc.flags = KILN_EVENT_TIMING to time them");
      return KILN_ERROR_INVALID_STATE;
    }
  }
  kiln__op_obj *a, *b;
  st = marker_get(start, &a);
  if (st == KILN_SUCCESS)
    st = marker_get(end, &b);
  if (st != KILN_SUCCESS) {
    if (a)
      kiln__op_unref(&a->view);
    return st;
  }
  if (!a || !b || !atomic_load(&a->done) || !atomic_load(&b->done)) {
    const char *which = !a                       ? "start event was never recorded"
                        : !b                     ? "end event was never recorded"
                        : !atomic_load(&a->done) ? "start event has not completed"
                                                 : "end event has not completed";
    if (a)
      kiln__op_unref(&a->view);
    if (b)
      kiln__op_unref(&b->view);
    if (strstr(which, "recorded")) {
      kiln__error(KILN_ERROR_INVALID_STATE, "%s", which);
      kiln__error_suggest("record both events on a stream before asking for the time between them");
      return KILN_ERROR_INVALID_STATE;
    }
    return KILN_NOT_READY;
  }
  uint64_t t0 = a->timestamp_ns, t1 = b->timestamp_ns;
  kiln__op_unref(&a->view);
  kiln__op_unref(&b->view);
  if (t1 < t0) {
    kiln__error(KILN_ERROR_INVALID_STATE, "end event completed %llu ns before start event",
                (unsigned long long)(t0 - t1));
    kiln__error_suggest("swap the arguments, or record start before end");
    return KILN_ERROR_INVALID_STATE;
  }
  *elapsed_ns = t1 - t0;
  return KILN_SUCCESS;
}
