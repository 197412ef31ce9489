/* SPDX-License-Identifier: MIT */
/* A report collects the results of a run (one per case, failed ones included) and
 * writes them as the JSON document of design.md "Benchmarks" (schemas/bench.json) or
 * as a readable table. The report owns its results and their sample arrays. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "kiln/bench.h"
#include "bench_internal.h"

struct kiln_bench_report {
  kiln_bench_result *results;
  size_t count, capacity;
};

static const char timing_note[] =
    "host timing: CLOCK_MONOTONIC around each batch of batch_size operations; kiln and "
    "baseline batches interleaved (kiln, baseline, ...) in one process after calibration "
    "and warm-up; statistics are over per-operation values of the timed batches, in the "
    "case's unit; ci95 is the distribution-free 95% interval of the median from order "
    "statistics (binomial method; [min, max] below 6 samples); ratio > 1 means kiln is "
    "better (baseline/kiln for times, kiln/baseline for rates); ratio_ci95 is a "
    "percentile bootstrap (2000 resamples of each side, fixed seed) of the ratio of "
    "medians; on a shared or 2-core host absolute figures are noisy, judge goals on "
    "ratio_ci95";

kiln_status kiln_bench_report_create(kiln_bench_report **report) {
  if (report == NULL) return KILN_ERROR_INVALID_ARGUMENT;
  *report = calloc(1, sizeof **report);
  return *report != NULL ? KILN_SUCCESS : KILN_ERROR_OUT_OF_HOST_MEMORY;
}

void kiln_bench_report_destroy(kiln_bench_report *report) {
  if (report == NULL) return;
  for (size_t i = 0; i < report->count; i++) kiln_bench_result_clear(&report->results[i]);
  free(report->results);
  free(report);
}

size_t kiln_bench_report_count(const kiln_bench_report *report) {
  return report != NULL ? report->count : 0;
}

const kiln_bench_result *kiln_bench_report_get(const kiln_bench_report *report, size_t i) {
  return report != NULL && i < report->count ? &report->results[i] : NULL;
}

kiln_status kiln_bench_run_suite(const kiln_bench_config *config,
                                 const kiln_bench_suite *suite, kiln_bench_report *report) {
  if (suite == NULL || report == NULL) return KILN_ERROR_INVALID_ARGUMENT;
  kiln_status first = KILN_SUCCESS;
  for (size_t i = 0; i < suite->case_count; i++) {
    if (report->count == report->capacity) {
      size_t cap = report->capacity ? report->capacity * 2 : 8;
      kiln_bench_result *grown = realloc(report->results, cap * sizeof *grown);
      if (grown == NULL) return KILN_ERROR_OUT_OF_HOST_MEMORY;
      report->results = grown;
      report->capacity = cap;
    }
    kiln_bench_result *r = &report->results[report->count++];
    kiln_status st = kiln_bench_run_case(config, suite, &suite->cases[i], r);
    if (st != KILN_SUCCESS && first == KILN_SUCCESS) first = st;
    if (config != NULL && config->progress != NULL) config->progress(r, config->progress_user);
  }
  return first;
}

static void write_stats(kiln__json *j, const kiln_bench_stats *s) {
  kiln__json_number(j, "median", s->median);
  kiln__json_number(j, "min", s->min);
  kiln__json_number(j, "max", s->max);
  kiln__json_number(j, "p95", s->p95);
  kiln__json_number(j, "stddev", s->stddev);
  kiln__json_begin_array(j, "ci95");
  kiln__json_number(j, NULL, s->ci95_lo);
  kiln__json_number(j, NULL, s->ci95_hi);
  kiln__json_end_array(j);
  kiln__json_uint(j, "samples", s->samples);
}

static void write_result(kiln__json *j, const kiln_bench_result *r) {
  const kiln_bench_case *c = r->bcase;
  kiln__json_begin_object(j, NULL);
  kiln__json_string(j, "suite", r->suite->name);
  kiln__json_string(j, "name", c->name);
  kiln__json_begin_object(j, "device");
  kiln__json_string(j, "backend", r->device_backend);
  kiln__json_uint(j, "index", r->device_index);
  kiln__json_string(j, "name", r->device_name);
  kiln__json_end_object(j);
  kiln__json_begin_object(j, "params");
  for (size_t i = 0; i < c->param_count; i++) {
    const kiln_bench_param *p = &c->params[i];
    if (p->str != NULL)
      kiln__json_string(j, p->key, p->str);
    else
      kiln__json_int(j, p->key, p->num);
  }
  kiln__json_end_object(j);
  kiln__json_string(j, "unit", c->unit);
  kiln__json_string(j, "better", c->better == KILN_BENCH_HIGHER ? "higher" : "lower");
  kiln__json_string(j, "timing", "host");
  kiln__json_uint(j, "batch_size", r->batch_size);
  kiln__json_begin_object(j, "kiln");
  write_stats(j, &r->kiln);
  kiln__json_end_object(j);
  if (r->has_baseline) {
    kiln__json_begin_object(j, "baseline");
    kiln__json_string(j, "name", r->baseline_name);
    write_stats(j, &r->baseline);
    kiln__json_end_object(j);
  } else {
    kiln__json_null(j, "baseline");
  }
  if (r->has_baseline && isfinite(r->ratio) && isfinite(r->ratio_lo) && isfinite(r->ratio_hi)) {
    kiln__json_number(j, "ratio", r->ratio);
    kiln__json_begin_array(j, "ratio_ci95");
    kiln__json_number(j, NULL, r->ratio_lo);
    kiln__json_number(j, NULL, r->ratio_hi);
    kiln__json_end_array(j);
  } else {
    kiln__json_null(j, "ratio");
    kiln__json_null(j, "ratio_ci95");
  }
  kiln__json_end_object(j);
}

kiln_status kiln_bench_report_write_json(const kiln_bench_report *report, FILE *out) {
  if (report == NULL || out == NULL) return KILN_ERROR_INVALID_ARGUMENT;
  kiln__bench_host host;
  kiln__bench_host_get(&host);
  kiln__json j;
  kiln__json_init(&j, out);
  kiln__json_begin_object(&j, NULL);
  kiln__json_string(&j, "kiln_version", kiln_version_string());
  kiln__json_begin_object(&j, "host");
  kiln__json_string(&j, "hostname", host.hostname);
  kiln__json_string(&j, "cpu", host.cpu);
  kiln__json_uint(&j, "cores", host.cores);
  kiln__json_string(&j, "os", host.os);
  kiln__json_end_object(&j);
  kiln__json_string(&j, "timing_note", timing_note);
  kiln__json_begin_array(&j, "results");
  for (size_t i = 0; i < report->count; i++)
    if (report->results[i].status == 0) write_result(&j, &report->results[i]);
  kiln__json_end_array(&j);
  kiln__json_end_object(&j);
  return kiln__json_finish(&j) == 0 ? KILN_SUCCESS : KILN_ERROR_IO;
}

const char *kiln_bench_goal_verdict(const kiln_bench_result *r) {
  if (r == NULL || r->status != 0 || !r->has_baseline || !(r->bcase->goal_ratio > 0.0))
    return NULL;
  if (r->baseline_name != r->bcase->baseline_name) return NULL; /* a self-test */
  if (r->ratio_lo >= r->bcase->goal_ratio) return "met";
  if (r->ratio_hi < r->bcase->goal_ratio) return "missed";
  return "unclear";
}

void kiln_bench_report_print(const kiln_bench_report *report, FILE *out) {
  if (report == NULL || out == NULL) return;
  const kiln_bench_suite *suite = NULL;
  for (size_t i = 0; i < report->count; i++) {
    const kiln_bench_result *r = &report->results[i];
    const kiln_bench_case *c = r->bcase;
    if (r->suite != suite) {
      suite = r->suite;
      if (r->device_backend[0] != '\0')
        fprintf(out, "\nsuite %s on %s:%u (%s)\n", suite->name, r->device_backend,
                r->device_index, r->device_name);
      else
        fprintf(out, "\nsuite %s (no device)\n", suite->name);
      fprintf(out, "%-20s %-6s %-30s %-32s %-22s %s\n", "case", "unit",
              "kiln median [95% CI]", "baseline median [95% CI]", "ratio [95% CI]",
              "goal");
    }
    if (r->status != 0) {
      fprintf(out, "%-20s FAILED: %s\n", c->name, r->message);
      continue;
    }
    char kiln_col[64], base_col[80], ratio_col[48], goal_col[96];
    snprintf(kiln_col, sizeof kiln_col, "%.4g [%.4g, %.4g]", r->kiln.median, r->kiln.ci95_lo,
             r->kiln.ci95_hi);
    if (r->has_baseline) {
      snprintf(base_col, sizeof base_col, "%.4g [%.4g, %.4g] %.16s", r->baseline.median,
               r->baseline.ci95_lo, r->baseline.ci95_hi, r->baseline_name);
      snprintf(ratio_col, sizeof ratio_col, "%.3f [%.3f, %.3f]", r->ratio, r->ratio_lo,
               r->ratio_hi);
    } else {
      snprintf(base_col, sizeof base_col, "-");
      snprintf(ratio_col, sizeof ratio_col, "-");
    }
    const char *verdict = kiln_bench_goal_verdict(r);
    if (verdict != NULL)
      snprintf(goal_col, sizeof goal_col, ">= %.2f: %s", c->goal_ratio, verdict);
    else
      snprintf(goal_col, sizeof goal_col, "-");
    fprintf(out, "%-20s %-6s %-30s %-32s %-22s %s\n", c->name, c->unit, kiln_col, base_col,
            ratio_col, goal_col);
  }
  fprintf(out, "\nratio > 1: kiln is better; samples of batch_size ops each; goals are "
               "judged on the ratio's 95%% interval and reported, never asserted\n");
}
