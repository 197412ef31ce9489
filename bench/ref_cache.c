/* SPDX-License-Identifier: MIT */
/* Reference baselines of the `cache` suite: kiln against another configuration of
 * itself (design.md), on the suite's own state (cache_suite.h). Public API only. */
#include <stdio.h>

#include "cache_suite.h"
#include "ref_cache.h"

int kiln__ref_cache_disk_hit(void *state, uint64_t iters) {
  kiln__cache_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_cache_drop_memory();
    kiln_status st = kiln__cache_build(s, NULL);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* Run `build` iters times, each on a source no earlier build had (the suite's tag and a
 * count in a comment first). */
static int tagged(kiln__cache_state *s, uint64_t iters,
                  kiln_status (*build)(kiln__cache_state *, const char *)) {
  char tag[64];
  for (uint64_t i = 0; i < iters; i++) {
    snprintf(tag, sizeof tag, "%llx-%llu", s->tag, s->count++);
    kiln_status st = build(s, tag);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

int kiln__ref_cache_first_launch_uncached(void *state, uint64_t iters) {
  return tagged(state, iters, kiln__cache_first_launch);
}

int kiln__ref_cache_build_cold(void *state, uint64_t iters) {
  return tagged(state, iters, kiln__cache_build);
}
