/* SPDX-License-Identifier: MIT */
/* Baselines of the cpu suite: the same work as the kiln side, done without kiln. This
 * header and the baseline files include no kiln header and reference no kiln_ symbol
 * (a test checks the objects with nm). Each run function does `iters` iterations and
 * returns 0, or an errno value on failure. */
#ifndef KILN_BENCH_BASELINES_H
#define KILN_BENCH_BASELINES_H

#include <stddef.h>
#include <stdint.h>

/* At most this many submitting threads (and queues) in one set-up. */
#define BENCH_FANOUT_MAX 8u
/* At most this many argument pointers per task (kiln's KILN_MAX_KERNEL_ARGS). */
#define BENCH_QUEUE_MAX_ARGS 64u

/* A team of `threads` submitting threads (bench/baseline_fanout.c): the caller is
 * thread 0, the others are helpers started at create. bench_fanout_run calls
 * fn(ctx, t) on every thread t < threads at once and returns when all have returned,
 * with the first non-zero return value. */
typedef int (*bench_fanout_fn)(void *ctx, unsigned thread);
typedef struct bench_fanout bench_fanout;
int bench_fanout_create(unsigned threads, bench_fanout_fn fn, void *ctx, bench_fanout **out);
int bench_fanout_run(bench_fanout *team);
void bench_fanout_destroy(bench_fanout *team); /* NULL: no-op */

/* What a plain-queue set-up builds (arg NULL: {10000, 0, 1, 1}). */
typedef struct bench_queue_args {
  uint64_t burst;   /* tasks per iteration of the burst runs */
  unsigned nargs;   /* pointers each task carries (copied at submit), <= 64 */
  unsigned threads; /* submitting threads of bench_baseline_queue_threads, 1..8 */
  unsigned queues;  /* queues, each with its worker, 1..8 */
} bench_queue_args;

/* Plain work queues: one worker thread each, a pthread mutex and condition variables.
 * arg: a bench_queue_args or NULL. */
int bench_baseline_queue_setup(void *arg, void **state);
void bench_baseline_queue_teardown(void *state);
/* Push one empty task and wait for its completion, `iters` times. */
int bench_baseline_queue_roundtrip(void *state, uint64_t iters);
/* Push `burst` empty tasks (each with its nargs pointers) to the first queue, then
 * wait for all of them, `iters` times; _10000 is the same with the default burst. */
int bench_baseline_queue_burst(void *state, uint64_t iters);
int bench_baseline_queue_burst_10000(void *state, uint64_t iters);
/* `threads` threads push `burst` empty tasks between them, thread t's k-th to queue
 * (t + k * threads) % queues; then wait for every queue to drain; `iters` times. */
int bench_baseline_queue_threads(void *state, uint64_t iters);
/* Push a marker task that sets a flag, poll the flag until set, `iters` times. */
int bench_baseline_queue_marker_poll(void *state, uint64_t iters);

/* ---- pool suite (bench/baseline_alloc.c) ---- */
/* posix_memalign(64, *(size_t *)arg) + free per iteration. */
int bench_baseline_host_alloc_setup(void *arg, void **state);
void bench_baseline_host_alloc_teardown(void *state);
int bench_baseline_host_alloc_free(void *state, uint64_t iters);
/* The same state: posix_memalign to 4096 + free (pinned host memory on cpu). */
int bench_baseline_page_alloc_free(void *state, uint64_t iters);

/* The fragmentation workload: `ops` operations, each the free of a random live
 * allocation (half the time, when any is live) or an allocation of a log-uniform size
 * in [min_bytes, max_bytes] (random frees first make room under max_live_bytes and
 * max_live); the same sequence for a given seed, whatever allocator runs it. */
typedef struct bench_frag_params {
  uint64_t ops, seed;
  size_t min_bytes, max_bytes;
  uint64_t max_live_bytes;
  size_t max_live;    /* live allocations at most */
  size_t granularity; /* the best-fit allocator's rounding (0: 256) */
} bench_frag_params;
typedef struct bench_frag_ops {
  int (*alloc_fn)(void *ctx, size_t bytes, void **handle);
  int (*free_fn)(void *ctx, void *handle);
} bench_frag_ops;
/* Run the workload through ops; *peak_in_use receives the most bytes live at once. */
int bench_frag_run(const bench_frag_params *p, const bench_frag_ops *ops, void *ctx,
                   uint64_t *peak_in_use);
/* The workload on a plain best-fit allocator over one growing address range:
 * *overhead = its peak reserved (the range's high-water mark) / the peak in use. */
int bench_baseline_bestfit_overhead(const bench_frag_params *p, double *overhead);

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
/* A DAG of `layers` x `width` tiny tasks, each depending on every task of the layer
 * before (width 1: a chain); the graph suite's StarPU cases. */
typedef struct bench_dag_shape {
  unsigned layers, width;
  /* 0: tiny tasks (one counter increment) on one worker, i.e. per-task cost; 1: each
   * task does bench_host_work (host_work.h), on as many workers (kiln) and CPU workers
   * (StarPU's ncpus) as the machine has online cores */
  unsigned work;
} bench_dag_shape;
/* arg: a bench_dag_shape. Each run submits the whole DAG with declared dependencies
 * (starpu_task_declare_deps_array) and waits for all, `iters` times. */
int bench_baseline_starpu_dag_setup(void *arg, void **state);
void bench_baseline_starpu_dag_teardown(void *state);
int bench_baseline_starpu_dag_run(void *state, uint64_t iters);

#endif
