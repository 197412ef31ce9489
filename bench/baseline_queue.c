/* SPDX-License-Identifier: MIT */
/* Baseline of op_roundtrip, op_burst_10000 and event_record_query: the plain work
 * queue a C programmer writes without kiln — a bounded ring of tasks under one pthread
 * mutex, one worker thread, condition variables for "work available", "space free" and
 * "task done" (no spinning). Includes no kiln header (checked with nm). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

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
} queue;

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

/* Push a task; returns its ticket (the completion count that means it is done). */
static uint64_t submit(queue *q, void (*fn)(void *), void *arg) {
  pthread_mutex_lock(&q->lock);
  while (q->tail - q->head == QUEUE_CAPACITY)
    pthread_cond_wait(&q->space, &q->lock);
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

static void empty_task(void *arg) {
  (void)arg;
}

static void marker_task(void *arg) {
  queue *q = arg;
  /* release: pairs with the acquire load in bench_baseline_queue_marker_poll */
  atomic_store_explicit(&q->flag, 1, memory_order_release);
}

int bench_baseline_queue_setup(void *arg, void **state) {
  (void)arg;
  *state = NULL;
  queue *q = calloc(1, sizeof *q);
  if (q == NULL)
    return ENOMEM;
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
    free(q);
    return rc;
  }
  *state = q;
  return 0;
}

void bench_baseline_queue_teardown(void *state) {
  queue *q = state;
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
  free(q);
}

int bench_baseline_queue_roundtrip(void *state, uint64_t iters) {
  queue *q = state;
  for (uint64_t i = 0; i < iters; i++)
    wait_ticket(q, submit(q, empty_task, NULL));
  return 0;
}

int bench_baseline_queue_burst_10000(void *state, uint64_t iters) {
  queue *q = state;
  for (uint64_t i = 0; i < iters; i++) {
    uint64_t last = 0;
    for (unsigned k = 0; k < BURST; k++)
      last = submit(q, empty_task, NULL);
    wait_ticket(q, last);
  }
  return 0;
}

int bench_baseline_queue_marker_poll(void *state, uint64_t iters) {
  queue *q = state;
  for (uint64_t i = 0; i < iters; i++) {
    atomic_store_explicit(&q->flag, 0, memory_order_relaxed); /* no task pending now */
    submit(q, marker_task, q);
    /* acquire: pairs with the release store in marker_task */
    while (atomic_load_explicit(&q->flag, memory_order_acquire) == 0) {
    }
  }
  /* the worker still counts the last marker as completed after setting the flag:
   * wait for it so that the next batch starts from an idle queue */
  pthread_mutex_lock(&q->lock);
  uint64_t all = q->tail;
  pthread_mutex_unlock(&q->lock);
  wait_ticket(q, all);
  return 0;
}
