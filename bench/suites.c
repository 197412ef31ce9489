/* SPDX-License-Identifier: MIT */
/* The registry of built-in suites: one array, in `kiln bench list` order. A new suite
 * adds its file to bench/CMakeLists.txt and one line here. The cpu and graph suites'
 * cases depend on the machine (StarPU or not): their slots are filled when the registry is first
 * asked for it, so that `kiln bench run ocl_mem` never probes for StarPU. */
#include <string.h>

#include "suites.h"

static const kiln_bench_suite *suites[] = {
    NULL /* cpu */,
    &kiln__bench_suite_ocl_mem,
    &kiln__bench_suite_ocl_vecadd,
    &kiln__bench_suite_ocl_events,
    &kiln__bench_suite_cuda,
    NULL /* pool */,
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
    NULL /* graph: last */,
};
#define SUITE_COUNT (sizeof suites / sizeof suites[0])

const kiln_bench_suite *const *kiln__bench_suites(size_t *count) {
  suites[0] = kiln__bench_suite_cpu();
  suites[5] = kiln__bench_suite_pool();
  suites[SUITE_COUNT - 1] = kiln__bench_suite_graph();
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
  for (size_t i = 1; i < SUITE_COUNT; i++)
    if (suites[i] && strcmp(suites[i]->name, name) == 0)
      return suites[i];
  return NULL;
}
