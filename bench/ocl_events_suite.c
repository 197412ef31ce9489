/* SPDX-License-Identifier: MIT */
/* Suite `ocl_events`: kiln's per-launch and per-event costs on OpenCL against raw
 * OpenCL on the same device (result names fixed by design.md). The kernel is empty
 * (a dialect program; raw: the same in OpenCL C) over a range of 1 with kiln's default
 * local size (raw: the same local and rounded global, explicitly).
 * kernel_roundtrip: launch + wait (raw: enqueue with an event, clWaitForEvents).
 * launch_backtoback_1000: 1000 launches, tokens released, one stream synchronize (raw:
 * 1000 enqueues without events, clFinish); per launch. event_record_query: record an
 * event on an idle stream, query until complete (raw: marker + clFlush, clGetEventInfo
 * polled). Host timing. */
#include <stdlib.h>

#include "ocl_common.h"
#include "suites.h"

static const char empty_source[] = "KILN_KERNEL void empty(void) {}\n";

typedef struct events_state {
  kiln_context context;
  kiln_stream stream;
  kiln_program program;
  kiln_kernel kernel;
  kiln_event event;
  kiln_range range;
} events_state;

static void events_teardown(void *p) {
  events_state *s = p;
  if (s == NULL)
    return;
  kiln_event_destroy(s->event);
  kiln_kernel_destroy(s->kernel);
  kiln_program_destroy(s->program);
  kiln_stream_destroy(s->stream);
  kiln_context_destroy(s->context);
  free(s);
}

static int events_setup(const kiln_bench_env *env, void **state) {
  *state = NULL;
  events_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = empty_source;
  pd.name = "ocl_events";
  s->range = kiln_range_1d(1);
  int with_kernel = env->arg != NULL && *(const int *)env->arg == BENCH_OCL_KERNEL_EMPTY;
  kiln_status st = kiln__bench_ocl_open(env, &s->context, &s->stream);
  if (st == KILN_SUCCESS && with_kernel)
    st = kiln_program_create(s->context, &pd, &s->program);
  if (st == KILN_SUCCESS && with_kernel)
    st = kiln_kernel_create(s->program, "empty", &s->kernel);
  if (st == KILN_SUCCESS)
    st = kiln_event_create(s->context, NULL, &s->event);
  if (st != KILN_SUCCESS) {
    events_teardown(s);
    return st;
  }
  *state = s;
  return KILN_SUCCESS;
}

static int kernel_roundtrip(void *p, uint64_t iters) {
  events_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_pending token = KILN_PENDING_INIT;
    kiln_status st = kiln_launch_async(s->stream, s->kernel, &s->range, NULL, 0, &token);
    if (st != KILN_SUCCESS)
      return st;
    if ((st = kiln_wait(&token)) != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static int launch_backtoback(void *p, uint64_t iters) {
  events_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    for (unsigned k = 0; k < BENCH_OCL_BACKTOBACK; k++) {
      kiln_pending token = KILN_PENDING_INIT;
      kiln_status st = kiln_launch_async(s->stream, s->kernel, &s->range, NULL, 0, &token);
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

static int event_record_query(void *p, uint64_t iters) {
  events_state *s = p;
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

static int raw_setup(const kiln_bench_env *env, void **state) {
  bench_ocl_args args = {0};
  args.kernel = env->arg != NULL ? *(const int *)env->arg : BENCH_OCL_KERNEL_NONE;
  return kiln__bench_ocl_raw_setup(env, &args, state);
}

static int kernel_empty = BENCH_OCL_KERNEL_EMPTY;
static int kernel_none = BENCH_OCL_KERNEL_NONE;

static const kiln_bench_param p_one[] = {{"ops", NULL, 1}};
static const kiln_bench_param p_backtoback[] = {{"ops", NULL, BENCH_OCL_BACKTOBACK}};

static const kiln_bench_case cases[] = {
    {
        .name = "kernel_roundtrip",
        .description = "launch an empty kernel and wait for it",
        .params = p_one,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 1.0 / 1.05,
        .goal = "round trip <= 1.05x raw OpenCL's",
        .arg = &kernel_empty,
        .setup = events_setup,
        .run = kernel_roundtrip,
        .teardown = events_teardown,
        .baseline_name = "raw-opencl",
        .baseline_setup_env = raw_setup,
        .baseline_run = bench_baseline_ocl_kernel_roundtrip,
        .baseline_teardown = bench_baseline_ocl_teardown,
    },
    {
        .name = "launch_backtoback_1000",
        .description = "1000 empty-kernel launches, then one wait; per launch",
        .params = p_backtoback,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = BENCH_OCL_BACKTOBACK,
        .goal_ratio = 1.0 / 1.05,
        .goal = "per launch <= 1.05x raw OpenCL's",
        .arg = &kernel_empty,
        .setup = events_setup,
        .run = launch_backtoback,
        .teardown = events_teardown,
        .baseline_name = "raw-opencl",
        .baseline_setup_env = raw_setup,
        .baseline_run = bench_baseline_ocl_launch_backtoback,
        .baseline_teardown = bench_baseline_ocl_teardown,
    },
    {
        .name = "event_record_query",
        .description = "record an event on an idle stream, query it until complete",
        .params = p_one,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 1.0 / 1.05,
        .goal = "record + query <= 1.05x raw OpenCL's marker + polling",
        .arg = &kernel_none,
        .setup = events_setup,
        .run = event_record_query,
        .teardown = events_teardown,
        .baseline_name = "raw-opencl",
        .baseline_setup_env = raw_setup,
        .baseline_run = bench_baseline_ocl_marker_poll,
        .baseline_teardown = bench_baseline_ocl_teardown,
    },
};

const kiln_bench_suite kiln__bench_suite_ocl_events = {
    .name = "ocl_events",
    .description = "OpenCL launch round trips, back-to-back launches, events vs raw OpenCL",
    .backend = KILN_BACKEND_OPENCL,
    .host_only = 0,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};
