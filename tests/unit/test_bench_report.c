/* SPDX-License-Identifier: MIT */
/* The benchmark library's writers and `compare`, on reports made with a fake clock:
 * the JSON reads back with jansson with every field; CSV, Markdown, LaTeX and HTML are
 * checked by tests/bench/check_reports.py (CSV columns, table rows, balanced LaTeX,
 * HTML parsing as XML with one scaling plot per series and one point per run), with
 * parameter values full of characters each format must escape; compare flags a 10%
 * slowdown as a regression, calls independent runs of one distribution the same, and
 * refuses malformed, foreign and mismatched documents with a clear message. */
/* kiln-test-labels: unit */
#define _GNU_SOURCE 1
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "kiln.h"
#include "kiln/bench.h"

#ifndef KILN_BENCH_CHECKER
#error "tests/bench.cmake defines KILN_BENCH_CHECKER (tests/bench/check_reports.py)"
#endif

typedef struct fake {
  uint64_t now_ns;
  uint64_t kiln_ns_per_op, base_ns_per_op;
  uint64_t seed; /* jitter: up to +-10% per batch */
} fake;

static fake clk;
static char dir[64];

static uint64_t fake_now(void *user) {
  return ((fake *)user)->now_ns;
}

static uint64_t jitter(uint64_t cost) {
  uint64_t z = (clk.seed += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return cost - cost / 10 + z % (cost / 5 + 1);
}

typedef struct st {
  int64_t n;
} st;

static int setup(const kiln_bench_env *env, void **state) {
  st *s = malloc(sizeof *s);
  if (s == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  s->n = kiln_bench_env_num(env, "n", 1);
  *state = s;
  return 0;
}
static void teardown(void *s) {
  free(s);
}
static int kiln_side(void *p, uint64_t iters) {
  clk.now_ns += jitter(clk.kiln_ns_per_op * (uint64_t)((st *)p)->n * iters);
  return 0;
}
static int base_side(void *p, uint64_t iters) {
  clk.now_ns += jitter(clk.base_ns_per_op * (uint64_t)((st *)p)->n * iters);
  return 0;
}

static const int64_t five[] = {1, 2, 4, 8, 16};
static const int64_t three[] = {1, 10, 100};
/* every character some format must escape or quote */
static const char *const nasty[] = {"a&b<c>\"d'", "p|q,r_%{s}$#~^\\t"};
static const kiln_bench_axis ax_five[] = {{"n", five, NULL, 5, 1}};
static const kiln_bench_axis ax_modes[] = {{"n", three, NULL, 3, 1}, {"mode", NULL, nasty, 2, 0}};

static kiln_bench_case base_case(const char *name) {
  kiln_bench_case c;
  memset(&c, 0, sizeof c);
  c.name = name;
  c.description = "fake <case> & co";
  c.unit = "us";
  c.better = KILN_BENCH_LOWER;
  c.setup = setup;
  c.run = kiln_side;
  c.teardown = teardown;
  c.baseline_name = "fake-base";
  c.baseline_setup_env = setup;
  c.baseline_run = base_side;
  c.baseline_teardown = teardown;
  return c;
}

static kiln_bench_config config(void) {
  kiln_bench_config cfg = KILN_BENCH_CONFIG_INIT;
  cfg.quick = 1;
  cfg.clock = fake_now;
  cfg.clock_user = &clk;
  cfg.idle_gap_ns = -1;
  return cfg;
}

/* 5 + 6 + 1 results; series: scaled (5 points), modes x2 (3 points each) */
static kiln_bench_report *make_report(void) {
  static kiln_bench_case cases[3];
  cases[0] = base_case("scaled");
  cases[0].axes = ax_five;
  cases[0].axis_count = 1;
  cases[1] = base_case("modes");
  cases[1].axes = ax_modes;
  cases[1].axis_count = 2;
  cases[1].baseline_name = NULL;
  cases[1].baseline_run = NULL;
  cases[2] = base_case("single");
  cases[2].unit = "GB/s";
  cases[2].better = KILN_BENCH_HIGHER;
  cases[2].work_per_op = 1000.0;
  cases[2].goal_ratio = 0.9;
  static kiln_bench_suite suite;
  memset(&suite, 0, sizeof suite);
  suite.name = "fake";
  suite.description = "a fake suite with <markup> & \"quotes\"";
  suite.host_only = 1;
  suite.cases = cases;
  suite.case_count = 3;
  kiln_bench_config cfg = config();
  kiln_bench_report *rep = NULL;
  assert_int_equal(kiln_bench_report_create(&rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_run_suite(&cfg, &suite, rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_report_count(rep), 12);
  return rep;
}

static int reset(void **state) {
  (void)state;
  memset(&clk, 0, sizeof clk);
  clk.now_ns = 1000000000ull;
  clk.kiln_ns_per_op = 1000;
  clk.base_ns_per_op = 800;
  clk.seed = 1;
  snprintf(dir, sizeof dir, "/tmp/kiln-bench-test-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int cleanup(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *path(const char *name) {
  static char buf[4][128];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, 128, "%s/%s", dir, name);
  return p;
}

static void write_file(const kiln_bench_report *rep, const char *file,
                       kiln_status (*fn)(const kiln_bench_report *, FILE *)) {
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  assert_int_equal(fn(rep, f), KILN_SUCCESS);
  assert_int_equal(fclose(f), 0);
}

static int run_checker(const char *args) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s", KILN_BENCH_CHECKER, args);
  int rc = system(cmd);
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static void json_reads_back(void **state) {
  (void)state;
  kiln_bench_report *rep = make_report();
  write_file(rep, path("r.json"), kiln_bench_report_write_json);
  json_error_t je;
  json_t *doc = json_load_file(path("r.json"), 0, &je);
  if (doc == NULL)
    fail_msg("JSON does not read back: line %d: %s", je.line, je.text);
  assert_true(json_is_string(json_object_get(doc, "kiln_version")));
  assert_true(json_is_string(json_object_get(doc, "timing_note")));
  json_t *results = json_object_get(doc, "results");
  assert_int_equal(json_array_size(results), 12);
  const char *stats[] = {"median", "mean", "min", "max", "p5", "p50", "p95", "p99", "stddev"};
  size_t i;
  json_t *r;
  json_array_foreach(results, i, r) {
    json_t *k = json_object_get(r, "kiln");
    for (size_t s = 0; s < sizeof stats / sizeof stats[0]; s++)
      if (!json_is_number(json_object_get(k, stats[s])))
        fail_msg("results[%zu].kiln.%s is not a number", i, stats[s]);
    assert_true(json_is_integer(json_object_get(k, "outliers")));
    assert_true(json_is_integer(json_object_get(k, "samples")));
    assert_int_equal(json_array_size(json_object_get(k, "ci95")), 2);
    assert_string_equal(json_string_value(json_object_get(r, "timing")), "host");
    const kiln_bench_result *res = kiln_bench_report_get(rep, i);
    assert_true(json_number_value(json_object_get(k, "median")) == res->kiln.median);
    assert_true(json_number_value(json_object_get(k, "p99")) == res->kiln.p99);
  }
  /* canonical params: the string value survives every escape */
  json_t *modes = json_array_get(results, 6);
  assert_string_equal(json_string_value(json_object_get(modes, "name")), "modes");
  json_t *params = json_object_get(modes, "params");
  assert_int_equal(json_object_size(params), 2);
  /* (not assert_string_equal: cmocka formats its message again, and the value has '%') */
  assert_true(strcmp(json_string_value(json_object_get(params, "mode")), nasty[1]) == 0);
  assert_int_equal(json_integer_value(json_object_get(params, "n")), 1);
  assert_true(json_is_null(json_object_get(modes, "baseline")));
  json_t *single = json_array_get(results, 11);
  assert_true(json_number_value(json_object_get(single, "work_per_op")) == 1000.0);
  assert_true(json_is_number(json_object_get(single, "ratio")));
  json_t *scaling = json_object_get(doc, "scaling");
  assert_int_equal(json_array_size(scaling), 3);
  size_t want[] = {5, 3, 3};
  for (size_t s = 0; s < 3; s++) {
    json_t *ser = json_array_get(scaling, s);
    assert_int_equal(json_array_size(json_object_get(ser, "n")), want[s]);
    assert_int_equal(json_array_size(json_object_get(ser, "kiln_ns")), want[s]);
    json_t *fit = json_object_get(ser, "kiln_fit");
    assert_true(fabs(json_number_value(json_object_get(fit, "slope")) - 1.0) < 0.15);
  }
  assert_true(json_is_null(json_object_get(json_array_get(scaling, 1), "baseline_ns")));
  json_decref(doc);
  kiln_bench_report_destroy(rep);
}

static void html_parses_with_plots(void **state) {
  (void)state;
  kiln_bench_report *rep = make_report();
  write_file(rep, path("r.html"), kiln_bench_report_write_html);
  write_file(rep, path("r.json"), kiln_bench_report_write_json);
  char args[512];
  snprintf(args, sizeof args, "--html '%s' --points 5,3,3 --json '%s'", path("r.html"),
           path("r.json"));
  assert_int_equal(run_checker(args), 0);
  /* and the raw text has no unescaped markup from the values */
  FILE *f = fopen(path("r.html"), "r");
  assert_non_null(f);
  static char text[1 << 20];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  assert_null(strstr(text, "<markup>"));
  assert_non_null(strstr(text, "a&amp;b&lt;c&gt;&quot;d&#39;"));
  assert_null(strstr(text, "<script"));
  kiln_bench_report_destroy(rep);
}

static void csv_md_latex_valid(void **state) {
  (void)state;
  kiln_bench_report *rep = make_report();
  write_file(rep, path("r.csv"), kiln_bench_report_write_csv);
  write_file(rep, path("r.md"), kiln_bench_report_write_markdown);
  write_file(rep, path("r.tex"), kiln_bench_report_write_latex);
  char args[512];
  snprintf(args, sizeof args, "--csv '%s' --rows 12 --md '%s' --tex '%s'", path("r.csv"),
           path("r.md"), path("r.tex"));
  assert_int_equal(run_checker(args), 0);
  /* the checker itself catches a broken file */
  FILE *f = fopen(path("bad.tex"), "w");
  assert_non_null(f);
  fputs("\\documentclass{article}\\begin{document}\\begin{tabular}{l} a_{b \\\\\n"
        "\\end{document}\n",
        f);
  fclose(f);
  snprintf(args, sizeof args, "--tex '%s' >/dev/null", path("bad.tex"));
  assert_int_equal(run_checker(args), 1);
  kiln_bench_report_destroy(rep);
}

/* ---- compare ---- */

static const kiln_bench_case *cmp_cases(void) {
  static kiln_bench_case c[2];
  c[0] = base_case("lat");
  c[0].baseline_name = NULL;
  c[0].baseline_run = NULL;
  c[1] = base_case("bw");
  c[1].unit = "GB/s";
  c[1].better = KILN_BENCH_HIGHER;
  c[1].work_per_op = 4096;
  c[1].baseline_name = NULL;
  c[1].baseline_run = NULL;
  return c;
}

/* One run of both cases with the kiln side at `cost` ns per op, jitter seed `seed`,
 * exactly 200 samples each; written to `file`. */
static void run_to(const char *file, uint64_t cost, uint64_t seed, const char *suite_name) {
  kiln_bench_suite s;
  memset(&s, 0, sizeof s);
  s.name = suite_name;
  s.host_only = 1;
  s.cases = cmp_cases();
  s.case_count = 2;
  clk.kiln_ns_per_op = cost;
  clk.seed = seed;
  kiln_bench_config cfg = config();
  cfg.min_samples = cfg.max_samples = 200;
  cfg.target_rel_ci = 1e-12;
  kiln_bench_report *rep = NULL;
  assert_int_equal(kiln_bench_report_create(&rep), KILN_SUCCESS);
  assert_int_equal(kiln_bench_run_suite(&cfg, &s, rep), KILN_SUCCESS);
  write_file(rep, file, kiln_bench_report_write_json);
  kiln_bench_report_destroy(rep);
}

static void compare_detects_10pct_slowdown(void **state) {
  (void)state;
  run_to(path("old.json"), 1000, 1, "fake");
  for (uint64_t seed = 2; seed < 12; seed++) {
    run_to(path("new.json"), 1100, seed * 7919, "fake");
    kiln_bench_compare_summary sum;
    char err[512];
    FILE *table = seed == 2 ? stdout : NULL;
    assert_int_equal(kiln_bench_compare_files(path("old.json"), path("new.json"), 0.05, table, &sum,
                                              err, sizeof err),
                     KILN_SUCCESS);
    assert_int_equal(sum.matched, 2);
    assert_int_equal(sum.slower, 2); /* latency up and bandwidth down: both slower */
    assert_int_equal(sum.regressions, 2);
    assert_true(sum.worst_slowdown > 0.05 && sum.worst_slowdown < 0.16);
    /* a threshold above the slowdown: still slower, no regression */
    assert_int_equal(kiln_bench_compare_files(path("old.json"), path("new.json"), 0.25, NULL, &sum,
                                              err, sizeof err),
                     KILN_SUCCESS);
    assert_int_equal(sum.slower, 2);
    assert_int_equal(sum.regressions, 0);
    /* the other way round it is faster */
    assert_int_equal(kiln_bench_compare_files(path("new.json"), path("old.json"), 0.05, NULL, &sum,
                                              err, sizeof err),
                     KILN_SUCCESS);
    assert_int_equal(sum.faster, 2);
    assert_int_equal(sum.regressions, 0);
  }
}

static void compare_ignores_same_distribution(void **state) {
  (void)state;
  run_to(path("old.json"), 1000, 1, "fake");
  /* the same samples in another order: identical statistics */
  run_to(path("again.json"), 1000, 1, "fake");
  kiln_bench_compare_summary sum;
  char err[512];
  assert_int_equal(kiln_bench_compare_files(path("old.json"), path("again.json"), 0, NULL, &sum,
                                            err, sizeof err),
                   KILN_SUCCESS);
  assert_int_equal(sum.same, 2);
  /* independent draws of the same distribution (reshuffled jitter): same, every time */
  for (uint64_t seed = 2; seed < 12; seed++) {
    run_to(path("new.json"), 1000, seed * 7919, "fake");
    assert_int_equal(kiln_bench_compare_files(path("old.json"), path("new.json"), 0, NULL, &sum,
                                              err, sizeof err),
                     KILN_SUCCESS);
    if (sum.same != 2)
      fail_msg("seed %llu: %zu same, %zu slower, %zu faster", (unsigned long long)seed, sum.same,
               sum.slower, sum.faster);
    assert_int_equal(sum.regressions, 0);
  }
}

static void put(const char *file, const char *text) {
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void expect_bad(const char *a, const char *b, const char *needle) {
  kiln_bench_compare_summary sum;
  char err[1024];
  assert_int_equal(kiln_bench_compare_files(a, b, 0, NULL, &sum, err, sizeof err),
                   KILN_ERROR_INVALID_ARGUMENT);
  if (strstr(err, needle) == NULL)
    fail_msg("'%s' not in the error '%s'", needle, err);
}

static void compare_refuses_bad_input(void **state) {
  (void)state;
  run_to(path("good.json"), 1000, 1, "fake");
  run_to(path("other.json"), 1000, 1, "elsewhere");
  put(path("trunc.json"), "{\"kiln_version\": \"0.1.0\", \"results\": [");
  put(path("foreign.json"), "{\"name\": \"not ours\", \"items\": []}");
  put(path("nomedian.json"),
      "{\"kiln_version\": \"0.1.0\", \"results\": [{\"suite\": \"fake\", \"name\": \"lat\", "
      "\"unit\": \"us\", \"better\": \"lower\", \"params\": {}, \"device\": {\"backend\": "
      "\"host\", \"index\": 0, \"name\": \"x\"}, \"kiln\": {\"ci95\": [1, 2]}}]}");
  expect_bad(path("good.json"), path("trunc.json"), "malformed JSON at line 1");
  expect_bad(path("trunc.json"), path("good.json"), "trunc.json");
  expect_bad(path("good.json"), path("foreign.json"), "not a kiln bench document");
  expect_bad(path("good.json"), path("nomedian.json"), "results[0]");
  expect_bad(path("good.json"), path("other.json"), "no result in common");
  expect_bad(path("good.json"), path("missing.json"), "missing.json");
  /* the same result with another unit cannot be compared */
  FILE *f = fopen(path("good.json"), "r");
  assert_non_null(f);
  static char text[1 << 16];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char *unit = strstr(text, "\"unit\": \"us\"");
  assert_non_null(unit);
  memcpy(unit, "\"unit\": \"ms\"", 12);
  put(path("unit.json"), text);
  expect_bad(path("good.json"), path("unit.json"), "unit changed");
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(json_reads_back, reset, cleanup),
      cmocka_unit_test_setup_teardown(html_parses_with_plots, reset, cleanup),
      cmocka_unit_test_setup_teardown(csv_md_latex_valid, reset, cleanup),
      cmocka_unit_test_setup_teardown(compare_detects_10pct_slowdown, reset, cleanup),
      cmocka_unit_test_setup_teardown(compare_ignores_same_distribution, reset, cleanup),
      cmocka_unit_test_setup_teardown(compare_refuses_bad_input, reset, cleanup),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
