/* SPDX-License-Identifier: MIT */
/* Suite `cpu`: the cost of kiln's CPU backend per operation against what a C programmer
 * would write without kiln — a plain pthread work queue (bench/baseline_queue.c) and
 * memcpy (bench/baseline_memcpy.c) — and against a peer runtime, StarPU
 * (bench/baseline_starpu.c; those cases come last and are left out, with one line on
 * stderr saying why, where libstarpu cannot be loaded); and how a blocking copy scales
 * with its size (the `copy` case over the scaling axis bytes = 4KiB..64MiB). The kiln
 * side uses only the public API on a CPU device; each case owns its context. The goal
 * cases' names are fixed by design.md. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>

#include "baselines.h"
#include "suite_common.h"
#include "suites.h"

#define BURST 10000u
#define COPY_BYTES ((size_t)64 << 20)

static void empty_kernel(const kiln_native_range *range, void *const *args, void *user) {
  (void)range;
  (void)args;
  (void)user;
}

/* An empty native kernel over a range of 1 and an event; the copy cases add two
 * buffers of the run's bytes (a the source, b the destination). */
static kiln_status cpu_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  s->range = kiln_range_1d(1);
  s->burst = BURST;
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  kd.name = "empty";
  kd.fn = empty_kernel;
  kiln_status st = kiln_kernel_create_native(s->context, &kd, &s->kernel);
  if (st == KILN_SUCCESS)
    st = kiln_event_create(s->context, NULL, &s->event);
  int64_t bytes = kiln_bench_env_num(env, "bytes", 0);
  if (st == KILN_SUCCESS && bytes > 0) {
    /* copy cases: both buffers written once, so no timed copy faults pages in */
    unsigned char pattern = 0x5a;
    kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
    s->bytes = bd.bytes = (size_t)bytes;
    st = kiln_buffer_create(s->context, &bd, &s->a);
    if (st == KILN_SUCCESS)
      st = kiln_buffer_create(s->context, &bd, &s->b);
    if (st == KILN_SUCCESS)
      st = kiln_buffer_fill(s->a, 0, s->bytes, &pattern, 1);
    if (st == KILN_SUCCESS)
      st = kiln_buffer_fill(s->b, 0, s->bytes, &pattern, 1);
  }
  return st;
}

static int cpu_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(kiln__suite_state), cpu_prepare, state);
}

/* A blocking buffer-to-buffer copy of the case's bytes, `iters` times. */
static int copy(void *p, uint64_t iters) {
  kiln__suite_state *s = p;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = kiln_buffer_copy(s->b, 0, s->a, 0, s->bytes);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static size_t copy_bytes = COPY_BYTES;

/* The memcpy baseline of the scaling case, at this run's size. */
static int memcpy_setup_env(const kiln_bench_env *env, void **state) {
  size_t bytes = (size_t)kiln_bench_env_num(env, "bytes", 0);
  return bench_baseline_memcpy_setup(&bytes, state);
}

static const int64_t copy_sizes[] = {4 << 10, 32 << 10, 256 << 10, 2 << 20, 16 << 20, 64 << 20};
static const kiln_bench_axis copy_axes[] = {
    {"bytes", copy_sizes, NULL, sizeof copy_sizes / sizeof copy_sizes[0], 1}};

static const kiln_bench_param p_roundtrip[] = {{"ops", NULL, 1}};
static const kiln_bench_param p_burst[] = {{"ops", NULL, BURST}};
static const kiln_bench_param p_copy[] = {{"bytes", NULL, (int64_t)COPY_BYTES}};

static const kiln_bench_case cases[] = {
    {
        .name = "op_roundtrip",
        .description = "submit one empty op (native kernel over a range of 1) and wait for it",
        .params = p_roundtrip,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 1.0,
        .goal = "round trip <= 1.0x the plain queue's",
        KILN__SUITE_SIDE(cpu_setup, kiln__suite_launch_wait),
        .baseline_name = "pthread-queue",
        .baseline_setup = bench_baseline_queue_setup,
        .baseline_run = bench_baseline_queue_roundtrip,
        .baseline_teardown = bench_baseline_queue_teardown,
    },
    {
        .name = "op_burst_10000",
        .description = "10 000 empty ops on one stream, then a stream synchronize; per op",
        .params = p_burst,
        .param_count = 1,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = BURST,
        .goal_ratio = 1.0 / 3.0,
        .goal = "per-op cost <= 3x the plain queue's per-task cost",
        KILN__SUITE_SIDE(cpu_setup, kiln__suite_launch_burst),
        .baseline_name = "pthread-queue",
        .baseline_setup = bench_baseline_queue_setup,
        .baseline_run = bench_baseline_queue_burst_10000,
        .baseline_teardown = bench_baseline_queue_teardown,
    },
    {
        .name = "event_record_query",
        .description = "record an event on a stream and query it until complete",
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        KILN__SUITE_SIDE(cpu_setup, kiln__suite_event_record_query),
        .baseline_name = "pthread-queue",
        .baseline_setup = bench_baseline_queue_setup,
        .baseline_run = bench_baseline_queue_marker_poll,
        .baseline_teardown = bench_baseline_queue_teardown,
    },
    {
        .name = "copy_64MiB",
        .description = "blocking copy of 64 MiB between two buffers of the CPU device",
        .params = p_copy,
        .param_count = 1,
        .unit = "GB/s",
        .better = KILN_BENCH_HIGHER,
        .work_per_op = (double)COPY_BYTES,
        .goal_ratio = 0.9,
        .goal = "copy >= 0.9x memcpy",
        .arg = &copy_bytes,
        KILN__SUITE_SIDE(cpu_setup, copy),
        .baseline_name = "memcpy",
        .baseline_setup = bench_baseline_memcpy_setup,
        .baseline_run = bench_baseline_memcpy_run,
        .baseline_teardown = bench_baseline_memcpy_teardown,
    },
    {
        .name = "copy",
        .description = "blocking copy between two buffers over bytes = 4KiB..64MiB (scaling)",
        .unit = "GB/s",
        .better = KILN_BENCH_HIGHER,
        .work_axis = "bytes",
        .axes = copy_axes,
        .axis_count = 1,
        KILN__SUITE_SIDE(cpu_setup, copy),
        .baseline_name = "memcpy",
        .baseline_setup_env = memcpy_setup_env,
        .baseline_run = bench_baseline_memcpy_run,
        .baseline_teardown = bench_baseline_memcpy_teardown,
    },
    /* The StarPU cases: last, STARPU_CASES of them (left out when StarPU is absent). */
    {
        .name = "op_burst_10000_starpu",
        .description = "10 000 empty ops on one stream, then a stream synchronize; per op; vs "
                       "10 000 StarPU tasks of an empty codelet and starpu_task_wait_for_all",
        .params = p_burst,
        .param_count = 1,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = BURST,
        .goal_ratio = 15.0,
        .goal = "per-op cost <= 1/15 of StarPU's per-task cost",
        KILN__SUITE_SIDE(cpu_setup, kiln__suite_launch_burst),
        .baseline_name = "starpu",
        .baseline_setup = bench_baseline_starpu_setup,
        .baseline_run = bench_baseline_starpu_burst_10000,
        .baseline_teardown = bench_baseline_starpu_teardown,
    },
    {
        .name = "op_roundtrip_starpu",
        .description = "submit one empty op and wait for it; vs one synchronous StarPU task of "
                       "an empty codelet",
        .params = p_roundtrip,
        .param_count = 1,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 3.0,
        .goal = "round trip <= 1/3 of StarPU's",
        KILN__SUITE_SIDE(cpu_setup, kiln__suite_launch_wait),
        .baseline_name = "starpu",
        .baseline_setup = bench_baseline_starpu_setup,
        .baseline_run = bench_baseline_starpu_roundtrip,
        .baseline_teardown = bench_baseline_starpu_teardown,
    },
};
#define STARPU_CASES 2u
#define CASE_COUNT (sizeof cases / sizeof cases[0])

static const kiln_bench_suite with_starpu = {
    .name = "cpu",
    .description = "CPU backend per-op costs vs a plain pthread queue and StarPU, and copy vs "
                   "memcpy",
    .backend = KILN_BACKEND_CPU,
    .host_only = 0,
    .cases = cases,
    .case_count = CASE_COUNT,
};

static const kiln_bench_suite without_starpu = {
    .name = "cpu",
    .description = "CPU backend per-op costs vs a plain pthread queue, and copy vs memcpy "
                   "(StarPU cases skipped: no libstarpu)",
    .backend = KILN_BACKEND_CPU,
    .host_only = 0,
    .cases = cases,
    .case_count = CASE_COUNT - STARPU_CASES,
};

static const kiln_bench_suite *chosen;

/* Whether StarPU can be loaded decides which cases the suite has; when it cannot, one
 * line says which cases are skipped and why (like a suite without its device). */
static void choose(void) {
  char why[512];
  chosen = &with_starpu;
  if (bench_baseline_starpu_available(why, sizeof why))
    return;
  chosen = &without_starpu;
  fprintf(stderr, "kiln bench: skipping cases");
  for (size_t i = CASE_COUNT - STARPU_CASES; i < CASE_COUNT; i++)
    fprintf(stderr, "%s %s", i > CASE_COUNT - STARPU_CASES ? "," : "", cases[i].name);
  fprintf(stderr, " of suite cpu: %s\n", why);
}

const kiln_bench_suite *kiln__bench_suite_cpu(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, choose);
  return chosen;
}
