/* SPDX-License-Identifier: MIT */
/* Receive gates on CUDA (docs/mpi.md): as on OpenCL (ocl_gate.c), an async receive
 * queues at the call, per chunk, a gate and then kiln's write of the chunk's staging
 * slot, so the buffer is in flight (hazard rules) from the call. The gate is a host
 * function in stream order (cuLaunchHostFunc) that returns once the progress thread
 * says the chunk's data is in its slot. libcuda is the one kiln loaded
 * (KILN_CUDA_LIBRARY or libcuda.so.1, dlopen'ed, never linked: design.md); the stream
 * comes from kiln's public interop API. A gate's record belongs to its host function,
 * which frees it, so nothing it touches can be freed under it. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "mpi/mpi_internal.h"

typedef int (*cu_launch_host_func_fn)(void *stream, void (*fn)(void *), void *user);

struct kmpi_cu {
  void *lib;
  cu_launch_host_func_fn launch_host_func;
  pthread_mutex_t lock; /* every gate's `open` */
  pthread_cond_t cond;
};

typedef struct cu_gate {
  kmpi_cu *cu;
  int open; /* under cu->lock */
} cu_gate;

kiln_status kmpi__cu_open(kiln_mpi m) {
  const char *path = getenv("KILN_CUDA_LIBRARY");
  const char *name = path && path[0] == '/' ? path : "libcuda.so.1";
  kmpi_cu *cu = calloc(1, sizeof *cu);
  if (!cu)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  cu->lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (cu->lib) /* ISO C forbids converting dlsym's object pointer to a function pointer */
    *(void **)&cu->launch_host_func = dlsym(cu->lib, "cuLaunchHostFunc");
  if (!cu->lib || !cu->launch_host_func) {
    kiln_status st = kiln_error_report_native(
        KILN_ERROR_BACKEND_UNAVAILABLE, "kiln_mpi_init", 0, NULL, NULL,
        "rank %d: cannot load cuLaunchHostFunc from %s for the receive gates: %s", m->rank, name,
        cu->lib ? "no such symbol" : dlerror());
    if (cu->lib)
      dlclose(cu->lib);
    free(cu);
    return st;
  }
  pthread_mutex_init(&cu->lock, NULL);
  pthread_cond_init(&cu->cond, NULL);
  m->cu = cu;
  return KILN_SUCCESS;
}

void kmpi__cu_close(kiln_mpi m) {
  if (!m->cu)
    return;
  pthread_cond_destroy(&m->cu->cond);
  pthread_mutex_destroy(&m->cu->lock);
  dlclose(m->cu->lib);
  free(m->cu);
  m->cu = NULL;
}

/* On CUDA's host-function thread: wait until the chunk is in, then free the record. */
static void gate_host_fn(void *user) {
  cu_gate *g = user;
  kmpi_cu *cu = g->cu;
  pthread_mutex_lock(&cu->lock);
  while (!g->open)
    pthread_cond_wait(&cu->cond, &cu->lock);
  pthread_mutex_unlock(&cu->lock);
  free(g);
}

kiln_status kmpi__cu_gate_chunk(kmpi_xfer *x, size_t i, size_t offset, size_t len) {
  kmpi_cu *cu = x->m->cu;
  kmpi_slot *s = &x->slots[i];
  if (!len)
    return KILN_SUCCESS; /* nothing to write, nothing to hold */
  void *stream = NULL;
  kiln_status st = kiln_stream_get_native(x->stream, KILN_NATIVE_CU_STREAM, &stream);
  if (st != KILN_SUCCESS)
    return st;
  cu_gate *g = calloc(1, sizeof *g);
  if (!g)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  g->cu = cu;
  int rc = cu->launch_host_func(stream, gate_host_fn, g);
  if (rc != 0) {
    free(g);
    return kiln_error_report_native(
        KILN_ERROR_BACKEND, "kiln_mpi_recv_async", rc, "cuLaunchHostFunc", NULL,
        "rank %d: cuLaunchHostFunc failed (CUresult %d)", x->m->rank, rc);
  }
  s->gate = g;
  st = kiln_buffer_write_async(x->stream, x->buf, offset, len, s->host, &s->tok);
  if (st != KILN_SUCCESS)
    kmpi__cu_gate_open(x, s);
  return st;
}

void kmpi__cu_gate_open(kmpi_xfer *x, kmpi_slot *s) {
  if (!s->gate)
    return;
  kmpi_cu *cu = x->m->cu;
  cu_gate *g = s->gate;
  s->gate = NULL;
  pthread_mutex_lock(&cu->lock);
  g->open = 1; /* g is the host function's from here on */
  pthread_cond_broadcast(&cu->cond);
  pthread_mutex_unlock(&cu->lock);
}
