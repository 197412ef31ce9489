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

#include "baseline_opencl.h"
#include "suite_common.h"
#include "suites.h"

#define ITEMS ((size_t)16 << 20)

/* Inputs written, one launch checked against the host's sum. */
static kiln_status vecadd_check(kiln__suite_state *s) {
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
    st = kiln__suite_launch_wait(s, 1);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_read(s->c, 0, bytes, h);
  for (size_t i = 0; i < ITEMS && st == KILN_SUCCESS; i++)
    if (h[i] != (float)(i & 1023u) + 0.5f * (float)(i % 7u))
      st = KILN_ERROR_BACKEND;
  free(h);
  return st;
}

static kiln_status vecadd_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  (void)env;
  kiln_status st = kiln__suite_build(s, kiln__suite_vecadd_source, "ocl_vecadd", "vecadd");
  if (st == KILN_SUCCESS)
    st = kiln__suite_vecadd(s, ITEMS);
  if (st == KILN_SUCCESS)
    st = vecadd_check(s);
  return st;
}

static int vecadd_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(kiln__suite_state), vecadd_prepare, state);
}

static int raw_setup(const kiln_bench_env *env, void **state) {
  bench_ocl_args args = {0};
  args.items = ITEMS;
  args.kernel = BENCH_OCL_KERNEL_VECADD;
  args.profiling = kiln_bench_env_num(env, "device_timing", 0) != 0;
  return kiln__suite_ocl_raw_setup(env, &args, state);
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
        KILN__SUITE_SIDE(vecadd_setup, kiln__suite_launch_wait),
        KILN__SUITE_RAW_OPENCL(raw_setup, bench_baseline_ocl_vecadd),
    },
    {
        .name = "vecadd_16M_device",
        .description = "the same launches timed on the device (marker END to marker END)",
        .params = p_device,
        .param_count = 2,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        KILN__SUITE_SIDE(vecadd_setup, kiln__suite_launch_wait),
        KILN__SUITE_RAW_OPENCL(raw_setup, bench_baseline_ocl_vecadd),
        .run_timed = kiln__suite_launch_timed,
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
