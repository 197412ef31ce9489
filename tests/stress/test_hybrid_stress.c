/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* The hybrid dispatcher under concurrency (run under TSan by make check): 8 threads on
 * one dispatcher over three CPU contexts, each thread running two shared function tasks
 * (kiln_hybrid_run: decide, run, time, record) and feeding timings of its own
 * (kiln_hybrid_record), while one more thread reads predictions, crossovers, the JSON
 * statistics and saves the model file. Checked: every run reached its function exactly
 * once (counted per target), the statistics' runs equal the runs and records made, no
 * call failed, and the model file the last save wrote loads again. Workers never
 * assert: they count errors. KILN_STRESS_OPS (default 2000) runs per thread. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln_test.h"

#define THREADS 8
#define TARGETS 3

static atomic_int called[2][TARGETS];
static atomic_int errors;
static atomic_int stop_reader;
static char last_error[1024];

static void note_error(kiln_status st, const char *what) {
  if (atomic_fetch_add(&errors, 1) == 0)
    snprintf(last_error, sizeof last_error, "%s: %s: %s", what, kiln_status_name(st),
             kiln_last_error()->message);
}

typedef struct which {
  int task;
  kiln_context ctx[TARGETS];
} which;

static kiln_status count_fn(kiln_context ctx, size_t n, void *user) {
  const which *w = user;
  for (int k = 0; k < TARGETS; k++)
    if (w->ctx[k] == ctx)
      atomic_fetch_add(&called[w->task][k], 1);
  volatile size_t sink = 0; /* a little work that grows with n */
  for (size_t i = 0; i < n / 64; i++)
    sink += i;
  (void)sink;
  return KILN_SUCCESS;
}

typedef struct shared {
  kiln_hybrid h;
  kiln_hybrid_task t[2];
  which w[2];
  int ops;
  atomic_int records;
} shared;

static void *worker(void *arg) {
  shared *s = arg;
  for (int i = 0; i < s->ops; i++) {
    const int task = i & 1;
    size_t n = (size_t)1 << (6 + (i * 7) % 12);
    kiln_status st = kiln_hybrid_run(s->t[task], n, &s->w[task], NULL);
    if (st != KILN_SUCCESS)
      note_error(st, "kiln_hybrid_run");
    if (i % 5 == 0) {
      st = kiln_hybrid_record(s->t[task], (unsigned)(i % TARGETS), n, 1000 + n);
      if (st != KILN_SUCCESS)
        note_error(st, "kiln_hybrid_record");
      else
        atomic_fetch_add(&s->records, 1);
    }
  }
  return NULL;
}

static void *reader(void *arg) {
  shared *s = arg;
  char json[32768];
  while (!atomic_load(&stop_reader)) {
    for (int task = 0; task < 2; task++) {
      uint64_t ns;
      size_t x;
      kiln_status st = kiln_hybrid_predict(s->t[task], 1, 5000, &ns);
      if (st != KILN_SUCCESS && st != KILN_ERROR_INVALID_STATE)
        note_error(st, "kiln_hybrid_predict");
      st = kiln_hybrid_crossover(s->t[task], 0, 2, &x);
      if (st != KILN_SUCCESS && st != KILN_ERROR_INVALID_STATE)
        note_error(st, "kiln_hybrid_crossover");
      st = kiln_hybrid_stats_json(s->t[task], json, sizeof json, NULL);
      if (st != KILN_SUCCESS)
        note_error(st, "kiln_hybrid_stats_json");
    }
    kiln_status st = kiln_hybrid_save(s->h);
    if (st != KILN_SUCCESS)
      note_error(st, "kiln_hybrid_save");
  }
  return NULL;
}

static void concurrent_runs_and_records(void **state) {
  (void)state;
  const char *ops_env = getenv("KILN_STRESS_OPS");
  shared s;
  memset(&s, 0, sizeof s);
  s.ops = ops_env ? atoi(ops_env) : 2000;
  if (s.ops > 2000) /* this test's own scale: 10000 is for the op-level stress tests */
    s.ops = 2000;
  char dir[] = "/tmp/kiln-hybrid-stress-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[96];
  snprintf(path, sizeof path, "%s/models.bin", dir);
  kiln_context ctx[TARGETS];
  kiln_hybrid_target tg[TARGETS];
  for (int k = 0; k < TARGETS; k++) {
    KT_OK(kiln_context_create(kt_cpu_device(), NULL, &ctx[k]));
    tg[k].context = ctx[k];
    tg[k].label = k == 0 ? "a" : k == 1 ? "b" : "c";
  }
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.targets = tg;
  d.target_count = TARGETS;
  d.model_path = path;
  d.explore_rate = 0.2;
  KT_OK(kiln_hybrid_create(&d, &s.h));
  kiln_hybrid_fn fns[TARGETS] = {count_fn, count_fn, count_fn};
  const char *names[2] = {"one", "two"};
  for (int task = 0; task < 2; task++) {
    kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
    td.name = names[task];
    td.fns = fns;
    KT_OK(kiln_hybrid_task_create(s.h, &td, &s.t[task]));
    s.w[task].task = task;
    memcpy(s.w[task].ctx, ctx, sizeof ctx);
  }
  pthread_t th[THREADS], rd;
  assert_int_equal(pthread_create(&rd, NULL, reader, &s), 0);
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, worker, &s), 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  atomic_store(&stop_reader, 1);
  pthread_join(rd, NULL);
  if (atomic_load(&errors))
    fail_msg("%d call(s) failed; first: %s", atomic_load(&errors), last_error);
  uint64_t runs = 0, calls = 0;
  for (int task = 0; task < 2; task++)
    for (unsigned k = 0; k < TARGETS; k++) {
      kiln_hybrid_target_stats st = KILN_HYBRID_TARGET_STATS_INIT;
      KT_OK(kiln_hybrid_get_stats(s.t[task], k, &st));
      runs += st.runs;
      calls += (uint64_t)atomic_load(&called[task][k]);
    }
  assert_int_equal(calls, (uint64_t)THREADS * (uint64_t)s.ops);
  assert_int_equal(runs, calls + (uint64_t)atomic_load(&s.records));
  KT_OK(kiln_hybrid_destroy(s.h));
  /* what the last save (destroy's) wrote loads again, every bucket of both tasks */
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  d.flags = KILN_HYBRID_NO_AUTOSAVE;
  KT_OK(kiln_hybrid_create(&d, &s.h));
  kt_log_capture_stop(&cap);
  assert_int_equal(cap.warn_lines, 0);
  for (int task = 0; task < 2; task++) {
    kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
    td.name = names[task];
    td.fns = fns;
    KT_OK(kiln_hybrid_task_create(s.h, &td, &s.t[task]));
    uint64_t ns;
    for (unsigned k = 0; k < TARGETS; k++)
      KT_OK(kiln_hybrid_predict(s.t[task], k, 4096, &ns));
  }
  KT_OK(kiln_hybrid_destroy(s.h));
  for (int k = 0; k < TARGETS; k++)
    KT_OK(kiln_context_destroy(ctx[k]));
  unlink(path);
  rmdir(dir);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(concurrent_runs_and_records),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU))
    return 77;
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
