/* SPDX-License-Identifier: MIT */
/* Baselines of the cpu suite: the same work as the kiln side, done without kiln. This
 * header and the baseline files include no kiln header and reference no kiln_ symbol
 * (a test checks the objects with nm). Each run function does `iters` iterations and
 * returns 0, or an errno value on failure. */
#ifndef KILN_BENCH_BASELINES_H
#define KILN_BENCH_BASELINES_H

#include <stddef.h>
#include <stdint.h>

/* A plain work queue: one worker thread, a pthread mutex and condition variables. */
int bench_baseline_queue_setup(void *arg, void **state);
void bench_baseline_queue_teardown(void *state);
/* Push one empty task and wait for its completion, `iters` times. */
int bench_baseline_queue_roundtrip(void *state, uint64_t iters);
/* Push 10 000 empty tasks, then wait for all of them, `iters` times. */
int bench_baseline_queue_burst_10000(void *state, uint64_t iters);
/* Push a marker task that sets a flag, poll the flag until set, `iters` times. */
int bench_baseline_queue_marker_poll(void *state, uint64_t iters);

/* memcpy between two page-faulted-in blocks of *(size_t *)arg bytes. */
int bench_baseline_memcpy_setup(void *arg, void **state);
void bench_baseline_memcpy_teardown(void *state);
int bench_baseline_memcpy_run(void *state, uint64_t iters);

/* StarPU (bench/baseline_starpu.c): tasks of an empty CPU codelet on one CPU worker,
 * StarPU loaded with dlopen. 1 when libstarpu-1.3.so.9 (or $KILN_STARPU_LIBRARY) can be
 * loaded, else 0 with the reason in why[0..why_bytes). */
int bench_baseline_starpu_available(char *why, size_t why_bytes);
/* Initialises StarPU once per process (shut down at exit); the teardown keeps it. */
int bench_baseline_starpu_setup(void *arg, void **state);
void bench_baseline_starpu_teardown(void *state);
/* Submit 10 000 tasks, then starpu_task_wait_for_all, `iters` times. */
int bench_baseline_starpu_burst_10000(void *state, uint64_t iters);
/* Submit one synchronous task (submit returns when it has run), `iters` times. */
int bench_baseline_starpu_roundtrip(void *state, uint64_t iters);

#endif
