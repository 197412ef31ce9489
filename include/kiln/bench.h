/* SPDX-License-Identifier: MIT */
/* kiln_bench: the benchmark harness (library kiln_bench, built from src/bench).
 * A suite is a list of cases; a case runs a kiln function and, optionally, a baseline
 * doing the same work another way, each called as fn(state, iters). The harness
 * warms both up, then times them batch by batch, interleaved (kiln, baseline, kiln, ...)
 * in one process, until the 95% intervals of both medians are narrow enough or a time
 * budget is spent, and reports statistics and the kiln/baseline ratio (> 1: kiln is
 * better). It uses only the public kiln API. Not thread-safe: one run at a time. */
#ifndef KILN_BENCH_H
#define KILN_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

/* The unit's direction: lower is better for times, higher for rates. */
typedef enum kiln_bench_better {
  KILN_BENCH_LOWER = 0,
  KILN_BENCH_HIGHER = 1
} kiln_bench_better;

/* A parameter of a case, written into the result's "params" object: a string when
 * `str` is not NULL, else the integer `num`. */
typedef struct kiln_bench_param {
  const char *key;
  const char *str;
  int64_t num;
} kiln_bench_param;

/* What a kiln-side setup receives. */
typedef struct kiln_bench_env {
  kiln_device device;   /* the device the suite runs on (NULL for host-only suites) */
  void *arg;            /* the case's `arg` */
  int quick;            /* 1 under --quick: smaller set-ups are welcome */
} kiln_bench_env;

/* Do `iters` iterations of the case's work; 0 on success (KILN_SUCCESS), anything
 * else is a failure that ends the case (kiln functions return their kiln_status).
 * Baseline functions have the same shape so that their files need no kiln header. */
typedef int (*kiln_bench_fn)(void *state, uint64_t iters);
typedef int (*kiln_bench_setup_fn)(const kiln_bench_env *env, void **state);
typedef int (*kiln_bench_baseline_setup_fn)(void *arg, void **state);
typedef void (*kiln_bench_teardown_fn)(void *state);

/* One case. Units: "ns", "us", "ms", "s" per operation (better = LOWER), or
 * "GB/s", "MB/s", "GiB/s" (work_per_op in bytes), "items/s", "Mitems/s" (work_per_op in
 * items) (better = HIGHER). One iteration performs ops_per_iter operations (0 means 1):
 * op_burst_10000's iteration is a burst of 10 000 ops and its unit is per op. */
typedef struct kiln_bench_case {
  const char *name;                    /* fixed result name, e.g. "op_roundtrip" */
  const char *description;
  const kiln_bench_param *params;
  size_t param_count;
  const char *unit;
  kiln_bench_better better;
  double work_per_op;                  /* bytes or items per operation, for rates */
  uint64_t ops_per_iter;               /* 0 = 1 */
  double goal_ratio;                   /* printed (met / missed / unclear), never
                                        * asserted; 0 = no goal */
  const char *goal;                    /* the goal in words, or NULL */
  void *arg;                           /* handed to both set-ups */
  kiln_bench_setup_fn setup;           /* may be NULL (state NULL) */
  kiln_bench_fn run;                   /* required */
  kiln_bench_teardown_fn teardown;     /* may be NULL */
  const char *baseline_name;           /* e.g. "pthread-queue"; NULL: no baseline */
  kiln_bench_baseline_setup_fn baseline_setup;
  kiln_bench_fn baseline_run;
  kiln_bench_teardown_fn baseline_teardown;
} kiln_bench_case;

/* A suite. backend: the backend its kiln side needs (its device 0 unless --device
 * names another); KILN_BACKEND_NONE with host_only = 0: any device, the default one
 * by default; host_only = 1: no device at all (reported as backend "host"). */
typedef struct kiln_bench_suite {
  const char *name;
  const char *description;
  kiln_backend_kind backend;
  int host_only;
  const kiln_bench_case *cases;
  size_t case_count;
} kiln_bench_suite;

/* Monotonic time in nanoseconds. Injectable for tests. */
typedef uint64_t (*kiln_bench_clock_fn)(void *user);

struct kiln_bench_result;
/* Called after each case with its result (which may carry a failure). */
typedef void (*kiln_bench_progress_fn)(const struct kiln_bench_result *result, void *user);

/* Zero means the default in every field. */
typedef struct kiln_bench_config {
  size_t struct_size;
  int quick;                    /* CI mode: the small defaults below */
  uint64_t budget_ns;           /* measuring time per case: 2 s (quick 0.25 s) */
  uint64_t warmup_ns;           /* warm-up per case after calibration: 0.2 s (quick 0.02 s) */
  uint64_t min_batch_ns;        /* calibrate batches to last at least this: 1 ms */
  double target_rel_ci;         /* stop when both medians' 95% CI half-widths are below
                                 * this fraction of the median: 0.01 */
  unsigned min_samples;         /* timed batches per side at least: 10 (quick 5) */
  unsigned max_samples;         /* and at most: 2000 */
  unsigned kiln_slowdown;       /* self-test: run the kiln side this many times per
                                 * batch, as if it were that much slower (0, 1: off) */
  int self_test;                /* each case's baseline becomes its own kiln function
                                 * (same state, named "kiln-self"), and the kiln side is
                                 * slowed down kiln_slowdown times (default 2): every
                                 * ratio should then be near 1 / kiln_slowdown */
  unsigned bootstrap_resamples; /* for ratio_ci95: 2000 */
  uint64_t bootstrap_seed;      /* 0 = the fixed default seed */
  const char *device;           /* "backend:index" or NULL (see kiln_bench_suite) */
  kiln_bench_clock_fn clock;    /* NULL: CLOCK_MONOTONIC */
  void *clock_user;
  kiln_bench_progress_fn progress;
  void *progress_user;
} kiln_bench_config;
#define KILN_BENCH_CONFIG_INIT \
  {sizeof(kiln_bench_config), 0, 0, 0, 0, 0.0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL}

/* Statistics of one side, in the case's unit. ci95 is the distribution-free 95%
 * interval of the median from order statistics (binomial method); with fewer than 6
 * samples no such interval exists and [min, max] is given. stddev is the sample
 * standard deviation (n - 1); p95 interpolates linearly between closest ranks. */
typedef struct kiln_bench_stats {
  double median, min, max, mean, p95, stddev;
  double ci95_lo, ci95_hi;
  uint64_t samples;
} kiln_bench_stats;

typedef struct kiln_bench_result {
  const kiln_bench_suite *suite;
  const kiln_bench_case *bcase;
  kiln_device device;           /* NULL for host-only suites */
  char device_backend[16];      /* "cpu", ..., "host" */
  unsigned device_index;
  char device_name[256];
  uint64_t batch_size;          /* operations per timed batch */
  kiln_bench_stats kiln;
  int has_baseline;
  const char *baseline_name;    /* the case's, or "kiln-self" in a self-test */
  kiln_bench_stats baseline;
  /* > 1: kiln is better. ratio_ci95 is a percentile bootstrap: both sides resampled
   * independently with a fixed seed, the ratio of the medians taken each time. */
  double ratio, ratio_lo, ratio_hi;
  uint64_t elapsed_ns;          /* the case's time, set-up and warm-up included */
  /* Per-operation times in nanoseconds of each timed batch, in measuring order. */
  double *kiln_ns;
  double *baseline_ns;
  int status;                   /* 0, or the failing function's return value */
  char message[512];            /* what failed, "" on success */
} kiln_bench_result;

typedef struct kiln_bench_report kiln_bench_report;

KILN_BEGIN_DECLS

/* ---- statistics (exposed for tests and for users' own analyses) ---- */

/* Sort `values` in place and fill `stats`; n may be 0 (everything 0). */
void kiln_bench_stats_compute(double *values, size_t n, kiln_bench_stats *stats);
/* Percentile p in [0, 1] of sorted values (linear between closest ranks, as numpy's
 * default); n > 0. */
double kiln_bench_percentile(const double *sorted, size_t n, double p);
/* Distribution-free interval of the median of sorted values at `level` (0.95): the
 * order statistics x(j), x(n+1-j) with the largest j whose binomial coverage is at
 * least `level`. Returns the 1-based j, or 0 when n is too small (then [min, max]). */
size_t kiln_bench_median_ci(const double *sorted, size_t n, double level, double *lo,
                            double *hi);
/* Percentile-bootstrap interval of ratio = median(num) / median(den), resampling
 * both sides independently `resamples` times from `seed`. Deterministic. */
void kiln_bench_ratio_ci(const double *num, size_t num_n, const double *den, size_t den_n,
                         unsigned resamples, uint64_t seed, double level, double *lo,
                         double *hi);
/* Convert nanoseconds per operation into `unit` (see kiln_bench_case). Returns 0 and
 * writes *value, or -1 for an unknown unit. */
int kiln_bench_convert(const char *unit, double work_per_op, double ns_per_op,
                       double *value);

/* The host monotonic clock (CLOCK_MONOTONIC) in ns; `user` is ignored. */
uint64_t kiln_bench_clock_monotonic(void *user);

/* ---- running ---- */

/* Run one case; fills *result (free its arrays with kiln_bench_result_clear). Returns
 * KILN_SUCCESS when measured; a failing case returns KILN_ERROR_BACKEND (its function
 * failed) or the device's error, with result->message saying what happened. */
kiln_status kiln_bench_run_case(const kiln_bench_config *config,
                                const kiln_bench_suite *suite, const kiln_bench_case *bcase,
                                kiln_bench_result *result);
void kiln_bench_result_clear(kiln_bench_result *result);

kiln_status kiln_bench_report_create(kiln_bench_report **report);
void kiln_bench_report_destroy(kiln_bench_report *report);
/* Run every case of `suite`, adding each result (failed ones too) to the report.
 * Returns the first failure, after running the rest. */
kiln_status kiln_bench_run_suite(const kiln_bench_config *config,
                                 const kiln_bench_suite *suite, kiln_bench_report *report);
size_t kiln_bench_report_count(const kiln_bench_report *report);
const kiln_bench_result *kiln_bench_report_get(const kiln_bench_report *report, size_t i);

/* The JSON document of design.md "Benchmarks" (schemas/bench.json); failed results are
 * left out. Returns KILN_ERROR_IO when writing fails. */
kiln_status kiln_bench_report_write_json(const kiln_bench_report *report, FILE *out);
/* A readable table: case, kiln median [ci], baseline median, ratio [ci], goal. */
void kiln_bench_report_print(const kiln_bench_report *report, FILE *out);
/* "met", "missed" or "unclear" (the interval straddles the goal), judged on
 * ratio_ci95; NULL when the case has no goal or no baseline. */
const char *kiln_bench_goal_verdict(const kiln_bench_result *result);

KILN_END_DECLS
#endif
