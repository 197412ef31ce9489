/* SPDX-License-Identifier: MIT */
/* kiln-test-backends: cpu mock */
/* kiln-test-labels: stress */
/* kiln-test-env: KILN_CPU_SHUFFLE=7 */
/* The pinned host pool under threads (run under TSan in make check): 2 or 4 threads
 * share one context, each with its own stream and buffer, in the shuffled-completion
 * mode (KILN_CPU_SHUFFLE; the mock adds its own shuffle and delays). Each round a thread
 * takes a pinned block of a random class, writes its own pattern into it, queues a
 * write from it to its buffer, frees the block at once with kiln_host_free_on on its
 * stream (or, one round in four, on a neighbour's stream, or with the blocking
 * kiln_host_free after the transfer), then reads its buffer back: a block reissued to
 * another thread before the queued write read it shows as a wrong word; a pool race as
 * a TSan report. KILN_HOST_POOL_ITERS (default 150) rounds per thread. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define MAX_THREADS 4
#define MAX_BYTES (64u * 1024u)

typedef struct shared {
  kiln_context ctx;
  kiln_stream streams[MAX_THREADS];
  int threads, iters;
  atomic_int bad_words, failures;
} shared;

typedef struct worker {
  shared *sh;
  int id;
  kiln_buffer buf;
  uint32_t *back;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  shared *sh = w->sh;
  kiln_stream mine = sh->streams[w->id];
  unsigned seed = 1234u + (unsigned)w->id * 77u;
  for (int it = 0; it < sh->iters; it++) {
    size_t bytes = (size_t)4096 << (rand_r(&seed) % 5); /* 4 .. 64 KiB */
    bytes -= (size_t)(rand_r(&seed) % 64) * 4;
    uint32_t *p = NULL;
    if (kiln_host_alloc(sh->ctx, bytes, (void **)&p) != KILN_SUCCESS) {
      atomic_fetch_add(&sh->failures, 1);
      continue;
    }
    uint32_t tag = ((uint32_t)w->id << 24) ^ (uint32_t)it * 2654435761u;
    size_t words = bytes / 4;
    for (size_t i = 0; i < words; i++)
      p[i] = tag + (uint32_t)i;
    kiln_pending t = KILN_PENDING_INIT;
    if (kiln_buffer_write_async(mine, w->buf, 0, bytes, p, &t) != KILN_SUCCESS)
      atomic_fetch_add(&sh->failures, 1);
    int how = rand_r(&seed) % 4;
    kiln_status st;
    if (how == 3) { /* blocking, after the transfer */
      if (t.id && kiln_wait(&t) != KILN_SUCCESS)
        atomic_fetch_add(&sh->failures, 1);
      st = kiln_host_free(sh->ctx, p);
    } else {
      kiln_stream on = how == 2 ? sh->streams[(w->id + 1) % sh->threads] : mine;
      st = kiln_host_free_on(sh->ctx, p, on); /* the write still queued */
    }
    if (st != KILN_SUCCESS)
      atomic_fetch_add(&sh->failures, 1);
    if (t.id && kiln_wait(&t) != KILN_SUCCESS)
      atomic_fetch_add(&sh->failures, 1);
    if (kiln_buffer_read(w->buf, 0, bytes, w->back) != KILN_SUCCESS) {
      atomic_fetch_add(&sh->failures, 1);
      continue;
    }
    for (size_t i = 0; i < words; i++)
      if (w->back[i] != tag + (uint32_t)i) {
        atomic_fetch_add(&sh->bad_words, 1);
        break;
      }
  }
  return NULL;
}

static void run_threads(int threads) {
  shared sh;
  memset(&sh, 0, sizeof sh);
  sh.threads = threads;
  const char *it = getenv("KILN_HOST_POOL_ITERS");
  sh.iters = it ? atoi(it) : 150;
  KT_OK(kiln_context_create(kt_device(), NULL, &sh.ctx));
  worker ws[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  for (int i = 0; i < threads; i++) {
    KT_OK(kiln_stream_create(sh.ctx, NULL, &sh.streams[i]));
    ws[i].sh = &sh;
    ws[i].id = i;
    ws[i].buf = kt_buffer(sh.ctx, MAX_BYTES);
    ws[i].back = malloc(MAX_BYTES);
    assert_non_null(ws[i].back);
  }
  for (int i = 0; i < threads; i++)
    assert_int_equal(pthread_create(&tids[i], NULL, worker_main, &ws[i]), 0);
  for (int i = 0; i < threads; i++)
    pthread_join(tids[i], NULL);
  KT_OK(kiln_context_synchronize(sh.ctx));
  kiln_pool_stats s = KILN_POOL_STATS_INIT;
  KT_OK(kiln_host_pool_trim(sh.ctx, 0));
  KT_OK(kiln_host_pool_get_stats(sh.ctx, &s));
  fprintf(stderr, "%d threads: %llu allocs, %llu hits, %llu slabs at most %llu bytes\n", threads,
          (unsigned long long)s.allocs, (unsigned long long)s.hits,
          (unsigned long long)s.device_allocs, (unsigned long long)s.bytes_reserved_peak);
  assert_int_equal(s.bytes_in_use, 0);
  assert_int_equal(s.pending_frees, 0);
  assert_int_equal(s.bytes_reserved, 0);
  assert_true(s.hits > 0);
  for (int i = 0; i < threads; i++) {
    KT_OK(kiln_buffer_destroy(ws[i].buf));
    free(ws[i].back);
    KT_OK(kiln_stream_destroy(sh.streams[i]));
  }
  KT_OK(kiln_context_destroy(sh.ctx));
  assert_int_equal(atomic_load(&sh.failures), 0);
  assert_int_equal(atomic_load(&sh.bad_words), 0);
}

static void threads_2(void **state) {
  (void)state;
  run_threads(2);
}

static void threads_4(void **state) {
  (void)state;
  run_threads(4);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(threads_2),
    cmocka_unit_test(threads_4),
};
KT_MAIN(tests)
