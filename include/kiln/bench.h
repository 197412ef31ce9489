/* SPDX-License-Identifier: MIT */
/* kiln_bench: the benchmark harness (library kiln_bench, built from src/bench).
 * A suite is a list of cases; a case runs a kiln function and, optionally, a baseline
 * doing the same work another way, each called as fn(state, iters). A case may declare
 * parameter axes (bytes = 4KiB,1MiB,...): it then runs once per combination. The
 * harness warms both sides up, then times them batch by batch, interleaved in pairs
 * whose order alternates (kiln first, then baseline first, ...) with an idle gap
 * between batches, in one process, until the 95% intervals of both medians are narrow
 * enough or a time budget is spent, and reports statistics, the kiln/baseline ratio
 * (> 1: kiln is better), log-log scaling fits over size axes, and writes JSON, CSV,
 * Markdown, LaTeX and a self-contained HTML report. `kiln_bench_compare_files` compares
 * two JSON runs. It uses only the public kiln API. Not thread-safe: one run at a time. */
#ifndef KILN_BENCH_H
#define KILN_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

/* The unit's direction: lower is better for times, higher for rates. */
typedef enum kiln_bench_better { KILN_BENCH_LOWER = 0, KILN_BENCH_HIGHER = 1 } kiln_bench_better;

/* A parameter of a case, written into the result's "params" object: a string when
 * `str` is not NULL, else the integer `num`. */
typedef struct kiln_bench_param {
  const char *key;
  const char *str;
  int64_t num;
} kiln_bench_param;

/* Most parameters one result carries (fixed ones and axis values together). */
#define KILN_BENCH_MAX_PARAMS 16

/* A parameter axis of a case: the case runs once per value (per combination of values
 * when it has several axes). Values are integers (`nums`) or strings (`strs`): exactly
 * one of the two is set, with `count` entries. `scaling` = 1 marks a size axis: the
 * report fits the log-log slope of time per operation over it ("time ~ n^1.02") and
 * draws a scaling plot. `kiln bench run --axis name=v1,v2` replaces the values. */
typedef struct kiln_bench_axis {
  const char *name;
  const int64_t *nums;
  const char *const *strs;
  size_t count;
  int scaling;
} kiln_bench_axis;

/* What a kiln-side setup (and a baseline's setup_env) receives. */
typedef struct kiln_bench_env {
  kiln_device device;             /* the device the suite runs on (NULL for host-only suites) */
  void *arg;                      /* the case's `arg` */
  int quick;                      /* 1 under --quick: smaller set-ups are welcome */
  const kiln_bench_param *params; /* this run's parameters: fixed ones and axis values,
                                   * sorted by key */
  size_t param_count;
} kiln_bench_env;

/* The integer parameter `key` of this run, or `fallback` when there is none. */
int64_t kiln_bench_env_num(const kiln_bench_env *env, const char *key, int64_t fallback);
/* The string parameter `key` of this run, or `fallback`. */
const char *kiln_bench_env_str(const kiln_bench_env *env, const char *key, const char *fallback);

/* Do `iters` iterations of the case's work; 0 on success (KILN_SUCCESS), anything
 * else is a failure that ends the case (kiln functions return their kiln_status).
 * Baseline functions have the same shape so that their files need no kiln header. */
typedef int (*kiln_bench_fn)(void *state, uint64_t iters);
/* The same, timing itself on the device (events): *device_ns receives the device time
 * of the `iters` iterations. A side that has one is timed with it when the other side
 * can be too (the result's timing is then "device"); otherwise both sides are timed
 * with the host clock around the call, so a ratio never mixes clocks. */
typedef int (*kiln_bench_timed_fn)(void *state, uint64_t iters, uint64_t *device_ns);
typedef int (*kiln_bench_setup_fn)(const kiln_bench_env *env, void **state);
typedef int (*kiln_bench_baseline_setup_fn)(void *arg, void **state);
typedef void (*kiln_bench_teardown_fn)(void *state);

/* One case. Units: "ns", "us", "ms", "s" per operation (better = LOWER), or
 * "GB/s", "MB/s", "GiB/s" (work_per_op in bytes), "items/s", "Mitems/s" (work_per_op in
 * items) (better = HIGHER); "x": a dimensionless figure both sides measure themselves
 * (their run_timed reports it as 1e6 "ns" per op; the result's timing is "measured").  One
 * iteration performs ops_per_iter operations (0 means 1): op_burst_10000's iteration is a burst of
 * 10 000 ops and its unit is per op. With work_axis set, the work of one op is that axis's value
 * (times work_per_op when work_per_op > 0): a copy over bytes = 4KiB..64MiB reports GB/s at every
 * size. */
typedef struct kiln_bench_case {
  const char *name; /* fixed result name, e.g. "op_roundtrip" */
  const char *description;
  const kiln_bench_param *params;
  size_t param_count;
  const char *unit;
  kiln_bench_better better;
  double work_per_op;              /* bytes or items per operation, for rates */
  uint64_t ops_per_iter;           /* 0 = 1 */
  double goal_ratio;               /* printed (met / missed / unclear), never
                                    * asserted; 0 = no goal */
  const char *goal;                /* the goal in words, or NULL */
  void *arg;                       /* handed to both set-ups */
  kiln_bench_setup_fn setup;       /* may be NULL (state NULL) */
  kiln_bench_fn run;               /* required */
  kiln_bench_teardown_fn teardown; /* may be NULL */
  const char *baseline_name;       /* e.g. "pthread-queue"; NULL: no baseline */
  kiln_bench_baseline_setup_fn baseline_setup;
  kiln_bench_fn baseline_run;
  kiln_bench_teardown_fn baseline_teardown;
  /* appended */
  const kiln_bench_axis *axes; /* parameter axes, or NULL */
  size_t axis_count;
  const char *work_axis;                  /* the axis holding the work per op, or NULL */
  kiln_bench_timed_fn run_timed;          /* device-timed kiln side, or NULL */
  kiln_bench_timed_fn baseline_run_timed; /* device-timed baseline, or NULL */
  /* Baseline set-up that needs this run's parameters: written in the suite's file (it
   * may read env), calling the baseline's own plain set-up. Used instead of
   * baseline_setup when set. */
  kiln_bench_setup_fn baseline_setup_env;
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

/* Where a case is while it runs, for a progress display. */
typedef struct kiln_bench_tick {
  const char *suite;
  const char *label;    /* "copy bytes=4096" */
  const char *phase;    /* "calibrating", "warming up", "measuring" */
  size_t index, total;  /* this run's position in its suite: index < total */
  uint64_t elapsed_ns;  /* the case's time so far */
  uint64_t estimate_ns; /* the case's expected total: budget-based, refined */
  uint64_t samples;
  double rel_ci; /* the wider side's relative CI half-width so far, or NaN */
} kiln_bench_tick;
/* Called during a case: after each phase change and each timed pair. */
typedef void (*kiln_bench_tick_fn)(const kiln_bench_tick *tick, void *user);

/* `--axis name=v1,v2`: replaces the values of the axis `name` of every case that has
 * one. Numeric axes accept integers with binary suffixes (4K, 4KiB, 1M, 1MiB, 1G). */
typedef struct kiln_bench_axis_override {
  const char *name;
  const char *const *values;
  size_t count;
} kiln_bench_axis_override;

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
  /* appended */
  int64_t idle_gap_ns; /* idle time before each timed batch, so that what the
                        * other side left running (kiln's CPU worker spins
                        * ~30 us after its last op) has gone quiet: 0 = the
                        * default 200 us; negative = none. Real time
                        * (nanosleep), never counted by the clock. */
  const kiln_bench_axis_override *axis_overrides;
  size_t axis_override_count;
  kiln_bench_tick_fn tick;
  void *tick_user;
  /* appended: run only the cases whose name matches one of these comma-separated
   * shell patterns (fnmatch: "op_burst*,copy_64MiB"); NULL or "" = every case */
  const char *cases;
} kiln_bench_config;
#define KILN_BENCH_CONFIG_INIT                                                                     \
  {                                                                                                \
    sizeof(kiln_bench_config), 0, 0, 0, 0, 0.0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, 0, \
        NULL, 0, NULL, NULL, NULL                                                                  \
  }

/* Statistics of one side, in the case's unit. ci95 is the distribution-free 95%
 * interval of the median from order statistics (binomial method); with fewer than 6
 * samples no such interval exists and [min, max] is given. stddev is the sample
 * standard deviation (n - 1); percentiles interpolate linearly between closest ranks
 * (numpy's default). Outliers are kept in every figure and counted: values below
 * Q1 - 1.5 IQR or above Q3 + 1.5 IQR (Tukey's fences). */
typedef struct kiln_bench_stats {
  double median, min, max, mean, p95, stddev;
  double ci95_lo, ci95_hi;
  uint64_t samples;
  /* appended */
  double p5, p50, p99;
  uint64_t outliers;
} kiln_bench_stats;

/* A least-squares fit of log(time per op) over log(n) ("time ~ n^slope"), and the best
 * continuous two-segment fit with its breakpoint at one of the inner points (chosen by
 * least squares). has_break is 1 when the two segments' slopes differ by at least 0.25
 * and the two-segment fit leaves at most half the single fit's squared error (and at
 * least 0.001 in log-space units): the point where, say, a launch-bound region
 * (slope ~0) becomes a bandwidth-bound one (slope ~1). */
typedef struct kiln_bench_fit {
  size_t points;
  double slope, intercept; /* ln t = intercept + slope * ln n */
  double r2;               /* of the single fit (1 when all points are equal) */
  int has_break;
  double break_n; /* n at the breakpoint */
  double slope_below, slope_above;
  double intercept_below; /* ln t = intercept_below + slope_below * ln n, n <= break */
} kiln_bench_fit;

typedef struct kiln_bench_result {
  const kiln_bench_suite *suite;
  const kiln_bench_case *bcase;
  kiln_device device;      /* NULL for host-only suites */
  char device_backend[16]; /* "cpu", ..., "host" */
  unsigned device_index;
  char device_name[256];
  uint64_t batch_size; /* operations per timed batch */
  kiln_bench_stats kiln;
  int has_baseline;
  const char *baseline_name; /* the case's, or "kiln-self" in a self-test */
  kiln_bench_stats baseline;
  /* > 1: kiln is better. ratio_ci95 is a percentile bootstrap: both sides resampled
   * independently with a fixed seed, the ratio of the medians taken each time. */
  double ratio, ratio_lo, ratio_hi;
  uint64_t elapsed_ns; /* the case's time, set-up and warm-up included */
  /* Per-operation times in nanoseconds of each timed batch, in measuring order. */
  double *kiln_ns;
  double *baseline_ns;
  int status;        /* 0, or the failing function's return value */
  char message[512]; /* what failed, "" on success */
  /* appended */
  int device_timing;  /* 1: the samples are device times ("timing": "device") */
  double work_per_op; /* bytes or items per op of this run (rates), else 0 */
  size_t param_count; /* this run's parameters, sorted by key (canonical) */
  kiln_bench_param params[KILN_BENCH_MAX_PARAMS]; /* string values point into param_text:
                                                   * a copied result must re-aim them */
  char param_text[KILN_BENCH_MAX_PARAMS][64];     /* storage of string values */
  char label[192];                                /* "name key=value ...", for tables and plots */
} kiln_bench_result;

/* A scaling series of a report: the runs of one case (same suite, device and every
 * other parameter) over a scaling axis, sorted by n, with fits of the kiln side's and
 * the baseline's time per op. */
typedef struct kiln_bench_series {
  const char *suite;
  const char *name;
  const char *axis;
  char label[192]; /* "cpu/copy over bytes (other=...)" */
  size_t count;
  const kiln_bench_result *const *results;
  const double *n;           /* the axis values */
  const double *kiln_ns;     /* median ns per op of each run */
  const double *baseline_ns; /* NULL without a baseline */
  kiln_bench_fit kiln_fit;
  kiln_bench_fit baseline_fit; /* points = 0 without a baseline */
} kiln_bench_series;

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
size_t kiln_bench_median_ci(const double *sorted, size_t n, double level, double *lo, double *hi);
/* Percentile-bootstrap interval of ratio = median(num) / median(den), resampling
 * both sides independently `resamples` times from `seed`. Deterministic. */
void kiln_bench_ratio_ci(const double *num, size_t num_n, const double *den, size_t den_n,
                         unsigned resamples, uint64_t seed, double level, double *lo, double *hi);
/* Convert nanoseconds per operation into `unit` (see kiln_bench_case). Returns 0 and
 * writes *value, or -1 for an unknown unit. */
int kiln_bench_convert(const char *unit, double work_per_op, double ns_per_op, double *value);
/* Count the values of sorted[0..n) outside Tukey's fences (1.5 IQR beyond Q1, Q3). */
uint64_t kiln_bench_outliers(const double *sorted, size_t n);
/* Fit log t over log n (see kiln_bench_fit); n and t positive, any order. Returns 0,
 * or -1 with fewer than 2 usable points or all n equal (fit zeroed). */
int kiln_bench_fit_scaling(const double *n, const double *t, size_t count, kiln_bench_fit *fit);
/* Parse an axis value: an integer with an optional binary suffix (K, KiB, M, MiB, G,
 * GiB). Returns 0, or -1 when malformed or out of range. */
int kiln_bench_parse_int(const char *text, int64_t *value);
/* 1 when a case of `suite` has an axis named `name`. */
int kiln_bench_suite_has_axis(const kiln_bench_suite *suite, const char *name);
/* Check config's axis overrides against the suites that will run: each must name an
 * axis of one of them, have 1..64 values, and every value must parse on the numeric
 * axes of that name. Returns 0, or -1 with the reason in error[0..error_size). */
int kiln_bench_check_overrides(const kiln_bench_config *config,
                               const kiln_bench_suite *const *suites, size_t count, char *error,
                               size_t error_size);
/* Runs of `bcase` under config's overrides: the product of its axes' value counts
 * (1 without axes). */
size_t kiln_bench_case_runs(const kiln_bench_config *config, const kiln_bench_case *bcase);
/* Whether config->cases selects the case (1 when config or its filter is NULL or ""). */
int kiln_bench_case_selected(const kiln_bench_config *config, const char *case_name);

/* The host monotonic clock (CLOCK_MONOTONIC) in ns; `user` is ignored. */
uint64_t kiln_bench_clock_monotonic(void *user);

/* ---- running ---- */

/* Run one case (at the first value of each axis); fills *result (free its arrays with
 * kiln_bench_result_clear). Returns KILN_SUCCESS when measured; a failing case returns
 * KILN_ERROR_BACKEND (its function failed) or the device's error, with result->message
 * saying what happened. */
kiln_status kiln_bench_run_case(const kiln_bench_config *config, const kiln_bench_suite *suite,
                                const kiln_bench_case *bcase, kiln_bench_result *result);
/* Run combination `run` (< kiln_bench_case_runs) of the case's axis values; the last
 * axis varies fastest. */
kiln_status kiln_bench_run_case_at(const kiln_bench_config *config, const kiln_bench_suite *suite,
                                   const kiln_bench_case *bcase, size_t run,
                                   kiln_bench_result *result);
void kiln_bench_result_clear(kiln_bench_result *result);

kiln_status kiln_bench_report_create(kiln_bench_report **report);
void kiln_bench_report_destroy(kiln_bench_report *report);
/* Run every case of `suite` (each combination of its axes' values), adding each result
 * (failed ones too) to the report. Returns the first failure, after running the rest;
 * KILN_ERROR_INVALID_ARGUMENT before running anything when an axis override's value
 * does not parse (the report's last error says which). */
kiln_status kiln_bench_run_suite(const kiln_bench_config *config, const kiln_bench_suite *suite,
                                 kiln_bench_report *report);
size_t kiln_bench_report_count(const kiln_bench_report *report);
const kiln_bench_result *kiln_bench_report_get(const kiln_bench_report *report, size_t i);

/* The JSON document of design.md "Benchmarks" (schemas/bench.json); failed results are
 * left out. Returns KILN_ERROR_IO when writing fails. */
kiln_status kiln_bench_report_write_json(const kiln_bench_report *report, FILE *out);
/* A readable table: case, kiln median [ci], baseline median, ratio [ci], goal; then
 * the scaling fits. */
void kiln_bench_report_print(const kiln_bench_report *report, FILE *out);
/* Other formats; each returns KILN_ERROR_IO when writing fails. CSV: one header line
 * and one line per measured result, every line with the same columns (RFC 4180
 * quoting). Markdown: a table per suite and the scaling fits. LaTeX: a standalone
 * document (base LaTeX only) with a tabular per suite. HTML: one self-contained XHTML
 * file (parses as XML; no script, no external resource) with inline SVG: per suite a
 * chart of kiln vs baseline per case with 95% interval bars and the ratios, and one
 * log-log scaling plot per series with its fitted slope(s). */
kiln_status kiln_bench_report_write_csv(const kiln_bench_report *report, FILE *out);
kiln_status kiln_bench_report_write_markdown(const kiln_bench_report *report, FILE *out);
kiln_status kiln_bench_report_write_latex(const kiln_bench_report *report, FILE *out);
kiln_status kiln_bench_report_write_html(const kiln_bench_report *report, FILE *out);
/* The scaling series of the report's measured results (computed when asked, kept until
 * the report changes or is destroyed). */
size_t kiln_bench_report_series_count(kiln_bench_report *report);
const kiln_bench_series *kiln_bench_report_series_get(kiln_bench_report *report, size_t i);
/* Text of one result's canonical parameters: "bytes=4096,mode=x" ("" without any). */
void kiln_bench_params_text(const kiln_bench_result *result, char *buf, size_t size);

/* ---- regression: compare two JSON runs ---- */

typedef enum kiln_bench_verdict {
  KILN_BENCH_SAME = 0,   /* the 95% intervals of the medians overlap */
  KILN_BENCH_FASTER = 1, /* they separate, the new one better */
  KILN_BENCH_SLOWER = 2  /* they separate, the new one worse */
} kiln_bench_verdict;

typedef struct kiln_bench_compare_summary {
  size_t matched, faster, slower, same;
  size_t regressions; /* slower by more than the threshold */
  size_t only_old, only_new;
  double worst_slowdown; /* the largest slowdown among matched results, as a fraction
                          * of time (0.10: 10% more time per op); <= 0 when none */
} kiln_bench_compare_summary;

/* Read two documents of kiln_bench_report_write_json, match their results on suite,
 * name, canonical params and device (backend, index, name), judge each matched pair
 * on the kiln side's median and 95% interval: SLOWER or FASTER when the intervals
 * separate, SAME otherwise; a SLOWER one whose time per op grew by more than
 * `threshold` (0.05 = 5%; <= 0: the default 5%) is a regression. Prints a table to
 * `table` (may be NULL). Returns KILN_SUCCESS, or KILN_ERROR_INVALID_ARGUMENT on bad
 * input — unreadable or malformed JSON, a directory, a document that breaks
 * schemas/bench.json or holds impossible statistics (a median that is not positive and
 * finite, lo > median, min > median, batch_size < 1, …; docs/benchmarks.md), no result
 * in common — with the reason (file, result, field, value) in error[0..error_size). */
kiln_status kiln_bench_compare_files(const char *old_path, const char *new_path, double threshold,
                                     FILE *table, kiln_bench_compare_summary *summary, char *error,
                                     size_t error_size);
/* "met", "missed" or "unclear" (the interval straddles the goal), judged on
 * ratio_ci95; NULL when the case has no goal or no baseline. */
const char *kiln_bench_goal_verdict(const kiln_bench_result *result);

KILN_END_DECLS
#endif
