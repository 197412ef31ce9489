/* SPDX-License-Identifier: MIT */
/* A fixed team of submitting threads for the multi-threaded cases (submit_threads): the
 * caller is thread 0 and `threads - 1` helpers wait on a condition variable between
 * runs (no spinning, so they take no core from the work they submit). Both sides of a
 * case use it, so their coordination costs are the same. No kiln header, no kiln_
 * symbol (checked with nm). One run at a time per team. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "baselines.h"

struct bench_fanout {
  pthread_mutex_t lock;
  pthread_cond_t start; /* broadcast when `generation` moves, or on stop */
  pthread_cond_t done;  /* signalled when the last helper of a run finishes */
  uint64_t generation;  /* runs started */
  unsigned pending;     /* helpers still working on the current run */
  int rc;               /* the run's first failure */
  int stop;
  unsigned threads, started;
  bench_fanout_fn fn;
  void *ctx;
  pthread_t helper[BENCH_FANOUT_MAX - 1];
};

typedef struct helper_arg {
  bench_fanout *f;
  unsigned index;
} helper_arg;

static void *helper_main(void *p) {
  bench_fanout *f = ((helper_arg *)p)->f;
  unsigned index = ((helper_arg *)p)->index;
  free(p);
  uint64_t seen = 0; /* no run starts before bench_fanout_create returns */
  pthread_mutex_lock(&f->lock);
  for (;;) {
    while (f->generation == seen && !f->stop)
      pthread_cond_wait(&f->start, &f->lock);
    if (f->stop)
      break;
    seen = f->generation;
    pthread_mutex_unlock(&f->lock);
    int rc = f->fn(f->ctx, index);
    pthread_mutex_lock(&f->lock);
    if (rc != 0 && f->rc == 0)
      f->rc = rc;
    if (--f->pending == 0)
      pthread_cond_signal(&f->done);
  }
  pthread_mutex_unlock(&f->lock);
  return NULL;
}

void bench_fanout_destroy(bench_fanout *f) {
  if (f == NULL)
    return;
  pthread_mutex_lock(&f->lock);
  f->stop = 1;
  pthread_cond_broadcast(&f->start);
  pthread_mutex_unlock(&f->lock);
  for (unsigned i = 0; i < f->started; i++)
    pthread_join(f->helper[i], NULL);
  pthread_cond_destroy(&f->done);
  pthread_cond_destroy(&f->start);
  pthread_mutex_destroy(&f->lock);
  free(f);
}

int bench_fanout_create(unsigned threads, bench_fanout_fn fn, void *ctx, bench_fanout **out) {
  *out = NULL;
  if (threads == 0 || threads > BENCH_FANOUT_MAX || fn == NULL)
    return EINVAL;
  bench_fanout *f = calloc(1, sizeof *f);
  if (f == NULL)
    return ENOMEM;
  pthread_mutex_init(&f->lock, NULL);
  pthread_cond_init(&f->start, NULL);
  pthread_cond_init(&f->done, NULL);
  f->threads = threads;
  f->fn = fn;
  f->ctx = ctx;
  for (unsigned i = 1; i < threads; i++) {
    helper_arg *a = malloc(sizeof *a);
    int rc = a == NULL ? ENOMEM : 0;
    if (rc == 0) {
      *a = (helper_arg){f, i};
      rc = pthread_create(&f->helper[i - 1], NULL, helper_main, a);
      if (rc != 0)
        free(a);
    }
    if (rc != 0) {
      bench_fanout_destroy(f);
      return rc;
    }
    f->started++;
  }
  *out = f;
  return 0;
}

int bench_fanout_run(bench_fanout *f) {
  pthread_mutex_lock(&f->lock);
  f->generation++;
  f->pending = f->threads - 1;
  f->rc = 0;
  pthread_cond_broadcast(&f->start);
  pthread_mutex_unlock(&f->lock);
  int rc = f->fn(f->ctx, 0);
  pthread_mutex_lock(&f->lock);
  while (f->pending > 0)
    pthread_cond_wait(&f->done, &f->lock);
  if (rc == 0)
    rc = f->rc;
  pthread_mutex_unlock(&f->lock);
  return rc;
}
