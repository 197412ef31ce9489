/* SPDX-License-Identifier: MIT */
/* Baseline of op_roundtrip, op_burst_10000, event_record_query and the scaling cases
 * op_burst, launch_buffers and submit_threads: the plain work queue a C programmer
 * writes without kiln — a bounded ring of tasks under one pthread mutex, one worker
 * thread, condition variables for "work available", "space free" and "task done" (no
 * spinning). A set-up may ask for several such queues (one per stream of the kiln
 * side), tasks that carry argument pointers (copied into the ring, as kiln copies a
 * launch's arguments), and a team of submitting threads (bench_fanout). Includes no
 * kiln header (checked with nm). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"

#define QUEUE_CAPACITY 16384u /* a power of two, above the 10 000-task burst */
#define BURST 10000u

typedef struct task {
  void (*fn)(void *arg);
  void *arg;
} task;

typedef struct queue {
  pthread_mutex_t lock;
  pthread_cond_t work;  /* signalled when a task is pushed, or on stop */
  pthread_cond_t space; /* signalled when a task is popped */
  pthread_cond_t done;  /* broadcast when a task completes */
  task ring[QUEUE_CAPACITY];
  uint64_t head, tail; /* pop at head, push at tail; both only grow */
  uint64_t completed;  /* tasks finished; ticket t is done when completed >= t */
  int stop;
  pthread_t worker;
  atomic_int flag; /* the marker task's flag */
  void **argv;     /* nargs pointers per ring slot, or NULL */
  unsigned nargs;
} queue;

/* A set-up's state: its queues, the argument targets and the submitting team. */
typedef struct queues {
  bench_queue_args args;
  queue *q[BENCH_FANOUT_MAX];
  void *targets[BENCH_QUEUE_MAX_ARGS]; /* what the argument pointers point to */
  bench_fanout *team;
} queues;

static void *worker_main(void *p) {
  queue *q = p;
  pthread_mutex_lock(&q->lock);
  for (;;) {
    while (q->head == q->tail && !q->stop)
      pthread_cond_wait(&q->work, &q->lock);
    if (q->head == q->tail)
      break; /* stopped and drained */
    task t = q->ring[q->head % QUEUE_CAPACITY];
    q->head++;
    pthread_cond_signal(&q->space);
    pthread_mutex_unlock(&q->lock);
    t.fn(t.arg);
    pthread_mutex_lock(&q->lock);
    q->completed++;
    pthread_cond_broadcast(&q->done);
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

/* Push a task; returns its ticket (the completion count that means it is done). With
 * argv, the queue's nargs pointers are copied into the task's ring slot. */
static uint64_t submit(queue *q, void (*fn)(void *), void *arg, void *const *argv) {
  pthread_mutex_lock(&q->lock);
  while (q->tail - q->head == QUEUE_CAPACITY)
    pthread_cond_wait(&q->space, &q->lock);
  if (argv != NULL) {
    /* the slot is the task's argument block; an empty task never reads it, so a slot
     * reused while its task still runs harms nothing */
    arg = &q->argv[(size_t)(q->tail % QUEUE_CAPACITY) * q->nargs];
    memcpy(arg, argv, q->nargs * sizeof *argv);
  }
  q->ring[q->tail % QUEUE_CAPACITY] = (task){fn, arg};
  uint64_t ticket = ++q->tail;
  pthread_cond_signal(&q->work);
  pthread_mutex_unlock(&q->lock);
  return ticket;
}

static void wait_ticket(queue *q, uint64_t ticket) {
  pthread_mutex_lock(&q->lock);
  while (q->completed < ticket)
    pthread_cond_wait(&q->done, &q->lock);
  pthread_mutex_unlock(&q->lock);
}

/* Wait until every task pushed so far has completed. */
static void drain(queue *q) {
  pthread_mutex_lock(&q->lock);
  uint64_t all = q->tail;
  pthread_mutex_unlock(&q->lock);
  wait_ticket(q, all);
}

static void empty_task(void *arg) {
  (void)arg;
}

static void marker_task(void *arg) {
  queue *q = arg;
  /* release: pairs with the acquire load in bench_baseline_queue_marker_poll */
  atomic_store_explicit(&q->flag, 1, memory_order_release);
}

static void queue_destroy(queue *q) {
  if (q == NULL)
    return;
  pthread_mutex_lock(&q->lock);
  q->stop = 1;
  pthread_cond_signal(&q->work);
  pthread_mutex_unlock(&q->lock);
  pthread_join(q->worker, NULL);
  pthread_cond_destroy(&q->done);
  pthread_cond_destroy(&q->space);
  pthread_cond_destroy(&q->work);
  pthread_mutex_destroy(&q->lock);
  free(q->argv);
  free(q);
}

static int queue_create(unsigned nargs, queue **out) {
  *out = NULL;
  queue *q = calloc(1, sizeof *q);
  if (q == NULL)
    return ENOMEM;
  if (nargs > 0 && (q->argv = calloc((size_t)QUEUE_CAPACITY * nargs, sizeof(void *))) == NULL) {
    free(q);
    return ENOMEM;
  }
  q->nargs = nargs;
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->work, NULL);
  pthread_cond_init(&q->space, NULL);
  pthread_cond_init(&q->done, NULL);
  atomic_init(&q->flag, 0);
  int rc = pthread_create(&q->worker, NULL, worker_main, q);
  if (rc != 0) {
    pthread_cond_destroy(&q->done);
    pthread_cond_destroy(&q->space);
    pthread_cond_destroy(&q->work);
    pthread_mutex_destroy(&q->lock);
    free(q->argv);
    free(q);
    return rc;
  }
  *out = q;
  return 0;
}

/* One submitter's share of a burst over the queues: its k-th task goes to queue
 * (thread + k * threads) % queues, as the kiln side spreads its launches over streams. */
static int submit_share(void *ctx, unsigned thread) {
  queues *s = ctx;
  unsigned threads = s->args.threads, nq = s->args.queues;
  uint64_t share = s->args.burst / threads + (thread < s->args.burst % threads);
  for (uint64_t k = 0; k < share; k++)
    submit(s->q[(thread + k * threads) % nq], empty_task, NULL, NULL);
  return 0;
}

void bench_baseline_queue_teardown(void *state) {
  queues *s = state;
  if (s == NULL)
    return;
  bench_fanout_destroy(s->team);
  for (unsigned i = 0; i < BENCH_FANOUT_MAX; i++)
    queue_destroy(s->q[i]);
  for (unsigned i = 0; i < BENCH_QUEUE_MAX_ARGS; i++)
    free(s->targets[i]);
  free(s);
}

int bench_baseline_queue_setup(void *arg, void **state) {
  *state = NULL;
  bench_queue_args a = {BURST, 0, 1, 1};
  if (arg != NULL)
    a = *(const bench_queue_args *)arg;
  if (a.burst == 0 || a.nargs > BENCH_QUEUE_MAX_ARGS || a.threads == 0 ||
      a.threads > BENCH_FANOUT_MAX || a.queues == 0 || a.queues > BENCH_FANOUT_MAX)
    return EINVAL;
  queues *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ENOMEM;
  s->args = a;
  int rc = 0;
  for (unsigned i = 0; i < a.nargs && rc == 0; i++)
    if ((s->targets[i] = calloc(1, 64)) == NULL)
      rc = ENOMEM;
  for (unsigned i = 0; i < a.queues && rc == 0; i++)
    rc = queue_create(a.nargs, &s->q[i]);
  if (rc == 0 && a.threads > 1)
    rc = bench_fanout_create(a.threads, submit_share, s, &s->team);
  if (rc != 0) {
    bench_baseline_queue_teardown(s);
    return rc;
  }
  *state = s;
  return 0;
}

int bench_baseline_queue_roundtrip(void *state, uint64_t iters) {
  queue *q = ((queues *)state)->q[0];
  for (uint64_t i = 0; i < iters; i++)
    wait_ticket(q, submit(q, empty_task, NULL, NULL));
  return 0;
}

int bench_baseline_queue_burst(void *state, uint64_t iters) {
  queues *s = state;
  queue *q = s->q[0];
  void *const *argv = s->args.nargs > 0 ? s->targets : NULL;
  for (uint64_t i = 0; i < iters; i++) {
    uint64_t last = 0;
    for (uint64_t k = 0; k < s->args.burst; k++)
      last = submit(q, empty_task, NULL, argv);
    wait_ticket(q, last);
  }
  return 0;
}

int bench_baseline_queue_burst_10000(void *state, uint64_t iters) {
  return bench_baseline_queue_burst(state, iters); /* the default burst is 10 000 */
}

int bench_baseline_queue_threads(void *state, uint64_t iters) {
  queues *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    int rc = s->team != NULL ? bench_fanout_run(s->team) : submit_share(s, 0);
    for (unsigned k = 0; k < s->args.queues; k++)
      drain(s->q[k]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int bench_baseline_queue_marker_poll(void *state, uint64_t iters) {
  queue *q = ((queues *)state)->q[0];
  for (uint64_t i = 0; i < iters; i++) {
    atomic_store_explicit(&q->flag, 0, memory_order_relaxed); /* no task pending now */
    submit(q, marker_task, q, NULL);
    /* acquire: pairs with the release store in marker_task */
    while (atomic_load_explicit(&q->flag, memory_order_acquire) == 0) {
    }
  }
  /* the worker still counts the last marker as completed after setting the flag:
   * wait for it so that the next batch starts from an idle queue */
  drain(q);
  return 0;
}
