/* SPDX-License-Identifier: MIT */
/* Suite `ocl_mem`: host<->device transfers through kiln against raw OpenCL on the same
 * device, at 4 KiB, 1 MiB and 64 MiB (result names fixed by design.md). Blocking: one
 * kiln_buffer_write/read per op against clEnqueueWrite/ReadBuffer(CL_TRUE). Async: one
 * op is one transfer of a burst of BENCH_OCL_BURST non-blocking transfers followed by
 * one wait for all of them (kiln: _async calls and kiln_wait_all; raw: an event each
 * and clWaitForEvents), so the async figure shows what overlapping submission buys
 * rather than repeating the blocking round trip. Host blocks are page-aligned and
 * touched at set-up, device buffers written once. Host timing; GB/s. Extra cases
 * {write,read}_pinned_64MiB: blocking transfers from/to pinned memory on both sides
 * (kiln_host_alloc vs a mapped CL_MEM_ALLOC_HOST_PTR buffer). */
#include "baseline_opencl.h"
#include "suite_common.h"
#include "suites.h"

typedef struct mem_state {
  kiln__suite_state base; /* buffer a, the host block */
  kiln_pending tokens[BENCH_OCL_BURST];
} mem_state;

static kiln_status mem_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  return kiln__suite_transfer(s, env, "ocl_mem");
}

static int mem_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(mem_state), mem_prepare, state);
}

/* A burst of async transfers on the stream, then one wait for all their tokens. */
static int burst(mem_state *m, uint64_t iters, int write) {
  kiln__suite_state *s = &m->base;
  for (uint64_t i = 0; i < iters; i++) {
    size_t n = 0;
    kiln_status st = KILN_SUCCESS;
    for (; n < BENCH_OCL_BURST; n++) {
      st = write ? kiln_buffer_write_async(s->stream, s->a, 0, s->bytes, s->host, &m->tokens[n])
                 : kiln_buffer_read_async(s->stream, s->a, 0, s->bytes, s->host, &m->tokens[n]);
      if (st != KILN_SUCCESS)
        break;
    }
    kiln_status wst = n > 0 ? kiln_wait_all(m->tokens, n) : KILN_SUCCESS;
    if (st != KILN_SUCCESS)
      return st;
    if (wst != KILN_SUCCESS)
      return wst;
  }
  return KILN_SUCCESS;
}

static int write_async(void *p, uint64_t iters) {
  return burst(p, iters, 1);
}
static int read_async(void *p, uint64_t iters) {
  return burst(p, iters, 0);
}

static int raw_setup(const kiln_bench_env *env, void **state) {
  bench_ocl_args args = {0};
  args.bytes = (size_t)kiln_bench_env_num(env, "bytes", 0);
  args.pinned = kiln__suite_pinned(env);
  return kiln__suite_ocl_raw_setup(env, &args, state);
}

#define KIB ((int64_t)1 << 10)
#define MIB ((int64_t)1 << 20)

static const kiln_bench_param p_blocking_4k[] = {{"burst", NULL, 1}, {"bytes", NULL, 4 * KIB}};
static const kiln_bench_param p_blocking_1m[] = {{"burst", NULL, 1}, {"bytes", NULL, MIB}};
static const kiln_bench_param p_blocking_64m[] = {{"burst", NULL, 1}, {"bytes", NULL, 64 * MIB}};
static const kiln_bench_param p_pinned_64m[] = {
    {"burst", NULL, 1}, {"bytes", NULL, 64 * MIB}, {"memory", "pinned", 0}};
static const kiln_bench_param p_async_4k[] = {{"burst", NULL, BENCH_OCL_BURST},
                                              {"bytes", NULL, 4 * KIB}};
static const kiln_bench_param p_async_1m[] = {{"burst", NULL, BENCH_OCL_BURST},
                                              {"bytes", NULL, MIB}};
static const kiln_bench_param p_async_64m[] = {{"burst", NULL, BENCH_OCL_BURST},
                                               {"bytes", NULL, 64 * MIB}};

/* One case: NAME, the words, params, size in bytes, ops per iteration, kiln and raw
 * run functions. */
#define MEM_CASE(NAME, WORDS, PARAMS, BYTES, OPS, RUN, RAW)                                     \
  {                                                                                             \
    .name = NAME, .description = WORDS, .params = PARAMS, .param_count = 2, .unit = "GB/s",     \
    .better = KILN_BENCH_HIGHER, .work_per_op = (double)(BYTES), .ops_per_iter = OPS,           \
    .goal_ratio = 0.95, .goal = ">= 0.95x raw OpenCL's GB/s", KILN__SUITE_SIDE(mem_setup, RUN), \
    KILN__SUITE_RAW_OPENCL(raw_setup, RAW),                                                     \
  }

/* Extra: pinned memory on both sides; no goal (the ratio shows kiln's overhead on the
 * fastest path, and the pageable cases' ratio against these shows what pinning buys). */
#define PINNED(DIR, WORDS, RUN, RAW)                                                              \
  {                                                                                               \
    .name = #DIR "_pinned_64MiB", .description = WORDS, .params = p_pinned_64m, .param_count = 3, \
    .unit = "GB/s", .better = KILN_BENCH_HIGHER, .work_per_op = (double)(64 * MIB),               \
    .ops_per_iter = 1, KILN__SUITE_SIDE(mem_setup, RUN), KILN__SUITE_RAW_OPENCL(raw_setup, RAW),  \
  }

#define BLOCKING(DIR, SIZE, WORDS, PARAMS, BYTES, RUN, RAW) \
  MEM_CASE(#DIR "_blocking_" SIZE, WORDS, PARAMS, BYTES, 1, RUN, RAW)
#define ASYNC(DIR, SIZE, WORDS, PARAMS, BYTES, RUN, RAW) \
  MEM_CASE(#DIR "_async_" SIZE, WORDS, PARAMS, BYTES, BENCH_OCL_BURST, RUN, RAW)

#define W_BLOCKING "blocking host-to-device write (kiln_buffer_write vs CL_TRUE)"
#define R_BLOCKING "blocking device-to-host read (kiln_buffer_read vs CL_TRUE)"
#define W_ASYNC "burst of 8 async writes, one wait for all; per write"
#define R_ASYNC "burst of 8 async reads, one wait for all; per read"

static const kiln_bench_case cases[] = {
    BLOCKING(write, "4KiB", W_BLOCKING, p_blocking_4k, 4 * KIB, kiln__suite_write,
             bench_baseline_ocl_write_blocking),
    BLOCKING(write, "1MiB", W_BLOCKING, p_blocking_1m, MIB, kiln__suite_write,
             bench_baseline_ocl_write_blocking),
    BLOCKING(write, "64MiB", W_BLOCKING, p_blocking_64m, 64 * MIB, kiln__suite_write,
             bench_baseline_ocl_write_blocking),
    BLOCKING(read, "4KiB", R_BLOCKING, p_blocking_4k, 4 * KIB, kiln__suite_read,
             bench_baseline_ocl_read_blocking),
    BLOCKING(read, "1MiB", R_BLOCKING, p_blocking_1m, MIB, kiln__suite_read,
             bench_baseline_ocl_read_blocking),
    BLOCKING(read, "64MiB", R_BLOCKING, p_blocking_64m, 64 * MIB, kiln__suite_read,
             bench_baseline_ocl_read_blocking),
    ASYNC(write, "4KiB", W_ASYNC, p_async_4k, 4 * KIB, write_async, bench_baseline_ocl_write_async),
    ASYNC(write, "1MiB", W_ASYNC, p_async_1m, MIB, write_async, bench_baseline_ocl_write_async),
    ASYNC(write, "64MiB", W_ASYNC, p_async_64m, 64 * MIB, write_async,
          bench_baseline_ocl_write_async),
    ASYNC(read, "4KiB", R_ASYNC, p_async_4k, 4 * KIB, read_async, bench_baseline_ocl_read_async),
    ASYNC(read, "1MiB", R_ASYNC, p_async_1m, MIB, read_async, bench_baseline_ocl_read_async),
    ASYNC(read, "64MiB", R_ASYNC, p_async_64m, 64 * MIB, read_async, bench_baseline_ocl_read_async),
    PINNED(write,
           "blocking write from pinned memory (kiln_host_alloc vs a mapped ALLOC_HOST_PTR buffer)",
           kiln__suite_write, bench_baseline_ocl_write_blocking),
    PINNED(read,
           "blocking read into pinned memory (kiln_host_alloc vs a mapped ALLOC_HOST_PTR buffer)",
           kiln__suite_read, bench_baseline_ocl_read_blocking),
};

const kiln_bench_suite kiln__bench_suite_ocl_mem = {
    .name = "ocl_mem",
    .description = "OpenCL transfers, blocking and async, 4KiB/1MiB/64MiB vs raw OpenCL",
    .backend = KILN_BACKEND_OPENCL,
    .host_only = 0,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};
