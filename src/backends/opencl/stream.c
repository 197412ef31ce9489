/* SPDX-License-Identifier: MIT */
/* A stream's queues: one in-order command queue per stream (profiled only with
 * KILN_OPENCL_PROFILING=1), replaced once by a profiling queue at the stream's first
 * timing event, the first command there waiting for the old queue's last; and the
 * covering event (the tail op's own, or a marker made on demand) through which anyone
 * waits for ops enqueued without an event. stream_create/destroy come through the ops
 * table (destroy with the stream idle, and it waits for event callbacks still on their
 * way); the switch runs under the stream's submit lock, from submit.c. */
#include "backends/opencl/opencl_internal.h"

/* Most ops carry no cl_event (creating one per command costs on some drivers): an op
 * gets one when it is a marker, wait or callback op, when it gets a progress callback,
 * when its queue was idle, or when a blocking call waits on it. Whoever must wait for
 * an op without one waits for a later event, or for a marker enqueued then: the queue
 * is in order. Returns a retained event covering every op now in the pending list and
 * sets *covers to the seq it covers; NULL when the list is empty. Under cs->lock. */
cl_event kiln__ocl_covering_locked(kiln__ocl_stream *cs, uint64_t *covers) {
  kiln__op *tail = cs->pend_tail;
  if (!tail)
    return NULL;
  cl_event ev = NULL;
  if (tail->native) {
    ev = tail->native;
    *covers = tail->seq;
  } else if (cs->marker && cs->marker_seq >= tail->seq) {
    ev = cs->marker;
    *covers = cs->marker_seq;
  } else {
    cl_event m = NULL;
    if (kiln__cl.clEnqueueMarkerWithWaitList(kiln__ocl_queue(cs), 0, NULL, &m) != CL_SUCCESS || !m)
      return NULL;
    kiln__cl_count(KILN__CLO_EVENT, 1);
    atomic_fetch_add(&cs->unflushed, 1);
    if (cs->marker) {
      kiln__cl.clReleaseEvent(cs->marker);
      kiln__cl_count(KILN__CLO_EVENT, -1);
    }
    cs->marker = m;
    cs->marker_seq = tail->seq;
    ev = m;
    *covers = tail->seq;
  }
  kiln__cl.clRetainEvent(ev);
  kiln__cl_count(KILN__CLO_EVENT, 1);
  return ev;
}

/* Move the stream to a profiling queue (called under the stream's submit lock). */
void kiln__ocl_switch_to_profiling(kiln__stream *s, kiln__ocl_stream *cs) {
  cl_int err = CL_SUCCESS;
  cl_command_queue q = kiln__ocl_queue_create(s, CL_QUEUE_PROFILING_ENABLE, &err, NULL);
  if (!q) { /* timing falls back to the host clock */
    kiln__log(KILN_LOG_WARN, "opencl: no profiling queue (%s): timing events use the host clock",
              kiln__cl_error_name(err));
    cs->no_switch = 1; /* do not try again */
    return;
  }
  kiln__cl_count(KILN__CLO_QUEUE, 1);
  uint64_t covers = 0;
  pthread_mutex_lock(&cs->lock); /* the old queue's last, before the switch */
  cs->switch_event = kiln__ocl_covering_locked(cs, &covers);
  pthread_mutex_unlock(&cs->lock);
  kiln__cl.clFlush(cs->queue);
  cs->queue_prof = q;
  atomic_store(&cs->use_prof, 1);
}

cl_command_queue kiln__ocl_queue_create(kiln__stream *s, cl_command_queue_properties props,
                                        cl_int *err, int *applied) {
  const kiln__ocl_device *dd = s->h.ctx->device->native;
  if (s->priority && dd->create_queue_props) {
    cl_properties level = s->priority > 0 ? 1u << 0  /* CL_QUEUE_PRIORITY_HIGH_KHR */
                                          : 1u << 2; /* CL_QUEUE_PRIORITY_LOW_KHR */
    cl_properties list[] = {CL_QUEUE_PROPERTIES, props, 0x1096 /* CL_QUEUE_PRIORITY_KHR */, level,
                            0};
    cl_command_queue q = dd->create_queue_props(s->h.ctx->native, dd->id, list, err);
    if (q) {
      if (applied)
        *applied = s->priority > 0 ? 1 : -1;
      return q;
    }
  }
  return kiln__cl.clCreateCommandQueue(s->h.ctx->native, dd->id, props, err);
}

kiln_status kiln__ocl_stream_create(kiln__stream *s) {
  kiln__ocl_stream *cs = kiln__calloc(1, sizeof *cs);
  if (!cs)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating a stream");
  cl_int err = CL_SUCCESS;
  cs->profiled = kiln__ocl_profiling == 1;
  cs->queue = kiln__ocl_queue_create(s, cs->profiled ? CL_QUEUE_PROFILING_ENABLE : 0, &err,
                                     &s->priority_applied);
  if (!cs->queue) {
    kiln__free(cs, sizeof *cs);
    return kiln__cl_fail(err, "clCreateCommandQueue");
  }
  kiln__cl_count(KILN__CLO_QUEUE, 1);
  pthread_mutex_init(&cs->lock, NULL);
  pthread_mutex_init(&cs->anchor_lock, NULL);
  s->native = cs;
  return KILN_SUCCESS;
}

void kiln__ocl_stream_destroy(kiln__stream *s) {
  kiln__ocl_stream *cs = s->native;
  kiln__cl.clFinish(cs->queue);
  if (cs->queue_prof)
    kiln__cl.clFinish(cs->queue_prof);
  /* Callbacks may still be on their way after clFinish: they touch cs. */
  for (unsigned i = 0; atomic_load(&cs->callbacks) > 0; i++)
    if (i < 64)
      kiln__cpu_relax();
    else
      kiln__sleep_ns(20000);
  kiln__ocl_release_event(cs->marker);
  kiln__ocl_release_event(cs->switch_event);
  kiln__ocl_device_time_destroy(cs);
  kiln__cl.clReleaseCommandQueue(cs->queue);
  kiln__cl_count(KILN__CLO_QUEUE, -1);
  if (cs->queue_prof) {
    kiln__cl.clReleaseCommandQueue(cs->queue_prof);
    kiln__cl_count(KILN__CLO_QUEUE, -1);
  }
  pthread_mutex_destroy(&cs->lock);
  kiln__free(cs, sizeof *cs);
  s->native = NULL;
}
