/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* Threads hammering shared streams (run under TSan by make check):
 * - 8 threads x 10 000 ops on 4 shared streams: each thread owns a region of one
 *   shared buffer and pipelines write / kernel increment / read, completing batches by
 *   wait_all, single waits, or release + event; every value read back is checked.
 * - concurrent create / use / destroy of buffers, events, streams in one context.
 * - cross-stream event chains from many threads at once.
 * KILN_STRESS_OPS (default 10000) scales the op count per thread, KILN_STRESS_THREADS
 * (default 8) the threads. Workers never assert: they count errors the test checks. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define STREAMS 4
#define DEPTH 8 /* slots in flight per thread */
#define SLOT 16 /* uint32 per slot */
#define MAX_THREADS 64

static size_t env_size(const char *name, size_t def, size_t lo, size_t hi) {
  const char *v = getenv(name);
  if (!v || !*v)
    return def;
  char *end = NULL;
  unsigned long long x = strtoull(v, &end, 10);
  if (*end || x < lo || x > hi)
    return def;
  return (size_t)x;
}

static size_t ops_per_thread(void) {
  return env_size("KILN_STRESS_OPS", 10000, 24, 100000000);
}
static size_t thread_count(void) {
  return env_size("KILN_STRESS_THREADS", 8, 1, MAX_THREADS);
}

typedef struct shared {
  kiln_context ctx;
  kiln_stream streams[STREAMS];
  kiln_buffer buf;
  kiln_kernel add;
  size_t ops;
} shared;

typedef struct worker {
  shared *sh;
  unsigned index;
  pthread_t thread;
  size_t ops_done;
  size_t mismatches;
  size_t failures;
  kiln_status first_failure;
  char first_error[512];
  size_t callbacks_added;
  atomic_int callbacks_run;
} worker;

static void note(worker *w, kiln_status st) {
  if (st == KILN_SUCCESS)
    return;
  if (w->failures++ == 0) {
    w->first_failure = st;
    snprintf(w->first_error, sizeof w->first_error, "%s", kiln_last_error()->message);
  }
}

static uint32_t seed_value(unsigned t, size_t iter, unsigned slot, unsigned k) {
  return (uint32_t)(t * 0x01000193u) ^ (uint32_t)(iter * 2654435761u) ^ (slot << 8) ^ k;
}

static void worker_cb(kiln_status status, void *user) {
  (void)status;
  worker *w = user;
  atomic_fetch_add(&w->callbacks_run, 1);
}

/* ---- 8 threads x 10 000 ops on 4 shared streams ---- */

static void *pipeline_worker(void *arg) {
  worker *w = arg;
  shared *sh = w->sh;
  kiln_stream s = sh->streams[w->index % STREAMS];
  uint32_t in[DEPTH][SLOT], out[DEPTH][SLOT];
  uint64_t offs[DEPTH];
  uint32_t adds[DEPTH];
  kiln_pending t[DEPTH * 3];
  kiln_event ev = NULL;
  note(w, kiln_event_create(sh->ctx, NULL, &ev));
  size_t region = (size_t)w->index * DEPTH * SLOT;
  kiln_range r = kiln_range_1d(SLOT);
  for (size_t iter = 0; w->ops_done < sh->ops && w->failures == 0; iter++) {
    size_t nt = 0;
    for (unsigned j = 0; j < DEPTH && w->ops_done < sh->ops; j++) {
      for (unsigned k = 0; k < SLOT; k++)
        in[j][k] = seed_value(w->index, iter, j, k);
      memset(out[j], 0, sizeof out[j]);
      size_t off_elems = region + (size_t)j * SLOT;
      offs[j] = off_elems;
      adds[j] = (uint32_t)(iter % 1000u) + 1u;
      kiln_arg args[3];
      kt_add_args(args, sh->buf, &offs[j], &adds[j]);
      note(w, kiln_buffer_write_async(s, sh->buf, off_elems * 4, sizeof in[j], in[j], &t[nt++]));
      note(w, kiln_launch_async(s, sh->add, &r, args, 3, &t[nt++]));
      note(w, kiln_buffer_read_async(s, sh->buf, off_elems * 4, sizeof out[j], out[j], &t[nt++]));
      w->ops_done += 3;
    }
    switch (iter % 4) {
    case 0:
      note(w, kiln_wait_all(t, nt));
      break;
    case 1:
      for (size_t i = nt; i-- > 0;)
        note(w, kiln_wait(&t[i]));
      break;
    case 2:
      for (size_t i = 0; i < nt; i++)
        note(w, kiln_pending_release(&t[i]));
      note(w, kiln_event_record(ev, s));
      note(w, kiln_event_synchronize(ev));
      break;
    default:
      /* the last read covers the earlier ops of this thread on this in-order stream */
      note(w, kiln_wait(&t[nt - 1]));
      for (size_t i = 0; i + 1 < nt; i++) {
        kiln_status q = kiln_pending_query(&t[i]);
        if (q != KILN_SUCCESS)
          note(w, q == KILN_NOT_READY ? KILN_ERROR_INTERNAL : q);
        note(w, kiln_wait(&t[i]));
      }
      note(w, kiln_stream_add_callback(s, worker_cb, w));
      w->callbacks_added++;
      break;
    }
    if (w->failures)
      break;
    for (unsigned j = 0; j < nt / 3; j++)
      for (unsigned k = 0; k < SLOT; k++)
        if (out[j][k] != in[j][k] + adds[j])
          w->mismatches++;
  }
  note(w, kiln_event_destroy(ev));
  return NULL;
}

static void report_workers(worker *w, size_t n, size_t expect_ops) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    if (w[i].failures || w[i].mismatches || (expect_ops && w[i].ops_done < expect_ops)) {
      fprintf(stderr, "thread %u: %zu ops, %zu failures (first %s: %s), %zu mismatched values\n",
              w[i].index, w[i].ops_done, w[i].failures, kiln_status_name(w[i].first_failure),
              w[i].first_error, w[i].mismatches);
      bad = 1;
    }
  }
  if (bad)
    fail_msg("stress workers reported errors (above)");
}

static void stress_threads_shared_streams(void **state) {
  kt_env *env = *state;
  size_t nthreads = thread_count();
  shared sh;
  memset(&sh, 0, sizeof sh);
  sh.ctx = env->ctx;
  sh.ops = ops_per_thread();
  sh.streams[0] = env->stream;
  for (int i = 1; i < STREAMS; i++)
    KT_OK(kiln_stream_create(env->ctx, NULL, &sh.streams[i]));
  sh.buf = kt_buffer(env->ctx, nthreads * DEPTH * SLOT * sizeof(uint32_t));
  sh.add = kt_add_kernel(env->ctx);
  worker *w = calloc(nthreads, sizeof *w);
  assert_non_null(w);
  for (size_t i = 0; i < nthreads; i++) {
    w[i].sh = &sh;
    w[i].index = (unsigned)i;
    atomic_init(&w[i].callbacks_run, 0);
    assert_int_equal(pthread_create(&w[i].thread, NULL, pipeline_worker, &w[i]), 0);
  }
  for (size_t i = 0; i < nthreads; i++)
    assert_int_equal(pthread_join(w[i].thread, NULL), 0);
  KT_OK(kiln_context_synchronize(env->ctx));
  report_workers(w, nthreads, sh.ops);
  for (size_t i = 0; i < nthreads; i++)
    if (!kt_wait_atomic_at_least(&w[i].callbacks_run, (int)w[i].callbacks_added, 60.0))
      fail_msg("thread %zu: %d of %zu callbacks ran", i, atomic_load(&w[i].callbacks_run),
               w[i].callbacks_added);
  for (int i = 1; i < STREAMS; i++)
    KT_OK(kiln_stream_destroy(sh.streams[i]));
  KT_OK(kiln_buffer_destroy(sh.buf));
  KT_OK(kiln_kernel_destroy(sh.add));
  free(w);
}

/* ---- concurrent create / use / destroy ---- */

static void *churn_worker(void *arg) {
  worker *w = arg;
  shared *sh = w->sh;
  size_t rounds = sh->ops / 20;
  if (rounds < 10)
    rounds = 10;
  for (size_t i = 0; i < rounds && w->failures == 0; i++) {
    kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
    d.bytes = 64 + (i % 7) * 64;
    kiln_buffer b = NULL;
    kiln_event e = NULL;
    kiln_stream s = NULL;
    note(w, kiln_buffer_create(sh->ctx, &d, &b));
    note(w, kiln_event_create(sh->ctx, NULL, &e));
    if (i % 8 == 0)
      note(w, kiln_stream_create(sh->ctx, NULL, &s));
    if (w->failures)
      break;
    kiln_stream use = s ? s : sh->streams[(w->index + i) % STREAMS];
    uint32_t in[16], out[16];
    for (unsigned k = 0; k < 16; k++)
      in[k] = seed_value(w->index, i, 0, k);
    kiln_pending t[2];
    note(w, kiln_buffer_write_async(use, b, 0, sizeof in, in, &t[0]));
    note(w, kiln_buffer_read_async(use, b, 0, sizeof out, out, &t[1]));
    note(w, kiln_event_record(e, use));
    if (w->failures)
      break;
    note(w, kiln_wait_all(t, 2));
    note(w, kiln_event_synchronize(e));
    if (memcmp(in, out, sizeof in) != 0)
      w->mismatches++;
    note(w, kiln_event_destroy(e));
    note(w, kiln_buffer_destroy(b));
    note(w, kiln_stream_destroy(s));
    w->ops_done += 8;
  }
  return NULL;
}

static void stress_create_destroy_concurrently(void **state) {
  kt_env *env = *state;
  size_t nthreads = thread_count();
  shared sh;
  memset(&sh, 0, sizeof sh);
  sh.ctx = env->ctx;
  sh.ops = ops_per_thread();
  sh.streams[0] = env->stream;
  for (int i = 1; i < STREAMS; i++)
    KT_OK(kiln_stream_create(env->ctx, NULL, &sh.streams[i]));
  worker *w = calloc(nthreads, sizeof *w);
  assert_non_null(w);
  for (size_t i = 0; i < nthreads; i++) {
    w[i].sh = &sh;
    w[i].index = (unsigned)i;
    atomic_init(&w[i].callbacks_run, 0);
    assert_int_equal(pthread_create(&w[i].thread, NULL, churn_worker, &w[i]), 0);
  }
  for (size_t i = 0; i < nthreads; i++)
    assert_int_equal(pthread_join(w[i].thread, NULL), 0);
  report_workers(w, nthreads, 0);
  for (int i = 1; i < STREAMS; i++)
    KT_OK(kiln_stream_destroy(sh.streams[i]));
  free(w);
}

/* ---- cross-stream event chains ---- */

static void *chain_worker(void *arg) {
  worker *w = arg;
  shared *sh = w->sh;
  size_t rounds = sh->ops / 10;
  if (rounds < 10)
    rounds = 10;
  kiln_event ev = NULL;
  note(w, kiln_event_create(sh->ctx, NULL, &ev));
  kiln_stream producer = sh->streams[w->index % STREAMS];
  kiln_stream consumer = sh->streams[(w->index + 1) % STREAMS];
  size_t off = (size_t)w->index * SLOT * sizeof(uint32_t);
  for (size_t i = 0; i < rounds && w->failures == 0; i++) {
    uint32_t in[SLOT], out[SLOT];
    for (unsigned k = 0; k < SLOT; k++)
      in[k] = seed_value(w->index, i, 1, k);
    kiln_pending t[2];
    note(w, kiln_buffer_write_async(producer, sh->buf, off, sizeof in, in, &t[0]));
    note(w, kiln_pending_release(&t[0]));
    note(w, kiln_event_record(ev, producer));
    note(w, kiln_stream_wait_event(consumer, ev));
    note(w, kiln_buffer_read_async(consumer, sh->buf, off, sizeof out, out, &t[1]));
    if (w->failures)
      break;
    note(w, kiln_wait(&t[1]));
    /* `in` must stay untouched until the released write is covered: the event is */
    note(w, kiln_event_synchronize(ev));
    if (memcmp(in, out, sizeof in) != 0)
      w->mismatches++;
    w->ops_done += 5;
  }
  note(w, kiln_event_destroy(ev));
  return NULL;
}

static void stress_cross_stream_event_chains(void **state) {
  kt_env *env = *state;
  size_t nthreads = thread_count();
  shared sh;
  memset(&sh, 0, sizeof sh);
  sh.ctx = env->ctx;
  sh.ops = ops_per_thread();
  sh.streams[0] = env->stream;
  for (int i = 1; i < STREAMS; i++)
    KT_OK(kiln_stream_create(env->ctx, NULL, &sh.streams[i]));
  sh.buf = kt_buffer(env->ctx, nthreads * SLOT * sizeof(uint32_t));
  worker *w = calloc(nthreads, sizeof *w);
  assert_non_null(w);
  for (size_t i = 0; i < nthreads; i++) {
    w[i].sh = &sh;
    w[i].index = (unsigned)i;
    atomic_init(&w[i].callbacks_run, 0);
    assert_int_equal(pthread_create(&w[i].thread, NULL, chain_worker, &w[i]), 0);
  }
  for (size_t i = 0; i < nthreads; i++)
    assert_int_equal(pthread_join(w[i].thread, NULL), 0);
  report_workers(w, nthreads, 0);
  for (int i = 1; i < STREAMS; i++)
    KT_OK(kiln_stream_destroy(sh.streams[i]));
  KT_OK(kiln_buffer_destroy(sh.buf));
  free(w);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(stress_threads_shared_streams, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(stress_create_destroy_concurrently, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(stress_cross_stream_event_chains, kt_setup, kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU)) {
    fprintf(stderr, "SKIP: the cpu backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
