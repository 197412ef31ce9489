/* SPDX-License-Identifier: MIT */
/* The report as CSV (one header, one row per measured result, the same columns in
 * every row, RFC 4180 quoting), Markdown (a table per suite, then the scaling fits)
 * and LaTeX (a standalone document in base LaTeX: a tabular per suite, every special
 * character escaped). Failed results are left out, as in the JSON. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "kiln/bench.h"
#include "bench_internal.h"

/* The measured results, in a malloc'd array (NULL when none or out of memory). */
static const kiln_bench_result **measured(const kiln_bench_report *report, size_t *n) {
  *n = kiln__bench_measured(report, NULL, 0);
  if (*n == 0)
    return NULL;
  const kiln_bench_result **list = malloc(*n * sizeof *list);
  if (list != NULL)
    kiln__bench_measured(report, list, *n);
  return list;
}

static kiln_status finish(FILE *out) {
  return fflush(out) == 0 && !ferror(out) ? KILN_SUCCESS : KILN_ERROR_IO;
}

/* ---- CSV ---- */

static void csv_text(FILE *out, const char *s, int first) {
  if (!first)
    fputc(',', out);
  if (s == NULL)
    return;
  if (strpbrk(s, ",\"\r\n") == NULL) {
    fputs(s, out);
    return;
  }
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"')
      fputc('"', out);
    fputc(*s, out);
  }
  fputc('"', out);
}

static void csv_num(FILE *out, double v) {
  if (isfinite(v))
    fprintf(out, ",%.9g", v);
  else
    fputc(',', out);
}

static const char *const stat_cols[] = {"median", "ci95_lo", "ci95_hi", "mean", "min",
                                        "max",    "p5",      "p50",     "p95",  "p99",
                                        "stddev", "samples", "outliers"};

static void csv_stats(FILE *out, const kiln_bench_stats *s, int present) {
  double v[] = {s->median,
                s->ci95_lo,
                s->ci95_hi,
                s->mean,
                s->min,
                s->max,
                s->p5,
                s->p50,
                s->p95,
                s->p99,
                s->stddev,
                (double)s->samples,
                (double)s->outliers};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    csv_num(out, present ? v[i] : NAN);
}

kiln_status kiln_bench_report_write_csv(const kiln_bench_report *report, FILE *out) {
  if (report == NULL || out == NULL)
    return KILN_ERROR_INVALID_ARGUMENT;
  fputs("suite,name,params,device_backend,device_index,device_name,unit,better,timing,"
        "batch_size",
        out);
  for (int side = 0; side < 2; side++) {
    if (side == 1)
      fputs(",baseline_name", out);
    for (size_t i = 0; i < sizeof stat_cols / sizeof stat_cols[0]; i++)
      fprintf(out, ",%s_%s", side ? "baseline" : "kiln", stat_cols[i]);
  }
  fputs(",ratio,ratio_ci95_lo,ratio_ci95_hi,goal_ratio,goal_verdict\r\n", out);
  size_t n;
  const kiln_bench_result **list = measured(report, &n);
  if (n > 0 && list == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; i < n; i++) {
    const kiln_bench_result *r = list[i];
    char params[512], index[16], batch[24];
    kiln_bench_params_text(r, params, sizeof params);
    snprintf(index, sizeof index, "%u", r->device_index);
    snprintf(batch, sizeof batch, "%llu", (unsigned long long)r->batch_size);
    csv_text(out, r->suite->name, 1);
    csv_text(out, r->bcase->name, 0);
    csv_text(out, params, 0);
    csv_text(out, r->device_backend, 0);
    csv_text(out, index, 0);
    csv_text(out, r->device_name, 0);
    csv_text(out, r->bcase->unit, 0);
    csv_text(out, r->bcase->better == KILN_BENCH_HIGHER ? "higher" : "lower", 0);
    csv_text(out, r->device_timing ? "device" : "host", 0);
    csv_text(out, batch, 0);
    csv_stats(out, &r->kiln, 1);
    csv_text(out, r->has_baseline ? r->baseline_name : NULL, 0);
    csv_stats(out, &r->baseline, r->has_baseline);
    csv_num(out, r->has_baseline ? r->ratio : NAN);
    csv_num(out, r->has_baseline ? r->ratio_lo : NAN);
    csv_num(out, r->has_baseline ? r->ratio_hi : NAN);
    csv_num(out, r->bcase->goal_ratio > 0.0 ? r->bcase->goal_ratio : NAN);
    csv_text(out, kiln_bench_goal_verdict(r), 0);
    fputs("\r\n", out);
  }
  free(list);
  return finish(out);
}

/* ---- Markdown ---- */

static void md_text(FILE *out, const char *s) {
  for (; *s; s++) {
    if (*s == '|' || *s == '\\' || *s == '*' || *s == '_' || *s == '`' || *s == '<' || *s == '[' ||
        *s == ']')
      fputc('\\', out);
    fputc(*s == '\n' ? ' ' : *s, out);
  }
}

static void interval(char *buf, size_t size, double m, double lo, double hi) {
  char a[16], b[16], c[16]; /* %.4g: 11 characters at most */
  kiln__bench_fmt(a, sizeof a, m);
  kiln__bench_fmt(b, sizeof b, lo);
  kiln__bench_fmt(c, sizeof c, hi);
  snprintf(buf, size, "%s [%s, %s]", a, b, c);
}

/* The cells of one result's row, shared by Markdown and LaTeX. */
typedef struct row {
  char kiln[128], base[160], ratio[96], outliers[48], goal[64];
} row;

static void make_row(const kiln_bench_result *r, row *w) {
  interval(w->kiln, sizeof w->kiln, r->kiln.median, r->kiln.ci95_lo, r->kiln.ci95_hi);
  if (r->has_baseline) {
    char iv[96];
    interval(iv, sizeof iv, r->baseline.median, r->baseline.ci95_lo, r->baseline.ci95_hi);
    snprintf(w->base, sizeof w->base, "%s %.24s", iv, r->baseline_name);
    snprintf(w->ratio, sizeof w->ratio, "%.3f [%.3f, %.3f]", r->ratio, r->ratio_lo, r->ratio_hi);
    snprintf(w->outliers, sizeof w->outliers, "%llu / %llu", (unsigned long long)r->kiln.outliers,
             (unsigned long long)r->baseline.outliers);
  } else {
    snprintf(w->base, sizeof w->base, "-");
    snprintf(w->ratio, sizeof w->ratio, "-");
    snprintf(w->outliers, sizeof w->outliers, "%llu", (unsigned long long)r->kiln.outliers);
  }
  const char *v = kiln_bench_goal_verdict(r);
  if (v != NULL)
    snprintf(w->goal, sizeof w->goal, ">= %.2f: %s", r->bcase->goal_ratio, v);
  else
    snprintf(w->goal, sizeof w->goal, "-");
}

/* A scaling series' cells: its point count and both sides' fits in words. */
typedef struct series_row {
  char points[16], kiln[160], base[160];
} series_row;

static void make_series_row(const kiln_bench_series *s, series_row *w) {
  snprintf(w->points, sizeof w->points, "%zu", s->count);
  kiln__bench_fit_text(&s->kiln_fit, w->kiln, sizeof w->kiln);
  if (s->baseline_ns != NULL)
    kiln__bench_fit_text(&s->baseline_fit, w->base, sizeof w->base);
  else
    snprintf(w->base, sizeof w->base, "-");
}

static void md_cells(FILE *out, const char *const *cells, size_t n) {
  fputc('|', out);
  for (size_t i = 0; i < n; i++) {
    fputc(' ', out);
    md_text(out, cells[i]);
    fputs(" |", out);
  }
  fputc('\n', out);
}

kiln_status kiln_bench_report_write_markdown(const kiln_bench_report *report, FILE *out) {
  if (report == NULL || out == NULL)
    return KILN_ERROR_INVALID_ARGUMENT;
  kiln__bench_host host;
  kiln__bench_host_get(&host);
  fprintf(out, "# kiln bench report\n\nkiln %s on ", kiln_version_string());
  md_text(out, host.hostname);
  fputs(" (", out);
  md_text(out, host.cpu);
  fprintf(out, ", %u cores). Ratio > 1: kiln is better. Intervals are 95%%.\n", host.cores);
  size_t n;
  const kiln_bench_result **list = measured(report, &n);
  if (n > 0 && list == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  static const char *const head[] = {
      "case",           "unit",     "timing", "kiln median [95% CI]", "baseline median [95% CI]",
      "ratio [95% CI]", "outliers", "goal"};
  const kiln_bench_suite *suite = NULL;
  for (size_t i = 0; i < n; i++) {
    const kiln_bench_result *r = list[i];
    if (r->suite != suite) {
      suite = r->suite;
      fputs("\n## Suite ", out);
      md_text(out, suite->name);
      fprintf(out, " on %s:%u (", r->device_backend, r->device_index);
      md_text(out, r->device_name);
      fputs(")\n\n", out);
      md_cells(out, head, 8);
      fputs("|---|---|---|---:|---:|---:|---:|---|\n", out);
    }
    row w;
    make_row(r, &w);
    const char *cells[] = {r->label,   r->bcase->unit, r->device_timing ? "device" : "host",
                           w.kiln,     w.base,         w.ratio,
                           w.outliers, w.goal};
    md_cells(out, cells, 8);
  }
  free(list);
  kiln_bench_report *rep = (kiln_bench_report *)report;
  size_t ns = kiln_bench_report_series_count(rep);
  if (ns > 0) {
    static const char *const shead[] = {"series", "points", "kiln", "baseline"};
    fputs("\n## Scaling\n\nLeast squares of ln(ns per op) over ln(n); a breakpoint is shown "
          "where a two-segment fit explains the points materially better.\n\n",
          out);
    md_cells(out, shead, 4);
    fputs("|---|---:|---|---|\n", out);
    for (size_t i = 0; i < ns; i++) {
      const kiln_bench_series *s = kiln_bench_report_series_get(rep, i);
      series_row w;
      make_series_row(s, &w);
      const char *cells[] = {s->label, w.points, w.kiln, w.base};
      md_cells(out, cells, 4);
    }
  }
  return finish(out);
}

/* ---- LaTeX ---- */

static void tex_text(FILE *out, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '\\':
      fputs("\\textbackslash{}", out);
      break;
    case '{':
      fputs("\\{", out);
      break;
    case '}':
      fputs("\\}", out);
      break;
    case '_':
      fputs("\\_", out);
      break;
    case '%':
      fputs("\\%", out);
      break;
    case '&':
      fputs("\\&", out);
      break;
    case '#':
      fputs("\\#", out);
      break;
    case '$':
      fputs("\\$", out);
      break;
    case '~':
      fputs("\\textasciitilde{}", out);
      break;
    case '^':
      fputs("\\textasciicircum{}", out);
      break;
    case '<':
      fputs("\\textless{}", out);
      break;
    case '>':
      fputs("\\textgreater{}", out);
      break;
    case '\n':
      fputc(' ', out);
      break;
    default:
      /* base LaTeX reads ASCII only: anything else becomes '?' */
      fputc((unsigned char)*s < 0x80 ? *s : '?', out);
    }
  }
}

static void tex_cells(FILE *out, const char *const *cells, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i)
      fputs(" & ", out);
    tex_text(out, cells[i]);
  }
  fputs(" \\\\\n", out);
}

kiln_status kiln_bench_report_write_latex(const kiln_bench_report *report, FILE *out) {
  if (report == NULL || out == NULL)
    return KILN_ERROR_INVALID_ARGUMENT;
  kiln__bench_host host;
  kiln__bench_host_get(&host);
  fputs("% kiln bench report: a standalone document in base LaTeX (pdflatex report.tex)\n"
        "\\documentclass[a4paper,landscape]{article}\n"
        "\\begin{document}\n"
        "\\section*{kiln bench report}\n",
        out);
  fputs("kiln ", out);
  tex_text(out, kiln_version_string());
  fputs(" on ", out);
  tex_text(out, host.hostname);
  fputs(" (", out);
  tex_text(out, host.cpu);
  fprintf(out, ", %u cores). Ratio \\textgreater{} 1: kiln is better. Intervals are 95\\%%.\n",
          host.cores);
  size_t n;
  const kiln_bench_result **list = measured(report, &n);
  if (n > 0 && list == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  static const char *const head[] = {
      "case",     "unit", "kiln median [95% CI]", "baseline median [95% CI]", "ratio [95% CI]",
      "outliers", "goal"};
  const kiln_bench_suite *suite = NULL;
  for (size_t i = 0; i < n; i++) {
    const kiln_bench_result *r = list[i];
    if (r->suite != suite) {
      if (suite != NULL)
        fputs("\\hline\n\\end{tabular}\n}\n", out);
      suite = r->suite;
      fputs("\\subsection*{Suite ", out);
      tex_text(out, suite->name);
      fprintf(out, " on %s:%u (", r->device_backend, r->device_index);
      tex_text(out, r->device_name);
      fputs(")}\n{\\scriptsize\n\\begin{tabular}{llrrrrl}\n\\hline\n", out);
      tex_cells(out, head, 7);
      fputs("\\hline\n", out);
    }
    row w;
    make_row(r, &w);
    const char *cells[] = {r->label, r->bcase->unit, w.kiln, w.base, w.ratio, w.outliers, w.goal};
    tex_cells(out, cells, 7);
  }
  if (suite != NULL)
    fputs("\\hline\n\\end{tabular}\n}\n", out);
  free(list);
  kiln_bench_report *rep = (kiln_bench_report *)report;
  size_t ns = kiln_bench_report_series_count(rep);
  if (ns > 0) {
    static const char *const shead[] = {"series", "points", "kiln", "baseline"};
    fputs("\\subsection*{Scaling}\n{\\scriptsize\n\\begin{tabular}{lrll}\n\\hline\n", out);
    tex_cells(out, shead, 4);
    fputs("\\hline\n", out);
    for (size_t i = 0; i < ns; i++) {
      const kiln_bench_series *s = kiln_bench_report_series_get(rep, i);
      series_row w;
      make_series_row(s, &w);
      const char *cells[] = {s->label, w.points, w.kiln, w.base};
      tex_cells(out, cells, 4);
    }
    fputs("\\hline\n\\end{tabular}\n}\n", out);
  }
  fputs("\\end{document}\n", out);
  return finish(out);
}
