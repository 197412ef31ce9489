/* SPDX-License-Identifier: MIT */
/* The pool suite: the device pool (include/kiln/pool.h) against the backend's own
 * allocation call in the same run — posix_memalign + free on cpu and mock, clCreateBuffer
 * + clReleaseMemObject on OpenCL, cuMemAlloc + cuMemFree through the driver table on
 * CUDA (one baseline name, "raw-alloc", whose call follows the device) — and against
 * cuMemAllocAsync + cuMemFreeAsync (CUDA device 0, where there is one); two threads
 * sharing a pool (reported, no baseline); and the fragmentation workload on the mock
 * backend with unbacked slabs against a plain best-fit allocator (bench/baseline_alloc.c),
 * in unit "x": peak reserved / peak in use, lower is better. The workload is
 * deterministic, so each side runs it once at set-up and every sample reports that
 * figure. The list is made at the first call: the CUDA case only where a CUDA device
 * exists, the fragmentation case only where the mock backend is enabled (KILN_MOCK=1);
 * what is left out is said on stderr. Goals: >= 0.5 on cpu, >= 10 on OpenCL, >= 100 on
 * CUDA (set per device at set-up), >= 1 for the stream-ordered and fragmentation cases. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_cuda.h"
#include "baseline_opencl.h"
#include "baselines.h"
#include "ref_managed.h"
#include "kiln.h"
#include "kiln/bench.h"
#include "suite_common.h"
#include "suites.h"

typedef struct pool_state {
  kiln__suite_state common; /* first: the context and stream */
  kiln_pool pool;
  size_t bytes;
  /* threads */
  bench_fanout *team;
  kiln_stream streams[2];
  unsigned pairs;
  _Atomic int status;
  /* fragmentation */
  double overhead;
} pool_state;

static kiln_bench_case cases[10];
static size_t case_count;

/* ---- alloc_free_* ---- */
static size_t case_bytes(const kiln_bench_env *env) {
  return (size_t)kiln_bench_env_num(env, "bytes", 4096);
}

static kiln_status pool_prepare(kiln__suite_state *c, const kiln_bench_env *env) {
  pool_state *s = (pool_state *)c;
  s->bytes = case_bytes(env);
  return kiln_pool_create(c->context, NULL, &s->pool);
}

/* The goal of alloc_free_* follows the device's backend (the goals). */
static void set_goal(const kiln_bench_env *env) {
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  if (kiln_device_get_props(env->device, &p) != KILN_SUCCESS)
    return;
  double goal = p.backend == KILN_BACKEND_OPENCL ? 10.0
                : p.backend == KILN_BACKEND_CUDA ? 100.0
                                                 : 0.5;
  for (size_t i = 0; i < case_count; i++) {
    if (strncmp(cases[i].name, "alloc_free_", 11) == 0 && strchr(cases[i].name + 11, '_') == NULL)
      cases[i].goal_ratio = goal;
    if (strcmp(cases[i].name, "host_alloc_free_4KiB") == 0) /* a goal on CUDA only */
      cases[i].goal_ratio = p.backend == KILN_BACKEND_CUDA ? 100.0 : 0.0;
  }
}

static int pool_setup(const kiln_bench_env *env, void **state) {
  set_goal(env);
  return kiln__suite_setup(env, sizeof(pool_state), pool_prepare, state);
}

static int pool_alloc_free(void *state, uint64_t iters) {
  pool_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_buffer b;
    kiln_status st = kiln_pool_alloc(s->pool, s->common.stream, s->bytes, &b);
    if (st == KILN_SUCCESS)
      st = kiln_pool_free(b, s->common.stream);
    if (st != KILN_SUCCESS)
      return st;
  }
  return 0;
}

static void pool_teardown(void *state) {
  pool_state *s = state;
  if (s == NULL)
    return;
  bench_fanout_destroy(s->team);
  kiln_pool_destroy(s->pool);
  kiln_stream_destroy(s->streams[0]);
  kiln_stream_destroy(s->streams[1]);
  kiln__suite_teardown(s);
}

/* The raw allocation of the device's backend, behind one baseline name. */
typedef struct raw_state {
  kiln_backend_kind backend;
  void *inner;
} raw_state;

static int raw_setup_env(const kiln_bench_env *env, void **state) {
  *state = NULL;
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  kiln_status st = kiln_device_get_props(env->device, &p);
  if (st != KILN_SUCCESS)
    return st;
  raw_state *r = calloc(1, sizeof *r);
  if (r == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  r->backend = p.backend;
  size_t bytes = case_bytes(env);
  int rc;
  if (p.backend == KILN_BACKEND_OPENCL) {
    bench_ocl_args a;
    memset(&a, 0, sizeof a);
    a.bytes = bytes;
    rc = kiln__suite_ocl_raw_setup(env, &a, &r->inner);
  } else if (p.backend == KILN_BACKEND_CUDA) {
    bench_cuda_args a;
    memset(&a, 0, sizeof a);
    a.bytes = bytes;
    rc = kiln_device_get_native(env->device, KILN_NATIVE_CU_DEVICE, &a.device);
    if (rc == 0)
      rc = bench_baseline_cuda_setup(&a, &r->inner);
  } else {
    rc = bench_baseline_host_alloc_setup(&bytes, &r->inner);
  }
  if (rc != 0) {
    free(r);
    return rc;
  }
  *state = r;
  return 0;
}

static int raw_alloc_free(void *state, uint64_t iters) {
  raw_state *r = state;
  if (r->backend == KILN_BACKEND_OPENCL)
    return bench_baseline_ocl_alloc_free(r->inner, iters);
  if (r->backend == KILN_BACKEND_CUDA)
    return bench_baseline_cuda_alloc_free(r->inner, iters);
  return bench_baseline_host_alloc_free(r->inner, iters);
}

static void raw_teardown(void *state) {
  raw_state *r = state;
  if (r == NULL)
    return;
  if (r->backend == KILN_BACKEND_OPENCL)
    bench_baseline_ocl_teardown(r->inner);
  else if (r->backend == KILN_BACKEND_CUDA)
    bench_baseline_cuda_teardown(r->inner);
  else
    bench_baseline_host_alloc_teardown(r->inner);
  free(r);
}

/* ---- host_alloc_free_4KiB: the pinned host pool against the backend's pinned call ---- */
static kiln_status host_prepare(kiln__suite_state *c, const kiln_bench_env *env) {
  pool_state *s = (pool_state *)c;
  s->bytes = case_bytes(env);
  void *p = NULL; /* the pool's slab exists before the timing, as the device pool's */
  kiln_status st = kiln_host_alloc(c->context, s->bytes, &p);
  return st == KILN_SUCCESS ? kiln_host_free(c->context, p) : st;
}

static int host_setup(const kiln_bench_env *env, void **state) {
  set_goal(env);
  return kiln__suite_setup(env, sizeof(pool_state), host_prepare, state);
}

static int host_alloc_free(void *state, uint64_t iters) {
  pool_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    void *p = NULL;
    kiln_status st = kiln_host_alloc(s->common.context, s->bytes, &p);
    if (st == KILN_SUCCESS)
      st = kiln_host_free(s->common.context, p);
    if (st != KILN_SUCCESS)
      return st;
  }
  return 0;
}

static int raw_host_alloc_free(void *state, uint64_t iters) {
  raw_state *r = state;
  if (r->backend == KILN_BACKEND_OPENCL)
    return bench_baseline_ocl_host_alloc_free(r->inner, iters);
  if (r->backend == KILN_BACKEND_CUDA)
    return bench_baseline_cuda_host_alloc_free(r->inner, iters);
  return bench_baseline_page_alloc_free(r->inner, iters);
}

/* ---- managed_roundtrip: a managed buffer against the explicit calls (bench/ref_managed.c,
 * the reference baseline) ---- */
typedef struct mr_state {
  kiln__suite_state common; /* first: the context, stream, kernel, vecadd's a, b, c, args */
  kiln_buffer ma, mc;       /* managed a and c, in vecadd's arguments */
  float *source;
} mr_state;

static kiln_status mr_prepare(kiln__suite_state *c, const kiln_bench_env *env) {
  (void)env;
  mr_state *s = (mr_state *)c;
  size_t bytes = BENCH_MANAGED_ITEMS * sizeof(float);
  kiln_status st = kiln__suite_vecadd_kernel(c, "pool_managed");
  if (st == KILN_SUCCESS)
    st = kiln__suite_vecadd(c, BENCH_MANAGED_ITEMS);
  s->source = malloc(bytes);
  if (st == KILN_SUCCESS && !s->source)
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; st == KILN_SUCCESS && i < BENCH_MANAGED_ITEMS; i++)
    s->source[i] = (float)i;
  float one = 1.0f;
  if (st == KILN_SUCCESS)
    st = kiln_buffer_fill(c->b, 0, bytes, &one, sizeof one);
  if (st == KILN_SUCCESS)
    st = kiln_managed_create(c->context, bytes, &s->ma);
  if (st == KILN_SUCCESS)
    st = kiln_managed_create(c->context, bytes, &s->mc);
  c->args[0] = kiln_arg_buffer(s->ma);
  c->args[2] = kiln_arg_buffer(s->mc);
  return st;
}

static int mr_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(mr_state), mr_prepare, state);
}

static void mr_teardown(void *state) {
  mr_state *s = state;
  if (s == NULL)
    return;
  kiln_buffer_destroy(s->ma);
  kiln_buffer_destroy(s->mc);
  free(s->source);
  kiln__suite_teardown(s);
}

/* The host makes the input in place, a launch, the host reads the output in place. */
static int mr_managed(void *state, uint64_t iters) {
  mr_state *s = state;
  size_t bytes = BENCH_MANAGED_ITEMS * sizeof(float);
  for (uint64_t i = 0; i < iters; i++) {
    float *p = NULL;
    kiln_pending t = KILN_PENDING_INIT;
    kiln_status st = kiln_managed_acquire(s->ma, KILN_PARAM_BUFFER_WRITE, (void **)&p);
    if (st != KILN_SUCCESS)
      return st;
    memcpy(p, s->source, bytes);
    p[0] = (float)(i & 1023u);
    if ((st = kiln_managed_release(s->ma)) != KILN_SUCCESS ||
        (st = kiln_launch_async(s->common.stream, s->common.kernel, &s->common.range,
                                s->common.args, s->common.arg_count, &t)) != KILN_SUCCESS ||
        (st = kiln_pending_release(&t)) != KILN_SUCCESS ||
        (st = kiln_managed_acquire(s->mc, KILN_PARAM_BUFFER_READ, (void **)&p)) != KILN_SUCCESS)
      return st;
    int bad = bench_ref_managed_check(p, i);
    if ((st = kiln_managed_release(s->mc)) != KILN_SUCCESS)
      return st;
    if (bad)
      return bad;
  }
  return 0;
}

/* ---- alloc_free_4KiB_2threads ---- */
#define THREAD_PAIRS 500u

static int thread_share(void *ctx, unsigned thread) {
  pool_state *s = ctx;
  for (unsigned i = 0; i < s->pairs; i++) {
    kiln_buffer b;
    kiln_status st = kiln_pool_alloc(s->pool, s->streams[thread], s->bytes, &b);
    if (st == KILN_SUCCESS)
      st = kiln_pool_free(b, s->streams[thread]);
    if (st != KILN_SUCCESS) {
      atomic_store(&s->status, (int)st);
      return st;
    }
  }
  return 0;
}

static kiln_status threads_prepare(kiln__suite_state *c, const kiln_bench_env *env) {
  pool_state *s = (pool_state *)c;
  kiln_status st = pool_prepare(c, env);
  for (int i = 0; i < 2 && st == KILN_SUCCESS; i++)
    st = kiln_stream_create(c->context, NULL, &s->streams[i]);
  s->pairs = THREAD_PAIRS;
  if (st == KILN_SUCCESS && bench_fanout_create(2, thread_share, s, &s->team) != 0)
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
  return st;
}

static int threads_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(pool_state), threads_prepare, state);
}

static int threads_run(void *state, uint64_t iters) {
  pool_state *s = state;
  for (uint64_t i = 0; i < iters; i++)
    if (bench_fanout_run(s->team) != 0)
      return atomic_load(&s->status) ? atomic_load(&s->status) : KILN_ERROR_BACKEND;
  return 0;
}

/* ---- alloc_free_4KiB_stream_ordered (CUDA device 0) ---- */
static int cuda_pool_setup(const kiln_bench_env *env, void **state) {
  kiln_bench_env e = *env;
  kiln_status st = kiln_device_find(KILN_BACKEND_CUDA, 0, &e.device);
  if (st != KILN_SUCCESS)
    return st;
  return kiln__suite_setup(&e, sizeof(pool_state), pool_prepare, state);
}

static int cuda_async_setup_env(const kiln_bench_env *env, void **state) {
  bench_cuda_args a;
  memset(&a, 0, sizeof a);
  a.bytes = case_bytes(env);
  kiln_device d = NULL;
  kiln_status st = kiln_device_find(KILN_BACKEND_CUDA, 0, &d);
  if (st == KILN_SUCCESS)
    st = kiln_device_get_native(d, KILN_NATIVE_CU_DEVICE, &a.device);
  if (st != KILN_SUCCESS)
    return st;
  return bench_baseline_cuda_setup(&a, state);
}

/* ---- fragmentation_1M ---- */
static const bench_frag_params frag_params = {
    1000000,           /* ops */
    0x5EED5EEDull,     /* seed */
    256,               /* min_bytes */
    (size_t)64 << 20,  /* max_bytes */
    (uint64_t)2 << 30, /* max_live_bytes */
    4096,              /* max_live */
    256,               /* granularity */
};

typedef struct frag_kiln {
  kiln_pool pool;
  kiln_stream stream;
} frag_kiln;

static int frag_alloc(void *ctx, size_t bytes, void **handle) {
  frag_kiln *f = ctx;
  kiln_buffer b = NULL;
  kiln_status st = kiln_pool_alloc(f->pool, f->stream, bytes, &b);
  *handle = b;
  return st;
}

static int frag_free(void *ctx, void *handle) {
  frag_kiln *f = ctx;
  return kiln_pool_free(handle, f->stream);
}

static int frag_setup(const kiln_bench_env *env, void **state) {
  (void)env;
  *state = NULL;
  kiln_device mock = NULL;
  kiln_status st = kiln_device_find(KILN_BACKEND_MOCK, 0, &mock);
  if (st != KILN_SUCCESS)
    return st;
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.unbacked_buffers = 1;
  if ((st = kiln_mock_configure(&mc)) != KILN_SUCCESS)
    return st;
  pool_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  frag_kiln f = {NULL, NULL};
  uint64_t peak_in_use = 0;
  st = kiln_context_create(mock, NULL, &s->common.context);
  if (st == KILN_SUCCESS)
    st = kiln_stream_create(s->common.context, NULL, &s->common.stream);
  if (st == KILN_SUCCESS)
    st = kiln_pool_create(s->common.context, NULL, &s->pool);
  if (st == KILN_SUCCESS) {
    f.pool = s->pool;
    f.stream = s->common.stream;
    bench_frag_ops ops = {frag_alloc, frag_free};
    int rc = bench_frag_run(&frag_params, &ops, &f, &peak_in_use);
    if (rc != 0)
      st = rc;
  }
  kiln_pool_stats ps = KILN_POOL_STATS_INIT;
  if (st == KILN_SUCCESS)
    st = kiln_pool_get_stats(s->pool, &ps);
  kiln_mock_configure(NULL);
  if (st != KILN_SUCCESS || peak_in_use == 0) {
    pool_teardown(s);
    return st != KILN_SUCCESS ? st : KILN_ERROR_BACKEND;
  }
  s->overhead = (double)ps.bytes_reserved_peak / (double)peak_in_use;
  fprintf(stderr,
          "kiln bench: fragmentation_1M: kiln pool peak reserved %.1f MiB for a peak in use of "
          "%.1f MiB (hit rate %.3f, %llu device allocations)\n",
          (double)ps.bytes_reserved_peak / 1048576.0, (double)peak_in_use / 1048576.0,
          ps.hits + ps.misses ? (double)ps.hits / (double)(ps.hits + ps.misses) : 0.0,
          (unsigned long long)ps.device_allocs);
  *state = s;
  return 0;
}

/* The figure, as "device time": *device_ns / ops is the value times 1e6 (unit "x"). */
static int frag_report(void *state, uint64_t iters, uint64_t *device_ns) {
  pool_state *s = state;
  *device_ns = (uint64_t)(s->overhead * 1e6 * (double)iters + 0.5);
  return 0;
}

static int frag_run(void *state, uint64_t iters) {
  (void)state, (void)iters;
  return 0;
}

typedef struct frag_base {
  double overhead;
} frag_base;

static int bestfit_setup(const kiln_bench_env *env, void **state) {
  (void)env;
  *state = NULL;
  frag_base *b = calloc(1, sizeof *b);
  if (b == NULL)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  int rc = bench_baseline_bestfit_overhead(&frag_params, &b->overhead);
  if (rc != 0) {
    free(b);
    return rc;
  }
  fprintf(stderr, "kiln bench: fragmentation_1M: plain best-fit overhead %.3f\n", b->overhead);
  *state = b;
  return 0;
}

static int bestfit_report(void *state, uint64_t iters, uint64_t *device_ns) {
  frag_base *b = state;
  *device_ns = (uint64_t)(b->overhead * 1e6 * (double)iters + 0.5);
  return 0;
}

static void bestfit_teardown(void *state) {
  free(state);
}

/* ---- the list ---- */
static const kiln_bench_param p_256[] = {{"bytes", NULL, 256}};
static const kiln_bench_param p_4k[] = {{"bytes", NULL, 4096}};
static const kiln_bench_param p_64k[] = {{"bytes", NULL, 65536}};
static const kiln_bench_param p_256k[] = {{"bytes", NULL, 262144}};
static const kiln_bench_param p_managed[] = {{"items", NULL, BENCH_MANAGED_ITEMS}};
static const kiln_bench_param p_4k_threads[] = {{"bytes", NULL, 4096}, {"threads", NULL, 2}};
static const kiln_bench_param p_frag[] = {
    {"ops", NULL, 1000000}, {"min_bytes", NULL, 256}, {"max_bytes", NULL, 64 << 20}};

#define ALLOC_FREE_CASE(NAME, PARAMS)                                                        \
  {                                                                                          \
    .name = NAME,                                                                            \
    .description = "a pooled allocation and its free, against the backend's raw allocation " \
                   "call (posix_memalign+free, clCreateBuffer+clReleaseMemObject, "          \
                   "cuMemAlloc+cuMemFree)",                                                  \
    .params = PARAMS, .param_count = 1, .unit = "ns", .better = KILN_BENCH_LOWER,            \
    .goal_ratio = 0.5,                                                                       \
    .goal = "pooled alloc+free >= 0.5x the raw call on cpu, 10x on OpenCL, 100x on CUDA",    \
    .setup = pool_setup, .run = pool_alloc_free, .teardown = pool_teardown,                  \
    .baseline_name = "raw-alloc", .baseline_run = raw_alloc_free,                            \
    .baseline_teardown = raw_teardown, .baseline_setup_env = raw_setup_env                   \
  }

static const kiln_bench_case base_cases[] = {
    ALLOC_FREE_CASE("alloc_free_256B", p_256),
    ALLOC_FREE_CASE("alloc_free_4KiB", p_4k),
    ALLOC_FREE_CASE("alloc_free_64KiB", p_64k),
    ALLOC_FREE_CASE("alloc_free_256KiB", p_256k),
    {
        .name = "alloc_free_4KiB_2threads",
        .description = "two threads, each on its own stream, allocating and freeing 4 KiB from "
                       "one pool (500 pairs each per iteration; reported, no baseline)",
        .params = p_4k_threads,
        .param_count = 2,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = 2 * THREAD_PAIRS,
        .setup = threads_setup,
        .run = threads_run,
        .teardown = pool_teardown,
    },
    {
        .name = "host_alloc_free_4KiB",
        .description = "kiln_host_alloc + kiln_host_free of 4 KiB from the pinned host pool, "
                       "against the backend's pinned allocation (posix_memalign to a page + "
                       "free; a mapped CL_MEM_ALLOC_HOST_PTR buffer; cuMemHostAlloc + "
                       "cuMemFreeHost)",
        .params = p_4k,
        .param_count = 1,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .goal = "pooled pinned alloc+free >= 100x cuMemHostAlloc+cuMemFreeHost on CUDA "
                "(reported elsewhere)",
        .setup = host_setup,
        .run = host_alloc_free,
        .teardown = pool_teardown,
        .baseline_name = "raw-host-alloc",
        .baseline_run = raw_host_alloc_free,
        .baseline_teardown = raw_teardown,
        .baseline_setup_env = raw_setup_env,
    },
    {
        .name = "managed_roundtrip",
        .description = "a managed buffer: the host writes 256 KiB of input in place "
                       "(kiln_managed_acquire/release), vecadd, the host reads the output in "
                       "place; against the explicit calls (kiln_buffer_write, the launch, "
                       "kiln_buffer_read)",
        .params = p_managed,
        .param_count = 1,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 0.95,
        .goal = "managed round trip >= 0.95x the explicit calls",
        .setup = mr_setup,
        .run = mr_managed,
        .teardown = mr_teardown,
        .baseline_name = "ref-explicit",
        .baseline_run = bench_ref_managed_explicit,
        .baseline_teardown = bench_ref_managed_teardown,
        .baseline_setup_env = bench_ref_managed_setup,
    },
};

static const kiln_bench_case cuda_case = {
    .name = "alloc_free_4KiB_stream_ordered",
    .description = "pooled alloc+free of 4 KiB on CUDA device 0 against cuMemAllocAsync + "
                   "cuMemFreeAsync on a stream (the driver's default memory pool)",
    .params = p_4k,
    .param_count = 1,
    .unit = "ns",
    .better = KILN_BENCH_LOWER,
    .goal_ratio = 1.0,
    .goal = "pooled alloc+free >= 1x cuMemAllocAsync+cuMemFreeAsync",
    .setup = cuda_pool_setup,
    .run = pool_alloc_free,
    .teardown = pool_teardown,
    .baseline_name = "raw-cuda-async",
    .baseline_run = bench_baseline_cuda_alloc_free_async,
    .baseline_teardown = bench_baseline_cuda_teardown,
    .baseline_setup_env = cuda_async_setup_env,
};

static const kiln_bench_case frag_case = {
    .name = "fragmentation_1M",
    .description = "1M operations, log-uniform sizes 256 B - 64 MiB, random lifetimes, live "
                   "bytes capped at 2 GiB, on the mock backend with unbacked slabs: peak "
                   "reserved / peak in use (x), against a plain best-fit allocator",
    .params = p_frag,
    .param_count = 3,
    .unit = "x",
    .better = KILN_BENCH_LOWER,
    .goal_ratio = 1.0,
    .goal = "the best-fit allocator's overhead / kiln's >= 1",
    .setup = frag_setup,
    .run = frag_run,
    .run_timed = frag_report,
    .teardown = pool_teardown,
    .baseline_name = "bestfit",
    .baseline_run = frag_run,
    .baseline_run_timed = bestfit_report,
    .baseline_teardown = bestfit_teardown,
    .baseline_setup_env = bestfit_setup,
};

static kiln_bench_suite suite = {
    .name = "pool",
    .description = "the device pool: alloc+free against the backend's raw allocation, two "
                   "threads, CUDA's stream-ordered allocator, fragmentation against best fit",
    .backend = KILN_BACKEND_NONE,
    .host_only = 0,
    .cases = cases,
};

const kiln_bench_suite *kiln__bench_suite_pool(void) {
  if (case_count)
    return &suite;
  for (size_t i = 0; i < sizeof base_cases / sizeof base_cases[0]; i++)
    cases[case_count++] = base_cases[i];
  kiln_device d = NULL;
  if (kiln_device_find(KILN_BACKEND_CUDA, 0, &d) == KILN_SUCCESS)
    cases[case_count++] = cuda_case;
  else
    fprintf(stderr, "kiln bench: pool: skipping alloc_free_4KiB_stream_ordered: no CUDA "
                    "device\n");
  if (kiln_device_find(KILN_BACKEND_MOCK, 0, &d) == KILN_SUCCESS)
    cases[case_count++] = frag_case;
  else
    fprintf(stderr, "kiln bench: pool: skipping fragmentation_1M: it runs on the mock "
                    "backend, enabled with KILN_MOCK=1\n");
  suite.case_count = case_count;
  return &suite;
}
