/* SPDX-License-Identifier: MIT */
/* The ring suite's two-thread driver (ring_harness.h). A run hands the helper a
 * command under a mutex, then both threads work through the rings without locks until
 * the count is reached; the helper reports back under the mutex. No kiln header. */
#define _POSIX_C_SOURCE 200809L
#include "ring_harness.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

typedef enum { CMD_NONE, CMD_STREAM, CMD_PINGPONG, CMD_QUIT } cmd;

struct bench_ring_pair {
  const bench_ring_ops *ops;
  void *fwd, *back;
  pthread_t helper;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  cmd command;       /* under lock: what the helper does next */
  uint64_t count;    /* its messages */
  int busy;          /* under lock: the helper has a command */
  int failure;       /* under lock: the helper's result */
  uint64_t sent;     /* the caller's next sequence number (stream) */
  uint64_t received; /* the helper's next expected one */
};

typedef struct msg {
  uint64_t seq;
  unsigned char rest[BENCH_RING_MSG_BYTES - 8];
} msg;

static inline void relax(unsigned *spins) {
  if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
  } else {
    *spins = 0;
    sched_yield();
  }
}

static void push_spin(bench_ring_pair *p, void *ring, const msg *m) {
  unsigned spins = 0;
  while (p->ops->push(ring, m))
    relax(&spins);
}

static void pop_spin(bench_ring_pair *p, void *ring, msg *m) {
  unsigned spins = 0;
  while (p->ops->pop(ring, m))
    relax(&spins);
}

static void *helper_main(void *arg) {
  bench_ring_pair *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->lock);
    while (!p->busy)
      pthread_cond_wait(&p->cond, &p->lock);
    cmd c = p->command;
    uint64_t n = p->count;
    pthread_mutex_unlock(&p->lock);
    if (c == CMD_QUIT)
      return NULL;
    int failure = 0;
    msg m;
    if (c == CMD_STREAM && p->ops->pop_batch) {
      msg ms[BENCH_RING_BATCH];
      for (uint64_t i = 0; i < n;) {
        size_t want = n - i < BENCH_RING_BATCH ? (size_t)(n - i) : BENCH_RING_BATCH;
        unsigned spins = 0;
        size_t got;
        while (!(got = p->ops->pop_batch(p->fwd, ms, want)))
          relax(&spins);
        for (size_t k = 0; k < got; k++) {
          if (ms[k].seq != p->received ||
              ms[k].rest[sizeof ms[k].rest - 1] != (unsigned char)ms[k].seq)
            failure = EPROTO;
          p->received++;
        }
        i += got;
      }
      n = 0; /* done */
    }
    for (uint64_t i = 0; i < n; i++) {
      pop_spin(p, p->fwd, &m);
      if (c == CMD_STREAM) {
        if (m.seq != p->received || m.rest[sizeof m.rest - 1] != (unsigned char)m.seq)
          failure = EPROTO;
        p->received++;
      } else {
        push_spin(p, p->back, &m);
      }
    }
    pthread_mutex_lock(&p->lock);
    p->failure = failure;
    p->busy = 0;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
  }
}

static void order(bench_ring_pair *p, cmd c, uint64_t n) {
  pthread_mutex_lock(&p->lock);
  p->command = c;
  p->count = n;
  p->busy = 1;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->lock);
}

static int finish(bench_ring_pair *p) {
  pthread_mutex_lock(&p->lock);
  while (p->busy)
    pthread_cond_wait(&p->cond, &p->lock);
  int failure = p->failure;
  pthread_mutex_unlock(&p->lock);
  return failure;
}

int bench_ring_pair_create(const bench_ring_ops *ops, void *fwd, void *back,
                           bench_ring_pair **out) {
  *out = NULL;
  bench_ring_pair *p = calloc(1, sizeof *p);
  if (!p)
    return ENOMEM;
  p->ops = ops;
  p->fwd = fwd;
  p->back = back;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cond, NULL);
  int rc = pthread_create(&p->helper, NULL, helper_main, p);
  if (rc) {
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int bench_ring_pair_stream(bench_ring_pair *p, uint64_t iters) {
  uint64_t n = iters * BENCH_RING_STREAM_BATCH;
  order(p, CMD_STREAM, n);
  msg m;
  memset(&m, 0, sizeof m);
  if (p->ops->push_batch) {
    msg ms[BENCH_RING_BATCH];
    memset(ms, 0, sizeof ms);
    for (uint64_t i = 0; i < n;) {
      size_t want = n - i < BENCH_RING_BATCH ? (size_t)(n - i) : BENCH_RING_BATCH;
      for (size_t k = 0; k < want; k++) {
        ms[k].seq = p->sent + k;
        ms[k].rest[sizeof ms[k].rest - 1] = (unsigned char)ms[k].seq;
      }
      size_t put = 0;
      unsigned spins = 0;
      while (put < want) {
        size_t got = p->ops->push_batch(p->fwd, ms + put, want - put);
        if (got)
          put += got;
        else
          relax(&spins);
      }
      p->sent += want;
      i += want;
    }
    return finish(p);
  }
  for (uint64_t i = 0; i < n; i++) {
    m.seq = p->sent++;
    m.rest[sizeof m.rest - 1] = (unsigned char)m.seq;
    push_spin(p, p->fwd, &m);
  }
  return finish(p);
}

int bench_ring_pair_pingpong(bench_ring_pair *p, uint64_t iters) {
  order(p, CMD_PINGPONG, iters);
  msg m, r;
  memset(&m, 0, sizeof m);
  int failure = 0;
  for (uint64_t i = 0; i < iters; i++) {
    m.seq = i;
    push_spin(p, p->fwd, &m);
    pop_spin(p, p->back, &r);
    if (r.seq != i)
      failure = EPROTO;
  }
  int helper = finish(p);
  return failure ? failure : helper;
}

void bench_ring_pair_destroy(bench_ring_pair *p) {
  if (!p)
    return;
  order(p, CMD_QUIT, 0);
  pthread_join(p->helper, NULL);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->cond);
  free(p);
}
