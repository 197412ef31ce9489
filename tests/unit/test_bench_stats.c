/* SPDX-License-Identifier: MIT */
/* The benchmark library's statistics (src/bench/stats.c) on samples whose answers are
 * known: percentiles as numpy's default, the sample standard deviation, the binomial
 * interval of the median against published order-statistic ranks and its coverage
 * over seeded trials, the bootstrap ratio interval's determinism, unit conversion. */
/* kiln-test-labels: unit */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "kiln/bench.h"

static void median_and_percentiles(void **state) {
  (void)state;
  double odd[] = {5, 1, 4, 2, 3};
  kiln_bench_stats s;
  kiln_bench_stats_compute(odd, 5, &s);
  assert_true(s.median == 3.0);
  assert_true(s.min == 1.0 && s.max == 5.0 && s.mean == 3.0);
  assert_int_equal(s.samples, 5);
  /* sorted in place */
  for (int i = 0; i < 5; i++)
    assert_true(odd[i] == (double)(i + 1));

  double even[] = {4, 1, 3, 2};
  kiln_bench_stats_compute(even, 4, &s);
  assert_true(s.median == 2.5);

  double v[20];
  for (int i = 0; i < 20; i++)
    v[i] = (double)(20 - i); /* 20..1 */
  kiln_bench_stats_compute(v, 20, &s);
  /* numpy.percentile(range(1, 21), 95) == 19.05 */
  assert_true(fabs(s.p95 - 19.05) < 1e-12);
  assert_true(fabs(kiln_bench_percentile(v, 20, 0.25) - 5.75) < 1e-12);
  assert_true(kiln_bench_percentile(v, 20, 0.0) == 1.0);
  assert_true(kiln_bench_percentile(v, 20, 1.0) == 20.0);

  double one[] = {7};
  kiln_bench_stats_compute(one, 1, &s);
  assert_true(s.median == 7.0 && s.p95 == 7.0 && s.stddev == 0.0);
  assert_true(s.ci95_lo == 7.0 && s.ci95_hi == 7.0);

  kiln_bench_stats_compute(NULL, 0, &s);
  assert_int_equal(s.samples, 0);
}

static void sample_stddev(void **state) {
  (void)state;
  double v[] = {2, 4, 4, 4, 5, 5, 7, 9};
  kiln_bench_stats s;
  kiln_bench_stats_compute(v, 8, &s);
  assert_true(fabs(s.mean - 5.0) < 1e-12);
  assert_true(fabs(s.stddev - sqrt(32.0 / 7.0)) < 1e-12); /* n - 1 in the denominator */
}

static void median_ci_known_ranks(void **state) {
  (void)state;
  double v[200];
  for (int i = 0; i < 200; i++)
    v[i] = (double)(i + 1); /* x(k) == k */
  double lo, hi;
  /* n < 6: no 95% order-statistic interval exists; [min, max] */
  assert_int_equal(kiln_bench_median_ci(v, 5, 0.95, &lo, &hi), 0);
  assert_true(lo == 1.0 && hi == 5.0);
  /* n = 6: [x(1), x(6)], coverage 1 - 2/64 = 0.969 */
  assert_int_equal(kiln_bench_median_ci(v, 6, 0.95, &lo, &hi), 1);
  assert_true(lo == 1.0 && hi == 6.0);
  /* n = 10: [x(2), x(9)], coverage 0.979 (the textbook answer) */
  assert_int_equal(kiln_bench_median_ci(v, 10, 0.95, &lo, &hi), 2);
  assert_true(lo == 2.0 && hi == 9.0);
  /* n = 25: [x(8), x(18)], coverage 0.957 */
  assert_int_equal(kiln_bench_median_ci(v, 25, 0.95, &lo, &hi), 8);
  assert_true(lo == 8.0 && hi == 18.0);
  /* n = 100: [x(40), x(61)], coverage 0.965 (published tables) */
  assert_int_equal(kiln_bench_median_ci(v, 100, 0.95, &lo, &hi), 40);
  assert_true(lo == 40.0 && hi == 61.0);
  /* large n stays finite (log-space binomial) and near n/2 -+ 0.98 sqrt(n) */
  double big[20001];
  for (int i = 0; i < 20001; i++)
    big[i] = (double)(i + 1);
  size_t j = kiln_bench_median_ci(big, 20001, 0.95, &lo, &hi);
  assert_true(j > 9850 && j < 9870);
  assert_true(hi - lo > 250 && hi - lo < 300);
}

/* splitmix64, so the trials are the same on every run */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void median_ci_coverage(void **state) {
  (void)state;
  /* Exponential samples (skewed, like latencies): true median ln 2. */
  uint64_t rng = 42;
  int covered = 0;
  const int trials = 1000;
  for (int t = 0; t < trials; t++) {
    double v[31];
    for (int i = 0; i < 31; i++) {
      double u = ((double)(next_u64(&rng) >> 11) + 0.5) / 9007199254740992.0;
      v[i] = -log(u);
    }
    qsort(v, 31, sizeof v[0], cmp);
    double lo, hi;
    kiln_bench_median_ci(v, 31, 0.95, &lo, &hi);
    covered += lo <= log(2.0) && log(2.0) <= hi;
  }
  /* exact coverage for n = 31 is 0.971; 1000 trials: about 0.95..0.99 */
  assert_in_range(covered, 950, 990);
}

static void ratio_ci_bootstrap(void **state) {
  (void)state;
  double num[40], den[40];
  for (int i = 0; i < 40; i++) {
    num[i] = 2.0;
    den[i] = 1.0;
  }
  double lo, hi;
  kiln_bench_ratio_ci(num, 40, den, 40, 500, 1, 0.95, &lo, &hi);
  assert_true(lo == 2.0 && hi == 2.0);

  uint64_t rng = 7;
  for (int i = 0; i < 40; i++) {
    num[i] = 10.0 + (double)(next_u64(&rng) % 1000) / 1000.0;
    den[i] = 5.0 + (double)(next_u64(&rng) % 1000) / 1000.0;
  }
  double lo2, hi2;
  kiln_bench_ratio_ci(num, 40, den, 40, 2000, 99, 0.95, &lo, &hi);
  kiln_bench_ratio_ci(num, 40, den, 40, 2000, 99, 0.95, &lo2, &hi2);
  assert_true(lo == lo2 && hi == hi2); /* fixed seed: reproducible */
  double sn[40], sd[40];
  for (int i = 0; i < 40; i++) {
    sn[i] = num[i];
    sd[i] = den[i];
  }
  qsort(sn, 40, sizeof sn[0], cmp);
  qsort(sd, 40, sizeof sd[0], cmp);
  double ratio = kiln_bench_percentile(sn, 40, 0.5) / kiln_bench_percentile(sd, 40, 0.5);
  assert_true(lo < ratio && ratio < hi);
  assert_true(lo > 10.0 / 6.0 && hi < 11.0 / 5.0); /* within the ranges' extremes */
  /* the resampled medians equal order statistics' means, so the bounds are ratios of
   * values in the sample: every bound lies in [min num / max den, max num / min den] */
  assert_true(lo >= sn[0] / sd[39] && hi <= sn[39] / sd[0]);
}

static void unit_conversion(void **state) {
  (void)state;
  double v;
  assert_int_equal(kiln_bench_convert("ns", 0, 1500.0, &v), 0);
  assert_true(v == 1500.0);
  assert_int_equal(kiln_bench_convert("us", 0, 1500.0, &v), 0);
  assert_true(fabs(v - 1.5) < 1e-12);
  assert_int_equal(kiln_bench_convert("ms", 0, 2e6, &v), 0);
  assert_true(fabs(v - 2.0) < 1e-12);
  /* 64 MiB in 10 ms: 6.7108864 GB/s */
  assert_int_equal(kiln_bench_convert("GB/s", 67108864.0, 1e7, &v), 0);
  assert_true(fabs(v - 6.7108864) < 1e-9);
  assert_int_equal(kiln_bench_convert("GiB/s", 1073741824.0, 1e9, &v), 0);
  assert_true(fabs(v - 1.0) < 1e-12);
  assert_int_equal(kiln_bench_convert("items/s", 1000.0, 1e6, &v), 0);
  assert_true(fabs(v - 1e6) < 1e-6);
  assert_int_equal(kiln_bench_convert("furlongs", 0, 1.0, &v), -1);
  assert_int_equal(kiln_bench_convert("GB/s", 0.0, 1.0, &v), -1); /* rate without work */
  assert_int_equal(kiln_bench_convert("GB/s", 1.0, 0.0, &v), -1); /* zero time */
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(median_and_percentiles), cmocka_unit_test(sample_stddev),
      cmocka_unit_test(median_ci_known_ranks),  cmocka_unit_test(median_ci_coverage),
      cmocka_unit_test(ratio_ci_bootstrap),     cmocka_unit_test(unit_conversion),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
