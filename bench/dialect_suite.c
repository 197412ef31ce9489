/* SPDX-License-Identifier: MIT */
/* Suite `dialect`: kiln-dialect kernels compiled for the CPU backend (host compiler ->
 * shared object; docs/kernels.md, "The CPU backend") against the same kernels through
 * raw OpenCL on PoCL's CPU device, one launch and its wait per op, in one process on
 * one machine. cpu_vecadd_16M (kiln's default local size on both sides: kiln's own
 * choice on cpu, the raw side's as kiln picks for OpenCL) and cpu_reduce_16M (a tree
 * reduction with barriers and local memory, groups of 256 on both) carry the goal
 * >= 0.9; cpu_reduce_static_16M (the same with a KILN_LOCAL_ARRAY and a helper reading
 * the group id), cpu_vecadd_helper_16M (vecadd with its index from a helper) and
 * cpu_atomic_histogram (16M values into 256 bins with global atomics, the
 * bins cleared first) are reported, and so is cpu_build_cached (a build from the compile
 * cache's directory vs a never-built source). Each side checks one run's result at
 * set-up. autotune_vecadd_4M runs on the OpenCL device: vecadd with the size autotuning
 * chose vs ref-heuristic, kiln's heuristic's (reported). The
 * suite is an OpenCL suite for `kiln bench` (its device, named in the JSON, is the raw
 * side's; without OpenCL it is skipped); the kiln side always runs on cpu:0. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdlib.h>
#include <string.h>

#include "baseline_dialect.h"
#include "cache_suite.h"
#include "ref_autotune.h"
#include "ref_cache.h"
#include "baseline_opencl.h"
#include "suite_common.h"
#include "suites.h"

#define ITEMS ((size_t)16 << 20)
#define REDUCE_LOCAL 256u
#define NBINS 256u

static const char reduce_source[] =
    "KILN_KERNEL void reduce_sum(KILN_GLOBAL const float *in, KILN_GLOBAL float *partial,\n"
    "                            KILN_LOCAL float *scratch, unsigned int n) {\n"
    "  size_t lid = kiln_local_id(0);\n"
    "  size_t gid = kiln_global_id(0);\n"
    "  scratch[lid] = gid < n ? in[gid] : 0.0f;\n"
    "  kiln_barrier();\n"
    "  for (size_t s = kiln_local_size(0) / 2; s > 0; s /= 2) {\n"
    "    if (lid < s) scratch[lid] += scratch[lid + s];\n"
    "    kiln_barrier();\n"
    "  }\n"
    "  if (lid == 0) partial[kiln_group_id(0)] = scratch[0];\n"
    "}\n";
/* The same with a group-local array (the CPU backend's group storage) and the ids read
 * by a helper function (through libkiln's current work-item) in the last region. */
static const char reduce_static_source[] =
    "KILN_INLINE size_t group_of(void) { return kiln_group_id(0); }\n"
    "KILN_KERNEL void reduce_sum_static(KILN_GLOBAL const float *in, KILN_GLOBAL float *partial,\n"
    "                                   unsigned int n) {\n"
    "  KILN_LOCAL_ARRAY float scratch[256];\n"
    "  size_t lid = kiln_local_id(0);\n"
    "  size_t gid = kiln_global_id(0);\n"
    "  scratch[lid] = gid < n ? in[gid] : 0.0f;\n"
    "  kiln_barrier();\n"
    "  for (size_t s = kiln_local_size(0) / 2; s > 0; s /= 2) {\n"
    "    if (lid < s) scratch[lid] += scratch[lid + s];\n"
    "    kiln_barrier();\n"
    "  }\n"
    "  if (lid == 0) partial[group_of()] = scratch[0];\n"
    "}\n";
/* vecadd with the index from a helper function: every work-item asks libkiln for its
 * record (the group loop's path for helpers). */
static const char vecadd_helper_source[] =
    "KILN_INLINE size_t item(void) { return kiln_global_id(0); }\n"
    "KILN_KERNEL void vecadd(KILN_GLOBAL const float *a, KILN_GLOBAL const float *b,\n"
    "                        KILN_GLOBAL float *c, int n) {\n"
    "  size_t i = item();\n"
    "  if (i < (size_t)n) c[i] = a[i] + b[i];\n"
    "}\n";
static const char histogram_source[] =
    "KILN_KERNEL void histogram(KILN_GLOBAL const uint *in, KILN_GLOBAL uint *bins, uint nbins,\n"
    "                           uint n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < n) kiln_atomic_inc(&bins[in[i] % nbins]);\n"
    "}\n";

/* The suite runs on an OpenCL device (PoCL's CPU device here: `kiln bench` skips it
 * where there is none, as the other OpenCL suites), which the raw side uses; the kiln
 * side runs on cpu:0, the same processor. */
static int pocl_device(const kiln_bench_env *env, void **device) {
  return kiln_device_get_native(env->device, KILN_NATIVE_CL_DEVICE, device);
}

static int cpu_setup(const kiln_bench_env *env, size_t size, kiln__suite_prepare_fn prepare,
                     void **state) {
  kiln_bench_env cpu = *env;
  kiln_status st = kiln_device_find(KILN_BACKEND_CPU, 0, &cpu.device);
  if (st != KILN_SUCCESS) {
    *state = NULL;
    return st;
  }
  return kiln__suite_setup(&cpu, size, prepare, state);
}

/* ---- vecadd (and its form with a helper) */
static kiln_status vecadd_of(kiln__suite_state *s, const char *source, const char *name) {
  kiln_status st = kiln__suite_build(s, source, name, "vecadd");
  if (st == KILN_SUCCESS)
    st = kiln__suite_vecadd(s, ITEMS);
  float *h = st == KILN_SUCCESS ? malloc(ITEMS * sizeof *h) : NULL;
  if (st == KILN_SUCCESS && !h)
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; st == KILN_SUCCESS && i < ITEMS; i++)
    h[i] = (float)(i & 1023u);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_write(s->a, 0, ITEMS * sizeof *h, h);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_write(s->b, 0, ITEMS * sizeof *h, h);
  if (st == KILN_SUCCESS)
    st = kiln__suite_launch_wait(s, 1) == 0 ? KILN_SUCCESS : KILN_ERROR_BACKEND;
  if (st == KILN_SUCCESS)
    st = kiln_buffer_read(s->c, 0, ITEMS * sizeof *h, h);
  for (size_t i = 0; st == KILN_SUCCESS && i < ITEMS; i++)
    if (h[i] != 2.0f * (float)(i & 1023u))
      st = KILN_ERROR_BACKEND;
  free(h);
  return st;
}

static kiln_status vecadd_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  (void)env;
  return vecadd_of(s, kiln__suite_vecadd_source, "dialect_vecadd");
}

static kiln_status vecadd_helper_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  (void)env;
  return vecadd_of(s, vecadd_helper_source, "dialect_vecadd_helper");
}

static int vecadd_setup(const kiln_bench_env *env, void **state) {
  return cpu_setup(env, sizeof(kiln__suite_state), vecadd_prepare, state);
}

static int vecadd_helper_setup(const kiln_bench_env *env, void **state) {
  return cpu_setup(env, sizeof(kiln__suite_state), vecadd_helper_prepare, state);
}

static int raw_vecadd_setup(const kiln_bench_env *env, void **state) {
  *state = NULL;
  bench_ocl_args args = {0};
  args.items = ITEMS;
  args.kernel = BENCH_OCL_KERNEL_VECADD;
  int rc = pocl_device(env, &args.device);
  return rc ? rc : bench_baseline_ocl_setup(&args, state);
}

/* ---- reduce and histogram: input in a, output in b */
static kiln_status fill_input(kiln__suite_state *s, int histogram, uint32_t *n) {
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = ITEMS * 4;
  kiln_status st = kiln_buffer_create(s->context, &d, &s->a);
  d.bytes = histogram ? NBINS * 4 : ITEMS / REDUCE_LOCAL * 4;
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(s->context, &d, &s->b);
  uint32_t *h = st == KILN_SUCCESS ? malloc(ITEMS * 4) : NULL;
  if (st == KILN_SUCCESS && !h)
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; st == KILN_SUCCESS && i < ITEMS; i++) {
    float f = (float)(i % 17u) * 0.25f;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    h[i] = histogram ? (uint32_t)((i * 2654435761u) >> 7) : bits;
  }
  if (st == KILN_SUCCESS)
    st = kiln_buffer_write(s->a, 0, ITEMS * 4, h);
  free(h);
  *n = (uint32_t)ITEMS;
  s->n = (int)ITEMS;
  s->args[0] = kiln_arg_buffer(s->a);
  s->args[1] = kiln_arg_buffer(s->b);
  return st;
}

/* The output summed on the host against what it must be. */
static kiln_status check_output(kiln__suite_state *s, size_t count, double want, int integers) {
  uint32_t *h = malloc(count * 4);
  if (!h)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  kiln_status st = kiln_buffer_read(s->b, 0, count * 4, h);
  double got = 0;
  for (size_t i = 0; i < count; i++) {
    float f;
    memcpy(&f, &h[i], sizeof f);
    got += integers ? (double)h[i] : (double)f;
  }
  free(h);
  return st == KILN_SUCCESS && got != want ? KILN_ERROR_BACKEND : st;
}

typedef struct dialect_state {
  kiln__suite_state s; /* first */
  uint32_t n, nbins;
} dialect_state;

static kiln_status reduce_of(kiln__suite_state *s, int with_array) {
  dialect_state *d = (dialect_state *)(void *)s;
  kiln_status st = with_array ? kiln__suite_build(s, reduce_static_source, "dialect_reduce_static",
                                                  "reduce_sum_static")
                              : kiln__suite_build(s, reduce_source, "dialect_reduce", "reduce_sum");
  if (st == KILN_SUCCESS)
    st = fill_input(s, 0, &d->n);
  if (with_array) {
    s->args[2] = kiln_arg_scalar(&d->n, sizeof d->n);
    s->arg_count = 3;
  } else {
    s->args[2] = kiln_arg_local(REDUCE_LOCAL * sizeof(float));
    s->args[3] = kiln_arg_scalar(&d->n, sizeof d->n);
    s->arg_count = 4;
  }
  s->range = kiln_range_1d(ITEMS);
  s->range.local[0] = REDUCE_LOCAL;
  if (st == KILN_SUCCESS)
    st = kiln__suite_launch_wait(s, 1) == 0 ? KILN_SUCCESS : KILN_ERROR_BACKEND;
  double want = 0;
  for (size_t i = 0; i < ITEMS; i++)
    want += (double)(i % 17u) * 0.25;
  return st == KILN_SUCCESS ? check_output(s, ITEMS / REDUCE_LOCAL, want, 0) : st;
}

static kiln_status reduce_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  (void)env;
  return reduce_of(s, 0);
}

static kiln_status reduce_static_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  (void)env;
  return reduce_of(s, 1);
}

static int reduce_setup(const kiln_bench_env *env, void **state) {
  return cpu_setup(env, sizeof(dialect_state), reduce_prepare, state);
}

static int reduce_static_setup(const kiln_bench_env *env, void **state) {
  return cpu_setup(env, sizeof(dialect_state), reduce_static_prepare, state);
}

static int histogram_run(void *state, uint64_t iters) {
  kiln__suite_state *s = state;
  uint32_t zero = 0;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = kiln_buffer_fill(s->b, 0, NBINS * 4, &zero, sizeof zero);
    if (st == KILN_SUCCESS)
      st = kiln__suite_launch_wait(s, 1) == 0 ? KILN_SUCCESS : KILN_ERROR_BACKEND;
    if (st != KILN_SUCCESS)
      return st;
  }
  return 0;
}

static kiln_status histogram_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  (void)env;
  dialect_state *d = (dialect_state *)(void *)s;
  kiln_status st = kiln__suite_build(s, histogram_source, "dialect_histogram", "histogram");
  if (st == KILN_SUCCESS)
    st = fill_input(s, 1, &d->n);
  d->nbins = NBINS;
  s->args[2] = kiln_arg_scalar(&d->nbins, sizeof d->nbins);
  s->args[3] = kiln_arg_scalar(&d->n, sizeof d->n);
  s->arg_count = 4;
  s->range = kiln_range_1d(ITEMS);
  if (st == KILN_SUCCESS)
    st = histogram_run(s, 1) == 0 ? KILN_SUCCESS : KILN_ERROR_BACKEND;
  return st == KILN_SUCCESS ? check_output(s, NBINS, (double)ITEMS, 1) : st;
}

static int histogram_setup(const kiln_bench_env *env, void **state) {
  return cpu_setup(env, sizeof(dialect_state), histogram_prepare, state);
}

static int raw_setup(const kiln_bench_env *env, int kernel, size_t local, void **state) {
  *state = NULL;
  bench_dialect_args args = {0};
  args.kernel = kernel;
  args.items = ITEMS;
  args.local = local;
  int rc = pocl_device(env, &args.device);
  return rc ? rc : bench_baseline_dialect_setup(&args, state);
}
static int raw_reduce_setup(const kiln_bench_env *env, void **state) {
  return raw_setup(env, BENCH_DIALECT_REDUCE, REDUCE_LOCAL, state);
}
static int raw_reduce_static_setup(const kiln_bench_env *env, void **state) {
  return raw_setup(env, BENCH_DIALECT_REDUCE_STATIC, REDUCE_LOCAL, state);
}
static int raw_histogram_setup(const kiln_bench_env *env, void **state) {
  return raw_setup(env, BENCH_DIALECT_HISTOGRAM, 256, state);
}

/* cpu_build_cached: a dialect program built on the CPU backend as a new process finds
 * it — the compile cache's shared object read from the directory and dlopen'ed, no
 * compiler run — vs a source never built (the host compiler runs; `ref-cold`). */
static kiln_status build_prepare(kiln__suite_state *common, const kiln_bench_env *env) {
  (void)env;
  kiln__cache_state *s = (kiln__cache_state *)common;
  kiln__cache_tag_init(s);
  return kiln__cache_build(s, NULL); /* stores the entry the kiln side then reads */
}

static int build_setup(const kiln_bench_env *env, void **state) {
  *state = NULL;
  kiln_status st = kiln__cache_require_on("cpu_build_cached");
  return st != KILN_SUCCESS ? st : cpu_setup(env, sizeof(kiln__cache_state), build_prepare, state);
}

/* ---- autotune: vecadd on the suite's device (PoCL) with the local size autotuning
 * chose (KILN_AUTOTUNE=1 while the class's entry is made, tuned to convergence here at
 * set-up, or taken from the compile cache where an earlier run stored it), fixed as the
 * caller's, vs ref-heuristic (ref_autotune.c). Report only. */
static kiln_status autotune_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  (void)env;
  kiln_status st = kiln__suite_build(s, kiln__suite_vecadd_source, "dialect_autotune", "vecadd");
  if (st == KILN_SUCCESS)
    st = kiln__suite_vecadd(s, KILN__AUTOTUNE_ITEMS);
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  const char *was = getenv("KILN_AUTOTUNE");
  setenv("KILN_AUTOTUNE", "1", 1); /* read when the class's entry is made, below */
  if (st == KILN_SUCCESS)
    st = kiln_kernel_get_launch_config(s->kernel, &s->range, &c);
  if (!was)
    unsetenv("KILN_AUTOTUNE");
  for (int i = 0; st == KILN_SUCCESS && c.origin == KILN_LAUNCH_ORIGIN_TUNING && i < 64; i++) {
    st = kiln_launch(s->stream, s->kernel, &s->range, s->args, s->arg_count);
    if (st == KILN_SUCCESS)
      st = kiln_kernel_get_launch_config(s->kernel, &s->range, &c);
  }
  if (st == KILN_SUCCESS && c.origin != KILN_LAUNCH_ORIGIN_AUTOTUNED &&
      c.origin != KILN_LAUNCH_ORIGIN_STORED)
    st = KILN_ERROR_INVALID_STATE;
  if (st == KILN_SUCCESS)
    s->range.local[0] = c.local[0];
  return st;
}

static int autotune_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(kiln__suite_state), autotune_prepare, state);
}

#define RAW_DIALECT(SETUP)                                           \
  .baseline_name = "raw-opencl-pocl", .baseline_setup_env = (SETUP), \
  .baseline_run = bench_baseline_dialect_run, .baseline_teardown = bench_baseline_dialect_teardown

static const kiln_bench_param p_items[] = {{"items", NULL, (int64_t)ITEMS}};

static const kiln_bench_case cases[] = {
    {
        .name = "cpu_vecadd_16M",
        .description = "c = a + b over 16M floats compiled for the CPU backend vs raw OpenCL on "
                       "PoCL: one launch + its wait",
        .params = p_items,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 0.9,
        .goal = "launch + wait >= 0.9x PoCL's speed",
        KILN__SUITE_SIDE(vecadd_setup, kiln__suite_launch_wait),
        .baseline_name = "raw-opencl-pocl",
        .baseline_setup_env = raw_vecadd_setup,
        .baseline_run = bench_baseline_ocl_vecadd,
        .baseline_teardown = bench_baseline_ocl_teardown,
    },
    {
        .name = "cpu_reduce_16M",
        .description = "tree reduction of 16M floats in groups of 256 (barriers, local memory) "
                       "on the CPU backend vs raw OpenCL on PoCL",
        .params = p_items,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 0.9,
        .goal = "launch + wait >= 0.9x PoCL's speed",
        KILN__SUITE_SIDE(reduce_setup, kiln__suite_launch_wait),
        RAW_DIALECT(raw_reduce_setup),
    },
    {
        .name = "cpu_reduce_static_16M",
        .description = "cpu_reduce_16M with its local memory declared in the kernel "
                       "(KILN_LOCAL_ARRAY / __local float[256]) and a helper function reading "
                       "the group id, on the CPU backend vs raw OpenCL on PoCL",
        .params = p_items,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        KILN__SUITE_SIDE(reduce_static_setup, kiln__suite_launch_wait),
        RAW_DIALECT(raw_reduce_static_setup),
    },
    {
        .name = "cpu_vecadd_helper_16M",
        .description = "cpu_vecadd_16M with the index from a helper function (kiln_global_id "
                       "outside the kernel body) vs raw OpenCL on PoCL (the plain kernel)",
        .params = p_items,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        KILN__SUITE_SIDE(vecadd_helper_setup, kiln__suite_launch_wait),
        .baseline_name = "raw-opencl-pocl",
        .baseline_setup_env = raw_vecadd_setup,
        .baseline_run = bench_baseline_ocl_vecadd,
        .baseline_teardown = bench_baseline_ocl_teardown,
    },
    {
        .name = "cpu_atomic_histogram",
        .description = "16M values into 256 bins with global atomic_inc (bins cleared first) on "
                       "the CPU backend vs raw OpenCL on PoCL",
        .params = p_items,
        .param_count = 1,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        KILN__SUITE_SIDE(histogram_setup, histogram_run),
        RAW_DIALECT(raw_histogram_setup),
    },
    {
        .name = "autotune_vecadd_4M",
        .description = "c = a + b over 4M floats on the OpenCL device with the local size "
                       "kiln's autotuning chose vs the one its heuristic picks: one launch + "
                       "its wait",
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        KILN__SUITE_SIDE(autotune_setup, kiln__suite_launch_wait),
        .baseline_name = "ref-heuristic",
        .baseline_setup_env = kiln__ref_autotune_heuristic_setup,
        .baseline_run = kiln__suite_launch_wait,
        .baseline_teardown = kiln__suite_teardown,
    },
    {
        .name = "cpu_build_cached",
        .description = "a dialect program built on the CPU backend from the compile cache's "
                       "directory (shared object loaded, no compiler run) vs a source never "
                       "built (the host compiler runs)",
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        KILN__SUITE_SIDE(build_setup, kiln__ref_cache_disk_hit),
        .baseline_name = "ref-cold",
        .baseline_setup_env = build_setup,
        .baseline_run = kiln__ref_cache_build_cold,
        .baseline_teardown = kiln__suite_teardown,
    },
};

const kiln_bench_suite kiln__bench_suite_dialect = {
    .name = "dialect",
    .description = "kiln-dialect kernels on the CPU backend (cpu:0) vs the same kernels on the "
                   "OpenCL device (PoCL's CPU device; the results name it)",
    .backend = KILN_BACKEND_OPENCL,
    .host_only = 0,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};
