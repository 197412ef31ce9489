/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock cuda-fake */
/* kiln_kernel_get_launch_config: the work-group size a launch runs with and why — the
 * caller's when given, else the backend's choice for the kernel (OpenCL: the kernel's
 * preferred multiple; CUDA: the occupancy API's block; cpu: a native kernel's whole
 * range; the mock makes none), every group covering the range; the range is checked as
 * a launch checks it; KILN_LOG=debug names the choice at a launch that leaves it to
 * kiln. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

static void chosen_and_given(void **state) {
  kt_env *env = *state;
  kiln_kernel k = NULL;
  KT_OK(kt_kernel(env->ctx, "vecadd", &k));
  kiln_range r = kiln_range_1d(1000);
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  KT_OK(kiln_kernel_get_launch_config(k, &r, &c));
  assert_int_equal(c.chosen, 1);
  assert_true(c.local[0] >= 1 && c.local[1] == 1 && c.local[2] == 1);
  assert_true(c.groups[0] * c.local[0] >= 1000 && (c.groups[0] - 1) * c.local[0] < 1000);
  assert_true(c.why[0] != '\0');
  static const char *const expect[] = {[KILN_BACKEND_CPU] = "whole range in one call",
                                       [KILN_BACKEND_OPENCL] = "preferred work-group multiple",
                                       [KILN_BACKEND_CUDA] = "occupancy API",
                                       [KILN_BACKEND_MOCK] = "no choice"};
  kiln_backend_kind b = kt_backend();
  if ((size_t)b < sizeof expect / sizeof expect[0] && expect[b] && !strstr(c.why, expect[b]))
    fail_msg("%s: why is '%s', expected it to say '%s'", kiln_backend_name(b), c.why, expect[b]);

  r.local[0] = 8;
  kiln_launch_config g = KILN_LAUNCH_CONFIG_INIT;
  KT_OK(kiln_kernel_get_launch_config(k, &r, &g));
  assert_int_equal(g.chosen, 0);
  if (b == KILN_BACKEND_CPU) { /* a native kernel: the whole range, whatever was asked */
    assert_int_equal(g.local[0], 1000);
    assert_non_null(strstr(g.why, "whole range"));
  } else {
    assert_int_equal(g.local[0], 8);
    assert_int_equal(g.groups[0], 125);
    assert_non_null(strstr(g.why, "caller's"));
  }

  kiln_range r2 = kiln_range_2d(100, 30);
  KT_OK(kiln_kernel_get_launch_config(k, &r2, &c));
  assert_true(c.groups[0] * c.local[0] >= 100 && c.groups[1] * c.local[1] >= 30);
  assert_int_equal(c.groups[2], 1);
  KT_OK(kiln_kernel_destroy(k));
}

static void refusals(void **state) {
  kt_env *env = *state;
  kiln_kernel k = NULL;
  KT_OK(kt_kernel(env->ctx, "vecadd", &k));
  kiln_range r = kiln_range_1d(64);
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  KT_EXPECT_MSG(kiln_kernel_get_launch_config(k, &r, NULL), KILN_ERROR_INVALID_ARGUMENT,
                "config (the out-parameter) is NULL");
  kiln_launch_config small = c;
  small.struct_size = 8;
  KT_EXPECT_MSG(kiln_kernel_get_launch_config(k, &r, &small), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_LAUNCH_CONFIG_INIT");
  KT_EXPECT(kiln_kernel_get_launch_config(NULL, &r, &c), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT_MSG(kiln_kernel_get_launch_config(k, NULL, &c), KILN_ERROR_INVALID_ARGUMENT,
                "range is NULL");
  kiln_range bad = r;
  bad.dims = 0;
  KT_EXPECT_MSG(kiln_kernel_get_launch_config(k, &bad, &c), KILN_ERROR_INVALID_ARGUMENT,
                "range->dims is 0");
  bad = r;
  bad.local[0] = env->props.max_work_group_size + 1;
  KT_EXPECT(kiln_kernel_get_launch_config(k, &bad, &c), KILN_ERROR_LIMIT_EXCEEDED);
  KT_OK(kiln_kernel_destroy(k));
}

static void debug_log_names_the_choice(void **state) {
  kt_env *env = *state;
  kiln_kernel k = NULL;
  KT_OK(kt_kernel(env->ctx, "kt_set_u32", &k));
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 256 * 4;
  kiln_buffer b = NULL;
  KT_OK(kiln_buffer_create(env->ctx, &bd, &b));
  uint32_t v = 7;
  kiln_arg args[2] = {kiln_arg_buffer(b), kiln_arg_scalar(&v, sizeof v)};
  kiln_range r = kiln_range_1d(256);
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_DEBUG);
  KT_OK(kiln_launch(env->stream, k, &r, args, 2));
  kt_log_capture_stop(&cap);
  assert_true(kt_log_capture_has(&cap, "kernel 'kt_set_u32'"));
  assert_true(kt_log_capture_has(&cap, "local size"));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(chosen_and_given, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(refusals, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(debug_log_names_the_choice, kt_setup, kt_teardown),
  };
  if (!kt_backend_available(kt_backend())) {
    fprintf(stderr, "SKIP: the %s backend is not available\n", kiln_backend_name(kt_backend()));
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
