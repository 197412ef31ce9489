/* SPDX-License-Identifier: MIT */
/* op_notify: an op that a callback, a descriptor or a future watches must complete
 * without a waiter, but most commands get neither an event nor a completion callback
 * (submit.c, knobs 1 and 2). Set one on the op's own event, or on an event covering it
 * (the stream's tail, or a marker made once; stream.c), exactly as knob 2 does: the
 * callback finishes the op and everything before it, then drains. Any thread. */
#include "backends/opencl/opencl_internal.h"

void kiln__ocl_op_notify(kiln__stream *s, kiln__op *op) {
  kiln__ocl_stream *cs = s->native;
  cl_event ev = NULL;
  uint64_t covers = 0;
  pthread_mutex_lock(&cs->lock);
  if (!op) /* every op queued so far: the tail's completion covers them */
    op = cs->pend_tail;
  if (op && atomic_load(&op->native_done) == KILN__OCL_PENDING) {
    if (op->native) { /* its own event: held by the op until it is drained */
      ev = op->native;
      kiln__cl.clRetainEvent(ev);
      kiln__cl_count(KILN__CLO_EVENT, 1);
    } else {
      ev = kiln__ocl_covering_locked(cs, &covers); /* NULL if none could be made: a waiter */
    }
    /* The callback's reference on the op (kiln__ocl_on_complete drops it), taken while
     * the pending list holds it. */
    if (ev)
      kiln__op_ref(op);
  }
  pthread_mutex_unlock(&cs->lock);
  if (!ev) { /* finished already: complete what is finished */
    kiln__ocl_drain(s);
    return;
  }
  kiln__ocl_flush(cs);                 /* else the callback could wait on an unflushed queue */
  atomic_fetch_add(&cs->callbacks, 1); /* the stream's destroy waits for it */
  cl_int err = kiln__cl.clSetEventCallback(ev, CL_COMPLETE, kiln__ocl_on_complete, op);
  if (err != CL_SUCCESS) { /* no callback: wait here instead, then finish it */
    cl_int exec = kiln__cl.clWaitForEvents(1, &ev) == CL_SUCCESS ? CL_COMPLETE : err;
    kiln__ocl_on_complete(ev, exec, op);
  }
  kiln__ocl_release_event(ev);
}
