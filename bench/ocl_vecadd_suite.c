/* SPDX-License-Identifier: MIT */
/* Suite `ocl_vecadd`: c = a + b over 16M floats, one launch and its wait per op —
 * kiln (a dialect program, kiln_launch_async + kiln_wait, default local size) against
 * raw OpenCL (the same kernel in OpenCL C, clEnqueueNDRangeKernel with the local size
 * kiln picks given explicitly, clWaitForEvents) on the same device. vecadd_16M
 * (design.md's name) is host-timed: launch + wait as a program sees it.
 * vecadd_16M_device times the same launches on the device: each bracketed by two
 * markers, END to END (kiln: timing events and kiln_event_elapsed_ns; raw: markers and
 * CL_PROFILING_COMMAND_END), so both sides use one clock and one method. Both sides
 * check one launch's result at set-up. */
#include <stdlib.h>

#include "ocl_common.h"
#include "suites.h"

#define ITEMS ((size_t)16 << 20)

static const char vecadd_source[] =
    "KILN_KERNEL void vecadd(KILN_GLOBAL const float *a, KILN_GLOBAL const float *b,\n"
    "                        KILN_GLOBAL float *c, int n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < (size_t)n) c[i] = a[i] + b[i];\n"
    "}\n";

typedef struct vecadd_state {
  kiln_context context;
  kiln_stream stream;
  kiln_program program;
  kiln_kernel kernel;
  kiln_buffer a, b, c;
  kiln_event start, end; /* timing events */
  int n;
  kiln_arg args[4];
  kiln_range range;
} vecadd_state;

static void vecadd_teardown(void *p) {
  vecadd_state *s = p;
  if (s == NULL)
    return;
  kiln_event_destroy(s->end);
  kiln_event_destroy(s->start);
  kiln_buffer_destroy(s->c);
  kiln_buffer_destroy(s->b);
  kiln_buffer_destroy(s->a);
  kiln_kernel_destroy(s->kernel);
  kiln_program_destroy(s->program);
  kiln_stream_destroy(s->stream);
  kiln_context_destroy(s->context);
  free(s);
}

static int vecadd(void *p, uint64_t iters) {
  vecadd_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_pending token = KILN_PENDING_INIT;
    kiln_status st = kiln_launch_async(s->stream, s->kernel, &s->range, s->args, 4, &token);
    if (st != KILN_SUCCESS)
      return st;
    if ((st = kiln_wait(&token)) != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* Inputs written, one launch checked against the host's sum. */
static kiln_status vecadd_prepare(vecadd_state *s) {
  const size_t bytes = ITEMS * sizeof(float);
  float *h = malloc(bytes);
  if (h == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; i < ITEMS; i++)
    h[i] = (float)(i & 1023u);
  kiln_status st = kiln_buffer_write(s->a, 0, bytes, h);
  for (size_t i = 0; i < ITEMS; i++)
    h[i] = 0.5f * (float)(i % 7u);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_write(s->b, 0, bytes, h);
  if (st == KILN_SUCCESS)
    st = vecadd(s, 1);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_read(s->c, 0, bytes, h);
  for (size_t i = 0; i < ITEMS && st == KILN_SUCCESS; i++)
    if (h[i] != (float)(i & 1023u) + 0.5f * (float)(i % 7u))
      st = KILN_ERROR_BACKEND;
  free(h);
  return st;
}

static int vecadd_setup(const kiln_bench_env *env, void **state) {
  *state = NULL;
  vecadd_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = vecadd_source;
  pd.name = "ocl_vecadd";
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = ITEMS * sizeof(float);
  kiln_event_desc ed = KILN_EVENT_DESC_INIT;
  ed.flags = KILN_EVENT_TIMING;
  kiln_status st = kiln__bench_ocl_open(env, &s->context, &s->stream);
  if (st == KILN_SUCCESS)
    st = kiln_program_create(s->context, &pd, &s->program);
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create(s->program, "vecadd", &s->kernel);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(s->context, &bd, &s->a);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(s->context, &bd, &s->b);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(s->context, &bd, &s->c);
  if (st == KILN_SUCCESS)
    st = kiln_event_create(s->context, &ed, &s->start);
  if (st == KILN_SUCCESS)
    st = kiln_event_create(s->context, &ed, &s->end);
  s->n = (int)ITEMS;
  s->range = kiln_range_1d(ITEMS); /* local 0: kiln picks it */
  s->args[0] = kiln_arg_buffer(s->a);
  s->args[1] = kiln_arg_buffer(s->b);
  s->args[2] = kiln_arg_buffer(s->c);
  s->args[3] = kiln_arg_scalar(&s->n, sizeof s->n);
  if (st == KILN_SUCCESS)
    st = vecadd_prepare(s);
  if (st != KILN_SUCCESS) {
    vecadd_teardown(s);
    return st;
  }
  *state = s;
  return KILN_SUCCESS;
}

/* Each launch between two timing events; the device time is the sum of the gaps. */
static int vecadd_timed(void *p, uint64_t iters, uint64_t *device_ns) {
  vecadd_state *s = p;
  uint64_t total = 0;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_pending token = KILN_PENDING_INIT;
    uint64_t ns = 0;
    kiln_status st = kiln_event_record(s->start, s->stream);
    if (st != KILN_SUCCESS)
      return st;
    st = kiln_launch_async(s->stream, s->kernel, &s->range, s->args, 4, &token);
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

static int raw_setup(const kiln_bench_env *env, void **state) {
  bench_ocl_args args = {0};
  args.items = ITEMS;
  args.kernel = BENCH_OCL_KERNEL_VECADD;
  args.profiling = kiln_bench_env_num(env, "device_timing", 0) != 0;
  return kiln__bench_ocl_raw_setup(env, &args, state);
}

static const kiln_bench_param p_host[] = {{"items", NULL, (int64_t)ITEMS}};
static const kiln_bench_param p_device[] = {{"device_timing", NULL, 1},
                                            {"items", NULL, (int64_t)ITEMS}};

static const kiln_bench_case cases[] = {
    {
        .name = "vecadd_16M",
        .description = "c = a + b over 16M floats: one launch + its wait, host time per launch",
        .params = p_host,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 1.0 / 1.05,
        .goal = "launch + wait <= 1.05x raw OpenCL's time",
        .setup = vecadd_setup,
        .run = vecadd,
        .teardown = vecadd_teardown,
        .baseline_name = "raw-opencl",
        .baseline_setup_env = raw_setup,
        .baseline_run = bench_baseline_ocl_vecadd,
        .baseline_teardown = bench_baseline_ocl_teardown,
    },
    {
        .name = "vecadd_16M_device",
        .description = "the same launches timed on the device (marker END to marker END)",
        .params = p_device,
        .param_count = 2,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .setup = vecadd_setup,
        .run = vecadd,
        .teardown = vecadd_teardown,
        .baseline_name = "raw-opencl",
        .baseline_setup_env = raw_setup,
        .baseline_run = bench_baseline_ocl_vecadd,
        .baseline_teardown = bench_baseline_ocl_teardown,
        .run_timed = vecadd_timed,
        .baseline_run_timed = bench_baseline_ocl_vecadd_timed,
    },
};

const kiln_bench_suite kiln__bench_suite_ocl_vecadd = {
    .name = "ocl_vecadd",
    .description = "OpenCL vecadd over 16M floats, launch + wait, vs raw OpenCL",
    .backend = KILN_BACKEND_OPENCL,
    .host_only = 0,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};
