/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* The device pool on the mock backend: fault injection as design.md defines it (a clean
 * run counts C backend calls — slab allocations, block views, queued ops — and host
 * allocations; then for N = 1..C only the Nth fails, and in a second mode every call from
 * N on): every run ends in the injected status, the pool stays consistent (it can still
 * be destroyed: no live buffer miscounted), nothing leaks (test allocator, and the mock's
 * own count of device bytes returns to zero). Also: compaction makes the backend's
 * allocated bytes drop; unbacked slabs; KILN_POOL=debug never reuses a block and so
 * always refuses a second free; KILN_POOL=off gives every allocation its own device
 * allocation. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define MIN_BACKEND_CALLS 20
#define MIN_ALLOCATIONS 20

typedef struct run_result {
  kiln_status status;
  const char *step;
  int data_ok;
  int consistent; /* the pool could be destroyed once its buffers were freed */
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

static int check_words(const uint32_t *w, size_t n, uint32_t v) {
  for (size_t i = 0; i < n; i++)
    if (w[i] != v)
      return 0;
  return 1;
}

/* Never asserts: pool create (warmed), allocations on every path, fills and reads, frees
 * on two streams (one ordered behind the other stream's work), a reuse, compaction. */
static run_result run_scenario(kiln_device dev) {
  run_result res = {KILN_SUCCESS, "", 0, 1};
  kiln_context ctx = NULL;
  kiln_stream s1 = NULL, s2 = NULL;
  kiln_pool pool = NULL;
  kiln_buffer a = NULL, b = NULL, c = NULL, d = NULL;
  static uint32_t back[1024];
  kiln_pending t = KILN_PENDING_INIT, tg = KILN_PENDING_INIT;
  kiln_kernel gate_k = NULL;
  kt_gate gate;
  kt_gate_init(&gate);
  STEP("kiln_context_create", kiln_context_create(dev, NULL, &ctx));
  STEP("kiln_stream_create", kiln_stream_create(ctx, NULL, &s1));
  STEP("kiln_stream_create", kiln_stream_create(ctx, NULL, &s2));
  kiln_pool_desc pd = KILN_POOL_DESC_INIT;
  pd.max_class_bytes = 4096; /* classes 256 .. 4096 */
  pd.slab_bytes = 64 * 1024;
  pd.fit_slab_bytes = 4 << 20;
  pd.huge_bytes = 1 << 20;
  pd.warm_count = 1;
  STEP("kiln_pool_create", kiln_pool_create(ctx, &pd, &pool));
  kiln_status kst = KILN_SUCCESS;
  gate_k = kt_gate_kernel_noassert(ctx, &kst);
  STEP("kiln_kernel_create_native", kst);
  STEP("kiln_pool_alloc", kiln_pool_alloc(pool, s1, 100, &a));     /* a class hit */
  STEP("kiln_pool_alloc", kiln_pool_alloc(pool, s1, 5000, &b));    /* best fit */
  STEP("kiln_pool_alloc", kiln_pool_alloc(pool, s2, 2 << 20, &c)); /* huge */
  uint32_t va = 0xAAAAAAAAu, vb = 0xBBBBBBBBu, vc = 0xCCCCCCCCu;
  STEP("kiln_buffer_fill", kiln_buffer_fill(a, 0, 100, &va, 4));
  STEP("kiln_buffer_fill_async", kiln_buffer_fill_async(s1, b, 0, 4096, &vb, 4, &t));
  STEP("kiln_wait", kiln_wait(&t));
  /* s2 held by a gate, so the free on s1 is always ordered behind its fill (a marker) */
  STEP("gate launch", kt_gate_launch_async(s2, gate_k, &gate, &tg));
  STEP("kiln_buffer_fill_async", kiln_buffer_fill_async(s2, c, 0, 4096, &vc, 4, &t));
  STEP("kiln_pending_release", kiln_pending_release(&t));
  STEP("kiln_pool_free", kiln_pool_free(c, s1));
  c = NULL;
  kt_gate_open(&gate);
  STEP("kiln_wait(gate)", kiln_wait(&tg));
  STEP("kiln_buffer_read", kiln_buffer_read(a, 0, 100, back));
  res.data_ok = check_words(back, 25, va);
  STEP("kiln_buffer_read", kiln_buffer_read(b, 0, 4096, back));
  res.data_ok = res.data_ok && check_words(back, 1024, vb);
  STEP("kiln_pool_free", kiln_pool_free(b, s2));
  b = NULL;
  STEP("kiln_pool_alloc", kiln_pool_alloc(pool, s2, 6000, &d)); /* b's block, split again */
  STEP("kiln_buffer_fill", kiln_buffer_fill(d, 0, 6000, &vb, 4));
  STEP("kiln_pool_free", kiln_pool_free(d, s2));
  d = NULL;
  STEP("kiln_stream_synchronize", kiln_stream_synchronize(s1));
  STEP("kiln_stream_synchronize", kiln_stream_synchronize(s2));
  STEP("kiln_pool_compact", kiln_pool_compact(pool));
cleanup:
  kt_gate_open(&gate);
  if (t.id)
    kiln_pending_release(&t);
  if (tg.id && kiln_wait(&tg) != KILN_SUCCESS && res.status == KILN_SUCCESS)
    res.status = kiln_last_error()->status;
  kiln_kernel_destroy(gate_k);
  if (pool) {
    kiln_buffer live[] = {a, b, c, d};
    for (size_t i = 0; i < 4; i++)
      if (live[i] && kiln_pool_free(live[i], s1 ? s1 : NULL) != KILN_SUCCESS)
        kiln_buffer_destroy(live[i]);
    if (kiln_pool_destroy(pool) != KILN_SUCCESS)
      res.consistent = 0;
  }
  kiln_stream_destroy(s2);
  kiln_stream_destroy(s1);
  kiln_context_destroy(ctx);
  return res;
}

typedef struct run_counts {
  uint64_t backend_calls;
  size_t alloc_calls;
  int hit;
} run_counts;

static run_counts run_checked(kiln_device dev, kt_sweep_kind kind, kt_sweep_mode mode, uint64_t n) {
  char where[96];
  kt_sweep_label(kind, mode, n, where, sizeof where);
  KT_OK(kt_alloc_install());
  kt_sweep_arm(kind, mode, n, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_INFO);
  run_result res = run_scenario(dev);
  kt_log_capture_stop(&cap);
  kt_alloc_stats as = kt_alloc_get_stats();
  kt_alloc_fail_none();
  run_counts rc = {kiln_mock_calls(), as.calls, 0};
  uint64_t injected = kiln_mock_failures();
  KT_OK(kiln_mock_configure(NULL));
  if (kiln_set_allocator(NULL) != KILN_SUCCESS)
    fail_msg("%s: a context survived the run", where);
  if (!kt_alloc_check_clean(where))
    fail_msg("%s: host blocks leaked or freed wrongly", where);
  if (kiln_mock_buffer_bytes() != 0)
    fail_msg("%s: %llu bytes of device memory left allocated", where,
             (unsigned long long)kiln_mock_buffer_bytes());
  if (!res.consistent)
    fail_msg("%s: the pool could not be destroyed after its buffers were freed: %s", where,
             kiln_last_error()->message);
  rc.hit = kind == KT_SWEEP_BACKEND ? injected > 0 : as.failures > 0;
  if (!rc.hit) {
    if (res.status != KILN_SUCCESS)
      fail_msg("%s: nothing was injected, yet %s returned %s (%s)", where, res.step,
               kiln_status_name(res.status), kiln_last_error()->message);
    if (!res.data_ok)
      fail_msg("%s: a run without failures read wrong data", where);
    return rc;
  }
  /* An out-of-memory failure of a slab the pool absorbed by trimming its cached slabs
   * and trying again (issue #20): the run then succeeds, with the data intact. */
  if (res.status == KILN_SUCCESS && kt_log_capture_has(&cap, "trimmed") && res.data_ok)
    return rc;
  int ok = kind == KT_SWEEP_BACKEND ? res.status == KILN_ERROR_OUT_OF_DEVICE_MEMORY ||
                                          res.status == KILN_ERROR_DEPENDENCY_FAILED
                                    : res.status == KILN_ERROR_OUT_OF_HOST_MEMORY ||
                                          /* the mock's device memory is host memory */
                                          res.status == KILN_ERROR_OUT_OF_DEVICE_MEMORY;
  if (!ok)
    fail_msg("%s: expected the injected status, got %s from %s", where,
             kiln_status_name(res.status), res.status == KILN_SUCCESS ? "(nothing)" : res.step);
  return rc;
}

static void sweep(kt_sweep_kind kind, kt_sweep_mode mode) {
  kiln_device dev = kt_mock_device();
  run_counts clean = run_checked(dev, kind, KT_SWEEP_CLEAN, 0);
  uint64_t c = kind == KT_SWEEP_BACKEND ? clean.backend_calls : clean.alloc_calls;
  fprintf(stderr, "clean run: %llu backend calls, %zu host allocations\n",
          (unsigned long long)clean.backend_calls, clean.alloc_calls);
  if (c < (kind == KT_SWEEP_BACKEND ? MIN_BACKEND_CALLS : MIN_ALLOCATIONS))
    fail_msg("the scenario made only %llu calls", (unsigned long long)c);
  for (uint64_t n = 1; n <= c; n++) {
    run_counts rc = run_checked(dev, kind, mode, n);
    if (!rc.hit && kind == KT_SWEEP_BACKEND)
      fail_msg("N=%llu: the injected failure was never reached", (unsigned long long)n);
  }
}

static void sweep_backend_nth(void **state) {
  (void)state;
  sweep(KT_SWEEP_BACKEND, KT_SWEEP_NTH);
}
static void sweep_backend_from(void **state) {
  (void)state;
  sweep(KT_SWEEP_BACKEND, KT_SWEEP_FROM);
}
static void sweep_alloc_nth(void **state) {
  (void)state;
  sweep(KT_SWEEP_ALLOC, KT_SWEEP_NTH);
}
static void sweep_alloc_from(void **state) {
  (void)state;
  sweep(KT_SWEEP_ALLOC, KT_SWEEP_FROM);
}

/* ---- the backend's own count of allocated bytes ---- */
static void compact_drops_backend_bytes(void **state) {
  (void)state;
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_pool pool = NULL;
  KT_OK(kiln_pool_create(ctx, NULL, &pool));
  uint64_t base = kiln_mock_buffer_bytes();
  kiln_buffer b[30];
  for (int i = 0; i < 30; i++)
    KT_OK(kiln_pool_alloc(pool, NULL, (size_t)300 << (i % 15), &b[i]));
  uint64_t full = kiln_mock_buffer_bytes();
  kiln_pool_stats s = KILN_POOL_STATS_INIT;
  KT_OK(kiln_pool_get_stats(pool, &s));
  assert_int_equal(full - base, s.bytes_reserved);
  for (int i = 0; i < 30; i++)
    KT_OK(kiln_buffer_destroy(b[i]));
  assert_true(kiln_mock_buffer_bytes() > base); /* cached, not returned */
  KT_OK(kiln_pool_compact(pool));
  assert_int_equal(kiln_mock_buffer_bytes(), base);
  KT_OK(kiln_pool_destroy(pool));
  KT_OK(kiln_context_destroy(ctx));
}

static void unbacked_slabs_hold_no_memory(void **state) {
  (void)state;
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.unbacked_buffers = 1;
  KT_OK(kiln_mock_configure(&mc));
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_pool pool = NULL;
  KT_OK(kiln_pool_create(ctx, NULL, &pool));
  kiln_buffer b[8];
  for (int i = 0; i < 8; i++) /* 8 x 200 MiB: far more than this test may touch */
    KT_OK(kiln_pool_alloc(pool, NULL, (size_t)200 << 20, &b[i]));
  assert_true(kiln_mock_buffer_bytes() >= (uint64_t)1600 << 20);
  for (int i = 0; i < 8; i++)
    KT_OK(kiln_buffer_destroy(b[i]));
  assert_int_equal(kiln_mock_buffer_bytes(), 0); /* huge: straight back */
  KT_OK(kiln_pool_destroy(pool));
  KT_OK(kiln_context_destroy(ctx));
  KT_OK(kiln_mock_configure(NULL));
}

/* A buffer marked failed (an injected failure of an op writing it) is freed; the block's
 * next owner does not inherit the mark: its reads succeed. */
static void failed_mark_not_inherited(void **state) {
  (void)state;
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_pool pool = NULL;
  KT_OK(kiln_pool_create(ctx, NULL, &pool));
  kiln_buffer b = NULL, again = NULL, other = NULL;
  KT_OK(kiln_pool_alloc(pool, s, 4096, &b));
  KT_OK(kiln_pool_alloc(pool, s, 4096, &other));
  uint32_t v = 9, back[4];
  KT_OK(kiln_buffer_fill(other, 0, 4096, &v, 4)); /* the internal stream exists now */
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.fail_call = 1; /* the next backend call: the fill below */
  KT_OK(kiln_mock_configure(&mc));
  kiln_pending t = KILN_PENDING_INIT;
  KT_OK(kiln_buffer_fill_async(s, b, 0, 64, &v, 4, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_BACKEND);
  assert_int_equal(kiln_mock_failures(), 1);
  KT_EXPECT(kiln_buffer_read(b, 0, sizeof back, back), KILN_ERROR_DEPENDENCY_FAILED);
  KT_OK(kiln_pool_free(b, s));
  KT_OK(kiln_pool_alloc(pool, s, 4096, &again));
  assert_ptr_equal(again, b); /* the same block and handle object, reissued */
  KT_OK(kiln_buffer_read(again, 0, sizeof back, back)); /* no DEPENDENCY_FAILED */
  KT_OK(kiln_stream_synchronize(s));
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_context_destroy(ctx));
}

/* Device loss and reset: a lost device's pool refuses allocations and frees with
 * DEVICE_LOST; after kiln_device_reset the pool is of an older generation, refused too;
 * destroying its buffers, the pool and the context still succeeds, nothing leaked. */
static void device_loss_and_reset(void **state) {
  (void)state;
  KT_OK(kt_alloc_install());
  kiln_device dev = kt_mock_device();
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_pool pool = NULL;
  KT_OK(kiln_pool_create(ctx, NULL, &pool));
  kiln_buffer a = NULL, b = NULL, c = NULL;
  KT_OK(kiln_pool_alloc(pool, s, 1000, &a));
  KT_OK(kiln_pool_alloc(pool, s, 1 << 20, &b));
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.lose_device_call = 1;
  KT_OK(kiln_mock_configure(&mc));
  uint32_t v = 1;
  kiln_pending t = KILN_PENDING_INIT;
  KT_OK(kiln_buffer_fill_async(s, a, 0, 1000, &v, 4, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_DEVICE_LOST);
  KT_OK(kiln_mock_configure(NULL));
  KT_EXPECT_MSG(kiln_pool_alloc(pool, s, 64, &c), KILN_ERROR_DEVICE_LOST, "lost");
  assert_null(c);
  KT_EXPECT(kiln_pool_free(a, s), KILN_ERROR_DEVICE_LOST);
  KT_OK(kiln_device_reset(dev));
  KT_EXPECT_MSG(kiln_pool_alloc(pool, NULL, 64, &c), KILN_ERROR_DEVICE_LOST, "generation");
  KT_OK(kiln_buffer_destroy(a)); /* destroying old handles still succeeds */
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_pool_destroy(pool));
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
  KT_OK(kt_alloc_uninstall());
  assert_true(kt_alloc_check_clean("device_loss_and_reset"));
  assert_int_equal(kiln_mock_buffer_bytes(), 0);
}

/* ---- KILN_POOL=debug and =off (read at each pool's creation) ---- */
static void debug_mode_never_reuses(void **state) {
  (void)state;
  setenv("KILN_POOL", "debug", 1);
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_pool pool = NULL;
  KT_OK(kiln_pool_create(ctx, NULL, &pool));
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_buffer first = NULL, b = NULL;
  KT_OK(kiln_pool_alloc(pool, s, 512, &first));
  KT_OK(kiln_pool_free(first, s));
  for (int i = 0; i < 50; i++) {
    KT_OK(kiln_pool_alloc(pool, s, 512, &b));
    assert_ptr_not_equal(b, first);
    KT_OK(kiln_pool_free(b, s));
  }
  /* the first handle was never reissued: its second free is still refused */
  KT_EXPECT_MSG(kiln_pool_free(first, s), KILN_ERROR_INVALID_HANDLE, "already freed");
  kiln_pool_stats st = KILN_POOL_STATS_INIT;
  KT_OK(kiln_pool_get_stats(pool, &st));
  assert_int_equal(st.hits, 0);
  assert_int_equal(st.misses, 51);
  KT_OK(kiln_stream_synchronize(s));
  KT_OK(kiln_pool_compact(pool)); /* quarantined blocks' slabs still go back */
  KT_OK(kiln_pool_get_stats(pool, &st));
  assert_int_equal(st.bytes_reserved, 0);
  KT_OK(kiln_pool_destroy(pool));
  KT_OK(kiln_context_destroy(ctx));
  unsetenv("KILN_POOL");
}

static void off_mode_bypasses_the_pool(void **state) {
  (void)state;
  setenv("KILN_POOL", "off", 1);
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_pool pool = NULL;
  KT_OK(kiln_pool_create(ctx, NULL, &pool));
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  uint64_t base = kiln_mock_buffer_bytes();
  kiln_buffer a, b;
  KT_OK(kiln_pool_alloc(pool, s, 1000, &a));
  KT_OK(kiln_pool_alloc(pool, s, 1000, &b));
  assert_int_equal(kiln_mock_buffer_bytes() - base, 2000); /* exactly what was asked */
  uint32_t v = 5;
  KT_OK(kiln_buffer_fill(a, 0, 1000, &v, 4));
  KT_OK(kiln_pool_free(a, s));
  KT_OK(kiln_buffer_destroy(b));
  assert_int_equal(kiln_mock_buffer_bytes(), base);
  kiln_pool_stats st = KILN_POOL_STATS_INIT;
  KT_OK(kiln_pool_get_stats(pool, &st));
  assert_int_equal(st.device_allocs, 2);
  assert_int_equal(st.device_frees, 2);
  assert_int_equal(st.hits, 0);
  KT_OK(kiln_pool_destroy(pool));
  KT_OK(kiln_context_destroy(ctx));
  unsetenv("KILN_POOL");
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sweep_backend_nth),
      cmocka_unit_test(sweep_backend_from),
      cmocka_unit_test(sweep_alloc_nth),
      cmocka_unit_test(sweep_alloc_from),
      cmocka_unit_test(compact_drops_backend_bytes),
      cmocka_unit_test(unbacked_slabs_hold_no_memory),
      cmocka_unit_test(failed_mark_not_inherited),
      cmocka_unit_test(device_loss_and_reset),
      cmocka_unit_test(debug_mode_never_reuses),
      cmocka_unit_test(off_mode_bypasses_the_pool),
  };
  if (!kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the mock backend is not available (KILN_MOCK=1)\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
