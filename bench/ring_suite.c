/* SPDX-License-Identifier: MIT */
/* Suite `ring` (docs/ring.md, docs/benchmarks.md): kiln's lock-free rings against a
 * plain pthread-mutex ring (the raw baseline) and Concurrency Kit's ck_ring (the peer
 * library), each moved by the same two-thread driver (bench/ring_harness.c) with
 * 56-byte messages in rings of 1024:
 *   {spsc,mpmc}_throughput[_ck]: the caller pushes, a second thread pops (million
 *     messages per second; the MPMC cases use the MPMC calls with one thread per side,
 *     since this machine has 2 cores);
 *   {spsc,mpmc}_pingpong[_ck]: one message there and back through two rings (ns per
 *     round trip);
 *   spsc_batch_throughput_ck: kiln's batch calls, 16 messages a call, against ck_ring
 *     one at a time (it has no batch call): what a program moving streams of messages
 *     gets from each; no goal.
 * Each result name has one baseline; the throughput ones carry the goals (x2 the mutex
 * ring, x0.9 ck_ring). The ck cases are left out, saying why on stderr, in a build
 * without ck_ring.h. The kiln side uses the public API only. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_ring.h"
#include "kiln.h"
#include "ring_harness.h"
#include "suites.h"

/* The kiln side's set-up argument: a kind of baseline_ring.h, or this one: SPSC through
 * the batch calls (the case's baseline gets the plain kind: ck_ring has no batch call). */
#define BENCH_RING_SPSC_BATCHED 17

typedef struct ring_side {
  void *mem[2];
  kiln_ring ring[2];
  bench_ring_pair *pair;
} ring_side;

static int push_spsc(void *r, const void *msg) {
  return kiln_ring_try_push_spsc(r, msg) != KILN_SUCCESS;
}
static int pop_spsc(void *r, void *msg) {
  return kiln_ring_try_pop_spsc(r, msg) != KILN_SUCCESS;
}
static int push_mpmc(void *r, const void *msg) {
  return kiln_ring_try_push_mpmc(r, msg) != KILN_SUCCESS;
}
static int pop_mpmc(void *r, void *msg) {
  return kiln_ring_try_pop_mpmc(r, msg) != KILN_SUCCESS;
}
static size_t push_batch_spsc(void *r, const void *msgs, size_t n) {
  size_t done = 0;
  kiln_ring_push_batch_spsc(r, msgs, n, &done);
  return done;
}
static size_t pop_batch_spsc(void *r, void *msgs, size_t n) {
  size_t done = 0;
  kiln_ring_pop_batch_spsc(r, msgs, n, &done);
  return done;
}
static const bench_ring_ops spsc_ops = {push_spsc, pop_spsc, NULL, NULL};
static const bench_ring_ops mpmc_ops = {push_mpmc, pop_mpmc, NULL, NULL};
static const bench_ring_ops spsc_batch_ops = {push_spsc, pop_spsc, push_batch_spsc, pop_batch_spsc};

static void ring_teardown(void *state) {
  ring_side *s = state;
  if (!s)
    return;
  bench_ring_pair_destroy(s->pair);
  for (int i = 0; i < 2; i++) {
    kiln_ring_destroy(s->ring[i]);
    free(s->mem[i]);
  }
  free(s);
}

static int ring_setup(const kiln_bench_env *env, void **state) {
  *state = NULL;
  int kind = env->arg ? *(const int *)env->arg : BENCH_RING_SPSC;
  int batched = kind == BENCH_RING_SPSC_BATCHED; /* the batch calls, BENCH_RING_BATCH a call */
  if (batched)
    kind = BENCH_RING_SPSC;
  ring_side *s = calloc(1, sizeof *s);
  if (!s)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  d.kind = kind == BENCH_RING_MPMC ? KILN_RING_MPMC : KILN_RING_SPSC;
  d.capacity = BENCH_RING_CAPACITY;
  d.message_bytes = BENCH_RING_MSG_BYTES;
  size_t bytes = 0;
  kiln_status st = kiln_ring_bytes_needed(&d, &bytes);
  for (int i = 0; i < 2 && st == KILN_SUCCESS; i++) {
    s->mem[i] = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    st = s->mem[i] ? kiln_ring_init_in(s->mem[i], bytes, &d, &s->ring[i])
                   : KILN_ERROR_OUT_OF_HOST_MEMORY;
  }
  if (st == KILN_SUCCESS && bench_ring_pair_create(kind == BENCH_RING_MPMC ? &mpmc_ops
                                                   : batched               ? &spsc_batch_ops
                                                                           : &spsc_ops,
                                                   s->ring[0], s->ring[1], &s->pair) != 0)
    st = KILN_ERROR_INTERNAL;
  if (st != KILN_SUCCESS) {
    ring_teardown(s);
    return st;
  }
  *state = s;
  return KILN_SUCCESS;
}

static int ring_stream(void *state, uint64_t iters) {
  int rc = bench_ring_pair_stream(((ring_side *)state)->pair, iters);
  return rc ? KILN_ERROR_INTERNAL : KILN_SUCCESS;
}

static int ring_pingpong(void *state, uint64_t iters) {
  int rc = bench_ring_pair_pingpong(((ring_side *)state)->pair, iters);
  return rc ? KILN_ERROR_INTERNAL : KILN_SUCCESS;
}

static const int kind_spsc = BENCH_RING_SPSC, kind_mpmc = BENCH_RING_MPMC;
static const int kind_spsc_batched = BENCH_RING_SPSC_BATCHED;
static const kiln_bench_param p_spsc[] = {
    {"capacity", NULL, BENCH_RING_CAPACITY}, {"kind", "spsc", 0}, {"message_bytes", NULL, 56}};
static const kiln_bench_param p_mpmc[] = {
    {"capacity", NULL, BENCH_RING_CAPACITY}, {"kind", "mpmc", 0}, {"message_bytes", NULL, 56}};

#define THROUGHPUT(NAME, KIND, P, DESC)                                                     \
  .name = NAME, .description = DESC, .params = P, .param_count = 3, .unit = "Mitems/s",     \
  .better = KILN_BENCH_HIGHER, .work_per_op = 1.0, .ops_per_iter = BENCH_RING_STREAM_BATCH, \
  .arg = (void *)&KIND, .setup = ring_setup, .run = ring_stream, .teardown = ring_teardown, \
  .baseline_run = bench_baseline_ring_stream, .baseline_teardown = bench_baseline_ring_teardown
#define PINGPONG(NAME, KIND, P, DESC)                                                          \
  .name = NAME, .description = DESC, .params = P, .param_count = 3, .unit = "ns",              \
  .better = KILN_BENCH_LOWER, .arg = (void *)&KIND, .setup = ring_setup, .run = ring_pingpong, \
  .teardown = ring_teardown, .baseline_run = bench_baseline_ring_pingpong,                     \
  .baseline_teardown = bench_baseline_ring_teardown

#define MUTEX \
  .baseline_name = "pthread-mutex-ring", .baseline_setup = bench_baseline_mutex_ring_setup
#define CK .baseline_name = "ck_ring", .baseline_setup = bench_baseline_ck_ring_setup

/* The batch case's baseline: ck_ring SPSC (the case's arg carries the batch flag). */
static int ck_spsc_env(const kiln_bench_env *env, void **state) {
  (void)env;
  int kind = BENCH_RING_SPSC;
  return bench_baseline_ck_ring_setup(&kind, state);
}

static const kiln_bench_case cases[] = {
    {THROUGHPUT("spsc_throughput", kind_spsc, p_spsc,
                "56-byte messages from one thread to another through an SPSC ring"),
     MUTEX, .goal_ratio = 2.0, .goal = "messages/s >= 2x a pthread-mutex ring"},
    {THROUGHPUT("mpmc_throughput", kind_mpmc, p_mpmc,
                "56-byte messages from one thread to another through an MPMC ring"),
     MUTEX, .goal_ratio = 2.0, .goal = "messages/s >= 2x a pthread-mutex ring"},
    {PINGPONG("spsc_pingpong", kind_spsc, p_spsc,
              "a 56-byte message to another thread and back through two SPSC rings"),
     MUTEX},
    {PINGPONG("mpmc_pingpong", kind_mpmc, p_mpmc,
              "a 56-byte message to another thread and back through two MPMC rings"),
     MUTEX},
    /* ck_ring's cases last: left out without ck_ring.h */
    {THROUGHPUT("spsc_throughput_ck", kind_spsc, p_spsc,
                "56-byte messages from one thread to another: kiln SPSC vs ck_ring SPSC"),
     CK, .goal_ratio = 0.9, .goal = "messages/s >= 0.9x Concurrency Kit's ck_ring"},
    {THROUGHPUT("mpmc_throughput_ck", kind_mpmc, p_mpmc,
                "56-byte messages from one thread to another: kiln MPMC vs ck_ring MPMC"),
     CK, .goal_ratio = 0.9, .goal = "messages/s >= 0.9x Concurrency Kit's ck_ring"},
    {THROUGHPUT("spsc_batch_throughput_ck", kind_spsc_batched, p_spsc,
                "56-byte messages from one thread to another: kiln SPSC moving 16 a call "
                "(kiln_ring_push/pop_batch_spsc) vs ck_ring SPSC one a call (it has no "
                "batch call)"),
     CK, .baseline_setup_env = ck_spsc_env},
    {PINGPONG("spsc_pingpong_ck", kind_spsc, p_spsc,
              "a round trip through two rings: kiln SPSC vs ck_ring SPSC"),
     CK},
    {PINGPONG("mpmc_pingpong_ck", kind_mpmc, p_mpmc,
              "a round trip through two rings: kiln MPMC vs ck_ring MPMC"),
     CK},
};
#define CK_CASES 5u

static const kiln_bench_suite with_ck = {
    .name = "ring",
    .description = "lock-free message rings vs a pthread-mutex ring and ck_ring (host threads)",
    .backend = KILN_BACKEND_NONE,
    .host_only = 1,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};
static const kiln_bench_suite without_ck = {
    .name = "ring",
    .description = "lock-free message rings vs a pthread-mutex ring (ck_ring cases skipped: "
                   "no ck_ring.h in this build)",
    .backend = KILN_BACKEND_NONE,
    .host_only = 1,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0] - CK_CASES,
};

const kiln_bench_suite *kiln__bench_suite_ring(void) {
  static const kiln_bench_suite *chosen;
  if (chosen)
    return chosen;
  char why[160];
  if (bench_baseline_ck_ring_available(why, sizeof why)) {
    chosen = &with_ck;
  } else {
    fprintf(stderr, "ring: the ck_ring cases are skipped: %s\n", why);
    chosen = &without_ck;
  }
  return chosen;
}
