/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl cuda-fake */
/* Available memory per backend (docs/memory.md, issue #20). OpenCL: no portable query,
 * so the global size minus kiln's live buffers — exact against the buffers this test
 * makes, and the verdict and the refusal say it is an estimate. cpu: MemAvailable minus
 * kiln's live buffers, and kiln_buffer_create refuses by accounting — buffers of
 * max_alloc_bytes (half the machine's memory) are refused with OUT_OF_DEVICE_MEMORY at
 * the call once their bytes pass MemAvailable, instead of succeeding by overcommit and
 * ending in an OOM kill; a plan larger than the machine is refused with a batch that
 * fits. CUDA (the fake driver, whose cuMemGetInfo is exact): the same checks, and the
 * verdict is no estimate. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

static uint64_t free_of(kiln_device d) {
  uint64_t f = 0, t = 0;
  KT_OK(kiln_device_mem_info(d, &f, &t));
  return f;
}

static void exact_against_live_buffers(void **state) {
  kt_env *env = *state;
  if (kt_backend() != KILN_BACKEND_OPENCL && kt_backend() != KILN_BACKEND_CUDA)
    skip();
  const int ocl = kt_backend() == KILN_BACKEND_OPENCL;
  uint64_t f0 = free_of(env->device), total = 0, f = 0;
  KT_OK(kiln_device_mem_info(env->device, &f, &total));
  assert_int_equal(total, env->props.global_mem_bytes);
  kiln_buffer b = kt_buffer(env->ctx, 3u << 20);
  assert_int_equal(free_of(env->device), f0 - (3u << 20));
  KT_OK(kiln_buffer_destroy(b));
  assert_int_equal(free_of(env->device), f0);
  /* a plan of the whole global size never fits; the refusal says it is an estimate */
  kiln_budget_buffer one = {1, 0, 1};
  kiln_budget_plan plan = KILN_BUDGET_PLAN_INIT;
  plan.buffers = &one;
  plan.buffer_count = 1;
  plan.safety_margin = 0.25;
  plan.elements = env->props.max_alloc_bytes; /* within the largest allocation */
  b = kt_buffer(env->ctx, 1u << 20);
  uint64_t avail = f0 - (1u << 20);
  double k = (double)avail * 0.25;
  uint64_t usable = avail - (uint64_t)k - ((double)(uint64_t)k < k ? 1 : 0);
  kiln_budget_verdict v = KILN_BUDGET_VERDICT_INIT;
  kiln_status st = kiln_budget_check(env->ctx, &plan, &v);
  assert_int_equal(v.estimate, ocl);
  assert_int_equal(v.available_bytes, avail);
  assert_int_equal(v.usable_bytes, usable);
  uint64_t max = usable < env->props.max_alloc_bytes ? usable : env->props.max_alloc_bytes;
  assert_int_equal(v.max_safe_elements, max);
  if (plan.elements > usable) {
    KT_EXPECT(st, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
    if (ocl)
      KT_MSG_HAS("an estimate");
    char want[96];
    snprintf(want, sizeof want, "at most %llu elements", (unsigned long long)max);
    assert_non_null(strstr(kiln_last_error()->suggestion, want));
  } else {
    KT_OK(st);
  }
  plan.elements = usable + 1; /* above the usable bytes: refused either way */
  KT_EXPECT_MSG(kiln_budget_check(env->ctx, &plan, &v), KILN_ERROR_OUT_OF_DEVICE_MEMORY,
                usable + 1 > env->props.max_alloc_bytes ? "largest allocation"
                : ocl                                   ? "an estimate"
                                                        : "usable");
  KT_OK(kiln_buffer_destroy(b));
}

static void cpu_refuses_by_accounting(void **state) {
  kt_env *env = *state;
  if (kt_backend() != KILN_BACKEND_CPU)
    skip();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  skip(); /* the sanitizers' allocators map shadow for what they hand out */
#endif
  enum { N = 16 };
  kiln_buffer bufs[N];
  int made = 0;
  kiln_status st = KILN_SUCCESS;
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = (size_t)env->props.max_alloc_bytes; /* half the machine's memory */
  for (; made < N; made++)
    if ((st = kiln_buffer_create(env->ctx, &d, &bufs[made])) != KILN_SUCCESS)
      break;
  fprintf(stderr, "%d buffers of %llu bytes made before the refusal\n", made,
          (unsigned long long)d.bytes);
  KT_EXPECT(st, KILN_ERROR_OUT_OF_DEVICE_MEMORY); /* overcommit would have made all 16 */
  KT_MSG_HAS("MemAvailable");
  assert_true(made < 2);
  /* what is left is what the machine has less kiln's live buffers */
  uint64_t f = free_of(env->device);
  kiln_budget_buffer one = {1, 0, 1};
  kiln_budget_plan plan = KILN_BUDGET_PLAN_INIT;
  plan.buffers = &one;
  plan.buffer_count = 1;
  plan.elements = env->props.global_mem_bytes; /* the whole machine */
  plan.scratch_bytes = 4096;
  kiln_budget_verdict v = KILN_BUDGET_VERDICT_INIT;
  KT_EXPECT(kiln_budget_check(env->ctx, &plan, &v), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  assert_int_equal(v.estimate, 0);
  assert_true(v.available_bytes <= f + (f >> 4) + (64u << 20)); /* MemAvailable moves */
  assert_true(v.max_safe_elements + 4096 <= v.usable_bytes);
  assert_true(v.max_safe_elements <= env->props.max_alloc_bytes);
  char want[64];
  snprintf(want, sizeof want, "at most %llu elements", (unsigned long long)v.max_safe_elements);
  assert_non_null(strstr(kiln_last_error()->suggestion, want));
  for (int i = 0; i < made; i++)
    KT_OK(kiln_buffer_destroy(bufs[i]));
  /* once freed, the accounting gives the bytes back */
  if (made) {
    KT_OK(kiln_buffer_create(env->ctx, &d, &bufs[0]));
    KT_OK(kiln_buffer_destroy(bufs[0]));
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(exact_against_live_buffers, kt_setup_plain, kt_teardown),
    cmocka_unit_test_setup_teardown(cpu_refuses_by_accounting, kt_setup_plain, kt_teardown),
};
KT_MAIN(tests)
