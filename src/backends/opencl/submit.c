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

/* The five knobs of the submit path. Each removes a per-command driver cost that decided
 * small-op speed (NVIDIA's clSetEventCallback and clFlush take microseconds each; PoCL
 * allocates an event object per command); the figures are in docs/benchmarks.md ("The
 * OpenCL suites") and docs/architecture.md ("How the OpenCL backend completes work").
 *
 * 1. Event-less commands: a command gets a cl_event only when something will ask for it
 *    (need_event): marker, wait and callback ops, an op that gets a completion callback
 *    (2), an op on an idle queue (3), a blocking call's op (5). Anyone who must wait for
 *    an op without one waits for a covering event (stream.c: the tail's own, or a marker
 *    made then); the queue is in order, so that proves the op finished. The price: a
 *    failing command without an event shows only through a later command's status.
 *    Per platform (KILN_OPENCL_EVENTS=all|needed overrides): on PoCL every command gets
 *    its event. PoCL creates an event for every command whether asked or not (asking
 *    costs a reference, measured within noise: 1000 launches with and without), while
 *    a wait for an op without one cost a covering marker, a second command through
 *    PoCL's scheduler: write_async_4KiB 0.71 -> 0.80 of raw OpenCL (docs/opencl.md).
 *    NVIDIA keeps knob 1 as it was measured there.
 * 2. A callback every CALLBACK_EVERY-th op: clSetEventCallback only on callback ops and
 *    on every 32nd op, so a stream nobody waits on still frees its finished ops; waits
 *    and queries complete ops natively (complete.c). An op with a callback needs an
 *    event (1) and is flushed at once (3), else the callback could wait on an unflushed
 *    queue. Dropping the per-op callback, with (3) and the argument cache (launch.c),
 *    took launch_backtoback_1000 on PoCL from 0.46 to 0.63 of raw OpenCL (7946766).
 * 3. Lazy flush: clFlush after FLUSH_EVERY unflushed commands, when the queue was idle
 *    (so a submit-then-wait round trip starts at once; that op also gets an event, so its
 *    waiter waits on its own event; KILN_OPENCL_FLUSH_IDLE=0 turns this off) and when a
 *    callback is set; a waiter flushes before it waits, and so do a poll and a stream
 *    whose command depends on this queue's (its wait list must make progress).
 * 4. The profiling switch: queues start without profiling (~6 us per command on NVIDIA's
 *    OpenCL, H200); a stream's first timing marker moves it to a profiling queue whose
 *    first command waits for the old queue's last (switch_event, in that command's wait
 *    list). KILN_OPENCL_PROFILING=1 profiles every queue from the start, =0 never (timing
 *    events use the host clock); a wrapped queue never switches.
 * 5. Blocking transfers as blocking calls: the read or write of a blocking kiln call is a
 *    blocking clEnqueue*, since drivers copy pageable memory in the calling thread then
 *    (NVIDIA finishes a non-blocking 4 KiB read on a driver thread: 51 us against 11 us).
 *    Its op has an event (1); the call returned CL_SUCCESS only once the command
 *    finished, so the op (and every op before it) is recorded finished and drained at
 *    once, and the core's wait right after returns without asking the driver; the
 *    call flushed the queue (OpenCL's implicit flush of a blocking command).
 * The settings are read once, at probe (kiln__ocl_read_settings). */
#define CALLBACK_EVERY 32u
#define FLUSH_EVERY 16

int kiln__ocl_flush_idle = 1, kiln__ocl_profiling = -1; /* -1: on demand */
int kiln__ocl_events = -1;                              /* -1: per platform */

void kiln__ocl_read_settings(void) {
  kiln__ocl_flush_idle = kiln__env_flag("KILN_OPENCL_FLUSH_IDLE", 1);
  kiln__ocl_profiling = kiln__env_flag("KILN_OPENCL_PROFILING", -1); /* -1: on demand */
  /* "needed" 0, "all" 1; -1: per platform */
  kiln__ocl_events = kiln__env_word("KILN_OPENCL_EVENTS", kiln__env_ocl_events_words, -1);
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
  if (kiln__dep_await_listed(dep, &ocs->submitted_seq))
    return NULL;
  uint64_t covers = 0;
  pthread_mutex_lock(&ocs->lock);
  cl_event ev =
      kiln__ocl_covering_locked(ocs, &covers); /* covers dep->seq: it is in the list or done */
  pthread_mutex_unlock(&ocs->lock);
  kiln__ocl_flush(ocs); /* the other queue must make progress for our wait list to */
  return ev;
}

/* Knob 4: a timing marker moves the stream to a profiling queue, once. */
static void switch_if_timing(kiln__stream *s, kiln__ocl_stream *cs, const kiln__op *op) {
  if (op->kind == KILN__OP_MARKER && (atomic_load(&op->flags) & KILN__OPF_TIMING) &&
      !cs->profiled && !atomic_load(&cs->use_prof) && !cs->no_switch && kiln__ocl_profiling != 0)
    kiln__ocl_switch_to_profiling(s, cs);
}

/* The wait list of one command: the events of the other streams' ops it depends on and,
 * after a switch, the old queue's last command. Each entry holds a reference. */
typedef struct wait_list {
  cl_event inline_events[9];
  cl_event *events; /* inline_events, or allocated for dep_count + 1 */
  cl_uint count;
} wait_list;

/* Fill `wl` for `op`. False (error detail set) when the list cannot be allocated. */
static bool wait_list_build(kiln__ocl_stream *cs, const kiln__op *op, wait_list *wl) {
  wl->events = wl->inline_events;
  wl->count = 0;
  if (op->dep_count > 8) {
    wl->events = kiln__alloc(sizeof *wl->events * (op->dep_count + 1u));
    if (!wl->events) {
      kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory building a wait list");
      return false;
    }
  }
  for (uint32_t i = 0; i < op->dep_count; i++) {
    cl_event e = dep_event(&op->deps[i]);
    if (e)
      wl->events[wl->count++] = e;
  }
  if (cs->switch_event) { /* the first command on the profiling queue waits for the old one */
    wl->events[wl->count++] = cs->switch_event; /* its reference goes with the wait list's */
    cs->switch_event = NULL;
  }
  return true;
}

static void wait_list_release(wait_list *wl, const kiln__op *op) {
  for (cl_uint i = 0; i < wl->count; i++) {
    kiln__cl.clReleaseEvent(wl->events[i]);
    kiln__cl_count(KILN__CLO_EVENT, -1);
  }
  if (wl->events != wl->inline_events)
    kiln__free(wl->events, sizeof *wl->events * (op->dep_count + 1u));
}

/* What one op asks of the driver besides its command: the knobs, decided per op. */
typedef struct submit_plan {
  bool was_idle;      /* nothing pending on the stream (knobs 1, 3) */
  bool want_callback; /* set a completion callback on its event (knob 2) */
  bool need_event;    /* enqueue it with a cl_event (knob 1) */
  cl_bool blocking;   /* a blocking kiln call's read or write (knob 5) */
} submit_plan;

static submit_plan plan_op(const kiln__stream *s, kiln__ocl_stream *cs, const kiln__op *op) {
  submit_plan plan;
  /* Nothing pending: every op handed to the queue has been drained. Relaxed, without
   * cs->lock (a drain on the callback thread may hold it): a stale answer only changes
   * whether this op gets an event and a flush, never correctness (covering events). */
  plan.was_idle = atomic_load_explicit(&cs->drained_seq, memory_order_relaxed) ==
                  atomic_load_explicit(&cs->submitted_seq, memory_order_relaxed);
  uint32_t flags = atomic_load(&op->flags);
  plan.want_callback = op->kind == KILN__OP_CALLBACK || cs->since_callback + 1 >= CALLBACK_EVERY;
  const kiln__ocl_device *dd = s->h.ctx->device->native;
  plan.need_event = dd->events_always || plan.want_callback || plan.was_idle ||
                    op->kind == KILN__OP_MARKER || op->kind == KILN__OP_WAIT ||
                    (flags & KILN__OPF_BLOCKING);
  /* knob 5: only transfers have a blocking form (a blocking fill or copy is enqueued
   * without, and waited for) */
  plan.blocking =
      (flags & KILN__OPF_BLOCKING) && (op->kind == KILN__OP_READ || op->kind == KILN__OP_WRITE)
          ? CL_TRUE
          : CL_FALSE;
  return plan;
}

/* Enqueue the op's command on the current queue behind the wait list; evp (NULL: no
 * event) receives its event. */
static cl_int enqueue_command(kiln__stream *s, kiln__op *op, cl_bool blocking, const wait_list *wl,
                              cl_event *evp) {
  kiln__ocl_stream *cs = s->native;
  cl_command_queue q = kiln__ocl_queue(cs);
  cl_uint nwait = wl->count;
  const cl_event *w = nwait ? wl->events : NULL;
  switch (op->kind) {
  case KILN__OP_WRITE:
    return kiln__cl.clEnqueueWriteBuffer(q, op->u.write.buffer->native, blocking,
                                         op->u.write.offset, op->u.write.bytes, op->u.write.src,
                                         nwait, w, evp);
  case KILN__OP_READ:
    return kiln__cl.clEnqueueReadBuffer(q, op->u.read.buffer->native, blocking, op->u.read.offset,
                                        op->u.read.bytes, op->u.read.dst, nwait, w, evp);
  case KILN__OP_COPY:
    return kiln__cl.clEnqueueCopyBuffer(q, op->u.copy.src->native, op->u.copy.dst->native,
                                        op->u.copy.src_offset, op->u.copy.dst_offset,
                                        op->u.copy.bytes, nwait, w, evp);
  case KILN__OP_FILL:
    return kiln__cl.clEnqueueFillBuffer(q, op->u.fill.buffer->native, op->u.fill.pattern,
                                        op->u.fill.pattern_bytes, op->u.fill.offset,
                                        op->u.fill.bytes, nwait, w, evp);
  case KILN__OP_LAUNCH: {
    kiln_status lst = kiln__ocl_enqueue_launch(s, op, nwait, w, evp);
    cl_int err = lst == KILN_SUCCESS ? CL_SUCCESS : (cl_int)kiln_last_error()->native_code;
    if (lst != KILN_SUCCESS && err == CL_SUCCESS)
      err = CL_INVALID_VALUE;
    return err;
  }
  case KILN__OP_MARKER:
  case KILN__OP_WAIT:
  case KILN__OP_CALLBACK:
    return kiln__cl.clEnqueueMarkerWithWaitList(q, nwait, w, evp);
  }
  return CL_SUCCESS;
}

/* The command is queued: the op joins the pending list with its event (or none), and the
 * queue is flushed when knob 3 says so. */
static void track_and_flush(kiln__ocl_stream *cs, kiln__op *op, cl_event ev,
                            const submit_plan *plan) {
  if (ev)
    kiln__cl_count(KILN__CLO_EVENT, 1); /* the op's reference, released when it completes */
  op->native = ev;
  pthread_mutex_lock(&cs->lock);
  append_locked(cs, op);
  pthread_mutex_unlock(&cs->lock);
  cs->since_callback++;
  if (plan->blocking) /* a blocking command flushed the queue (OpenCL's implicit flush) */
    atomic_store(&cs->unflushed, 0);
  else if (atomic_fetch_add(&cs->unflushed, 1) + 1 >= FLUSH_EVERY ||
           (plan->was_idle && kiln__ocl_flush_idle) || plan->want_callback)
    kiln__ocl_flush(cs);
}

/* Knob 2: the completion callback on the op's event. */
static void set_callback(kiln__ocl_stream *cs, kiln__op *op, cl_event ev) {
  cs->since_callback = 0;
  /* The callback's reference on the op; it may run right here if the command finished. */
  kiln__op_ref(op);
  atomic_fetch_add(&cs->callbacks, 1);
  cl_int err = kiln__cl.clSetEventCallback(ev, CL_COMPLETE, kiln__ocl_on_complete, op);
  if (err != CL_SUCCESS) { /* no callback: wait here instead, then mark it */
    cl_int exec = kiln__cl.clWaitForEvents(1, &ev) == CL_SUCCESS ? CL_COMPLETE : err;
    kiln__ocl_on_complete(ev, exec, op);
  }
}

void kiln__ocl_submit(kiln__stream *s, kiln__op *op) {
  kiln__ocl_stream *cs = s->native;
  kiln_status st = kiln__op_begin(op);
  if (st != KILN_SUCCESS) {
    queue_failed(s, op, st);
    return;
  }
  switch_if_timing(s, cs, op);
  wait_list wl;
  if (!wait_list_build(cs, op, &wl)) {
    queue_failed(s, op, KILN_ERROR_OUT_OF_HOST_MEMORY);
    return;
  }
  submit_plan plan = plan_op(s, cs, op);
  if (kiln__trace_device_time() && kiln__ocl_device_time_prepare(s, cs))
    plan.need_event = true; /* its profiling info becomes its device span */
  cl_event ev = NULL;
  cl_int err = enqueue_command(s, op, plan.blocking, &wl, plan.need_event ? &ev : NULL);
  wait_list_release(&wl, op);
  if (err != CL_SUCCESS || (plan.need_event && !ev)) {
    kiln_status fst = kiln__cl_fail(err, "enqueueing an operation");
    queue_failed(s, op, fst);
    return;
  }
  track_and_flush(cs, op, ev, &plan);
  if (plan.want_callback)
    set_callback(cs, op, ev);
  if (plan.blocking) /* it returned once the command (and all before it) finished */
    kiln__ocl_finished_upto(s, op->seq);
}
