/* SPDX-License-Identifier: MIT */
/* The suites' shared skeleton (suite_common.h). Invariant: a state's handles are NULL
 * until created, so kiln__suite_teardown can run after any failed step. Called only by
 * the suites' set-ups, runs and teardowns, one state per thread. */
#define _POSIX_C_SOURCE 200809L
#include "suite_common.h"

#include <stdlib.h>
#include <string.h>

#include "baseline_opencl.h"

const char kiln__suite_vecadd_source[] =
    "KILN_KERNEL void vecadd(KILN_GLOBAL const float *a, KILN_GLOBAL const float *b,\n"
    "                        KILN_GLOBAL float *c, int n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < (size_t)n) c[i] = a[i] + b[i];\n"
    "}\n";
const char kiln__suite_empty_source[] = "KILN_KERNEL void empty(void) {}\n";

int kiln__suite_setup(const kiln_bench_env *env, size_t size, kiln__suite_prepare_fn prepare,
                      void **state) {
  *state = NULL;
  kiln__suite_state *s = calloc(1, size);
  if (s == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  kiln_status st = kiln_context_create(env->device, NULL, &s->context);
  if (st == KILN_SUCCESS)
    st = kiln_stream_create(s->context, NULL, &s->stream);
  if (st == KILN_SUCCESS && prepare != NULL)
    st = prepare(s, env);
  if (st != KILN_SUCCESS) {
    kiln__suite_teardown(s);
    return st;
  }
  *state = s;
  return KILN_SUCCESS;
}

void kiln__suite_teardown(void *state) {
  kiln__suite_state *s = state;
  if (s == NULL)
    return;
  kiln_event_destroy(s->end);
  kiln_event_destroy(s->start);
  kiln_event_destroy(s->event);
  kiln_buffer_destroy(s->c);
  kiln_buffer_destroy(s->b);
  kiln_buffer_destroy(s->a);
  kiln_kernel_destroy(s->kernel);
  kiln_program_destroy(s->program);
  kiln_stream_destroy(s->stream);
  if (s->pinned)
    kiln_host_free(s->context, s->host);
  else
    free(s->host);
  kiln_context_destroy(s->context);
  free(s);
}

/* ---- building blocks ---- */

kiln_status kiln__suite_build(kiln__suite_state *s, const char *source, const char *name,
                              const char *kernel) {
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = name;
  kiln_status st = kiln_program_create(s->context, &pd, &s->program);
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create(s->program, kernel, &s->kernel);
  return st;
}

static void native_vecadd(const kiln_native_range *range, void *const *args, void *user) {
  (void)user;
  const float *a = args[0], *b = args[1];
  float *c = args[2];
  for (size_t i = range->begin[0]; i < range->end[0]; i++)
    c[i] = a[i] + b[i];
}

kiln_status kiln__suite_vecadd_kernel(kiln__suite_state *s, const char *program_name) {
  kiln_device dev = NULL;
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  kiln_status st = kiln_context_get_device(s->context, &dev);
  if (st == KILN_SUCCESS)
    st = kiln_device_get_props(dev, &p);
  if (st != KILN_SUCCESS)
    return st;
  if (p.backend != KILN_BACKEND_CPU && p.backend != KILN_BACKEND_MOCK)
    return kiln__suite_build(s, kiln__suite_vecadd_source, program_name, "vecadd");
  static const kiln_param params[] = {{KILN_PARAM_BUFFER_READ, 0},
                                      {KILN_PARAM_BUFFER_READ, 0},
                                      {KILN_PARAM_BUFFER_WRITE, 0},
                                      {KILN_PARAM_SCALAR, sizeof(int)}};
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  kd.name = "vecadd";
  kd.fn = native_vecadd;
  kd.params = params;
  kd.param_count = 4;
  return kiln_kernel_create_native(s->context, &kd, &s->kernel);
}

kiln_status kiln__suite_vecadd(kiln__suite_state *s, size_t items) {
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = items * sizeof(float);
  kiln_event_desc ed = KILN_EVENT_DESC_INIT;
  ed.flags = KILN_EVENT_TIMING;
  kiln_status st = kiln_buffer_create(s->context, &bd, &s->a);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(s->context, &bd, &s->b);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(s->context, &bd, &s->c);
  if (st == KILN_SUCCESS)
    st = kiln_event_create(s->context, &ed, &s->start);
  if (st == KILN_SUCCESS)
    st = kiln_event_create(s->context, &ed, &s->end);
  s->items = items;
  s->n = (int)items;
  s->range = kiln_range_1d(items); /* local 0: kiln picks it */
  s->args[0] = kiln_arg_buffer(s->a);
  s->args[1] = kiln_arg_buffer(s->b);
  s->args[2] = kiln_arg_buffer(s->c);
  s->args[3] = kiln_arg_scalar(&s->n, sizeof s->n);
  s->arg_count = 4;
  return st;
}

int kiln__suite_pinned(const kiln_bench_env *env) {
  return strcmp(kiln_bench_env_str(env, "memory", "pageable"), "pinned") == 0;
}

kiln_status kiln__suite_transfer(kiln__suite_state *s, const kiln_bench_env *env,
                                 const char *label) {
  s->bytes = (size_t)kiln_bench_env_num(env, "bytes", 0);
  if (s->bytes == 0)
    return KILN_ERROR_INVALID_ARGUMENT;
  if (kiln__suite_pinned(env)) {
    kiln_status st = kiln_host_alloc(s->context, s->bytes, &s->host);
    if (st != KILN_SUCCESS) {
      s->host = NULL;
      return st;
    }
    s->pinned = 1;
  } else if (posix_memalign(&s->host, 4096, s->bytes) != 0) {
    s->host = NULL;
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  }
  memset(s->host, 0x5a, s->bytes);
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = s->bytes;
  bd.label = label;
  kiln_status st = kiln_buffer_create(s->context, &bd, &s->a);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_write(s->a, 0, s->bytes, s->host);
  return st;
}

/* ---- run functions ---- */

int kiln__suite_launch_wait(void *state, uint64_t iters) {
  kiln__suite_state *s = state;
  const kiln_arg *args = s->arg_count ? s->args : NULL;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_pending token = KILN_PENDING_INIT;
    kiln_status st = kiln_launch_async(s->stream, s->kernel, &s->range, args, s->arg_count, &token);
    if (st != KILN_SUCCESS)
      return st;
    if ((st = kiln_wait(&token)) != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

int kiln__suite_launch_burst(void *state, uint64_t iters) {
  kiln__suite_state *s = state;
  const kiln_arg *args = s->arg_count ? s->args : NULL;
  for (uint64_t i = 0; i < iters; i++) {
    for (unsigned k = 0; k < s->burst; k++) {
      kiln_pending token = KILN_PENDING_INIT;
      kiln_status st =
          kiln_launch_async(s->stream, s->kernel, &s->range, args, s->arg_count, &token);
      if (st == KILN_SUCCESS)
        st = kiln_pending_release(&token); /* the synchronize covers it */
      if (st != KILN_SUCCESS) {
        kiln_stream_synchronize(s->stream);
        return st;
      }
    }
    kiln_status st = kiln_stream_synchronize(s->stream);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

int kiln__suite_event_record_query(void *state, uint64_t iters) {
  kiln__suite_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = kiln_event_record(s->event, s->stream);
    if (st != KILN_SUCCESS)
      return st;
    while ((st = kiln_event_query(s->event)) == KILN_NOT_READY) {
    }
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* Blocking transfers between the host block and buffer a, `iters` of them. */
static int blocking_transfers(kiln__suite_state *s, uint64_t iters, int write) {
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = write ? kiln_buffer_write(s->a, 0, s->bytes, s->host)
                           : kiln_buffer_read(s->a, 0, s->bytes, s->host);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

int kiln__suite_write(void *state, uint64_t iters) {
  return blocking_transfers(state, iters, 1);
}

int kiln__suite_read(void *state, uint64_t iters) {
  return blocking_transfers(state, iters, 0);
}

int kiln__suite_launch_timed(void *state, uint64_t iters, uint64_t *device_ns) {
  kiln__suite_state *s = state;
  uint64_t total = 0;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_pending token = KILN_PENDING_INIT;
    uint64_t ns = 0;
    kiln_status st = kiln_event_record(s->start, s->stream);
    if (st != KILN_SUCCESS)
      return st;
    st = kiln_launch_async(s->stream, s->kernel, &s->range, s->args, s->arg_count, &token);
    if (st != KILN_SUCCESS)
      return st;
    st = kiln_pending_release(&token); /* the end event's wait covers the launch */
    if (st == KILN_SUCCESS)
      st = kiln_event_record(s->end, s->stream);
    if (st == KILN_SUCCESS)
      st = kiln_event_synchronize(s->end);
    if (st == KILN_SUCCESS)
      st = kiln_event_elapsed_ns(s->start, s->end, &ns);
    if (st != KILN_SUCCESS)
      return st;
    total += ns;
  }
  *device_ns = total;
  return KILN_SUCCESS;
}

/* ---- the raw OpenCL baseline ---- */

int kiln__suite_ocl_raw_setup(const kiln_bench_env *env, struct bench_ocl_args *args,
                              void **state) {
  *state = NULL;
  /* a cl_device_id is an object pointer: stored here as a void * of the same width */
  kiln_status st = kiln_device_get_native(env->device, KILN_NATIVE_CL_DEVICE, &args->device);
  if (st != KILN_SUCCESS)
    return st;
  return bench_baseline_ocl_setup(args, state);
}
