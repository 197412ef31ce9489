/* SPDX-License-Identifier: MIT */
/* The measuring loop: pick the device, set both sides up, calibrate one batch size
 * that makes each side's batch last min_batch_ns, warm up, then time kiln and baseline
 * batches interleaved (kiln, baseline, kiln, baseline, ...) until both medians' 95%
 * intervals are within target_rel_ci, or the budget is spent. Every time comes from the
 * configured clock, so a fake clock makes a run fully deterministic. Uses only the
 * public kiln API; callers own the result's arrays (kiln_bench_result_clear). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"
#include "kiln/bench.h"
#include "bench_internal.h"

#define DEFAULT_SEED 0x6b696c6e62656e63ull /* "kilnbenc" */

uint64_t kiln_bench_clock_monotonic(void *user) {
  (void)user;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The configuration with every default filled in. */
typedef struct settings {
  uint64_t budget_ns, warmup_ns, min_batch_ns, hard_limit_ns;
  double target_rel_ci;
  unsigned min_samples, max_samples, slowdown, resamples;
  int self_test;
  uint64_t seed;
  const char *device;
  kiln_bench_clock_fn clock;
  void *clock_user;
} settings;

static void settle(const kiln_bench_config *c, settings *s) {
  kiln_bench_config none = KILN_BENCH_CONFIG_INIT;
  if (c == NULL) c = &none;
  int quick = c->quick;
  s->budget_ns = c->budget_ns ? c->budget_ns : (quick ? 250000000ull : 2000000000ull);
  s->warmup_ns = c->warmup_ns ? c->warmup_ns : (quick ? 20000000ull : 200000000ull);
  s->min_batch_ns = c->min_batch_ns ? c->min_batch_ns : 1000000ull;
  /* past the budget, batches continue only until min_samples, and never past this */
  s->hard_limit_ns = 4 * s->budget_ns;
  s->target_rel_ci = c->target_rel_ci > 0.0 ? c->target_rel_ci : 0.01;
  s->min_samples = c->min_samples ? c->min_samples : (quick ? 5u : 10u);
  s->max_samples = c->max_samples ? c->max_samples : 2000u;
  if (s->max_samples < s->min_samples) s->max_samples = s->min_samples;
  s->self_test = c->self_test;
  s->slowdown = c->kiln_slowdown > 1 ? c->kiln_slowdown : (c->self_test ? 2u : 1u);
  s->resamples = c->bootstrap_resamples ? c->bootstrap_resamples : 2000u;
  s->seed = c->bootstrap_seed ? c->bootstrap_seed : DEFAULT_SEED;
  s->device = c->device;
  s->clock = c->clock ? c->clock : kiln_bench_clock_monotonic;
  s->clock_user = c->clock ? c->clock_user : NULL;
}

static void fail_msg(kiln_bench_result *r, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(r->message, sizeof r->message, "%s/%s: ", r->suite->name,
                   r->bcase->name != NULL ? r->bcase->name : "?");
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

typedef struct side {
  kiln_bench_fn run;
  void *state;
  unsigned repeat;   /* the self-test's slowdown on the kiln side */
} side;

/* Time one batch of `iters` iterations; *ns receives the elapsed time. */
static int time_batch(const settings *s, const side *sd, uint64_t iters, uint64_t *ns) {
  uint64_t t0 = s->clock(s->clock_user);
  for (unsigned k = 0; k < sd->repeat; k++) {
    int rc = sd->run(sd->state, iters);
    if (rc != 0) return rc;
  }
  uint64_t t1 = s->clock(s->clock_user);
  *ns = t1 > t0 ? t1 - t0 : 0;
  return 0;
}

static double rel_half_width(const double *v, size_t n, double *scratch) {
  memcpy(scratch, v, n * sizeof *v);
  kiln_bench_stats st;
  kiln_bench_stats_compute(scratch, n, &st);
  if (!(st.median > 0.0)) return st.ci95_hi > st.ci95_lo ? INFINITY : 0.0;
  return (st.ci95_hi - st.ci95_lo) / 2.0 / st.median;
}

/* Convert per-op ns into the unit and compute the statistics. */
static int side_stats(const kiln_bench_case *c, const double *ns, size_t n, double *values,
                      kiln_bench_stats *st) {
  for (size_t i = 0; i < n; i++)
    if (kiln_bench_convert(c->unit, c->work_per_op, ns[i], &values[i]) != 0) return -1;
  kiln_bench_stats_compute(values, n, st);
  return 0;
}

kiln_status kiln_bench_run_case(const kiln_bench_config *config,
                                const kiln_bench_suite *suite, const kiln_bench_case *c,
                                kiln_bench_result *r) {
  settings s;
  settle(config, &s);
  memset(r, 0, sizeof *r);
  r->suite = suite;
  r->bcase = c;
  r->ratio = r->ratio_lo = r->ratio_hi = NAN;
  uint64_t start = s.clock(s.clock_user);
  const uint64_t ops_per_iter = c->ops_per_iter ? c->ops_per_iter : 1;
  double probe;
  if (c->name == NULL || c->run == NULL) {
    fail_msg(r, KILN_ERROR_INVALID_ARGUMENT, "the case has no %s", c->name ? "run function" : "name");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if (kiln_bench_convert(c->unit, c->work_per_op, 1.0, &probe) != 0) {
    fail_msg(r, KILN_ERROR_INVALID_ARGUMENT,
             "unit '%s' is not one of ns, us, ms, s, GB/s, MB/s, GiB/s, items/s, Mitems/s "
             "(rates need work_per_op > 0)",
             c->unit ? c->unit : "(null)");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  kiln_status st = pick_device(&s, r);
  if (st != KILN_SUCCESS) return st;

  int has_base = s.self_test || (c->baseline_name != NULL && c->baseline_run != NULL);
  const char *base_name = s.self_test ? "kiln-self" : c->baseline_name;
  side k = {c->run, NULL, s.slowdown}, b = {s.self_test ? c->run : c->baseline_run, NULL, 1};
  int k_ready = 0, b_ready = 0, rc = 0;
  double *scratch = NULL, *values = NULL;
  kiln_bench_env env = {r->device, c->arg, config != NULL ? config->quick : 0};
  kiln_status result = KILN_ERROR_BACKEND;

  if (c->setup != NULL && (rc = c->setup(&env, &k.state)) != 0) {
    fail_kiln(r, rc, "set-up");
    goto done;
  }
  k_ready = 1;
  if (s.self_test) {
    b.state = k.state; /* the same function on the same state, interleaved */
  } else if (has_base) {
    if (c->baseline_setup != NULL && (rc = c->baseline_setup(c->arg, &b.state)) != 0) {
      fail_msg(r, rc, "baseline '%s' failed in set-up with %d", base_name, rc);
      goto done;
    }
    b_ready = 1;
  }

  /* Calibrate: grow the batch until each side's batch lasts min_batch_ns. */
  uint64_t iters = 1, kt = 0, bt = 0;
  for (;;) {
    if ((rc = time_batch(&s, &k, iters, &kt)) != 0) {
      fail_kiln(r, rc, "calibration");
      goto done;
    }
    if (has_base && (rc = time_batch(&s, &b, iters, &bt)) != 0) {
      fail_msg(r, rc, "baseline '%s' failed with %d", base_name, rc);
      goto done;
    }
    uint64_t shortest = has_base && bt < kt ? bt : kt;
    if (shortest >= s.min_batch_ns || iters >= (1ull << 40)) break;
    if (s.clock(s.clock_user) - start > s.hard_limit_ns) break;
    uint64_t grow = shortest == 0 ? 16 : (s.min_batch_ns + shortest - 1) / shortest;
    iters *= grow < 2 ? 2 : grow > 16 ? 16 : grow;
  }
  r->batch_size = iters * ops_per_iter;

  /* Warm up at the final batch size. */
  uint64_t warm_start = s.clock(s.clock_user);
  do {
    if ((rc = time_batch(&s, &k, iters, &kt)) != 0) {
      fail_kiln(r, rc, "warm-up");
      goto done;
    }
    if (has_base && (rc = time_batch(&s, &b, iters, &bt)) != 0) {
      fail_msg(r, rc, "baseline '%s' failed with %d", base_name, rc);
      goto done;
    }
  } while (s.clock(s.clock_user) - warm_start < s.warmup_ns);

  /* Measure, interleaved. */
  r->kiln_ns = malloc(s.max_samples * sizeof(double));
  r->baseline_ns = has_base ? malloc(s.max_samples * sizeof(double)) : NULL;
  scratch = malloc(s.max_samples * sizeof(double));
  values = malloc(s.max_samples * sizeof(double));
  if (r->kiln_ns == NULL || (has_base && r->baseline_ns == NULL) || scratch == NULL ||
      values == NULL) {
    fail_msg(r, KILN_ERROR_OUT_OF_HOST_MEMORY, "cannot allocate %u samples", s.max_samples);
    result = KILN_ERROR_OUT_OF_HOST_MEMORY;
    goto done;
  }
  const double per = (double)(iters * ops_per_iter);
  uint64_t measure_start = s.clock(s.clock_user);
  size_t n = 0, next_check = s.min_samples;
  for (;;) {
    if ((rc = time_batch(&s, &k, iters, &kt)) != 0) {
      fail_kiln(r, rc, "a timed batch");
      goto done;
    }
    r->kiln_ns[n] = (double)kt / per;
    if (has_base) {
      if ((rc = time_batch(&s, &b, iters, &bt)) != 0) {
        fail_msg(r, rc, "baseline '%s' failed with %d", base_name, rc);
        goto done;
      }
      r->baseline_ns[n] = (double)bt / per;
    }
    n++;
    uint64_t elapsed = s.clock(s.clock_user) - measure_start;
    if (n >= s.max_samples || elapsed >= s.hard_limit_ns) break;
    if (n < s.min_samples) continue;
    if (elapsed >= s.budget_ns) break;
    if (n >= next_check) {
      /* checking costs a sort per side: do it after ~6% more samples each time */
      next_check = n + 1 + n / 16;
      if (rel_half_width(r->kiln_ns, n, scratch) <= s.target_rel_ci &&
          (!has_base || rel_half_width(r->baseline_ns, n, scratch) <= s.target_rel_ci))
        break;
    }
  }

  /* Statistics in the case's unit, and the ratio (> 1: kiln is better). */
  if (side_stats(c, r->kiln_ns, n, values, &r->kiln) != 0 ||
      (has_base && side_stats(c, r->baseline_ns, n, scratch, &r->baseline) != 0)) {
    fail_msg(r, KILN_ERROR_INVALID_ARGUMENT,
             "a measured time of 0 ns cannot be expressed in %s: raise min_batch_ns", c->unit);
    result = KILN_ERROR_INVALID_ARGUMENT;
    goto done;
  }
  r->has_baseline = has_base;
  r->baseline_name = base_name;
  if (has_base) {
    /* values and scratch hold the sorted kiln and baseline values */
    const double *num = values, *den = scratch;
    double num_median = r->kiln.median, den_median = r->baseline.median;
    if (c->better == KILN_BENCH_LOWER) {
      num = scratch;
      den = values;
      num_median = r->baseline.median;
      den_median = r->kiln.median;
    }
    r->ratio = den_median > 0.0 ? num_median / den_median : NAN;
    kiln_bench_ratio_ci(num, n, den, n, s.resamples, s.seed, 0.95, &r->ratio_lo, &r->ratio_hi);
  }
  result = KILN_SUCCESS;

done:
  if (b_ready && c->baseline_teardown != NULL) c->baseline_teardown(b.state);
  if (k_ready && c->teardown != NULL) c->teardown(k.state);
  free(scratch);
  free(values);
  r->elapsed_ns = s.clock(s.clock_user) - start;
  if (result != KILN_SUCCESS) {
    free(r->kiln_ns);
    free(r->baseline_ns);
    r->kiln_ns = r->baseline_ns = NULL;
    if (r->status == 0) r->status = result;
  }
  return result;
}

void kiln_bench_result_clear(kiln_bench_result *r) {
  if (r == NULL) return;
  free(r->kiln_ns);
  free(r->baseline_ns);
  r->kiln_ns = r->baseline_ns = NULL;
}
