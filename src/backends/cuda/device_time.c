/* SPDX-License-Identifier: MIT */
/* Device time for the trace (docs/observability.md, "Device time"): while a trace
 * records, each op is bracketed by two timed events (one recorded before its work,
 * after its cross-stream waits; its own completion event, timed), and its device span
 * is the stream's reference event's host time plus cuEventElapsedTime to each. The
 * reference is anchored to the host clock at the stream's first traced op and again,
 * every 100 ms, when a traced submit finds the stream idle (record, synchronize: the host time is
 * the middle of the reads around them); between anchors it moves forward to an op's
 * end event once 100 ms from it, so the float milliseconds keep ~10 ns precision.
 * begin runs on the submitting thread (submit lock held, ctx current), end on the
 * completion thread; the reference changes only while the stream is idle (begin) or
 * on the completion thread (end, set_timestamp in stream.c), never both at once. */
#include "backends/cuda/cuda_internal.h"

#define ANCHOR_EVERY_NS 100000000u /* 100 ms */
#define MOVE_REF_MS 100.0f
#define TRIES 3
#define TIGHT_NS 20000u

/* A failed event call: device time off for this stream, a warning once per process. */
static void turn_off(cu_stream *cs, kiln_CUresult r, const char *call) {
  static atomic_int warned;
  cs->no_device_time = 1;
  if (!atomic_exchange(&warned, 1))
    kiln__log(KILN_LOG_WARN,
              "cuda: %s failed (%s) timing an op on the device for the trace: that stream's "
              "ops keep observed spans (warned once)",
              call, kiln__cu_error_name(r));
}

/* Record the reference event again on the idle stream, its host time the middle of the
 * reads around the record and its wait. */
static void reanchor(cu_stream *cs) {
  uint64_t h0 = 0, h1 = 0;
  kiln_CUresult r = kiln_CUDA_SUCCESS;
  /* Up to TRIES times while the reads are far apart (a thread preempted, a driver's
   * first call): the anchor's error is half their distance. */
  for (int i = 0; i < TRIES && r == kiln_CUDA_SUCCESS && (i == 0 || h1 - h0 > TIGHT_NS); i++) {
    h0 = kiln__now_ns();
    r = kiln__cu.cuEventRecord(cs->ref_event, cs->stream);
    if (r == kiln_CUDA_SUCCESS)
      r = kiln__cu.cuEventSynchronize(cs->ref_event);
    h1 = kiln__now_ns();
  }
  if (r != kiln_CUDA_SUCCESS) {
    turn_off(cs, r, "re-anchoring the timing reference (cuEventRecord, cuEventSynchronize)");
    return;
  }
  pthread_mutex_lock(&cs->lock);
  cs->ref_ns = h0 + (h1 - h0) / 2;
  cs->ref_error_ns = (h1 - h0) / 2;
  cs->ref_taken_ns = h1;
  pthread_mutex_unlock(&cs->lock);
}

bool kiln__cu_device_time_begin(cu_stream *cs, kiln__op *op) {
  if (cs->no_device_time || !cs->ref_event)
    return false;
  if (!cs->ref_taken_ns || kiln__now_ns() - cs->ref_taken_ns >= ANCHOR_EVERY_NS) {
    pthread_mutex_lock(&cs->lock);
    bool idle = cs->head == NULL; /* the completion thread is not using the reference */
    pthread_mutex_unlock(&cs->lock);
    if (idle)
      reanchor(cs);
    if (cs->no_device_time)
      return false;
  }
  kiln_CUevent ev = NULL;
  pthread_mutex_lock(&cs->lock);
  kiln_CUresult r = kiln__cu_event_get_locked(cs, 1, &ev);
  pthread_mutex_unlock(&cs->lock);
  const char *call = "cuEventCreate";
  if (r == kiln_CUDA_SUCCESS) {
    call = "cuEventRecord";
    r = kiln__cu.cuEventRecord(ev, cs->stream);
    if (r != kiln_CUDA_SUCCESS) {
      pthread_mutex_lock(&cs->lock);
      kiln__cu_event_put_locked(cs, ev, 1);
      pthread_mutex_unlock(&cs->lock);
    }
  }
  if (r != kiln_CUDA_SUCCESS) {
    turn_off(cs, r, call);
    return false;
  }
  op->native_timing = ev;
  return true;
}

void kiln__cu_device_time_end(cu_stream *cs, kiln__op *op, kiln_CUevent end, int *keep) {
  kiln_CUevent begin = op->native_timing;
  op->native_timing = NULL;
  *keep = 0;
  if (!begin)
    return;
  if (end && !cs->no_device_time) {
    float b_ms = 0.0f, e_ms = 0.0f;
    kiln_CUresult r = kiln__cu.cuEventElapsedTime(&b_ms, cs->ref_event, begin);
    if (r == kiln_CUDA_SUCCESS)
      r = kiln__cu.cuEventElapsedTime(&e_ms, cs->ref_event, end);
    if (r != kiln_CUDA_SUCCESS) {
      turn_off(cs, r, "cuEventElapsedTime");
    } else if (b_ms >= 0.0f && e_ms >= b_ms) {
      op->device_begin_ns = cs->ref_ns + (uint64_t)((double)b_ms * 1e6);
      op->device_end_ns = cs->ref_ns + (uint64_t)((double)e_ms * 1e6);
      op->device_error_ns = cs->ref_error_ns;
      if (e_ms > MOVE_REF_MS) { /* the reference moves to this op's end */
        pthread_mutex_lock(&cs->lock);
        kiln__cu_event_put_locked(cs, cs->ref_event, 1);
        cs->ref_event = end;
        cs->ref_ns = op->device_end_ns;
        pthread_mutex_unlock(&cs->lock);
        *keep = 1;
      }
    }
  }
  pthread_mutex_lock(&cs->lock);
  kiln__cu_event_put_locked(cs, begin, 1);
  pthread_mutex_unlock(&cs->lock);
}
