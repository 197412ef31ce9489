/* SPDX-License-Identifier: MIT */
/* The registry of built-in suites: one array, in `kiln bench list` order. A new suite
 * adds its file to bench/CMakeLists.txt and one line here. */
#include <string.h>

#include "suites.h"

static const kiln_bench_suite *const suites[] = {
    &kiln__bench_suite_cpu,        &kiln__bench_suite_ocl_mem, &kiln__bench_suite_ocl_vecadd,
    &kiln__bench_suite_ocl_events, &kiln__bench_suite_cuda,
};

const kiln_bench_suite *const *kiln__bench_suites(size_t *count) {
  *count = sizeof suites / sizeof suites[0];
  return suites;
}

const kiln_bench_suite *kiln__bench_suite_find(const char *name) {
  for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
    if (strcmp(suites[i]->name, name) == 0)
      return suites[i];
  return NULL;
}
