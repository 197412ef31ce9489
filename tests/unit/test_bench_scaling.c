/* SPDX-License-Identifier: MIT */
/* The benchmark library's axes, scaling fits and measuring details, driven by a fake
 * clock that advances only inside the case functions by a cost model of n: O(n) and
 * O(n^2) cases must fit slopes 1 and 2, a launch-bound-then-linear case must show its
 * breakpoint; axis overrides, canonical params, work_axis rates, alternating pair
 * order, device timing, outliers and progress ticks are checked on exact figures. */
/* kiln-test-labels: unit */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kiln.h"
#include "kiln/bench.h"

typedef enum model { LINEAR, QUADRATIC, KNEE } model;

typedef struct fake {
  uint64_t now_ns;
  model m;
  uint64_t knee;    /* KNEE: cost max(knee, n) */
  char calls[4096]; /* 'k' / 'b' per call, in order */
  size_t ncalls;
  unsigned ticks, tick_measuring;
  size_t tick_total;
} fake;

static fake clk;

typedef struct run_state {
  uint64_t n;
  double factor; /* the baseline runs at half the kiln side's cost */
} run_state;

static uint64_t fake_now(void *user) {
  return ((fake *)user)->now_ns;
}

static uint64_t cost(uint64_t n) {
  switch (clk.m) {
  case LINEAR:
    return n;
  case QUADRATIC:
    return n * n / 1024;
  case KNEE:
    return n > clk.knee ? n : clk.knee;
  }
  return n;
}

static void note(char c) {
  if (clk.ncalls + 1 < sizeof clk.calls)
    clk.calls[clk.ncalls++] = c;
}

static int kiln_side(void *p, uint64_t iters) {
  run_state *s = p;
  note('k');
  clk.now_ns += (uint64_t)((double)(cost(s->n) * iters) * s->factor);
  return 0;
}

static int base_side(void *p, uint64_t iters) {
  run_state *s = p;
  note('b');
  clk.now_ns += cost(s->n) * iters / 2;
  return 0;
}

/* device timing: the sides report a device time of half what the clock sees */
static int kiln_timed(void *p, uint64_t iters, uint64_t *device_ns) {
  run_state *s = p;
  uint64_t before = clk.now_ns;
  kiln_side(p, iters);
  *device_ns = (clk.now_ns - before) / 2;
  (void)s;
  return 0;
}

static int base_timed(void *p, uint64_t iters, uint64_t *device_ns) {
  uint64_t before = clk.now_ns;
  base_side(p, iters);
  *device_ns = (clk.now_ns - before) / 2;
  return 0;
}

static int setup(const kiln_bench_env *env, void **state) {
  run_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  s->n = (uint64_t)kiln_bench_env_num(env, "n", 1);
  s->factor = 1.0;
  *state = s;
  return 0;
}

static int base_setup(const kiln_bench_env *env, void **state) {
  return setup(env, state);
}

static void teardown(void *state) {
  free(state);
}

static const int64_t sizes[] = {1024, 4096, 16384, 65536, 262144, 1048576};
static const char *const modes[] = {"a", "b"};
static const kiln_bench_axis axes_n[] = {{"n", sizes, NULL, 6, 1}};
static const kiln_bench_axis axes_n_mode[] = {{"n", sizes, NULL, 6, 1},
                                              {"mode", NULL, modes, 2, 0}};
static const kiln_bench_param fixed[] = {{"zeta", "last", 0}, {"alpha", NULL, 7}};

static kiln_bench_case make_case(void) {
  kiln_bench_case c;
  memset(&c, 0, sizeof c);
  c.name = "model";
  c.unit = "ns";
  c.better = KILN_BENCH_LOWER;
  c.axes = axes_n;
  c.axis_count = 1;
  c.setup = setup;
  c.run = kiln_side;
  c.teardown = teardown;
  c.baseline_name = "half";
  c.baseline_setup_env = base_setup;
  c.baseline_run = base_side;
  c.baseline_teardown = teardown;
  return c;
}

static kiln_bench_suite make_suite(const kiln_bench_case *c, size_t n) {
  kiln_bench_suite s;
  memset(&s, 0, sizeof s);
  s.name = "fake";
  s.description = "fake clock";
  s.host_only = 1;
  s.cases = c;
  s.case_count = n;
  return s;
}

static kiln_bench_config make_config(void) {
  kiln_bench_config cfg = KILN_BENCH_CONFIG_INIT;
  cfg.quick = 1;
  cfg.clock = fake_now;
  cfg.clock_user = &clk;
  cfg.idle_gap_ns = -1; /* no real sleeping in unit tests */
  return cfg;
}

static int reset(void **state) {
  (void)state;
  memset(&clk, 0, sizeof clk);
  clk.now_ns = 1000000000ull;
  return 0;
}

/* Run the case over its axes and return the report's only series. */
static const kiln_bench_series *run_series(kiln_bench_case *c, kiln_bench_report **rep) {
  kiln_bench_suite s = make_suite(c, 1);
  kiln_bench_config cfg = make_config();
  assert_int_equal(kiln_bench_report_create(rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_run_suite(&cfg, &s, *rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_report_count(*rep), 6);
  assert_int_equal(kiln_bench_report_series_count(*rep), 1);
  const kiln_bench_series *ser = kiln_bench_report_series_get(*rep, 0);
  assert_non_null(ser);
  assert_int_equal(ser->count, 6);
  assert_string_equal(ser->axis, "n");
  for (size_t i = 0; i < 6; i++)
    assert_true(ser->n[i] == (double)sizes[i]);
  return ser;
}

static void linear_fits_slope_1(void **state) {
  (void)state;
  clk.m = LINEAR;
  kiln_bench_case c = make_case();
  kiln_bench_report *rep;
  const kiln_bench_series *s = run_series(&c, &rep);
  assert_true(fabs(s->kiln_fit.slope - 1.0) < 1e-9);
  assert_true(fabs(s->baseline_fit.slope - 1.0) < 1e-9);
  assert_true(fabs(s->kiln_fit.r2 - 1.0) < 1e-9);
  assert_false(s->kiln_fit.has_break);
  for (size_t i = 0; i < 6; i++) {
    assert_true(s->kiln_ns[i] == (double)sizes[i]); /* 1 ns per element */
    assert_true(s->baseline_ns[i] == (double)sizes[i] / 2);
    assert_true(fabs(s->results[i]->ratio - 0.5) < 1e-12);
  }
  kiln_bench_report_destroy(rep);
}

static void quadratic_fits_slope_2(void **state) {
  (void)state;
  clk.m = QUADRATIC;
  kiln_bench_case c = make_case();
  kiln_bench_report *rep;
  const kiln_bench_series *s = run_series(&c, &rep);
  assert_true(fabs(s->kiln_fit.slope - 2.0) < 1e-9);
  assert_true(fabs(s->baseline_fit.slope - 2.0) < 1e-9);
  assert_false(s->kiln_fit.has_break);
  kiln_bench_report_destroy(rep);
}

/* max(16384, n): flat (launch-bound) up to n = 16384, linear (bandwidth-bound) above */
static void knee_finds_breakpoint(void **state) {
  (void)state;
  clk.m = KNEE;
  clk.knee = 16384;
  kiln_bench_case c = make_case();
  kiln_bench_report *rep;
  const kiln_bench_series *s = run_series(&c, &rep);
  assert_true(s->kiln_fit.has_break);
  assert_true(s->kiln_fit.break_n == 16384.0);
  assert_true(fabs(s->kiln_fit.slope_below) < 1e-9);
  assert_true(fabs(s->kiln_fit.slope_above - 1.0) < 1e-9);
  assert_true(s->kiln_fit.slope > 0.3 && s->kiln_fit.slope < 0.9); /* one line: in between */
  assert_true(s->baseline_fit.has_break);
  kiln_bench_report_destroy(rep);
}

/* The fit alone: exact power laws, noise that must not invent a breakpoint, too few
 * points, bad input. */
static void fit_function(void **state) {
  (void)state;
  double n[8], t[8];
  kiln_bench_fit f;
  for (int i = 0; i < 8; i++) {
    n[i] = pow(2.0, 10 + 2 * i);
    t[i] = 3.0 * pow(n[i], 1.02);
  }
  assert_int_equal(kiln_bench_fit_scaling(n, t, 8, &f), 0);
  assert_true(fabs(f.slope - 1.02) < 1e-9 && fabs(f.intercept - log(3.0)) < 1e-6);
  assert_false(f.has_break);
  /* +-3% alternating noise on a straight line: no breakpoint */
  for (int i = 0; i < 8; i++)
    t[i] = pow(n[i], 1.0) * (i % 2 ? 1.03 : 0.97);
  assert_int_equal(kiln_bench_fit_scaling(n, t, 8, &f), 0);
  assert_true(fabs(f.slope - 1.0) < 0.02);
  assert_false(f.has_break);
  /* order does not matter */
  double rn[3] = {4096, 1024, 16384}, rt[3] = {4096 * 4096.0, 1024 * 1024.0, 16384 * 16384.0};
  assert_int_equal(kiln_bench_fit_scaling(rn, rt, 3, &f), 0);
  assert_true(fabs(f.slope - 2.0) < 1e-9);
  assert_false(f.has_break); /* 3 points: no two-segment fit */
  assert_int_equal(kiln_bench_fit_scaling(rn, rt, 1, &f), -1);
  double same[2] = {5, 5};
  assert_int_equal(kiln_bench_fit_scaling(same, rt, 2, &f), -1);
}

/* --axis replaces values; params are canonical (sorted by key, fixed ones kept); the
 * label names the axis values; the last axis varies fastest; bad values and unknown
 * axes are refused with a message. */
static void axes_and_overrides(void **state) {
  (void)state;
  clk.m = LINEAR;
  kiln_bench_case c = make_case();
  c.axes = axes_n_mode;
  c.axis_count = 2;
  c.params = fixed;
  c.param_count = 2;
  kiln_bench_suite s = make_suite(&c, 1);
  const kiln_bench_suite *list[] = {&s};
  kiln_bench_config cfg = make_config();
  assert_int_equal(kiln_bench_case_runs(&cfg, &c), 12);
  const char *vals[] = {"2K", "8KiB"};
  kiln_bench_axis_override o = {"n", vals, 2};
  cfg.axis_overrides = &o;
  cfg.axis_override_count = 1;
  char err[256];
  assert_int_equal(kiln_bench_check_overrides(&cfg, list, 1, err, sizeof err), 0);
  assert_int_equal(kiln_bench_case_runs(&cfg, &c), 4);
  kiln_bench_report *rep;
  assert_int_equal(kiln_bench_report_create(&rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_run_suite(&cfg, &s, rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_report_count(rep), 4);
  const kiln_bench_result *r = kiln_bench_report_get(rep, 1);
  assert_int_equal(r->param_count, 4);
  const char *keys[] = {"alpha", "mode", "n", "zeta"};
  for (int i = 0; i < 4; i++)
    assert_string_equal(r->params[i].key, keys[i]);
  char text[128];
  kiln_bench_params_text(r, text, sizeof text);
  assert_string_equal(text, "alpha=7,mode=b,n=2048,zeta=last");
  assert_string_equal(r->label, "model n=2048 mode=b");
  assert_true(r->kiln.median == 2048.0);
  kiln_bench_params_text(kiln_bench_report_get(rep, 2), text, sizeof text);
  assert_string_equal(text, "alpha=7,mode=a,n=8192,zeta=last");
  /* two series over n (mode a and mode b), two points each */
  assert_int_equal(kiln_bench_report_series_count(rep), 2);
  assert_int_equal(kiln_bench_report_series_get(rep, 0)->count, 2);
  assert_non_null(strstr(kiln_bench_report_series_get(rep, 1)->label, "mode=b"));
  kiln_bench_report_destroy(rep);

  const char *bad[] = {"12parsecs"};
  kiln_bench_axis_override ob = {"n", bad, 1};
  cfg.axis_overrides = &ob;
  assert_int_equal(kiln_bench_check_overrides(&cfg, list, 1, err, sizeof err), -1);
  assert_non_null(strstr(err, "12parsecs"));
  assert_int_equal(kiln_bench_report_create(&rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_run_suite(&cfg, &s, rep), KILN_ERROR_INVALID_ARGUMENT);
  assert_int_equal(kiln_bench_report_count(rep), 0); /* nothing ran */
  kiln_bench_report_destroy(rep);

  kiln_bench_axis_override ou = {"nosuch", vals, 2};
  cfg.axis_overrides = &ou;
  assert_int_equal(kiln_bench_check_overrides(&cfg, list, 1, err, sizeof err), -1);
  assert_non_null(strstr(err, "unknown axis 'nosuch'"));
  assert_non_null(strstr(err, "n (fake/model)"));
  assert_true(kiln_bench_suite_has_axis(&s, "mode"));
  assert_false(kiln_bench_suite_has_axis(&s, "nosuch"));
}

static void parse_int_suffixes(void **state) {
  (void)state;
  int64_t v;
  assert_int_equal(kiln_bench_parse_int("4096", &v), 0);
  assert_true(v == 4096);
  assert_int_equal(kiln_bench_parse_int("4K", &v), 0);
  assert_true(v == 4096);
  assert_int_equal(kiln_bench_parse_int("4KiB", &v), 0);
  assert_true(v == 4096);
  assert_int_equal(kiln_bench_parse_int("64MiB", &v), 0);
  assert_true(v == 64ll << 20);
  assert_int_equal(kiln_bench_parse_int("1G", &v), 0);
  assert_true(v == 1ll << 30);
  assert_int_equal(kiln_bench_parse_int("-3", &v), 0);
  assert_true(v == -3);
  assert_int_equal(kiln_bench_parse_int("4 K", &v), -1);
  assert_int_equal(kiln_bench_parse_int("K", &v), -1);
  assert_int_equal(kiln_bench_parse_int("4KB2", &v), -1);
  assert_int_equal(kiln_bench_parse_int("99999999999999999999", &v), -1);
  assert_int_equal(kiln_bench_parse_int("", &v), -1);
}

/* work_axis: GB/s from the axis value; 1 ns per byte is 1 GB/s at every size. */
static void work_axis_rates(void **state) {
  (void)state;
  clk.m = LINEAR;
  kiln_bench_case c = make_case();
  c.unit = "GB/s";
  c.better = KILN_BENCH_HIGHER;
  c.work_axis = "n";
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  kiln_bench_report *rep;
  assert_int_equal(kiln_bench_report_create(&rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_run_suite(&cfg, &s, rep), KILN_SUCCESS);
  for (size_t i = 0; i < kiln_bench_report_count(rep); i++) {
    const kiln_bench_result *r = kiln_bench_report_get(rep, i);
    assert_true(fabs(r->kiln.median - 1.0) < 1e-12);
    assert_true(fabs(r->baseline.median - 2.0) < 1e-12);
    assert_true(fabs(r->ratio - 0.5) < 1e-12); /* kiln/baseline for rates */
    assert_true(r->work_per_op == (double)sizes[i]);
  }
  /* the series still fits time per op: slope 1 */
  assert_true(fabs(kiln_bench_report_series_get(rep, 0)->kiln_fit.slope - 1.0) < 1e-9);
  kiln_bench_report_destroy(rep);
}

/* Pairs alternate their order: kiln first, then baseline first, ... */
static void pairs_alternate(void **state) {
  (void)state;
  clk.m = LINEAR;
  kiln_bench_case c = make_case();
  c.axis_count = 0; /* n = 1 by default */
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  cfg.target_rel_ci = 1e-12;
  cfg.max_samples = 20;
  cfg.min_samples = 20;
  kiln_bench_result r;
  assert_int_equal(kiln_bench_run_case(&cfg, &s, &c, &r), KILN_SUCCESS);
  assert_int_equal(r.kiln.samples, 20);
  /* every pair holds one call of each side; pair p (from the start of each phase)
   * starts with the baseline when p is odd: the last 20 pairs are the measurement */
  assert_true(clk.ncalls % 2 == 0);
  size_t pairs = clk.ncalls / 2, kiln_first = 0, base_first = 0;
  for (size_t p = 0; p < pairs; p++) {
    char a = clk.calls[2 * p], b = clk.calls[2 * p + 1];
    assert_true(a != b);
    kiln_first += a == 'k';
    base_first += a == 'b';
  }
  for (size_t p = pairs - 20; p < pairs; p++)
    assert_int_equal(clk.calls[2 * p], (p - (pairs - 20)) % 2 ? 'b' : 'k');
  assert_true(kiln_first > 0 && base_first > 0);
  kiln_bench_result_clear(&r);
}

/* Device timing is used when both sides have it, and said; otherwise the host clock. */
static void device_timing(void **state) {
  (void)state;
  clk.m = LINEAR;
  kiln_bench_case c = make_case();
  c.axis_count = 0;
  c.run_timed = kiln_timed;
  c.baseline_run_timed = base_timed;
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  kiln_bench_result r;
  assert_int_equal(kiln_bench_run_case(&cfg, &s, &c, &r), KILN_SUCCESS);
  assert_true(r.device_timing);
  assert_true(r.kiln.median == 0.5); /* the device's half of 1 ns */
  assert_true(r.baseline.median == 0.25);
  kiln_bench_result_clear(&r);
  c.baseline_run_timed = NULL; /* one side without: host clock for both */
  assert_int_equal(kiln_bench_run_case(&cfg, &s, &c, &r), KILN_SUCCESS);
  assert_false(r.device_timing);
  assert_true(r.kiln.median == 1.0);
  assert_true(r.baseline.median == 0.5);
  kiln_bench_result_clear(&r);
}

static void outliers_counted(void **state) {
  (void)state;
  double v[21];
  for (int i = 0; i < 20; i++)
    v[i] = 10.0 + (double)(i % 5) * 0.1;
  v[20] = 100.0;
  kiln_bench_stats s;
  kiln_bench_stats_compute(v, 21, &s);
  assert_int_equal(s.outliers, 1);
  assert_true(s.max == 100.0); /* kept */
  assert_true(s.p50 == s.median);
  assert_true(s.p5 <= s.median && s.median <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.max);
  double w[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  kiln_bench_stats_compute(w, 10, &s);
  assert_int_equal(s.outliers, 0);
  /* numpy.percentile(range(1, 11), [5, 99]) == [1.45, 9.91] */
  assert_true(fabs(s.p5 - 1.45) < 1e-12 && fabs(s.p99 - 9.91) < 1e-12);
}

static void on_tick(const kiln_bench_tick *t, void *user) {
  (void)user;
  clk.ticks++;
  clk.tick_total = t->total;
  assert_string_equal(t->suite, "fake");
  assert_true(t->index < t->total);
  assert_true(t->elapsed_ns <= t->estimate_ns);
  if (strcmp(t->phase, "measuring") == 0)
    clk.tick_measuring++;
}

static void progress_ticks(void **state) {
  (void)state;
  clk.m = LINEAR;
  kiln_bench_case c = make_case();
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  cfg.tick = on_tick;
  kiln_bench_report *rep;
  assert_int_equal(kiln_bench_report_create(&rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_run_suite(&cfg, &s, rep), KILN_SUCCESS);
  assert_int_equal(clk.tick_total, 6);
  assert_true(clk.tick_measuring >= 6);
  assert_true(clk.ticks > clk.tick_measuring);
  kiln_bench_report_destroy(rep);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(linear_fits_slope_1, reset),
      cmocka_unit_test_setup(quadratic_fits_slope_2, reset),
      cmocka_unit_test_setup(knee_finds_breakpoint, reset),
      cmocka_unit_test_setup(fit_function, reset),
      cmocka_unit_test_setup(axes_and_overrides, reset),
      cmocka_unit_test_setup(parse_int_suffixes, reset),
      cmocka_unit_test_setup(work_axis_rates, reset),
      cmocka_unit_test_setup(pairs_alternate, reset),
      cmocka_unit_test_setup(device_timing, reset),
      cmocka_unit_test_setup(outliers_counted, reset),
      cmocka_unit_test_setup(progress_ticks, reset),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
