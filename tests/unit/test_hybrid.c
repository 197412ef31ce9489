/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* The hybrid dispatcher (include/kiln/hybrid.h, docs/hybrid.md) on two CPU contexts
 * standing for two targets, with timings fed by kiln_hybrid_record so every decision is
 * deterministic: the learned crossover of two linear costs, calibration before the
 * model is trusted, each mode's choice, exploration bounded by its rate and its cap and
 * repeated exactly by its seed, timed runs of functions, a run in flight weighing on
 * its target's next decisions, the model file (round trip,
 * other tasks kept, damaged / truncated / foreign / wrong-version files ignored with a
 * warning), bad arguments with their statuses and messages, and a sweep failing every
 * host allocation of a scenario once and from N on. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln_test.h"

typedef struct hy_env {
  kiln_context ctx[3];
  char dir[64];
  char path[128];
} hy_env;

static int hy_setup(void **state) {
  hy_env *e = calloc(1, sizeof *e);
  assert_non_null(e);
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_context_create(kt_cpu_device(), NULL, &e->ctx[i]));
  snprintf(e->dir, sizeof e->dir, "/tmp/kiln-hybrid-XXXXXX");
  assert_non_null(mkdtemp(e->dir));
  snprintf(e->path, sizeof e->path, "%s/models.bin", e->dir);
  *state = e;
  return 0;
}

static int hy_teardown(void **state) {
  hy_env *e = *state;
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_context_destroy(e->ctx[i]));
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
  assert_int_equal(system(cmd), 0);
  free(e);
  return 0;
}

/* A dispatcher over the first `count` contexts. */
static kiln_hybrid make(hy_env *e, size_t count, kiln_hybrid_desc *d) {
  kiln_hybrid_target t[3] = {{e->ctx[0], "small"}, {e->ctx[1], "big"}, {e->ctx[2], "third"}};
  d->targets = t;
  d->target_count = count;
  kiln_hybrid h = NULL;
  KT_OK(kiln_hybrid_create(d, &h));
  d->targets = NULL;
  return h;
}

static kiln_status noop_fn(kiln_context ctx, size_t n, void *user) {
  (void)ctx;
  (void)n;
  if (user)
    (*(int *)user)++;
  return KILN_SUCCESS;
}

static kiln_status status_fn(kiln_context ctx, size_t n, void *user) {
  (void)ctx;
  (void)n;
  return *(kiln_status *)user;
}

static kiln_hybrid_task fn_task(kiln_hybrid h, const char *name, size_t count) {
  kiln_hybrid_fn fns[3] = {noop_fn, noop_fn, noop_fn};
  (void)count;
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  td.name = name;
  td.fns = fns;
  kiln_hybrid_task t = NULL;
  KT_OK(kiln_hybrid_task_create(h, &td, &t));
  return t;
}

/* Target 0: 1000 + 10 n ns; target 1: 50000 + n ns. They cross at n = 49000 / 9. */
static uint64_t cost(unsigned target, size_t n) {
  return target == 0 ? 1000 + 10 * (uint64_t)n : 50000 + (uint64_t)n;
}

static void feed_linear(kiln_hybrid_task t, unsigned from_log2, unsigned to_log2, int reps) {
  for (int r = 0; r < reps; r++)
    for (unsigned b = from_log2; b <= to_log2; b++)
      for (unsigned k = 0; k < 2; k++)
        KT_OK(kiln_hybrid_record(t, k, (size_t)1 << b, cost(k, (size_t)1 << b)));
}

static void learns_the_crossover(void **state) {
  hy_env *e = *state;
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.flags = KILN_HYBRID_NO_EXPLORATION;
  kiln_hybrid h = make(e, 2, &d);
  kiln_hybrid_task t = fn_task(h, "linear", 2);
  size_t x = 0;
  KT_EXPECT_MSG(kiln_hybrid_crossover(t, 0, 1, &x), KILN_ERROR_INVALID_STATE, "no sample");
  feed_linear(t, 6, 20, 3);
  KT_OK(kiln_hybrid_crossover(t, 0, 1, &x));
  /* 49000 / 9 = 5444.4: the first whole size where target 1 is faster is 5445 */
  assert_int_equal(x, 5445);
  /* no crossover the other way within the sizes seen */
  KT_OK(kiln_hybrid_crossover(t, 1, 0, &x));
  assert_int_equal(x, SIZE_MAX);
  uint64_t ns = 0;
  KT_OK(kiln_hybrid_predict(t, 0, 3000, &ns));
  assert_int_equal(ns, cost(0, 3000));
  KT_OK(kiln_hybrid_predict(t, 1, 3000000, &ns)); /* beyond the largest: extrapolated */
  assert_int_equal(ns, cost(1, 3000000));
  unsigned k = 9;
  kiln_hybrid_reason why;
  for (size_t n = 64; n <= (1u << 20); n = n * 3 / 2 + 1) {
    KT_OK(kiln_hybrid_decide(t, n, &k, &why));
    assert_int_equal(why, KILN_HYBRID_REASON_MODEL);
    assert_int_equal(k, n < 5445 ? 0u : 1u);
  }
  char json[8192];
  size_t need = 0;
  KT_OK(kiln_hybrid_stats_json(t, json, sizeof json, &need));
  assert_non_null(strstr(json, "\"crossover\":5445"));
  assert_non_null(strstr(json, "\"label\":\"big\""));
  KT_EXPECT_MSG(kiln_hybrid_stats_json(t, json, 10, &need), KILN_ERROR_INVALID_ARGUMENT, "need");
  assert_true(need > 10);
  assert_string_equal(json, "");
  kiln_hybrid_target_stats s = KILN_HYBRID_TARGET_STATS_INIT;
  KT_OK(kiln_hybrid_get_stats(t, 1, &s));
  assert_int_equal(s.runs, 3 * 15);
  assert_string_equal(s.label, "big");
  KT_OK(kiln_hybrid_destroy(h));
}

/* A later regime replaces an earlier one: buckets average over `window` samples. */
static void adapts_when_costs_change(void **state) {
  hy_env *e = *state;
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.flags = KILN_HYBRID_NO_EXPLORATION;
  d.window = 4;
  kiln_hybrid h = make(e, 2, &d);
  kiln_hybrid_task t = fn_task(h, "drift", 2);
  for (int i = 0; i < 8; i++) {
    KT_OK(kiln_hybrid_record(t, 0, 1000, 100));
    KT_OK(kiln_hybrid_record(t, 1, 1000, 200));
  }
  unsigned k;
  KT_OK(kiln_hybrid_decide(t, 1000, &k, NULL));
  assert_int_equal(k, 0);
  for (int i = 0; i < 8; i++) /* target 0 became slow (e.g. the CPU is busy) */
    KT_OK(kiln_hybrid_record(t, 0, 1000, 1000));
  KT_OK(kiln_hybrid_decide(t, 1000, &k, NULL));
  assert_int_equal(k, 1);
  KT_OK(kiln_hybrid_destroy(h));
}

static void calibrates_before_trusting(void **state) {
  hy_env *e = *state;
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.flags = KILN_HYBRID_NO_EXPLORATION;
  d.min_samples = 3;
  kiln_hybrid h = make(e, 2, &d);
  kiln_hybrid_task t = fn_task(h, "calib", 2);
  unsigned k;
  kiln_hybrid_reason why;
  for (int i = 0; i < 6; i++) {
    KT_OK(kiln_hybrid_decide(t, 5000, &k, &why));
    assert_int_equal(why, KILN_HYBRID_REASON_CALIBRATE);
    assert_int_equal(k, (unsigned)(i % 2)); /* the target with fewer samples, lower first */
    KT_OK(kiln_hybrid_record(t, k, 5000, cost(k, 5000)));
  }
  KT_OK(kiln_hybrid_decide(t, 5000, &k, &why));
  assert_int_equal(why, KILN_HYBRID_REASON_MODEL);
  assert_int_equal(k, 0);
  /* another size bucket is calibrated again */
  KT_OK(kiln_hybrid_decide(t, 1u << 20, &k, &why));
  assert_int_equal(why, KILN_HYBRID_REASON_CALIBRATE);
  KT_OK(kiln_hybrid_destroy(h));
}

static void fixed_and_threshold_modes(void **state) {
  hy_env *e = *state;
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.mode = KILN_HYBRID_FIXED;
  d.fixed_target = 1;
  kiln_hybrid h = make(e, 2, &d);
  kiln_hybrid_task t = fn_task(h, "fixed", 2);
  feed_linear(t, 6, 12, 2); /* target 0 is faster at small sizes: FIXED ignores it */
  unsigned k;
  kiln_hybrid_reason why;
  for (size_t n = 1; n < (1u << 22); n *= 7) {
    KT_OK(kiln_hybrid_decide(t, n, &k, &why));
    assert_int_equal(k, 1);
    assert_int_equal(why, KILN_HYBRID_REASON_FIXED);
  }
  int calls = 0;
  KT_OK(kiln_hybrid_run(t, 10, &calls, &k));
  assert_int_equal(k, 1);
  assert_int_equal(calls, 1);
  KT_OK(kiln_hybrid_destroy(h));

  size_t th[2] = {100, 10000};
  kiln_hybrid_desc d3 = KILN_HYBRID_DESC_INIT;
  d3.mode = KILN_HYBRID_THRESHOLD;
  d3.thresholds = th;
  h = make(e, 3, &d3);
  t = fn_task(h, "three", 3);
  const struct {
    size_t n;
    unsigned k;
  } want[] = {{0, 0}, {99, 0}, {100, 1}, {9999, 1}, {10000, 2}, {SIZE_MAX, 2}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    KT_OK(kiln_hybrid_decide(t, want[i].n, &k, &why));
    assert_int_equal(k, want[i].k);
    assert_int_equal(why, KILN_HYBRID_REASON_THRESHOLD);
  }
  KT_OK(kiln_hybrid_destroy(h));
}

/* A target without a function is never chosen; with one left, the reason says so. */
static void target_without_function(void **state) {
  hy_env *e = *state;
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  kiln_hybrid h = make(e, 2, &d);
  kiln_hybrid_fn fns[2] = {NULL, noop_fn};
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  td.name = "gpu-only";
  td.fns = fns;
  kiln_hybrid_task t;
  KT_OK(kiln_hybrid_task_create(h, &td, &t));
  int calls = 0;
  for (int i = 0; i < 10; i++) {
    unsigned k = 9;
    KT_OK(kiln_hybrid_run(t, 100, &calls, &k));
    assert_int_equal(k, 1);
  }
  assert_int_equal(calls, 10);
  kiln_hybrid_target_stats s = KILN_HYBRID_TARGET_STATS_INIT;
  KT_OK(kiln_hybrid_get_stats(t, 1, &s));
  assert_int_equal(s.runs, 10);
  assert_true(s.total_ns > 0);
  kiln_hybrid_reason why;
  unsigned k;
  KT_OK(kiln_hybrid_decide(t, 100, &k, &why));
  assert_int_equal(why, KILN_HYBRID_REASON_ONLY);
  KT_OK(kiln_hybrid_destroy(h));
  /* FIXED on the target without a function is refused at decide */
  kiln_hybrid_desc df = KILN_HYBRID_DESC_INIT;
  df.mode = KILN_HYBRID_FIXED;
  h = make(e, 2, &df);
  KT_OK(kiln_hybrid_task_create(h, &td, &t));
  KT_EXPECT_MSG(kiln_hybrid_decide(t, 5, &k, NULL), KILN_ERROR_UNSUPPORTED,
                "no function for target 0 (small)");
  KT_OK(kiln_hybrid_destroy(h));
  /* a function's failure comes back naming the task and target; NOT_READY is refused */
  kiln_hybrid_fn bad[2] = {status_fn, status_fn};
  td.fns = bad;
  td.name = "failing";
  h = make(e, 2, &d);
  KT_OK(kiln_hybrid_task_create(h, &td, &t));
  kiln_status ret = KILN_ERROR_BACKEND;
  KT_EXPECT_MSG(kiln_hybrid_run(t, 5, &ret, &k), KILN_ERROR_BACKEND,
                "task 'failing' on target 0 (small), its function failed");
  ret = KILN_NOT_READY;
  KT_EXPECT_MSG(kiln_hybrid_run(t, 5, &ret, &k), KILN_ERROR_INVALID_STATE,
                "returned KILN_NOT_READY");
  kiln_hybrid_target_stats s2 = KILN_HYBRID_TARGET_STATS_INIT;
  KT_OK(kiln_hybrid_get_stats(t, 0, &s2));
  assert_int_equal(s2.failures, 2); /* both went to target 0: failures teach nothing */
  assert_int_equal(s2.runs, 0);
  KT_OK(kiln_hybrid_destroy(h));
}

/* Decisions of n, with exploration, as a string of target digits. */
static void decisions(kiln_hybrid_task t, int count, char *out, unsigned *explored) {
  *explored = 0;
  for (int i = 0; i < count; i++) {
    unsigned k;
    kiln_hybrid_reason why;
    KT_OK(kiln_hybrid_decide(t, 4096, &k, &why));
    out[i] = (char)('0' + k);
    *explored += why == KILN_HYBRID_REASON_EXPLORE;
  }
  out[count] = '\0';
}

static kiln_hybrid_task explore_task(hy_env *e, kiln_hybrid *h, uint64_t seed, double rate,
                                     uint64_t slow_ns) {
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.seed = seed;
  d.explore_rate = rate;
  *h = make(e, 2, &d);
  kiln_hybrid_task t = fn_task(*h, "explore", 2);
  for (int i = 0; i < 2; i++) {
    KT_OK(kiln_hybrid_record(t, 0, 4096, slow_ns));
    KT_OK(kiln_hybrid_record(t, 1, 4096, 1000));
  }
  return t;
}

static void exploration_bounded_and_seeded(void **state) {
  hy_env *e = *state;
  enum { N = 4000 };
  static char a[N + 1], b[N + 1], c[N + 1];
  unsigned ea, eb, ec;
  kiln_hybrid h1, h2, h3;
  kiln_hybrid_task t1 = explore_task(e, &h1, 42, 0.1, 2000);
  kiln_hybrid_task t2 = explore_task(e, &h2, 42, 0.1, 2000);
  kiln_hybrid_task t3 = explore_task(e, &h3, 43, 0.1, 2000);
  decisions(t1, N, a, &ea);
  decisions(t2, N, b, &eb);
  decisions(t3, N, c, &ec);
  assert_string_equal(a, b); /* same seed, same sequence */
  assert_int_equal(ea, eb);
  assert_true(strcmp(a, c) != 0); /* another seed, another one */
  /* each exploration goes to target 0; its count is Binomial(4000, 0.1): mean 400,
   * sd 19 — the bounds are 5 sd away (and the sequence is fixed by the seed anyway) */
  assert_in_range(ea, 300, 500);
  assert_in_range(ec, 300, 500);
  for (int i = 0; i < N; i++)
    assert_true(a[i] == '1' || a[i] == '0');
  kiln_hybrid_target_stats s = KILN_HYBRID_TARGET_STATS_INIT;
  KT_OK(kiln_hybrid_get_stats(t1, 0, &s));
  assert_int_equal(s.explored, ea);
  KT_OK(kiln_hybrid_destroy(h1));
  KT_OK(kiln_hybrid_destroy(h2));
  KT_OK(kiln_hybrid_destroy(h3));
  /* a target expected more than 3x slower is never explored */
  kiln_hybrid_task t4 = explore_task(e, &h1, 42, 1.0, 3001);
  decisions(t4, 200, a, &ea);
  assert_int_equal(ea, 0);
  KT_OK(kiln_hybrid_destroy(h1));
  /* with exploration off, never */
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.flags = KILN_HYBRID_NO_EXPLORATION;
  d.explore_rate = 1.0;
  h1 = make(e, 2, &d);
  t4 = fn_task(h1, "explore", 2);
  for (int i = 0; i < 2; i++) {
    KT_OK(kiln_hybrid_record(t4, 0, 4096, 2000));
    KT_OK(kiln_hybrid_record(t4, 1, 4096, 1000));
  }
  decisions(t4, 200, a, &ea);
  assert_int_equal(ea, 0);
  KT_OK(kiln_hybrid_destroy(h1));
}

/* A run in flight makes its target busy for its expected time: a decision meanwhile
 * weighs that (expected finish), and the target is free again once the run ended. */
typedef struct hold {
  atomic_int entered, open;
} hold;

static kiln_status held_fn(kiln_context ctx, size_t n, void *user) {
  (void)ctx;
  (void)n;
  hold *g = user;
  atomic_store(&g->entered, 1);
  for (int i = 0; i < 300000 && !atomic_load(&g->open); i++) /* 30 s: a bug fails, not hangs */
    kt_sleep_us(100);
  return KILN_SUCCESS;
}

typedef struct held_run {
  kiln_hybrid_task t;
  hold *g;
  kiln_status st;
  unsigned k;
} held_run;

static void *run_held(void *arg) {
  held_run *r = arg;
  r->st = kiln_hybrid_run(r->t, 4096, r->g, &r->k);
  return NULL;
}

static void busy_target_shares_work(void **state) {
  hy_env *e = *state;
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.flags = KILN_HYBRID_NO_EXPLORATION;
  kiln_hybrid h = make(e, 2, &d);
  kiln_hybrid_fn fns[2] = {noop_fn, held_fn};
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  td.name = "busy";
  td.fns = fns;
  kiln_hybrid_task t;
  KT_OK(kiln_hybrid_task_create(h, &td, &t));
  for (int i = 0; i < 2; i++) {
    KT_OK(kiln_hybrid_record(t, 0, 4096, 1500));
    KT_OK(kiln_hybrid_record(t, 1, 4096, 1000));
    KT_OK(kiln_hybrid_record(t, 0, 65536, 100000));
    KT_OK(kiln_hybrid_record(t, 1, 65536, 1000));
  }
  static hold g;
  atomic_store(&g.entered, 0);
  atomic_store(&g.open, 0);
  held_run r = {t, &g, KILN_ERROR_INTERNAL, 9};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, run_held, &r), 0);
  for (int i = 0; i < 300000 && !atomic_load(&g.entered); i++)
    kt_sleep_us(100);
  assert_true(atomic_load(&g.entered));
  unsigned k;
  kiln_hybrid_reason why;
  KT_OK(kiln_hybrid_decide(t, 4096, &k, &why)); /* 0: 1500 ns; 1: 1000 in flight + 1000 */
  assert_int_equal(k, 0);
  assert_int_equal(why, KILN_HYBRID_REASON_MODEL);
  KT_OK(kiln_hybrid_decide(t, 65536, &k, &why)); /* 1 is still far ahead there */
  assert_int_equal(k, 1);
  atomic_store(&g.open, 1);
  pthread_join(th, NULL);
  KT_OK(r.st);
  assert_int_equal(r.k, 1);
  KT_OK(kiln_hybrid_decide(t, 4096, &k, &why)); /* free again */
  assert_int_equal(k, 1);
  KT_OK(kiln_hybrid_destroy(h));
}

static void model_file_round_trip(void **state) {
  hy_env *e = *state;
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.flags = KILN_HYBRID_NO_EXPLORATION;
  d.model_path = e->path;
  kiln_hybrid h = make(e, 2, &d);
  kiln_hybrid_task t = fn_task(h, "linear", 2);
  feed_linear(t, 6, 20, 2);
  KT_OK(kiln_hybrid_save(h));
  KT_OK(kiln_hybrid_destroy(h));
  assert_int_equal(access(e->path, R_OK), 0);

  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  h = make(e, 2, &d);
  t = fn_task(h, "linear", 2);
  kiln_hybrid_task other = fn_task(h, "other", 2);
  kt_log_capture_stop(&cap);
  assert_int_equal(cap.warn_lines, 0);
  size_t x = 0;
  KT_OK(kiln_hybrid_crossover(t, 0, 1, &x));
  assert_int_equal(x, 5445);
  unsigned k;
  kiln_hybrid_reason why;
  KT_OK(kiln_hybrid_decide(t, 100000, &k, &why));
  assert_int_equal(k, 1);
  assert_int_equal(why, KILN_HYBRID_REASON_MODEL);
  uint64_t ns;
  KT_EXPECT_MSG(kiln_hybrid_predict(other, 0, 10, &ns), KILN_ERROR_INVALID_STATE, "other");
  /* the file's other tasks survive a save of a dispatcher that lacks them */
  KT_OK(kiln_hybrid_record(other, 0, 10, 77));
  KT_OK(kiln_hybrid_destroy(h)); /* autosave */
  d.flags |= KILN_HYBRID_NO_AUTOSAVE;
  h = make(e, 2, &d);
  kiln_hybrid_task only_other = fn_task(h, "other", 2);
  KT_OK(kiln_hybrid_predict(only_other, 0, 10, &ns));
  assert_int_equal(ns, 77);
  KT_OK(kiln_hybrid_save(h));
  KT_OK(kiln_hybrid_destroy(h));
  h = make(e, 2, &d);
  t = fn_task(h, "linear", 2);
  KT_OK(kiln_hybrid_crossover(t, 0, 1, &x));
  assert_int_equal(x, 5445);
  KT_OK(kiln_hybrid_destroy(h));
  /* targets of other labels (another machine's devices) do not take the models */
  kiln_hybrid_target tt[2] = {{e->ctx[0], "elsewhere"}, {e->ctx[1], "big"}};
  d.targets = tt;
  d.target_count = 2;
  KT_OK(kiln_hybrid_create(&d, &h));
  t = fn_task(h, "linear", 2);
  KT_EXPECT(kiln_hybrid_predict(t, 0, 4096, &ns), KILN_ERROR_INVALID_STATE);
  KT_OK(kiln_hybrid_predict(t, 1, 4096, &ns));
  assert_int_equal(ns, cost(1, 4096));
  KT_OK(kiln_hybrid_destroy(h));
}

static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

/* Rewrite the file with `fn` applied, then expect a dispatcher to ignore it, warn once
 * naming `why`, and start empty. */
static void expect_ignored(hy_env *e, const char *why) {
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.model_path = e->path;
  d.flags = KILN_HYBRID_NO_AUTOSAVE;
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  kiln_hybrid h = make(e, 2, &d);
  kt_log_capture_stop(&cap);
  if (cap.warn_lines != 1 || !kt_log_capture_has(&cap, why) || !kt_log_capture_has(&cap, "ignored"))
    fail_msg("expected one warning naming '%s', got %d: %s", why, cap.warn_lines, cap.text);
  kiln_hybrid_task t = fn_task(h, "linear", 2);
  uint64_t ns;
  KT_EXPECT(kiln_hybrid_predict(t, 0, 4096, &ns), KILN_ERROR_INVALID_STATE);
  /* a new save replaces the damaged file */
  KT_OK(kiln_hybrid_record(t, 0, 4096, 5));
  KT_OK(kiln_hybrid_save(h));
  KT_OK(kiln_hybrid_destroy(h));
}

static void save_linear(hy_env *e) {
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.model_path = e->path;
  kiln_hybrid h = make(e, 2, &d);
  kiln_hybrid_task t = fn_task(h, "linear", 2);
  feed_linear(t, 6, 10, 1);
  KT_OK(kiln_hybrid_destroy(h));
}

static void patch(const char *path, long at, unsigned char x) {
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, at, SEEK_SET), 0);
  int c = fgetc(f);
  assert_true(c != EOF);
  assert_int_equal(fseek(f, at, SEEK_SET), 0);
  fputc(c ^ x, f);
  fclose(f);
}

static void model_file_damage_ignored(void **state) {
  hy_env *e = *state;
  save_linear(e);
  long size = file_size(e->path);
  assert_int_equal((size - 24 - 8) % 192, 0);
  assert_int_equal(truncate(e->path, size - 100), 0);
  expect_ignored(e, "truncated");
  save_linear(e);
  patch(e->path, 24 + 192 + 170, 0x10); /* a bit of a record's mean */
  expect_ignored(e, "checksum");
  save_linear(e);
  patch(e->path, 8, 0x03); /* version 1 -> 2 */
  expect_ignored(e, "version 2");
  FILE *f = fopen(e->path, "wb");
  assert_non_null(f);
  fputs("not a model file, but long enough to have a header and a sum", f);
  fclose(f);
  expect_ignored(e, "not a kiln hybrid model file");
  assert_int_equal(truncate(e->path, 3), 0);
  expect_ignored(e, "truncated");
  /* a missing file is no warning */
  unlink(e->path);
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.model_path = e->path;
  d.flags = KILN_HYBRID_NO_AUTOSAVE;
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  kiln_hybrid h = make(e, 2, &d);
  KT_OK(kiln_hybrid_destroy(h));
  kt_log_capture_stop(&cap);
  assert_int_equal(cap.warn_lines, 0);
  assert_int_not_equal(access(e->path, F_OK), 0); /* NO_AUTOSAVE wrote nothing */
  /* an unwritable folder: save says which file and why */
  char bad[160];
  snprintf(bad, sizeof bad, "%s/missing/models.bin", e->dir);
  d.model_path = bad;
  h = make(e, 2, &d);
  KT_EXPECT_MSG(kiln_hybrid_save(h), KILN_ERROR_IO, "missing/models.bin.tmp");
  KT_OK(kiln_hybrid_destroy(h));
}

static void bad_arguments(void **state) {
  hy_env *e = *state;
  kiln_hybrid h = NULL;
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  KT_EXPECT_MSG(kiln_hybrid_create(NULL, &h), KILN_ERROR_INVALID_ARGUMENT, "desc is NULL");
  KT_EXPECT_MSG(kiln_hybrid_create(&d, NULL), KILN_ERROR_INVALID_ARGUMENT, "out-parameter");
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_ARGUMENT, "target_count is 0");
  assert_null(h);
  kiln_hybrid_target t[9];
  for (int i = 0; i < 9; i++)
    t[i] = (kiln_hybrid_target){e->ctx[0], NULL};
  d.targets = t;
  d.target_count = 9;
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_ARGUMENT, "target_count is 9");
  d.target_count = 2;
  t[1].context = NULL;
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_HANDLE, "targets[1].context");
  t[1].context = e->ctx[1];
  d.struct_size = 8;
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_ARGUMENT, "struct_size is 8");
  d.struct_size = sizeof d;
  d.mode = (kiln_hybrid_mode)7;
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_ARGUMENT, "mode is 7");
  d.mode = KILN_HYBRID_FIXED;
  d.fixed_target = 2;
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_ARGUMENT, "fixed_target is 2");
  d.mode = KILN_HYBRID_THRESHOLD;
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_ARGUMENT, "thresholds NULL");
  size_t th[2] = {100, 10};
  d.thresholds = th;
  d.target_count = 3;
  t[2].context = e->ctx[2];
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_ARGUMENT,
                "thresholds[1] (10) is below thresholds[0] (100)");
  d.mode = KILN_HYBRID_ADAPTIVE;
  d.explore_rate = 1.5;
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_ARGUMENT, "explore_rate is 1.5");
  d.explore_rate = 0;
  d.flags = 0x100;
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_ARGUMENT, "0x100");
  d.flags = 0;
  d.model_path = "relative/models.bin";
  KT_EXPECT_MSG(kiln_hybrid_create(&d, &h), KILN_ERROR_INVALID_ARGUMENT,
                "'relative/models.bin' is not an absolute path");
  d.model_path = NULL;
  assert_null(h);
  KT_OK(kiln_hybrid_create(&d, &h));
  KT_EXPECT_MSG(kiln_hybrid_save(h), KILN_ERROR_INVALID_STATE, "no model file");

  /* tasks */
  kiln_hybrid_task task = NULL;
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  KT_EXPECT_MSG(kiln_hybrid_task_create(NULL, &td, &task), KILN_ERROR_INVALID_HANDLE,
                "hybrid is NULL");
  KT_EXPECT_MSG(kiln_hybrid_task_create(h, &td, &task), KILN_ERROR_INVALID_ARGUMENT,
                "name is NULL");
  char longname[80];
  memset(longname, 'x', sizeof longname - 1);
  longname[79] = '\0';
  td.name = longname;
  KT_EXPECT_MSG(kiln_hybrid_task_create(h, &td, &task), KILN_ERROR_INVALID_ARGUMENT,
                "1 to 63 bytes");
  td.name = "t";
  KT_EXPECT_MSG(kiln_hybrid_task_create(h, &td, &task), KILN_ERROR_INVALID_ARGUMENT,
                "neither desc->fns nor desc->source");
  kiln_hybrid_fn none[3] = {NULL, NULL, NULL};
  td.fns = none;
  KT_EXPECT_MSG(kiln_hybrid_task_create(h, &td, &task), KILN_ERROR_INVALID_ARGUMENT,
                "every one of desc->fns[0..2] is NULL");
  td.source = "KILN_KERNEL void k(int n) { }";
  KT_EXPECT_MSG(kiln_hybrid_task_create(h, &td, &task), KILN_ERROR_INVALID_ARGUMENT,
                "both desc->fns and desc->source");
  td.fns = NULL;
  KT_EXPECT_MSG(kiln_hybrid_task_create(h, &td, &task), KILN_ERROR_INVALID_ARGUMENT,
                "desc->kernel is NULL");
  assert_null(task);
  task = fn_task(h, "t", 3);
  kiln_hybrid_task dup = NULL;
  kiln_hybrid_fn fns[3] = {noop_fn, NULL, NULL};
  td.source = NULL;
  td.fns = fns;
  KT_EXPECT_MSG(kiln_hybrid_task_create(h, &td, &dup), KILN_ERROR_INVALID_ARGUMENT,
                "task 't' exists already");

  /* calls on a task */
  unsigned k;
  uint64_t ns;
  size_t x;
  KT_EXPECT_MSG(kiln_hybrid_decide(NULL, 1, &k, NULL), KILN_ERROR_INVALID_HANDLE, "task is NULL");
  KT_EXPECT_MSG(kiln_hybrid_decide(task, 1, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT, "target");
  KT_EXPECT_MSG(kiln_hybrid_decide((kiln_hybrid_task)(void *)h, 1, &k, NULL),
                KILN_ERROR_INVALID_HANDLE, "not a live hybrid task");
  KT_EXPECT_MSG(kiln_hybrid_record(task, 3, 1, 1), KILN_ERROR_INVALID_ARGUMENT,
                "target 3 is out of range: the dispatcher has 3 targets (0..2)");
  KT_EXPECT_MSG(kiln_hybrid_predict(task, 0, 1, NULL), KILN_ERROR_INVALID_ARGUMENT, "expected_ns");
  KT_EXPECT_MSG(kiln_hybrid_predict(task, 5, 1, &ns), KILN_ERROR_INVALID_ARGUMENT, "target 5");
  KT_EXPECT_MSG(kiln_hybrid_crossover(task, 1, 1, &x), KILN_ERROR_INVALID_ARGUMENT,
                "both target 1");
  KT_EXPECT_MSG(kiln_hybrid_crossover(task, 0, 1, NULL), KILN_ERROR_INVALID_ARGUMENT, "n (the");
  KT_EXPECT_MSG(kiln_hybrid_run_kernel(task, 1, NULL, 0, NULL), KILN_ERROR_INVALID_ARGUMENT,
                "is a function task");
  kiln_hybrid_target_stats s = KILN_HYBRID_TARGET_STATS_INIT;
  s.struct_size = 4;
  KT_EXPECT_MSG(kiln_hybrid_get_stats(task, 0, &s), KILN_ERROR_INVALID_ARGUMENT,
                "struct_size is 4");
  KT_EXPECT_MSG(kiln_hybrid_stats_json(task, NULL, 5, NULL), KILN_ERROR_INVALID_ARGUMENT,
                "buf is NULL");
  size_t need = 0;
  assert_int_equal(kiln_hybrid_stats_json(task, NULL, 0, &need), KILN_ERROR_INVALID_ARGUMENT);
  assert_true(need > 0);
  KT_EXPECT_MSG(kiln_hybrid_destroy((kiln_hybrid)(void *)task), KILN_ERROR_INVALID_HANDLE,
                "not a live dispatcher");
  KT_OK(kiln_hybrid_destroy(h));
  KT_OK(kiln_hybrid_destroy(NULL));
}

/* A kernel task on the CPU backend: argument checks against the kernel's signature. */
static const char *vecadd_src =
    "KILN_KERNEL void vadd(KILN_GLOBAL const float *a, KILN_GLOBAL const float *b,\n"
    "                      KILN_GLOBAL float *c, int n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < (size_t)n) c[i] = a[i] + b[i];\n"
    "}\n";

static void kernel_task_arguments(void **state) {
  hy_env *e = *state;
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  kiln_hybrid h = make(e, 2, &d);
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  td.name = "vadd";
  td.source = vecadd_src;
  td.kernel = "nope";
  kiln_hybrid_task t = NULL;
  KT_EXPECT_MSG(kiln_hybrid_task_create(h, &td, &t), KILN_ERROR_INVALID_ARGUMENT,
                "task 'vadd' on target 0 (small), creating its kernel");
  td.source = "KILN_KERNEL void broken(int n) { this is not C; }\n";
  td.kernel = "broken";
  KT_EXPECT_MSG(kiln_hybrid_task_create(h, &td, &t), KILN_ERROR_COMPILE_FAILED,
                "compiling its program");
  td.source = vecadd_src;
  td.kernel = "vadd";
  KT_OK(kiln_hybrid_task_create(h, &td, &t));
  enum { N = 3000 };
  static float a[N], b[N], c[N];
  for (int i = 0; i < N; i++) {
    a[i] = (float)i;
    b[i] = 2.0f * (float)i;
  }
  int n = N;
  kiln_hybrid_arg args[4] = {{KILN_HYBRID_ARG_IN, a, sizeof(float)},
                             {KILN_HYBRID_ARG_IN, b, sizeof(float)},
                             {KILN_HYBRID_ARG_OUT, c, sizeof(float)},
                             {KILN_HYBRID_ARG_SCALAR, &n, sizeof n}};
  KT_EXPECT_MSG(kiln_hybrid_run_kernel(t, N, args, 3, NULL), KILN_ERROR_KERNEL_ARGS,
                "3 arguments for a kernel of 4 parameters");
  KT_EXPECT_MSG(kiln_hybrid_run_kernel(t, 0, args, 4, NULL), KILN_ERROR_INVALID_ARGUMENT, "n is 0");
  args[2].kind = KILN_HYBRID_ARG_IN;
  KT_EXPECT_MSG(kiln_hybrid_run_kernel(t, N, args, 4, NULL), KILN_ERROR_KERNEL_ARGS,
                "args[2] is an input array but parameter 2 is a pointer the kernel writes");
  args[2].kind = KILN_HYBRID_ARG_OUT;
  args[0].kind = KILN_HYBRID_ARG_OUT;
  KT_EXPECT_MSG(kiln_hybrid_run_kernel(t, N, args, 4, NULL), KILN_ERROR_KERNEL_ARGS,
                "parameter 0 is a const pointer");
  args[0].kind = KILN_HYBRID_ARG_IN;
  args[3].kind = KILN_HYBRID_ARG_IN;
  KT_EXPECT_MSG(kiln_hybrid_run_kernel(t, N, args, 4, NULL), KILN_ERROR_KERNEL_ARGS,
                "parameter 3 is a scalar");
  args[3].kind = KILN_HYBRID_ARG_SCALAR;
  args[3].bytes = 2;
  KT_EXPECT_MSG(kiln_hybrid_run_kernel(t, N, args, 4, NULL), KILN_ERROR_KERNEL_ARGS,
                "task 'vadd' on target 0 (small), launching");
  args[3].bytes = sizeof n;
  KT_EXPECT_MSG(kiln_hybrid_run(t, N, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT, "is a kernel task");
  unsigned seen = 0;
  for (int r = 0; r < 6; r++) {
    memset(c, 0, sizeof c);
    unsigned k = 9;
    KT_OK(kiln_hybrid_run_kernel(t, N, args, 4, &k));
    seen |= 1u << k;
    for (int i = 0; i < N; i++)
      if (c[i] != 3.0f * (float)i)
        fail_msg("run %d on target %u: c[%d] = %g, expected %g", r, k, i, (double)c[i], 3.0 * i);
  }
  assert_int_equal(seen, 3u); /* calibration ran both */
  KT_OK(kiln_hybrid_destroy(h));
}

/* kiln_log_write, the public log call the dispatcher's warnings go through. */
static void log_write_reaches_the_callback(void **state) {
  (void)state;
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_INFO);
  kiln_log_write(KILN_LOG_WARN, "layered %s %d", "line", 42);
  kiln_log_write(KILN_LOG_INFO, "an info line");
  kiln_log_write(KILN_LOG_DEBUG, "a debug line"); /* above the capture's level */
  kiln_log_write(KILN_LOG_OFF, "never");
  kiln_log_write((kiln_log_level)9, "never");
  kt_log_capture_stop(&cap);
  assert_true(kt_log_capture_has(&cap, "layered line 42"));
  assert_true(kt_log_capture_has(&cap, "an info line"));
  assert_false(kt_log_capture_has(&cap, "debug"));
  assert_false(kt_log_capture_has(&cap, "never"));
  assert_int_equal(cap.lines, 2);
  assert_int_equal(cap.warn_lines, 1);
}

/* ---- host allocation sweep ---- */

typedef struct sweep_result {
  kiln_status st;
  const char *step;
} sweep_result;

#define STEP(call, name)               \
  do {                                 \
    if (r.st == KILN_SUCCESS) {        \
      r.st = (call);                   \
      r.step = r.st ? (name) : r.step; \
    }                                  \
  } while (0)

static sweep_result sweep_scenario(const char *path) {
  sweep_result r = {KILN_SUCCESS, ""};
  kiln_context c0 = NULL, c1 = NULL;
  kiln_hybrid h = NULL;
  kiln_hybrid_task t = NULL;
  STEP(kiln_context_create(kt_cpu_device(), NULL, &c0), "context 0");
  STEP(kiln_context_create(kt_cpu_device(), NULL, &c1), "context 1");
  kiln_hybrid_target tg[2] = {{c0, "small"}, {c1, "big"}};
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.targets = tg;
  d.target_count = 2;
  d.model_path = path;
  d.flags = KILN_HYBRID_NO_AUTOSAVE;
  STEP(kiln_hybrid_create(&d, &h), "kiln_hybrid_create");
  kiln_hybrid_fn fns[2] = {noop_fn, noop_fn};
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  td.name = "linear";
  td.fns = fns;
  STEP(kiln_hybrid_task_create(h, &td, &t), "kiln_hybrid_task_create");
  int calls = 0;
  for (int i = 0; i < 4; i++)
    STEP(kiln_hybrid_run(t, 1000, &calls, NULL), "kiln_hybrid_run");
  STEP(kiln_hybrid_record(t, 1, 77, 5), "kiln_hybrid_record");
  char json[4096];
  STEP(kiln_hybrid_stats_json(t, json, sizeof json, NULL), "kiln_hybrid_stats_json");
  STEP(kiln_hybrid_save(h), "kiln_hybrid_save");
  STEP(kiln_hybrid_destroy(h), "kiln_hybrid_destroy");
  if (r.st != KILN_SUCCESS)
    kiln_hybrid_destroy(h);
  STEP(kiln_context_destroy(c1), "context destroy");
  STEP(kiln_context_destroy(c0), "context destroy");
  if (r.st != KILN_SUCCESS) {
    kiln_context_destroy(c1);
    kiln_context_destroy(c0);
  }
  return r;
}

static size_t sweep_run(const char *path, kt_alloc_mode mode, size_t n) {
  KT_OK(kt_alloc_install());
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  kt_alloc_set_mode(mode, n);
  sweep_result r = sweep_scenario(path);
  kt_alloc_stats s = kt_alloc_get_stats();
  kt_alloc_fail_none();
  kt_log_capture_stop(&cap);
  KT_OK(kt_alloc_uninstall());
  char where[64];
  snprintf(where, sizeof where, "%s N=%zu", mode == KT_ALLOC_FAIL_NTH ? "nth" : "from", n);
  if (!kt_alloc_check_clean(where))
    fail_msg("%s: leak or bad free", where);
  if (s.failures == 0 && r.st != KILN_SUCCESS)
    fail_msg("%s: nothing failed, yet %s returned %s", where, r.step, kiln_status_name(r.st));
  if (s.failures && r.st != KILN_ERROR_OUT_OF_HOST_MEMORY)
    fail_msg("%s: an allocation failed, yet the run ended in %s at '%s'", where,
             kiln_status_name(r.st), r.step);
  if (cap.warn_lines)
    fail_msg("%s: warnings: %s", where, cap.text);
  return s.calls;
}

static void alloc_failure_sweep(void **state) {
  hy_env *e = *state;
  save_linear(e);                         /* the scenario reads, merges and writes a real file */
  KT_OK(kiln_context_destroy(e->ctx[0])); /* the allocator changes only without contexts */
  KT_OK(kiln_context_destroy(e->ctx[1]));
  KT_OK(kiln_context_destroy(e->ctx[2]));
  e->ctx[0] = e->ctx[1] = e->ctx[2] = NULL;
  size_t c = sweep_run(e->path, KT_ALLOC_NEVER_FAIL, 0);
  assert_true(c >= 8); /* contexts, dispatcher, path, file reads, task, save buffers */
  for (size_t n = 1; n <= c; n++)
    sweep_run(e->path, KT_ALLOC_FAIL_NTH, n);
  for (size_t n = 1; n <= c; n += 3)
    sweep_run(e->path, KT_ALLOC_FAIL_FROM, n);
  fprintf(stderr, "hybrid alloc sweep: %zu allocation calls in a clean run\n", c);
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_context_create(kt_cpu_device(), NULL, &e->ctx[i]));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(learns_the_crossover, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(adapts_when_costs_change, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(calibrates_before_trusting, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(fixed_and_threshold_modes, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(target_without_function, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(exploration_bounded_and_seeded, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(busy_target_shares_work, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(model_file_round_trip, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(model_file_damage_ignored, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(bad_arguments, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(kernel_task_arguments, hy_setup, hy_teardown),
      cmocka_unit_test_setup_teardown(alloc_failure_sweep, hy_setup, hy_teardown),
      cmocka_unit_test(log_write_reaches_the_callback),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU))
    return 77;
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
