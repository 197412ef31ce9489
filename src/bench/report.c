/* SPDX-License-Identifier: MIT */
/* A report collects the results of a run (one per case and axis combination, failed
 * ones included), finds its scaling series (runs of one case over a scaling axis, all
 * else equal) and fits them, and writes the JSON document of design.md "Benchmarks"
 * (schemas/bench.json) or a readable table. The report owns its results, their sample
 * arrays and the series; the other formats are in formats.c and html.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "kiln/bench.h"
#include "bench_internal.h"

typedef struct series_store {
  kiln_bench_series pub;
  const kiln_bench_result **results;
  double *n, *kiln_ns, *baseline_ns;
} series_store;

struct kiln_bench_report {
  kiln_bench_result *results;
  size_t count, capacity;
  series_store *series;
  size_t series_count;
  size_t series_for; /* the result count the series were computed for; 0: none */
};

const char kiln__bench_timing_note[] =
    "host timing: CLOCK_MONOTONIC around each batch of batch_size operations (device "
    "timing: the case's own event timing, used only when both sides have it); kiln and "
    "baseline batches interleaved in one process, in pairs whose order alternates (kiln "
    "first, then baseline first) with a 200 us idle gap before each batch, after "
    "calibration and warm-up; statistics are over per-operation values of the timed "
    "batches, in the case's unit; outliers (beyond 1.5 IQR) are kept and counted; ci95 "
    "is the distribution-free 95% interval of the median from order statistics "
    "(binomial method; [min, max] below 6 samples); ratio > 1 means kiln is better "
    "(baseline/kiln for times, kiln/baseline for rates); ratio_ci95 is a percentile "
    "bootstrap (2000 resamples of each side, fixed seed) of the ratio of medians; "
    "scaling fits are least squares of ln(ns per op) over ln(n); on a shared or 2-core "
    "host absolute figures are noisy, judge goals on ratio_ci95";

static void drop_series(kiln_bench_report *report) {
  for (size_t i = 0; i < report->series_count; i++) {
    free(report->series[i].results);
    free(report->series[i].n);
    free(report->series[i].kiln_ns);
    free(report->series[i].baseline_ns);
  }
  free(report->series);
  report->series = NULL;
  report->series_count = 0;
  report->series_for = 0;
}

kiln_status kiln_bench_report_create(kiln_bench_report **report) {
  if (report == NULL)
    return KILN_ERROR_INVALID_ARGUMENT;
  *report = calloc(1, sizeof **report);
  return *report != NULL ? KILN_SUCCESS : KILN_ERROR_OUT_OF_HOST_MEMORY;
}

void kiln_bench_report_destroy(kiln_bench_report *report) {
  if (report == NULL)
    return;
  drop_series(report);
  for (size_t i = 0; i < report->count; i++)
    kiln_bench_result_clear(&report->results[i]);
  free(report->results);
  free(report);
}

size_t kiln_bench_report_count(const kiln_bench_report *report) {
  return report != NULL ? report->count : 0;
}

const kiln_bench_result *kiln_bench_report_get(const kiln_bench_report *report, size_t i) {
  return report != NULL && i < report->count ? &report->results[i] : NULL;
}

size_t kiln__bench_measured(const kiln_bench_report *report, const kiln_bench_result **out,
                            size_t max) {
  size_t m = 0;
  for (size_t i = 0; report != NULL && i < report->count; i++)
    if (report->results[i].status == 0) {
      if (m < max)
        out[m] = &report->results[i];
      m++;
    }
  return m;
}

void kiln__bench_fmt(char *buf, size_t size, double v) {
  if (isfinite(v))
    snprintf(buf, size, "%.4g", v);
  else
    snprintf(buf, size, "-");
}

kiln_status kiln_bench_run_suite(const kiln_bench_config *config, const kiln_bench_suite *suite,
                                 kiln_bench_report *report) {
  if (suite == NULL || report == NULL)
    return KILN_ERROR_INVALID_ARGUMENT;
  char err[256];
  if (kiln_bench_check_overrides(config, &suite, 1, err, sizeof err) != 0 &&
      strncmp(err, "unknown axis", 12) != 0) /* another suite may have that axis */
    return KILN_ERROR_INVALID_ARGUMENT;
  size_t total = 0;
  for (size_t i = 0; i < suite->case_count; i++)
    total += kiln_bench_case_runs(config, &suite->cases[i]);
  kiln_status first = KILN_SUCCESS;
  size_t index = 0;
  drop_series(report);
  for (size_t i = 0; i < suite->case_count; i++) {
    size_t runs = kiln_bench_case_runs(config, &suite->cases[i]);
    for (size_t run = 0; run < runs; run++, index++) {
      if (report->count == report->capacity) {
        size_t cap = report->capacity ? report->capacity * 2 : 8;
        kiln_bench_result *grown = realloc(report->results, cap * sizeof *grown);
        if (grown == NULL)
          return KILN_ERROR_OUT_OF_HOST_MEMORY;
        report->results = grown;
        report->capacity = cap;
        /* string parameters point into their result's own storage: re-aim them */
        for (size_t k = 0; k < report->count; k++)
          for (size_t q = 0; q < grown[k].param_count; q++)
            if (grown[k].params[q].str != NULL)
              grown[k].params[q].str = grown[k].param_text[q];
      }
      kiln_bench_result *r = &report->results[report->count++];
      kiln_status st = kiln__bench_run(config, suite, &suite->cases[i], run, index, total, r);
      if (st != KILN_SUCCESS && first == KILN_SUCCESS)
        first = st;
      if (config != NULL && config->progress != NULL)
        config->progress(r, config->progress_user);
    }
  }
  return first;
}

/* ---- scaling series ---- */

/* Median per-op ns of one side's samples. */
static double median_ns(const double *ns, size_t n) {
  double *tmp = malloc(n * sizeof *tmp);
  if (tmp == NULL)
    return NAN;
  memcpy(tmp, ns, n * sizeof *tmp);
  kiln_bench_stats st;
  kiln_bench_stats_compute(tmp, n, &st);
  free(tmp);
  return st.median;
}

/* Same series: same suite, case and device, and every parameter but `axis` equal. */
static int same_series(const kiln_bench_result *a, const kiln_bench_result *b, const char *axis) {
  if (a->suite != b->suite || a->bcase != b->bcase || a->param_count != b->param_count ||
      strcmp(a->device_backend, b->device_backend) != 0 || a->device_index != b->device_index)
    return 0;
  for (size_t i = 0; i < a->param_count; i++) {
    const kiln_bench_param *p = &a->params[i], *q = &b->params[i];
    if (strcmp(p->key, q->key) != 0)
      return 0;
    if (strcmp(p->key, axis) == 0)
      continue;
    if ((p->str == NULL) != (q->str == NULL))
      return 0;
    if (p->str != NULL ? strcmp(p->str, q->str) != 0 : p->num != q->num)
      return 0;
  }
  return 1;
}

static const kiln_bench_param *param_of(const kiln_bench_result *r, const char *key) {
  for (size_t i = 0; i < r->param_count; i++)
    if (strcmp(r->params[i].key, key) == 0)
      return &r->params[i];
  return NULL;
}

/* The size of the series result i opens over `axis`: 0 when an earlier result opened it
 * already, or when it would have fewer than 2 points. */
static size_t series_size(const kiln_bench_report *rep, size_t i, const char *axis) {
  const kiln_bench_result *r0 = &rep->results[i];
  for (size_t k = 0; k < i; k++)
    if (rep->results[k].status == 0 && same_series(&rep->results[k], r0, axis))
      return 0;
  size_t m = 0;
  for (size_t k = i; k < rep->count; k++)
    m += rep->results[k].status == 0 && same_series(&rep->results[k], r0, axis);
  return m >= 2 ? m : 0;
}

/* A new zeroed series at the end of the report's, or NULL without memory. */
static series_store *series_add(kiln_bench_report *rep, size_t *cap) {
  if (rep->series_count == *cap) {
    size_t grown = *cap ? 2 * *cap : 4;
    series_store *g = realloc(rep->series, grown * sizeof *g);
    if (g == NULL)
      return NULL;
    rep->series = g;
    *cap = grown;
  }
  series_store *st = &rep->series[rep->series_count++];
  memset(st, 0, sizeof *st);
  return st;
}

/* "cpu/copy over bytes other=value ..." */
static void series_label(kiln_bench_series *p, const kiln_bench_result *r0) {
  int len = snprintf(p->label, sizeof p->label, "%s/%s over %s", p->suite, p->name, p->axis);
  for (size_t q = 0; q < r0->param_count && len > 0 && (size_t)len < sizeof p->label; q++) {
    const kiln_bench_param *pp = &r0->params[q];
    if (strcmp(pp->key, p->axis) == 0)
      continue;
    int more = pp->str != NULL ? snprintf(p->label + len, sizeof p->label - (size_t)len, " %s=%s",
                                          pp->key, pp->str)
                               : snprintf(p->label + len, sizeof p->label - (size_t)len, " %s=%lld",
                                          pp->key, (long long)pp->num);
    len += more > 0 ? more : 0;
  }
}

/* Fill st with the m results of the series result i opens over `axis`, sorted by the
 * axis value, their median per-op times and the fits; -1 without memory. */
static int series_fill(series_store *st, const kiln_bench_report *rep, size_t i, const char *axis,
                       size_t m) {
  const kiln_bench_result *r0 = &rep->results[i];
  st->results = calloc(m, sizeof *st->results);
  st->n = calloc(m, sizeof(double));
  st->kiln_ns = calloc(m, sizeof(double));
  st->baseline_ns = r0->has_baseline ? calloc(m, sizeof(double)) : NULL;
  if (st->results == NULL || st->n == NULL || st->kiln_ns == NULL ||
      (r0->has_baseline && st->baseline_ns == NULL))
    return -1;
  size_t j = 0;
  for (size_t k = i; k < rep->count; k++) {
    const kiln_bench_result *r = &rep->results[k];
    if (r->status != 0 || !same_series(r, r0, axis))
      continue;
    /* insertion by n */
    double n = (double)param_of(r, axis)->num;
    size_t at = j++;
    for (; at > 0 && st->n[at - 1] > n; at--) {
      st->n[at] = st->n[at - 1];
      st->results[at] = st->results[at - 1];
    }
    st->n[at] = n;
    st->results[at] = r;
  }
  for (size_t k = 0; k < m; k++) {
    const kiln_bench_result *r = st->results[k];
    st->kiln_ns[k] = median_ns(r->kiln_ns, r->kiln.samples);
    if (st->baseline_ns != NULL)
      st->baseline_ns[k] = r->has_baseline ? median_ns(r->baseline_ns, r->baseline.samples) : NAN;
  }
  kiln_bench_series *p = &st->pub;
  p->suite = r0->suite->name;
  p->name = r0->bcase->name;
  p->axis = axis;
  p->count = m;
  p->results = st->results;
  p->n = st->n;
  p->kiln_ns = st->kiln_ns;
  p->baseline_ns = st->baseline_ns;
  series_label(p, r0);
  kiln_bench_fit_scaling(st->n, st->kiln_ns, m, &p->kiln_fit);
  if (st->baseline_ns != NULL)
    kiln_bench_fit_scaling(st->n, st->baseline_ns, m, &p->baseline_fit);
  return 0;
}

/* Every series of the measured results: a result opens one per scaling axis of its
 * case unless an earlier result of the same series did. */
static int build_series(kiln_bench_report *rep) {
  drop_series(rep);
  size_t cap = 0;
  for (size_t i = 0; i < rep->count; i++) {
    const kiln_bench_result *r0 = &rep->results[i];
    if (r0->status != 0)
      continue;
    for (size_t a = 0; a < r0->bcase->axis_count; a++) {
      const kiln_bench_axis *ax = &r0->bcase->axes[a];
      size_t m = ax->scaling && ax->nums != NULL ? series_size(rep, i, ax->name) : 0;
      if (m == 0)
        continue;
      series_store *st = series_add(rep, &cap);
      if (st == NULL || series_fill(st, rep, i, ax->name, m) != 0) {
        drop_series(rep);
        return -1;
      }
    }
  }
  rep->series_for = rep->count;
  return 0;
}

size_t kiln_bench_report_series_count(kiln_bench_report *report) {
  if (report == NULL)
    return 0;
  if (report->series_for != report->count || report->count == 0)
    build_series(report);
  return report->series_count;
}

const kiln_bench_series *kiln_bench_report_series_get(kiln_bench_report *report, size_t i) {
  return i < kiln_bench_report_series_count(report) ? &report->series[i].pub : NULL;
}

/* ---- JSON ---- */

static void write_stats(kiln__json *j, const kiln_bench_stats *s) {
  kiln__json_number(j, "median", s->median);
  kiln__json_number(j, "mean", s->mean);
  kiln__json_number(j, "min", s->min);
  kiln__json_number(j, "max", s->max);
  kiln__json_number(j, "p5", s->p5);
  kiln__json_number(j, "p50", s->p50);
  kiln__json_number(j, "p95", s->p95);
  kiln__json_number(j, "p99", s->p99);
  kiln__json_number(j, "stddev", s->stddev);
  kiln__json_begin_array(j, "ci95");
  kiln__json_number(j, NULL, s->ci95_lo);
  kiln__json_number(j, NULL, s->ci95_hi);
  kiln__json_end_array(j);
  kiln__json_uint(j, "samples", s->samples);
  kiln__json_uint(j, "outliers", s->outliers);
}

/* The "device" member of a result or a series: backend, index and name. */
static void write_device(kiln__json *j, const kiln_bench_result *r) {
  kiln__json_begin_object(j, "device");
  kiln__json_string(j, "backend", r->device_backend);
  kiln__json_uint(j, "index", r->device_index);
  kiln__json_string(j, "name", r->device_name);
  kiln__json_end_object(j);
}

static void write_result(kiln__json *j, const kiln_bench_result *r) {
  const kiln_bench_case *c = r->bcase;
  kiln__json_begin_object(j, NULL);
  kiln__json_string(j, "suite", r->suite->name);
  kiln__json_string(j, "name", c->name);
  write_device(j, r);
  kiln__json_begin_object(j, "params");
  for (size_t i = 0; i < r->param_count; i++) {
    const kiln_bench_param *p = &r->params[i];
    if (p->str != NULL)
      kiln__json_string(j, p->key, p->str);
    else
      kiln__json_int(j, p->key, p->num);
  }
  kiln__json_end_object(j);
  kiln__json_string(j, "unit", c->unit);
  kiln__json_string(j, "better", c->better == KILN_BENCH_HIGHER ? "higher" : "lower");
  kiln__json_string(j, "timing",
                    !r->device_timing                  ? "host"
                    : strcmp(r->bcase->unit, "x") == 0 ? "measured"
                                                       : "device");
  kiln__json_uint(j, "batch_size", r->batch_size);
  if (r->work_per_op > 0.0)
    kiln__json_number(j, "work_per_op", r->work_per_op);
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

static void write_fit(kiln__json *j, const char *key, const kiln_bench_fit *f) {
  if (f->points < 2) {
    kiln__json_null(j, key);
    return;
  }
  kiln__json_begin_object(j, key);
  kiln__json_number(j, "slope", f->slope);
  kiln__json_number(j, "intercept", f->intercept);
  kiln__json_number(j, "r2", f->r2);
  if (f->has_break) {
    kiln__json_begin_object(j, "breakpoint");
    kiln__json_number(j, "n", f->break_n);
    kiln__json_number(j, "slope_below", f->slope_below);
    kiln__json_number(j, "slope_above", f->slope_above);
    kiln__json_end_object(j);
  } else {
    kiln__json_null(j, "breakpoint");
  }
  kiln__json_end_object(j);
}

kiln_status kiln_bench_report_write_json(const kiln_bench_report *report, FILE *out) {
  if (report == NULL || out == NULL)
    return KILN_ERROR_INVALID_ARGUMENT;
  kiln__bench_host host;
  kiln__bench_host_get(&host);
  kiln__json j;
  kiln__json_init(&j, out, 1);
  kiln__json_begin_object(&j, NULL);
  kiln__json_string(&j, "kiln_version", kiln_version_string());
  kiln__json_begin_object(&j, "host");
  kiln__json_string(&j, "hostname", host.hostname);
  kiln__json_string(&j, "cpu", host.cpu);
  kiln__json_uint(&j, "cores", host.cores);
  kiln__json_string(&j, "os", host.os);
  kiln__json_end_object(&j);
  kiln__json_string(&j, "timing_note", kiln__bench_timing_note);
  kiln__json_begin_array(&j, "results");
  for (size_t i = 0; i < report->count; i++)
    if (report->results[i].status == 0)
      write_result(&j, &report->results[i]);
  kiln__json_end_array(&j);
  /* the series are a cache: computing them does not change what the report holds */
  kiln_bench_report *rep = (kiln_bench_report *)report;
  size_t ns = kiln_bench_report_series_count(rep);
  kiln__json_begin_array(&j, "scaling");
  for (size_t i = 0; i < ns; i++) {
    const kiln_bench_series *s = kiln_bench_report_series_get(rep, i);
    const kiln_bench_result *r0 = s->results[0];
    kiln__json_begin_object(&j, NULL);
    kiln__json_string(&j, "suite", s->suite);
    kiln__json_string(&j, "name", s->name);
    kiln__json_string(&j, "axis", s->axis);
    write_device(&j, r0);
    kiln__json_begin_array(&j, "n");
    for (size_t k = 0; k < s->count; k++)
      kiln__json_number(&j, NULL, s->n[k]);
    kiln__json_end_array(&j);
    kiln__json_begin_array(&j, "kiln_ns");
    for (size_t k = 0; k < s->count; k++)
      kiln__json_number(&j, NULL, s->kiln_ns[k]);
    kiln__json_end_array(&j);
    write_fit(&j, "kiln_fit", &s->kiln_fit);
    if (s->baseline_ns != NULL) {
      kiln__json_begin_array(&j, "baseline_ns");
      for (size_t k = 0; k < s->count; k++)
        kiln__json_number(&j, NULL, s->baseline_ns[k]);
      kiln__json_end_array(&j);
    } else {
      kiln__json_null(&j, "baseline_ns");
    }
    write_fit(&j, "baseline_fit", &s->baseline_fit);
    kiln__json_end_object(&j);
  }
  kiln__json_end_array(&j);
  kiln__json_end_object(&j);
  return kiln__json_finish(&j) == 0 ? KILN_SUCCESS : KILN_ERROR_IO;
}

const char *kiln_bench_goal_verdict(const kiln_bench_result *r) {
  if (r == NULL || r->status != 0 || !r->has_baseline || !(r->bcase->goal_ratio > 0.0))
    return NULL;
  if (r->baseline_name != r->bcase->baseline_name)
    return NULL; /* a self-test */
  if (r->ratio_lo >= r->bcase->goal_ratio)
    return "met";
  if (r->ratio_hi < r->bcase->goal_ratio)
    return "missed";
  return "unclear";
}

/* "slope 1.02" or "slope 0.05 below n=65536, 0.98 above" */
void kiln__bench_fit_text(const kiln_bench_fit *f, char *buf, size_t size) {
  if (f->points < 2) {
    snprintf(buf, size, "-");
  } else if (f->has_break) {
    snprintf(buf, size, "time ~ n^%.2f overall; n^%.2f up to n=%.0f, n^%.2f above", f->slope,
             f->slope_below, f->break_n, f->slope_above);
  } else {
    snprintf(buf, size, "time ~ n^%.2f (r2 %.3f)", f->slope, f->r2);
  }
}

void kiln_bench_report_print(const kiln_bench_report *report, FILE *out) {
  if (report == NULL || out == NULL)
    return;
  const kiln_bench_suite *suite = NULL;
  for (size_t i = 0; i < report->count; i++) {
    const kiln_bench_result *r = &report->results[i];
    const kiln_bench_case *c = r->bcase;
    if (r->suite != suite) {
      suite = r->suite;
      if (r->device_backend[0] != '\0')
        fprintf(out, "\nsuite %s on %s:%u (%s)\n", suite->name, r->device_backend, r->device_index,
                r->device_name);
      else
        fprintf(out, "\nsuite %s (no device)\n", suite->name);
      fprintf(out, "%-24s %-6s %-30s %-32s %-22s %-4s %s\n", "case", "unit", "kiln median [95% CI]",
              "baseline median [95% CI]", "ratio [95% CI]", "out", "goal");
    }
    if (r->status != 0) {
      fprintf(out, "%-24s FAILED: %s\n", r->label, r->message);
      continue;
    }
    char kiln_col[64], base_col[80], ratio_col[48], goal_col[96], out_col[24];
    snprintf(kiln_col, sizeof kiln_col, "%.4g [%.4g, %.4g]", r->kiln.median, r->kiln.ci95_lo,
             r->kiln.ci95_hi);
    if (r->has_baseline) {
      snprintf(base_col, sizeof base_col, "%.4g [%.4g, %.4g] %.16s", r->baseline.median,
               r->baseline.ci95_lo, r->baseline.ci95_hi, r->baseline_name);
      snprintf(ratio_col, sizeof ratio_col, "%.3f [%.3f, %.3f]", r->ratio, r->ratio_lo,
               r->ratio_hi);
      snprintf(out_col, sizeof out_col, "%llu/%llu", (unsigned long long)r->kiln.outliers,
               (unsigned long long)r->baseline.outliers);
    } else {
      snprintf(base_col, sizeof base_col, "-");
      snprintf(ratio_col, sizeof ratio_col, "-");
      snprintf(out_col, sizeof out_col, "%llu", (unsigned long long)r->kiln.outliers);
    }
    const char *verdict = kiln_bench_goal_verdict(r);
    if (verdict != NULL)
      snprintf(goal_col, sizeof goal_col, ">= %.2f: %s", c->goal_ratio, verdict);
    else
      snprintf(goal_col, sizeof goal_col, "-");
    fprintf(out, "%-24s %-6s %-30s %-32s %-22s %-4s %s\n", r->label, c->unit, kiln_col, base_col,
            ratio_col, out_col, goal_col);
  }
  kiln_bench_report *rep = (kiln_bench_report *)report;
  size_t ns = kiln_bench_report_series_count(rep);
  if (ns > 0)
    fprintf(out, "\nscaling (least squares of ln ns/op over ln n)\n");
  for (size_t i = 0; i < ns; i++) {
    const kiln_bench_series *s = kiln_bench_report_series_get(rep, i);
    char kf[160], bf[160];
    kiln__bench_fit_text(&s->kiln_fit, kf, sizeof kf);
    fprintf(out, "  %s (%zu points): kiln %s\n", s->label, s->count, kf);
    if (s->baseline_ns != NULL) {
      kiln__bench_fit_text(&s->baseline_fit, bf, sizeof bf);
      fprintf(out, "  %*s baseline %s\n", (int)strlen(s->label) + (s->count > 9 ? 13 : 12), "", bf);
    }
  }
  fprintf(out, "\nratio > 1: kiln is better; samples of batch_size ops each; out: outliers "
               "(beyond 1.5 IQR, kept) kiln/baseline; goals are judged on the ratio's 95%% "
               "interval and reported, never asserted\n");
}
