/* SPDX-License-Identifier: MIT */
/* Completion: ops complete in seq order, only from the head of the stream's pending list
 * (drain), once the outcome of their command is recorded (finish_native, claimed by one
 * thread). Outcomes come from an event callback on the runtime's thread (it only records
 * and drains; the core posts user callbacks to the context's callback thread), from a
 * native wait (op_wait, stream_wait) or from a poll; a finished command proves every
 * command before it finished (in-order queue), events or not. Any thread may call in;
 * cs->lock guards the pending list. */
#include "backends/opencl/opencl_internal.h"

/* Events of drained ops released per lock hold, after it: a drain on the runtime's
 * callback thread then keeps the submitting thread off cs->lock for less (PoCL frees the
 * event in clReleaseEvent). */
#define DRAIN_BATCH 32

/* Complete, in order, every op at the head of the stream's pending list whose command
 * has finished. Any thread may call it. */
void kiln__ocl_drain(kiln__stream *s) {
  kiln__ocl_stream *cs = s->native;
  for (;;) {
    cl_event done[DRAIN_BATCH];
    unsigned n = 0;
    bool more = false;
    pthread_mutex_lock(&cs->lock);
    kiln__op *op;
    while ((op = cs->pend_head) && atomic_load(&op->native_done) == KILN__OCL_DONE) {
      if (n == DRAIN_BATCH && op->native) {
        more = true; /* release these first, then go on */
        break;
      }
      cs->pend_head = atomic_load_explicit(&op->next, memory_order_relaxed);
      if (!cs->pend_head)
        cs->pend_tail = NULL;
      /* plan_op's idle test; relaxed: a hint for knobs 1 and 3 only */
      atomic_store_explicit(&cs->drained_seq, op->seq, memory_order_relaxed);
      cl_event ev = op->native;
      op->native = NULL;
      kiln__op_complete(op, op->native_status);
      if (ev)
        done[n++] = ev;
    }
    pthread_mutex_unlock(&cs->lock);
    for (unsigned i = 0; i < n; i++)
      kiln__ocl_release_event(done[i]);
    if (!more)
      return;
  }
}

static kiln_status exec_status_to_kiln(cl_int exec) {
  if (exec >= 0)
    return KILN_SUCCESS;
  if (exec == CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    return KILN_ERROR_DEPENDENCY_FAILED;
  if (exec == CL_OUT_OF_RESOURCES || exec == CL_MEM_OBJECT_ALLOCATION_FAILURE)
    return KILN_ERROR_OUT_OF_DEVICE_MEMORY;
  if (exec == CL_DEVICE_NOT_AVAILABLE)
    return KILN_ERROR_DEVICE_LOST;
  return KILN_ERROR_BACKEND;
}

/* Record how the op's command ended (once, whoever comes first). */
static void finish_native(kiln__op *op, cl_event ev, cl_int exec) {
  int expected = KILN__OCL_PENDING;
  if (!atomic_compare_exchange_strong(&op->native_done, &expected, KILN__OCL_CLAIMED))
    return;
  op->native_status = exec_status_to_kiln(exec);
  if (exec < 0) {
    op->cause.backend = KILN_BACKEND_OPENCL;
    op->cause.native_code = exec;
    op->cause.native_name = kiln__cl_error_name(exec);
  }
  if (op->kind == KILN__OP_MARKER && (atomic_load(&op->flags) & KILN__OPF_TIMING)) {
    cl_ulong t = 0;
    if (ev && kiln__cl.clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t, &t, NULL) ==
                  CL_SUCCESS)
      op->timestamp_ns = t;
    else
      op->timestamp_ns = kiln__now_ns();
  }
  if (exec == CL_COMPLETE && op->native && kiln__trace_device_time())
    kiln__ocl_device_time_read(op->stream->native, op, op->native);
  if (exec == CL_DEVICE_NOT_AVAILABLE)
    kiln__device_mark_lost(op->stream->h.ctx->device, "the OpenCL device is no longer available");
  /* seq_cst store publishes native_status, cause and timestamp to the drainer. */
  atomic_store(&op->native_done, KILN__OCL_DONE);
}

static void finish_upto(kiln__stream *s, uint64_t upto, int known_done);

/* Runs on the OpenCL runtime's thread; holds a reference on the op (taken when the
 * callback was set), so a waiter that finished the op first cannot free it under us. */
void CL_CALLBACK kiln__ocl_on_complete(cl_event ev, cl_int exec, void *user) {
  kiln__op *op = user;
  kiln__stream *s = op->stream;
  kiln__ocl_stream *cs = s->native;
  finish_native(op, ev, exec);
  finish_upto(s, op->seq, exec == CL_COMPLETE); /* ops before it: in order, done too */
  kiln__op_unref(op);
  /* Last: the stream's destroy waits for this before freeing cs. */
  atomic_fetch_sub(&cs->callbacks, 1);
}

/* Record the outcome of the ops at the head of the pending list that have finished,
 * then drain. known_done: every op with seq <= upto is known to have finished (a wait
 * on an event covering it succeeded): mark them without asking the driver. Otherwise
 * ask, op by op from the head, for the ops that have an event: an op that finished
 * proves every op before it finished too (in-order queue), events or not. */
static void finish_upto(kiln__stream *s, uint64_t upto, int known_done) {
  kiln__ocl_stream *cs = s->native;
  pthread_mutex_lock(&cs->lock);
  if (known_done) {
    for (kiln__op *op = cs->pend_head; op && op->seq <= upto;
         op = atomic_load_explicit(&op->next, memory_order_relaxed))
      if (atomic_load(&op->native_done) == KILN__OCL_PENDING)
        finish_native(op, op->native, CL_COMPLETE);
  } else {
    kiln__op *from = cs->pend_head; /* first op not yet known to have finished */
    for (kiln__op *op = cs->pend_head; op && op->seq <= upto;
         op = atomic_load_explicit(&op->next, memory_order_relaxed)) {
      if (atomic_load(&op->native_done) != KILN__OCL_PENDING || !op->native)
        continue;
      cl_int exec = CL_COMPLETE;
      if (kiln__cl.clGetEventInfo(op->native, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec, &exec,
                                  NULL) != CL_SUCCESS)
        exec = CL_COMPLETE;
      if (exec > CL_COMPLETE)
        break; /* in-order queue: nothing after it has finished */
      for (; from != op; from = atomic_load_explicit(&from->next, memory_order_relaxed))
        if (atomic_load(&from->native_done) == KILN__OCL_PENDING)
          finish_native(from, NULL, CL_COMPLETE);
      finish_native(op, op->native, exec);
      from = atomic_load_explicit(&op->next, memory_order_relaxed);
    }
  }
  pthread_mutex_unlock(&cs->lock);
  kiln__ocl_drain(s);
}

void kiln__ocl_finished_upto(kiln__stream *s, uint64_t upto) {
  finish_upto(s, upto, 1);
}

/* Wait (natively) for an event covering the op `target` (NULL: every op now queued),
 * then finish what it covers. */
static void wait_covering(kiln__stream *s, kiln__op *target) {
  kiln__ocl_stream *cs = s->native;
  uint64_t covers = 0;
  pthread_mutex_lock(&cs->lock);
  cl_event ev = NULL;
  if (target && atomic_load(&target->native_done) != KILN__OCL_PENDING) {
    ev = NULL; /* already finished: nothing to wait for */
  } else if (target && target->native) {
    ev = target->native;
    covers = target->seq;
    kiln__cl.clRetainEvent(ev);
    kiln__cl_count(KILN__CLO_EVENT, 1);
  } else {
    ev = kiln__ocl_covering_locked(cs, &covers);
  }
  pthread_mutex_unlock(&cs->lock);
  if (!ev) {
    kiln__ocl_drain(s);
    return;
  }
  kiln__ocl_flush(cs);
  int ok = kiln__cl.clWaitForEvents(1, &ev) == CL_SUCCESS;
  kiln__ocl_release_event(ev);
  finish_upto(s, covers, ok);
}

/* A thread blocks on `op`: wait natively rather than for a callback. */
void kiln__ocl_op_wait(kiln__op *op) {
  wait_covering(op->stream, op);
}

/* Wait for an event covering the stream's ops (not clFinish: PoCL's clFinish can miss a
 * user event completed from another thread while it waits). */
void kiln__ocl_stream_wait(kiln__stream *s) {
  wait_covering(s, NULL);
}

void kiln__ocl_poll(kiln__stream *s) {
  kiln__ocl_stream *cs = s->native;
  uint64_t covers = 0;
  cl_int exec = CL_QUEUED;
  pthread_mutex_lock(&cs->lock);
  kiln__op *tail = cs->pend_tail;
  cl_event ev = NULL;
  if (tail && tail->native) { /* the common case: asked under the lock, no reference taken */
    ev = tail->native;
    covers = tail->seq;
    if (kiln__cl.clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec, &exec, NULL) !=
        CL_SUCCESS)
      exec = CL_QUEUED;
  } else if (tail) { /* ops without events at the tail: a marker (made once) covers them */
    ev = kiln__ocl_covering_locked(cs, &covers);
    if (ev && kiln__cl.clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec, &exec,
                                      NULL) != CL_SUCCESS)
      exec = CL_QUEUED;
    kiln__ocl_release_event(ev);
  }
  pthread_mutex_unlock(&cs->lock);
  kiln__ocl_flush(cs);
  if (ev && exec == CL_COMPLETE)
    finish_upto(s, covers, 1);
  else
    finish_upto(s, UINT64_MAX, 0);
}
