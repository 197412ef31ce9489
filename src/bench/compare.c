/* SPDX-License-Identifier: MIT */
/* `kiln bench compare`: read two JSON documents of kiln_bench_report_write_json (with
 * jansson), match their results on suite, name, canonical params (keys sorted, compact
 * JSON) and device (backend, index, name), and judge each pair on the kiln side's
 * median and 95% interval: faster / slower when the intervals separate, same when
 * they overlap; slower by more than the threshold in time per op is a regression.
 * Bad input is refused with the file, the result and what is wrong. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kiln.h"
#include "kiln/bench.h"
#include "bench_internal.h"

typedef struct entry {
  char *key;          /* suite, name, params and device joined by \x1f */
  const char *suite, *name, *unit, *backend, *device_name;
  char params[256];   /* for the table */
  int higher;         /* better = higher */
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
  for (size_t i = 0; i < d->count; i++) free(d->entries[i].key);
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

static int get_num(json_t *obj, const char *key, double *out) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_number(v)) return -1;
  *out = json_number_value(v);
  return isfinite(*out) ? 0 : -1;
}

#define NOT_OURS "is not a kiln bench document (see schemas/bench.json)"

static int load(const char *path, doc *d, char *error, size_t size) {
  memset(d, 0, sizeof *d);
  json_error_t je;
  d->root = json_load_file(path, 0, &je);
  if (d->root == NULL) {
    if (je.line <= 0)
      return bad(error, size, "%s: %s", path, je.text);
    return bad(error, size, "%s: malformed JSON at line %d, column %d: %s", path, je.line,
               je.column, je.text);
  }
  json_t *results = json_object_get(d->root, "results");
  if (!json_is_object(d->root) || get_str(d->root, "kiln_version") == NULL ||
      !json_is_array(results))
    return bad(error, size, "%s " NOT_OURS ": it needs an object with \"kiln_version\" and a "
               "\"results\" array", path);
  size_t n = json_array_size(results);
  d->entries = calloc(n ? n : 1, sizeof *d->entries);
  if (d->entries == NULL) return bad(error, size, "%s: out of memory", path);
  for (size_t i = 0; i < n; i++) {
    json_t *r = json_array_get(results, i);
    entry *e = &d->entries[d->count];
    json_t *dev = json_object_get(r, "device"), *params = json_object_get(r, "params");
    json_t *kiln = json_object_get(r, "kiln");
    json_t *ci = json_object_get(kiln, "ci95");
    const char *better = get_str(r, "better");
    e->suite = get_str(r, "suite");
    e->name = get_str(r, "name");
    e->unit = get_str(r, "unit");
    e->backend = get_str(dev, "backend");
    e->device_name = get_str(dev, "name");
    const char *what = NULL;
    if (!json_is_object(r)) what = "is not an object";
    else if (e->suite == NULL || e->name == NULL) what = "has no \"suite\" or \"name\" string";
    else if (e->unit == NULL || better == NULL ||
             (strcmp(better, "lower") != 0 && strcmp(better, "higher") != 0))
      what = "has no \"unit\" or no \"better\" of \"lower\"/\"higher\"";
    else if (!json_is_object(params)) what = "has no \"params\" object";
    else if (e->backend == NULL || e->device_name == NULL ||
             !json_is_integer(json_object_get(dev, "index")))
      what = "has no \"device\" with backend, index and name";
    else if (get_num(kiln, "median", &e->median) != 0 || !json_is_array(ci) ||
             json_array_size(ci) != 2 || !json_is_number(json_array_get(ci, 0)) ||
             !json_is_number(json_array_get(ci, 1)))
      what = "has no \"kiln\" object with a \"median\" number and a \"ci95\" pair";
    if (what != NULL)
      return bad(error, size, "%s: results[%zu] %s: the file " NOT_OURS, path, i, what);
    e->lo = json_number_value(json_array_get(ci, 0));
    e->hi = json_number_value(json_array_get(ci, 1));
    e->higher = strcmp(better, "higher") == 0;
    e->index = (long long)json_integer_value(json_object_get(dev, "index"));
    char *canon = json_dumps(params, JSON_SORT_KEYS | JSON_COMPACT);
    if (canon == NULL) return bad(error, size, "%s: out of memory", path);
    snprintf(e->params, sizeof e->params, "%s", canon);
    size_t len = strlen(e->suite) + strlen(e->name) + strlen(canon) + strlen(e->backend) +
                 strlen(e->device_name) + 64;
    e->key = malloc(len);
    if (e->key != NULL)
      snprintf(e->key, len, "%s\x1f%s\x1f%s\x1f%s:%lld:%s", e->suite, e->name, canon,
               e->backend, e->index, e->device_name);
    free(canon);
    if (e->key == NULL) return bad(error, size, "%s: out of memory", path);
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

kiln_status kiln_bench_compare_files(const char *old_path, const char *new_path,
                                     double threshold, FILE *table,
                                     kiln_bench_compare_summary *summary, char *error,
                                     size_t error_size) {
  kiln_bench_compare_summary sum;
  memset(&sum, 0, sizeof sum);
  if (error_size > 0) error[0] = '\0';
  if (summary != NULL) *summary = sum;
  if (old_path == NULL || new_path == NULL) {
    bad(error, error_size, "two JSON files are needed");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if (!(threshold > 0.0)) threshold = 0.05;
  doc a, b;
  kiln_status st = KILN_ERROR_INVALID_ARGUMENT;
  memset(&b, 0, sizeof b);
  if (load(old_path, &a, error, error_size) != 0 || load(new_path, &b, error, error_size) != 0)
    goto out;
  /* check every match before printing anything */
  for (size_t i = 0; i < a.count; i++)
    for (size_t k = 0; k < b.count; k++) {
      if (strcmp(a.entries[i].key, b.entries[k].key) != 0) continue;
      if (strcmp(a.entries[i].unit, b.entries[k].unit) != 0 ||
          a.entries[i].higher != b.entries[k].higher) {
        bad(error, error_size,
            "%s/%s %s: the unit changed from %s (%s is better) to %s (%s is better): the "
            "results cannot be compared",
            a.entries[i].suite, a.entries[i].name, a.entries[i].params, a.entries[i].unit,
            a.entries[i].higher ? "higher" : "lower", b.entries[k].unit,
            b.entries[k].higher ? "higher" : "lower");
        goto out;
      }
      a.entries[i].matched = b.entries[k].matched = 1;
      sum.matched++;
    }
  if (sum.matched == 0) {
    bad(error, error_size,
        "%s and %s have no result in common (%zu and %zu results; matched on suite, name, "
        "params and device)",
        old_path, new_path, a.count, b.count);
    goto out;
  }
  if (table != NULL)
    fprintf(table, "%-30s %-24s %-10s %-6s %-30s %-30s %-9s %s\n", "case", "params", "device",
            "unit", "old median [95% CI]", "new median [95% CI]", "time", "verdict");
  for (size_t i = 0; i < a.count; i++) {
    const entry *o = &a.entries[i];
    if (!o->matched) {
      sum.only_old++;
      continue;
    }
    const entry *nw = NULL;
    for (size_t k = 0; k < b.count && nw == NULL; k++)
      if (strcmp(o->key, b.entries[k].key) == 0) nw = &b.entries[k];
    /* time per op grows by `slowdown` (0.1: 10% more time) */
    double slowdown = o->higher ? o->median / nw->median - 1.0 : nw->median / o->median - 1.0;
    int separate_up = nw->lo > o->hi, separate_down = nw->hi < o->lo;
    kiln_bench_verdict v = KILN_BENCH_SAME;
    if (separate_up || separate_down)
      v = (separate_up == o->higher) ? KILN_BENCH_FASTER : KILN_BENCH_SLOWER;
    int regression = v == KILN_BENCH_SLOWER && slowdown > threshold;
    if (v == KILN_BENCH_FASTER) sum.faster++;
    if (v == KILN_BENCH_SLOWER) sum.slower++;
    if (v == KILN_BENCH_SAME) sum.same++;
    sum.regressions += regression ? 1u : 0u;
    if (isfinite(slowdown) && slowdown > sum.worst_slowdown) sum.worst_slowdown = slowdown;
    if (table != NULL) {
      char name[64], dev[24], oi[64], ni[64], change[24];
      snprintf(name, sizeof name, "%s/%s", o->suite, o->name);
      snprintf(dev, sizeof dev, "%s:%lld", o->backend, o->index);
      fmt_iv(oi, sizeof oi, o);
      fmt_iv(ni, sizeof ni, nw);
      snprintf(change, sizeof change, "%+.1f%%", 100.0 * slowdown);
      fprintf(table, "%-30s %-24s %-10s %-6s %-30s %-30s %-9s %s\n", name,
              strcmp(o->params, "{}") == 0 ? "-" : o->params, dev, o->unit, oi, ni, change,
              regression ? "SLOWER: REGRESSION"
              : v == KILN_BENCH_SLOWER ? "slower (within threshold)"
              : v == KILN_BENCH_FASTER ? "faster"
                                       : "same (intervals overlap)");
    }
  }
  for (size_t k = 0; k < b.count; k++) sum.only_new += !b.entries[k].matched;
  if (table != NULL)
    fprintf(table,
            "\n%zu matched: %zu faster, %zu slower (%zu regressions beyond %.1f%% more time), "
            "%zu same; %zu only in %s, %zu only in %s\n"
            "time: change of the kiln side's time per op (rates inverted); faster/slower only "
            "when the 95%% intervals of the medians separate\n",
            sum.matched, sum.faster, sum.slower, sum.regressions, 100.0 * threshold, sum.same,
            sum.only_old, old_path, sum.only_new, new_path);
  st = KILN_SUCCESS;
out:
  doc_free(&a);
  doc_free(&b);
  if (summary != NULL) *summary = sum;
  return st;
}
