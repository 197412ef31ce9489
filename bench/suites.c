/* SPDX-License-Identifier: MIT */
/* The registry of built-in suites: one array, in `kiln bench list` order. A new suite
 * adds its file to bench/CMakeLists.txt and one line here. The cpu and graph suites'
 * cases depend on the machine (StarPU or not): their slots are filled when the registry is first
 * asked for it, so that `kiln bench run ocl_mem` never probes for StarPU. */
#include <string.h>

#include "suites.h"

/* The suites whose slot is filled at the first call (their cases depend on the machine). */
enum { SLOT_CPU = 0, SLOT_POOL = 5, SLOT_GRAPH = 16, SLOT_RING = 17 };

static const kiln_bench_suite *suites[] = {
    [SLOT_CPU] = NULL,
    &kiln__bench_suite_ocl_mem,
    &kiln__bench_suite_ocl_vecadd,
    &kiln__bench_suite_ocl_events,
    &kiln__bench_suite_cuda,
    [SLOT_POOL] = NULL,
    &kiln__bench_suite_cache,
    &kiln__bench_suite_cache_cuda,
    &kiln__bench_suite_async,
    &kiln__bench_suite_async_ocl,
    &kiln__bench_suite_async_cuda,
    &kiln__bench_suite_streams,
    &kiln__bench_suite_streams_cuda,
    &kiln__bench_suite_dialect,
    &kiln__bench_suite_hybrid,
    &kiln__bench_suite_hybrid_cuda,
    [SLOT_GRAPH] = NULL,
    [SLOT_RING] = NULL,
};
#define SUITE_COUNT (sizeof suites / sizeof suites[0])
_Static_assert(SUITE_COUNT == SLOT_RING + 1, "a suite added after the ring slot: move SLOT_RING");

const kiln_bench_suite *const *kiln__bench_suites(size_t *count) {
  suites[SLOT_CPU] = kiln__bench_suite_cpu();
  suites[SLOT_POOL] = kiln__bench_suite_pool();
  suites[SLOT_GRAPH] = kiln__bench_suite_graph();
  suites[SLOT_RING] = kiln__bench_suite_ring();
  *count = SUITE_COUNT;
  return suites;
}

const kiln_bench_suite *kiln__bench_suite_find(const char *name) {
  if (strcmp(name, "cpu") == 0)
    return kiln__bench_suite_cpu();
  if (strcmp(name, "pool") == 0)
    return kiln__bench_suite_pool();
  if (strcmp(name, "graph") == 0)
    return kiln__bench_suite_graph();
  if (strcmp(name, "ring") == 0)
    return kiln__bench_suite_ring();
  for (size_t i = 1; i < SUITE_COUNT; i++)
    if (suites[i] && strcmp(suites[i]->name, name) == 0)
      return suites[i];
  return NULL;
}
