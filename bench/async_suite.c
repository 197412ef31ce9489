/* SPDX-License-Identifier: MIT */
/* Suites `async`, `async_ocl` and `async_cuda` (issue #19): how long device work's
 * completion takes to reach the program without a thread blocked in a kiln wait. Each
 * iteration launches an empty kernel (native on cpu, the dialect elsewhere) and then
 * waits for word of its completion:
 *   callback_latency: through a completion callback on the launch's token
 *     (kiln_pending_add_callback), which signals a condvar the caller sleeps on;
 *   fd_wakeup: through the stream's descriptor (kiln_stream_fd) in poll(), then the
 *     synchronize that observes it (returns at once).
 * Baselines: on the CPU device the plain condvar handoff (bench/baseline_handoff.c:
 * 3 hops for a callback, which runs on a thread of its own, 2 for a wake-up); on
 * OpenCL the raw clSetEventCallback, on CUDA the raw cuLaunchHostFunc (the vendors'
 * own completion callbacks, bench/baseline_opencl.c, bench/baseline_cuda.c). The
 * kiln side uses only the public API. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "baseline_cuda.h"
#include "baseline_handoff.h"
#include "baseline_opencl.h"
#include "suite_common.h"
#include "suites.h"

typedef struct async_state {
  kiln__suite_state base; /* first: kiln__suite_teardown frees it */
  int fd;                 /* the stream's descriptor (fd_wakeup) */
  pthread_mutex_t lock;   /* the callback's handoff to the caller */
  pthread_cond_t cond;
  uint64_t done;
  int callback_failures;
} async_state;

static void empty_native(const kiln_native_range *range, void *const *args, void *user) {
  (void)range;
  (void)args;
  (void)user;
}

static kiln_status async_prepare(kiln__suite_state *base, const kiln_bench_env *env) {
  (void)env;
  async_state *s = (async_state *)base;
  s->fd = -1;
  base->range = kiln_range_1d(1);
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  kd.name = "empty";
  kd.fn = empty_native;
  kiln_status st = kiln_kernel_create_native(base->context, &kd, &base->kernel);
  if (st == KILN_ERROR_UNSUPPORTED) /* OpenCL, CUDA: the dialect's empty kernel */
    st = kiln__suite_build(base, kiln__suite_empty_source, "async_suite", "empty");
  if (st == KILN_SUCCESS)
    st = kiln_stream_fd(base->stream, &s->fd);
  return st;
}

static int async_setup(const kiln_bench_env *env, void **state) {
  int rc = kiln__suite_setup(env, sizeof(async_state), async_prepare, state);
  if (rc == 0) {
    async_state *s = *state;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
  }
  return rc;
}

static void async_teardown(void *state) {
  async_state *s = state;
  if (s) {
    kiln_context_synchronize(s->base.context); /* no callback still queued on s */
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
  }
  kiln__suite_teardown(state);
}

/* On kiln's callback thread. */
static void signal_caller(kiln_status status, void *user) {
  async_state *s = user;
  pthread_mutex_lock(&s->lock);
  if (status != KILN_SUCCESS)
    s->callback_failures++;
  s->done++;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->lock);
}

static int callback_latency(void *state, uint64_t iters) {
  async_state *s = state;
  kiln__suite_state *b = &s->base;
  pthread_mutex_lock(&s->lock);
  uint64_t want = s->done; /* only this thread's callbacks move it */
  pthread_mutex_unlock(&s->lock);
  for (uint64_t i = 0; i < iters; i++) {
    kiln_pending t;
    kiln_status st = kiln_launch_async(b->stream, b->kernel, &b->range, NULL, 0, &t);
    if (st == KILN_SUCCESS)
      st = kiln_pending_add_callback(&t, signal_caller, s);
    if (st != KILN_SUCCESS)
      return st;
    want++;
    pthread_mutex_lock(&s->lock);
    while (s->done < want)
      pthread_cond_wait(&s->cond, &s->lock);
    int failed = s->callback_failures;
    pthread_mutex_unlock(&s->lock);
    if (failed)
      return KILN_ERROR_INTERNAL;
  }
  return KILN_SUCCESS;
}

static int fd_wakeup(void *state, uint64_t iters) {
  async_state *s = state;
  kiln__suite_state *b = &s->base;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = kiln_launch_async(b->stream, b->kernel, &b->range, NULL, 0, KILN_NO_TOKEN);
    if (st != KILN_SUCCESS)
      return st;
    struct pollfd p = {s->fd, POLLIN, 0};
    int rc;
    while ((rc = poll(&p, 1, 30000)) < 0 && errno == EINTR) {
    }
    if (rc != 1)
      return KILN_ERROR_INTERNAL;            /* not readable within 30 s */
    st = kiln_stream_synchronize(b->stream); /* observes it: returns at once */
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static const unsigned hops_callback = 3, hops_wakeup = 2;
static int empty_kernel_arg = BENCH_OCL_KERNEL_EMPTY;
static const kiln_bench_param p_one[] = {{"ops", NULL, 1}};

static const kiln_bench_case cases[] = {
    {
        .name = "callback_latency",
        .description = "launch an empty op; its token's completion callback wakes the caller",
        .params = p_one,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 0.8,
        .goal = "completion to callback >= 0.8x a plain condvar handoff (3 threads)",
        .arg = (void *)&hops_callback,
        .setup = async_setup,
        .run = callback_latency,
        .teardown = async_teardown,
        .baseline_name = "condvar-handoff",
        .baseline_setup = bench_baseline_handoff_setup,
        .baseline_run = bench_baseline_handoff_run,
        .baseline_teardown = bench_baseline_handoff_teardown,
    },
    {
        .name = "fd_wakeup",
        .description = "launch an empty op; poll() on the stream's descriptor wakes the caller",
        .params = p_one,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 0.8,
        .goal = "completion to poll() >= 0.8x a plain condvar handoff (2 threads)",
        .arg = (void *)&hops_wakeup,
        .setup = async_setup,
        .run = fd_wakeup,
        .teardown = async_teardown,
        .baseline_name = "condvar-handoff",
        .baseline_setup = bench_baseline_handoff_setup,
        .baseline_run = bench_baseline_handoff_run,
        .baseline_teardown = bench_baseline_handoff_teardown,
    },
};

const kiln_bench_suite kiln__bench_suite_async = {
    .name = "async",
    .description = "completion callbacks and descriptors vs a plain condvar handoff (CPU)",
    .backend = KILN_BACKEND_CPU,
    .host_only = 0,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};

/* ---- OpenCL: vs clSetEventCallback ---- */
static int ocl_raw_setup(const kiln_bench_env *env, void **state) {
  bench_ocl_args args;
  memset(&args, 0, sizeof args);
  args.kernel = BENCH_OCL_KERNEL_EMPTY;
  return kiln__suite_ocl_raw_setup(env, &args, state);
}

static const kiln_bench_case ocl_cases[] = {
    {
        .name = "callback_latency",
        .description = "launch an empty kernel; a completion callback wakes the caller",
        .params = p_one,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .arg = &empty_kernel_arg,
        .setup = async_setup,
        .run = callback_latency,
        .teardown = async_teardown,
        KILN__SUITE_RAW_OPENCL(ocl_raw_setup, bench_baseline_ocl_callback_roundtrip),
    },
};

const kiln_bench_suite kiln__bench_suite_async_ocl = {
    .name = "async_ocl",
    .description = "completion callbacks vs raw clSetEventCallback (OpenCL)",
    .backend = KILN_BACKEND_OPENCL,
    .host_only = 0,
    .cases = ocl_cases,
    .case_count = sizeof ocl_cases / sizeof ocl_cases[0],
};

/* ---- CUDA: vs cuLaunchHostFunc ---- */
static int cuda_raw_setup(const kiln_bench_env *env, void **state) {
  bench_cuda_args args;
  memset(&args, 0, sizeof args);
  *state = NULL;
  kiln_status st = kiln_device_get_native(env->device, KILN_NATIVE_CU_DEVICE, &args.device);
  if (st != KILN_SUCCESS)
    return st;
  args.kernel = BENCH_CUDA_KERNEL_EMPTY;
  return bench_baseline_cuda_setup(&args, state);
}

static const kiln_bench_case cuda_cases[] = {
    {
        .name = "callback_latency",
        .description = "launch an empty kernel; a completion callback wakes the caller",
        .params = p_one,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 1.0,
        .goal = "completion to callback >= 1.0x cuLaunchHostFunc's (10.6 us on an H200)",
        .setup = async_setup,
        .run = callback_latency,
        .teardown = async_teardown,
        .baseline_name = "raw-cuda",
        .baseline_setup_env = cuda_raw_setup,
        .baseline_run = bench_baseline_cuda_host_func_roundtrip,
        .baseline_teardown = bench_baseline_cuda_teardown,
    },
};

const kiln_bench_suite kiln__bench_suite_async_cuda = {
    .name = "async_cuda",
    .description = "completion callbacks vs raw cuLaunchHostFunc (CUDA)",
    .backend = KILN_BACKEND_CUDA,
    .host_only = 0,
    .cases = cuda_cases,
    .case_count = sizeof cuda_cases / sizeof cuda_cases[0],
};
