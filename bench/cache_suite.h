/* SPDX-License-Identifier: MIT */
/* The `cache` suite's kiln-side state and steps (bench/cache_suite.c), shared with its
 * reference baselines (bench/ref_cache.c). Public kiln API only. */
#ifndef KILN_BENCH_CACHE_SUITE_H
#define KILN_BENCH_CACHE_SUITE_H

#include <stdint.h>

#include "suite_common.h"

typedef struct kiln__cache_state {
  kiln__suite_state common; /* first: the skeleton's */
  unsigned long long tag;   /* cold builds: a prefix no earlier source had */
  unsigned long long count;
} kiln__cache_state;

/* kiln_program_create + kiln_program_destroy of the suite's vecadd; `unique` non-NULL:
 * with a comment carrying it first, a source never built before. */
kiln_status kiln__cache_build(kiln__cache_state *s, const char *unique);
/* A new process's first launch: the program (as kiln__cache_build), its kernel, one
 * launch over the suite's buffers, its wait; all destroyed again. */
kiln_status kiln__cache_first_launch(kiln__cache_state *s, const char *unique);
/* A tag no earlier run's sources had (the clock and the pid), for cold builds. */
void kiln__cache_tag_init(kiln__cache_state *s);
/* KILN_ERROR_INVALID_STATE, said on stderr for `what`, when the compile cache is off. */
kiln_status kiln__cache_require_on(const char *what);

#endif
