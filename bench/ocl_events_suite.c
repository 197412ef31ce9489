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
#include "baseline_opencl.h"
#include "suite_common.h"
#include "suites.h"

/* The empty kernel over a range of 1 (the cases whose arg says so), and an event. */
static kiln_status events_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  s->range = kiln_range_1d(1);
  s->burst = BENCH_OCL_BACKTOBACK;
  int with_kernel = env->arg != NULL && *(const int *)env->arg == BENCH_OCL_KERNEL_EMPTY;
  kiln_status st = KILN_SUCCESS;
  if (with_kernel)
    st = kiln__suite_build(s, kiln__suite_empty_source, "ocl_events", "empty");
  if (st == KILN_SUCCESS)
    st = kiln_event_create(s->context, NULL, &s->event);
  return st;
}

static int events_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(kiln__suite_state), events_prepare, state);
}

static int raw_setup(const kiln_bench_env *env, void **state) {
  bench_ocl_args args = {0};
  args.kernel = env->arg != NULL ? *(const int *)env->arg : BENCH_OCL_KERNEL_NONE;
  return kiln__suite_ocl_raw_setup(env, &args, state);
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
        KILN__SUITE_SIDE(events_setup, kiln__suite_launch_wait),
        KILN__SUITE_RAW_OPENCL(raw_setup, bench_baseline_ocl_kernel_roundtrip),
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
        KILN__SUITE_SIDE(events_setup, kiln__suite_launch_burst),
        KILN__SUITE_RAW_OPENCL(raw_setup, bench_baseline_ocl_launch_backtoback),
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
        KILN__SUITE_SIDE(events_setup, kiln__suite_event_record_query),
        KILN__SUITE_RAW_OPENCL(raw_setup, bench_baseline_ocl_marker_poll),
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
