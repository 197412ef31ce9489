/* SPDX-License-Identifier: MIT */
/* The measuring loop: expand a case's axes into runs, pick the device, set both sides
 * up, calibrate one batch size that makes each side's batch last min_batch_ns, warm
 * up, then time kiln and baseline batches in pairs whose order alternates (kiln first
 * in even pairs, baseline first in odd ones) with an idle gap before each batch, until
 * both medians' 95% intervals are within target_rel_ci or the budget is spent. Every
 * time comes from the configured clock (the gap is real time and never counted), so a
 * fake clock makes a run fully deterministic. Public kiln API only; callers own the
 * result's arrays (kiln_bench_result_clear). */
#define _POSIX_C_SOURCE 200809L
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"
#include "kiln/bench.h"
#include "bench_internal.h"

#define DEFAULT_SEED 0x6b696c6e62656e63ull /* "kilnbenc" */
#define DEFAULT_GAP_NS 200000

uint64_t kiln_bench_clock_monotonic(void *user) {
  (void)user;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The configuration with every default filled in. */
typedef struct settings {
  uint64_t budget_ns, warmup_ns, min_batch_ns, hard_limit_ns, gap_ns;
  double target_rel_ci;
  unsigned min_samples, max_samples, slowdown, resamples;
  int self_test, quick;
  uint64_t seed;
  const char *device;
  kiln_bench_clock_fn clock;
  void *clock_user;
  kiln_bench_tick_fn tick;
  void *tick_user;
} settings;

static void settle(const kiln_bench_config *c, settings *s) {
  kiln_bench_config none = KILN_BENCH_CONFIG_INIT;
  if (c == NULL)
    c = &none;
  int quick = c->quick;
  s->quick = quick;
  s->budget_ns = c->budget_ns ? c->budget_ns : (quick ? 250000000ull : 2000000000ull);
  s->warmup_ns = c->warmup_ns ? c->warmup_ns : (quick ? 20000000ull : 200000000ull);
  s->min_batch_ns = c->min_batch_ns ? c->min_batch_ns : 1000000ull;
  /* past the budget, batches continue only until min_samples, and never past this */
  s->hard_limit_ns = 4 * s->budget_ns;
  s->gap_ns = c->idle_gap_ns < 0    ? 0
              : c->idle_gap_ns == 0 ? DEFAULT_GAP_NS
                                    : (uint64_t)c->idle_gap_ns;
  s->target_rel_ci = c->target_rel_ci > 0.0 ? c->target_rel_ci : 0.01;
  s->min_samples = c->min_samples ? c->min_samples : (quick ? 5u : 10u);
  s->max_samples = c->max_samples ? c->max_samples : 2000u;
  if (s->max_samples < s->min_samples)
    s->max_samples = s->min_samples;
  s->self_test = c->self_test;
  s->slowdown = c->kiln_slowdown > 1 ? c->kiln_slowdown : (c->self_test ? 2u : 1u);
  s->resamples = c->bootstrap_resamples ? c->bootstrap_resamples : 2000u;
  s->seed = c->bootstrap_seed ? c->bootstrap_seed : DEFAULT_SEED;
  s->device = c->device;
  s->clock = c->clock ? c->clock : kiln_bench_clock_monotonic;
  s->clock_user = c->clock ? c->clock_user : NULL;
  s->tick = c->tick;
  s->tick_user = c->tick_user;
}

static void fail_msg(kiln_bench_result *r, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(r->message, sizeof r->message, "%s/%s: ", r->suite->name,
                   r->label[0] ? r->label : "?");
  if (n > 0 && (size_t)n < sizeof r->message)
    vsnprintf(r->message + n, sizeof r->message - (size_t)n, fmt, ap);
  va_end(ap);
  r->status = status;
}

/* Describe a kiln function's failure with the core's own detail. */
static void fail_kiln(kiln_bench_result *r, int rc, const char *what) {
  const kiln_error_info *e = kiln_last_error();
  fail_msg(r, rc, "kiln side failed in %s: %s (%s)", what, kiln_status_name((kiln_status)rc),
           e->status == (kiln_status)rc && e->message[0] ? e->message
                                                         : kiln_status_message((kiln_status)rc));
}

/* ---- axes ---- */

int64_t kiln_bench_env_num(const kiln_bench_env *env, const char *key, int64_t fallback) {
  for (size_t i = 0; env != NULL && key != NULL && i < env->param_count; i++)
    if (env->params[i].str == NULL && strcmp(env->params[i].key, key) == 0)
      return env->params[i].num;
  return fallback;
}

const char *kiln_bench_env_str(const kiln_bench_env *env, const char *key, const char *fallback) {
  for (size_t i = 0; env != NULL && key != NULL && i < env->param_count; i++)
    if (env->params[i].str != NULL && strcmp(env->params[i].key, key) == 0)
      return env->params[i].str;
  return fallback;
}

int kiln_bench_suite_has_axis(const kiln_bench_suite *suite, const char *name) {
  for (size_t i = 0; suite != NULL && name != NULL && i < suite->case_count; i++)
    for (size_t a = 0; a < suite->cases[i].axis_count; a++)
      if (strcmp(suite->cases[i].axes[a].name, name) == 0)
        return 1;
  return 0;
}

static const kiln_bench_axis_override *find_override(const kiln_bench_config *c, const char *name) {
  if (c == NULL)
    return NULL;
  const kiln_bench_axis_override *found = NULL;
  for (size_t i = 0; i < c->axis_override_count; i++) /* the last one wins */
    if (strcmp(c->axis_overrides[i].name, name) == 0)
      found = &c->axis_overrides[i];
  return found;
}

/* The values of axis `a` of `c` under the overrides. */
typedef struct axis_vals {
  size_t count;
  int is_str;
  int64_t nums[KILN__BENCH_MAX_AXIS_VALUES];
  const char *strs[KILN__BENCH_MAX_AXIS_VALUES];
} axis_vals;

static int get_axis(const kiln_bench_config *config, const kiln_bench_axis *ax, axis_vals *v,
                    char *err, size_t err_size) {
  const kiln_bench_axis_override *o = find_override(config, ax->name);
  v->is_str = ax->strs != NULL;
  if (o == NULL) {
    v->count = ax->count < KILN__BENCH_MAX_AXIS_VALUES ? ax->count : KILN__BENCH_MAX_AXIS_VALUES;
    for (size_t i = 0; i < v->count; i++) {
      if (v->is_str)
        v->strs[i] = ax->strs[i];
      else
        v->nums[i] = ax->nums[i];
    }
    return 0;
  }
  if (o->count == 0 || o->count > KILN__BENCH_MAX_AXIS_VALUES) {
    snprintf(err, err_size, "--axis %s: give 1 to %d values, not %zu", ax->name,
             KILN__BENCH_MAX_AXIS_VALUES, o->count);
    return -1;
  }
  v->count = o->count;
  for (size_t i = 0; i < o->count; i++) {
    if (v->is_str) {
      v->strs[i] = o->values[i];
    } else if (kiln_bench_parse_int(o->values[i], &v->nums[i]) != 0) {
      snprintf(err, err_size,
               "--axis %s: '%s' is not an integer (suffixes K, KiB, M, MiB, G, GiB allowed)",
               ax->name, o->values[i]);
      return -1;
    }
  }
  return 0;
}

int kiln_bench_check_overrides(const kiln_bench_config *config,
                               const kiln_bench_suite *const *suites, size_t count, char *error,
                               size_t error_size) {
  if (error_size > 0)
    error[0] = '\0';
  for (size_t i = 0; config != NULL && i < config->axis_override_count; i++) {
    const kiln_bench_axis_override *o = &config->axis_overrides[i];
    int known = 0;
    for (size_t k = 0; k < count; k++) {
      const kiln_bench_suite *s = suites[k];
      for (size_t c = 0; c < s->case_count; c++)
        for (size_t a = 0; a < s->cases[c].axis_count; a++) {
          const kiln_bench_axis *ax = &s->cases[c].axes[a];
          if (strcmp(ax->name, o->name) != 0)
            continue;
          known = 1;
          axis_vals v;
          if (get_axis(config, ax, &v, error, error_size) != 0)
            return -1;
        }
    }
    if (!known) {
      int n = snprintf(error, error_size,
                       "unknown axis '%s'; the axes of the chosen suites are:", o->name);
      size_t used = n > 0 ? (size_t)n : 0;
      int any = 0;
      for (size_t k = 0; k < count; k++)
        for (size_t c = 0; c < suites[k]->case_count; c++)
          for (size_t a = 0; a < suites[k]->cases[c].axis_count; a++) {
            const char *name = suites[k]->cases[c].axes[a].name;
            int listed = 0; /* an earlier case of these suites has it */
            for (size_t k2 = 0; k2 <= k && !listed; k2++)
              for (size_t c2 = 0; c2 < (k2 < k ? suites[k2]->case_count : c) && !listed; c2++)
                for (size_t a2 = 0; a2 < suites[k2]->cases[c2].axis_count; a2++)
                  listed |= strcmp(suites[k2]->cases[c2].axes[a2].name, name) == 0;
            if (used >= error_size || listed)
              continue;
            n = snprintf(error + used, error_size - used, " %s (%s/%s)", name, suites[k]->name,
                         suites[k]->cases[c].name);
            used += n > 0 ? (size_t)n : 0;
            any = 1;
          }
      if (!any && used < error_size)
        snprintf(error + used, error_size - used, " (none)");
      return -1;
    }
  }
  return 0;
}

int kiln_bench_case_selected(const kiln_bench_config *config, const char *case_name) {
  if (config == NULL || config->struct_size < offsetof(kiln_bench_config, cases) + sizeof(char *) ||
      config->cases == NULL || config->cases[0] == '\0')
    return 1;
  const char *p = config->cases;
  while (*p != '\0') {
    size_t n = strcspn(p, ",");
    char pattern[128];
    if (n > 0 && n < sizeof pattern) {
      memcpy(pattern, p, n);
      pattern[n] = '\0';
      if (fnmatch(pattern, case_name, 0) == 0)
        return 1;
    }
    p += n + (p[n] == ',');
  }
  return 0;
}

size_t kiln_bench_case_runs(const kiln_bench_config *config, const kiln_bench_case *c) {
  if (!kiln_bench_case_selected(config, c->name))
    return 0;
  size_t runs = 1;
  char err[8];
  for (size_t a = 0; a < c->axis_count; a++) {
    axis_vals v;
    if (get_axis(config, &c->axes[a], &v, err, sizeof err) != 0)
      return 0;
    runs *= v.count;
  }
  return runs;
}

static void add_param(kiln_bench_result *r, const char *key, const char *str, int64_t num) {
  size_t i;
  for (i = 0; i < r->param_count; i++)
    if (strcmp(r->params[i].key, key) == 0)
      break; /* an axis replaces a fixed one */
  if (i == r->param_count) {
    if (r->param_count == KILN_BENCH_MAX_PARAMS)
      return;
    r->param_count++;
  }
  r->params[i].key = key;
  r->params[i].num = str != NULL ? 0 : num;
  r->params[i].str = NULL;
  if (str != NULL) {
    snprintf(r->param_text[i], sizeof r->param_text[i], "%s", str);
    r->params[i].str = r->param_text[i];
  }
}

/* Fill the result's canonical parameters (sorted by key) and its label for run `run`
 * of the case. Returns 0 or -1 with the message set. */
static int set_params(const kiln_bench_config *config, const kiln_bench_case *c, size_t run,
                      kiln_bench_result *r) {
  snprintf(r->label, sizeof r->label, "%s", c->name);
  for (size_t i = 0; i < c->param_count; i++)
    add_param(r, c->params[i].key, c->params[i].str, c->params[i].num);
  size_t stride = 1;
  for (size_t a = c->axis_count; a-- > 0;) {
    axis_vals v;
    char err[256];
    if (get_axis(config, &c->axes[a], &v, err, sizeof err) != 0) {
      fail_msg(r, KILN_ERROR_INVALID_ARGUMENT, "%s", err);
      return -1;
    }
    size_t k = (run / stride) % v.count;
    stride *= v.count;
    add_param(r, c->axes[a].name, v.is_str ? v.strs[k] : NULL, v.is_str ? 0 : v.nums[k]);
  }
  /* sort by key: few entries, insertion sort; string storage moves along */
  for (size_t i = 1; i < r->param_count; i++) {
    for (size_t k = i; k > 0 && strcmp(r->params[k - 1].key, r->params[k].key) > 0; k--) {
      kiln_bench_param t = r->params[k];
      r->params[k] = r->params[k - 1];
      r->params[k - 1] = t;
      char text[sizeof r->param_text[0]];
      memcpy(text, r->param_text[k], sizeof text);
      memcpy(r->param_text[k], r->param_text[k - 1], sizeof text);
      memcpy(r->param_text[k - 1], text, sizeof text);
    }
  }
  for (size_t i = 0; i < r->param_count; i++)
    if (r->params[i].str != NULL)
      r->params[i].str = r->param_text[i];
  /* the label names the axis values in the case's axis order */
  for (size_t a = 0; a < c->axis_count; a++) {
    for (size_t i = 0; i < r->param_count; i++) {
      if (strcmp(r->params[i].key, c->axes[a].name) != 0)
        continue;
      size_t used = strlen(r->label);
      if (r->params[i].str != NULL)
        snprintf(r->label + used, sizeof r->label - used, " %s=%s", r->params[i].key,
                 r->params[i].str);
      else
        snprintf(r->label + used, sizeof r->label - used, " %s=%lld", r->params[i].key,
                 (long long)r->params[i].num);
    }
  }
  r->work_per_op = c->work_per_op;
  if (c->work_axis != NULL) {
    int found = 0;
    for (size_t i = 0; i < r->param_count; i++)
      if (r->params[i].str == NULL && strcmp(r->params[i].key, c->work_axis) == 0) {
        r->work_per_op = (double)r->params[i].num * (c->work_per_op > 0.0 ? c->work_per_op : 1.0);
        found = 1;
      }
    if (!found) {
      fail_msg(r, KILN_ERROR_INVALID_ARGUMENT, "work_axis '%s' is not an integer parameter",
               c->work_axis);
      return -1;
    }
  }
  return 0;
}

void kiln_bench_params_text(const kiln_bench_result *r, char *buf, size_t size) {
  if (size == 0)
    return;
  buf[0] = '\0';
  size_t used = 0;
  for (size_t i = 0; r != NULL && i < r->param_count && used < size; i++) {
    int n;
    if (r->params[i].str != NULL)
      n = snprintf(buf + used, size - used, "%s%s=%s", i ? "," : "", r->params[i].key,
                   r->params[i].str);
    else
      n = snprintf(buf + used, size - used, "%s%s=%lld", i ? "," : "", r->params[i].key,
                   (long long)r->params[i].num);
    used += n > 0 ? (size_t)n : 0;
  }
}

/* ---- device ---- */

static kiln_status pick_device(const settings *s, kiln_bench_result *r) {
  const kiln_bench_suite *suite = r->suite;
  kiln__bench_host host;
  if (suite->host_only) {
    kiln__bench_host_get(&host);
    snprintf(r->device_backend, sizeof r->device_backend, "host");
    r->device_index = 0;
    snprintf(r->device_name, sizeof r->device_name, "%s", host.cpu);
    return KILN_SUCCESS;
  }
  kiln_device dev = NULL;
  kiln_status st;
  if (s->device != NULL)
    st = kiln_device_parse(s->device, &dev);
  else if (suite->backend != KILN_BACKEND_NONE)
    st = kiln_device_find(suite->backend, 0, &dev);
  else
    st = kiln_device_default(&dev);
  if (st != KILN_SUCCESS) {
    const kiln_error_info *e = kiln_last_error();
    fail_msg(r, st, "no device %s%s: %s", s->device ? "matches " : "for the suite",
             s->device ? s->device : "", e->message[0] ? e->message : kiln_status_message(st));
    return st;
  }
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  st = kiln_device_get_props(dev, &props);
  if (st != KILN_SUCCESS) {
    fail_msg(r, st, "cannot read the device's properties: %s", kiln_status_name(st));
    return st;
  }
  if (suite->backend != KILN_BACKEND_NONE && props.backend != suite->backend) {
    fail_msg(r, KILN_ERROR_INVALID_ARGUMENT,
             "suite '%s' runs on the %s backend only; device %s:%u is not one of its devices",
             suite->name, kiln_backend_name(suite->backend), kiln_backend_name(props.backend),
             props.index);
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  snprintf(r->device_backend, sizeof r->device_backend, "%s", kiln_backend_name(props.backend));
  r->device_index = props.index;
  snprintf(r->device_name, sizeof r->device_name, "%s", props.name);
  r->device = dev;
  return KILN_SUCCESS;
}

/* ---- timing ---- */

typedef struct side {
  kiln_bench_fn run;
  kiln_bench_timed_fn timed; /* used when the run is device-timed */
  void *state;
  unsigned repeat; /* the self-test's slowdown on the kiln side */
} side;

static void idle_gap(const settings *s) {
  if (s->gap_ns == 0)
    return;
  struct timespec ts = {(time_t)(s->gap_ns / 1000000000ull), (long)(s->gap_ns % 1000000000ull)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Time one batch of `iters` iterations after the idle gap; *ns receives the elapsed
 * time: the device's when `device` is set, else the clock's around the call. */
static int time_batch(const settings *s, const side *sd, int device, uint64_t iters, uint64_t *ns) {
  idle_gap(s);
  uint64_t dev_total = 0;
  uint64_t t0 = s->clock(s->clock_user);
  for (unsigned k = 0; k < sd->repeat; k++) {
    int rc;
    if (device) {
      uint64_t d = 0;
      rc = sd->timed(sd->state, iters, &d);
      dev_total += d;
    } else {
      rc = sd->run(sd->state, iters);
    }
    if (rc != 0)
      return rc;
  }
  uint64_t t1 = s->clock(s->clock_user);
  *ns = device ? dev_total : t1 > t0 ? t1 - t0 : 0;
  return 0;
}

static double rel_half_width(const double *v, size_t n, double *scratch) {
  memcpy(scratch, v, n * sizeof *v);
  kiln_bench_stats st;
  kiln_bench_stats_compute(scratch, n, &st);
  if (!(st.median > 0.0))
    return st.ci95_hi > st.ci95_lo ? INFINITY : 0.0;
  return (st.ci95_hi - st.ci95_lo) / 2.0 / st.median;
}

/* Convert per-op ns into the unit and compute the statistics. */
static int side_stats(const kiln_bench_case *c, double work, const double *ns, size_t n,
                      double *values, kiln_bench_stats *st) {
  for (size_t i = 0; i < n; i++)
    if (kiln_bench_convert(c->unit, work, ns[i], &values[i]) != 0)
      return -1;
  kiln_bench_stats_compute(values, n, st);
  return 0;
}

typedef struct ticker {
  const settings *s;
  kiln_bench_tick tick;
  uint64_t start;
} ticker;

static void tick(ticker *t, const char *phase, uint64_t samples, double rel_ci,
                 uint64_t measure_start) {
  if (t->s->tick == NULL)
    return;
  const settings *s = t->s;
  uint64_t now = s->clock(s->clock_user);
  t->tick.phase = phase;
  t->tick.samples = samples;
  t->tick.rel_ci = rel_ci;
  t->tick.elapsed_ns = now - t->start;
  /* before measuring: what is left of the warm-up plus the budget; then the budget
   * from the measuring start (the run may stop earlier, on the target) */
  uint64_t est = measure_start != 0 ? (measure_start - t->start) + s->budget_ns
                                    : t->tick.elapsed_ns + s->warmup_ns + s->budget_ns;
  t->tick.estimate_ns = est > t->tick.elapsed_ns ? est : t->tick.elapsed_ns;
  s->tick(&t->tick, s->tick_user);
}

/* One run of a case in progress: its settings, both sides, and where it is. */
typedef struct run_state {
  settings s;
  const kiln_bench_case *c;
  kiln_bench_result *r;
  side k, b;
  int has_base; /* a baseline (or the self-test's second kiln side) runs */
  int device;   /* device timing: only when every side has it, so a ratio never mixes clocks */
  int k_ready, b_ready;     /* set up: tear down */
  const char *base_name;    /* the baseline's name in the result */
  const char *phase;        /* what a failing batch was part of, for the message */
  uint64_t start, iters;    /* the run's start; iterations per batch once calibrated */
  uint64_t pairs;           /* pairs timed in this phase (their order alternates) */
  double *scratch, *values; /* max_samples each, once measuring */
  ticker tk;
} run_state;

/* One pair (or one kiln batch without a baseline) of `iters` iterations, in the pair's
 * order; a failure is recorded in the result, naming the side and the phase. */
static int time_pair(run_state *x, uint64_t iters, uint64_t *kt, uint64_t *bt) {
  int base_first = x->has_base && (x->pairs++ & 1u);
  int rc = 0, base_failed = 0;
  if (base_first)
    base_failed = (rc = time_batch(&x->s, &x->b, x->device, iters, bt)) != 0;
  if (rc == 0)
    rc = time_batch(&x->s, &x->k, x->device, iters, kt);
  if (rc == 0 && x->has_base && !base_first)
    base_failed = (rc = time_batch(&x->s, &x->b, x->device, iters, bt)) != 0;
  if (rc != 0 && !base_failed)
    fail_kiln(x->r, rc, x->phase);
  else if (rc != 0)
    fail_msg(x->r, rc, "baseline '%s' failed with %d", x->base_name, rc);
  return rc;
}

/* The result's identity, its parameters and its device; what every side will run. */
static kiln_status run_begin(run_state *x, const kiln_bench_config *config,
                             const kiln_bench_suite *suite, const kiln_bench_case *c, size_t run,
                             size_t index, size_t total, kiln_bench_result *r) {
  memset(x, 0, sizeof *x);
  settle(config, &x->s);
  x->c = c;
  x->r = r;
  memset(r, 0, sizeof *r);
  r->suite = suite;
  r->bcase = c;
  r->ratio = r->ratio_lo = r->ratio_hi = NAN;
  snprintf(r->label, sizeof r->label, "%s", c->name != NULL ? c->name : "?");
  x->start = x->s.clock(x->s.clock_user);
  double probe;
  if (c->name == NULL || c->run == NULL) {
    fail_msg(r, KILN_ERROR_INVALID_ARGUMENT, "the case has no %s",
             c->name ? "run function" : "name");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if (set_params(config, c, run, r) != 0)
    return KILN_ERROR_INVALID_ARGUMENT;
  if (kiln_bench_convert(c->unit, r->work_per_op, 1.0, &probe) != 0) {
    fail_msg(r, KILN_ERROR_INVALID_ARGUMENT,
             "unit '%s' is not one of ns, us, ms, s, GB/s, MB/s, GiB/s, items/s, Mitems/s "
             "(rates need work_per_op > 0)",
             c->unit ? c->unit : "(null)");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  kiln_status st = pick_device(&x->s, r);
  if (st != KILN_SUCCESS)
    return st;
  const settings *s = &x->s;
  x->has_base = s->self_test || (c->baseline_name != NULL && c->baseline_run != NULL);
  x->base_name = s->self_test ? "kiln-self" : c->baseline_name;
  x->k = (side){c->run, c->run_timed, NULL, s->slowdown};
  x->b = (side){s->self_test ? c->run : c->baseline_run,
                s->self_test ? c->run_timed : c->baseline_run_timed, NULL, 1};
  x->device = x->k.timed != NULL && (!x->has_base || x->b.timed != NULL);
  x->tk = (ticker){s, {suite->name, r->label, "setting up", index, total, 0, 0, 0, NAN}, x->start};
  return KILN_SUCCESS;
}

/* Both sides' set-ups (the self-test's baseline shares the kiln side's state). */
static int set_up(run_state *x) {
  const kiln_bench_case *c = x->c;
  kiln_bench_env env = {x->r->device, c->arg, x->s.quick, x->r->params, x->r->param_count};
  int rc;
  tick(&x->tk, "setting up", 0, NAN, 0);
  if (c->setup != NULL && (rc = c->setup(&env, &x->k.state)) != 0) {
    fail_kiln(x->r, rc, "set-up");
    return rc;
  }
  x->k_ready = 1;
  if (x->s.self_test) {
    x->b.state = x->k.state; /* the same function on the same state, interleaved */
    return 0;
  }
  if (!x->has_base)
    return 0;
  rc = 0;
  if (c->baseline_setup_env != NULL)
    rc = c->baseline_setup_env(&env, &x->b.state);
  else if (c->baseline_setup != NULL)
    rc = c->baseline_setup(c->arg, &x->b.state);
  if (rc != 0) {
    fail_msg(x->r, rc, "baseline '%s' failed in set-up with %d", x->base_name, rc);
    return rc;
  }
  x->b_ready = 1;
  return 0;
}

/* Grow the batch until each side's batch lasts min_batch_ns; then warm up at that size. */
static int calibrate_and_warm_up(run_state *x) {
  const settings *s = &x->s;
  uint64_t iters = 1, kt = 0, bt = 0;
  tick(&x->tk, "calibrating", 0, NAN, 0);
  x->phase = "calibration";
  for (;;) {
    if (time_pair(x, iters, &kt, &bt) != 0)
      return -1;
    uint64_t shortest = x->has_base && bt < kt ? bt : kt;
    if (shortest >= s->min_batch_ns || iters >= (1ull << 40))
      break;
    if (s->clock(s->clock_user) - x->start > s->hard_limit_ns)
      break;
    uint64_t grow = shortest == 0 ? 16 : (s->min_batch_ns + shortest - 1) / shortest;
    iters *= grow < 2 ? 2 : grow > 16 ? 16 : grow;
  }
  x->iters = iters;
  x->r->batch_size = iters * (x->c->ops_per_iter ? x->c->ops_per_iter : 1);

  tick(&x->tk, "warming up", 0, NAN, 0);
  x->phase = "warm-up";
  uint64_t warm_start = s->clock(s->clock_user);
  do {
    if (time_pair(x, iters, &kt, &bt) != 0)
      return -1;
  } while (s->clock(s->clock_user) - warm_start < s->warmup_ns);
  return 0;
}

/* The sample arrays of the result and the scratch space of the statistics. */
static kiln_status alloc_samples(run_state *x) {
  unsigned max = x->s.max_samples;
  kiln_bench_result *r = x->r;
  r->kiln_ns = malloc(max * sizeof(double));
  r->baseline_ns = x->has_base ? malloc(max * sizeof(double)) : NULL;
  x->scratch = malloc(max * sizeof(double));
  x->values = malloc(max * sizeof(double));
  if (r->kiln_ns == NULL || (x->has_base && r->baseline_ns == NULL) || x->scratch == NULL ||
      x->values == NULL) {
    fail_msg(r, KILN_ERROR_OUT_OF_HOST_MEMORY, "cannot allocate %u samples", max);
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  }
  return KILN_SUCCESS;
}

/* Timed pairs, alternating their order from kiln first, until both medians' intervals
 * are narrow enough, the budget is spent (with min_samples), or max_samples. The
 * number of samples per side into *count; -1 when a side failed. */
static int measure(run_state *x, size_t *count) {
  const settings *s = &x->s;
  kiln_bench_result *r = x->r;
  const double per = (double)r->batch_size;
  uint64_t measure_start = s->clock(s->clock_user), kt = 0, bt = 0;
  size_t n = 0, next_check = s->min_samples;
  double rel = NAN;
  x->pairs = 0;
  x->phase = "a timed batch";
  tick(&x->tk, "measuring", 0, rel, measure_start);
  for (;;) {
    if (time_pair(x, x->iters, &kt, &bt) != 0)
      return -1;
    r->kiln_ns[n] = (double)kt / per;
    if (x->has_base)
      r->baseline_ns[n] = (double)bt / per;
    n++;
    uint64_t elapsed = s->clock(s->clock_user) - measure_start;
    if (n >= s->max_samples || elapsed >= s->hard_limit_ns)
      break;
    if (n >= s->min_samples && elapsed >= s->budget_ns)
      break;
    if (n >= s->min_samples && n >= next_check) {
      /* checking costs a sort per side: do it after ~6% more samples each time */
      next_check = n + 1 + n / 16;
      rel = rel_half_width(r->kiln_ns, n, x->scratch);
      if (x->has_base) {
        double rb = rel_half_width(r->baseline_ns, n, x->scratch);
        if (rb > rel)
          rel = rb;
      }
      if (rel <= s->target_rel_ci)
        break;
    }
    tick(&x->tk, "measuring", n, rel, measure_start);
  }
  *count = n;
  return 0;
}

/* Statistics in the case's unit, and the ratio (> 1: kiln is better). */
static kiln_status summarize(run_state *x, size_t n) {
  const kiln_bench_case *c = x->c;
  kiln_bench_result *r = x->r;
  if (side_stats(c, r->work_per_op, r->kiln_ns, n, x->values, &r->kiln) != 0 ||
      (x->has_base &&
       side_stats(c, r->work_per_op, r->baseline_ns, n, x->scratch, &r->baseline) != 0)) {
    fail_msg(r, KILN_ERROR_INVALID_ARGUMENT,
             "a measured time of 0 ns cannot be expressed in %s: raise min_batch_ns", c->unit);
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  r->has_baseline = x->has_base;
  r->baseline_name = x->base_name;
  r->device_timing = x->device;
  if (x->has_base) {
    /* values and scratch hold the sorted kiln and baseline values */
    const double *num = x->values, *den = x->scratch;
    double num_median = r->kiln.median, den_median = r->baseline.median;
    if (c->better == KILN_BENCH_LOWER) {
      num = x->scratch;
      den = x->values;
      num_median = r->baseline.median;
      den_median = r->kiln.median;
    }
    r->ratio = den_median > 0.0 ? num_median / den_median : NAN;
    kiln_bench_ratio_ci(num, n, den, n, x->s.resamples, x->s.seed, 0.95, &r->ratio_lo,
                        &r->ratio_hi);
  }
  return KILN_SUCCESS;
}

/* Tear down what was set up; a failed run keeps no samples and has a status. */
static void run_end(run_state *x, kiln_status result) {
  const kiln_bench_case *c = x->c;
  kiln_bench_result *r = x->r;
  if (x->b_ready && c->baseline_teardown != NULL)
    c->baseline_teardown(x->b.state);
  if (x->k_ready && c->teardown != NULL)
    c->teardown(x->k.state);
  free(x->scratch);
  free(x->values);
  r->elapsed_ns = x->s.clock(x->s.clock_user) - x->start;
  if (result != KILN_SUCCESS) {
    free(r->kiln_ns);
    free(r->baseline_ns);
    r->kiln_ns = r->baseline_ns = NULL;
    if (r->status == 0)
      r->status = result;
  }
}

kiln_status kiln__bench_run(const kiln_bench_config *config, const kiln_bench_suite *suite,
                            const kiln_bench_case *c, size_t run, size_t index, size_t total,
                            kiln_bench_result *r) {
  run_state x;
  kiln_status st = run_begin(&x, config, suite, c, run, index, total, r);
  if (st != KILN_SUCCESS)
    return st;
  kiln_status result = KILN_ERROR_BACKEND; /* a side failed, unless said otherwise */
  size_t n = 0;
  if (set_up(&x) == 0 && calibrate_and_warm_up(&x) == 0) {
    result = alloc_samples(&x);
    if (result == KILN_SUCCESS)
      result = measure(&x, &n) == 0 ? summarize(&x, n) : KILN_ERROR_BACKEND;
  }
  run_end(&x, result);
  return result;
}

kiln_status kiln_bench_run_case_at(const kiln_bench_config *config, const kiln_bench_suite *suite,
                                   const kiln_bench_case *c, size_t run, kiln_bench_result *r) {
  if (suite == NULL || c == NULL || r == NULL)
    return KILN_ERROR_INVALID_ARGUMENT;
  return kiln__bench_run(config, suite, c, run, run, kiln_bench_case_runs(config, c), r);
}

kiln_status kiln_bench_run_case(const kiln_bench_config *config, const kiln_bench_suite *suite,
                                const kiln_bench_case *c, kiln_bench_result *r) {
  return kiln_bench_run_case_at(config, suite, c, 0, r);
}

void kiln_bench_result_clear(kiln_bench_result *r) {
  if (r == NULL)
    return;
  free(r->kiln_ns);
  free(r->baseline_ns);
  r->kiln_ns = r->baseline_ns = NULL;
}
