/* SPDX-License-Identifier: MIT */
/* The two-thread driver of the ring suite (bench/ring_harness.c), shared by kiln's side
 * and its baselines so that every ring is measured by the same loops: the caller
 * thread and one helper thread, which sleeps on a condition variable between runs (so
 * an idle side takes no core from the side being timed). Like the baselines it
 * includes no kiln header. Messages are BENCH_RING_MSG_BYTES bytes whose first 8 hold a
 * sequence number the receiver checks (a lost, repeated or torn message fails the run
 * with EPROTO). Spinning on a full or empty ring: a pause, then sched_yield after 64
 * pauses, the same for every ring. */
#ifndef KILN_BENCH_RING_HARNESS_H
#define KILN_BENCH_RING_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_RING_MSG_BYTES 56u /* with a kiln slot's 8-byte header: 64-byte slots */
#define BENCH_RING_CAPACITY 1024u
/* Messages per timed iteration of the throughput cases. */
#define BENCH_RING_STREAM_BATCH 4096u

/* push: 0 when the message went in, non-zero when the ring is full; pop: 0 when a
 * message came out, non-zero when it is empty. */
typedef struct bench_ring_ops {
  int (*push)(void *ring, const void *msg);
  int (*pop)(void *ring, void *msg);
  /* Optional batch calls (both or neither): move up to n contiguous messages, return
   * how many. The throughput driver then moves BENCH_RING_BATCH messages per call. */
  size_t (*push_batch)(void *ring, const void *msgs, size_t n);
  size_t (*pop_batch)(void *ring, void *msgs, size_t n);
} bench_ring_ops;
#define BENCH_RING_BATCH 16u

typedef struct bench_ring_pair bench_ring_pair;
/* Start the helper thread over `fwd` (caller -> helper) and `back` (helper -> caller). */
int bench_ring_pair_create(const bench_ring_ops *ops, void *fwd, void *back, bench_ring_pair **out);
/* Throughput: the caller pushes iters * BENCH_RING_STREAM_BATCH messages into fwd
 * while the helper pops them; returns once the helper has them all. */
int bench_ring_pair_stream(bench_ring_pair *pair, uint64_t iters);
/* Latency: `iters` round trips, a message to the helper through fwd and back. */
int bench_ring_pair_pingpong(bench_ring_pair *pair, uint64_t iters);
void bench_ring_pair_destroy(bench_ring_pair *pair); /* NULL: no-op */

#endif
