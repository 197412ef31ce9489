/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* The memory budget (include/kiln/budget.h) on the mock device, whose memory is exact
 * (1 GiB, minus the bytes its buffers hold; unbacked buffers take address space only):
 * a constructed plan's verdict and suggestion exact to the byte and element (needed,
 * available, usable with the margin, cached bytes of a pool, the largest batch before and
 * after a trim, the max_alloc_bytes cap); a plan that fits; a plan whose sizes overflow
 * and other bad input refused naming the field; trim and retry: the mock fails the
 * first device allocation with OUT_OF_DEVICE_MEMORY, the pool (or kiln_buffer_create)
 * gives its cached slabs back once and the retry succeeds, the log naming the bytes;
 * failing twice, the error's suggestion names them. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define MIB (1024ull * 1024ull)

/* available - ceil(available * margin), as docs/memory.md defines usable */
static uint64_t usable_of(uint64_t available, double margin) {
  double k = (double)available * margin;
  uint64_t keep = (uint64_t)k;
  return available - keep - ((double)keep < k ? 1 : 0);
}

static kiln_buffer unbacked(kiln_context ctx, size_t bytes) {
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = bytes;
  kiln_buffer b = NULL;
  KT_OK(kiln_buffer_create(ctx, &d, &b));
  return b;
}

static void constructed_verdict_exact(void **state) {
  (void)state;
  assert_int_equal(kiln_mock_buffer_bytes(), 0);
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.unbacked_buffers = 1;
  KT_OK(kiln_mock_configure(&mc));
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_buffer held[3];
  for (int i = 0; i < 3; i++)
    held[i] = unbacked(ctx, 200 * MIB); /* 600 MiB of the 1 GiB used */
  kiln_pool pool = NULL;
  kiln_buffer tmp = NULL;
  KT_OK(kiln_pool_create(ctx, NULL, &pool));
  KT_OK(kiln_pool_alloc(pool, NULL, 1000, &tmp)); /* a 2 MiB class slab */
  KT_OK(kiln_buffer_destroy(tmp));                /* cached now */
  const uint64_t total = 1024 * MIB, used = 600 * MIB + 2 * MIB, cached = 2 * MIB;
  const uint64_t available = total - used;            /* 422 MiB */
  const uint64_t usable = usable_of(available, 0.10); /* the default margin */
  /* two input buffers of 16 B per element, one output of 4 B per element + a 4 KiB
   * header, 1 MiB of scratch: 36 B per element, 1 MiB + 4 KiB fixed */
  kiln_budget_buffer bufs[2] = {{16, 0, 2}, {4, 4096, 1}};
  kiln_budget_plan plan = KILN_BUDGET_PLAN_INIT;
  plan.elements = 14u * 1000u * 1000u; /* every buffer within max_alloc_bytes */
  plan.buffers = bufs;
  plan.buffer_count = 2;
  plan.scratch_bytes = MIB;
  kiln_budget_verdict v = KILN_BUDGET_VERDICT_INIT;
  const uint64_t needed = MIB + 2 * 16 * plan.elements + 4 * plan.elements + 4096;
  const uint64_t fixed = MIB + 4096;
  uint64_t max_now = (usable - fixed) / 36;
  uint64_t max_trim = (usable_of(available + cached, 0.10) - fixed) / 36;
  const uint64_t cap = (256 * MIB) / 16; /* an input buffer stays within max_alloc_bytes */
  if (max_trim > cap)
    max_trim = cap;
  if (max_now > cap)
    max_now = cap;
  KT_EXPECT(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  assert_int_equal(v.fits, 0);
  assert_int_equal(v.estimate, 0);
  assert_int_equal(v.needed_bytes, needed);
  assert_int_equal(v.available_bytes, available);
  assert_int_equal(v.total_bytes, total);
  assert_int_equal(v.usable_bytes, usable);
  assert_int_equal(v.cached_bytes, cached);
  assert_int_equal(v.max_safe_elements, max_now);
  assert_int_equal(v.max_safe_elements_after_trim, max_trim);
  char want[160];
  snprintf(want, sizeof want, "needs %llu bytes", (unsigned long long)needed);
  KT_MSG_HAS(want);
  snprintf(want, sizeof want, "%llu bytes available", (unsigned long long)available);
  KT_MSG_HAS(want);
  snprintf(want, sizeof want, "at most %llu elements fits", (unsigned long long)max_now);
  assert_non_null(strstr(kiln_last_error()->suggestion, want));
  snprintf(want, sizeof want, "release %llu cached bytes, and then %llu elements fit",
           (unsigned long long)cached, (unsigned long long)max_trim);
  assert_non_null(strstr(kiln_last_error()->suggestion, want));
  /* the largest batch it named fits; one more does not */
  plan.elements = max_now;
  KT_OK(kiln_budget_check(ctx, &plan, &v));
  assert_int_equal(v.fits, 1);
  plan.elements = max_now + 1;
  KT_EXPECT(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  /* a margin of its own: 50% */
  plan.safety_margin = 0.5;
  plan.elements = 1000;
  KT_OK(kiln_budget_check(ctx, &plan, &v));
  assert_int_equal(v.usable_bytes, available / 2);
  assert_true(v.safety_margin == 0.5);
  /* one buffer above max_alloc_bytes (256 MiB) never fits, whatever the memory */
  plan.safety_margin = 0.0;
  kiln_budget_buffer one = {1, 0, 1};
  plan.buffers = &one;
  plan.buffer_count = 1;
  plan.scratch_bytes = 0;
  plan.elements = 256 * MIB + 1;
  KT_EXPECT_MSG(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_OUT_OF_DEVICE_MEMORY,
                "largest allocation");
  assert_int_equal(v.max_safe_elements, 256 * MIB);
  /* after a trim the cached bytes are available: the verdict says so */
  KT_OK(kiln_pool_trim(pool, 0));
  plan.elements = 1;
  KT_OK(kiln_budget_check(ctx, &plan, &v));
  assert_int_equal(v.cached_bytes, 0);
  assert_int_equal(v.available_bytes, available + cached);
  KT_OK(kiln_pool_destroy(pool));
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_buffer_destroy(held[i]));
  KT_OK(kiln_context_destroy(ctx));
  KT_OK(kiln_mock_configure(NULL));
}

static void bad_plans_refused(void **state) {
  (void)state;
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_budget_plan plan = KILN_BUDGET_PLAN_INIT;
  kiln_budget_verdict v = KILN_BUDGET_VERDICT_INIT;
  kiln_budget_buffer big[2] = {{1, 0, 1}, {UINT64_MAX / 2, 0, 1}};
  plan.buffers = big;
  plan.buffer_count = 2;
  plan.elements = 3;
  KT_EXPECT_MSG(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_INVALID_ARGUMENT, "plan->buffers[1]");
  KT_MSG_HAS("overflows 64 bits");
  big[1] = (kiln_budget_buffer){1, UINT64_MAX - 1, 1}; /* fixed + scaled */
  KT_EXPECT_MSG(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_INVALID_ARGUMENT, "overflows");
  big[1] = (kiln_budget_buffer){1, 0, UINT64_MAX}; /* count */
  KT_EXPECT_MSG(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_INVALID_ARGUMENT, "overflows");
  big[1] = (kiln_budget_buffer){1, 0, 1};
  plan.scratch_bytes = UINT64_MAX - 2; /* the sum */
  KT_EXPECT_MSG(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_INVALID_ARGUMENT, "overflows");
  plan.scratch_bytes = 0;
  plan.safety_margin = 1.0;
  KT_EXPECT_MSG(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_INVALID_ARGUMENT,
                "safety_margin is 1");
  plan.safety_margin = NAN;
  KT_EXPECT(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_INVALID_ARGUMENT);
  plan.safety_margin = -1;
  plan.buffers = NULL;
  KT_EXPECT_MSG(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_INVALID_ARGUMENT,
                "plan->buffers is NULL");
  plan.buffer_count = 0;
  KT_OK(kiln_budget_check(ctx, &plan, &v)); /* an empty plan fits */
  assert_int_equal(v.max_safe_elements, UINT64_MAX);
  KT_EXPECT(kiln_budget_check(ctx, NULL, &v), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_budget_check(ctx, &plan, NULL), KILN_ERROR_INVALID_ARGUMENT);
  plan.struct_size = 4;
  KT_EXPECT_MSG(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_BUDGET_PLAN_INIT");
  plan.struct_size = sizeof plan;
  v.struct_size = 4;
  KT_EXPECT_MSG(kiln_budget_check(ctx, &plan, &v), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_BUDGET_VERDICT_INIT");
  v.struct_size = sizeof v;
  KT_EXPECT(kiln_budget_check(NULL, &plan, &v), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_context_destroy(ctx));
}

/* The pool's first device allocation fails: it trims its cached slab once and retries. */
static void pool_trims_and_retries(void **state) {
  (void)state;
  kiln_context ctx = NULL;
  kiln_pool pool = NULL;
  kiln_buffer a = NULL, b = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  KT_OK(kiln_pool_create(ctx, NULL, &pool));
  KT_OK(kiln_pool_alloc(pool, NULL, 1000, &a));
  KT_OK(kiln_buffer_destroy(a)); /* 2 MiB cached, idle */
  uint64_t before = kiln_mock_buffer_bytes();
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.fail_call = 1; /* the next backend call: the slab of the 128 KiB class */
  mc.fail_status = KILN_ERROR_OUT_OF_DEVICE_MEMORY;
  KT_OK(kiln_mock_configure(&mc));
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_INFO);
  KT_OK(kiln_pool_alloc(pool, NULL, 100000, &b));
  kt_log_capture_stop(&cap);
  assert_int_equal(kiln_mock_failures(), 1);
  assert_true(kt_log_capture_has(&cap, "trimmed 2097152 cached bytes"));
  assert_int_equal(kiln_mock_buffer_bytes(), before); /* one 2 MiB slab for another */
  kiln_pool_stats s = KILN_POOL_STATS_INIT;
  KT_OK(kiln_pool_get_stats(pool, &s));
  assert_int_equal(s.device_frees, 1);
  assert_int_equal(s.bytes_reserved, 2 * MIB);
  /* failing twice: the suggestion names what the trim gave back */
  KT_OK(kiln_pool_alloc(pool, NULL, 1000, &a));
  KT_OK(kiln_buffer_destroy(a)); /* 2 MiB cached again */
  mc.fail_call = 0;
  mc.fail_from_call = 1;
  KT_OK(kiln_mock_configure(&mc));
  kiln_buffer none = NULL;
  KT_EXPECT(kiln_pool_alloc(pool, NULL, 10000, &none), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  assert_non_null(strstr(kiln_last_error()->suggestion, "its 2097152 cached bytes"));
  assert_null(none);
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_pool_destroy(pool));
  KT_OK(kiln_context_destroy(ctx));
}

/* kiln_buffer_create's own allocation fails: the context's pools give back once. */
static void buffer_create_trims_and_retries(void **state) {
  (void)state;
  kiln_context ctx = NULL;
  kiln_pool pool = NULL;
  kiln_buffer a = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  KT_OK(kiln_pool_create(ctx, NULL, &pool));
  KT_OK(kiln_pool_alloc(pool, NULL, 1000, &a));
  KT_OK(kiln_buffer_destroy(a));
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.fail_call = 1;
  mc.fail_status = KILN_ERROR_OUT_OF_DEVICE_MEMORY;
  KT_OK(kiln_mock_configure(&mc));
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_INFO);
  kiln_buffer b = unbacked(ctx, 4096);
  kt_log_capture_stop(&cap);
  assert_int_equal(kiln_mock_failures(), 1);
  assert_true(kt_log_capture_has(&cap, "trimmed 2097152 cached bytes of the context's pools"));
  kiln_pool_stats s = KILN_POOL_STATS_INIT;
  KT_OK(kiln_pool_get_stats(pool, &s));
  assert_int_equal(s.bytes_reserved, 0);
  /* nothing cached: a failure is reported as it is, no retry */
  mc.fail_call = 1;
  KT_OK(kiln_mock_configure(&mc));
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = 4096;
  kiln_buffer c = NULL;
  KT_EXPECT(kiln_buffer_create(ctx, &d, &c), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  assert_int_equal(kiln_mock_failures(), 1);
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_pool_destroy(pool));
  KT_OK(kiln_context_destroy(ctx));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(constructed_verdict_exact),
    cmocka_unit_test(bad_plans_refused),
    cmocka_unit_test(pool_trims_and_retries),
    cmocka_unit_test(buffer_create_trims_and_retries),
};
KT_MAIN_MOCK(tests)
