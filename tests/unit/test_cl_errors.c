/* SPDX-License-Identifier: MIT */
/* The OpenCL backend's status table (src/backends/opencl/cl_api.c): every error code of
 * OpenCL 1.2 has its own name, codes outside the table read CL_UNKNOWN_ERROR, and
 * kiln__cl_fail maps each code to kiln's status while keeping the backend, the native
 * code and name, and the failing call in kiln_last_error(). PoCL raises only a few of
 * these codes, so most of the table is reached only here. Needs no OpenCL driver.
 * kiln-test-labels: unit
 * kiln-test-link: static */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backends/opencl/cl_api.h"

/* OpenCL 1.2's error codes: -1..-19 and -30..-68 (cl.h). */
static int is_cl12_error(int code) {
  return (code <= -1 && code >= -19) || (code <= -30 && code >= -68);
}

static void every_code_has_its_own_name(void **state) {
  (void)state;
  const char *names[70] = {0};
  for (int code = -1; code >= -69; code--) {
    const char *name = kiln__cl_error_name(code);
    assert_non_null(name);
    if (!is_cl12_error(code)) {
      assert_string_equal(name, "CL_UNKNOWN_ERROR");
      continue;
    }
    assert_true(strncmp(name, "CL_", 3) == 0);
    assert_string_not_equal(name, "CL_UNKNOWN_ERROR");
    for (int other = -1; other > code; other--)
      if (names[-other])
        assert_string_not_equal(names[-other], name);
    names[-code] = name;
  }
  assert_string_equal(kiln__cl_error_name(CL_SUCCESS), "CL_SUCCESS");
  assert_string_equal(kiln__cl_error_name(CL_INVALID_KERNEL_NAME), "CL_INVALID_KERNEL_NAME");
  assert_string_equal(kiln__cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
  assert_string_equal(kiln__cl_error_name(7), "CL_UNKNOWN_ERROR");
  assert_string_equal(kiln__cl_error_name(-9999), "CL_UNKNOWN_ERROR");
}

static void each_code_maps_to_a_status_with_its_detail(void **state) {
  (void)state;
  static const struct {
    cl_int code;
    kiln_status status;
  } map[] = {
      {CL_OUT_OF_HOST_MEMORY, KILN_ERROR_OUT_OF_HOST_MEMORY},
      {CL_MEM_OBJECT_ALLOCATION_FAILURE, KILN_ERROR_OUT_OF_DEVICE_MEMORY},
      {CL_OUT_OF_RESOURCES, KILN_ERROR_OUT_OF_DEVICE_MEMORY},
      {CL_BUILD_PROGRAM_FAILURE, KILN_ERROR_COMPILE_FAILED},
      {CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, KILN_ERROR_DEPENDENCY_FAILED},
      {CL_INVALID_KERNEL_ARGS, KILN_ERROR_KERNEL_ARGS},
      {CL_INVALID_ARG_SIZE, KILN_ERROR_KERNEL_ARGS},
      {CL_INVALID_ARG_VALUE, KILN_ERROR_KERNEL_ARGS},
      {CL_INVALID_WORK_GROUP_SIZE, KILN_ERROR_LIMIT_EXCEEDED},
      {CL_INVALID_WORK_ITEM_SIZE, KILN_ERROR_LIMIT_EXCEEDED},
      {CL_INVALID_GLOBAL_WORK_SIZE, KILN_ERROR_LIMIT_EXCEEDED},
      {CL_DEVICE_NOT_AVAILABLE, KILN_ERROR_DEVICE_LOST},
      {CL_INVALID_VALUE, KILN_ERROR_BACKEND},
      {CL_INVALID_MEM_OBJECT, KILN_ERROR_BACKEND},
      {-9999, KILN_ERROR_BACKEND},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    kiln_status st = kiln__cl_fail(map[i].code, "clEnqueueSomething");
    assert_int_equal(st, map[i].status);
    const kiln_error_info *e = kiln_last_error();
    assert_int_equal(e->status, map[i].status);
    assert_int_equal(e->backend, KILN_BACKEND_OPENCL);
    assert_int_equal(e->native_code, map[i].code);
    assert_string_equal(e->native_name, kiln__cl_error_name(map[i].code));
    char code[32];
    snprintf(code, sizeof code, "(%d)", (int)map[i].code);
    assert_non_null(strstr(e->message, "clEnqueueSomething failed"));
    assert_non_null(strstr(e->message, kiln__cl_error_name(map[i].code)));
    assert_non_null(strstr(e->message, code));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_code_has_its_own_name),
      cmocka_unit_test(each_code_maps_to_a_status_with_its_detail),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
