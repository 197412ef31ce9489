/* SPDX-License-Identifier: MIT */
/* compare's check of a `kiln bench run --json` document, before any figure is read:
 * first the structure schemas/bench.json requires (fields, JSON types, enums, patterns,
 * its conditional rules), by hand with jansson (Debian has no C JSON-schema validator;
 * the test bench.compare_schema_agreement runs python3-jsonschema on the same files),
 * then what the schema cannot say: positive finite medians, ordered intervals and
 * percentiles, positive ratios. The first problem found is reported with the result,
 * the field, its value and what is expected. Called by compare.c only; reads only. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "bench_internal.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct vctx {
  char *error;
  size_t size;
  char where[160]; /* "results[3] (cpu/copy): ", "scaling[0]: " or "" */
} vctx;

/* ---- messages ---- */

/* A short, printable rendering of a JSON value, allocating nothing. */
static void describe(char *buf, size_t size, json_t *x) {
  switch (json_typeof(x)) {
  case JSON_INTEGER:
    snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(x));
    return;
  case JSON_REAL:
    kiln__json_format_number(buf, size, json_real_value(x));
    return;
  case JSON_STRING: {
    const char *s = json_string_value(x);
    size_t n = 0, len = strlen(s);
    if (size < 8)
      break;
    buf[n++] = '"';
    for (size_t i = 0; i < len && i < 40 && n + 6 < size; i++) {
      char c = s[i];
      if ((unsigned char)c < 0x20)
        c = '?'; /* a control character would break the one-line message */
      buf[n++] = c;
    }
    snprintf(buf + n, size - n, "%s\"", len > 40 ? "..." : "");
    return;
  }
  case JSON_ARRAY: {
    size_t count = json_array_size(x), n = 0;
    int small = count <= 4; /* a short array of scalars is shown whole */
    for (size_t i = 0; i < count && small; i++) {
      json_t *item = json_array_get(x, i);
      small = !json_is_object(item) && !json_is_array(item);
    }
    if (!small) {
      snprintf(buf, size, "an array of %zu item%s", count, count == 1 ? "" : "s");
      return;
    }
    n += (size_t)snprintf(buf, size, "[");
    for (size_t i = 0; i < count && n < size; i++) {
      char item[56];
      describe(item, sizeof item, json_array_get(x, i));
      n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", item);
    }
    if (n < size)
      snprintf(buf + n, size - n, "]");
    return;
  }
  case JSON_OBJECT:
    snprintf(buf, size, "an object");
    return;
  case JSON_TRUE:
    snprintf(buf, size, "true");
    return;
  case JSON_FALSE:
    snprintf(buf, size, "false");
    return;
  case JSON_NULL:
    snprintf(buf, size, "null");
    return;
  }
  snprintf(buf, size, "a value");
}

/* "<where><field> is <value>: expected <what>", or "... is missing: ..." for NULL. */
static int fail(vctx *v, const char *field, json_t *value, const char *fmt, ...) {
  char expected[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(expected, sizeof expected, fmt, ap);
  va_end(ap);
  if (value == NULL) {
    snprintf(v->error, v->size, "%s%s is missing: expected %s (required by schemas/bench.json)",
             v->where, field, expected);
  } else {
    char shown[96];
    describe(shown, sizeof shown, value);
    snprintf(v->error, v->size, "%s%s is %s: expected %s", v->where, field, shown, expected);
  }
  return -1;
}

static const char *join(char *buf, size_t size, const char *base, const char *key) {
  snprintf(buf, size, "%s%s%s", base, base[0] != '\0' ? "." : "", key);
  return buf;
}

/* ---- the schema's building blocks ---- */

typedef enum kind {
  K_ANY, /* presence only; the caller checks the value */
  K_STRING,
  K_NONEMPTY, /* string, minLength 1 */
  K_NAME,     /* $defs/name: ^[A-Za-z0-9_.-]+$ */
  K_VERSION,  /* ^[0-9]+\.[0-9]+\.[0-9]+ */
  K_NUMBER,
  K_NUMBER_GE0,
  K_NUMBER_GT0,
  K_INT_GE0,
  K_INT_GE1,
  K_INTERVAL, /* $defs/interval: exactly two numbers */
  K_OBJECT,
  K_ARRAY,
  K_ENUM,
} kind;

typedef struct field {
  const char *key;
  kind kind;
  int required;
  const char *const *values; /* K_ENUM: NULL-terminated */
  const char *hint;          /* K_ANY: what is expected, for the missing message */
} field;

static const char *const k_units[] = {"ns",   "us",    "ms",      "s",        "GB/s",
                                      "MB/s", "GiB/s", "items/s", "Mitems/s", NULL};
static const char *const k_time_units[] = {"ns", "us", "ms", "s", NULL};
static const char *const k_better[] = {"lower", "higher", NULL};
static const char *const k_timing[] = {"device", "host", NULL};
static const char *const k_backends[] = {"cpu", "opencl", "cuda", "mock", "host", NULL};

static const char *kind_text(const field *f, char *buf, size_t size) {
  switch (f->kind) {
  case K_ANY:
    return f->hint;
  case K_STRING:
    return "a string";
  case K_NONEMPTY:
    return "a non-empty string";
  case K_NAME:
    return "a name of letters, digits, '_', '.' and '-'";
  case K_VERSION:
    return "a version string \"MAJOR.MINOR.PATCH\"";
  case K_NUMBER:
    return "a number";
  case K_NUMBER_GE0:
    return "a number >= 0";
  case K_NUMBER_GT0:
    return "a number > 0";
  case K_INT_GE0:
    return "an integer >= 0";
  case K_INT_GE1:
    return "an integer >= 1";
  case K_INTERVAL:
    return "an interval [lo, hi] of two numbers";
  case K_OBJECT:
    return "an object";
  case K_ARRAY:
    return "an array";
  case K_ENUM: {
    size_t n = (size_t)snprintf(buf, size, "one of");
    for (size_t i = 0; f->values[i] != NULL && n < size; i++)
      n += (size_t)snprintf(buf + n, size - n, "%s \"%s\"", i ? "," : "", f->values[i]);
    return buf;
  }
  }
  return "a value";
}

/* JSON Schema's integer: a number with no fractional part (2.0 is one). */
static int is_integral(json_t *x) {
  if (json_is_integer(x))
    return 1;
  double d = json_is_real(x) ? json_real_value(x) : 0.5;
  return isfinite(d) && floor(d) == d;
}

static int name_ok(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s != '\0'; s++) {
    char c = *s;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

static int version_ok(const char *s) {
  for (int part = 0; part < 3; part++) {
    if (part > 0 && *s++ != '.')
      return 0;
    if (*s < '0' || *s > '9')
      return 0;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  return 1; /* a suffix ("-dev") may follow */
}

static int value_ok(const field *f, json_t *x) {
  double d = json_is_number(x) ? json_number_value(x) : 0.0;
  switch (f->kind) {
  case K_ANY:
    return 1;
  case K_STRING:
    return json_is_string(x);
  case K_NONEMPTY:
    return json_is_string(x) && json_string_length(x) > 0;
  case K_NAME:
    return json_is_string(x) && name_ok(json_string_value(x));
  case K_VERSION:
    return json_is_string(x) && version_ok(json_string_value(x));
  case K_NUMBER:
    return json_is_number(x);
  case K_NUMBER_GE0:
    return json_is_number(x) && d >= 0.0;
  case K_NUMBER_GT0:
    return json_is_number(x) && d > 0.0;
  case K_INT_GE0:
    return json_is_number(x) && is_integral(x) && d >= 0.0;
  case K_INT_GE1:
    return json_is_number(x) && is_integral(x) && d >= 1.0;
  case K_INTERVAL:
    return json_is_array(x) && json_array_size(x) == 2 && json_is_number(json_array_get(x, 0)) &&
           json_is_number(json_array_get(x, 1));
  case K_OBJECT:
    return json_is_object(x);
  case K_ARRAY:
    return json_is_array(x);
  case K_ENUM:
    if (!json_is_string(x))
      return 0;
    for (size_t i = 0; f->values[i] != NULL; i++)
      if (strcmp(json_string_value(x), f->values[i]) == 0)
        return 1;
    return 0;
  }
  return 0;
}

/* The fields of `obj` (named `base` in messages): each required one present, each
 * present one of its kind and, when `closed` (additionalProperties: false), no other. */
static int check_fields(vctx *v, json_t *obj, const char *base, const field *fields, size_t n,
                        int closed) {
  char name[96], text[256];
  for (size_t i = 0; i < n; i++) {
    const field *f = &fields[i];
    json_t *x = json_object_get(obj, f->key);
    if (x == NULL && !f->required)
      continue;
    if (x == NULL || !value_ok(f, x))
      return fail(v, join(name, sizeof name, base, f->key), x, "%s",
                  kind_text(f, text, sizeof text));
  }
  if (!closed)
    return 0;
  const char *key;
  json_t *x;
  json_object_foreach(obj, key, x) {
    size_t i = 0;
    while (i < n && strcmp(fields[i].key, key) != 0)
      i++;
    if (i == n) {
      size_t len = (size_t)snprintf(text, sizeof text, "only");
      for (i = 0; i < n && len < sizeof text; i++)
        len +=
            (size_t)snprintf(text + len, sizeof text - len, "%s %s", i ? "," : "", fields[i].key);
      char shown[96];
      describe(shown, sizeof shown, x);
      const char *scope = base[0] != '\0'       ? base
                          : v->where[0] != '\0' ? "here"
                                                : "at the top level";
      snprintf(v->error, v->size, "%sunexpected field %s (= %s): schemas/bench.json allows %s%s%s",
               v->where, join(name, sizeof name, base, key), shown, text,
               base[0] != '\0' ? " in " : " ", scope);
      return -1;
    }
  }
  return 0;
}

/* ---- the result ---- */

/* $defs/baseline_stats: "name" then $defs/stats; kiln_stats is the same without name. */
static const field stats_fields[] = {
    {"name", K_NAME, 1, NULL, NULL},        {"median", K_NUMBER, 1, NULL, NULL},
    {"mean", K_NUMBER, 1, NULL, NULL},      {"min", K_NUMBER, 1, NULL, NULL},
    {"max", K_NUMBER, 1, NULL, NULL},       {"p5", K_NUMBER, 1, NULL, NULL},
    {"p50", K_NUMBER, 1, NULL, NULL},       {"p95", K_NUMBER, 1, NULL, NULL},
    {"p99", K_NUMBER, 1, NULL, NULL},       {"stddev", K_NUMBER_GE0, 1, NULL, NULL},
    {"ci95", K_INTERVAL, 1, NULL, NULL},    {"samples", K_INT_GE1, 1, NULL, NULL},
    {"outliers", K_INT_GE0, 1, NULL, NULL},
};
#define N_STATS COUNT(stats_fields)

static const field device_fields[] = {
    {"backend", K_ENUM, 1, k_backends, NULL},
    {"index", K_INT_GE0, 1, NULL, NULL},
    {"name", K_STRING, 1, NULL, NULL},
};

static const char baseline_hint[] = "an object of statistics with a \"name\", or null";
static const char ratio_hint[] = "a number >= 0, or null";
static const char ratio_ci95_hint[] = "an interval [lo, hi] of two numbers, or null";

static const field result_fields[] = {
    {"suite", K_NAME, 1, NULL, NULL},
    {"name", K_NAME, 1, NULL, NULL},
    {"device", K_OBJECT, 1, NULL, NULL},
    {"params", K_OBJECT, 1, NULL, NULL},
    {"unit", K_ENUM, 1, k_units, NULL},
    {"better", K_ENUM, 1, k_better, NULL},
    {"timing", K_ENUM, 1, k_timing, NULL},
    {"batch_size", K_INT_GE1, 1, NULL, NULL},
    {"work_per_op", K_NUMBER_GT0, 0, NULL, NULL},
    {"kiln", K_OBJECT, 1, NULL, NULL},
    {"baseline", K_ANY, 1, NULL, baseline_hint},
    {"ratio", K_ANY, 1, NULL, ratio_hint},
    {"ratio_ci95", K_ANY, 1, NULL, ratio_ci95_hint},
};

static double get(json_t *obj, const char *key) {
  return json_number_value(json_object_get(obj, key));
}

/* a <= b, allowing the last bits of rounding in figures computed by interpolation or
 * summation (percentiles, mean) */
static int le_rounded(double a, double b) {
  return a <= b || a - b <= 1e-9 * fmax(fabs(a), fabs(b));
}

/* What the schema cannot say about one side's statistics (`side` is "kiln" or
 * "baseline"): every figure is per operation, a time or a rate, never negative. */
static int check_stats_values(vctx *v, json_t *s, const char *side) {
  char name[96], other[96];
  json_t *ci = json_object_get(s, "ci95");
  double median = get(s, "median"), min = get(s, "min"), max = get(s, "max");
  double lo = json_number_value(json_array_get(ci, 0)),
         hi = json_number_value(json_array_get(ci, 1));
  for (size_t i = 1; i < N_STATS; i++) { /* jansson reads no inf or nan; be sure */
    json_t *x = json_object_get(s, stats_fields[i].key);
    if (json_is_number(x) && !isfinite(json_number_value(x)))
      return fail(v, join(name, sizeof name, side, stats_fields[i].key), x, "a finite number");
  }
  if (!(median > 0.0) || !isfinite(median))
    return fail(v, join(name, sizeof name, side, "median"), json_object_get(s, "median"),
                "a positive, finite number (a time or a rate per operation is never zero or "
                "negative)");
  if (!(min >= 0.0))
    return fail(v, join(name, sizeof name, side, "min"), json_object_get(s, "min"),
                "a number >= 0 (a time or a rate per operation is never negative)");
  if (!(lo <= median && median <= hi))
    return fail(v, join(name, sizeof name, side, "ci95"), ci, "[lo, hi] with lo <= %s (%.6g) <= hi",
                join(other, sizeof other, side, "median"), median);
  if (!(min <= median))
    return fail(v, join(name, sizeof name, side, "min"), json_object_get(s, "min"),
                "at most %s (%.6g)", join(other, sizeof other, side, "median"), median);
  if (!(median <= max))
    return fail(v, join(name, sizeof name, side, "max"), json_object_get(s, "max"),
                "at least %s (%.6g)", join(other, sizeof other, side, "median"), median);
  if (!(min <= lo && hi <= max))
    return fail(v, join(name, sizeof name, side, "ci95"), ci,
                "an interval within [min, max] = [%.6g, %.6g] (its ends are samples)", min, max);
  static const char *const chain[] = {"min", "p5", "p50", "p95", "p99", "max"};
  for (size_t i = 0; i + 1 < sizeof chain / sizeof chain[0]; i++)
    if (!le_rounded(get(s, chain[i]), get(s, chain[i + 1])))
      return fail(v, join(name, sizeof name, side, chain[i + 1]), json_object_get(s, chain[i + 1]),
                  "at least %s (%.6g): min <= p5 <= p50 <= p95 <= p99 <= max",
                  join(other, sizeof other, side, chain[i]), get(s, chain[i]));
  double mean = get(s, "mean");
  if (!le_rounded(min, mean) || !le_rounded(mean, max))
    return fail(v, join(name, sizeof name, side, "mean"), json_object_get(s, "mean"),
                "a value within [min, max] = [%.6g, %.6g]", min, max);
  if (get(s, "outliers") > get(s, "samples"))
    return fail(v, join(name, sizeof name, side, "outliers"), json_object_get(s, "outliers"),
                "at most %s (%.0f)", join(other, sizeof other, side, "samples"), get(s, "samples"));
  return 0;
}

static int check_result(vctx *v, json_t *r, size_t index) {
  char field_name[32];
  snprintf(field_name, sizeof field_name, "results[%zu]", index);
  v->where[0] = '\0';
  if (!json_is_object(r))
    return fail(v, field_name, r, "an object (one result)");
  json_t *suite = json_object_get(r, "suite"), *name = json_object_get(r, "name");
  if (json_is_string(suite) && json_is_string(name))
    snprintf(v->where, sizeof v->where, "results[%zu] (%.40s/%.60s): ", index,
             json_string_value(suite), json_string_value(name));
  else
    snprintf(v->where, sizeof v->where, "results[%zu]: ", index);

  /* structure, as schemas/bench.json's $defs/result */
  if (check_fields(v, r, "", result_fields, COUNT(result_fields), 1) ||
      check_fields(v, json_object_get(r, "device"), "device", device_fields, COUNT(device_fields),
                   1) ||
      check_fields(v, json_object_get(r, "kiln"), "kiln", stats_fields + 1, N_STATS - 1, 1))
    return -1;
  const char *key;
  json_t *x;
  json_t *params = json_object_get(r, "params");
  json_object_foreach(params, key, x) {
    if (!json_is_string(x) && !json_is_number(x) && !json_is_boolean(x)) {
      char pname[96];
      return fail(v, join(pname, sizeof pname, "params", key), x,
                  "a string, a number or a boolean");
    }
  }
  json_t *base = json_object_get(r, "baseline"), *ratio = json_object_get(r, "ratio");
  json_t *rci = json_object_get(r, "ratio_ci95");
  if (!json_is_null(base) && !json_is_object(base))
    return fail(v, "baseline", base, "%s", baseline_hint);
  if (!json_is_null(base) && check_fields(v, base, "baseline", stats_fields, N_STATS, 1))
    return -1;
  if (!json_is_null(ratio) && !(json_is_number(ratio) && json_number_value(ratio) >= 0.0))
    return fail(v, "ratio", ratio, "%s", ratio_hint);
  const field interval = {"ratio_ci95", K_INTERVAL, 1, NULL, NULL};
  if (!json_is_null(rci) && !value_ok(&interval, rci))
    return fail(v, "ratio_ci95", rci, "%s", ratio_ci95_hint);
  /* the schema's allOf: no ratio without a baseline, an interval with every ratio, and the
   * direction that goes with the unit */
  if (json_is_null(base) && !json_is_null(ratio))
    return fail(v, "ratio", ratio, "null when baseline is null");
  if (json_is_null(base) && !json_is_null(rci))
    return fail(v, "ratio_ci95", rci, "null when baseline is null");
  if (json_is_null(ratio) != json_is_null(rci))
    return fail(v, "ratio_ci95", rci,
                json_is_null(ratio) ? "null when ratio is null"
                                    : "an interval when ratio is a number");
  const char *unit = json_string_value(json_object_get(r, "unit"));
  int is_time = 0;
  for (size_t i = 0; k_time_units[i] != NULL; i++)
    is_time |= strcmp(unit, k_time_units[i]) == 0;
  json_t *better = json_object_get(r, "better");
  if (strcmp(json_string_value(better), is_time ? "lower" : "higher") != 0)
    return fail(v, "better", better, "\"%s\" for unit %s (a %s)", is_time ? "lower" : "higher",
                unit, is_time ? "time" : "rate");

  /* what the schema cannot say */
  if (check_stats_values(v, json_object_get(r, "kiln"), "kiln") != 0 ||
      (!json_is_null(base) && check_stats_values(v, base, "baseline") != 0))
    return -1;
  if (!json_is_null(ratio)) {
    double q = json_number_value(ratio);
    double lo = json_number_value(json_array_get(rci, 0)),
           hi = json_number_value(json_array_get(rci, 1));
    if (!(q > 0.0) || !isfinite(q))
      return fail(v, "ratio", ratio,
                  "a positive, finite number (kiln's performance relative to the baseline)");
    if (!(lo > 0.0 && lo <= hi) || !isfinite(hi))
      return fail(v, "ratio_ci95", rci, "[lo, hi] with 0 < lo <= hi, both finite");
  }
  return 0;
}

/* ---- scaling ---- */

static const char breakpoint_hint[] = "an object with n, slope_below and slope_above, or null";
static const char fit_hint[] = "a fit object, or null";
static const char baseline_ns_hint[] = "an array of numbers or nulls, or null";

static int check_fit(vctx *v, json_t *fit, const char *base) {
  static const field fit_fields[] = {
      {"slope", K_NUMBER, 1, NULL, NULL},
      {"intercept", K_NUMBER, 1, NULL, NULL},
      {"r2", K_NUMBER, 1, NULL, NULL},
      {"breakpoint", K_ANY, 1, NULL, breakpoint_hint},
  };
  static const field break_fields[] = {
      {"n", K_NUMBER, 1, NULL, NULL},
      {"slope_below", K_NUMBER, 1, NULL, NULL},
      {"slope_above", K_NUMBER, 1, NULL, NULL},
  };
  char name[96];
  if (json_is_null(fit))
    return 0;
  if (!json_is_object(fit))
    return fail(v, base, fit, "%s", fit_hint);
  if (check_fields(v, fit, base, fit_fields, COUNT(fit_fields), 1))
    return -1;
  json_t *bp = json_object_get(fit, "breakpoint");
  join(name, sizeof name, base, "breakpoint");
  if (json_is_null(bp))
    return 0;
  if (!json_is_object(bp))
    return fail(v, name, bp, "%s", breakpoint_hint);
  return check_fields(v, bp, name, break_fields, COUNT(break_fields), 1);
}

static int number_array(vctx *v, json_t *a, const char *name, int nulls, size_t min_items) {
  for (size_t i = 0; i < json_array_size(a); i++) {
    json_t *x = json_array_get(a, i);
    if (!json_is_number(x) && !(nulls && json_is_null(x))) {
      char item[64];
      snprintf(item, sizeof item, "%s[%zu]", name, i);
      return fail(v, item, x, nulls ? "a number or null" : "a number");
    }
  }
  if (json_array_size(a) < min_items)
    return fail(v, name, a, "an array of at least %zu numbers", min_items);
  return 0;
}

static int check_series(vctx *v, json_t *s, size_t index) {
  static const field series_fields[] = {
      {"suite", K_NAME, 1, NULL, NULL},
      {"name", K_NAME, 1, NULL, NULL},
      {"axis", K_NAME, 1, NULL, NULL},
      {"device", K_OBJECT, 1, NULL, NULL},
      {"n", K_ARRAY, 1, NULL, NULL},
      {"kiln_ns", K_ARRAY, 1, NULL, NULL},
      {"kiln_fit", K_ANY, 1, NULL, fit_hint},
      {"baseline_ns", K_ANY, 1, NULL, baseline_ns_hint},
      {"baseline_fit", K_ANY, 1, NULL, fit_hint},
  };
  static const field series_device[] = {
      {"backend", K_ANY, 1, NULL, "the device's backend"},
      {"index", K_ANY, 1, NULL, "the device's index"},
      {"name", K_ANY, 1, NULL, "the device's name"},
  };
  char field_name[32];
  snprintf(field_name, sizeof field_name, "scaling[%zu]", index);
  v->where[0] = '\0';
  if (!json_is_object(s))
    return fail(v, field_name, s, "an object (one scaling series)");
  snprintf(v->where, sizeof v->where, "scaling[%zu]: ", index);
  if (check_fields(v, s, "", series_fields, COUNT(series_fields), 1) ||
      check_fields(v, json_object_get(s, "device"), "device", series_device, COUNT(series_device),
                   0) ||
      number_array(v, json_object_get(s, "n"), "n", 0, 2) ||
      number_array(v, json_object_get(s, "kiln_ns"), "kiln_ns", 0, 0) ||
      check_fit(v, json_object_get(s, "kiln_fit"), "kiln_fit") ||
      check_fit(v, json_object_get(s, "baseline_fit"), "baseline_fit"))
    return -1;
  json_t *bns = json_object_get(s, "baseline_ns");
  if (json_is_null(bns))
    return 0;
  if (!json_is_array(bns))
    return fail(v, "baseline_ns", bns, "%s", baseline_ns_hint);
  return number_array(v, bns, "baseline_ns", 1, 0);
}

/* ---- the document ---- */

int kiln__bench_validate(json_t *root, char *error, size_t error_size) {
  static const field top_fields[] = {
      {"kiln_version", K_VERSION, 1, NULL, NULL}, {"host", K_OBJECT, 1, NULL, NULL},
      {"timing_note", K_NONEMPTY, 1, NULL, NULL}, {"results", K_ARRAY, 1, NULL, NULL},
      {"scaling", K_ARRAY, 0, NULL, NULL},
  };
  static const field host_fields[] = {
      {"hostname", K_NONEMPTY, 1, NULL, NULL},
      {"cpu", K_NONEMPTY, 1, NULL, NULL},
      {"cores", K_INT_GE1, 1, NULL, NULL},
      {"os", K_NONEMPTY, 1, NULL, NULL},
  };
  char scratch[1];
  vctx v = {error_size > 0 ? error : scratch, error_size > 0 ? error_size : sizeof scratch, ""};
  v.error[0] = '\0';
  json_t *results = json_object_get(root, "results");
  if (!json_is_object(root) || !json_is_string(json_object_get(root, "kiln_version")) ||
      !json_is_array(results)) {
    snprintf(v.error, v.size,
             "not a kiln bench document (see schemas/bench.json): it needs an object with "
             "\"kiln_version\" and a \"results\" array");
    return -1;
  }
  /* the results first: they are what compare reads */
  for (size_t i = 0; i < json_array_size(results); i++)
    if (check_result(&v, json_array_get(results, i), i) != 0)
      return -1;
  v.where[0] = '\0';
  if (check_fields(&v, root, "", top_fields, COUNT(top_fields), 1) ||
      check_fields(&v, json_object_get(root, "host"), "host", host_fields, COUNT(host_fields), 1))
    return -1;
  json_t *scaling = json_object_get(root, "scaling");
  for (size_t i = 0; i < json_array_size(scaling); i++)
    if (check_series(&v, json_array_get(scaling, i), i) != 0)
      return -1;
  return 0;
}
