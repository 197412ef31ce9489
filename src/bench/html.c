/* SPDX-License-Identifier: MIT */
/* The HTML report: one self-contained XHTML file (well-formed XML, so any XML parser
 * reads it; no script, no external resource) with inline SVG drawn here: per suite a
 * chart of every case, kiln and baseline medians as bars with their 95% intervals and
 * the ratio with its interval on a shared log scale, then the table; then one log-log
 * scaling plot per series (class "scaling", one circle of class "pt kiln" per run)
 * with the fitted slope(s) and the breakpoint when one is found. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "kiln/bench.h"
#include "bench_internal.h"

/* Text content or attribute value, escaped for XML; control characters (not allowed
 * in XML 1.0) become spaces. */
static void x(FILE *out, const char *s) {
  for (; s != NULL && *s; s++) {
    unsigned char c = (unsigned char)*s;
    switch (c) {
    case '&':
      fputs("&amp;", out);
      break;
    case '<':
      fputs("&lt;", out);
      break;
    case '>':
      fputs("&gt;", out);
      break;
    case '"':
      fputs("&quot;", out);
      break;
    case '\'':
      fputs("&#39;", out);
      break;
    default:
      fputc(c < 0x20 ? ' ' : c, out);
    }
  }
}

static const char style[] =
    "body{font-family:sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;font-size:0.85em;margin:0.8em 0}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}"
    "svg text{font-family:sans-serif;font-size:11px}"
    ".note{font-size:0.8em;color:#555;max-width:60em}"
    ".kiln{fill:#1f77b4;stroke:#1f77b4}.baseline{fill:#999;stroke:#777}"
    ".whisker{stroke:#000;stroke-width:1.2}.grid{stroke:#ddd;stroke-width:1}"
    ".fit{fill:none;stroke-width:1.5}.fit.baseline{stroke-dasharray:5,3}"
    ".brk{stroke:#d62728;stroke-dasharray:4,3}.brk.baseline{stroke:#777}.one{stroke:#d62728}";

/* ---- the per-suite case chart ---- */

#define ROW_H 34
#define LABEL_W 230
#define BAR_W 330
#define RATIO_X (LABEL_W + BAR_W + 190)
#define RATIO_W 260

static double rx(double v, double lo, double hi) {
  return RATIO_X + (log(v) - log(lo)) / (log(hi) - log(lo)) * RATIO_W;
}

/* One case's row at height y: both sides' medians with their intervals, scaled to
 * the larger, and the ratio with its interval on the [lo, hi] log axis. */
static void case_row(FILE *out, const kiln_bench_result *r, double y, double lo, double hi) {
  double top = r->kiln.ci95_hi;
  if (r->has_baseline && r->baseline.ci95_hi > top)
    top = r->baseline.ci95_hi;
  if (!(top > 0))
    top = 1;
  fprintf(out, "<g class=\"case\"><text x=\"0\" y=\"%.1f\">", y + 16);
  x(out, r->label);
  fprintf(out, " (");
  x(out, r->bcase->unit);
  fprintf(out, ")</text>\n");
  for (int side = 0; side < (r->has_baseline ? 2 : 1); side++) {
    const kiln_bench_stats *st = side ? &r->baseline : &r->kiln;
    double by = y + 3 + side * 14;
    double w = st->median / top * BAR_W, l = st->ci95_lo / top * BAR_W,
           h = st->ci95_hi / top * BAR_W;
    fprintf(out,
            "<rect class=\"%s\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"10\" "
            "fill-opacity=\"0.6\"/>",
            side ? "baseline" : "kiln", LABEL_W, by, w > 0 ? w : 0);
    fprintf(out,
            "<line class=\"whisker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
            "<line class=\"whisker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
            "<line class=\"whisker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
            LABEL_W + l, by + 5, LABEL_W + h, by + 5, LABEL_W + l, by + 1, LABEL_W + l, by + 9,
            LABEL_W + h, by + 1, LABEL_W + h, by + 9);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%.4g ", LABEL_W + h + 4, by + 9, st->median);
    x(out, side ? r->baseline_name : "kiln");
    fputs("</text>\n", out);
  }
  if (r->has_baseline && r->ratio_lo > 0 && isfinite(r->ratio_hi)) {
    double cy = y + 10;
    fprintf(out,
            "<line class=\"whisker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
            "<circle class=\"ratio kiln\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"/>"
            "<text x=\"%.1f\" y=\"%.1f\">%.3f [%.3f, %.3f]</text>",
            rx(r->ratio_lo, lo, hi), cy, rx(r->ratio_hi, lo, hi), cy, rx(r->ratio, lo, hi), cy,
            RATIO_X + RATIO_W + 10.0, cy + 4, r->ratio, r->ratio_lo, r->ratio_hi);
    if (r->bcase->goal_ratio > 0 && r->bcase->goal_ratio > lo && r->bcase->goal_ratio < hi) {
      double gx = rx(r->bcase->goal_ratio, lo, hi);
      fprintf(out, "<line class=\"brk\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", gx,
              cy - 7, gx, cy + 7);
    }
  }
  fputs("</g>\n", out);
}

static void case_chart(FILE *out, const kiln_bench_result *const *rs, size_t n) {
  /* the ratio axis: a log scale over every interval and 1, padded */
  double lo = 1.0, hi = 1.0;
  for (size_t i = 0; i < n; i++)
    if (rs[i]->has_baseline && rs[i]->ratio_lo > 0 && isfinite(rs[i]->ratio_hi)) {
      if (rs[i]->ratio_lo < lo)
        lo = rs[i]->ratio_lo;
      if (rs[i]->ratio_hi > hi)
        hi = rs[i]->ratio_hi;
    }
  lo /= 1.25;
  hi *= 1.25;
  int height = (int)n * ROW_H + 40;
  fprintf(out,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"cases\" width=\"%d\" "
          "height=\"%d\" viewBox=\"0 0 %d %d\">\n",
          RATIO_X + RATIO_W + 190, height, RATIO_X + RATIO_W + 190, height);
  fprintf(out,
          "<text x=\"%d\" y=\"14\">median and 95%% interval, per case scaled to its "
          "largest value (kiln blue, baseline grey)</text>\n",
          LABEL_W);
  fprintf(out, "<text x=\"%d\" y=\"14\">ratio (log scale; &gt; 1: kiln better)</text>\n", RATIO_X);
  double one = rx(1.0, lo, hi);
  fprintf(out, "<line class=\"one\" x1=\"%.1f\" y1=\"22\" x2=\"%.1f\" y2=\"%d\"/>\n", one, one,
          height - 14);
  fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">1</text>\n", one, height - 2);
  fprintf(out, "<text x=\"%d\" y=\"%d\">%.3g</text>\n", RATIO_X, height - 2, lo);
  fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>\n", RATIO_X + RATIO_W,
          height - 2, hi);
  for (size_t i = 0; i < n; i++)
    case_row(out, rs[i], 24 + (double)i * ROW_H, lo, hi);
  fputs("</svg>\n", out);
}

/* ---- the table ---- */

static void cell(FILE *out, const char *s) {
  fputs("<td>", out);
  x(out, s);
  fputs("</td>", out);
}

static void table(FILE *out, const kiln_bench_result *const *rs, size_t n) {
  fputs("<table><tr><th>case</th><th>unit</th><th>timing</th><th>kiln median [95% CI]</th>"
        "<th>baseline median [95% CI]</th><th>ratio [95% CI]</th><th>mean</th><th>p5 / p95 / "
        "p99</th><th>samples &#215; batch</th><th>outliers</th><th>goal</th></tr>\n",
        out);
  for (size_t i = 0; i < n; i++) {
    const kiln_bench_result *r = rs[i];
    char b[256];
    fputs("<tr>", out);
    cell(out, r->label);
    cell(out, r->bcase->unit);
    cell(out, r->device_timing ? "device" : "host");
    snprintf(b, sizeof b, "%.4g [%.4g, %.4g]", r->kiln.median, r->kiln.ci95_lo, r->kiln.ci95_hi);
    cell(out, b);
    if (r->has_baseline) {
      snprintf(b, sizeof b, "%.4g [%.4g, %.4g] %s", r->baseline.median, r->baseline.ci95_lo,
               r->baseline.ci95_hi, r->baseline_name);
      cell(out, b);
      snprintf(b, sizeof b, "%.3f [%.3f, %.3f]", r->ratio, r->ratio_lo, r->ratio_hi);
      cell(out, b);
    } else {
      cell(out, "-");
      cell(out, "-");
    }
    snprintf(b, sizeof b, "%.4g", r->kiln.mean);
    cell(out, b);
    snprintf(b, sizeof b, "%.4g / %.4g / %.4g", r->kiln.p5, r->kiln.p95, r->kiln.p99);
    cell(out, b);
    snprintf(b, sizeof b, "%llu &#215; %llu", (unsigned long long)r->kiln.samples,
             (unsigned long long)r->batch_size);
    fprintf(out, "<td>%s</td>", b);
    if (r->has_baseline)
      snprintf(b, sizeof b, "%llu / %llu", (unsigned long long)r->kiln.outliers,
               (unsigned long long)r->baseline.outliers);
    else
      snprintf(b, sizeof b, "%llu", (unsigned long long)r->kiln.outliers);
    cell(out, b);
    const char *v = kiln_bench_goal_verdict(r);
    if (v != NULL)
      snprintf(b, sizeof b, "&#8805; %.2f: %s", r->bcase->goal_ratio, v);
    else
      snprintf(b, sizeof b, "-");
    fprintf(out, "<td>%s</td></tr>\n", b);
  }
  fputs("</table>\n", out);
}

/* ---- scaling plots ---- */

#define PW 640
#define PH 400
#define ML 70
#define MR 20
#define MT 50
#define MB 50

typedef struct frame {
  double x0, x1, y0, y1; /* log10 ranges */
} frame;

static double px(const frame *f, double n) {
  return ML + (log10(n) - f->x0) / (f->x1 - f->x0) * (PW - ML - MR);
}
static double py(const frame *f, double t) {
  return PH - MB - (log10(t) - f->y0) / (f->y1 - f->y0) * (PH - MT - MB);
}

static void fmt_n(char *buf, size_t size, double n, int bytes) {
  static const char *const bin[] = {"", "Ki", "Mi", "Gi", "Ti"};
  int k = 0;
  while (bytes && n >= 1024 && fmod(n, 1024) == 0 && k < 4) {
    n /= 1024;
    k++;
  }
  if (bytes)
    snprintf(buf, size, "%.4g %sB", n, bin[k]);
  else
    snprintf(buf, size, "%.4g", n);
}

static void fmt_t(char *buf, size_t size, double ns) {
  if (ns >= 1e9)
    snprintf(buf, size, "%.3g s", ns / 1e9);
  else if (ns >= 1e6)
    snprintf(buf, size, "%.3g ms", ns / 1e6);
  else if (ns >= 1e3)
    snprintf(buf, size, "%.3g us", ns / 1e3);
  else
    snprintf(buf, size, "%.3g ns", ns);
}

static void fit_line(FILE *out, const frame *f, const kiln_bench_fit *fit, double n0, double n1,
                     const char *cls) {
  if (fit->points < 2)
    return;
  fprintf(out, "<polyline class=\"fit %s\" points=\"", cls);
  if (fit->has_break) {
    double nb = fit->break_n, lb = fit->intercept_below + fit->slope_below * log(nb);
    double t0 = exp(fit->intercept_below + fit->slope_below * log(n0));
    double t1 = exp(lb + fit->slope_above * (log(n1) - log(nb)));
    fprintf(out, "%.1f,%.1f %.1f,%.1f %.1f,%.1f", px(f, n0), py(f, t0), px(f, nb), py(f, exp(lb)),
            px(f, n1), py(f, t1));
  } else {
    double t0 = exp(fit->intercept + fit->slope * log(n0));
    double t1 = exp(fit->intercept + fit->slope * log(n1));
    fprintf(out, "%.1f,%.1f %.1f,%.1f", px(f, n0), py(f, t0), px(f, n1), py(f, t1));
  }
  fputs("\"/>\n", out);
}

static void fit_legend(FILE *out, const kiln_bench_fit *fit, const char *who, int y,
                       const char *cls, int bytes) {
  fprintf(out, "<text class=\"legend\" x=\"%d\" y=\"%d\"><tspan class=\"%s\">&#9679;</tspan> ",
          ML + 8, y, cls);
  x(out, who);
  if (fit->points < 2) {
    fputs(": no fit</text>\n", out);
  } else if (fit->has_break) {
    char nb[32];
    fmt_n(nb, sizeof nb, fit->break_n, bytes);
    fprintf(out, ": time &#8733; n^%.2f up to %s, n^%.2f above (one fit: n^%.2f)</text>\n",
            fit->slope_below, nb, fit->slope_above, fit->slope);
  } else {
    fprintf(out, ": time &#8733; n^%.2f (r&#178; %.3f)</text>\n", fit->slope, fit->r2);
  }
}

/* The log10 bounds of a scaling plot over every point of both sides, padded. */
static frame scaling_frame(const kiln_bench_series *s) {
  frame f = {INFINITY, -INFINITY, INFINITY, -INFINITY};
  for (size_t i = 0; i < s->count; i++) {
    double xs = log10(s->n[i]);
    if (xs < f.x0)
      f.x0 = xs;
    if (xs > f.x1)
      f.x1 = xs;
    for (int side = 0; side < 2; side++) {
      double t = side ? (s->baseline_ns ? s->baseline_ns[i] : NAN) : s->kiln_ns[i];
      if (!(t > 0) || !isfinite(t))
        continue;
      if (log10(t) < f.y0)
        f.y0 = log10(t);
      if (log10(t) > f.y1)
        f.y1 = log10(t);
    }
  }
  if (!(f.x1 > f.x0)) {
    f.x0 -= 0.5;
    f.x1 += 0.5;
  }
  if (!isfinite(f.y0))
    f.y0 = f.y1 = 0;
  if (!(f.y1 > f.y0)) {
    f.y0 -= 0.5;
    f.y1 += 0.5;
  }
  double padx = (f.x1 - f.x0) * 0.05, pady = (f.y1 - f.y0) * 0.08;
  f.x0 -= padx;
  f.x1 += padx;
  f.y0 -= pady;
  f.y1 += pady;
  return f;
}

/* The plot's title, grid at decades of time, ticks at the points, frame and axis names. */
static void scaling_axes(FILE *out, const frame *f, const kiln_bench_series *s, int bytes) {
  fputs("<text x=\"4\" y=\"16\" font-weight=\"bold\">", out);
  x(out, s->label);
  fputs(" (log-log)</text>\n", out);
  for (int d = (int)ceil(f->y0); d <= (int)floor(f->y1); d++) {
    char t[32];
    fmt_t(t, sizeof t, pow(10, d));
    double yy = py(f, pow(10, d));
    fprintf(out,
            "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
            ML, yy, PW - MR, yy, ML - 4, yy + 4, t);
  }
  for (size_t i = 0; i < s->count; i++) {
    char t[32];
    fmt_n(t, sizeof t, s->n[i], bytes);
    double xx = px(f, s->n[i]);
    fprintf(out,
            "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
            xx, MT, xx, PH - MB, xx, PH - MB + 14 + (int)(i % 2) * 12, t);
  }
  fprintf(out,
          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n",
          ML, MT, PW - ML - MR, PH - MT - MB);
  fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (PW + ML) / 2, PH - 6);
  x(out, s->axis);
  fputs("</text>\n", out);
  fprintf(out,
          "<text x=\"12\" y=\"%d\" transform=\"rotate(-90 12 %d)\" "
          "text-anchor=\"middle\">time per op</text>\n",
          PH / 2, PH / 2);
}

/* One side (0 kiln, 1 baseline): its fit line, breakpoint and points. */
static void scaling_side(FILE *out, const frame *f, const kiln_bench_series *s, int side,
                         int bytes) {
  const char *cls = side ? "baseline" : "kiln";
  const kiln_bench_fit *fit = side ? &s->baseline_fit : &s->kiln_fit;
  fit_line(out, f, fit, s->n[0], s->n[s->count - 1], cls);
  if (fit->has_break) {
    double bx = px(f, fit->break_n);
    fprintf(out, "<line class=\"brk %s\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", cls, bx,
            MT, bx, PH - MB);
  }
  for (size_t i = 0; i < s->count; i++) {
    double t = side ? s->baseline_ns[i] : s->kiln_ns[i];
    if (!(t > 0) || !isfinite(t))
      continue;
    fprintf(out, "<circle class=\"pt %s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%s\"><title>", cls,
            px(f, s->n[i]), py(f, t), side ? "3" : "4");
    char tn[32], tt[32];
    fmt_n(tn, sizeof tn, s->n[i], bytes);
    fmt_t(tt, sizeof tt, t);
    fprintf(out, "%s: %s at %s</title></circle>\n", cls, tt, tn);
  }
}

static void scaling_plot(FILE *out, const kiln_bench_series *s) {
  const frame f = scaling_frame(s);
  int bytes = strstr(s->axis, "byte") != NULL;
  fprintf(out,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"scaling\" width=\"%d\" "
          "height=\"%d\" viewBox=\"0 0 %d %d\" data-axis=\"",
          PW, PH, PW, PH);
  x(out, s->axis);
  fprintf(out, "\" data-points=\"%zu\" data-series=\"", s->count);
  x(out, s->label);
  fputs("\">\n", out);
  scaling_axes(out, &f, s, bytes);
  scaling_side(out, &f, s, 0, bytes);
  if (s->baseline_ns != NULL)
    scaling_side(out, &f, s, 1, bytes);
  fit_legend(out, &s->kiln_fit, "kiln", MT - 22, "kiln", bytes);
  if (s->baseline_ns != NULL)
    fit_legend(out, &s->baseline_fit, s->results[0]->baseline_name, MT - 8, "baseline", bytes);
  fputs("</svg>\n", out);
}

kiln_status kiln_bench_report_write_html(const kiln_bench_report *report, FILE *out) {
  if (report == NULL || out == NULL)
    return KILN_ERROR_INVALID_ARGUMENT;
  kiln__bench_host host;
  kiln__bench_host_get(&host);
  fprintf(out,
          "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n"
          "<head>\n<meta charset=\"UTF-8\"/>\n<title>kiln bench report</title>\n"
          "<style>%s</style>\n</head>\n<body>\n<h1>kiln bench report</h1>\n<p>kiln ",
          style);
  x(out, kiln_version_string());
  fputs(" on ", out);
  x(out, host.hostname);
  fputs(": ", out);
  x(out, host.cpu);
  fprintf(out, ", %u cores; ", host.cores);
  x(out, host.os);
  fputs(". Ratio &gt; 1: kiln is better. Intervals are 95%.</p>\n<p class=\"note\">", out);
  x(out, kiln__bench_timing_note);
  fputs("</p>\n", out);
  size_t n = kiln__bench_measured(report, NULL, 0);
  const kiln_bench_result **list = n ? malloc(n * sizeof *list) : NULL;
  if (n > 0 && list == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  kiln__bench_measured(report, list, n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && list[j]->suite == list[i]->suite)
      j++;
    const kiln_bench_result *r = list[i];
    fputs("<h2>Suite ", out);
    x(out, r->suite->name);
    fprintf(out, " on %s:%u (", r->device_backend, r->device_index);
    x(out, r->device_name);
    fputs(")</h2>\n<p>", out);
    x(out, r->suite->description);
    fputs("</p>\n", out);
    case_chart(out, list + i, j - i);
    table(out, list + i, j - i);
    i = j;
  }
  free(list);
  kiln_bench_report *rep = (kiln_bench_report *)report;
  size_t ns = kiln_bench_report_series_count(rep);
  if (ns > 0)
    fputs("<h2>Scaling</h2>\n<p>Median time per operation of each run over the scaling "
          "axis, log-log, with the least-squares slope; where a two-segment fit explains the "
          "points materially better its breakpoint is marked (dashed; red for kiln, grey for the "
          "baseline): below it the cost "
          "is mostly fixed (launch-bound, slope near 0), above it grows with n "
          "(bandwidth-bound, slope near 1).</p>\n",
          out);
  for (size_t i = 0; i < ns; i++) {
    fputs("<div>\n", out);
    scaling_plot(out, kiln_bench_report_series_get(rep, i));
    fputs("</div>\n", out);
  }
  fputs("</body>\n</html>\n", out);
  return fflush(out) == 0 && !ferror(out) ? KILN_SUCCESS : KILN_ERROR_IO;
}
