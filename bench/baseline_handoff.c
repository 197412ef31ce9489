/* SPDX-License-Identifier: MIT */
/* The plain condvar handoff baseline (bench/baseline_handoff.h). Each hop is a counter
 * under a mutex with a condvar: post increments it and signals, take sleeps until it
 * moves past what the taker last saw. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "baseline_handoff.h"

typedef struct hop {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  uint64_t posted;
  int stop;
} hop;

typedef struct handoff {
  unsigned hops;
  hop to_worker, to_notifier, to_caller;
  pthread_t worker, notifier;
  int worker_started, notifier_started;
} handoff;

static void hop_init(hop *h) {
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->cond, NULL);
  h->posted = 0;
  h->stop = 0;
}

static void hop_post(hop *h) {
  pthread_mutex_lock(&h->lock);
  h->posted++;
  pthread_cond_signal(&h->cond);
  pthread_mutex_unlock(&h->lock);
}

/* Sleep until the hop moves past *seen (returns 0), or it is stopped (returns 1). */
static int hop_take(hop *h, uint64_t *seen) {
  pthread_mutex_lock(&h->lock);
  while (h->posted == *seen && !h->stop)
    pthread_cond_wait(&h->cond, &h->lock);
  int stopped = h->posted == *seen;
  *seen = h->posted;
  pthread_mutex_unlock(&h->lock);
  return stopped;
}

static void hop_stop(hop *h) {
  pthread_mutex_lock(&h->lock);
  h->stop = 1;
  pthread_cond_broadcast(&h->cond);
  pthread_mutex_unlock(&h->lock);
}

static void *worker_main(void *arg) {
  handoff *s = arg;
  uint64_t seen = 0;
  while (!hop_take(&s->to_worker, &seen))
    hop_post(s->hops == 3 ? &s->to_notifier : &s->to_caller); /* the work: done */
  return NULL;
}

static void *notifier_main(void *arg) {
  handoff *s = arg;
  uint64_t seen = 0;
  while (!hop_take(&s->to_notifier, &seen))
    hop_post(&s->to_caller); /* the "callback": wake the caller */
  return NULL;
}

int bench_baseline_handoff_setup(void *arg, void **state) {
  *state = NULL;
  unsigned hops = arg ? *(const unsigned *)arg : 2;
  if (hops != 2 && hops != 3)
    return EINVAL;
  handoff *s = calloc(1, sizeof *s);
  if (!s)
    return ENOMEM;
  s->hops = hops;
  hop_init(&s->to_worker);
  hop_init(&s->to_notifier);
  hop_init(&s->to_caller);
  int rc = pthread_create(&s->worker, NULL, worker_main, s);
  s->worker_started = rc == 0;
  if (rc == 0 && hops == 3) {
    rc = pthread_create(&s->notifier, NULL, notifier_main, s);
    s->notifier_started = rc == 0;
  }
  if (rc != 0) {
    bench_baseline_handoff_teardown(s);
    return rc;
  }
  *state = s;
  return 0;
}

int bench_baseline_handoff_run(void *state, uint64_t iters) {
  handoff *s = state;
  uint64_t seen = s->to_caller.posted; /* only this thread takes it */
  for (uint64_t i = 0; i < iters; i++) {
    hop_post(&s->to_worker);
    if (hop_take(&s->to_caller, &seen))
      return EINTR;
  }
  return 0;
}

void bench_baseline_handoff_teardown(void *state) {
  handoff *s = state;
  if (!s)
    return;
  hop_stop(&s->to_worker);
  hop_stop(&s->to_notifier);
  if (s->worker_started)
    pthread_join(s->worker, NULL);
  if (s->notifier_started)
    pthread_join(s->notifier, NULL);
  hop *hops[] = {&s->to_worker, &s->to_notifier, &s->to_caller};
  for (int i = 0; i < 3; i++) {
    pthread_mutex_destroy(&hops[i]->lock);
    pthread_cond_destroy(&hops[i]->cond);
  }
  free(s);
}
