/* SPDX-License-Identifier: MIT */
/* The plain condvar handoff (bench/baseline_handoff.c), the baseline of the async
 * suite's callback_latency and fd_wakeup: what a C programmer writes to learn on one
 * thread that work done on another has finished. The caller hands a request to a
 * worker thread (mutex + condvar), which completes it and hands the completion on:
 * straight back to the caller (2 hops: fd_wakeup's shape, a wait woken by the
 * completing thread), or first to a notifier thread that plays the callback thread,
 * which then wakes the caller (3 hops: callback_latency's shape, since a completion
 * callback runs on a thread of its own, never the worker). No spinning anywhere: every
 * wait is pthread_cond_wait. Includes no kiln header (a test checks with nm). */
#ifndef KILN_BENCH_BASELINE_HANDOFF_H
#define KILN_BENCH_BASELINE_HANDOFF_H

#include <stdint.h>

/* `arg` points to an unsigned: the hops, 2 or 3. */
int bench_baseline_handoff_setup(void *arg, void **state);
/* `iters` round trips: post to the worker, wait for the completion to come back. */
int bench_baseline_handoff_run(void *state, uint64_t iters);
void bench_baseline_handoff_teardown(void *state);

#endif
