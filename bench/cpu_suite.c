/* SPDX-License-Identifier: MIT */
/* Suite `cpu`: the cost of kiln's CPU backend per operation against what a C programmer
 * would write without kiln — a plain pthread work queue (bench/baseline_queue.c) and
 * memcpy (bench/baseline_memcpy.c) — and against a peer runtime, StarPU
 * (bench/baseline_starpu.c; those cases come last and are left out, with one line on
 * stderr saying why, where libstarpu cannot be loaded); and how costs scale: a blocking
 * copy with its size (`copy`, bytes = 4KiB..64MiB), a burst with its length (`op_burst`,
 * ops = 10^2..10^6, with the memory one queued op holds), a launch with its buffer
 * arguments (`launch_buffers`, 1..64) and submission with its threads and streams
 * (`submit_threads`, 1..8 each). The kiln side uses only the public API on a CPU
 * device; each case owns its context. The goal cases' names are fixed by design.md. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "baselines.h"
#include "suite_common.h"
#include "trace_bench.h"
#include "suites.h"

#define BURST 10000u
#define COPY_BYTES ((size_t)64 << 20)
#define BUFFERS_BURST 1000u /* launches per iteration of launch_buffers */

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

/* The tracing cases' two sides share one context and stream (so one worker thread):
 * with a stream each, the placement of the two workers against the submitting thread
 * on this 2-vCPU VM moved one side by up to 1.7x — the ring side measured faster than
 * tracing off, in runs of either build. */
static void *trace_shared;
static unsigned trace_refs;

static int trace_setup(const kiln_bench_env *env, void **state) {
  if (!trace_refs) {
    int rc = cpu_setup(env, &trace_shared);
    if (rc != 0)
      return rc;
  }
  trace_refs++;
  *state = trace_shared;
  return 0;
}

static void trace_teardown(void *state) {
  (void)state;
  if (trace_refs && --trace_refs == 0) {
    kiln__suite_teardown(trace_shared);
    trace_shared = NULL;
  }
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

/* ---- scaling cases: op_burst, launch_buffers, submit_threads ---- */

/* The common state and what the scaling cases add. */
typedef struct cpu_state {
  kiln__suite_state base;                /* first: kiln__suite_teardown frees it */
  kiln_stream streams[BENCH_FANOUT_MAX]; /* [0] is base.stream */
  unsigned stream_count, threads;
  bench_fanout *team;                     /* threads > 1 */
  kiln_buffer bufs[KILN_MAX_KERNEL_ARGS]; /* launch_buffers' arguments */
  kiln_arg argv[KILN_MAX_KERNEL_ARGS];
  size_t argc;
  kiln_param params[KILN_MAX_KERNEL_ARGS];
} cpu_state;

static void cpu_state_teardown(void *state) {
  cpu_state *c = state;
  if (c == NULL)
    return;
  bench_fanout_destroy(c->team);
  for (unsigned i = 1; i < c->stream_count; i++)
    kiln_stream_destroy(c->streams[i]);
  kiln_kernel_destroy(c->base.kernel); /* waits for the work that uses the buffers */
  c->base.kernel = NULL;
  for (size_t i = 0; i < c->argc; i++)
    kiln_buffer_destroy(c->bufs[i]);
  kiln__suite_teardown(&c->base);
}

/* -- memory per queued op, reported by op_burst's set-up -- */

/* kiln's host allocations, while counting. Relaxed updates: a plain counter that pairs
 * with nothing; it is read by the thread that queued the ops, after its own calls, while
 * the gate holds the only other thread that could allocate. */
static _Atomic long long live_bytes;

static void *counting_alloc(size_t size, size_t align, void *user) {
  (void)user;
  void *p = NULL;
  if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) != 0)
    return NULL;
  atomic_fetch_add_explicit(&live_bytes, (long long)size, memory_order_relaxed);
  return p;
}

static void counting_free(void *ptr, size_t size, size_t align, void *user) {
  (void)align;
  (void)user;
  atomic_fetch_sub_explicit(&live_bytes, (long long)size, memory_order_relaxed);
  free(ptr);
}

/* Holds the stream's worker until *user is set (sleeping, so the submitter has a core). */
static void gate_kernel(const kiln_native_range *range, void *const *args, void *user) {
  (void)range;
  (void)args;
  /* acquire: pairs with the release store after the ops were queued */
  while (!atomic_load_explicit((_Atomic int *)user, memory_order_acquire)) {
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
  }
}

/* Queue `ops` empty ops behind a gate op on a context of their own, with kiln's host
 * allocations counted (kiln_set_allocator, possible only while no context exists), and
 * say on stderr how many bytes one queued op holds; then open the gate and drain. */
static void report_queue_memory(const kiln_bench_env *env, uint64_t ops) {
  static _Atomic int gate;
  kiln_allocator counting = KILN_ALLOCATOR_INIT;
  counting.alloc = counting_alloc;
  counting.free = counting_free;
  kiln_context ctx = NULL;
  kiln_stream stream = NULL;
  kiln_kernel gate_k = NULL, empty_k = NULL;
  long long before = 0, after = 0;
  kiln_range one = kiln_range_1d(1);
  const char *step = "kiln_set_allocator";
  atomic_store(&gate, 0);
  kiln_status st = kiln_set_allocator(&counting);
  if (st != KILN_SUCCESS)
    goto report;
  int gated = 0;
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  kd.name = "gate";
  kd.fn = gate_kernel;
  kd.user = &gate;
  step = "setting up";
  st = kiln_context_create(env->device, NULL, &ctx);
  if (st == KILN_SUCCESS)
    st = kiln_stream_create(ctx, NULL, &stream);
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create_native(ctx, &kd, &gate_k);
  kd.name = "empty";
  kd.fn = empty_kernel;
  kd.user = NULL;
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create_native(ctx, &kd, &empty_k);
  kiln_pending token = KILN_PENDING_INIT;
  if (st == KILN_SUCCESS &&
      (st = kiln_launch_async(stream, gate_k, &one, NULL, 0, &token)) == KILN_SUCCESS) {
    gated = 1;
    st = kiln_pending_release(&token);
  }
  step = "queueing";
  before = atomic_load(&live_bytes);
  for (uint64_t i = 0; i < ops && st == KILN_SUCCESS; i++) {
    kiln_pending t = KILN_PENDING_INIT;
    st = kiln_launch_async(stream, empty_k, &one, NULL, 0, &t);
    if (st == KILN_SUCCESS)
      st = kiln_pending_release(&t);
  }
  after = atomic_load(&live_bytes);
  /* release: pairs with the gate kernel's acquire load */
  atomic_store_explicit(&gate, 1, memory_order_release);
  if (gated)
    kiln_stream_synchronize(stream);
  kiln_context_destroy(ctx); /* NULL: no-op */
  kiln_set_allocator(NULL);
report:
  if (isatty(STDERR_FILENO))
    fputs("\r\033[K", stderr); /* over the progress bar */
  if (st == KILN_SUCCESS)
    fprintf(stderr,
            "kiln bench: cpu/op_burst ops=%llu: %.1f bytes of kiln's host memory per queued op "
            "(%llu ops queued behind a blocked one, counted through kiln_set_allocator)\n",
            (unsigned long long)ops, (double)(after - before) / (double)ops,
            (unsigned long long)ops);
  else
    fprintf(stderr,
            "kiln bench: cpu/op_burst ops=%llu: memory per queued op not measured: %s "
            "failed: %s\n",
            (unsigned long long)ops, step, kiln_status_name(st));
}

/* op_burst: a burst of `ops` empty launches per iteration (kiln__suite_launch_burst). */
static int op_burst_setup(const kiln_bench_env *env, void **state) {
  int64_t ops = kiln_bench_env_num(env, "ops", BURST);
  if (ops <= 0 || ops > UINT32_MAX)
    return KILN_ERROR_INVALID_ARGUMENT;
  report_queue_memory(env, (uint64_t)ops);
  int rc = kiln__suite_setup(env, sizeof(kiln__suite_state), cpu_prepare, state);
  if (rc == KILN_SUCCESS)
    ((kiln__suite_state *)*state)->burst = (unsigned)ops;
  return rc;
}

static int queue_burst_setup_env(const kiln_bench_env *env, void **state) {
  bench_queue_args a = {(uint64_t)kiln_bench_env_num(env, "ops", BURST), 0, 1, 1};
  return bench_baseline_queue_setup(&a, state);
}

/* launch_buffers: a native kernel with `buffers` read-write buffer parameters, each
 * launch naming as many distinct 64-byte buffers. */
static kiln_status buffers_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  cpu_state *c = (cpu_state *)s;
  int64_t n = kiln_bench_env_num(env, "buffers", 1);
  if (n < 1 || n > KILN_MAX_KERNEL_ARGS)
    return KILN_ERROR_INVALID_ARGUMENT;
  c->stream_count = 1;
  s->range = kiln_range_1d(1);
  s->burst = BUFFERS_BURST;
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 64;
  unsigned char zero = 0;
  kiln_status st = KILN_SUCCESS;
  for (int64_t i = 0; i < n && st == KILN_SUCCESS; i++) {
    st = kiln_buffer_create(s->context, &bd, &c->bufs[i]);
    if (st != KILN_SUCCESS)
      break;
    c->argc++;
    c->argv[i] = kiln_arg_buffer(c->bufs[i]);
    c->params[i] = (kiln_param){KILN_PARAM_BUFFER_READ_WRITE, 0};
    st = kiln_buffer_fill(c->bufs[i], 0, bd.bytes, &zero, 1);
  }
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  kd.name = "touch_none";
  kd.fn = empty_kernel;
  kd.params = c->params;
  kd.param_count = (size_t)n;
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create_native(s->context, &kd, &s->kernel);
  return st;
}

static int buffers_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(cpu_state), buffers_prepare, state);
}

/* `burst` launches with the buffer arguments, tokens released, one synchronize. */
static int buffers_burst(void *state, uint64_t iters) {
  cpu_state *c = state;
  kiln__suite_state *s = &c->base;
  for (uint64_t i = 0; i < iters; i++) {
    for (unsigned k = 0; k < s->burst; k++) {
      kiln_pending token = KILN_PENDING_INIT;
      kiln_status st = kiln_launch_async(s->stream, s->kernel, &s->range, c->argv, c->argc, &token);
      if (st == KILN_SUCCESS)
        st = kiln_pending_release(&token);
      if (st != KILN_SUCCESS) {
        kiln_stream_synchronize(s->stream);
        return st;
      }
    }
    kiln_status st = kiln_stream_synchronize(s->stream);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static int queue_args_setup_env(const kiln_bench_env *env, void **state) {
  bench_queue_args a = {BUFFERS_BURST, (unsigned)kiln_bench_env_num(env, "buffers", 1), 1, 1};
  return bench_baseline_queue_setup(&a, state);
}

/* submit_threads: `threads` threads share a burst of BURST empty launches, thread t's
 * k-th going to stream (t + k * threads) % streams, then every stream is synchronized. */
static int submit_share(void *ctx, unsigned thread) {
  cpu_state *c = ctx;
  kiln__suite_state *s = &c->base;
  unsigned threads = c->threads;
  unsigned share = BURST / threads + (thread < BURST % threads);
  for (unsigned k = 0; k < share; k++) {
    kiln_pending token = KILN_PENDING_INIT;
    kiln_stream stream = c->streams[(thread + k * threads) % c->stream_count];
    kiln_status st = kiln_launch_async(stream, s->kernel, &s->range, NULL, 0, &token);
    if (st == KILN_SUCCESS)
      st = kiln_pending_release(&token);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static kiln_status threads_prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  cpu_state *c = (cpu_state *)s;
  int64_t threads = kiln_bench_env_num(env, "threads", 1);
  int64_t streams = kiln_bench_env_num(env, "streams", 1);
  if (threads < 1 || threads > BENCH_FANOUT_MAX || streams < 1 || streams > BENCH_FANOUT_MAX)
    return KILN_ERROR_INVALID_ARGUMENT;
  kiln_status st = cpu_prepare(s, env);
  c->streams[0] = s->stream;
  c->stream_count = 1;
  c->threads = (unsigned)threads;
  while (st == KILN_SUCCESS && c->stream_count < (unsigned)streams) {
    st = kiln_stream_create(s->context, NULL, &c->streams[c->stream_count]);
    if (st == KILN_SUCCESS)
      c->stream_count++;
  }
  if (st == KILN_SUCCESS && threads > 1 &&
      bench_fanout_create(c->threads, submit_share, c, &c->team) != 0)
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
  return st;
}

static int threads_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(cpu_state), threads_prepare, state);
}

static int threads_burst(void *state, uint64_t iters) {
  cpu_state *c = state;
  for (uint64_t i = 0; i < iters; i++) {
    int rc = c->team != NULL ? bench_fanout_run(c->team) : submit_share(c, 0);
    for (unsigned k = 0; k < c->stream_count; k++) {
      kiln_status st = kiln_stream_synchronize(c->streams[k]);
      if (rc == 0)
        rc = st;
    }
    if (rc != 0)
      return rc;
  }
  return KILN_SUCCESS;
}

static int queue_threads_setup_env(const kiln_bench_env *env, void **state) {
  bench_queue_args a = {BURST, 0, (unsigned)kiln_bench_env_num(env, "threads", 1),
                        (unsigned)kiln_bench_env_num(env, "streams", 1)};
  return bench_baseline_queue_setup(&a, state);
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

static const int64_t burst_ops[] = {100, 1000, 10000, 100000, 1000000};
static const kiln_bench_axis burst_axes[] = {
    {"ops", burst_ops, NULL, sizeof burst_ops / sizeof burst_ops[0], 1}};
static const int64_t buffer_counts[] = {1, 2, 4, 8, 16, 32, 64};
static const kiln_bench_axis buffer_axes[] = {
    {"buffers", buffer_counts, NULL, sizeof buffer_counts / sizeof buffer_counts[0], 1}};
static const int64_t team_sizes[] = {1, 2, 4, 8};
static const kiln_bench_axis thread_axes[] = {
    {"threads", team_sizes, NULL, sizeof team_sizes / sizeof team_sizes[0], 1},
    {"streams", team_sizes, NULL, sizeof team_sizes / sizeof team_sizes[0], 1}};

static const kiln_bench_param p_roundtrip[] = {{"ops", NULL, 1}};
static const kiln_bench_param p_buffers[] = {{"ops", NULL, BUFFERS_BURST}};
static const kiln_bench_param p_threads[] = {{"ops", NULL, BURST}};
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
        .goal_ratio = 0.4, /* issue #14 */
        .goal = "per-op cost <= 2.5x the plain queue's per-task cost",
        KILN__SUITE_SIDE(cpu_setup, kiln__suite_launch_burst),
        .baseline_name = "pthread-queue",
        .baseline_setup = bench_baseline_queue_setup,
        .baseline_run = bench_baseline_queue_burst_10000,
        .baseline_teardown = bench_baseline_queue_teardown,
    },
    {
        .name = "op_burst_10000_trace_on",
        .description = "op_burst_10000 with a trace recording every op (in memory); vs the "
                       "same burst with tracing off",
        .params = p_burst,
        .param_count = 1,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = BURST,
        .goal_ratio = 0.7, /* issue #21 */
        .goal = "tracing costs <= 1/0.7 of the untraced per-op cost",
        .setup = trace_setup,
        .run = kiln__suite_burst_traced,
        .teardown = trace_teardown,
        .baseline_name = "ref-trace-off",
        .baseline_setup_env = trace_setup,
        .baseline_run = bench_ref_trace_off_burst,
        .baseline_teardown = trace_teardown,
    },
    {
        .name = "op_burst_10000_trace_ring",
        .description = "op_burst_10000 with a ring trace (4096 events per thread); vs the same "
                       "burst with tracing off",
        .params = p_burst,
        .param_count = 1,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = BURST,
        .goal_ratio = 0.85, /* issue #21 */
        .goal = "ring tracing costs <= 1/0.85 of the untraced per-op cost",
        .setup = trace_setup,
        .run = kiln__suite_burst_traced_ring,
        .teardown = trace_teardown,
        .baseline_name = "ref-trace-off",
        .baseline_setup_env = trace_setup,
        .baseline_run = bench_ref_trace_off_burst,
        .baseline_teardown = trace_teardown,
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
    {
        .name = "op_burst",
        .description = "a burst of `ops` empty ops on one stream, then a synchronize, over ops = "
                       "10^2..10^6 (scaling); Mitems/s = million ops per second",
        .unit = "Mitems/s",
        .better = KILN_BENCH_HIGHER,
        .work_axis = "ops",
        .axes = burst_axes,
        .axis_count = 1,
        KILN__SUITE_SIDE(op_burst_setup, kiln__suite_launch_burst),
        .baseline_name = "pthread-queue",
        .baseline_setup_env = queue_burst_setup_env,
        .baseline_run = bench_baseline_queue_burst,
        .baseline_teardown = bench_baseline_queue_teardown,
    },
    {
        .name = "launch_buffers",
        .description = "1000 launches of a native kernel with `buffers` read-write buffer "
                       "arguments, then a synchronize, over buffers = 1..64 (scaling); per launch",
        .params = p_buffers,
        .param_count = 1,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = BUFFERS_BURST,
        .axes = buffer_axes,
        .axis_count = 1,
        .setup = buffers_setup,
        .run = buffers_burst,
        .teardown = cpu_state_teardown,
        .baseline_name = "pthread-queue",
        .baseline_setup_env = queue_args_setup_env,
        .baseline_run = bench_baseline_queue_burst,
        .baseline_teardown = bench_baseline_queue_teardown,
    },
    {
        .name = "submit_threads",
        .description = "10 000 empty ops submitted by `threads` threads over `streams` streams, "
                       "then every stream synchronized, over 1..8 each (scaling); per op",
        .params = p_threads,
        .param_count = 1,
        .unit = "ns",
        .better = KILN_BENCH_LOWER,
        .ops_per_iter = BURST,
        .axes = thread_axes,
        .axis_count = 2,
        .setup = threads_setup,
        .run = threads_burst,
        .teardown = cpu_state_teardown,
        .baseline_name = "pthread-queue",
        .baseline_setup_env = queue_threads_setup_env,
        .baseline_run = bench_baseline_queue_threads,
        .baseline_teardown = bench_baseline_queue_teardown,
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
