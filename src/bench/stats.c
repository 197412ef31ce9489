/* SPDX-License-Identifier: MIT */
/* Statistics of the benchmark harness: order statistics, the distribution-free
 * interval of the median, percentiles, outliers, the bootstrap interval of a ratio of
 * medians, log-log scaling fits (single and one-breakpoint), unit conversion and the
 * parsing of axis values. Pure functions over arrays; no kiln calls, no global state
 * (the bootstrap's generator is seeded per call, so results are reproducible). */
#include <errno.h>
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
  if (n == 0)
    return 0.0;
  if (p <= 0.0)
    return sorted[0];
  if (p >= 1.0)
    return sorted[n - 1];
  double h = (double)(n - 1) * p;
  size_t lo = (size_t)floor(h);
  if (lo + 1 >= n)
    return sorted[n - 1];
  return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

/* log of the Binomial(n, 1/2) probability of k. */
static double log_binom_half(size_t n, size_t k) {
  return lgamma((double)n + 1.0) - lgamma((double)k + 1.0) - lgamma((double)(n - k) + 1.0) -
         (double)n * log(2.0);
}

size_t kiln_bench_median_ci(const double *sorted, size_t n, double level, double *lo, double *hi) {
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
    cdf += exp(log_binom_half(n, k)); /* cdf = P(B <= k) */
    if (cdf > alpha_half)
      break;
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
  if (n == 0)
    return;
  qsort(values, n, sizeof *values, cmp_double);
  s->min = values[0];
  s->max = values[n - 1];
  s->median = kiln_bench_percentile(values, n, 0.5);
  s->p95 = kiln_bench_percentile(values, n, 0.95);
  s->p5 = kiln_bench_percentile(values, n, 0.05);
  s->p50 = s->median;
  s->p99 = kiln_bench_percentile(values, n, 0.99);
  s->outliers = kiln_bench_outliers(values, n);
  double sum = 0.0;
  for (size_t i = 0; i < n; i++)
    sum += values[i];
  s->mean = sum / (double)n;
  double ss = 0.0;
  for (size_t i = 0; i < n; i++)
    ss += (values[i] - s->mean) * (values[i] - s->mean);
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
  return (size_t)(next_u64(state) % (uint64_t)n); /* bias < n / 2^64: negligible */
}

/* k-th smallest of a[0..n) (0-based), reordering a so that every element before
 * index k is <= the result: Hoare's selection. */
static double select_kth(double *a, size_t n, size_t k) {
  ptrdiff_t left = 0, right = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
  while (left < right) {
    double pivot = a[left + (right - left) / 2];
    ptrdiff_t i = left, j = right;
    while (i <= j) {
      while (a[i] < pivot)
        i++;
      while (a[j] > pivot)
        j--;
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
  for (size_t i = 0; i < n; i++)
    scratch[i] = src[draw_index(rng, n)];
  if (n % 2 == 1)
    return select_kth(scratch, n, n / 2);
  double hi = select_kth(scratch, n, n / 2);
  /* after selection everything below index n/2 is <= hi: the lower middle is their max */
  double lo = scratch[0];
  for (size_t i = 1; i < n / 2; i++)
    if (scratch[i] > lo)
      lo = scratch[i];
  return (lo + hi) / 2.0;
}

void kiln_bench_ratio_ci(const double *num, size_t num_n, const double *den, size_t den_n,
                         unsigned resamples, uint64_t seed, double level, double *lo, double *hi) {
  *lo = *hi = 0.0;
  if (num_n == 0 || den_n == 0)
    return;
  if (resamples == 0)
    resamples = 2000;
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
    if (b > 0.0 && isfinite(a / b))
      ratios[m++] = a / b;
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
  int rate;     /* 0: time per op; 1: work per second */
  double scale; /* time: ns per unit; rate: work/s per unit */
} units[] = {
    {"ns", 0, 1.0},
    {"us", 0, 1e3},
    {"ms", 0, 1e6},
    {"s", 0, 1e9},
    {"GB/s", 1, 1e9},
    {"MB/s", 1, 1e6},
    {"GiB/s", 1, 1073741824.0},
    {"items/s", 1, 1.0},
    {"Mitems/s", 1, 1e6},
    {"x", 0, 1e6}, /* a dimensionless figure a case measures itself (run_timed: 1e6 per unit) */
};

int kiln_bench_convert(const char *unit, double work_per_op, double ns_per_op, double *value) {
  if (unit == NULL)
    return -1;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(unit, units[i].name) != 0)
      continue;
    if (!units[i].rate) {
      *value = ns_per_op / units[i].scale;
    } else {
      if (!(work_per_op > 0.0) || !(ns_per_op > 0.0))
        return -1;
      *value = work_per_op / (ns_per_op * 1e-9) / units[i].scale;
    }
    return 0;
  }
  return -1;
}

uint64_t kiln_bench_outliers(const double *sorted, size_t n) {
  if (n < 4)
    return 0;
  double q1 = kiln_bench_percentile(sorted, n, 0.25);
  double q3 = kiln_bench_percentile(sorted, n, 0.75);
  double iqr = q3 - q1, lo = q1 - 1.5 * iqr, hi = q3 + 1.5 * iqr;
  uint64_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += sorted[i] < lo || sorted[i] > hi;
  return count;
}

/* Solve the 3x3 system a x = b by Gaussian elimination with partial pivoting; -1 when
 * singular. */
static int solve3(double a[3][3], double b[3], double x[3]) {
  for (int c = 0; c < 3; c++) {
    int p = c;
    for (int r = c + 1; r < 3; r++)
      if (fabs(a[r][c]) > fabs(a[p][c]))
        p = r;
    if (fabs(a[p][c]) < 1e-12)
      return -1;
    for (int k = 0; k < 3; k++) {
      double t = a[c][k];
      a[c][k] = a[p][k];
      a[p][k] = t;
    }
    double t = b[c];
    b[c] = b[p];
    b[p] = t;
    for (int r = c + 1; r < 3; r++) {
      double f = a[r][c] / a[c][c];
      for (int k = c; k < 3; k++)
        a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  for (int c = 2; c >= 0; c--) {
    double v = b[c];
    for (int k = c + 1; k < 3; k++)
      v -= a[c][k] * x[k];
    x[c] = v / a[c][c];
  }
  return 0;
}

typedef struct point {
  double x, y, n; /* x = ln n, y = ln t */
} point;

static int cmp_point(const void *a, const void *b) {
  double x = ((const point *)a)->x, y = ((const point *)b)->x;
  return (x > y) - (x < y);
}

int kiln_bench_fit_scaling(const double *n, const double *t, size_t count, kiln_bench_fit *fit) {
  memset(fit, 0, sizeof *fit);
  point *p = malloc((count ? count : 1) * sizeof *p);
  if (p == NULL)
    return -1;
  size_t m = 0;
  for (size_t i = 0; i < count; i++)
    if (n[i] > 0.0 && t[i] > 0.0 && isfinite(n[i]) && isfinite(t[i]))
      p[m++] = (point){log(n[i]), log(t[i]), n[i]};
  qsort(p, m, sizeof *p, cmp_point);
  int rc = -1;
  if (m < 2 || p[0].x == p[m - 1].x)
    goto out;
  /* single least-squares line */
  double sx = 0, sy = 0;
  for (size_t i = 0; i < m; i++) {
    sx += p[i].x;
    sy += p[i].y;
  }
  double mx = sx / (double)m, my = sy / (double)m, sxx = 0, sxy = 0, syy = 0;
  for (size_t i = 0; i < m; i++) {
    sxx += (p[i].x - mx) * (p[i].x - mx);
    sxy += (p[i].x - mx) * (p[i].y - my);
    syy += (p[i].y - my) * (p[i].y - my);
  }
  fit->points = m;
  fit->slope = sxy / sxx;
  fit->intercept = my - fit->slope * mx;
  double sse1 = 0;
  for (size_t i = 0; i < m; i++) {
    double r = p[i].y - (fit->intercept + fit->slope * p[i].x);
    sse1 += r * r;
  }
  fit->r2 = syy > 0 ? 1.0 - sse1 / syy : 1.0;
  rc = 0;
  /* continuous two-segment fit, breakpoint at an inner point k: the basis 1,
   * min(x, xk), max(x - xk, 0); needs 4 points (3 parameters and one left over) */
  double best = INFINITY, best_c[3] = {0, 0, 0};
  size_t best_k = 0;
  for (size_t k = 1; m >= 4 && k + 1 < m; k++) {
    double xk = p[k].x, a[3][3] = {{0}}, b[3] = {0}, c[3];
    for (size_t i = 0; i < m; i++) {
      double f[3] = {1.0, p[i].x < xk ? p[i].x : xk, p[i].x > xk ? p[i].x - xk : 0.0};
      for (int r = 0; r < 3; r++) {
        b[r] += f[r] * p[i].y;
        for (int q = 0; q < 3; q++)
          a[r][q] += f[r] * f[q];
      }
    }
    if (solve3(a, b, c) != 0)
      continue;
    double sse = 0;
    for (size_t i = 0; i < m; i++) {
      double f1 = p[i].x < xk ? p[i].x : xk, f2 = p[i].x > xk ? p[i].x - xk : 0.0;
      double r = p[i].y - (c[0] + c[1] * f1 + c[2] * f2);
      sse += r * r;
    }
    if (sse < best) {
      best = sse;
      best_k = k;
      memcpy(best_c, c, sizeof c);
    }
  }
  if (best_k != 0 && fabs(best_c[2] - best_c[1]) >= 0.25 && best <= 0.5 * sse1 &&
      sse1 - best >= 1e-3) {
    fit->has_break = 1;
    fit->break_n = p[best_k].n;
    fit->slope_below = best_c[1];
    fit->slope_above = best_c[2];
    fit->intercept_below = best_c[0];
  }
out:
  free(p);
  return rc;
}

int kiln_bench_parse_int(const char *text, int64_t *value) {
  if (text == NULL || value == NULL)
    return -1;
  const char *q = text;
  if (*q == '-')
    q++;
  if (*q < '0' || *q > '9')
    return -1;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno == ERANGE)
    return -1;
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k')
    shift = 10;
  else if (*end == 'M' || *end == 'm')
    shift = 20;
  else if (*end == 'G' || *end == 'g')
    shift = 30;
  if (shift != 0) {
    end++;
    if (strcmp(end, "iB") == 0 || strcmp(end, "ib") == 0 || strcmp(end, "B") == 0)
      end += strlen(end);
  }
  if (*end != '\0')
    return -1;
  if (shift != 0 && (v > (INT64_MAX >> shift) || v < -(INT64_MAX >> shift)))
    return -1;
  *value = (int64_t)((uint64_t)v << shift);
  if (v < 0)
    *value = -(int64_t)((uint64_t)(-v) << shift);
  return 0;
}
