/* SPDX-License-Identifier: MIT */
/* Suite `cache` (docs/cache.md): program builds through kiln's compile cache on the
 * OpenCL device (PoCL here). Each case is one build (or a build and a first launch)
 * per op, of the suites' vecadd:
 *   build_warm_disk   kiln with its cache warm and its in-process copies dropped before
 *                     each build, as a new process finds it (reads the directory,
 *                     clCreateProgramWithBinary) vs raw OpenCL's clBuildProgram of the
 *                     same source that PoCL serves from its own warm cache; goal >= 5.
 *   build_in_process  a second build in one process while the first program lives
 *                     (its native program shared: a hash and a lookup) vs the disk hit
 *                     (ref-disk-hit).
 *   first_launch_new_process  build + kernel + first launch + wait with the caches warm
 *                     (kiln's, and PoCL's work-group functions) vs a source never built
 *                     (ref-uncached: compile, store, work-group function).
 *   build_cold        a source never built before: kiln (compile + export + store) vs
 *                     raw OpenCL's clBuildProgram (PoCL compiles): what the cache costs.
 * Cold cases add an entry per sample to the cache directory (the LRU cap bounds it).
 * Suite `cache_cuda`: build_warm_disk on CUDA device 0 — kiln from its warm cache
 * (read, cuModuleLoadDataEx of the CUBIN) vs NVRTC compiling the source to CUBIN and
 * loading it (the cuda suite's raw baseline); goal >= 100. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, getpid */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "baseline_cuda.h"
#include "baseline_opencl_build.h"
#include "cache_suite.h"
#include "ref_cache.h"
#include "suites.h"

#define ITEMS 1024

kiln_status kiln__cache_build(kiln__cache_state *s, const char *unique) {
  char text[1024];
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.name = "cache-bench";
  d.source = kiln__suite_vecadd_source;
  if (unique) {
    snprintf(text, sizeof text, "/* kiln bench %s */\n%s", unique, kiln__suite_vecadd_source);
    d.source = text;
  }
  kiln_program p = NULL;
  kiln_status st = kiln_program_create(s->common.context, &d, &p);
  if (st == KILN_SUCCESS)
    st = kiln_program_destroy(p);
  return st;
}

kiln_status kiln__cache_first_launch(kiln__cache_state *s, const char *unique) {
  char text[1024];
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.name = "cache-bench";
  d.source = kiln__suite_vecadd_source;
  if (unique) {
    snprintf(text, sizeof text, "/* kiln bench %s */\n%s", unique, kiln__suite_vecadd_source);
    d.source = text;
  }
  kiln_program p = NULL;
  kiln_kernel k = NULL;
  kiln_status st = kiln_program_create(s->common.context, &d, &p);
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create(p, "vecadd", &k);
  if (st == KILN_SUCCESS)
    st = kiln_launch(s->common.stream, k, &s->common.range, s->common.args, s->common.arg_count);
  kiln_kernel_destroy(k);
  kiln_program_destroy(p);
  return st;
}

void kiln__cache_tag_init(kiln__cache_state *s) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  s->tag = (unsigned long long)ts.tv_sec * 1000003ull ^ (unsigned long long)ts.tv_nsec ^
           ((unsigned long long)getpid() << 32);
}

kiln_status kiln__cache_require_on(const char *what) {
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  if (kiln_cache_stats(&info) == KILN_SUCCESS && !info.enabled) {
    fprintf(stderr, "kiln bench: the compile cache is off (%s): %s measures it\n", info.reason,
            what);
    return KILN_ERROR_INVALID_STATE;
  }
  return KILN_SUCCESS;
}

static kiln_status cache_prepare(kiln__suite_state *common, const kiln_bench_env *env) {
  (void)env;
  kiln__cache_state *s = (kiln__cache_state *)common;
  kiln__cache_tag_init(s);
  kiln_status st = kiln__suite_vecadd(common, ITEMS);
  /* the caches warm: kiln's entry, and PoCL's work-group function of this range */
  if (st == KILN_SUCCESS)
    st = kiln__cache_first_launch(s, NULL);
  return st;
}

static int cache_setup(const kiln_bench_env *env, void **state) {
  kiln_status st = kiln__cache_require_on("the cache suite");
  if (st != KILN_SUCCESS)
    return st;
  return kiln__suite_setup(env, sizeof(kiln__cache_state), cache_prepare, state);
}

/* The same, with a program of the suite's vecadd alive in the context: what a second
 * build in the process finds. */
static kiln_status live_prepare(kiln__suite_state *common, const kiln_bench_env *env) {
  kiln_status st = cache_prepare(common, env);
  if (st == KILN_SUCCESS)
    st = kiln__suite_build(common, kiln__suite_vecadd_source, "cache-bench", "vecadd");
  return st;
}

static int cache_setup_live(const kiln_bench_env *env, void **state) {
  int rc = cache_setup(env, state);
  if (rc != KILN_SUCCESS)
    return rc;
  kiln__suite_teardown(*state);
  return kiln__suite_setup(env, sizeof(kiln__cache_state), live_prepare, state);
}

static int run_warm_disk(void *state, uint64_t iters) {
  return kiln__ref_cache_disk_hit(state, iters); /* the same work as the reference's */
}

static int run_in_process(void *state, uint64_t iters) {
  kiln__cache_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = kiln__cache_build(s, NULL);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static int run_first_launch(void *state, uint64_t iters) {
  kiln__cache_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_cache_drop_memory();
    kiln_status st = kiln__cache_first_launch(s, NULL);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static int run_cold(void *state, uint64_t iters) {
  return kiln__ref_cache_build_cold(state, iters); /* the same work as the dialect suite's ref */
}

static int raw_setup(const kiln_bench_env *env, void **state) {
  *state = NULL;
  void *dev = NULL;
  kiln_status st = kiln_device_get_native(env->device, KILN_NATIVE_CL_DEVICE, &dev);
  if (st != KILN_SUCCESS)
    return st;
  return bench_baseline_ocl_build_setup(dev, state);
}

static int raw_cuda_setup(const kiln_bench_env *env, void **state) {
  bench_cuda_args args;
  memset(&args, 0, sizeof args);
  *state = NULL;
  kiln_status st = kiln_device_get_native(env->device, KILN_NATIVE_CU_DEVICE, &args.device);
  if (st != KILN_SUCCESS)
    return st;
  args.compile = 1;
  return bench_baseline_cuda_setup(&args, state);
}

/* CUDA: the caches warm with one build (no buffers, no launch: kernel creation alone
 * proves the module loads). */
static kiln_status cuda_prepare(kiln__suite_state *common, const kiln_bench_env *env) {
  (void)env;
  return kiln__cache_build((kiln__cache_state *)common, NULL);
}

static int cache_cuda_setup(const kiln_bench_env *env, void **state) {
  kiln_status st = kiln__cache_require_on("the cache suite");
  if (st != KILN_SUCCESS)
    return st;
  return kiln__suite_setup(env, sizeof(kiln__cache_state), cuda_prepare, state);
}

static const kiln_bench_param p_vecadd[] = {{"kernel", "vecadd", 0}};

static const kiln_bench_case cases[] = {
    {
        .name = "build_warm_disk",
        .description = "a build as a new process finds it: kiln's cache warm on disk vs "
                       "PoCL's own warm cache (clBuildProgram from source)",
        .params = p_vecadd,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 5.0,
        .goal = "a build from kiln's cache >= 5x faster than from PoCL's",
        KILN__SUITE_SIDE(cache_setup, run_warm_disk),
        .baseline_name = "raw-opencl",
        .baseline_setup_env = raw_setup,
        .baseline_run = bench_baseline_ocl_build_warm,
        .baseline_teardown = bench_baseline_ocl_build_teardown,
    },
    {
        .name = "build_in_process",
        .description = "a second build in one process while the first program lives "
                       "(shared: hash + lookup) vs a build from the directory",
        .params = p_vecadd,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        KILN__SUITE_SIDE(cache_setup_live, run_in_process),
        .baseline_name = "ref-disk-hit",
        .baseline_setup_env = cache_setup,
        .baseline_run = kiln__ref_cache_disk_hit,
        .baseline_teardown = kiln__suite_teardown,
    },
    {
        .name = "first_launch_new_process",
        .description = "build + kernel + first launch + wait with the caches warm (kiln's "
                       "and PoCL's work-group functions) vs a source never built",
        .params = p_vecadd,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        KILN__SUITE_SIDE(cache_setup, run_first_launch),
        .baseline_name = "ref-uncached",
        .baseline_setup_env = cache_setup,
        .baseline_run = kiln__ref_cache_first_launch_uncached,
        .baseline_teardown = kiln__suite_teardown,
    },
    {
        .name = "build_cold",
        .description = "a source never built before: kiln (compile, export, store) vs raw "
                       "clBuildProgram (PoCL compiles)",
        .params = p_vecadd,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        KILN__SUITE_SIDE(cache_setup, run_cold),
        .baseline_name = "raw-opencl",
        .baseline_setup_env = raw_setup,
        .baseline_run = bench_baseline_ocl_build_cold,
        .baseline_teardown = bench_baseline_ocl_build_teardown,
    },
};

const kiln_bench_suite kiln__bench_suite_cache = {
    .name = "cache",
    .description = "program builds through kiln's compile cache vs PoCL's own cache",
    .backend = KILN_BACKEND_OPENCL,
    .host_only = 0,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};

static const kiln_bench_case cuda_cases[] = {
    {
        .name = "build_warm_disk",
        .description = "a build as a new process finds it: kiln's cache warm on disk (CUBIN "
                       "read and loaded) vs NVRTC compiling to CUBIN and loading it",
        .params = p_vecadd,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 100.0,
        .goal = "a build from kiln's cache >= 100x faster than NVRTC's compile",
        KILN__SUITE_SIDE(cache_cuda_setup, run_warm_disk),
        .baseline_name = "raw-cuda",
        .baseline_setup_env = raw_cuda_setup,
        .baseline_run = bench_baseline_cuda_compile,
        .baseline_teardown = bench_baseline_cuda_teardown,
    },
};

const kiln_bench_suite kiln__bench_suite_cache_cuda = {
    .name = "cache_cuda",
    .description = "program builds through kiln's compile cache vs NVRTC",
    .backend = KILN_BACKEND_CUDA,
    .host_only = 0,
    .cases = cuda_cases,
    .case_count = sizeof cuda_cases / sizeof cuda_cases[0],
};
