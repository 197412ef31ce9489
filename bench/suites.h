/* SPDX-License-Identifier: MIT */
/* The benchmark suites built into `kiln bench` (library kiln_bench_suites). Each suite
 * lives in bench/<name>_suite.c; its baselines in bench/baseline_*.c. */
#ifndef KILN_BENCH_SUITES_H
#define KILN_BENCH_SUITES_H

#include <stddef.h>
#include "kiln/bench.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The cpu suite: its StarPU cases only where libstarpu can be loaded (decided at the
 * first call, which says on stderr which cases are skipped and why). */
const kiln_bench_suite *kiln__bench_suite_cpu(void);
extern const kiln_bench_suite kiln__bench_suite_ocl_mem;
extern const kiln_bench_suite kiln__bench_suite_ocl_vecadd;
extern const kiln_bench_suite kiln__bench_suite_ocl_events;
extern const kiln_bench_suite kiln__bench_suite_cuda;
/* The pool suite: its CUDA case where a CUDA device exists, its fragmentation case
 * where the mock backend is enabled (decided at the first call, said on stderr). */
const kiln_bench_suite *kiln__bench_suite_pool(void);
extern const kiln_bench_suite kiln__bench_suite_cache;      /* cache_suite.c */
extern const kiln_bench_suite kiln__bench_suite_cache_cuda; /* cache_suite.c */
/* bench/async_suite.c (issue #19) */
extern const kiln_bench_suite kiln__bench_suite_async;
extern const kiln_bench_suite kiln__bench_suite_async_ocl;
extern const kiln_bench_suite kiln__bench_suite_async_cuda;
extern const kiln_bench_suite kiln__bench_suite_streams;
extern const kiln_bench_suite kiln__bench_suite_streams_cuda;
extern const kiln_bench_suite kiln__bench_suite_dialect;
/* The graph suite (bench/graph_suite.c): its StarPU cases only where libstarpu can be
 * loaded (decided at the first call, said on stderr). */
const kiln_bench_suite *kiln__bench_suite_graph(void);
/* The ring suite (bench/ring_suite.c): its ck_ring cases only in a build that found
 * ck_ring.h (decided at the first call, which says so on stderr otherwise). */
const kiln_bench_suite *kiln__bench_suite_ring(void);
extern const kiln_bench_suite kiln__bench_suite_hybrid;      /* hybrid_suite.c */
extern const kiln_bench_suite kiln__bench_suite_hybrid_cuda; /* hybrid_suite.c */

/* Every built-in suite, in `kiln bench list` order; *count receives their number. */
const kiln_bench_suite *const *kiln__bench_suites(size_t *count);
/* The suite named `name`, or NULL. */
const kiln_bench_suite *kiln__bench_suite_find(const char *name);

#ifdef __cplusplus
}
#endif
#endif
