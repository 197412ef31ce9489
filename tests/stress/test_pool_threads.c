/* SPDX-License-Identifier: MIT */
/* kiln-test-backends: cpu mock */
/* kiln-test-labels: stress */
/* kiln-test-env: KILN_CPU_SHUFFLE=11 */
/* The device pool under threads (run under TSan in make check): 2 to 8 threads share one
 * pool, each with its own stream, in the shuffled-completion mode (KILN_CPU_SHUFFLE;
 * the mock adds its own shuffle and delays). Each allocation gets a pattern of its own,
 * filled asynchronously; some are freed at once with the fill still queued, some are
 * handed to another thread, which either verifies the pattern on *its* stream (ordered
 * by the hazard tracking alone) and frees it there, or frees it there unread (a
 * cross-stream free behind the fill): blocks are reissued at once to whoever asks, and
 * every owner's pattern must survive the work of the block's earlier lives.
 * A missing dependency shows as a wrong word; a pool race as a TSan report, a double
 * issue (two live owners of one block) as a wrong word too. KILN_POOL_ITERS (default
 * 120) rounds per thread. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

typedef struct parcel {
  kiln_buffer buffer;
  size_t bytes;
  uint32_t tag;
} parcel;

#define BOX 64
typedef struct shared {
  kiln_context ctx;
  kiln_pool pool;
  int context_pool; /* KILN_CONTEXT_POOLED: kiln_buffer_create/destroy as well */
  int iters;
  pthread_mutex_t lock;
  parcel box[BOX]; /* buffers handed between threads */
  int box_count;
  atomic_int bad_words, failures;
  char first_failure[1024];
} shared;

typedef struct worker {
  shared *sh;
  int id;
  kiln_stream stream;
} worker;

static void note_failure(shared *sh, const char *what, kiln_status st) {
  if (atomic_fetch_add(&sh->failures, 1) == 0)
    snprintf(sh->first_failure, sizeof sh->first_failure, "%s: %s: %s", what, kiln_status_name(st),
             kiln_last_error()->message);
}

/* Verify on `s` and free there. */
static void verify_and_free(worker *w, const parcel *p) {
  size_t n = p->bytes / 4;
  uint32_t *back = malloc(n * 4);
  kiln_pending t = KILN_PENDING_INIT;
  kiln_status st = kiln_buffer_read_async(w->stream, p->buffer, 0, n * 4, back, &t);
  if (st == KILN_SUCCESS)
    st = kiln_wait(&t);
  if (st != KILN_SUCCESS)
    note_failure(w->sh, "read", st);
  else
    for (size_t i = 0; i < n; i++)
      if (back[i] != p->tag) {
        atomic_fetch_add(&w->sh->bad_words, 1);
        break;
      }
  free(back);
  if (w->sh->context_pool && (p->tag & 1u))
    st = kiln_buffer_destroy(p->buffer); /* blocking: the block goes back too */
  else
    st = kiln_pool_free(p->buffer, w->stream);
  if (st != KILN_SUCCESS)
    note_failure(w->sh, "free", st);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  shared *sh = w->sh;
  uint64_t rng = 0x2545F4914F6CDD1Dull * ((uint64_t)w->id + 1u);
  for (int r = 0; r < sh->iters; r++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    /* take a parcel someone else filled, if any */
    parcel got = {NULL, 0, 0};
    if (rng & 1) {
      pthread_mutex_lock(&sh->lock);
      if (sh->box_count)
        got = sh->box[--sh->box_count];
      pthread_mutex_unlock(&sh->lock);
    }
    if (got.buffer && (rng & 8)) { /* freed unread on this stream: ordered behind its fill */
      kiln_status fs = kiln_pool_free(got.buffer, w->stream);
      if (fs != KILN_SUCCESS)
        note_failure(sh, "free", fs);
    } else if (got.buffer) {
      verify_and_free(w, &got);
    }
    parcel p;
    unsigned shift = 2 + (unsigned)((rng >> 8) % 18); /* 4 B .. 512 KiB */
    p.bytes = ((size_t)1 << shift) + (size_t)((rng >> 30) % 64) * 4;
    p.tag = ((uint32_t)w->id << 24) | (uint32_t)r;
    kiln_status st;
    if (sh->context_pool && (r & 1)) {
      kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
      bd.bytes = p.bytes;
      st = kiln_buffer_create(sh->ctx, &bd, &p.buffer);
    } else {
      st = kiln_pool_alloc(sh->pool, w->stream, p.bytes, &p.buffer);
    }
    if (st != KILN_SUCCESS) {
      note_failure(sh, "alloc", st);
      continue;
    }
    kiln_pending t = KILN_PENDING_INIT;
    st = kiln_buffer_fill_async(w->stream, p.buffer, 0, p.bytes / 4 * 4, &p.tag, 4, &t);
    if (st == KILN_SUCCESS)
      st = kiln_pending_release(&t);
    if (st != KILN_SUCCESS)
      note_failure(sh, "fill", st);
    int handed = 0;
    if ((rng & 6) == 4) { /* freed at once, its fill still queued: the next owner waits */
      if ((st = kiln_pool_free(p.buffer, w->stream)) != KILN_SUCCESS)
        note_failure(sh, "free", st);
      continue;
    }
    if (rng & 2) { /* hand it on, unverified: the taker's read waits through hazards */
      pthread_mutex_lock(&sh->lock);
      if (sh->box_count < BOX) {
        sh->box[sh->box_count++] = p;
        handed = 1;
      }
      pthread_mutex_unlock(&sh->lock);
    }
    if (!handed)
      verify_and_free(w, &p);
  }
  return NULL;
}

static void run_threads(int threads, int context_pool) {
  shared sh;
  memset(&sh, 0, sizeof sh);
  pthread_mutex_init(&sh.lock, NULL);
  const char *it = getenv("KILN_POOL_ITERS");
  sh.iters = it && atoi(it) > 0 ? atoi(it) : 120;
  if (kt_backend() == KILN_BACKEND_MOCK) {
    kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
    c.shuffle_seed = 5;
    c.delay_ns = 2000;
    KT_OK(kiln_mock_configure(&c));
  }
  KT_OK(kt_alloc_install());
  sh.context_pool = context_pool;
  kiln_context_desc cd = KILN_CONTEXT_DESC_INIT;
  cd.flags = context_pool ? KILN_CONTEXT_POOLED : 0u;
  KT_OK(kiln_context_create(kt_device(), &cd, &sh.ctx));
  kiln_pool_desc d = KILN_POOL_DESC_INIT;
  d.slab_bytes = 256 * 1024; /* many slabs: more sharing of each */
  if (context_pool)
    KT_OK(kiln_context_get_pool(sh.ctx, &sh.pool)); /* the one behind kiln_buffer_create */
  else
    KT_OK(kiln_pool_create(sh.ctx, &d, &sh.pool));
  worker w[8];
  pthread_t th[8];
  for (int i = 0; i < threads; i++) {
    w[i].sh = &sh;
    w[i].id = i;
    KT_OK(kiln_stream_create(sh.ctx, NULL, &w[i].stream));
  }
  for (int i = 0; i < threads; i++)
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  for (int i = 0; i < threads; i++)
    pthread_join(th[i], NULL);
  /* what is left in the box: verified and freed on stream 0 */
  for (int i = 0; i < sh.box_count; i++)
    verify_and_free(&w[0], &sh.box[i]);
  if (atomic_load(&sh.failures))
    fail_msg("%d calls failed; the first: %s", atomic_load(&sh.failures), sh.first_failure);
  assert_int_equal(atomic_load(&sh.bad_words), 0);
  kiln_pool_stats s = KILN_POOL_STATS_INIT;
  KT_OK(kiln_pool_get_stats(sh.pool, &s));
  assert_int_equal(s.bytes_in_use, 0);
  assert_int_equal(s.allocs, (uint64_t)threads * (uint64_t)sh.iters);
  assert_int_equal(s.frees, s.allocs);
  assert_true(s.hits > 0);
  KT_OK(kiln_context_synchronize(sh.ctx));
  KT_OK(kiln_pool_compact(sh.pool));
  KT_OK(kiln_pool_get_stats(sh.pool, &s));
  assert_int_equal(s.bytes_reserved, 0);
  if (!context_pool)
    KT_OK(kiln_pool_destroy(sh.pool));
  for (int i = 0; i < threads; i++)
    KT_OK(kiln_stream_destroy(w[i].stream));
  KT_OK(kiln_context_destroy(sh.ctx));
  KT_OK(kt_alloc_uninstall());
  assert_true(kt_alloc_check_clean("pool threads"));
  pthread_mutex_destroy(&sh.lock);
  if (kt_backend() == KILN_BACKEND_MOCK)
    KT_OK(kiln_mock_configure(NULL));
}

static void threads_2(void **state) {
  (void)state;
  run_threads(2, 0);
}
static void threads_4(void **state) {
  (void)state;
  run_threads(4, 0);
}
static void threads_8(void **state) {
  (void)state;
  run_threads(8, 0);
}

static void context_pool_4_threads(void **state) {
  (void)state;
  run_threads(4, 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(threads_2),
    cmocka_unit_test(threads_4),
    cmocka_unit_test(threads_8),
    cmocka_unit_test(context_pool_4_threads),
};

KT_MAIN(tests)
