/* SPDX-License-Identifier: MIT */
/* Baselines of the ring suite (bench/baseline_ring.c): the same two-thread transfers
 * (bench/ring_harness.h) over a plain ring under a pthread mutex, and over Concurrency
 * Kit's ck_ring (the peer library; libck-dev). No kiln header, no kiln_ symbol. */
#ifndef KILN_BENCH_BASELINE_RING_H
#define KILN_BENCH_BASELINE_RING_H

#include <stddef.h>
#include <stdint.h>

/* arg of the set-ups: a pointer to one of these. */
enum { BENCH_RING_SPSC = 1, BENCH_RING_MPMC = 2 };

/* A ring of BENCH_RING_CAPACITY messages guarded by one pthread mutex (both kinds are
 * the same ring: the mutex makes it MPMC). */
int bench_baseline_mutex_ring_setup(void *arg, void **state);
/* ck_ring with its typed (CK_RING_PROTOTYPE) calls for 56-byte messages: SPSC
 * enqueue/dequeue, or MPMC enqueue/dequeue (ck_ring holds capacity - 1 messages). */
int bench_baseline_ck_ring_setup(void *arg, void **state);
/* 1 when this build has ck_ring (ck_ring.h was found), else 0 with why[] saying so. */
int bench_baseline_ck_ring_available(char *why, size_t why_bytes);
/* The runs and the teardown, for either ring. */
int bench_baseline_ring_stream(void *state, uint64_t iters);
int bench_baseline_ring_pingpong(void *state, uint64_t iters);
void bench_baseline_ring_teardown(void *state);

#endif
