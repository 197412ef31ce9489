/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: opencl unit */
/* The hybrid dispatcher over real targets: the CPU backend and OpenCL (PoCL here). One
 * dialect kernel compiled for both, run ADAPTIVE over sizes 1 Ki..1 Mi in a fixed
 * mixed order; every result is checked against the host, calibration runs each size
 * bucket on both targets, the models have samples on both and answer predictions and a
 * crossover query; a THRESHOLD dispatcher sends small sizes to the CPU and large ones to
 * OpenCL exactly as told. Which target wins is not asserted (that is timing). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

static const char *saxpy_src =
    "KILN_KERNEL void hy_saxpy(KILN_GLOBAL const float *x, KILN_GLOBAL float *y, float a,\n"
    "                          int n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < (size_t)n) y[i] = a * x[i] + y[i];\n"
    "}\n";

typedef struct ocl_env {
  kiln_context cpu, ocl;
  float *x, *y;
} ocl_env;

#define MAXN (1u << 20)

static int setup(void **state) {
  ocl_env *e = calloc(1, sizeof *e);
  assert_non_null(e);
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_OPENCL, 0, &dev));
  KT_OK(kiln_context_create(kt_cpu_device(), NULL, &e->cpu));
  KT_OK(kiln_context_create(dev, NULL, &e->ocl));
  e->x = malloc(MAXN * sizeof(float));
  e->y = malloc(MAXN * sizeof(float));
  assert_non_null(e->x);
  assert_non_null(e->y);
  *state = e;
  return 0;
}

static int teardown(void **state) {
  ocl_env *e = *state;
  KT_OK(kiln_context_destroy(e->ocl));
  KT_OK(kiln_context_destroy(e->cpu));
  free(e->x);
  free(e->y);
  free(e);
  return 0;
}

static kiln_hybrid_task saxpy_task(kiln_hybrid h) {
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  td.name = "saxpy";
  td.source = saxpy_src;
  td.kernel = "hy_saxpy";
  kiln_hybrid_task t = NULL;
  KT_OK(kiln_hybrid_task_create(h, &td, &t));
  return t;
}

/* Run saxpy over n on the dispatcher's choice and check y; returns the target. */
static unsigned run_checked(ocl_env *e, kiln_hybrid_task t, size_t n, int round) {
  const float a = 0.5f + (float)round;
  for (size_t i = 0; i < n; i++) {
    e->x[i] = (float)(i % 1024);
    e->y[i] = (float)(i % 7);
  }
  int ni = (int)n;
  kiln_hybrid_arg args[4] = {{KILN_HYBRID_ARG_IN, e->x, sizeof(float)},
                             {KILN_HYBRID_ARG_INOUT, e->y, sizeof(float)},
                             {KILN_HYBRID_ARG_SCALAR, (void *)&a, sizeof a},
                             {KILN_HYBRID_ARG_SCALAR, &ni, sizeof ni}};
  unsigned k = 9;
  KT_OK(kiln_hybrid_run_kernel(t, n, args, 4, &k));
  for (size_t i = 0; i < n; i++) {
    float want = a * (float)(i % 1024) + (float)(i % 7);
    if (e->y[i] != want)
      fail_msg("n %zu on target %u: y[%zu] = %g, expected %g", n, k, i, (double)e->y[i],
               (double)want);
  }
  return k;
}

static void adaptive_over_cpu_and_opencl(void **state) {
  ocl_env *e = *state;
  kiln_hybrid_target tg[2] = {{e->cpu, NULL}, {e->ocl, NULL}};
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.targets = tg;
  d.target_count = 2;
  d.seed = 7;
  kiln_hybrid h = NULL;
  KT_OK(kiln_hybrid_create(&d, &h));
  kiln_hybrid_task t = saxpy_task(h);
  static const unsigned log2s[] = {10, 20, 14, 12, 17, 11, 19, 15, 13, 18, 16};
  unsigned used[2] = {0, 0};
  for (int round = 0; round < 3; round++)
    for (size_t i = 0; i < sizeof log2s / sizeof log2s[0]; i++)
      used[run_checked(e, t, (size_t)1 << log2s[i], round)]++;
  /* the first two rounds calibrate every bucket on both targets */
  assert_true(used[0] >= 11);
  assert_true(used[1] >= 11);
  kiln_hybrid_target_stats s = KILN_HYBRID_TARGET_STATS_INIT;
  KT_OK(kiln_hybrid_get_stats(t, 1, &s));
  assert_string_equal(s.label, "opencl:0");
  assert_int_equal(s.runs, used[1]);
  assert_int_equal(s.failures, 0);
  uint64_t ns = 0;
  KT_OK(kiln_hybrid_predict(t, 0, 3000, &ns));
  assert_true(ns > 0);
  size_t x = 0;
  KT_OK(kiln_hybrid_crossover(t, 0, 1, &x));
  fprintf(stderr, "saxpy on cpu vs %s: learned crossover %zu\n", s.label, x);
  char json[16384];
  KT_OK(kiln_hybrid_stats_json(t, json, sizeof json, NULL));
  fprintf(stderr, "%s\n", json);
  KT_OK(kiln_hybrid_destroy(h));
}

static void threshold_over_cpu_and_opencl(void **state) {
  ocl_env *e = *state;
  kiln_hybrid_target tg[2] = {{e->cpu, NULL}, {e->ocl, NULL}};
  size_t th = 5000;
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.targets = tg;
  d.target_count = 2;
  d.mode = KILN_HYBRID_THRESHOLD;
  d.thresholds = &th;
  kiln_hybrid h = NULL;
  KT_OK(kiln_hybrid_create(&d, &h));
  kiln_hybrid_task t = saxpy_task(h);
  assert_int_equal(run_checked(e, t, 4999, 0), 0);
  assert_int_equal(run_checked(e, t, 5000, 1), 1);
  assert_int_equal(run_checked(e, t, 1, 2), 0);
  KT_OK(kiln_hybrid_destroy(h));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(adaptive_over_cpu_and_opencl, setup, teardown),
      cmocka_unit_test_setup_teardown(threshold_over_cpu_and_opencl, setup, teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_OPENCL) || !kt_backend_available(KILN_BACKEND_CPU)) {
    fprintf(stderr, "SKIP: the opencl or cpu backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
