/* SPDX-License-Identifier: MIT */
/* The ring suite's baselines (baseline_ring.h): a plain pthread-mutex ring (what a
 * program writes without a lock-free ring) and Concurrency Kit's ck_ring (header-only:
 * ck_ring.h from libck-dev; built only when the header was found, KILN_BENCH_HAVE_CK).
 * Both run through the same two-thread driver as kiln's rings. No kiln header. */
#define _POSIX_C_SOURCE 200809L
#include "baseline_ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring_harness.h"

#ifdef KILN_BENCH_HAVE_CK
#include <ck_ring.h>
#endif

/* ---- the mutex ring */
typedef struct mutex_ring {
  pthread_mutex_t lock;
  uint32_t head, tail; /* under lock */
  unsigned char *slots;
} mutex_ring;

static int mutex_push(void *q, const void *msg) {
  mutex_ring *r = q;
  pthread_mutex_lock(&r->lock);
  if (r->tail - r->head == BENCH_RING_CAPACITY) {
    pthread_mutex_unlock(&r->lock);
    return 1;
  }
  memcpy(r->slots + (size_t)(r->tail % BENCH_RING_CAPACITY) * BENCH_RING_MSG_BYTES, msg,
         BENCH_RING_MSG_BYTES);
  r->tail++;
  pthread_mutex_unlock(&r->lock);
  return 0;
}

static int mutex_pop(void *q, void *msg) {
  mutex_ring *r = q;
  pthread_mutex_lock(&r->lock);
  if (r->tail == r->head) {
    pthread_mutex_unlock(&r->lock);
    return 1;
  }
  memcpy(msg, r->slots + (size_t)(r->head % BENCH_RING_CAPACITY) * BENCH_RING_MSG_BYTES,
         BENCH_RING_MSG_BYTES);
  r->head++;
  pthread_mutex_unlock(&r->lock);
  return 0;
}

static const bench_ring_ops mutex_ops = {mutex_push, mutex_pop, NULL, NULL};

/* ---- ck_ring */
#ifdef KILN_BENCH_HAVE_CK
struct bench_msg56 {
  unsigned char bytes[BENCH_RING_MSG_BYTES];
};
CK_RING_PROTOTYPE(bench56, bench_msg56)

typedef struct ck_q {
  ck_ring_t ring; /* first: ck aligns its indices itself */
  struct bench_msg56 *buffer;
} ck_q;

static int ck_push_spsc(void *q, const void *msg) {
  ck_q *c = q;
  return !ck_ring_enqueue_spsc_bench56(&c->ring, c->buffer, (struct bench_msg56 *)(uintptr_t)msg);
}
static int ck_pop_spsc(void *q, void *msg) {
  ck_q *c = q;
  return !ck_ring_dequeue_spsc_bench56(&c->ring, c->buffer, msg);
}
static int ck_push_mpmc(void *q, const void *msg) {
  ck_q *c = q;
  return !ck_ring_enqueue_mpmc_bench56(&c->ring, c->buffer, (struct bench_msg56 *)(uintptr_t)msg);
}
static int ck_pop_mpmc(void *q, void *msg) {
  ck_q *c = q;
  return !ck_ring_dequeue_mpmc_bench56(&c->ring, c->buffer, msg);
}
static const bench_ring_ops ck_spsc_ops = {ck_push_spsc, ck_pop_spsc, NULL, NULL};
static const bench_ring_ops ck_mpmc_ops = {ck_push_mpmc, ck_pop_mpmc, NULL, NULL};
#endif

/* ---- state: two rings and the driver */
typedef struct ring_state {
  int ck;
  void *q[2];
  bench_ring_pair *pair;
} ring_state;

static void free_queue(int ck, void *q) {
  if (!q)
    return;
  if (ck) {
#ifdef KILN_BENCH_HAVE_CK
    free(((ck_q *)q)->buffer);
#endif
  } else {
    pthread_mutex_destroy(&((mutex_ring *)q)->lock);
    free(((mutex_ring *)q)->slots);
  }
  free(q);
}

void bench_baseline_ring_teardown(void *state) {
  ring_state *s = state;
  if (!s)
    return;
  bench_ring_pair_destroy(s->pair);
  free_queue(s->ck, s->q[0]);
  free_queue(s->ck, s->q[1]);
  free(s);
}

int bench_baseline_mutex_ring_setup(void *arg, void **state) {
  (void)arg; /* one ring for both kinds */
  *state = NULL;
  ring_state *s = calloc(1, sizeof *s);
  if (!s)
    return ENOMEM;
  for (int i = 0; i < 2; i++) {
    mutex_ring *r = calloc(1, sizeof *r);
    if (!r) {
      bench_baseline_ring_teardown(s);
      return ENOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    s->q[i] = r;
    if (!(r->slots = aligned_alloc(64, (size_t)BENCH_RING_CAPACITY * BENCH_RING_MSG_BYTES))) {
      bench_baseline_ring_teardown(s);
      return ENOMEM;
    }
  }
  int rc = bench_ring_pair_create(&mutex_ops, s->q[0], s->q[1], &s->pair);
  if (rc) {
    bench_baseline_ring_teardown(s);
    return rc;
  }
  *state = s;
  return 0;
}

int bench_baseline_ck_ring_available(char *why, size_t why_bytes) {
#ifdef KILN_BENCH_HAVE_CK
  (void)why;
  (void)why_bytes;
  return 1;
#else
  snprintf(why, why_bytes, "this build found no ck_ring.h (install libck-dev and rebuild)");
  return 0;
#endif
}

int bench_baseline_ck_ring_setup(void *arg, void **state) {
  *state = NULL;
#ifdef KILN_BENCH_HAVE_CK
  int kind = arg ? *(const int *)arg : BENCH_RING_SPSC;
  ring_state *s = calloc(1, sizeof *s);
  if (!s)
    return ENOMEM;
  s->ck = 1;
  for (int i = 0; i < 2; i++) {
    ck_q *c = aligned_alloc(64, (sizeof(ck_q) + 63) & ~(size_t)63);
    if (!c) {
      bench_baseline_ring_teardown(s);
      return ENOMEM;
    }
    memset(c, 0, sizeof *c);
    s->q[i] = c;
    ck_ring_init(&c->ring, BENCH_RING_CAPACITY);
    if (!(c->buffer = aligned_alloc(64, sizeof(struct bench_msg56) * BENCH_RING_CAPACITY))) {
      bench_baseline_ring_teardown(s);
      return ENOMEM;
    }
  }
  int rc = bench_ring_pair_create(kind == BENCH_RING_MPMC ? &ck_mpmc_ops : &ck_spsc_ops, s->q[0],
                                  s->q[1], &s->pair);
  if (rc) {
    bench_baseline_ring_teardown(s);
    return rc;
  }
  *state = s;
  return 0;
#else
  (void)arg;
  return ENOSYS;
#endif
}

int bench_baseline_ring_stream(void *state, uint64_t iters) {
  return bench_ring_pair_stream(((ring_state *)state)->pair, iters);
}

int bench_baseline_ring_pingpong(void *state, uint64_t iters) {
  return bench_ring_pair_pingpong(((ring_state *)state)->pair, iters);
}
