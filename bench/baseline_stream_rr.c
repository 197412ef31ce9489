/* SPDX-License-Identifier: MIT */
/* A mutex-protected round-robin over an array of streams (bench/baseline_streams.h): the
 * baseline of stream_pool_acquire_release and its 4-thread variant. acquire takes the
 * mutex, picks streams[next++ % n] and counts a holder; release takes the mutex, finds
 * the stream in the array and drops the holder (refusing one not held, as kiln does).
 * The streams are stand-in handles: only their hand-out is measured, as on the kiln
 * side. Threads > 1 run on the same fan-out team as the kiln side (baseline_fanout.c). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "baseline_streams.h"
#include "baselines.h"

typedef struct rr_pool {
  pthread_mutex_t lock;
  void *streams[BENCH_STREAM_RR_STREAMS];
  long held[BENCH_STREAM_RR_STREAMS];
  uint64_t next;
  int handles[BENCH_STREAM_RR_STREAMS]; /* what the stand-in handles point at */
  unsigned threads;
  uint64_t iters; /* of the current run */
  bench_fanout *team;
} rr_pool;

static void *rr_acquire(rr_pool *p) {
  pthread_mutex_lock(&p->lock);
  unsigned i = (unsigned)(p->next++ % BENCH_STREAM_RR_STREAMS);
  p->held[i]++;
  void *s = p->streams[i];
  pthread_mutex_unlock(&p->lock);
  return s;
}

static int rr_release(rr_pool *p, void *s) {
  int rc = EINVAL;
  pthread_mutex_lock(&p->lock);
  for (unsigned i = 0; i < BENCH_STREAM_RR_STREAMS; i++)
    if (p->streams[i] == s && p->held[i] > 0) {
      p->held[i]--;
      rc = 0;
      break;
    }
  pthread_mutex_unlock(&p->lock);
  return rc;
}

static int rr_share(void *ctx, unsigned thread) {
  (void)thread;
  rr_pool *p = ctx;
  for (uint64_t it = 0; it < p->iters; it++)
    for (unsigned k = 0; k < BENCH_STREAM_RR_PAIRS; k++) {
      void *s = rr_acquire(p);
      int rc = rr_release(p, s);
      if (rc != 0)
        return rc;
    }
  return 0;
}

int bench_baseline_stream_rr_setup(void *arg, void **state) {
  *state = NULL;
  unsigned threads = arg != NULL ? *(const unsigned *)arg : 1u;
  if (threads < 1 || threads > BENCH_FANOUT_MAX)
    return EINVAL;
  rr_pool *p = calloc(1, sizeof *p);
  if (p == NULL)
    return ENOMEM;
  pthread_mutex_init(&p->lock, NULL);
  for (unsigned i = 0; i < BENCH_STREAM_RR_STREAMS; i++)
    p->streams[i] = &p->handles[i];
  p->threads = threads;
  if (threads > 1) {
    int rc = bench_fanout_create(threads, rr_share, p, &p->team);
    if (rc != 0) {
      pthread_mutex_destroy(&p->lock);
      free(p);
      return rc;
    }
  }
  *state = p;
  return 0;
}

void bench_baseline_stream_rr_teardown(void *state) {
  rr_pool *p = state;
  if (p == NULL)
    return;
  bench_fanout_destroy(p->team);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

int bench_baseline_stream_rr_run(void *state, uint64_t iters) {
  rr_pool *p = state;
  p->iters = iters;
  return p->team != NULL ? bench_fanout_run(p->team) : rr_share(p, 0);
}
