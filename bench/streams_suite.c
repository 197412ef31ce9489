/* SPDX-License-Identifier: MIT */
/* Suite `streams`: stream pools and multi-stream work on the default device (or
 * --device). stream_pool_acquire_release (and _4threads): an acquire/release pair of
 * a round-robin kiln_stream_pool of 4 against a mutex-protected round-robin over an
 * array of streams (bench/baseline_stream_rr.c), on one thread and on four at once.
 * overlap_4x10: 4 streams x 10 kernels of ~50 us each (a spin loop calibrated once per
 * device, on one work-item) against the same 40 kernels on one stream (ref-one-stream,
 * bench/ref_streams.c). pipeline_256MiB: kiln_pipeline_run over 256 MiB of pinned host
 * memory in 16 chunks (y = 2x + 1) against its serial form on one stream
 * (ref-serial). The kiln side uses only the public API. Result names are fixed by the
 * issue (#18); goals are printed, never asserted. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "baseline_cuda.h"
#include "baseline_streams.h"
#include "baselines.h"
#include "streams_suite.h"
#include "suites.h"

/* ---- kernels: native C on cpu/mock, the kiln dialect elsewhere ---- */
static const char spin_source[] =
    "KILN_KERNEL void spin(KILN_GLOBAL kiln_u64 *out, kiln_u64 iters) {\n"
    "  kiln_u64 x = out[0] + 1;\n"
    "  for (kiln_u64 i = 0; i < iters; i++) x = x * 2862933555777941757UL + 3037000493UL;\n"
    "  out[0] = x;\n"
    "}\n";
static const char affine_source[] =
    "KILN_KERNEL void affine(const KILN_GLOBAL float *x, KILN_GLOBAL float *y, kiln_u64 n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < n) y[i] = 2.0f * x[i] + 1.0f;\n"
    "}\n";

static void spin_native(const kiln_native_range *r, void *const *args, void *user) {
  (void)r;
  (void)user;
  uint64_t *out = args[0], iters, x;
  memcpy(&iters, args[1], sizeof iters);
  x = out[0] + 1;
  for (uint64_t i = 0; i < iters; i++)
    x = x * 2862933555777941757ull + 3037000493ull;
  out[0] = x;
}

static void affine_native(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  const float *x = args[0];
  float *y = args[1];
  uint64_t n;
  memcpy(&n, args[2], sizeof n);
  for (size_t i = r->begin[0]; i < r->end[0] && i < n; i++)
    y[i] = 2.0f * x[i] + 1.0f;
}

static int native_device(kiln_device device) {
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  if (kiln_device_get_props(device, &p) != KILN_SUCCESS)
    return 0;
  return p.backend == KILN_BACKEND_CPU || p.backend == KILN_BACKEND_MOCK;
}

static kiln_status make_kernel(streams_state *s, kiln_device device, const char *name,
                               const char *source, kiln_native_fn fn, const kiln_param *params,
                               uint32_t count) {
  if (!native_device(device))
    return kiln__suite_build(&s->base, source, "streams", name);
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  kd.name = name;
  kd.fn = fn;
  kd.params = params;
  kd.param_count = count;
  return kiln_kernel_create_native(s->base.context, &kd, &s->base.kernel);
}

kiln_status streams_launch_spin(streams_state *s, kiln_stream stream, kiln_buffer out) {
  kiln_arg args[2] = {kiln_arg_buffer(out), kiln_arg_scalar(&s->spin_iters, 8)};
  kiln_range r = kiln_range_1d(1);
  kiln_pending t;
  kiln_status st = kiln_launch_async(stream, s->base.kernel, &r, args, 2, &t);
  return st == KILN_SUCCESS ? kiln_pending_release(&t) : st;
}

kiln_status streams_launch_affine(streams_state *s, kiln_stream stream, kiln_buffer in,
                                  kiln_buffer out, size_t floats) {
  uint64_t n = floats;
  kiln_arg args[3] = {kiln_arg_buffer(in), kiln_arg_buffer(out), kiln_arg_scalar(&n, 8)};
  kiln_range r = kiln_range_1d(floats);
  kiln_pending t;
  kiln_status st = kiln_launch_async(stream, s->base.kernel, &r, args, 3, &t);
  return st == KILN_SUCCESS ? kiln_pending_release(&t) : st;
}

void streams_teardown(void *state) {
  streams_state *s = state;
  if (s == NULL)
    return;
  kiln_stream_pool_destroy(s->pool);
  kiln_stream_set_destroy(s->set);
  for (unsigned i = 0; i < STREAMS_OVERLAP_STREAMS; i++)
    kiln_buffer_destroy(s->outs[i]);
  for (unsigned i = 0; i < 2; i++) {
    kiln_buffer_destroy(s->in[i]);
    kiln_buffer_destroy(s->out[i]);
  }
  if (s->src)
    kiln_host_free(s->base.context, s->src);
  if (s->dst)
    kiln_host_free(s->base.context, s->dst);
  kiln__suite_teardown(&s->base);
}

/* ---- pool cases ---- */
typedef struct pool_state {
  kiln__suite_state base;
  kiln_stream_pool pool;
  bench_fanout *team;
  uint64_t iters;
} pool_state;

static const unsigned one_thread = 1, four_threads = 4;

static int pool_share(void *ctx, unsigned thread) {
  (void)thread;
  pool_state *p = ctx;
  for (uint64_t it = 0; it < p->iters; it++)
    for (unsigned k = 0; k < BENCH_STREAM_RR_PAIRS; k++) {
      kiln_stream s;
      kiln_status st = kiln_stream_pool_acquire(p->pool, &s);
      if (st == KILN_SUCCESS)
        st = kiln_stream_pool_release(p->pool, s);
      if (st != KILN_SUCCESS)
        return st;
    }
  return KILN_SUCCESS;
}

static kiln_status pool_prepare(kiln__suite_state *base, const kiln_bench_env *env) {
  pool_state *p = (pool_state *)base;
  kiln_stream_pool_desc d = KILN_STREAM_POOL_DESC_INIT;
  d.label = "bench";
  kiln_status st = kiln_stream_pool_create(base->context, BENCH_STREAM_RR_STREAMS, &d, &p->pool);
  unsigned threads = env->arg ? *(const unsigned *)env->arg : 1u;
  if (st == KILN_SUCCESS && threads > 1 && bench_fanout_create(threads, pool_share, p, &p->team))
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
  return st;
}

static int pool_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(pool_state), pool_prepare, state);
}

static void pool_teardown(void *state) {
  pool_state *p = state;
  if (p == NULL)
    return;
  bench_fanout_destroy(p->team);
  kiln_stream_pool_destroy(p->pool);
  kiln__suite_teardown(&p->base);
}

static int pool_run(void *state, uint64_t iters) {
  pool_state *p = state;
  p->iters = iters;
  return p->team ? bench_fanout_run(p->team) : pool_share(p, 0);
}

/* ---- overlap_4x10 ---- */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Seconds of one spin launch of `iters` on the case's stream, the best of 3. */
static kiln_status time_spin(streams_state *s, uint64_t iters, double *best) {
  *best = 1e9;
  s->spin_iters = iters;
  for (int k = 0; k < 3; k++) {
    double t0 = now_s();
    kiln_status st = streams_launch_spin(s, s->base.stream, s->outs[0]);
    if (st == KILN_SUCCESS)
      st = kiln_stream_synchronize(s->base.stream);
    if (st != KILN_SUCCESS)
      return st;
    double t = now_s() - t0;
    if (t < *best)
      *best = t;
  }
  return KILN_SUCCESS;
}

/* The loop count of a ~50 us kernel on `device`, from the slope between two sizes (so
 * the launch cost drops out), measured once per device: both sides of the case run
 * the same work. */
static kiln_status calibrate(streams_state *s, kiln_device device) {
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  static kiln_device done_for[8];
  static uint64_t done_iters[8];
  kiln_status st = KILN_SUCCESS;
  pthread_mutex_lock(&lock);
  unsigned i = 0;
  while (i < 8 && done_for[i] && done_for[i] != device)
    i++;
  if (i < 8 && done_for[i] == device) {
    s->spin_iters = done_iters[i];
  } else {
    const uint64_t n1 = 1u << 14, n2 = 1u << 18;
    double t1 = 0, t2 = 0;
    st = time_spin(s, n1, &t1);
    if (st == KILN_SUCCESS)
      st = time_spin(s, n2, &t2);
    double per_iter = t2 > t1 ? (t2 - t1) / (double)(n2 - n1) : 1e-9;
    double n = 50e-6 / per_iter;
    s->spin_iters = n < 1000.0 ? 1000u : n > 1e9 ? 1000000000u : (uint64_t)n;
    if (st == KILN_SUCCESS && i < 8) {
      done_for[i] = device;
      done_iters[i] = s->spin_iters;
    }
  }
  pthread_mutex_unlock(&lock);
  return st;
}

static kiln_status overlap_prepare(kiln__suite_state *base, const kiln_bench_env *env) {
  streams_state *s = (streams_state *)base;
  static const kiln_param params[] = {{KILN_PARAM_BUFFER_READ_WRITE, 0}, {KILN_PARAM_SCALAR, 8}};
  kiln_status st = make_kernel(s, env->device, "spin", spin_source, spin_native, params, 2);
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 64;
  for (unsigned i = 0; i < STREAMS_OVERLAP_STREAMS && st == KILN_SUCCESS; i++)
    st = kiln_buffer_create(base->context, &bd, &s->outs[i]);
  uint64_t zero[8] = {0};
  for (unsigned i = 0; i < STREAMS_OVERLAP_STREAMS && st == KILN_SUCCESS; i++)
    st = kiln_buffer_write(s->outs[i], 0, sizeof zero, zero);
  if (st == KILN_SUCCESS)
    st = kiln_stream_pool_create(base->context, STREAMS_OVERLAP_STREAMS, NULL, &s->pool);
  if (st == KILN_SUCCESS)
    st = calibrate(s, env->device);
  return st;
}

int streams_overlap_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(streams_state), overlap_prepare, state);
}

/* 10 kernels on each of the pool's 4 streams (queued in turn, so all start at once),
 * each stream on its own buffer; then synchronize_all. */
static int overlap_run(void *state, uint64_t iters) {
  streams_state *s = state;
  for (uint64_t it = 0; it < iters; it++) {
    for (unsigned k = 0; k < STREAMS_OVERLAP_KERNELS; k++)
      for (unsigned j = 0; j < STREAMS_OVERLAP_STREAMS; j++) {
        kiln_stream stream;
        kiln_status st = kiln_stream_pool_get(s->pool, j, &stream);
        if (st == KILN_SUCCESS)
          st = streams_launch_spin(s, stream, s->outs[j]);
        if (st != KILN_SUCCESS)
          return st;
      }
    kiln_status st = kiln_stream_pool_synchronize_all(s->pool);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* ---- pipeline_256MiB ---- */
static kiln_status pipeline_compute(kiln_stream stream, kiln_buffer in, kiln_buffer out,
                                    size_t chunk, size_t in_bytes, size_t out_bytes, void *user) {
  (void)chunk;
  (void)out_bytes;
  return streams_launch_affine(user, stream, in, out, in_bytes / sizeof(float));
}

static kiln_status pipeline_prepare(kiln__suite_state *base, const kiln_bench_env *env) {
  streams_state *s = (streams_state *)base;
  static const kiln_param params[] = {
      {KILN_PARAM_BUFFER_READ, 0}, {KILN_PARAM_BUFFER_WRITE, 0}, {KILN_PARAM_SCALAR, 8}};
  kiln_status st = make_kernel(s, env->device, "affine", affine_source, affine_native, params, 3);
  s->bytes = (size_t)kiln_bench_env_num(env, "bytes", 256 << 20);
  s->chunk_bytes = s->bytes / STREAMS_PIPELINE_CHUNKS;
  if (st == KILN_SUCCESS)
    st = kiln_host_alloc(base->context, s->bytes, &s->src);
  if (st == KILN_SUCCESS)
    st = kiln_host_alloc(base->context, s->bytes, &s->dst);
  if (st == KILN_SUCCESS) {
    float *x = s->src;
    for (size_t i = 0; i < s->bytes / sizeof(float); i++)
      x[i] = (float)(i & 1023);
    memset(s->dst, 0, s->bytes);
  }
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = s->chunk_bytes;
  for (unsigned i = 0; i < 2 && st == KILN_SUCCESS; i++) {
    st = kiln_buffer_create(base->context, &bd, &s->in[i]);
    if (st == KILN_SUCCESS)
      st = kiln_buffer_create(base->context, &bd, &s->out[i]);
  }
  if (st == KILN_SUCCESS)
    st = kiln_stream_set_create(base->context, 3, "pipeline", &s->set);
  return st;
}

int streams_pipeline_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(streams_state), pipeline_prepare, state);
}

static int pipeline_run(void *state, uint64_t iters) {
  streams_state *s = state;
  kiln_pipeline_desc d = KILN_PIPELINE_DESC_INIT;
  d.src = s->src;
  d.src_bytes = s->bytes;
  d.dst = s->dst;
  d.dst_bytes = s->bytes;
  d.chunk_bytes = s->chunk_bytes;
  d.compute = pipeline_compute;
  d.user = s;
  d.streams = s->set;
  for (uint64_t it = 0; it < iters; it++) {
    kiln_status st = kiln_pipeline_run(s->base.context, &d);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* ---- cases ---- */
static const kiln_bench_param p_pool[] = {{"streams", NULL, BENCH_STREAM_RR_STREAMS},
                                          {"threads", NULL, 1}};
static const kiln_bench_param p_pool4[] = {{"streams", NULL, BENCH_STREAM_RR_STREAMS},
                                           {"threads", NULL, 4}};
static const kiln_bench_param p_overlap[] = {{"streams", NULL, STREAMS_OVERLAP_STREAMS},
                                             {"kernels_per_stream", NULL, STREAMS_OVERLAP_KERNELS},
                                             {"kernel_us", NULL, 50}};
static const kiln_bench_param p_pipeline[] = {{"bytes", NULL, (int64_t)256 << 20},
                                              {"chunks", NULL, STREAMS_PIPELINE_CHUNKS}};

static const kiln_bench_case cases[] = {
    {
        .name = "stream_pool_acquire_release",
        .description = "kiln_stream_pool_acquire + _release on a round-robin pool of 4, per pair",
        .params = p_pool,
        .param_count = 2,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = BENCH_STREAM_RR_PAIRS,
        .goal_ratio = 2.0,
        .goal = "pair >= 2x faster than a mutex round-robin over an array of streams",
        .arg = (void *)&one_thread,
        .setup = pool_setup,
        .run = pool_run,
        .teardown = pool_teardown,
        .baseline_name = "mutex-round-robin",
        .baseline_setup = bench_baseline_stream_rr_setup,
        .baseline_run = bench_baseline_stream_rr_run,
        .baseline_teardown = bench_baseline_stream_rr_teardown,
    },
    {
        .name = "stream_pool_acquire_release_4threads",
        .description = "the same on 4 threads at once (1000 pairs each per batch); per pair",
        .params = p_pool4,
        .param_count = 2,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = 4u * BENCH_STREAM_RR_PAIRS, /* reported, no goal (#18) */
        .arg = (void *)&four_threads,
        .setup = pool_setup,
        .run = pool_run,
        .teardown = pool_teardown,
        .baseline_name = "mutex-round-robin",
        .baseline_setup = bench_baseline_stream_rr_setup,
        .baseline_run = bench_baseline_stream_rr_run,
        .baseline_teardown = bench_baseline_stream_rr_teardown,
    },
    {
        .name = "overlap_4x10",
        .description = "4 streams x 10 kernels of ~50 us (one work-item) vs the 40 on one stream",
        .params = p_overlap,
        .param_count = 3,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 3.6,
        .goal = ">= 3.6x the one-stream time on a GPU (CUDA); cpu and PoCL: reported only",
        .setup = streams_overlap_setup,
        .run = overlap_run,
        .teardown = streams_teardown,
        .baseline_name = "ref-one-stream",
        .baseline_setup_env = streams_overlap_setup,
        .baseline_run = streams_ref_overlap_run,
        .baseline_teardown = streams_teardown,
    },
    {
        .name = "pipeline_256MiB",
        .description = "kiln_pipeline_run, 256 MiB pinned in 16 chunks, y = 2x + 1, vs serial",
        .params = p_pipeline,
        .param_count = 2,
        .unit = "GB/s",
        .better = KILN_BENCH_HIGHER,
        .work_per_op = (double)((size_t)256 << 20),
        .goal_ratio = 1.6,
        .goal = ">= 1.6x its serial form on a GPU (CUDA); cpu and PoCL: reported only",
        .setup = streams_pipeline_setup,
        .run = pipeline_run,
        .teardown = streams_teardown,
        .baseline_name = "ref-serial",
        .baseline_setup_env = streams_pipeline_setup,
        .baseline_run = streams_ref_pipeline_run,
        .baseline_teardown = streams_teardown,
    },
};

const kiln_bench_suite kiln__bench_suite_streams = {
    .name = "streams",
    .description = "stream pools vs a mutex round-robin; 4-stream overlap and the pipeline "
                   "helper vs one stream",
    .backend = KILN_BACKEND_NONE,
    .host_only = 0,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};

/* ---- suite streams_cuda: the same overlap and pipeline against raw CUDA streams ---- */

/* The raw baselines' set-up on the kiln side's CUDA device, with the same spin loop
 * (the kiln side's calibration, made here if the kiln side has not made it yet) or the
 * same sizes. */
static int raw_setup(const kiln_bench_env *env, int what, void **state) {
  bench_cuda_streams_args args = {0};
  args.what = what;
  kiln_status st = kiln_device_get_native(env->device, KILN_NATIVE_CU_DEVICE, &args.device);
  if (st != KILN_SUCCESS)
    return st;
  if (what == BENCH_CUDA_OVERLAP) {
    void *k = NULL;
    int rc = streams_overlap_setup(env, &k); /* calibrates once per device */
    if (rc != 0)
      return rc;
    args.spin_iters = ((streams_state *)k)->spin_iters;
    streams_teardown(k);
  } else {
    args.bytes = (size_t)kiln_bench_env_num(env, "bytes", 256 << 20);
    args.chunk_bytes = args.bytes / STREAMS_PIPELINE_CHUNKS;
  }
  return bench_baseline_cuda_streams_setup(&args, state);
}

static int raw_overlap_setup(const kiln_bench_env *env, void **state) {
  return raw_setup(env, BENCH_CUDA_OVERLAP, state);
}

static int raw_pipeline_setup(const kiln_bench_env *env, void **state) {
  return raw_setup(env, BENCH_CUDA_PIPELINE, state);
}

static const kiln_bench_case cuda_cases[] = {
    {
        .name = "overlap_4x10_raw",
        .description = "4 pool streams x 10 kernels of ~50 us vs the same on 4 raw CUstreams",
        .params = p_overlap,
        .param_count = 3,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 0.95,
        .goal = ">= 0.95x raw CUDA streams (raw reached 3.8x one stream on an H200)",
        .setup = streams_overlap_setup,
        .run = overlap_run,
        .teardown = streams_teardown,
        .baseline_name = "raw-cuda",
        .baseline_setup_env = raw_overlap_setup,
        .baseline_run = bench_baseline_cuda_overlap,
        .baseline_teardown = bench_baseline_cuda_streams_teardown,
    },
    {
        .name = "pipeline_256MiB_raw",
        .description = "kiln_pipeline_run over 256 MiB pinned vs a hand-written raw CUDA pipeline "
                       "(3 streams, events)",
        .params = p_pipeline,
        .param_count = 2,
        .unit = "GB/s",
        .better = KILN_BENCH_HIGHER,
        .work_per_op = (double)((size_t)256 << 20),
        .goal_ratio = 0.95,
        .goal = ">= 0.95x the hand-written raw CUDA pipeline",
        .setup = streams_pipeline_setup,
        .run = pipeline_run,
        .teardown = streams_teardown,
        .baseline_name = "raw-cuda",
        .baseline_setup_env = raw_pipeline_setup,
        .baseline_run = bench_baseline_cuda_pipeline,
        .baseline_teardown = bench_baseline_cuda_streams_teardown,
    },
};

const kiln_bench_suite kiln__bench_suite_streams_cuda = {
    .name = "streams_cuda",
    .description = "overlap_4x10 and pipeline_256MiB against raw CUDA streams (a GPU)",
    .backend = KILN_BACKEND_CUDA,
    .host_only = 0,
    .cases = cuda_cases,
    .case_count = sizeof cuda_cases / sizeof cuda_cases[0],
};
