/* SPDX-License-Identifier: MIT */
/* Suite `cuda`: kiln on the CUDA backend against the raw CUDA driver API
 * (bench/baseline_cuda.c) on the same device and in the same primary context, in one
 * process (result names fixed by design.md; docs/benchmarks.md says what one op is in
 * each case). Public kiln API only. Pinned cases: kiln copies from kiln_host_alloc
 * memory, the baseline from cuMemHostAlloc memory; pageable cases: both from
 * posix_memalign'ed memory (kiln stages it through pinned slots, the baseline hands it
 * to the driver as it is). Host timing except vecadd_256M_device (CUDA events on
 * both sides, through kiln's timing events on the kiln side). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_cuda.h"
#include "suite_common.h"
#include "suites.h"

#define KIB ((int64_t)1 << 10)
#define MIB ((int64_t)1 << 20)
#define VEC_ITEMS ((size_t)256 << 20) /* 256M floats: 1 GiB per vector (the axis' default) */
#define CHECK_ITEMS ((size_t)1 << 18) /* vecadd checks three chunks of c this long */

/* What a case's set-ups build (the cases' `arg`). */
enum {
  K_EMPTY,    /* the empty kernel (launch_*) */
  K_EVENT,    /* one untimed event */
  K_TRANSFER, /* a buffer and a host block of params bytes, memory = pinned|pageable */
  K_VECADD,   /* vecadd over VEC_ITEMS, inputs set, one launch checked */
  K_COMPILE,  /* nothing: each iteration compiles */
  K_PROGRAM   /* the vecadd program, built (kernel_create) */
};
static int k_empty = K_EMPTY, k_event = K_EVENT, k_transfer = K_TRANSFER, k_vecadd = K_VECADD,
           k_compile = K_COMPILE, k_program = K_PROGRAM;

typedef struct cuda_state {
  kiln__suite_state base;
  unsigned long seq; /* nvrtc_compile: a unique source per iteration */
  char source[512];
} cuda_state;

/* a = 1.5, b = 2.25 (kiln_buffer_fill), c cleared; one launch; three chunks of c read
 * back (start, middle, end) must be 3.75, as on the raw side. */
static kiln_status vecadd_check(kiln__suite_state *s) {
  const size_t bytes = s->items * sizeof(float);
  const size_t chunk = s->items < CHECK_ITEMS ? s->items : CHECK_ITEMS;
  const float fa = 1.5f, fb = 2.25f, fc = 0.0f;
  kiln_status st = kiln_buffer_fill(s->a, 0, bytes, &fa, sizeof fa);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_fill(s->b, 0, bytes, &fb, sizeof fb);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_fill(s->c, 0, bytes, &fc, sizeof fc);
  if (st == KILN_SUCCESS)
    st = kiln__suite_launch_wait(s, 1);
  if (st != KILN_SUCCESS)
    return st;
  float *h = malloc(chunk * sizeof(float));
  if (h == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  const size_t at[3] = {0, (s->items - chunk) / 2, s->items - chunk};
  for (int k = 0; k < 3 && st == KILN_SUCCESS; k++) {
    st = kiln_buffer_read(s->c, at[k] * sizeof(float), chunk * sizeof(float), h);
    for (size_t i = 0; i < chunk && st == KILN_SUCCESS; i++) {
      if (h[i] != 3.75f) {
        fprintf(stderr, "cuda suite: kiln's vecadd c[%zu] = %g, expected 3.75\n", at[k] + i,
                (double)h[i]);
        st = KILN_ERROR_BACKEND;
      }
    }
  }
  free(h);
  return st;
}

static kiln_status vecadd_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  int64_t items = kiln_bench_env_num(env, "items", (int64_t)VEC_ITEMS);
  if (items <= 0 || items > INT_MAX)
    return KILN_ERROR_INVALID_ARGUMENT;
  kiln_status st = kiln__suite_build(s, kiln__suite_vecadd_source, "cuda_suite", "vecadd");
  if (st == KILN_SUCCESS)
    st = kiln__suite_vecadd(s, (size_t)items);
  if (st == KILN_SUCCESS)
    st = vecadd_check(s);
  return st;
}

/* What the case's `arg` says to build (K_COMPILE: nothing, each iteration compiles). */
static kiln_status cuda_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  s->burst = BENCH_CUDA_BURST;
  switch (env->arg != NULL ? *(const int *)env->arg : K_COMPILE) {
  case K_EMPTY:
    s->range = kiln_range_1d(1); /* no local size: kiln picks the block */
    return kiln__suite_build(s, kiln__suite_empty_source, "cuda_suite", "empty");
  case K_EVENT:
    return kiln_event_create(s->context, NULL, &s->event);
  case K_TRANSFER:
    return kiln__suite_transfer(s, env, "cuda_suite");
  case K_VECADD:
    return vecadd_prepare(s, env);
  case K_PROGRAM:
    return kiln__suite_build(s, kiln__suite_vecadd_source, "cuda_suite", "vecadd");
  default:
    return KILN_SUCCESS;
  }
}

static int cuda_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(cuda_state), cuda_prepare, state);
}

/* ---- kiln sides that only this suite has ---- */

static kiln_status program_once(kiln__suite_state *s, const char *source) {
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = "cuda_suite";
  kiln_program program = NULL;
  kiln_status st = kiln_program_create(s->context, &pd, &program);
  if (st != KILN_SUCCESS)
    return st;
  return kiln_program_destroy(program);
}

/* A source no compile cache has seen: vecadd and a comment counting iterations. */
static int nvrtc_compile(void *p, uint64_t iters) {
  cuda_state *c = p;
  for (uint64_t i = 0; i < iters; i++) {
    snprintf(c->source, sizeof c->source, "%s// %lu\n", kiln__suite_vecadd_source, ++c->seq);
    kiln_status st = program_once(&c->base, c->source);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* The same source each time: what the compile cache serves (docs/cache.md). */
static int module_load(void *p, uint64_t iters) {
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = program_once(p, kiln__suite_vecadd_source);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static int kernel_create(void *p, uint64_t iters) {
  kiln__suite_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_kernel k = NULL;
    kiln_status st = kiln_kernel_create(s->program, "vecadd", &k);
    if (st != KILN_SUCCESS)
      return st;
    if ((st = kiln_kernel_destroy(k)) != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* ---- the raw side's set-up, from this run's parameters ---- */

static int raw_setup(const kiln_bench_env *env, void **state) {
  bench_cuda_args args;
  memset(&args, 0, sizeof args);
  *state = NULL;
  kiln_status st = kiln_device_get_native(env->device, KILN_NATIVE_CU_DEVICE, &args.device);
  if (st != KILN_SUCCESS)
    return st;
  const int kind = env->arg != NULL ? *(const int *)env->arg : K_COMPILE;
  switch (kind) {
  case K_EMPTY:
    args.kernel = BENCH_CUDA_KERNEL_EMPTY;
    break;
  case K_EVENT:
    args.event = 1;
    break;
  case K_TRANSFER:
    args.bytes = (size_t)kiln_bench_env_num(env, "bytes", 0);
    args.pinned = kiln__suite_pinned(env);
    if (args.bytes == 0)
      return KILN_ERROR_INVALID_ARGUMENT;
    break;
  case K_VECADD:
    args.kernel = BENCH_CUDA_KERNEL_VECADD;
    args.items = (size_t)kiln_bench_env_num(env, "items", (int64_t)VEC_ITEMS);
    args.timing = kiln_bench_env_num(env, "device_timing", 0) != 0;
    break;
  case K_PROGRAM:
    args.kernel = BENCH_CUDA_KERNEL_VECADD; /* items 0: the module only */
    break;
  default:
    args.compile = 1;
    break;
  }
  return bench_baseline_cuda_setup(&args, state);
}

/* ---- cases ---- */

static const kiln_bench_param p_one[] = {{"ops", NULL, 1}};
static const kiln_bench_param p_burst[] = {{"ops", NULL, BENCH_CUDA_BURST}};
static const kiln_bench_param p_pin_4k[] = {{"bytes", NULL, 4 * KIB}, {"memory", "pinned", 0}};
static const kiln_bench_param p_pin_1m[] = {{"bytes", NULL, MIB}, {"memory", "pinned", 0}};
static const kiln_bench_param p_pin_256m[] = {{"bytes", NULL, 256 * MIB}, {"memory", "pinned", 0}};
static const kiln_bench_param p_page_256m[] = {{"bytes", NULL, 256 * MIB},
                                               {"memory", "pageable", 0}};
/* vecadd's size is an axis of one value, 256M (design.md's name): `--axis items=16M`
 * runs a smaller one under the same name, and params.items says which. */
static const int64_t vec_items[] = {(int64_t)VEC_ITEMS};
static const kiln_bench_axis vec_axes[] = {{"items", vec_items, NULL, 1, 1}};
static const kiln_bench_param p_vec_dev[] = {{"device_timing", NULL, 1}};
static const kiln_bench_param p_kernel[] = {{"kernel", "vecadd", 0}};

#define RAW                                                     \
  .baseline_name = "raw-cuda", .baseline_setup_env = raw_setup, \
  .baseline_teardown = bench_baseline_cuda_teardown

/* A transfer case: NAME, params, bytes, kiln and raw functions, goal (0: none). */
#define TRANSFER(NAME, WORDS, PARAMS, BYTES, RUN, BASE, GOAL, GOALTEXT)                     \
  {                                                                                         \
    .name = NAME, .description = WORDS, .params = PARAMS, .param_count = 2, .unit = "GB/s", \
    .better = KILN_BENCH_HIGHER, .work_per_op = (double)(BYTES), .goal_ratio = GOAL,        \
    .goal = GOALTEXT, .arg = &k_transfer, KILN__SUITE_SIDE(cuda_setup, RUN), RAW,           \
    .baseline_run = BASE,                                                                   \
  }
#define PINNED(NAME, WORDS, PARAMS, BYTES, RUN, BASE) \
  TRANSFER(NAME, WORDS, PARAMS, BYTES, RUN, BASE, 0.95, ">= 0.95x raw CUDA's GB/s")
#define PAGEABLE(NAME, WORDS, PARAMS, BYTES, RUN, BASE) \
  TRANSFER(NAME, WORDS, PARAMS, BYTES, RUN, BASE, 0.0, NULL)
#define W_PIN                                                                                   \
  "blocking write from pinned memory (kiln_host_alloc + kiln_buffer_write vs cuMemHostAlloc + " \
  "HtoDAsync+sync)"
#define R_PIN                                                                                 \
  "blocking read into pinned memory (kiln_host_alloc + kiln_buffer_read vs cuMemHostAlloc + " \
  "DtoHAsync+sync)"
#define W_PAGE                                                                            \
  "blocking write from malloc'ed memory (kiln's pinned staging vs the driver's pageable " \
  "HtoDAsync+sync)"
#define R_PAGE                                                                           \
  "blocking read into malloc'ed memory (kiln's pinned staging vs the driver's pageable " \
  "DtoHAsync+sync)"

static const kiln_bench_case cases[] = {
    {
        .name = "launch_roundtrip",
        .description = "launch an empty kernel and wait for it",
        .params = p_one,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 0.94,
        .goal = "<= raw + 0.5 us (ratio >= 0.94 at raw's ~7.9 us)",
        .arg = &k_empty,
        KILN__SUITE_SIDE(cuda_setup, kiln__suite_launch_wait),
        RAW,
        .baseline_run = bench_baseline_cuda_launch_roundtrip,
    },
    {
        .name = "launch_enqueue",
        .description = "1000 back-to-back empty-kernel launches, one synchronize; per launch",
        .params = p_burst,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = BENCH_CUDA_BURST,
        .goal_ratio = 0.94,
        .goal = "<= raw + 0.2 us (ratio >= 0.94 at raw's ~3.2 us)",
        .arg = &k_empty,
        KILN__SUITE_SIDE(cuda_setup, kiln__suite_launch_burst),
        RAW,
        .baseline_run = bench_baseline_cuda_launch_enqueue,
    },
    {
        .name = "event_record",
        .description = "record an event on an idle stream, query it until complete",
        .params = p_one,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .arg = &k_event,
        KILN__SUITE_SIDE(cuda_setup, kiln__suite_event_record_query),
        RAW,
        .baseline_run = bench_baseline_cuda_event_record,
    },
    PINNED("h2d_pinned_4KiB", W_PIN, p_pin_4k, 4 * KIB, kiln__suite_write, bench_baseline_cuda_h2d),
    PINNED("h2d_pinned_1MiB", W_PIN, p_pin_1m, MIB, kiln__suite_write, bench_baseline_cuda_h2d),
    PINNED("h2d_pinned_256MiB", W_PIN, p_pin_256m, 256 * MIB, kiln__suite_write,
           bench_baseline_cuda_h2d),
    PINNED("d2h_pinned_4KiB", R_PIN, p_pin_4k, 4 * KIB, kiln__suite_read, bench_baseline_cuda_d2h),
    PINNED("d2h_pinned_1MiB", R_PIN, p_pin_1m, MIB, kiln__suite_read, bench_baseline_cuda_d2h),
    PINNED("d2h_pinned_256MiB", R_PIN, p_pin_256m, 256 * MIB, kiln__suite_read,
           bench_baseline_cuda_d2h),
    PAGEABLE("h2d_pageable_256MiB", W_PAGE, p_page_256m, 256 * MIB, kiln__suite_write,
             bench_baseline_cuda_h2d),
    PAGEABLE("d2h_pageable_256MiB", R_PAGE, p_page_256m, 256 * MIB, kiln__suite_read,
             bench_baseline_cuda_d2h),
    {
        .name = "vecadd_256M",
        .description =
            "c = a + b over `items` floats (256M): one launch + its wait, host time per launch",
        .axes = vec_axes,
        .axis_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 1.0 / 1.05,
        .goal = "launch + wait <= 1.05x raw CUDA's time",
        .arg = &k_vecadd,
        KILN__SUITE_SIDE(cuda_setup, kiln__suite_launch_wait),
        RAW,
        .baseline_run = bench_baseline_cuda_vecadd,
    },
    {
        .name = "vecadd_256M_device",
        .description = "the same launches timed on the device (CUDA events around each)",
        .params = p_vec_dev,
        .param_count = 1,
        .axes = vec_axes,
        .axis_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .arg = &k_vecadd,
        KILN__SUITE_SIDE(cuda_setup, kiln__suite_launch_wait),
        RAW,
        .baseline_run = bench_baseline_cuda_vecadd,
        .run_timed = kiln__suite_launch_timed,
        .baseline_run_timed = bench_baseline_cuda_vecadd_timed,
    },
    {
        .name = "nvrtc_compile",
        .description = "source to a loaded module: kiln_program_create+destroy vs NVRTC "
                       "compile, CUBIN, cuModuleLoadDataEx+unload (unique source each time)",
        .params = p_kernel,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .arg = &k_compile,
        KILN__SUITE_SIDE(cuda_setup, nvrtc_compile),
        RAW,
        .baseline_run = bench_baseline_cuda_compile,
    },
    {
        .name = "module_load",
        .description = "kiln_program_create+destroy of a source compiled before: the "
                       "compile cache's in-process hit and cuModuleLoadDataEx; no baseline",
        .params = p_kernel,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .arg = &k_compile,
        KILN__SUITE_SIDE(cuda_setup, module_load),
    },
    {
        .name = "kernel_create",
        .description = "kiln_kernel_create+destroy from a built program vs cuModuleGetFunction",
        .params = p_kernel,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .arg = &k_program,
        KILN__SUITE_SIDE(cuda_setup, kernel_create),
        RAW,
        .baseline_run = bench_baseline_cuda_get_function,
    },
};

const kiln_bench_suite kiln__bench_suite_cuda = {
    .name = "cuda",
    .description =
        "CUDA launches, events, pinned/pageable copies, vecadd, NVRTC vs the raw driver API",
    .backend = KILN_BACKEND_CUDA,
    .host_only = 0,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};
