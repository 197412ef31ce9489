/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* Fault-injection sweeps (design.md "Tests") over stream pools, stream sets, the
 * transfer stream and the pipeline helper on the mock backend: a clean run counts the
 * mock's backend calls C (and the test allocator's host allocations); then for N = 1..C
 * the Nth call fails once, and in a second mode every call from N on. Every run must end
 * in the injected status (the scenario returns its first failure, observing results in
 * an order where no failure is seen after work that depends on it), with everything
 * destroyed, no host block left and no warning logged. The sweeps assert C stays above
 * a minimum, so the scenario cannot shrink to nothing. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

#define ELEMS 512
#define CHUNKS 4
#define MIN_BACKEND_CALLS 30
#define MIN_ALLOCATIONS 12

typedef struct run_result {
  kiln_status status;
  const char *step;
  int data_ok;
} run_result;

#define STEP(name, call)                                     \
  do {                                                       \
    kiln_status st_ = (call);                                \
    if (st_ != KILN_SUCCESS && res.status == KILN_SUCCESS) { \
      res.status = st_;                                      \
      res.step = (name);                                     \
    }                                                        \
    if (st_ != KILN_SUCCESS)                                 \
      goto cleanup;                                          \
  } while (0)
#define OBSERVE(name, call)                                  \
  do {                                                       \
    kiln_status st_ = (call);                                \
    if (st_ != KILN_SUCCESS && res.status == KILN_SUCCESS) { \
      res.status = st_;                                      \
      res.step = (name);                                     \
    }                                                        \
  } while (0)

static kiln_kernel add_kernel;

/* out = in + 1 (a whole-buffer copy, then the add kernel). */
static kiln_status add_one(kiln_stream s, kiln_buffer in, kiln_buffer out, size_t chunk,
                           size_t in_bytes, size_t out_bytes, void *user) {
  (void)chunk, (void)out_bytes, (void)user;
  kiln_pending t;
  kiln_status st = kiln_buffer_copy_async(s, out, 0, in, 0, in_bytes, &t);
  if (st != KILN_SUCCESS)
    return st;
  kiln_pending_release(&t);
  static const uint64_t off = 0;
  static const uint32_t one = 1;
  kiln_arg args[3];
  kt_add_args(args, out, &off, &one);
  kiln_range r = kiln_range_1d(in_bytes / 4);
  st = kiln_launch_async(s, add_kernel, &r, args, 3, &t);
  if (st == KILN_SUCCESS)
    kiln_pending_release(&t);
  return st;
}

/* Never asserts: returns what happened. */
static run_result run_scenario(kiln_device dev) {
  run_result res = {KILN_SUCCESS, "", 0};
  kiln_context ctx = NULL;
  kiln_stream_pool pool = NULL;
  kiln_stream_set set = NULL;
  kiln_buffer a = NULL, b = NULL;
  kiln_stream s = NULL, tr = NULL;
  static uint32_t in[ELEMS], out[ELEMS], back_a[ELEMS], back_b[ELEMS];
  for (uint32_t i = 0; i < ELEMS; i++) {
    in[i] = i * 7u;
    out[i] = back_a[i] = back_b[i] = 0;
  }
  kiln_pending ta = {0}, tb = {0};
  kiln_status st = KILN_SUCCESS;
  add_kernel = NULL;
  STEP("kiln_context_create", kiln_context_create(dev, NULL, &ctx));
  add_kernel = kt_add_kernel_noassert(ctx, &st);
  STEP("kt_add_kernel", st);
  kiln_stream_pool_desc pd = KILN_STREAM_POOL_DESC_INIT;
  pd.policy = KILN_STREAM_LEAST_PENDING;
  pd.label = "faults";
  STEP("kiln_stream_pool_create", kiln_stream_pool_create(ctx, 3, &pd, &pool));
  STEP("kiln_stream_set_create", kiln_stream_set_create(ctx, 2, "ring", &set));
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = sizeof in;
  STEP("kiln_buffer_create", kiln_buffer_create(ctx, &bd, &a));
  STEP("kiln_buffer_create", kiln_buffer_create(ctx, &bd, &b));
  /* A pool's stream: upload into a; the transfer stream: upload into b. */
  STEP("kiln_stream_pool_acquire", kiln_stream_pool_acquire(pool, &s));
  STEP("kiln_buffer_write_async", kiln_buffer_write_async(s, a, 0, sizeof in, in, &ta));
  STEP("kiln_stream_pool_release", kiln_stream_pool_release(pool, s));
  STEP("kiln_context_transfer_stream", kiln_context_transfer_stream(ctx, &tr));
  STEP("kiln_buffer_write_async", kiln_buffer_write_async(tr, b, 0, sizeof in, in, &tb));
  /* The pipeline over its own set of 3 streams. */
  kiln_pipeline_desc p = KILN_PIPELINE_DESC_INIT;
  p.src = in;
  p.src_bytes = sizeof in;
  p.dst = out;
  p.dst_bytes = sizeof out;
  p.chunk_bytes = sizeof in / CHUNKS;
  p.compute = add_one;
  OBSERVE("kiln_pipeline_run", kiln_pipeline_run(ctx, &p));
  /* Twice more over the caller's set: made once, its buffers kept and reused. */
  p.streams = set;
  OBSERVE("kiln_pipeline_run", kiln_pipeline_run(ctx, &p));
  OBSERVE("kiln_pipeline_run", kiln_pipeline_run(ctx, &p));
  OBSERVE("kiln_wait", kiln_wait(&ta));
  OBSERVE("kiln_wait", kiln_wait(&tb));
  /* Reads back through the set's two streams (each reads one buffer). */
  kiln_pending r1 = {0}, r2 = {0};
  STEP("kiln_buffer_read_async",
       kiln_buffer_read_async(kiln_stream_set_get(set, 0), a, 0, sizeof back_a, back_a, &r1));
  STEP("kiln_buffer_read_async",
       kiln_buffer_read_async(kiln_stream_set_get(set, 1), b, 0, sizeof back_b, back_b, &r2));
  OBSERVE("kiln_wait", kiln_wait(&r1));
  OBSERVE("kiln_wait", kiln_wait(&r2));
  OBSERVE("kiln_stream_set_synchronize_all", kiln_stream_set_synchronize_all(set));
  OBSERVE("kiln_stream_pool_synchronize_all", kiln_stream_pool_synchronize_all(pool));
  char json[2048];
  OBSERVE("kiln_stream_pool_stats_json",
          kiln_stream_pool_stats_json(pool, json, sizeof json, NULL));
  if (res.status == KILN_SUCCESS) {
    res.data_ok = 1;
    for (uint32_t i = 0; i < ELEMS; i++)
      if (back_a[i] != in[i] || back_b[i] != in[i] || out[i] != in[i] + 1u)
        res.data_ok = 0;
  }
cleanup:
  if (ta.id)
    OBSERVE("kiln_wait", kiln_wait(&ta));
  if (tb.id)
    OBSERVE("kiln_wait", kiln_wait(&tb));
  OBSERVE("kiln_stream_set_destroy", kiln_stream_set_destroy(set));
  OBSERVE("kiln_stream_pool_destroy", kiln_stream_pool_destroy(pool));
  OBSERVE("kiln_buffer_destroy", kiln_buffer_destroy(a));
  OBSERVE("kiln_buffer_destroy", kiln_buffer_destroy(b));
  OBSERVE("kiln_kernel_destroy", kiln_kernel_destroy(add_kernel));
  OBSERVE("kiln_context_destroy", kiln_context_destroy(ctx));
  return res;
}

typedef struct run_counts {
  uint64_t backend_calls;
  size_t alloc_calls;
  int hit;
} run_counts;

static run_counts run_checked(kiln_device dev, kt_sweep_kind kind, kt_sweep_mode mode, uint64_t n,
                              kiln_status injected) {
  char where[96];
  kt_sweep_label(kind, mode, n, where, sizeof where);
  KT_OK(kt_alloc_install());
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  kt_sweep_arm(kind, mode, n, injected);

  run_result res = run_scenario(dev);

  kt_alloc_stats as = kt_alloc_get_stats();
  kt_alloc_fail_none();
  run_counts rc = {kiln_mock_calls(), as.calls, 0};
  uint64_t mock_failures = kiln_mock_failures();
  KT_OK(kiln_mock_configure(NULL));
  kt_log_capture_stop(&cap);
  kiln_status unset = kiln_set_allocator(NULL);
  if (unset != KILN_SUCCESS)
    fail_msg("%s: a context survived the run (kiln_set_allocator(NULL): %s)", where,
             kiln_last_error()->message);
  if (!kt_alloc_check_clean(where))
    fail_msg("%s: host blocks leaked or freed wrongly", where);
  if (cap.warn_lines)
    fail_msg("%s: %d warning(s) logged:\n%s", where, cap.warn_lines, cap.text);
  rc.hit = kind == KT_SWEEP_BACKEND ? mock_failures > 0 : as.failures > 0;
  if (!rc.hit) {
    if (res.status != KILN_SUCCESS)
      fail_msg("%s: nothing was injected, yet %s returned %s (%s)", where, res.step,
               kiln_status_name(res.status), kiln_last_error()->message);
    if (!res.data_ok)
      fail_msg("%s: a run without failures read wrong data", where);
    return rc;
  }
  int ok = kind == KT_SWEEP_BACKEND ? res.status == injected
                                    : res.status == KILN_ERROR_OUT_OF_HOST_MEMORY ||
                                          (res.status == KILN_ERROR_OUT_OF_DEVICE_MEMORY &&
                                           (strcmp(res.step, "kiln_buffer_create") == 0 ||
                                            strcmp(res.step, "kiln_pipeline_run") == 0));
  if (!ok)
    fail_msg("%s: expected the run to end in %s, got %s from %s", where,
             kind == KT_SWEEP_BACKEND ? kiln_status_name(injected)
                                      : "KILN_ERROR_OUT_OF_HOST_MEMORY",
             kiln_status_name(res.status),
             res.status == KILN_SUCCESS ? "(every step: the failure was swallowed)" : res.step);
  return rc;
}

static void sweep_backend(kt_sweep_mode mode, kiln_status injected) {
  kiln_device dev = kt_mock_device();
  uint64_t c = run_checked(dev, KT_SWEEP_BACKEND, KT_SWEEP_CLEAN, 0, injected).backend_calls;
  if (c < MIN_BACKEND_CALLS)
    fail_msg("the scenario made %llu backend calls, expected at least %d", (unsigned long long)c,
             MIN_BACKEND_CALLS);
  for (uint64_t n = 1; n <= c; n++)
    if (!run_checked(dev, KT_SWEEP_BACKEND, mode, n, injected).hit)
      fail_msg("N=%llu: the injected failure was never reached", (unsigned long long)n);
  fprintf(stderr, "%llu backend calls, every run ended in %s\n", (unsigned long long)c,
          kiln_status_name(injected));
}

static void sweep_alloc(kt_sweep_mode mode) {
  kiln_device dev = kt_mock_device();
  size_t c = run_checked(dev, KT_SWEEP_ALLOC, KT_SWEEP_CLEAN, 0, KILN_ERROR_BACKEND).alloc_calls;
  if (c < MIN_ALLOCATIONS)
    fail_msg("the scenario made %zu host allocations, expected at least %d", c, MIN_ALLOCATIONS);
  size_t hit = 0;
  for (size_t n = 1; n <= c; n++)
    if (run_checked(dev, KT_SWEEP_ALLOC, mode, n, KILN_ERROR_BACKEND).hit)
      hit++;
  fprintf(stderr, "%zu host allocations; %zu runs hit their failure and ended cleanly\n", c, hit);
  assert_true(hit * 2 >= c);
}

static void backend_fail_nth(void **state) {
  (void)state;
  sweep_backend(KT_SWEEP_NTH, KILN_ERROR_BACKEND);
}

static void backend_fail_from(void **state) {
  (void)state;
  sweep_backend(KT_SWEEP_FROM, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
}

static void alloc_fail_nth(void **state) {
  (void)state;
  sweep_alloc(KT_SWEEP_NTH);
}

static void alloc_fail_from(void **state) {
  (void)state;
  sweep_alloc(KT_SWEEP_FROM);
}

/* A stream's label is in the error that reports its failure, and in a pool's. */
static void sync_failure_names_the_stream(void **state) {
  (void)state;
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_stream_desc d = KILN_STREAM_DESC_INIT;
  d.label = "h2d-0";
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(ctx, &d, &s));
  kiln_stream_pool pool = NULL;
  kiln_stream_pool_desc pd = KILN_STREAM_POOL_DESC_INIT;
  pd.label = "copies";
  KT_OK(kiln_stream_pool_create(ctx, 2, &pd, &pool));
  kiln_stream p1 = NULL;
  KT_OK(kiln_stream_pool_get(pool, 1, &p1));
  kiln_buffer b = kt_buffer(ctx, 64);
  uint32_t v = 9;
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.fail_call = 1; /* the next backend call: the fill queued on s */
  KT_OK(kiln_mock_configure(&mc));
  kiln_pending t;
  KT_OK(kiln_buffer_fill_async(s, b, 0, 64, &v, sizeof v, &t));
  KT_OK(kiln_pending_release(&t));
  KT_EXPECT_MSG(kiln_stream_synchronize(s), KILN_ERROR_BACKEND, "stream 'h2d-0' (id 1)");
  KT_MSG_HAS("kiln_buffer_fill_async");
  /* A token's wait names it too. */
  KT_OK(kiln_mock_configure(&mc));
  KT_OK(kiln_buffer_fill_async(s, b, 0, 64, &v, sizeof v, &t));
  KT_EXPECT_MSG(kiln_wait(&t), KILN_ERROR_BACKEND, "on stream 'h2d-0' (id 1) failed");
  KT_OK(kiln_mock_configure(&mc)); /* counter back to 0: the fill on the pool's stream */
  KT_OK(kiln_buffer_fill_async(p1, b, 0, 64, &v, sizeof v, &t));
  KT_OK(kiln_pending_release(&t));
  KT_EXPECT_MSG(kiln_stream_pool_synchronize_all(pool), KILN_ERROR_BACKEND, "'copies[1]'");
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_stream_pool_synchronize_all(pool)); /* reported once */
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
}

/* After a device loss a pool refuses acquire (DEVICE_LOST, saying what to do) but takes
 * its held streams back and is destroyed; after kiln_device_reset a new pool works. */
static void device_loss_refuses_acquire_not_release(void **state) {
  (void)state;
  kiln_device dev = kt_mock_device();
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  kiln_stream_pool pool = NULL;
  KT_OK(kiln_stream_pool_create(ctx, 2, NULL, &pool));
  kiln_stream held = NULL, s = NULL;
  KT_OK(kiln_stream_pool_acquire(pool, &held));
  kiln_buffer b = kt_buffer(ctx, 64);
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.lose_device_call = 1; /* the next backend call: the write below */
  KT_OK(kiln_mock_configure(&c));
  uint32_t h[16] = {0};
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(held, b, 0, sizeof h, h, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_DEVICE_LOST);
  KT_OK(kiln_mock_configure(NULL));
  KT_EXPECT_MSG(kiln_stream_pool_acquire(pool, &s), KILN_ERROR_DEVICE_LOST, "lost");
  assert_null(s);
  KT_OK(kiln_stream_pool_release(pool, held));
  KT_EXPECT(kiln_stream_pool_release(pool, held), KILN_ERROR_INVALID_STATE);
  KT_OK(kiln_stream_pool_destroy(pool));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_context_destroy(ctx));
  KT_OK(kiln_device_reset(dev));
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  KT_OK(kiln_stream_pool_create(ctx, 2, NULL, &pool));
  KT_OK(kiln_stream_pool_acquire(pool, &s));
  KT_OK(kiln_stream_pool_release(pool, s));
  KT_OK(kiln_context_destroy(ctx));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(device_loss_refuses_acquire_not_release),
    cmocka_unit_test(sync_failure_names_the_stream),
    cmocka_unit_test(backend_fail_nth),
    cmocka_unit_test(backend_fail_from),
    cmocka_unit_test(alloc_fail_nth),
    cmocka_unit_test(alloc_fail_from),
};

KT_MAIN_MOCK(tests)
