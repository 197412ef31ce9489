/* SPDX-License-Identifier: MIT */
/* Benchmark your own kernel with kiln's benchmark library (docs/benchmarks.md): a
 * native saxpy kernel on the CPU device against a plain C loop, over a scaling axis
 * n = 64K, 1M, 4M elements, timed interleaved; prints the table with the log-log
 * slope and writes bench_custom.json / bench_custom.html.
 *   build/examples/bench_custom [--quick]
 * Built by bench/CMakeLists.txt (so it cannot rot) and run by `make check`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "kiln/bench.h"

/* ---- the kernel under test ---- */

static void saxpy(const kiln_native_range *range, void *const *args, void *user) {
  (void)user;
  const float *x = args[0];
  float *y = args[1];
  float a = *(const float *)args[2];
  for (size_t i = range->begin[0]; i < range->end[0]; i++)
    y[i] = a * x[i] + y[i];
}

typedef struct state {
  kiln_context context;
  kiln_stream stream;
  kiln_kernel kernel;
  kiln_buffer x, y;
  size_t n;
} state;

static void teardown(void *p) {
  state *s = p;
  if (s == NULL)
    return;
  kiln_buffer_destroy(s->y);
  kiln_buffer_destroy(s->x);
  kiln_kernel_destroy(s->kernel);
  kiln_stream_destroy(s->stream);
  kiln_context_destroy(s->context);
  free(s);
}

/* The kiln side's set-up: the run's n comes from the axis. */
static int setup(const kiln_bench_env *env, void **out) {
  *out = NULL;
  state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  s->n = (size_t)kiln_bench_env_num(env, "n", 1 << 20);
  static const kiln_param params[] = {
      {KILN_PARAM_BUFFER_READ, 0}, {KILN_PARAM_BUFFER_READ_WRITE, 0}, {KILN_PARAM_SCALAR, 4}};
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  kd.name = "saxpy";
  kd.fn = saxpy;
  kd.params = params;
  kd.param_count = 3;
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = s->n * sizeof(float);
  float zero = 0.0f;
  kiln_status st = kiln_context_create(env->device, NULL, &s->context);
  if (st == KILN_SUCCESS)
    st = kiln_stream_create(s->context, NULL, &s->stream);
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create_native(s->context, &kd, &s->kernel);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(s->context, &bd, &s->x);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(s->context, &bd, &s->y);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_fill(s->x, 0, bd.bytes, &zero, sizeof zero);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_fill(s->y, 0, bd.bytes, &zero, sizeof zero);
  if (st != KILN_SUCCESS) {
    teardown(s);
    return st;
  }
  *out = s;
  return KILN_SUCCESS;
}

/* `iters` blocking launches over n elements. */
static int run(void *p, uint64_t iters) {
  state *s = p;
  float a = 2.0f;
  kiln_range range = kiln_range_1d(s->n);
  kiln_arg args[3] = {kiln_arg_buffer(s->x), kiln_arg_buffer(s->y), kiln_arg_scalar(&a, 4)};
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = kiln_launch(s->stream, s->kernel, &range, args, 3);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* ---- the baseline: the same work without kiln (in a real suite, its own file that
 * includes no kiln header) ---- */

typedef struct plain {
  float *x, *y;
  size_t n;
} plain;

static int plain_setup(const kiln_bench_env *env, void **out) {
  plain *p = calloc(1, sizeof *p);
  if (p == NULL)
    return 1;
  p->n = (size_t)kiln_bench_env_num(env, "n", 1 << 20);
  p->x = calloc(p->n, sizeof(float));
  p->y = calloc(p->n, sizeof(float));
  if (p->x == NULL || p->y == NULL) {
    free(p->x);
    free(p->y);
    free(p);
    return 1;
  }
  *out = p;
  return 0;
}

static void plain_teardown(void *v) {
  plain *p = v;
  free(p->x);
  free(p->y);
  free(p);
}

static int plain_run(void *v, uint64_t iters) {
  plain *p = v;
  for (uint64_t k = 0; k < iters; k++)
    for (size_t i = 0; i < p->n; i++)
      p->y[i] = 2.0f * p->x[i] + p->y[i];
  return 0;
}

/* ---- the suite: one case over a scaling axis ---- */

static const int64_t sizes[] = {1 << 16, 1 << 20, 1 << 22};
static const kiln_bench_axis axes[] = {{"n", sizes, NULL, 3, 1}};

static const kiln_bench_case cases[] = {{
    .name = "saxpy",
    .description = "y = a x + y over n floats, one blocking launch per op",
    .unit = "Mitems/s",
    .better = KILN_BENCH_HIGHER,
    .work_axis = "n", /* one op processes n items */
    .axes = axes,
    .axis_count = 1,
    .setup = setup,
    .run = run,
    .teardown = teardown,
    .baseline_name = "plain-loop",
    .baseline_setup_env = plain_setup,
    .baseline_run = plain_run,
    .baseline_teardown = plain_teardown,
}};

static const kiln_bench_suite suite = {
    .name = "custom",
    .description = "a user's saxpy kernel against a plain loop",
    .backend = KILN_BACKEND_CPU,
    .cases = cases,
    .case_count = 1,
};

int main(int argc, char **argv) {
  kiln_bench_config config = KILN_BENCH_CONFIG_INIT;
  config.quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  kiln_bench_report *report = NULL;
  if (kiln_bench_report_create(&report) != KILN_SUCCESS)
    return 1;
  kiln_status st = kiln_bench_run_suite(&config, &suite, report);
  kiln_bench_report_print(report, stdout);
  FILE *json = fopen("bench_custom.json", "w"), *html = fopen("bench_custom.html", "w");
  if (json != NULL && kiln_bench_report_write_json(report, json) != KILN_SUCCESS)
    st = KILN_ERROR_IO;
  if (html != NULL && kiln_bench_report_write_html(report, html) != KILN_SUCCESS)
    st = KILN_ERROR_IO;
  if (json != NULL)
    fclose(json);
  if (html != NULL)
    fclose(html);
  for (size_t i = 0; i < kiln_bench_report_count(report); i++) {
    const kiln_bench_result *r = kiln_bench_report_get(report, i);
    if (r->status != 0)
      fprintf(stderr, "bench_custom: %s\n", r->message);
  }
  kiln_bench_report_destroy(report);
  return st == KILN_SUCCESS ? 0 : 1;
}
