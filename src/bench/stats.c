/* SPDX-License-Identifier: MIT */
/* Statistics of the benchmark harness: order statistics, the distribution-free
 * interval of the median, percentiles, the bootstrap interval of a ratio of medians
 * and unit conversion. Pure functions over arrays; no kiln calls, no global state
 * (the bootstrap's generator is seeded per call, so results are reproducible). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/bench.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double kiln_bench_percentile(const double *sorted, size_t n, double p) {
  if (n == 0) return 0.0;
  if (p <= 0.0) return sorted[0];
  if (p >= 1.0) return sorted[n - 1];
  double h = (double)(n - 1) * p;
  size_t lo = (size_t)floor(h);
  if (lo + 1 >= n) return sorted[n - 1];
  return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

/* log of the Binomial(n, 1/2) probability of k. */
static double log_binom_half(size_t n, size_t k) {
  return lgamma((double)n + 1.0) - lgamma((double)k + 1.0) - lgamma((double)(n - k) + 1.0) -
         (double)n * log(2.0);
}

size_t kiln_bench_median_ci(const double *sorted, size_t n, double level, double *lo,
                            double *hi) {
  if (n == 0) {
    *lo = *hi = 0.0;
    return 0;
  }
  /* The interval [x(j), x(n+1-j)] misses the median with probability
   * 2 * P(B <= j - 1), B ~ Binomial(n, 1/2). Take the largest j that keeps it
   * at most 1 - level. */
  double alpha_half = (1.0 - level) / 2.0;
  double cdf = 0.0;
  size_t j = 0;
  for (size_t k = 0; k < (n + 1) / 2; k++) {
    cdf += exp(log_binom_half(n, k));  /* cdf = P(B <= k) */
    if (cdf > alpha_half) break;
    j = k + 1;
  }
  if (j == 0) {
    *lo = sorted[0];
    *hi = sorted[n - 1];
    return 0;
  }
  *lo = sorted[j - 1];
  *hi = sorted[n - j];
  return j;
}

void kiln_bench_stats_compute(double *values, size_t n, kiln_bench_stats *s) {
  memset(s, 0, sizeof *s);
  s->samples = n;
  if (n == 0) return;
  qsort(values, n, sizeof *values, cmp_double);
  s->min = values[0];
  s->max = values[n - 1];
  s->median = kiln_bench_percentile(values, n, 0.5);
  s->p95 = kiln_bench_percentile(values, n, 0.95);
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) sum += values[i];
  s->mean = sum / (double)n;
  double ss = 0.0;
  for (size_t i = 0; i < n; i++) ss += (values[i] - s->mean) * (values[i] - s->mean);
  s->stddev = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
  kiln_bench_median_ci(values, n, 0.95, &s->ci95_lo, &s->ci95_hi);
}

/* splitmix64: small, fast, good enough to resample. */
static uint64_t next_u64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static size_t draw_index(uint64_t *state, size_t n) {
  return (size_t)(next_u64(state) % (uint64_t)n);  /* bias < n / 2^64: negligible */
}

/* k-th smallest of a[0..n) (0-based), reordering a so that every element before
 * index k is <= the result: Hoare's selection. */
static double select_kth(double *a, size_t n, size_t k) {
  ptrdiff_t left = 0, right = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
  while (left < right) {
    double pivot = a[left + (right - left) / 2];
    ptrdiff_t i = left, j = right;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        double t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    /* [left, j] <= pivot, [i, right] >= pivot, (j, i) == pivot */
    if (kk <= j) {
      right = j;
    } else if (kk >= i) {
      left = i;
    } else {
      return a[kk];
    }
  }
  return a[kk];
}

/* Median of a resample, matching kiln_bench_percentile(…, 0.5). */
static double resample_median(const double *src, size_t n, double *scratch, uint64_t *rng) {
  for (size_t i = 0; i < n; i++) scratch[i] = src[draw_index(rng, n)];
  if (n % 2 == 1) return select_kth(scratch, n, n / 2);
  double hi = select_kth(scratch, n, n / 2);
  /* after selection everything below index n/2 is <= hi: the lower middle is their max */
  double lo = scratch[0];
  for (size_t i = 1; i < n / 2; i++)
    if (scratch[i] > lo) lo = scratch[i];
  return (lo + hi) / 2.0;
}

void kiln_bench_ratio_ci(const double *num, size_t num_n, const double *den, size_t den_n,
                         unsigned resamples, uint64_t seed, double level, double *lo,
                         double *hi) {
  *lo = *hi = 0.0;
  if (num_n == 0 || den_n == 0) return;
  if (resamples == 0) resamples = 2000;
  size_t big = num_n > den_n ? num_n : den_n;
  double *scratch = malloc(big * sizeof *scratch);
  double *ratios = malloc(resamples * sizeof *ratios);
  if (scratch == NULL || ratios == NULL) {
    free(scratch);
    free(ratios);
    *lo = *hi = NAN;
    return;
  }
  uint64_t rng = seed;
  size_t m = 0;
  for (unsigned r = 0; r < resamples; r++) {
    double a = resample_median(num, num_n, scratch, &rng);
    double b = resample_median(den, den_n, scratch, &rng);
    if (b > 0.0 && isfinite(a / b)) ratios[m++] = a / b;
  }
  if (m == 0) {
    *lo = *hi = NAN;
  } else {
    qsort(ratios, m, sizeof *ratios, cmp_double);
    *lo = kiln_bench_percentile(ratios, m, (1.0 - level) / 2.0);
    *hi = kiln_bench_percentile(ratios, m, 1.0 - (1.0 - level) / 2.0);
  }
  free(scratch);
  free(ratios);
}

/* Per-operation time units, and rate units with their scale per byte/item per second. */
static const struct {
  const char *name;
  int rate;        /* 0: time per op; 1: work per second */
  double scale;    /* time: ns per unit; rate: work/s per unit */
} units[] = {
    {"ns", 0, 1.0},       {"us", 0, 1e3},      {"ms", 0, 1e6},
    {"s", 0, 1e9},        {"GB/s", 1, 1e9},    {"MB/s", 1, 1e6},
    {"GiB/s", 1, 1073741824.0},                {"items/s", 1, 1.0},
    {"Mitems/s", 1, 1e6},
};

int kiln_bench_convert(const char *unit, double work_per_op, double ns_per_op,
                       double *value) {
  if (unit == NULL) return -1;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(unit, units[i].name) != 0) continue;
    if (!units[i].rate) {
      *value = ns_per_op / units[i].scale;
    } else {
      if (!(work_per_op > 0.0) || !(ns_per_op > 0.0)) return -1;
      *value = work_per_op / (ns_per_op * 1e-9) / units[i].scale;
    }
    return 0;
  }
  return -1;
}
