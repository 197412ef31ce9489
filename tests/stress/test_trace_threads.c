/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: stress cpu */
/* Tracing from 8 threads at once (run under TSan in make check): each thread queues
 * work on its own stream and on one shared stream, opens and closes ranges and sets
 * marks, while the main thread writes the trace again and again (a reader racing the
 * writers). Full mode: the final trace holds every op exactly once and every range
 * balanced. Ring mode: the rings wrap while being read; the final trace holds at most
 * N events, all well-formed. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln_test.h"

#define THREADS 8
#define ITERS 150

typedef struct worker {
  kiln_context ctx;
  kiln_stream own, shared;
  kiln_buffer buf;
  int index;
} worker;

static atomic_int running;

static void *work(void *arg) {
  worker *w = arg;
  char name[32];
  snprintf(name, sizeof name, "worker %d", w->index);
  for (int i = 0; i < ITERS; i++) {
    kiln_pending t[2];
    KT_OK(kiln_trace_range_begin(name, KILN_TRACE_ALGORITHM));
    KT_OK(kiln_buffer_fill_async(w->own, w->buf, 0, 64, &(uint32_t){(uint32_t)i}, 4, &t[0]));
    KT_OK(kiln_trace_mark("queued", KILN_TRACE_USER));
    /* The shared stream reads the buffer: a cross-stream hazard, often pending. */
    static uint32_t sink[THREADS][16];
    KT_OK(kiln_buffer_read_async(w->shared, w->buf, 0, 64, sink[w->index], &t[1]));
    KT_OK(kiln_wait_all(t, 2));
    KT_OK(kiln_trace_range_end());
  }
  atomic_fetch_sub(&running, 1);
  return NULL;
}

static unsigned run(const char *path, uint64_t ring) {
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = path;
  td.ring_events = ring;
  KT_OK(kiln_trace_start(&td));
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_device(), NULL, &ctx));
  kiln_stream shared;
  KT_OK(kiln_stream_create(ctx, NULL, &shared));
  worker w[THREADS];
  pthread_t th[THREADS];
  atomic_store(&running, THREADS);
  for (int i = 0; i < THREADS; i++) {
    w[i].ctx = ctx;
    w[i].shared = shared;
    w[i].index = i;
    KT_OK(kiln_stream_create(ctx, NULL, &w[i].own));
    w[i].buf = kt_buffer(ctx, 64);
    assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
  }
  unsigned flushes = 0;
  while (atomic_load(&running) > 0) { /* a reader racing the writers */
    KT_OK(kiln_trace_flush());
    flushes++;
    kt_sleep_us(2000);
  }
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    KT_OK(kiln_buffer_destroy(w[i].buf));
    KT_OK(kiln_stream_destroy(w[i].own));
  }
  KT_OK(kiln_stream_destroy(shared));
  KT_OK(kiln_context_destroy(ctx));
  KT_OK(kiln_trace_stop());
  return flushes;
}

static size_t count(json_t *evs, const char *ph, const char *cat) {
  size_t c = 0;
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *p = json_string_value(json_object_get(ev, "ph"));
    const char *k = json_string_value(json_object_get(ev, "cat"));
    if (!strcmp(p, ph) && (!cat || (k && !strcmp(k, cat))))
      c++;
  }
  return c;
}

static void eight_threads_full(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "/tmp/kiln_test_trace_threads_%d.json", (int)getpid());
  unsigned flushes = run(path, 0);
  assert_true(flushes >= 1);
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  assert_non_null(root);
  json_t *evs = json_object_get(root, "traceEvents");
  assert_int_equal(count(evs, "X", "op"), THREADS * ITERS * 2);
  assert_int_equal(count(evs, "B", NULL), THREADS * ITERS);
  assert_int_equal(count(evs, "E", NULL), THREADS * ITERS);
  assert_int_equal(count(evs, "i", "user"), THREADS * ITERS);
  assert_int_equal(count(evs, "s", NULL), count(evs, "f", NULL));
  /* (stream, seq) once each */
  size_t n = json_array_size(evs), nops = 0;
  long long *keys = calloc(n, sizeof *keys);
  for (size_t i = 0; i < n; i++) {
    json_t *ev = json_array_get(evs, i);
    json_t *args = json_object_get(ev, "args");
    if (strcmp(json_string_value(json_object_get(ev, "ph")), "X") ||
        strcmp(json_string_value(json_object_get(ev, "cat")), "op"))
      continue;
    keys[nops++] = json_integer_value(json_object_get(args, "stream")) * 1000000 +
                   json_integer_value(json_object_get(args, "seq"));
  }
  for (size_t i = 0; i < nops; i++)
    for (size_t j = i + 1; j < nops; j++)
      assert_true(keys[i] != keys[j]);
  free(keys);
  json_decref(root);
  unlink(path);
}

static void eight_threads_ring(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "/tmp/kiln_test_trace_ring_%d.json", (int)getpid());
  run(path, 64);
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  assert_non_null(root);
  json_t *evs = json_object_get(root, "traceEvents");
  size_t non_meta = json_array_size(evs) - count(evs, "M", NULL);
  assert_true(non_meta >= 1);
  /* At most 64 recorded events; an op may also show its API span and a flow two
   * lines, and a range closed at the write one E. */
  assert_true(count(evs, "X", "op") + count(evs, "i", NULL) + count(evs, "B", NULL) <= 64);
  json_decref(root);
  unlink(path);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(eight_threads_full),
      cmocka_unit_test(eight_threads_ring),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU))
    return 77;
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
