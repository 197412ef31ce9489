/* SPDX-License-Identifier: MIT */
/* Suite `cuda`: kiln on the CUDA backend against the raw CUDA driver API
 * (bench/baseline_cuda.c) on the same device and in the same primary context, in one
 * process (result names fixed by design.md; docs/benchmarks.md says what one op is in
 * each case). Public kiln API only. Pinned cases: kiln copies from kiln_host_alloc
 * memory, the baseline from cuMemHostAlloc memory; pageable cases: both from
 * posix_memalign'ed memory (kiln stages it through pinned slots, the baseline hands it
 * to the driver as it is). Host timing except vecadd_256M_device (CUDA events on
 * both sides, through kiln's timing events on the kiln side). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_cuda.h"
#include "kiln.h"
#include "kiln/bench.h"
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

static const char empty_source[] = "KILN_KERNEL void empty(void) {}\n";
static const char vecadd_source[] =
    "KILN_KERNEL void vecadd(KILN_GLOBAL const float *a, KILN_GLOBAL const float *b,\n"
    "                        KILN_GLOBAL float *c, int n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < (size_t)n) c[i] = a[i] + b[i];\n"
    "}\n";

typedef struct cuda_state {
  kiln_context context;
  kiln_stream stream;
  kiln_program program;
  kiln_kernel kernel;
  kiln_event event, start, end;
  kiln_buffer buf, a, b, c;
  void *host;
  size_t bytes;
  int pinned; /* host is kiln_host_alloc memory of context */
  int n;
  size_t items; /* vecadd: the run's `items` */
  kiln_arg args[4];
  size_t arg_count;
  kiln_range range;
  unsigned long seq; /* nvrtc_compile: a unique source per iteration */
  char source[sizeof vecadd_source + 64];
} cuda_state;

static void cuda_teardown(void *p) {
  cuda_state *s = p;
  if (s == NULL)
    return;
  kiln_event_destroy(s->end);
  kiln_event_destroy(s->start);
  kiln_event_destroy(s->event);
  kiln_buffer_destroy(s->c);
  kiln_buffer_destroy(s->b);
  kiln_buffer_destroy(s->a);
  kiln_buffer_destroy(s->buf);
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

static kiln_status build(cuda_state *s, const char *source, const char *name) {
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = "cuda_suite";
  kiln_status st = kiln_program_create(s->context, &pd, &s->program);
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create(s->program, name, &s->kernel);
  return st;
}

/* One launch of the case's kernel and its wait, per iteration. */
static int launch_wait(void *p, uint64_t iters) {
  cuda_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_pending token = KILN_PENDING_INIT;
    kiln_status st =
        kiln_launch_async(s->stream, s->kernel, &s->range, s->args, s->arg_count, &token);
    if (st != KILN_SUCCESS)
      return st;
    if ((st = kiln_wait(&token)) != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* a = 1.5, b = 2.25 (kiln_buffer_fill), c cleared; one launch; three chunks of c read
 * back (start, middle, end) must be 3.75, as on the raw side. */
static kiln_status vecadd_prepare(cuda_state *s) {
  const size_t bytes = s->items * sizeof(float);
  const size_t chunk = s->items < CHECK_ITEMS ? s->items : CHECK_ITEMS;
  const float fa = 1.5f, fb = 2.25f, fc = 0.0f;
  kiln_status st = kiln_buffer_fill(s->a, 0, bytes, &fa, sizeof fa);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_fill(s->b, 0, bytes, &fb, sizeof fb);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_fill(s->c, 0, bytes, &fc, sizeof fc);
  if (st == KILN_SUCCESS)
    st = launch_wait(s, 1);
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

static kiln_status transfer_prepare(cuda_state *s, const kiln_bench_env *env) {
  s->bytes = (size_t)kiln_bench_env_num(env, "bytes", 0);
  s->pinned = strcmp(kiln_bench_env_str(env, "memory", "pageable"), "pinned") == 0;
  if (s->bytes == 0)
    return KILN_ERROR_INVALID_ARGUMENT;
  if (s->pinned) {
    kiln_status st = kiln_host_alloc(s->context, s->bytes, &s->host);
    if (st != KILN_SUCCESS) {
      s->host = NULL;
      s->pinned = 0;
      return st;
    }
  } else {
    void *host = NULL;
    if (posix_memalign(&host, 4096, s->bytes) != 0)
      return KILN_ERROR_OUT_OF_HOST_MEMORY;
    s->host = host;
  }
  memset(s->host, 0x5a, s->bytes); /* touched: no timed copy takes a page fault */
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = s->bytes;
  bd.label = "cuda_suite";
  kiln_status st = kiln_buffer_create(s->context, &bd, &s->buf);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_write(s->buf, 0, s->bytes, s->host);
  return st;
}

static int cuda_setup(const kiln_bench_env *env, void **state) {
  *state = NULL;
  cuda_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  const int kind = env->arg != NULL ? *(const int *)env->arg : K_COMPILE;
  kiln_status st = kiln_context_create(env->device, NULL, &s->context);
  if (st == KILN_SUCCESS)
    st = kiln_stream_create(s->context, NULL, &s->stream);
  if (st == KILN_SUCCESS) {
    switch (kind) {
    case K_EMPTY:
      st = build(s, empty_source, "empty");
      s->range = kiln_range_1d(1); /* no local size: kiln picks the block */
      break;
    case K_EVENT:
      st = kiln_event_create(s->context, NULL, &s->event);
      break;
    case K_TRANSFER:
      st = transfer_prepare(s, env);
      break;
    case K_VECADD: {
      int64_t items = kiln_bench_env_num(env, "items", (int64_t)VEC_ITEMS);
      if (items <= 0 || items > INT_MAX) {
        st = KILN_ERROR_INVALID_ARGUMENT;
        break;
      }
      s->items = (size_t)items;
      kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
      bd.bytes = s->items * sizeof(float);
      kiln_event_desc ed = KILN_EVENT_DESC_INIT;
      ed.flags = KILN_EVENT_TIMING;
      st = build(s, vecadd_source, "vecadd");
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
      s->n = (int)s->items;
      s->range = kiln_range_1d(s->items); /* no local size: kiln picks the block */
      s->args[0] = kiln_arg_buffer(s->a);
      s->args[1] = kiln_arg_buffer(s->b);
      s->args[2] = kiln_arg_buffer(s->c);
      s->args[3] = kiln_arg_scalar(&s->n, sizeof s->n);
      s->arg_count = 4;
      if (st == KILN_SUCCESS)
        st = vecadd_prepare(s);
      break;
    }
    case K_PROGRAM:
      st = build(s, vecadd_source, "vecadd");
      break;
    default:
      break;
    }
  }
  if (st != KILN_SUCCESS) {
    cuda_teardown(s);
    return st;
  }
  *state = s;
  return KILN_SUCCESS;
}

/* ---- kiln sides ---- */

static int launch_enqueue(void *p, uint64_t iters) {
  cuda_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    for (unsigned k = 0; k < BENCH_CUDA_BURST; k++) {
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

static int event_record(void *p, uint64_t iters) {
  cuda_state *s = p;
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

static int h2d(void *p, uint64_t iters) {
  cuda_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = kiln_buffer_write(s->buf, 0, s->bytes, s->host);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static int d2h(void *p, uint64_t iters) {
  cuda_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = kiln_buffer_read(s->buf, 0, s->bytes, s->host);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* Each launch between two timing events; the device time is the sum of the gaps. */
static int vecadd_timed(void *p, uint64_t iters, uint64_t *device_ns) {
  cuda_state *s = p;
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

static kiln_status program_once(cuda_state *s, const char *source) {
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
  cuda_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    snprintf(s->source, sizeof s->source, "%s// %lu\n", vecadd_source, ++s->seq);
    kiln_status st = program_once(s, s->source);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* The same source each time: what a compile cache would serve (kiln has none yet). */
static int module_load(void *p, uint64_t iters) {
  cuda_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = program_once(s, vecadd_source);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static int kernel_create(void *p, uint64_t iters) {
  cuda_state *s = p;
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
    args.pinned = strcmp(kiln_bench_env_str(env, "memory", "pageable"), "pinned") == 0;
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
    .goal = GOALTEXT, .arg = &k_transfer, .setup = cuda_setup, .run = RUN,                  \
    .teardown = cuda_teardown, RAW, .baseline_run = BASE,                                   \
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
        .setup = cuda_setup,
        .run = launch_wait,
        .teardown = cuda_teardown,
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
        .setup = cuda_setup,
        .run = launch_enqueue,
        .teardown = cuda_teardown,
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
        .setup = cuda_setup,
        .run = event_record,
        .teardown = cuda_teardown,
        RAW,
        .baseline_run = bench_baseline_cuda_event_record,
    },
    PINNED("h2d_pinned_4KiB", W_PIN, p_pin_4k, 4 * KIB, h2d, bench_baseline_cuda_h2d),
    PINNED("h2d_pinned_1MiB", W_PIN, p_pin_1m, MIB, h2d, bench_baseline_cuda_h2d),
    PINNED("h2d_pinned_256MiB", W_PIN, p_pin_256m, 256 * MIB, h2d, bench_baseline_cuda_h2d),
    PINNED("d2h_pinned_4KiB", R_PIN, p_pin_4k, 4 * KIB, d2h, bench_baseline_cuda_d2h),
    PINNED("d2h_pinned_1MiB", R_PIN, p_pin_1m, MIB, d2h, bench_baseline_cuda_d2h),
    PINNED("d2h_pinned_256MiB", R_PIN, p_pin_256m, 256 * MIB, d2h, bench_baseline_cuda_d2h),
    PAGEABLE("h2d_pageable_256MiB", W_PAGE, p_page_256m, 256 * MIB, h2d, bench_baseline_cuda_h2d),
    PAGEABLE("d2h_pageable_256MiB", R_PAGE, p_page_256m, 256 * MIB, d2h, bench_baseline_cuda_d2h),
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
        .setup = cuda_setup,
        .run = launch_wait,
        .teardown = cuda_teardown,
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
        .setup = cuda_setup,
        .run = launch_wait,
        .teardown = cuda_teardown,
        RAW,
        .baseline_run = bench_baseline_cuda_vecadd,
        .run_timed = vecadd_timed,
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
        .setup = cuda_setup,
        .run = nvrtc_compile,
        .teardown = cuda_teardown,
        RAW,
        .baseline_run = bench_baseline_cuda_compile,
    },
    {
        .name = "module_load",
        .description = "kiln_program_create+destroy of a source compiled before (a compile "
                       "cache's hit; kiln has none yet, so it compiles); no baseline",
        .params = p_kernel,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .arg = &k_compile,
        .setup = cuda_setup,
        .run = module_load,
        .teardown = cuda_teardown,
    },
    {
        .name = "kernel_create",
        .description = "kiln_kernel_create+destroy from a built program vs cuModuleGetFunction",
        .params = p_kernel,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .arg = &k_program,
        .setup = cuda_setup,
        .run = kernel_create,
        .teardown = cuda_teardown,
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
