/* SPDX-License-Identifier: MIT */
/* Reference baselines of the `cache` suite (bench/ref_cache.c): kiln compared with
 * another configuration of itself (design.md: `ref-` names, public API allowed). */
#ifndef KILN_BENCH_REF_CACHE_H
#define KILN_BENCH_REF_CACHE_H

#include <stdint.h>

/* The cache suite's state (cache_suite.c) is what these run on. */
/* ref-disk-hit: the in-process layer dropped before each build, so every build reads
 * the directory (what a new process does). */
int kiln__ref_cache_disk_hit(void *state, uint64_t iters);
/* ref-uncached: a new process's first launch without the cache's help: a source never
 * built before (so neither kiln's cache nor PoCL's serves it), its kernel, one launch
 * and its wait. */
int kiln__ref_cache_first_launch_uncached(void *state, uint64_t iters);
/* A build of a source never built before (a unique comment first): the compiler runs,
 * the result is stored (the dialect suite's cpu_build_cached, `ref-cold`). */
int kiln__ref_cache_build_cold(void *state, uint64_t iters);

#endif
