/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* The rings' validator (run under TSan in make check): P producer and C consumer
 * threads on one small ring (16 slots, so it is full and empty all the time and its
 * indices lap thousands of times). Each message carries its producer, a sequence
 * number and a checksum; consumers mark every (producer, number) in a shared table and
 * check that the numbers of each producer arrive in increasing order at each consumer
 * (per-producer FIFO; with one consumer, exactly 0, 1, 2, ...). At the end every
 * message was delivered exactly once. Variants: SPSC, MPMC 2x2 and 3x2, batches, the
 * blocking calls (futex sleeps and wakes) and the partitioned group (exactly once
 * only: a full partition spills into the next one). KILN_RING_STRESS_MSGS sets the
 * messages per producer (default 20000). A lost wakeup shows as a hang (ctest's
 * timeout); a torn or duplicated message as a failure; a race as a TSan report. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define MAX_THREADS 4
#define BATCH 5

typedef struct msg {
  uint32_t producer, number, check;
  uint32_t pad[3]; /* 24-byte messages: more than one word to tear */
} msg;

typedef enum mode { MODE_TRY, MODE_BATCH, MODE_WAIT, MODE_GROUP } mode;

typedef struct shared {
  kiln_ring ring;
  kiln_ring_group group;
  kiln_ring_kind kind;
  mode how;
  int producers, consumers;
  uint32_t per_producer;
  _Atomic uint32_t *seen; /* producers * per_producer deliveries */
  atomic_uint consumed;
  atomic_int bad; /* torn, out of order, or an unexpected status */
  atomic_int failures;
} shared;

typedef struct worker {
  shared *sh;
  int id;
} worker;

static uint32_t checksum(const msg *m) {
  return (m->producer * 0x9E3779B1u) ^ (m->number * 0x85EBCA77u) ^ 0xC2B2AE3Du;
}

static kiln_status try_push(shared *sh, const msg *m, int id) {
  if (sh->how == MODE_GROUP)
    return kiln_ring_group_push(sh->group, (uint32_t)id, m);
  if (sh->how == MODE_WAIT)
    return sh->kind == KILN_RING_SPSC ? kiln_ring_push_wait_spsc(sh->ring, m, 1000000)
                                      : kiln_ring_push_wait_mpmc(sh->ring, m, 1000000);
  return sh->kind == KILN_RING_SPSC ? kiln_ring_try_push_spsc(sh->ring, m)
                                    : kiln_ring_try_push_mpmc(sh->ring, m);
}

static void *producer_main(void *arg) {
  worker *w = arg;
  shared *sh = w->sh;
  msg batch[BATCH];
  uint32_t n = 0;
  while (n < sh->per_producer) {
    if (sh->how == MODE_BATCH) {
      uint32_t k = 0;
      for (; k < BATCH && n + k < sh->per_producer; k++) {
        batch[k] = (msg){(uint32_t)w->id, n + k, 0, {0, 0, 0}};
        batch[k].check = checksum(&batch[k]);
      }
      size_t done = 0;
      kiln_status s = sh->kind == KILN_RING_SPSC
                          ? kiln_ring_push_batch_spsc(sh->ring, batch, k, &done)
                          : kiln_ring_push_batch_mpmc(sh->ring, batch, k, &done);
      if (s == KILN_SUCCESS)
        n += (uint32_t)done;
      else if (s == KILN_NOT_READY)
        sched_yield();
      else
        atomic_fetch_add(&sh->failures, 1);
      continue;
    }
    msg m = {(uint32_t)w->id, n, 0, {0, 0, 0}};
    m.check = checksum(&m);
    kiln_status s = try_push(sh, &m, w->id);
    if (s == KILN_SUCCESS)
      n++;
    else if (s == KILN_NOT_READY || s == KILN_TIMEOUT)
      sched_yield();
    else {
      atomic_fetch_add(&sh->failures, 1);
      return NULL;
    }
  }
  return NULL;
}

static void take(shared *sh, const msg *m, uint32_t *last) {
  if (m->producer >= (uint32_t)sh->producers || m->number >= sh->per_producer ||
      m->check != checksum(m)) {
    atomic_fetch_add(&sh->bad, 1);
    return;
  }
  /* per-producer FIFO as this consumer sees it */
  uint32_t prev = last[m->producer];
  if (sh->how != MODE_GROUP && prev != UINT32_MAX && m->number <= prev)
    atomic_fetch_add(&sh->bad, 1);
  if (sh->consumers == 1 && sh->how != MODE_GROUP && m->number != prev + 1u)
    atomic_fetch_add(&sh->bad, 1); /* one consumer: exactly the next one */
  last[m->producer] = m->number;
  atomic_fetch_add(&sh->seen[(size_t)m->producer * sh->per_producer + m->number], 1);
  atomic_fetch_add(&sh->consumed, 1);
}

static void *consumer_main(void *arg) {
  worker *w = arg;
  shared *sh = w->sh;
  uint32_t last[MAX_THREADS];
  for (int i = 0; i < MAX_THREADS; i++)
    last[i] = UINT32_MAX;
  uint32_t total = (uint32_t)sh->producers * sh->per_producer;
  msg got[BATCH];
  while (atomic_load(&sh->consumed) < total) {
    kiln_status s;
    size_t n = 1;
    switch (sh->how) {
    case MODE_GROUP:
      s = kiln_ring_group_pop(sh->group, (uint32_t)w->id, got);
      break;
    case MODE_WAIT: /* a short timeout: the last messages may go to the other consumer */
      s = sh->kind == KILN_RING_SPSC ? kiln_ring_pop_wait_spsc(sh->ring, got, 2000000)
                                     : kiln_ring_pop_wait_mpmc(sh->ring, got, 2000000);
      break;
    case MODE_BATCH:
      s = sh->kind == KILN_RING_SPSC ? kiln_ring_pop_batch_spsc(sh->ring, got, BATCH, &n)
                                     : kiln_ring_pop_batch_mpmc(sh->ring, got, BATCH, &n);
      break;
    default:
      s = sh->kind == KILN_RING_SPSC ? kiln_ring_try_pop_spsc(sh->ring, got)
                                     : kiln_ring_try_pop_mpmc(sh->ring, got);
    }
    if (s == KILN_SUCCESS) {
      for (size_t i = 0; i < n; i++)
        take(sh, &got[i], last);
    } else if (s == KILN_NOT_READY || s == KILN_TIMEOUT) {
      sched_yield();
    } else {
      atomic_fetch_add(&sh->failures, 1);
      return NULL;
    }
  }
  return NULL;
}

static void run(kiln_ring_kind kind, mode how, int producers, int consumers) {
  const char *env = getenv("KILN_RING_STRESS_MSGS");
  uint32_t per = env && atoi(env) > 0 ? (uint32_t)atoi(env) : 20000u;
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_cpu_device(), NULL, &ctx));
  shared sh;
  memset(&sh, 0, sizeof sh);
  sh.kind = kind;
  sh.how = how;
  sh.producers = producers;
  sh.consumers = consumers;
  sh.per_producer = per;
  sh.seen = calloc((size_t)producers * per, sizeof *sh.seen);
  assert_non_null(sh.seen);
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  d.kind = kind;
  d.capacity = 16;
  d.message_bytes = sizeof(msg);
  if (how == MODE_GROUP) {
    d.capacity = 8;
    KT_OK(kiln_ring_group_create(ctx, &d, 3, &sh.group));
  } else {
    KT_OK(kiln_ring_create(ctx, &d, &sh.ring));
  }
  pthread_t th[2 * MAX_THREADS];
  worker ws[2 * MAX_THREADS];
  int n = 0;
  for (int i = 0; i < consumers; i++, n++) {
    ws[n] = (worker){&sh, i};
    assert_int_equal(pthread_create(&th[n], NULL, consumer_main, &ws[n]), 0);
  }
  for (int i = 0; i < producers; i++, n++) {
    ws[n] = (worker){&sh, i};
    assert_int_equal(pthread_create(&th[n], NULL, producer_main, &ws[n]), 0);
  }
  for (int i = 0; i < n; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&sh.failures), 0);
  assert_int_equal(atomic_load(&sh.bad), 0);
  size_t total = (size_t)producers * per, wrong = 0;
  for (size_t i = 0; i < total; i++)
    if (atomic_load(&sh.seen[i]) != 1) {
      if (!wrong)
        fprintf(stderr, "producer %zu message %zu delivered %u times\n", i / per, i % per,
                atomic_load(&sh.seen[i]));
      wrong++;
    }
  assert_int_equal(wrong, 0);
  assert_int_equal(atomic_load(&sh.consumed), total);
  if (how == MODE_GROUP) {
    KT_OK(kiln_ring_group_destroy(sh.group));
  } else {
    size_t left = 1;
    KT_OK(kiln_ring_count(sh.ring, &left));
    assert_int_equal(left, 0);
    KT_OK(kiln_ring_destroy(sh.ring));
  }
  KT_OK(kiln_context_destroy(ctx));
  free(sh.seen);
}

static void spsc_1x1(void **state) {
  (void)state;
  run(KILN_RING_SPSC, MODE_TRY, 1, 1);
}
static void spsc_batch_1x1(void **state) {
  (void)state;
  run(KILN_RING_SPSC, MODE_BATCH, 1, 1);
}
static void spsc_wait_1x1(void **state) {
  (void)state;
  run(KILN_RING_SPSC, MODE_WAIT, 1, 1);
}
static void mpmc_2x2(void **state) {
  (void)state;
  run(KILN_RING_MPMC, MODE_TRY, 2, 2);
}
static void mpmc_3x2(void **state) {
  (void)state;
  run(KILN_RING_MPMC, MODE_TRY, 3, 2);
}
static void mpmc_batch_2x2(void **state) {
  (void)state;
  run(KILN_RING_MPMC, MODE_BATCH, 2, 2);
}
static void mpmc_wait_2x2(void **state) {
  (void)state;
  run(KILN_RING_MPMC, MODE_WAIT, 2, 2);
}
static void group_3x3(void **state) {
  (void)state;
  run(KILN_RING_MPMC, MODE_GROUP, 3, 3);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(spsc_1x1),      cmocka_unit_test(spsc_batch_1x1),
    cmocka_unit_test(spsc_wait_1x1), cmocka_unit_test(mpmc_2x2),
    cmocka_unit_test(mpmc_3x2),      cmocka_unit_test(mpmc_batch_2x2),
    cmocka_unit_test(mpmc_wait_2x2), cmocka_unit_test(group_3x3),
};
KT_MAIN_CPU(tests)
