/* SPDX-License-Identifier: MIT */
/* The hybrid suite's shared workload and its reference baselines (ref_hybrid.h):
 * ref-best-fixed sends every run to the one target a calibration pass found faster over
 * the whole workload; ref-oracle sends each run to the target a calibration (median of
 * three runs of that very size on each target) found faster for its size. */
#define _POSIX_C_SOURCE 200809L
#include "ref_hybrid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *poly_src =
    "/* the hybrid suite's kernel: a 32-term polynomial of x, by Horner */\n"
    "KILN_KERNEL void hy_poly(KILN_GLOBAL const float *x, KILN_GLOBAL float *y, int n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < (size_t)n) {\n"
    "    float v = x[i], acc = 0.0f;\n"
    "    for (int k = 0; k < 32; k++)\n"
    "      acc = acc * v + 0.5f;\n"
    "    y[i] = acc;\n"
    "  }\n"
    "}\n";

static float poly_host(float v) {
  float acc = 0.0f;
  for (int k = 0; k < 32; k++)
    acc = acc * v + 0.5f;
  return acc;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bench_hybrid_task(kiln_hybrid h, kiln_hybrid_task *task) {
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  td.name = "bench_hy_poly";
  td.source = poly_src;
  td.kernel = "hy_poly";
  return kiln_hybrid_task_create(h, &td, task);
}

int bench_hybrid_run_one(bench_hybrid *b, kiln_hybrid_task task, size_t n) {
  int ni = (int)n;
  kiln_hybrid_arg args[3] = {{KILN_HYBRID_ARG_IN, b->x, sizeof(float)},
                             {KILN_HYBRID_ARG_OUT, b->y, sizeof(float)},
                             {KILN_HYBRID_ARG_SCALAR, &ni, sizeof ni}};
  b->y[0] = b->y[n - 1] = -1.0f;
  kiln_status st = kiln_hybrid_run_kernel(task, n, args, 3, NULL);
  if (st != KILN_SUCCESS)
    return st;
  const size_t at[2] = {0, n - 1};
  for (int i = 0; i < 2; i++) {
    float want = poly_host(b->x[at[i]]);
    if (!(fabsf(b->y[at[i]] - want) <= 1e-4f * fabsf(want)))
      return KILN_ERROR_BACKEND; /* the work was not done */
  }
  return KILN_SUCCESS;
}

int bench_hybrid_pass(bench_hybrid *b, kiln_hybrid_task task) {
  for (size_t i = 0; i < b->count; i++) {
    int st = bench_hybrid_run_one(b, task, b->sizes[i]);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

void bench_hybrid_close(void *state) {
  bench_hybrid *b = state;
  if (!b)
    return;
  kiln_hybrid_destroy(b->hybrid);
  for (int k = 0; k < BENCH_HYBRID_TARGETS; k++)
    kiln_hybrid_destroy(b->fixed[k]);
  for (int k = 0; k < BENCH_HYBRID_TARGETS; k++)
    kiln_context_destroy(b->ctx[k]);
  free(b->sizes);
  free(b->pick);
  free(b->x);
  free(b->y);
  free(b);
}

int bench_hybrid_open(const kiln_bench_env *env, bench_hybrid **out) {
  *out = NULL;
  bench_hybrid *b = calloc(1, sizeof *b);
  if (!b)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  kiln_device cpu = NULL;
  kiln_status st = kiln_device_find(KILN_BACKEND_CPU, 0, &cpu);
  if (st == KILN_SUCCESS)
    st = kiln_context_create(cpu, NULL, &b->ctx[0]);
  if (st == KILN_SUCCESS)
    st = kiln_context_create(env->device, NULL, &b->ctx[1]);
  /* the workload: sizes 2^10 .. 2^24 (quick: 2^20), log-uniform, in a fixed order */
  const double span = env->quick ? 10.0 : 14.0;
  b->count = env->quick ? 12 : 24;
  b->sizes = calloc(b->count, sizeof *b->sizes);
  b->pick = calloc(b->count, 1);
  uint64_t r = 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; b->sizes && i < b->count; i++) {
    r ^= r << 13;
    r ^= r >> 7;
    r ^= r << 17;
    double u = (double)(r >> 11) / 9007199254740992.0;
    b->sizes[i] = (size_t)(1024.0 * pow(2.0, span * u));
    if (b->sizes[i] > b->max_n)
      b->max_n = b->sizes[i];
  }
  b->x = malloc(b->max_n * sizeof(float));
  b->y = malloc(b->max_n * sizeof(float));
  if (st == KILN_SUCCESS && (!b->sizes || !b->pick || !b->x || !b->y))
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
  if (st != KILN_SUCCESS) {
    bench_hybrid_close(b);
    return st;
  }
  for (size_t i = 0; i < b->max_n; i++)
    b->x[i] = (float)(i % 1000) / 1000.0f;
  *out = b;
  return KILN_SUCCESS;
}

/* Both FIXED dispatchers and their tasks, each warmed up by one run of every size. */
static int open_fixed(const kiln_bench_env *env, bench_hybrid **out) {
  bench_hybrid *b = NULL;
  int st = bench_hybrid_open(env, &b);
  for (unsigned k = 0; st == KILN_SUCCESS && k < BENCH_HYBRID_TARGETS; k++) {
    kiln_hybrid_target tg[BENCH_HYBRID_TARGETS] = {{b->ctx[0], NULL}, {b->ctx[1], NULL}};
    kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
    d.targets = tg;
    d.target_count = BENCH_HYBRID_TARGETS;
    d.mode = KILN_HYBRID_FIXED;
    d.fixed_target = k;
    st = kiln_hybrid_create(&d, &b->fixed[k]);
    if (st == KILN_SUCCESS)
      st = bench_hybrid_task(b->fixed[k], &b->fixed_task[k]);
    if (st == KILN_SUCCESS)
      st = bench_hybrid_pass(b, b->fixed_task[k]);
  }
  if (st != KILN_SUCCESS) {
    bench_hybrid_close(b);
    return st;
  }
  *out = b;
  return KILN_SUCCESS;
}

int bench_ref_hybrid_best_setup(const kiln_bench_env *env, void **state) {
  bench_hybrid *b = NULL;
  int st = open_fixed(env, &b);
  uint64_t t[BENCH_HYBRID_TARGETS] = {0, 0};
  for (unsigned k = 0; st == KILN_SUCCESS && k < BENCH_HYBRID_TARGETS; k++) {
    uint64_t t0 = now_ns();
    st = bench_hybrid_pass(b, b->fixed_task[k]);
    t[k] = now_ns() - t0;
  }
  if (st != KILN_SUCCESS) {
    bench_hybrid_close(b);
    return st;
  }
  b->best = t[1] < t[0] ? 1u : 0u;
  *state = b;
  return KILN_SUCCESS;
}

int bench_ref_hybrid_best_run(void *state, uint64_t iters) {
  bench_hybrid *b = state;
  for (uint64_t i = 0; i < iters; i++) {
    int st = bench_hybrid_pass(b, b->fixed_task[b->best]);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int bench_ref_hybrid_oracle_setup(const kiln_bench_env *env, void **state) {
  bench_hybrid *b = NULL;
  int st = open_fixed(env, &b);
  for (size_t i = 0; st == KILN_SUCCESS && i < b->count; i++) {
    uint64_t med[BENCH_HYBRID_TARGETS];
    for (unsigned k = 0; st == KILN_SUCCESS && k < BENCH_HYBRID_TARGETS; k++) {
      uint64_t t[3];
      for (int rep = 0; st == KILN_SUCCESS && rep < 3; rep++) {
        uint64_t t0 = now_ns();
        st = bench_hybrid_run_one(b, b->fixed_task[k], b->sizes[i]);
        t[rep] = now_ns() - t0;
      }
      qsort(t, 3, sizeof t[0], cmp_u64);
      med[k] = t[1];
    }
    b->pick[i] = med[1] < med[0] ? 1 : 0;
  }
  if (st != KILN_SUCCESS) {
    bench_hybrid_close(b);
    return st;
  }
  *state = b;
  return KILN_SUCCESS;
}

int bench_ref_hybrid_oracle_run(void *state, uint64_t iters) {
  bench_hybrid *b = state;
  for (uint64_t it = 0; it < iters; it++)
    for (size_t i = 0; i < b->count; i++) {
      int st = bench_hybrid_run_one(b, b->fixed_task[b->pick[i]], b->sizes[i]);
      if (st != KILN_SUCCESS)
        return st;
    }
  return KILN_SUCCESS;
}
