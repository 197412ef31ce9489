/* SPDX-License-Identifier: MIT */
/* `kiln bench compare`: read two JSON documents of kiln_bench_report_write_json (with
 * jansson), check each whole (validate.c: schemas/bench.json's structure, possible
 * statistics) before reading a figure, match their results on suite, name, canonical
 * params (keys sorted, compact JSON) and device (backend, index, name), and judge each
 * pair on the kiln side's median and 95% interval: faster / slower when the intervals
 * separate, same when they overlap; slower by more than the threshold in time per op
 * is a regression. Bad input is refused, before any output, with the file, the result,
 * the field and what is wrong. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "kiln.h"
#include "kiln/bench.h"
#include "bench_internal.h"

typedef struct entry {
  char *key; /* suite, name, params and device joined by \x1f */
  const char *suite, *name, *unit, *backend, *device_name;
  char params[256]; /* for the table */
  int higher;       /* better = higher */
  long long index;
  double median, lo, hi;
  int matched;
} entry;

typedef struct doc {
  json_t *root;
  entry *entries;
  size_t count;
} doc;

static void doc_free(doc *d) {
  for (size_t i = 0; i < d->count; i++)
    free(d->entries[i].key);
  free(d->entries);
  json_decref(d->root);
  memset(d, 0, sizeof *d);
}

static int bad(char *error, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error, size, fmt, ap);
  va_end(ap);
  return -1;
}

static const char *get_str(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int load(const char *path, doc *d, char *error, size_t size) {
  memset(d, 0, sizeof *d);
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return bad(error, size, "'%s' is a directory, expected a JSON file from kiln bench run --json",
               path);
  json_error_t je;
  /* a key twice in one object (two "median"s) leaves the figure ambiguous: refused */
  d->root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (d->root == NULL) {
    if (je.line <= 0)
      return bad(error, size, "%s: %s", path, je.text);
#if JANSSON_VERSION_HEX >= 0x020e00 /* json_error_code: jansson 2.14 */
    if (json_error_code(&je) == json_error_duplicate_key)
      return bad(error, size, "%s: line %d, column %d: %s: each key may appear once in an object",
                 path, je.line, je.column, je.text);
#endif
    return bad(error, size, "%s: malformed JSON at line %d, column %d: %s", path, je.line,
               je.column, je.text);
  }
  char why[768];
  if (kiln__bench_validate(d->root, why, sizeof why) != 0)
    return bad(error, size, "%s: %s", path, why);
  /* from here on every field below is present with its type (validate.c) */
  json_t *results = json_object_get(d->root, "results");
  size_t n = json_array_size(results);
  d->entries = calloc(n ? n : 1, sizeof *d->entries);
  if (d->entries == NULL)
    return bad(error, size, "%s: out of memory", path);
  for (size_t i = 0; i < n; i++) {
    json_t *r = json_array_get(results, i);
    entry *e = &d->entries[d->count];
    json_t *dev = json_object_get(r, "device"), *params = json_object_get(r, "params");
    json_t *kiln = json_object_get(r, "kiln");
    json_t *ci = json_object_get(kiln, "ci95");
    e->suite = get_str(r, "suite");
    e->name = get_str(r, "name");
    e->unit = get_str(r, "unit");
    e->backend = get_str(dev, "backend");
    e->device_name = get_str(dev, "name");
    e->median = json_number_value(json_object_get(kiln, "median"));
    e->lo = json_number_value(json_array_get(ci, 0));
    e->hi = json_number_value(json_array_get(ci, 1));
    e->higher = strcmp(get_str(r, "better"), "higher") == 0;
    /* an integer, possibly written 0.0 (JSON Schema's integer) */
    e->index = (long long)json_number_value(json_object_get(dev, "index"));
    char *canon = json_dumps(params, JSON_SORT_KEYS | JSON_COMPACT);
    if (canon == NULL)
      return bad(error, size, "%s: out of memory", path);
    snprintf(e->params, sizeof e->params, "%s", canon);
    size_t len = strlen(e->suite) + strlen(e->name) + strlen(canon) + strlen(e->backend) +
                 strlen(e->device_name) + 64;
    e->key = malloc(len);
    if (e->key != NULL)
      snprintf(e->key, len, "%s\x1f%s\x1f%s\x1f%s:%lld:%s", e->suite, e->name, canon, e->backend,
               e->index, e->device_name);
    free(canon);
    if (e->key == NULL)
      return bad(error, size, "%s: out of memory", path);
    for (size_t k = 0; k < d->count; k++)
      if (strcmp(d->entries[k].key, e->key) == 0) {
        free(e->key);
        e->key = NULL;
        return bad(error, size,
                   "%s: results[%zu] (%s/%s %s on %s:%lld) appears twice: one result per "
                   "suite, name, params and device",
                   path, i, e->suite, e->name, e->params, e->backend, e->index);
      }
    d->count++;
  }
  return 0;
}

static void fmt_iv(char *buf, size_t size, const entry *e) {
  snprintf(buf, size, "%.4g [%.4g, %.4g]", e->median, e->lo, e->hi);
}

/* Match the two documents' results (marking them) and check every pair before anything
 * is printed: same unit, and medians whose quotient a double holds. -1 with the reason. */
static int match_all(doc *a, doc *b, const char *old_path, const char *new_path,
                     kiln_bench_compare_summary *sum, char *error, size_t error_size) {
  for (size_t i = 0; i < a->count; i++)
    for (size_t k = 0; k < b->count; k++) {
      entry *o = &a->entries[i], *nw = &b->entries[k];
      if (strcmp(o->key, nw->key) != 0)
        continue;
      if (strcmp(o->unit, nw->unit) != 0 || o->higher != nw->higher)
        return bad(error, error_size,
                   "%s/%s %s: the unit changed from %s (%s is better) to %s (%s is better): the "
                   "results cannot be compared",
                   o->suite, o->name, o->params, o->unit, o->higher ? "higher" : "lower", nw->unit,
                   nw->higher ? "higher" : "lower");
      /* both medians are positive and finite (validate.c), but their quotient may still
       * overflow (1e300 against 1e-10): no verdict on an infinite change */
      double q = o->median / nw->median;
      if (!isfinite(100.0 * q) || !isfinite(100.0 / q))
        return bad(error, error_size,
                   "%s/%s %s: the kiln medians %.6g (%s) and %.6g (%s) are too far apart to "
                   "compare (a change beyond what a double holds): expected figures of one "
                   "operation measured twice",
                   o->suite, o->name, o->params, o->median, old_path, nw->median, new_path);
      o->matched = nw->matched = 1;
      sum->matched++;
    }
  if (sum->matched == 0)
    return bad(error, error_size,
               "%s and %s have no result in common (%zu and %zu results; matched on suite, "
               "name, params and device)",
               old_path, new_path, a->count, b->count);
  return 0;
}

/* Judge one matched pair into *sum, and print its row to `table` (may be NULL). */
static void judge(const entry *o, const entry *nw, double threshold,
                  kiln_bench_compare_summary *sum, FILE *table) {
  /* time per op grows by `slowdown` (0.1: 10% more time) */
  double slowdown = o->higher ? o->median / nw->median - 1.0 : nw->median / o->median - 1.0;
  int separate_up = nw->lo > o->hi, separate_down = nw->hi < o->lo;
  kiln_bench_verdict v = KILN_BENCH_SAME;
  if (separate_up || separate_down)
    v = (separate_up == o->higher) ? KILN_BENCH_FASTER : KILN_BENCH_SLOWER;
  int regression = v == KILN_BENCH_SLOWER && slowdown > threshold;
  if (v == KILN_BENCH_FASTER)
    sum->faster++;
  if (v == KILN_BENCH_SLOWER)
    sum->slower++;
  if (v == KILN_BENCH_SAME)
    sum->same++;
  sum->regressions += regression ? 1u : 0u;
  if (isfinite(slowdown) && slowdown > sum->worst_slowdown)
    sum->worst_slowdown = slowdown;
  if (table == NULL)
    return;
  char name[64], dev[24], oi[64], ni[64], change[24];
  snprintf(name, sizeof name, "%s/%s", o->suite, o->name);
  snprintf(dev, sizeof dev, "%s:%lld", o->backend, o->index);
  fmt_iv(oi, sizeof oi, o);
  fmt_iv(ni, sizeof ni, nw);
  snprintf(change, sizeof change, "%+.1f%%", 100.0 * slowdown);
  fprintf(table, "%-30s %-24s %-10s %-6s %-30s %-30s %-9s %s\n", name,
          strcmp(o->params, "{}") == 0 ? "-" : o->params, dev, o->unit, oi, ni, change,
          regression               ? "SLOWER: REGRESSION"
          : v == KILN_BENCH_SLOWER ? "slower (within threshold)"
          : v == KILN_BENCH_FASTER ? "faster"
                                   : "same (intervals overlap)");
}

/* Judge every matched pair in the old document's order; count the unmatched ones. */
static void judge_all(const doc *a, const doc *b, double threshold, kiln_bench_compare_summary *sum,
                      FILE *table) {
  if (table != NULL)
    fprintf(table, "%-30s %-24s %-10s %-6s %-30s %-30s %-9s %s\n", "case", "params", "device",
            "unit", "old median [95% CI]", "new median [95% CI]", "time", "verdict");
  for (size_t i = 0; i < a->count; i++) {
    const entry *o = &a->entries[i];
    if (!o->matched) {
      sum->only_old++;
      continue;
    }
    const entry *nw = NULL;
    for (size_t k = 0; k < b->count && nw == NULL; k++)
      if (strcmp(o->key, b->entries[k].key) == 0)
        nw = &b->entries[k];
    judge(o, nw, threshold, sum, table);
  }
  for (size_t k = 0; k < b->count; k++)
    sum->only_new += !b->entries[k].matched;
}

kiln_status kiln_bench_compare_files(const char *old_path, const char *new_path, double threshold,
                                     FILE *table, kiln_bench_compare_summary *summary, char *error,
                                     size_t error_size) {
  kiln_bench_compare_summary sum;
  memset(&sum, 0, sizeof sum);
  if (error_size > 0)
    error[0] = '\0';
  if (summary != NULL)
    *summary = sum;
  if (old_path == NULL || new_path == NULL) {
    bad(error, error_size, "two JSON files are needed");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if (!(threshold > 0.0))
    threshold = 0.05;
  doc a, b;
  kiln_status st = KILN_ERROR_INVALID_ARGUMENT;
  memset(&b, 0, sizeof b);
  if (load(old_path, &a, error, error_size) == 0 && load(new_path, &b, error, error_size) == 0 &&
      match_all(&a, &b, old_path, new_path, &sum, error, error_size) == 0) {
    judge_all(&a, &b, threshold, &sum, table);
    if (table != NULL)
      fprintf(table,
              "\n%zu matched: %zu faster, %zu slower (%zu regressions beyond %.1f%% more time), "
              "%zu same; %zu only in %s, %zu only in %s\n"
              "time: change of the kiln side's time per op (rates inverted); faster/slower only "
              "when the 95%% intervals of the medians separate\n",
              sum.matched, sum.faster, sum.slower, sum.regressions, 100.0 * threshold, sum.same,
              sum.only_old, old_path, sum.only_new, new_path);
    st = KILN_SUCCESS;
  }
  doc_free(&a);
  doc_free(&b);
  if (summary != NULL)
    *summary = sum;
  return st;
}
