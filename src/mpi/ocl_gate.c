/* SPDX-License-Identifier: MIT */
/* Receive gates on OpenCL (docs/mpi.md): an async receive queues, at the call, per
 * chunk a marker that waits for an OpenCL user event and then kiln's write of the
 * chunk's staging slot into the buffer, so the buffer is in flight (hazard rules) from
 * the call; the progress thread completes chunk i's user event once its data is in the
 * slot. The OpenCL entry points come from the ICD loader kiln itself loaded
 * (KILN_OPENCL_LIBRARY or libOpenCL.so.1, dlopen'ed, never linked: design.md), through
 * the native handles of kiln's public interop API. Called with the kiln_mpi's lock not
 * held; a gate's events are touched by one thread at a time (the caller's at the call,
 * then the progress thread's). */
#define _POSIX_C_SOURCE 200809L
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "mpi/mpi_internal.h"

typedef struct cl_fns {
  cl_event (*create_user_event)(cl_context, cl_int *);
  cl_int (*set_user_event_status)(cl_event, cl_int);
  cl_int (*enqueue_marker)(cl_command_queue, cl_uint, const cl_event *, cl_event *);
  cl_int (*release_event)(cl_event);
  cl_int (*flush)(cl_command_queue);
} cl_fns;

struct kmpi_cl {
  void *lib;
  cl_fns fn;
  cl_context context;
};

kiln_status kmpi__cl_open(kiln_mpi m) {
  const char *path = getenv("KILN_OPENCL_LIBRARY");
  const char *name = path && path[0] == '/' ? path : "libOpenCL.so.1";
  kmpi_cl *cl = calloc(1, sizeof *cl);
  if (!cl)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  cl->lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!cl->lib) {
    free(cl);
    return kiln_error_report_native(KILN_ERROR_BACKEND_UNAVAILABLE, "kiln_mpi_init", 0, NULL, NULL,
                                    "rank %d: cannot load %s for the receive gates: %s", m->rank,
                                    name, dlerror());
  }
  /* ISO C forbids converting dlsym's object pointer to a function pointer */
  *(void **)&cl->fn.create_user_event = dlsym(cl->lib, "clCreateUserEvent");
  *(void **)&cl->fn.set_user_event_status = dlsym(cl->lib, "clSetUserEventStatus");
  *(void **)&cl->fn.enqueue_marker = dlsym(cl->lib, "clEnqueueMarkerWithWaitList");
  *(void **)&cl->fn.release_event = dlsym(cl->lib, "clReleaseEvent");
  *(void **)&cl->fn.flush = dlsym(cl->lib, "clFlush");
  kiln_status st = KILN_SUCCESS;
  if (!cl->fn.create_user_event || !cl->fn.set_user_event_status || !cl->fn.enqueue_marker ||
      !cl->fn.release_event || !cl->fn.flush)
    st = kiln_error_report_native(
        KILN_ERROR_BACKEND_UNAVAILABLE, "kiln_mpi_init", 0, NULL, NULL,
        "rank %d: %s lacks an OpenCL 1.2 entry point the receive gates need", m->rank, name);
  if (st == KILN_SUCCESS)
    st = kiln_context_get_native(m->ctx, KILN_NATIVE_CL_CONTEXT, &cl->context);
  if (st != KILN_SUCCESS) {
    dlclose(cl->lib);
    free(cl);
    return st;
  }
  m->cl = cl;
  return KILN_SUCCESS;
}

void kmpi__cl_close(kiln_mpi m) {
  if (!m->cl)
    return;
  dlclose(m->cl->lib);
  free(m->cl);
  m->cl = NULL;
}

/* Queue chunk i's gate and write on x's stream. */
kiln_status kmpi__cl_gate_chunk(kmpi_xfer *x, size_t i, size_t offset, size_t len) {
  kmpi_cl *cl = x->m->cl;
  kmpi_slot *s = &x->slots[i];
  cl_command_queue q = NULL;
  kiln_status st = kiln_stream_get_native(x->stream, KILN_NATIVE_CL_COMMAND_QUEUE, &q);
  if (st != KILN_SUCCESS)
    return st;
  cl_int err = CL_SUCCESS;
  cl_event ev = cl->fn.create_user_event(cl->context, &err);
  if (!ev || err != CL_SUCCESS)
    return kiln_error_report_native(KILN_ERROR_BACKEND, "kiln_mpi_recv_async", err,
                                    "clCreateUserEvent", NULL,
                                    "rank %d: clCreateUserEvent failed (%d)", x->m->rank, (int)err);
  err = cl->fn.enqueue_marker(q, 1, &ev, NULL);
  if (err != CL_SUCCESS) {
    cl->fn.set_user_event_status(ev, CL_COMPLETE);
    cl->fn.release_event(ev);
    return kiln_error_report_native(
        KILN_ERROR_BACKEND, "kiln_mpi_recv_async", err, "clEnqueueMarkerWithWaitList", NULL,
        "rank %d: clEnqueueMarkerWithWaitList failed (%d)", x->m->rank, (int)err);
  }
  s->gate = ev;
  s->queue = q;
  if (len) {
    st = kiln_buffer_write_async(x->stream, x->buf, offset, len, s->host, &s->tok);
    if (st != KILN_SUCCESS) {
      kmpi__cl_gate_open(x, s);
      return st;
    }
  }
  return KILN_SUCCESS;
}

/* Let the stream past chunk s's marker (its data is in the slot, or the transfer failed). */
void kmpi__cl_gate_open(kmpi_xfer *x, kmpi_slot *s) {
  if (!s->gate)
    return;
  kmpi_cl *cl = x->m->cl;
  cl->fn.set_user_event_status((cl_event)s->gate, CL_COMPLETE);
  cl->fn.release_event((cl_event)s->gate);
  cl->fn.flush((cl_command_queue)s->queue);
  s->gate = NULL;
}
