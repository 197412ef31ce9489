/* SPDX-License-Identifier: MIT */
/* Submission: kiln__ocl_submit turns one op into one command on the stream's current
 * queue and appends the op to the stream's pending list (complete.c completes it from
 * there); an op refused before or by the enqueue is appended already failed, so every
 * op completes in seq order. Called by the core through the ops table, with the stream's
 * submit lock held and in seq order: since_callback, switch_event and the queue switch
 * are only touched under that lock. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/opencl_internal.h"

/* Per-op costs matter (NVIDIA's clSetEventCallback and clFlush take microseconds each):
 * a callback is set only on completion-callback ops and on every CALLBACK_EVERY-th op
 * (so a stream nobody waits on still frees its finished ops); waits, queries and
 * dependencies complete and flush on demand; a queue is flushed when it was idle, after
 * FLUSH_EVERY commands, and whenever something waits on it. */
#define CALLBACK_EVERY 32u
#define FLUSH_EVERY 16

/* Queue profiling costs ~6 us per command on NVIDIA's OpenCL (H200, measured), so a
 * stream's queue gets profiling only when the stream records its first timing event:
 * kiln then moves the stream to a new profiling queue whose first command waits for the
 * old queue's last (in-order semantics kept). KILN_OPENCL_PROFILING=1 profiles every
 * queue from the start, =0 never (timing events then use the host clock);
 * KILN_OPENCL_FLUSH_IDLE=0 stops flushing a queue that was idle (diagnostics, read once
 * at probe; docs/architecture.md). */
int kiln__ocl_flush_idle = 1, kiln__ocl_profiling = -1; /* -1: on demand */

void kiln__ocl_read_settings(void) {
  const char *v = getenv("KILN_OPENCL_FLUSH_IDLE");
  if (v && strcmp(v, "0") == 0)
    kiln__ocl_flush_idle = 0;
  v = getenv("KILN_OPENCL_PROFILING");
  if (v && strcmp(v, "0") == 0)
    kiln__ocl_profiling = 0;
  if (v && strcmp(v, "1") == 0)
    kiln__ocl_profiling = 1;
}

/* Put the op at the end of the pending list; it is now the stream's latest. */
static void append_locked(kiln__ocl_stream *cs, kiln__op *op) {
  atomic_store_explicit(&op->next, NULL, memory_order_relaxed);
  if (cs->pend_tail)
    atomic_store_explicit(&cs->pend_tail->next, op, memory_order_relaxed);
  else
    cs->pend_head = op;
  cs->pend_tail = op;
  atomic_store(&cs->submitted_seq, op->seq);
}

/* Queue an already-failed op so it completes in order. */
static void queue_failed(kiln__stream *s, kiln__op *op, kiln_status st) {
  kiln__ocl_stream *cs = s->native;
  const kiln_error_info *e = kiln_last_error();
  if (e->backend == KILN_BACKEND_OPENCL && e->native_code) { /* keep the driver's code */
    op->cause.backend = KILN_BACKEND_OPENCL;
    op->cause.native_code = e->native_code;
    op->cause.native_name = kiln__cl_error_name((cl_int)e->native_code);
  }
  op->native = NULL;
  op->native_status = st;
  atomic_store(&op->native_done, KILN__OCL_DONE);
  pthread_mutex_lock(&cs->lock);
  append_locked(cs, op);
  pthread_mutex_unlock(&cs->lock);
  kiln__ocl_drain(s);
}

/* The event of the latest command on the dependency's stream (retained), or NULL when
 * the dependency is already satisfied. Waits while that stream is between assigning
 * the sequence number and handing its op to the queue (deadlock-free: dependencies
 * only name ops whose hazard bookkeeping finished first). */
static cl_event dep_event(const kiln__dep *dep) {
  if (kiln__dep_done(dep))
    return NULL;
  kiln__ocl_stream *ocs = dep->stream->native;
  for (unsigned i = 0; atomic_load(&ocs->submitted_seq) < dep->seq; i++) {
    if (kiln__dep_done(dep))
      return NULL;
    if (i > 64)
      kiln__yield();
    else
      kiln__cpu_relax();
  }
  uint64_t covers = 0;
  pthread_mutex_lock(&ocs->lock);
  cl_event ev =
      kiln__ocl_covering_locked(ocs, &covers); /* covers dep->seq: it is in the list or done */
  pthread_mutex_unlock(&ocs->lock);
  kiln__ocl_flush(ocs); /* the other queue must make progress for our wait list to */
  return ev;
}

void kiln__ocl_submit(kiln__stream *s, kiln__op *op) {
  kiln__ocl_stream *cs = s->native;
  kiln_status st = kiln__op_begin(op);
  if (st != KILN_SUCCESS) {
    queue_failed(s, op, st);
    return;
  }
  if (op->kind == KILN__OP_MARKER && (atomic_load(&op->flags) & KILN__OPF_TIMING) &&
      !cs->profiled && !atomic_load(&cs->use_prof) && !cs->no_switch && kiln__ocl_profiling != 0)
    kiln__ocl_switch_to_profiling(s, cs);
  cl_event wait_inline[9], *wait = wait_inline;
  cl_uint nwait = 0;
  if (op->dep_count > 8) {
    wait = kiln__alloc(sizeof *wait * (op->dep_count + 1u));
    if (!wait) {
      kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory building a wait list");
      queue_failed(s, op, KILN_ERROR_OUT_OF_HOST_MEMORY);
      return;
    }
  }
  for (uint32_t i = 0; i < op->dep_count; i++) {
    cl_event e = dep_event(&op->deps[i]);
    if (e)
      wait[nwait++] = e;
  }
  if (cs->switch_event) { /* the first command on the profiling queue waits for the old one */
    wait[nwait++] = cs->switch_event; /* its reference goes with the wait list's */
    cs->switch_event = NULL;
  }
  const cl_event *wl = nwait ? wait : NULL;
  cl_event ev = NULL;
  pthread_mutex_lock(&cs->lock);
  bool was_idle = cs->pend_head == NULL;
  pthread_mutex_unlock(&cs->lock);
  bool want_callback = op->kind == KILN__OP_CALLBACK || cs->since_callback + 1 >= CALLBACK_EVERY;
  bool need_event = want_callback || was_idle || op->kind == KILN__OP_MARKER ||
                    op->kind == KILN__OP_WAIT || (atomic_load(&op->flags) & KILN__OPF_BLOCKING);
  cl_event *evp = need_event ? &ev : NULL;
  /* A blocking kiln call's transfer runs as a blocking OpenCL call: drivers copy pageable
   * memory in the calling thread then, where a non-blocking read of pageable memory is
   * finished later by a driver thread (NVIDIA: 4 KiB read 51 us vs 11 us). */
  cl_bool blocking = (atomic_load(&op->flags) & KILN__OPF_BLOCKING) ? CL_TRUE : CL_FALSE;
  cl_int err = CL_SUCCESS;
  switch (op->kind) {
  case KILN__OP_WRITE:
    err = kiln__cl.clEnqueueWriteBuffer(kiln__ocl_queue(cs), op->u.write.buffer->native, blocking,
                                        op->u.write.offset, op->u.write.bytes, op->u.write.src,
                                        nwait, wl, evp);
    break;
  case KILN__OP_READ:
    err = kiln__cl.clEnqueueReadBuffer(kiln__ocl_queue(cs), op->u.read.buffer->native, blocking,
                                       op->u.read.offset, op->u.read.bytes, op->u.read.dst, nwait,
                                       wl, evp);
    break;
  case KILN__OP_COPY:
    err = kiln__cl.clEnqueueCopyBuffer(kiln__ocl_queue(cs), op->u.copy.src->native,
                                       op->u.copy.dst->native, op->u.copy.src_offset,
                                       op->u.copy.dst_offset, op->u.copy.bytes, nwait, wl, evp);
    break;
  case KILN__OP_FILL:
    err = kiln__cl.clEnqueueFillBuffer(kiln__ocl_queue(cs), op->u.fill.buffer->native,
                                       op->u.fill.pattern, op->u.fill.pattern_bytes,
                                       op->u.fill.offset, op->u.fill.bytes, nwait, wl, evp);
    break;
  case KILN__OP_LAUNCH: {
    kiln_status lst = kiln__ocl_enqueue_launch(s, op, nwait, wl, evp);
    err = lst == KILN_SUCCESS ? CL_SUCCESS : (cl_int)kiln_last_error()->native_code;
    if (lst != KILN_SUCCESS && err == CL_SUCCESS)
      err = CL_INVALID_VALUE;
    break;
  }
  case KILN__OP_MARKER:
  case KILN__OP_WAIT:
  case KILN__OP_CALLBACK:
    err = kiln__cl.clEnqueueMarkerWithWaitList(kiln__ocl_queue(cs), nwait, wl, evp);
    break;
  }
  for (cl_uint i = 0; i < nwait; i++) {
    kiln__cl.clReleaseEvent(wait[i]);
    kiln__cl_count(KILN__CLO_EVENT, -1);
  }
  if (wait != wait_inline)
    kiln__free(wait, sizeof *wait * (op->dep_count + 1u));
  if (err != CL_SUCCESS || (need_event && !ev)) {
    kiln_status fst = kiln__cl_fail(err, "enqueueing an operation");
    queue_failed(s, op, fst);
    return;
  }
  if (ev)
    kiln__cl_count(KILN__CLO_EVENT, 1); /* the op's reference, released when it completes */
  op->native = ev;
  pthread_mutex_lock(&cs->lock);
  append_locked(cs, op);
  pthread_mutex_unlock(&cs->lock);
  cs->since_callback++;
  if (atomic_fetch_add(&cs->unflushed, 1) + 1 >= FLUSH_EVERY ||
      (was_idle && kiln__ocl_flush_idle) || want_callback)
    kiln__ocl_flush(cs);
  if (!want_callback)
    return;
  cs->since_callback = 0;
  /* The callback's reference on the op; it may run right here if the command finished. */
  atomic_fetch_add(&op->refs, 1);
  atomic_fetch_add(&cs->callbacks, 1);
  err = kiln__cl.clSetEventCallback(ev, CL_COMPLETE, kiln__ocl_on_complete, op);
  if (err != CL_SUCCESS) { /* no callback: wait here instead, then mark it */
    cl_int exec = kiln__cl.clWaitForEvents(1, &ev) == CL_SUCCESS ? CL_COMPLETE : err;
    kiln__ocl_on_complete(ev, exec, op);
  }
}
