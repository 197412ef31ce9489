/* SPDX-License-Identifier: MIT */
/* CUDA streams: one non-blocking CUstream per kiln stream (or a wrapped user's one),
 * its pool of untimed events, and its completion thread. Every submitted op is listed
 * with its CUevent (submit.c); the completion thread waits for them in list order
 * (cuEventSynchronize, blocking sync) and completes the ops in seq order, so no kiln
 * code runs inside a driver callback. cs->lock guards the list, last_event, the pool,
 * stop and the staging cache. Ops of the core's stream_* contract, the rest called by
 * submit.c and staging.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

/* ------------------------------------------------------------- events */
/* An event for one op: untimed ones from the stream's pool. Called with cs->lock. */
kiln_CUresult kiln__cu_event_get_locked(cu_stream *cs, int timing, kiln_CUevent *ev) {
  if (!timing && cs->pool_count) {
    *ev = cs->pool[--cs->pool_count];
    return kiln_CUDA_SUCCESS;
  }
  if (timing && cs->tpool_count) {
    *ev = cs->tpool[--cs->tpool_count];
    return kiln_CUDA_SUCCESS;
  }
  unsigned flags =
      kiln_CU_EVENT_BLOCKING_SYNC | (timing ? 0u : (unsigned)kiln_CU_EVENT_DISABLE_TIMING);
  kiln_CUresult r = kiln__cu.cuEventCreate(ev, flags);
  if (r == kiln_CUDA_SUCCESS)
    kiln__cu_count(KILN__CUO_EVENT, 1);
  return r;
}

void kiln__cu_event_put_locked(cu_stream *cs, kiln_CUevent ev, int timing) {
  if (!timing && cs->pool_count < KILN__CU_EVENT_POOL) {
    cs->pool[cs->pool_count++] = ev;
    return;
  }
  if (timing && cs->tpool_count < KILN__CU_EVENT_POOL) {
    cs->tpool[cs->tpool_count++] = ev;
    return;
  }
  kiln__cu.cuEventDestroy(ev);
  kiln__cu_count(KILN__CUO_EVENT, -1);
}

/* ------------------------------------------------------------- completion */
kiln_status kiln__cu_complete_status(cu_stream *cs, kiln_CUresult r) {
  if (r == kiln_CUDA_SUCCESS)
    return KILN_SUCCESS;
  return kiln__cu_fail_device(cs->device, r, "work on a CUDA stream");
}

/* A timing marker's event: host-clock time from the stream's reference event; the
 * reference moves to the newest marker after a second, to keep float precision. */
static void set_timestamp(cu_stream *cs, kiln__op *op, kiln_CUevent ev, int *keep) {
  float ms = 0.0f;
  *keep = 0;
  if (!cs->ref_event || kiln__cu.cuEventElapsedTime(&ms, cs->ref_event, ev) != kiln_CUDA_SUCCESS) {
    op->timestamp_ns = kiln__now_ns();
    return;
  }
  op->timestamp_ns = cs->ref_ns + (uint64_t)((double)ms * 1e6);
  if (ms > 1000.0f) {
    pthread_mutex_lock(&cs->lock);
    kiln__cu_event_put_locked(cs, cs->ref_event, 1);
    cs->ref_event = ev;
    cs->ref_ns = op->timestamp_ns;
    pthread_mutex_unlock(&cs->lock);
    *keep = 1;
  }
}

static void *completion_main(void *arg) {
  kiln__stream *s = arg;
  cu_stream *cs = s->native;
  kiln__cu.cuCtxSetCurrent(cs->pctx);
  pthread_mutex_lock(&cs->lock);
  for (;;) {
    while (!cs->head && !cs->stop)
      pthread_cond_wait(&cs->cond, &cs->lock);
    kiln__op *op = cs->head;
    if (!op)
      break; /* stop, and nothing left */
    kiln_CUevent ev = op->native;
    stage_op *so = op->native_aux;
    pthread_mutex_unlock(&cs->lock);
    kiln_status st = op->native_status;
    int timing = 0, keep = 0;
    if (so && ev)
      st = kiln__cu_stage_copy_out(cs, so); /* a staged read: chunk by chunk, as they land */
    if (ev) {
      kiln_CUresult r = kiln__cu.cuEventSynchronize(ev);
      if (st == KILN_SUCCESS)
        st = kiln__cu_complete_status(cs, r);
      /* A failed wait that is not the stream's own failure (the driver's errors here are
       * sticky, but not every one need be): let the stream's queued copies end before
       * the op is reported, so none writes memory its owner may free on hearing it. */
      if (st != KILN_SUCCESS && !kiln__cu_is_sticky(r))
        kiln__cu.cuStreamSynchronize(cs->stream);
      timing = op->kind == KILN__OP_MARKER && (atomic_load(&op->flags) & KILN__OPF_TIMING);
      int traced = op->native_timing != NULL; /* a trace's device time: ev is timed too */
      if (traced) /* first: it may make ev the reference, which set_timestamp then reads */
        kiln__cu_device_time_end(cs, op, st == KILN_SUCCESS ? ev : NULL, &keep);
      if (st == KILN_SUCCESS && timing && !keep)
        set_timestamp(cs, op, ev, &keep);
      else if (st == KILN_SUCCESS && timing) /* ev is the reference: its time is ref_ns */
        op->timestamp_ns = cs->ref_ns;
      timing |= traced;
    }
    pthread_mutex_lock(&cs->lock);
    cs->head = atomic_load_explicit(&op->next, memory_order_relaxed);
    if (!cs->head)
      cs->tail = NULL;
    if (ev) {
      if (cs->last_event == ev)
        cs->last_event = NULL;
      if (!keep)
        kiln__cu_event_put_locked(cs, ev, timing);
    }
    op->native = NULL;
    op->native_aux = NULL;
    pthread_mutex_unlock(&cs->lock);
    if (so)
      kiln__cu_stage_finish(cs, so, ev != NULL);
    kiln__op_complete(op, st);
    pthread_mutex_lock(&cs->lock);
  }
  pthread_mutex_unlock(&cs->lock);
  return NULL;
}

void kiln__cu_append_locked(cu_stream *cs, kiln__op *op) {
  atomic_store_explicit(&op->next, NULL, memory_order_relaxed);
  if (cs->tail)
    atomic_store_explicit(&cs->tail->next, op, memory_order_relaxed);
  else
    cs->head = op;
  cs->tail = op;
  atomic_store(&cs->submitted_seq, op->seq);
  pthread_cond_signal(&cs->cond);
}

void kiln__cu_queue_failed(cu_stream *cs, kiln__op *op, kiln_status st, const char *call) {
  const kiln_error_info *e = kiln_last_error();
  if (e->backend == KILN_BACKEND_CUDA && e->native_code) { /* keep the driver's code */
    op->cause.backend = KILN_BACKEND_CUDA;
    op->cause.native_code = e->native_code;
    op->cause.native_name = kiln__cu_error_name((kiln_CUresult)e->native_code);
    op->cause.native_call = call;
  }
  op->native = NULL;
  op->native_status = st;
  pthread_mutex_lock(&cs->lock);
  kiln__cu_append_locked(cs, op);
  pthread_mutex_unlock(&cs->lock);
}

/* ------------------------------------------------------------- streams */
/* A new non-blocking CUstream for s (ctx current). kiln's priority > 0 is more urgent;
 * CUDA counts down from 0 (least) to its greatest priority (-5 on current GPUs):
 * clamped into the device's range. */
static kiln_CUresult stream_new(kiln__stream *s, kiln_CUstream *stream) {
  kiln_CUresult r;
  int least = 0, greatest = 0;
  if (s->priority > 0 && kiln__cu.cuStreamCreateWithPriority &&
      kiln__cu.cuCtxGetStreamPriorityRange &&
      kiln__cu.cuCtxGetStreamPriorityRange(&least, &greatest) == kiln_CUDA_SUCCESS &&
      greatest < least) {
    int p = least - s->priority;
    if (p < greatest)
      p = greatest;
    r = kiln__cu.cuStreamCreateWithPriority(stream, kiln_CU_STREAM_NON_BLOCKING, p);
    s->priority_applied = r == kiln_CUDA_SUCCESS ? least - p : 0;
    kiln__log(KILN_LOG_DEBUG, "cuda: stream priority %d -> CUDA priority %d (range %d..%d)",
              s->priority, p, least, greatest);
  } else {
    r = kiln__cu.cuStreamCreate(stream, kiln_CU_STREAM_NON_BLOCKING);
  }
  if (r != kiln_CUDA_SUCCESS)
    *stream = NULL;
  return r;
}

/* The timing reference (ctx current): an event recorded now on the idle stream, its
 * host time the middle of the host clock reads before the record and after it passed
 * (its error is half their distance: docs/observability.md, "Device time"). */
static kiln_CUresult clock_start(cu_stream *cs) {
  kiln_CUresult r = kiln__cu.cuEventCreate(&cs->ref_event, kiln_CU_EVENT_BLOCKING_SYNC);
  if (r != kiln_CUDA_SUCCESS) {
    cs->ref_event = NULL;
    return r;
  }
  kiln__cu_count(KILN__CUO_EVENT, 1);
  uint64_t h0 = kiln__now_ns();
  r = kiln__cu.cuEventRecord(cs->ref_event, cs->stream);
  if (r == kiln_CUDA_SUCCESS)
    r = kiln__cu.cuEventSynchronize(cs->ref_event);
  uint64_t h1 = kiln__now_ns();
  cs->ref_ns = h0 + (h1 - h0) / 2;
  cs->ref_error_ns = (h1 - h0) / 2;
  cs->ref_taken_ns = 0; /* a trace re-anchors at its first op on the stream, found idle */
  return r;
}

/* Free cs and every CUDA object it holds — each only if it was made — with cs->pctx
 * current and no completion thread running. drain: the stream ran work, let its
 * queued copies end first (a staged op that failed half-way may still DMA into its
 * block). The one teardown of a stream: its destroy and both failures of its create. */
static void stream_free_current(cu_stream *cs, bool drain) {
  if (drain)
    kiln__cu.cuStreamSynchronize(cs->stream);
  kiln__cu_stage_teardown(cs);
  for (int i = 0; i < cs->pool_count; i++)
    kiln__cu.cuEventDestroy(cs->pool[i]);
  kiln__cu_count(KILN__CUO_EVENT, -cs->pool_count);
  for (int i = 0; i < cs->tpool_count; i++)
    kiln__cu.cuEventDestroy(cs->tpool[i]);
  kiln__cu_count(KILN__CUO_EVENT, -cs->tpool_count);
  if (cs->ref_event) {
    kiln__cu.cuEventDestroy(cs->ref_event);
    kiln__cu_count(KILN__CUO_EVENT, -1);
  }
  if (cs->stream && !cs->wrapped) {
    kiln__cu.cuStreamDestroy(cs->stream);
    kiln__cu_count(KILN__CUO_STREAM, -1);
  }
  pthread_cond_destroy(&cs->cond);
  pthread_mutex_destroy(&cs->lock);
  kiln__free(cs, sizeof *cs);
}

static kiln_status stream_init(kiln__stream *s, kiln_CUstream stream, int wrapped) {
  kiln__context *ctx = s->h.ctx;
  cu_stream *cs = kiln__calloc(1, sizeof *cs);
  if (!cs)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating a stream");
  cs->pctx = ctx->native;
  cs->device = ctx->device;
  cs->wrapped = wrapped;
  pthread_mutex_init(&cs->lock, NULL);
  pthread_cond_init(&cs->cond, NULL);
  kiln_CUresult r = kiln__cu_push(cs->pctx);
  if (r == kiln_CUDA_SUCCESS && !stream) {
    r = stream_new(s, &stream);
    if (r == kiln_CUDA_SUCCESS)
      kiln__cu_count(KILN__CUO_STREAM, 1);
  }
  cs->stream = stream;
  if (r == kiln_CUDA_SUCCESS)
    r = clock_start(cs);
  if (r != kiln_CUDA_SUCCESS) {
    kiln_status st = kiln__cu_fail_device(
        cs->device, r, wrapped ? "preparing the CUstream to wrap" : "cuStreamCreate");
    stream_free_current(cs, false);
    kiln__cu_pop();
    return st;
  }
  kiln__cu_pop();
  s->native = cs;
  if (pthread_create(&cs->thread, NULL, completion_main, s) != 0) {
    s->native = NULL;
    kiln__cu_push(cs->pctx);
    stream_free_current(cs, false);
    kiln__cu_pop();
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "cannot start the stream's completion thread");
  }
  return KILN_SUCCESS;
}

kiln_status kiln__cu_stream_create(kiln__stream *s) {
  return stream_init(s, NULL, 0);
}

kiln_status kiln__cu_stream_wrap(kiln__stream *s, kiln_native_kind kind, const void *native) {
  if (kind != KILN_NATIVE_CU_STREAM)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "the CUDA backend wraps KILN_NATIVE_CU_STREAM streams, not kind %d",
                       (int)kind);
  kiln_CUstream st = *(const kiln_CUstream *)native;
  if (!st)
    return kiln__error(
        KILN_ERROR_INVALID_ARGUMENT,
        "the CUstream to wrap is the legacy default stream (NULL): wrap a created stream");
  return stream_init(s, st, 1);
}

void kiln__cu_stream_destroy(kiln__stream *s) {
  cu_stream *cs = s->native;
  pthread_mutex_lock(&cs->lock);
  cs->stop = 1;
  pthread_cond_signal(&cs->cond);
  pthread_mutex_unlock(&cs->lock);
  pthread_join(cs->thread, NULL);
  kiln__cu_push(cs->pctx);
  stream_free_current(cs, true);
  kiln__cu_pop();
  s->native = NULL;
}
