/* SPDX-License-Identifier: MIT */
/* Device time for the trace (docs/observability.md, "Device time"): while a trace
 * records, a stream's commands go to a profiling queue and each op gets an event, whose
 * CL_PROFILING_COMMAND_START/END become the op's device span on the host's monotonic
 * clock through the stream's anchor — a marker enqueued between two host clock reads
 * (h0, h1), whose CL_PROFILING_COMMAND_QUEUED the driver stamps at that enqueue, so
 * host = device + (h0 + h1) / 2 - queued, to within (h1 - h0) / 2. The anchor is
 * renewed every ANCHOR_EVERY_NS of the stream's traced submissions (device clocks
 * drift from the host's). prepare runs under the submit lock; read on whichever thread
 * records the op's outcome (the driver's callback thread, a waiter), under anchor_lock
 * for the anchor only. */
#include "backends/opencl/opencl_internal.h"

#define ANCHOR_EVERY_NS 100000000u /* 100 ms */
#define TRIES 3
#define TIGHT_NS 20000u /* an anchor this tight is kept at once */

/* Enqueue a new anchor marker (submit lock held): the pending one, if any, is kept
 * until read back, so a new one is made only once the last has resolved. */
static void anchor_renew(kiln__ocl_stream *cs, uint64_t now) {
  pthread_mutex_lock(&cs->anchor_lock);
  bool pending = cs->anchor_ev != NULL;
  pthread_mutex_unlock(&cs->anchor_lock);
  if (pending)
    return;
  cs->anchor_at_ns = now;
  /* The tightest of up to TRIES markers: a first enqueue may take a millisecond (the
   * driver's lazy setup), and the anchor's error is half the reads' distance. */
  cl_event m = NULL;
  uint64_t h0 = 0, h1 = 0;
  cl_int err = CL_SUCCESS;
  for (int i = 0; i < TRIES && (!m || h1 - h0 > TIGHT_NS); i++) {
    cl_event mi = NULL;
    uint64_t a = kiln__now_ns();
    err = kiln__cl.clEnqueueMarkerWithWaitList(kiln__ocl_queue(cs), 0, NULL, &mi);
    uint64_t b = kiln__now_ns();
    if (err != CL_SUCCESS || !mi)
      break;
    kiln__cl_count(KILN__CLO_EVENT, 1);
    atomic_fetch_add(&cs->unflushed, 1);
    if (m && b - a >= h1 - h0) {
      kiln__ocl_release_event(mi);
      continue;
    }
    kiln__ocl_release_event(m);
    m = mi;
    h0 = a;
    h1 = b;
  }
  if (!m) {
    kiln__log(KILN_LOG_WARN,
              "opencl: no anchor marker for the trace's device time (%s): this stream's ops "
              "keep observed spans until the next try",
              kiln__cl_error_name(err));
    return;
  }
  pthread_mutex_lock(&cs->anchor_lock);
  cs->anchor_ev = m;
  cs->anchor_h0 = h0;
  cs->anchor_h1 = h1;
  pthread_mutex_unlock(&cs->anchor_lock);
}

bool kiln__ocl_device_time_prepare(kiln__stream *s, kiln__ocl_stream *cs) {
  if (!cs->profiled && !atomic_load(&cs->use_prof)) {
    if (cs->no_switch || kiln__ocl_profiling == 0)
      return false; /* KILN_OPENCL_PROFILING=0, or a wrapped queue: observed spans */
    kiln__ocl_switch_to_profiling(s, cs);
    if (!atomic_load(&cs->use_prof))
      return false;
  }
  uint64_t now = kiln__now_ns();
  if (!cs->anchor_at_ns || now - cs->anchor_at_ns >= ANCHOR_EVERY_NS)
    anchor_renew(cs, now);
  return true;
}

/* Read back a pending anchor marker once it has finished (anchor_lock held). */
static void anchor_resolve_locked(kiln__ocl_stream *cs) {
  cl_ulong queued = 0;
  cl_int exec = CL_QUEUED;
  if (kiln__cl.clGetEventInfo(cs->anchor_ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec, &exec,
                              NULL) != CL_SUCCESS ||
      exec > CL_COMPLETE)
    return; /* not yet: the ops before it are finishing */
  if (exec == CL_COMPLETE &&
      kiln__cl.clGetEventProfilingInfo(cs->anchor_ev, CL_PROFILING_COMMAND_QUEUED, sizeof queued,
                                       &queued, NULL) == CL_SUCCESS &&
      queued) {
    cs->device_offset_ns =
        (int64_t)(cs->anchor_h0 + (cs->anchor_h1 - cs->anchor_h0) / 2) - (int64_t)queued;
    cs->anchor_error_ns = (cs->anchor_h1 - cs->anchor_h0) / 2;
    cs->anchor_ok = 1;
  }
  kiln__ocl_release_event(cs->anchor_ev);
  cs->anchor_ev = NULL;
}

void kiln__ocl_device_time_read(kiln__ocl_stream *cs, kiln__op *op, cl_event ev) {
  cl_ulong start = 0, end = 0;
  if (!ev ||
      kiln__cl.clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof start, &start,
                                       NULL) != CL_SUCCESS ||
      kiln__cl.clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL) !=
          CL_SUCCESS ||
      !start || end < start)
    return; /* a command of a queue without profiling (queued before the switch) */
  pthread_mutex_lock(&cs->anchor_lock);
  if (cs->anchor_ev)
    anchor_resolve_locked(cs);
  int ok = cs->anchor_ok;
  int64_t off = cs->device_offset_ns;
  uint64_t error_ns = cs->anchor_error_ns;
  pthread_mutex_unlock(&cs->anchor_lock);
  if (!ok)
    return;
  int64_t b = (int64_t)start + off, e = (int64_t)end + off;
  if (b <= 0 || e < b)
    return;
  op->device_begin_ns = (uint64_t)b;
  op->device_end_ns = (uint64_t)e;
  op->device_error_ns = error_ns;
}

void kiln__ocl_device_time_destroy(kiln__ocl_stream *cs) {
  kiln__ocl_release_event(cs->anchor_ev);
  cs->anchor_ev = NULL;
  pthread_mutex_destroy(&cs->anchor_lock);
}
