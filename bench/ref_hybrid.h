/* SPDX-License-Identifier: MIT */
/* The hybrid suite (bench/hybrid_suite.c): a mixed-size workload of one dialect kernel
 * dispatched over the CPU backend (cpu:0) and the suite's device. The kiln side is the
 * ADAPTIVE dispatcher; its reference baselines (design.md: kiln's public API, their own
 * file, JSON names "ref-best-fixed" and "ref-oracle") are the same runs sent always to
 * the single target that was faster over the whole workload in a calibration pass, and
 * per size to the target a calibration found faster for that size. Both use FIXED
 * dispatchers, so every side pays the same run path (copies in, launch, copies out). */
#ifndef KILN_BENCH_REF_HYBRID_H
#define KILN_BENCH_REF_HYBRID_H
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"
#include "kiln/bench.h"

#define BENCH_HYBRID_TARGETS 2

typedef struct bench_hybrid {
  kiln_context ctx[BENCH_HYBRID_TARGETS]; /* cpu:0, the suite's device */
  kiln_hybrid hybrid;                     /* kiln side: ADAPTIVE over both */
  kiln_hybrid_task task;
  kiln_hybrid fixed[BENCH_HYBRID_TARGETS]; /* baselines: FIXED on each target */
  kiln_hybrid_task fixed_task[BENCH_HYBRID_TARGETS];
  size_t *sizes; /* the workload: sizes in a fixed pseudo-random order */
  size_t count;
  unsigned char *pick; /* ref-oracle: the target per entry of sizes */
  unsigned best;       /* ref-best-fixed: the target */
  float *x, *y;        /* host arrays of the largest size */
  size_t max_n;
} bench_hybrid;

/* Contexts, the workload (quick: up to 1 Mi items, else 16 Mi) and host arrays. */
int bench_hybrid_open(const kiln_bench_env *env, bench_hybrid **out);
void bench_hybrid_close(void *state);
/* A kernel task "hy_poly" on dispatcher h. */
int bench_hybrid_task(kiln_hybrid h, kiln_hybrid_task *task);
/* One run of size n on task, then a check of two items of the result. */
int bench_hybrid_run_one(bench_hybrid *b, kiln_hybrid_task task, size_t n);
/* The whole workload once on task (each run on its dispatcher's choice). */
int bench_hybrid_pass(bench_hybrid *b, kiln_hybrid_task task);

int bench_ref_hybrid_best_setup(const kiln_bench_env *env, void **state);
int bench_ref_hybrid_best_run(void *state, uint64_t iters);
int bench_ref_hybrid_oracle_setup(const kiln_bench_env *env, void **state);
int bench_ref_hybrid_oracle_run(void *state, uint64_t iters);
#endif
