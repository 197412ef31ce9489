/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* The pinned host pool on the mock backend: fault injection (a clean run counts C
 * backend calls — slabs from host_alloc, streams, buffers, queued transfers — and host
 * allocations; then for N = 1..C the Nth fails, and in a second mode every call from N
 * on): every run ends in the injected status, nothing leaks (test allocator) and the
 * context still destroys; trim and retry: with the mock failing the first slab
 * allocation, the pool returns its cached slabs once and the retry succeeds, naming the
 * trimmed bytes (and, failing twice, the error says what was trimmed);
 * KILN_POOL=debug never reissues a freed block (a second free is always refused);
 * KILN_POOL=off gives every block its own backend allocation. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"
#include "test_alloc.h"

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

/* Never asserts: class blocks and a huge one, a transfer from a block freed on another
 * stream with the transfer queued, a reuse, blocking frees, a trim. */
static run_result run_scenario(kiln_device dev) {
  run_result res = {KILN_SUCCESS, "", 0};
  kiln_context ctx = NULL;
  kiln_stream s1 = NULL, s2 = NULL;
  kiln_buffer buf = NULL;
  unsigned char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
  static unsigned char back[8192];
  kiln_pending w = KILN_PENDING_INIT;
  STEP("kiln_context_create", kiln_context_create(dev, NULL, &ctx));
  STEP("kiln_stream_create", kiln_stream_create(ctx, NULL, &s1));
  STEP("kiln_stream_create", kiln_stream_create(ctx, NULL, &s2));
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 8192;
  STEP("kiln_buffer_create", kiln_buffer_create(ctx, &bd, &buf));
  STEP("kiln_host_alloc", kiln_host_alloc(ctx, 8192, (void **)&a));
  STEP("kiln_host_alloc", kiln_host_alloc(ctx, 70000, (void **)&b));
  STEP("kiln_host_alloc", kiln_host_alloc(ctx, 3u << 20, (void **)&c));
  memset(a, 0x5A, 8192);
  STEP("kiln_buffer_write_async", kiln_buffer_write_async(s1, buf, 0, 8192, a, &w));
  STEP("kiln_host_free_on", kiln_host_free_on(ctx, a, s2));
  a = NULL;
  STEP("kiln_host_free_on", kiln_host_free_on(ctx, c, s1));
  c = NULL;
  STEP("kiln_wait", kiln_wait(&w));
  STEP("kiln_host_free", kiln_host_free(ctx, b));
  b = NULL;
  STEP("kiln_host_alloc", kiln_host_alloc(ctx, 8000, (void **)&d));
  STEP("kiln_buffer_read", kiln_buffer_read(buf, 0, 8192, back));
  res.data_ok = back[0] == 0x5A && back[8191] == 0x5A;
  STEP("kiln_host_free_on", kiln_host_free_on(ctx, d, s1));
  d = NULL;
  STEP("kiln_context_synchronize", kiln_context_synchronize(ctx));
  STEP("kiln_host_pool_trim", kiln_host_pool_trim(ctx, 0));
cleanup:
  if (w.id)
    kiln_pending_release(&w);
  if (ctx) {
    void *live[] = {a, b, c, d};
    for (size_t i = 0; i < 4; i++)
      if (live[i])
        kiln_host_free(ctx, live[i]);
  }
  kiln_buffer_destroy(buf);
  kiln_stream_destroy(s2);
  kiln_stream_destroy(s1);
  kiln_context_destroy(ctx);
  return res;
}

/* One run; returns the count of calls (backend or host allocations) it made. */
static uint64_t run_checked(kiln_device dev, kt_sweep_kind kind, kt_sweep_mode mode, uint64_t n) {
  char where[96];
  kt_sweep_label(kind, mode, n, where, sizeof where);
  KT_OK(kt_alloc_install());
  kt_sweep_arm(kind, mode, n, KILN_ERROR_OUT_OF_HOST_MEMORY);
  run_result res = run_scenario(dev);
  kt_alloc_stats as = kt_alloc_get_stats();
  kt_alloc_fail_none();
  uint64_t calls = kind == KT_SWEEP_BACKEND ? kiln_mock_calls() : as.calls;
  int hit = kind == KT_SWEEP_BACKEND ? kiln_mock_failures() > 0 : as.failures > 0;
  KT_OK(kiln_mock_configure(NULL));
  if (kiln_set_allocator(NULL) != KILN_SUCCESS)
    fail_msg("%s: a context survived the run", where);
  if (!kt_alloc_check_clean(where))
    fail_msg("%s: host blocks leaked or freed wrongly", where);
  if (kiln_mock_buffer_bytes() != 0)
    fail_msg("%s: %llu bytes of device memory left allocated", where,
             (unsigned long long)kiln_mock_buffer_bytes());
  if (!hit) {
    if (res.status != KILN_SUCCESS)
      fail_msg("%s: nothing was injected, yet %s returned %s (%s)", where, res.step,
               kiln_status_name(res.status), kiln_last_error()->message);
    if (!res.data_ok)
      fail_msg("%s: a run without failures read wrong data", where);
    return calls;
  }
  if (res.status != KILN_ERROR_OUT_OF_HOST_MEMORY && res.status != KILN_ERROR_DEPENDENCY_FAILED &&
      res.status != KILN_ERROR_OUT_OF_DEVICE_MEMORY)
    fail_msg("%s: expected the injected status, got %s from %s", where,
             kiln_status_name(res.status), res.status == KILN_SUCCESS ? "(nothing)" : res.step);
  return calls;
}

static void sweep(kt_sweep_kind kind, kt_sweep_mode mode) {
  kiln_device dev = kt_mock_device();
  uint64_t c = run_checked(dev, kind, KT_SWEEP_CLEAN, 0);
  fprintf(stderr, "clean run: %llu calls\n", (unsigned long long)c);
  if (c < 8)
    fail_msg("the scenario made only %llu calls", (unsigned long long)c);
  for (uint64_t n = 1; n <= c; n++)
    run_checked(dev, kind, mode, n);
}

static void backend_failure_nth(void **state) {
  (void)state;
  sweep(KT_SWEEP_BACKEND, KT_SWEEP_NTH);
}
static void backend_failure_from(void **state) {
  (void)state;
  sweep(KT_SWEEP_BACKEND, KT_SWEEP_FROM);
}
static void alloc_failure_nth(void **state) {
  (void)state;
  sweep(KT_SWEEP_ALLOC, KT_SWEEP_NTH);
}
static void alloc_failure_from(void **state) {
  (void)state;
  sweep(KT_SWEEP_ALLOC, KT_SWEEP_FROM);
}

/* 2 MiB cached in the 64 KiB class; a 1 MiB block needs a new 4 MiB slab, whose first
 * host_alloc fails: the pool trims once and the retry succeeds. */
static void trim_and_retry(void **state) {
  (void)state;
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  void *p = NULL, *big = NULL;
  KT_OK(kiln_host_alloc(ctx, 65536, &p));
  KT_OK(kiln_host_free(ctx, p));
  kiln_pool_stats s = KILN_POOL_STATS_INIT;
  KT_OK(kiln_host_pool_get_stats(ctx, &s));
  assert_int_equal(s.bytes_cached, 2u << 20);
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.fail_call = 1; /* the next backend call: the 4 MiB slab's host_alloc */
  mc.fail_status = KILN_ERROR_OUT_OF_HOST_MEMORY;
  KT_OK(kiln_mock_configure(&mc));
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_INFO);
  KT_OK(kiln_host_alloc(ctx, 1u << 20, &big));
  kt_log_capture_stop(&cap);
  assert_int_equal(kiln_mock_failures(), 1);
  assert_true(kt_log_capture_has(&cap, "trimmed 2097152 cached bytes"));
  KT_OK(kiln_host_pool_get_stats(ctx, &s));
  assert_int_equal(s.bytes_reserved, 4u << 20);
  assert_int_equal(s.device_frees, 1);
  /* failing twice: the error is the backend's, and the suggestion names the trim */
  KT_OK(kiln_host_alloc(ctx, 65536, &p));
  KT_OK(kiln_host_free(ctx, p)); /* a 2 MiB slab cached again */
  mc.fail_call = 0;
  mc.fail_from_call = 1;
  KT_OK(kiln_mock_configure(&mc));
  void *none = NULL;
  KT_EXPECT(kiln_host_alloc(ctx, 3u << 20, &none), KILN_ERROR_OUT_OF_HOST_MEMORY);
  assert_null(none);
  assert_non_null(strstr(kiln_last_error()->suggestion, "2097152 cached bytes"));
  assert_int_equal(kiln_mock_failures(), 2);
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_host_pool_get_stats(ctx, &s));
  assert_int_equal(s.bytes_reserved, 4u << 20); /* only the live block's slab */
  KT_OK(kiln_host_free(ctx, big));
  KT_OK(kiln_context_destroy(ctx));
}

static void debug_mode_never_reissues(void **state) {
  (void)state;
  setenv("KILN_POOL", "debug", 1);
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  void *seen[16];
  for (int i = 0; i < 16; i++) {
    KT_OK(kiln_host_alloc(ctx, 4096, &seen[i]));
    for (int j = 0; j < i; j++)
      assert_ptr_not_equal(seen[i], seen[j]);
    KT_OK(kiln_host_free(ctx, seen[i]));
    KT_EXPECT_MSG(kiln_host_free(ctx, seen[i]), KILN_ERROR_INVALID_ARGUMENT, "freed already");
  }
  KT_OK(kiln_context_destroy(ctx));
  setenv("KILN_POOL", "off", 1);
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  for (int i = 0; i < 4; i++) {
    void *p = NULL;
    KT_OK(kiln_host_alloc(ctx, 4096, &p));
    KT_OK(kiln_host_free(ctx, p));
  }
  kiln_pool_stats s = KILN_POOL_STATS_INIT;
  KT_OK(kiln_host_pool_get_stats(ctx, &s));
  assert_int_equal(s.device_allocs, 4);
  assert_int_equal(s.device_frees, 4);
  assert_int_equal(s.bytes_reserved, 0);
  KT_OK(kiln_context_destroy(ctx));
  unsetenv("KILN_POOL");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(backend_failure_nth), cmocka_unit_test(backend_failure_from),
    cmocka_unit_test(alloc_failure_nth),   cmocka_unit_test(alloc_failure_from),
    cmocka_unit_test(trim_and_retry),      cmocka_unit_test(debug_mode_never_reissues),
};
KT_MAIN_MOCK(tests)
