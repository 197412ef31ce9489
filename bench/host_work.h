/* SPDX-License-Identifier: MIT */
/* The fixed CPU work of one task in the graph suite's `*_work_*` cases, the same code
 * on both sides (bench/graph_suite.c, bench/baseline_starpu.c): a dependent chain of
 * integer multiply-adds the compiler cannot shorten (its seed and result go through a
 * volatile), ~25 us on this 2-vCPU VM. No kiln header: the baseline includes it. */
#ifndef KILN_BENCH_HOST_WORK_H
#define KILN_BENCH_HOST_WORK_H

#include <stdint.h>

#define BENCH_HOST_WORK_ITERS 12000u

static inline void bench_host_work(volatile uint64_t *sink) {
  uint64_t x = *sink | 1u;
  for (unsigned i = 0; i < BENCH_HOST_WORK_ITERS; i++)
    x = x * 6364136223846793005ull + 1442695040888963407ull + (x >> 29);
  *sink = x;
}

#endif
