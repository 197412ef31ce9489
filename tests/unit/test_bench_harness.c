/* SPDX-License-Identifier: MIT */
/* The benchmark harness (src/bench/harness.c, report.c) driven by an injected fake
 * clock that advances only inside the case functions, a fixed amount per operation:
 * every figure is then exact, so the 2x-slowdown self-test asserts a ratio of 0.5
 * without ever depending on real timing. Host-only suites: no device is needed. */
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

typedef struct fake {
  uint64_t now_ns;
  uint64_t kiln_ns_per_op; /* what one kiln-side op costs */
  uint64_t base_ns_per_op; /* what one baseline op costs */
  uint64_t jitter_seed;    /* 0: none; else up to +-10% per batch, seeded */
  unsigned kiln_calls, base_calls, setups, teardowns;
  int fail_after; /* kiln run fails with KILN_ERROR_BACKEND after N calls */
} fake;

static fake clk;

static uint64_t fake_now(void *user) {
  return ((fake *)user)->now_ns;
}

static uint64_t jitter(uint64_t cost) {
  if (clk.jitter_seed == 0)
    return cost;
  uint64_t z = (clk.jitter_seed += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z ^= z >> 31;
  return cost - cost / 10 + z % (cost / 5 + 1);
}

static int kiln_side(void *state, uint64_t iters) {
  assert_ptr_equal(state, &clk);
  clk.kiln_calls++;
  if (clk.fail_after > 0 && clk.kiln_calls > (unsigned)clk.fail_after)
    return KILN_ERROR_BACKEND;
  clk.now_ns += jitter(clk.kiln_ns_per_op * iters);
  return 0;
}

static int base_side(void *state, uint64_t iters) {
  assert_ptr_equal(state, &clk);
  clk.base_calls++;
  clk.now_ns += jitter(clk.base_ns_per_op * iters);
  return 0;
}

static int kiln_setup(const kiln_bench_env *env, void **state) {
  assert_null(env->device); /* host-only suite */
  clk.setups++;
  *state = &clk;
  return 0;
}
static int base_setup(void *arg, void **state) {
  (void)arg;
  clk.setups++;
  *state = &clk;
  return 0;
}
static void teardown(void *state) {
  assert_ptr_equal(state, &clk);
  clk.teardowns++;
}

static const kiln_bench_param params[] = {{"bytes", NULL, 4096}, {"mode", "fake", 0}};

static kiln_bench_case make_case(const char *unit, kiln_bench_better better, double work) {
  kiln_bench_case c;
  memset(&c, 0, sizeof c);
  c.name = "fake_op";
  c.params = params;
  c.param_count = 2;
  c.unit = unit;
  c.better = better;
  c.work_per_op = work;
  c.setup = kiln_setup;
  c.run = kiln_side;
  c.teardown = teardown;
  c.baseline_name = "fake-baseline";
  c.baseline_setup = base_setup;
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
  return cfg;
}

static int reset(void **state) {
  (void)state;
  memset(&clk, 0, sizeof clk);
  clk.now_ns = 1000000000ull;
  clk.kiln_ns_per_op = 1000;
  clk.base_ns_per_op = 1000;
  return 0;
}

/* Equal work; the kiln side run twice per batch must read as half as fast. */
static void slowdown_2x_ratio_half(void **state) {
  (void)state;
  kiln_bench_case c = make_case("us", KILN_BENCH_LOWER, 0);
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  cfg.kiln_slowdown = 2;
  kiln_bench_result r;
  assert_int_equal(kiln_bench_run_case(&cfg, &s, &c, &r), KILN_SUCCESS);
  assert_int_equal(r.status, 0);
  assert_true(r.has_baseline);
  assert_true(r.kiln.median == 2.0); /* 2 x 1000 ns = 2 us per op */
  assert_true(r.baseline.median == 1.0);
  assert_true(r.ratio == 0.5);
  assert_true(r.ratio_lo == 0.5 && r.ratio_hi == 0.5);
  assert_true(r.kiln.ci95_lo == 2.0 && r.kiln.ci95_hi == 2.0);
  /* a zero-width interval meets the target at once: min_samples (quick: 5) */
  assert_int_equal(r.kiln.samples, 5);
  assert_int_equal(r.baseline.samples, 5);
  /* calibration: one baseline batch lasts at least min_batch_ns (1 ms) */
  assert_true(r.batch_size * 1000 >= 1000000);
  assert_string_equal(r.device_backend, "host");
  assert_int_equal(clk.kiln_calls, 2 * clk.base_calls); /* the kiln side ran twice */
  assert_int_equal(clk.setups, 2);
  assert_int_equal(clk.teardowns, 2);
  kiln_bench_result_clear(&r);
}

/* For rates (higher is better) the ratio is kiln/baseline: still 0.5 when slowed. */
static void slowdown_2x_rate_ratio_half(void **state) {
  (void)state;
  kiln_bench_case c = make_case("GB/s", KILN_BENCH_HIGHER, 1000.0); /* 1000 B per op */
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  cfg.kiln_slowdown = 2;
  kiln_bench_result r;
  assert_int_equal(kiln_bench_run_case(&cfg, &s, &c, &r), KILN_SUCCESS);
  assert_true(fabs(r.baseline.median - 1.0) < 1e-12); /* 1000 B / 1000 ns = 1 GB/s */
  assert_true(fabs(r.kiln.median - 0.5) < 1e-12);
  assert_true(fabs(r.ratio - 0.5) < 1e-12);
  assert_true(fabs(r.ratio_lo - 0.5) < 1e-12 && fabs(r.ratio_hi - 0.5) < 1e-12);
  kiln_bench_result_clear(&r);
}

/* self_test: the baseline becomes the kiln function itself; slowdown defaults to 2. */
static void self_test_mode(void **state) {
  (void)state;
  kiln_bench_case c = make_case("ns", KILN_BENCH_LOWER, 0);
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  cfg.self_test = 1;
  kiln_bench_result r;
  assert_int_equal(kiln_bench_run_case(&cfg, &s, &c, &r), KILN_SUCCESS);
  assert_string_equal(r.baseline_name, "kiln-self");
  assert_true(r.ratio == 0.5);
  assert_int_equal(clk.base_calls, 0); /* the real baseline never ran */
  assert_int_equal(clk.setups, 1);
  assert_null(kiln_bench_goal_verdict(&r));
  kiln_bench_result_clear(&r);
}

/* kiln faster than the baseline: ratio > 1, and the goal verdict follows the CI. */
static void faster_kiln_and_goal(void **state) {
  (void)state;
  clk.base_ns_per_op = 3000;
  kiln_bench_case c = make_case("ns", KILN_BENCH_LOWER, 0);
  c.goal_ratio = 1.0;
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  kiln_bench_result r;
  assert_int_equal(kiln_bench_run_case(&cfg, &s, &c, &r), KILN_SUCCESS);
  assert_true(r.ratio == 3.0);
  assert_string_equal(kiln_bench_goal_verdict(&r), "met");
  c.goal_ratio = 4.0;
  assert_string_equal(kiln_bench_goal_verdict(&r), "missed");
  kiln_bench_result_clear(&r);
}

/* Noise keeps the interval wide: the run ends on its (fake) time budget, and the
 * kiln and baseline batches alternate. */
static void noisy_run_stops_on_budget(void **state) {
  (void)state;
  clk.jitter_seed = 12345;
  kiln_bench_case c = make_case("ns", KILN_BENCH_LOWER, 0);
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  cfg.target_rel_ci = 1e-9;
  cfg.budget_ns = 50000000; /* 50 ms of fake time */
  kiln_bench_result r;
  assert_int_equal(kiln_bench_run_case(&cfg, &s, &c, &r), KILN_SUCCESS);
  /* a batch lasts 1-2 ms of fake time, a pair 2-4 ms: 12-25 pairs, far under
   * max_samples (2000) */
  assert_in_range(r.kiln.samples, 10, 30);
  assert_int_equal(r.kiln.samples, r.baseline.samples);
  assert_true(r.kiln.min < r.kiln.median && r.kiln.median < r.kiln.max);
  assert_true(r.kiln.ci95_lo <= r.kiln.median && r.kiln.median <= r.kiln.ci95_hi);
  assert_true(r.ratio_lo <= r.ratio && r.ratio <= r.ratio_hi);
  assert_true(r.ratio > 0.8 && r.ratio < 1.25);
  kiln_bench_result_clear(&r);
}

/* A failing kiln function ends the case with its status and a message naming it; the
 * set-ups are torn down; the JSON leaves the failed case out. */
static void failing_case_reported(void **state) {
  (void)state;
  clk.fail_after = 3;
  kiln_bench_case c = make_case("us", KILN_BENCH_LOWER, 0);
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  kiln_bench_report *rep = NULL;
  assert_int_equal(kiln_bench_report_create(&rep), KILN_SUCCESS);
  assert_int_not_equal(kiln_bench_run_suite(&cfg, &s, rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_report_count(rep), 1);
  const kiln_bench_result *r = kiln_bench_report_get(rep, 0);
  assert_int_equal(r->status, KILN_ERROR_BACKEND);
  assert_non_null(strstr(r->message, "fake/fake_op"));
  assert_non_null(strstr(r->message, "KILN_ERROR_BACKEND"));
  assert_int_equal(clk.teardowns, 2);
  char buf[8192] = {0};
  FILE *f = tmpfile();
  assert_non_null(f);
  assert_int_equal(kiln_bench_report_write_json(rep, f), KILN_SUCCESS);
  rewind(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  assert_true(n > 0);
  assert_non_null(strstr(buf, "\"results\": []"));
  kiln_bench_report_destroy(rep);
}

/* A case without a baseline: baseline, ratio and ratio_ci95 are null in the JSON. */
static void json_of_a_run(void **state) {
  (void)state;
  kiln_bench_case c[2] = {make_case("us", KILN_BENCH_LOWER, 0),
                          make_case("us", KILN_BENCH_LOWER, 0)};
  c[1].name = "no_baseline";
  c[1].baseline_name = NULL;
  c[1].baseline_run = NULL;
  kiln_bench_suite s = make_suite(c, 2);
  kiln_bench_config cfg = make_config();
  cfg.kiln_slowdown = 2;
  kiln_bench_report *rep = NULL;
  assert_int_equal(kiln_bench_report_create(&rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_run_suite(&cfg, &s, rep), KILN_SUCCESS);
  char *buf = calloc(1, 65536);
  assert_non_null(buf);
  FILE *f = tmpfile();
  assert_non_null(f);
  assert_int_equal(kiln_bench_report_write_json(rep, f), KILN_SUCCESS);
  rewind(f);
  size_t n = fread(buf, 1, 65535, f);
  fclose(f);
  assert_true(n > 0 && n < 65535);
  const char *expect[] = {"\"kiln_version\": \"",
                          "\"timing_note\": \"",
                          "\"hostname\": \"",
                          "\"cores\": ",
                          "\"suite\": \"fake\"",
                          "\"name\": \"fake_op\"",
                          "\"backend\": \"host\"",
                          "\"bytes\": 4096",
                          "\"mode\": \"fake\"",
                          "\"unit\": \"us\"",
                          "\"better\": \"lower\"",
                          "\"timing\": \"host\"",
                          "\"median\": 2,",
                          "\"name\": \"fake-baseline\"",
                          "\"ratio\": 0.5,",
                          "\"ratio_ci95\": [\n        0.5,\n        0.5\n      ]",
                          "\"name\": \"no_baseline\"",
                          "\"baseline\": null",
                          "\"ratio\": null",
                          "\"ratio_ci95\": null",
                          "\"samples\": 5"};
  for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
    if (strstr(buf, expect[i]) == NULL)
      fail_msg("missing %s in:\n%s", expect[i], buf);
  }
  free(buf);
  kiln_bench_report_destroy(rep);
}

/* Bad cases are refused with a message, before any set-up. */
static void bad_case_refused(void **state) {
  (void)state;
  kiln_bench_case c = make_case("parsecs", KILN_BENCH_LOWER, 0);
  kiln_bench_suite s = make_suite(&c, 1);
  kiln_bench_config cfg = make_config();
  kiln_bench_result r;
  assert_int_equal(kiln_bench_run_case(&cfg, &s, &c, &r), KILN_ERROR_INVALID_ARGUMENT);
  assert_non_null(strstr(r.message, "parsecs"));
  assert_int_equal(clk.setups, 0);
  c = make_case("GB/s", KILN_BENCH_HIGHER, 0); /* a rate without work_per_op */
  assert_int_equal(kiln_bench_run_case(&cfg, &s, &c, &r), KILN_ERROR_INVALID_ARGUMENT);
  kiln_bench_result_clear(&r);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(slowdown_2x_ratio_half, reset),
      cmocka_unit_test_setup(slowdown_2x_rate_ratio_half, reset),
      cmocka_unit_test_setup(self_test_mode, reset),
      cmocka_unit_test_setup(faster_kiln_and_goal, reset),
      cmocka_unit_test_setup(noisy_run_stops_on_budget, reset),
      cmocka_unit_test_setup(failing_case_reported, reset),
      cmocka_unit_test_setup(json_of_a_run, reset),
      cmocka_unit_test_setup(bad_case_refused, reset),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
