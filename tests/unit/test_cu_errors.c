/* SPDX-License-Identifier: MIT */
/* The CUDA backend's status table (src/backends/cuda/loader.c): kiln__cu_fail maps each
 * driver code to kiln's status, keeps the backend, the native code and name and the
 * failing call, and suggests a reset after a sticky error and a driver update after
 * CUDA_ERROR_UNSUPPORTED_PTX_VERSION; a code kiln does not know, with no driver loaded
 * to name it, reads CUDA_ERROR_UNKNOWN_<n>. Most of these codes the fake libcuda never
 * returns, and a real GPU only in failure; this reaches them without either.
 * kiln-test-labels: unit cuda-nogpu
 * kiln-test-link: static */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backends/cuda/cuda_api.h"

static void each_code_maps_to_a_status_with_its_detail(void **state) {
  (void)state;
  static const struct {
    kiln_CUresult code;
    kiln_status status;
    const char *name;
    const char *suggestion; /* a part of it, or NULL */
  } map[] = {
      {kiln_CUDA_ERROR_OUT_OF_MEMORY, KILN_ERROR_OUT_OF_DEVICE_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY",
       NULL},
      {kiln_CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, KILN_ERROR_LIMIT_EXCEEDED,
       "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", NULL},
      {kiln_CUDA_ERROR_INVALID_IMAGE, KILN_ERROR_COMPILE_FAILED, "CUDA_ERROR_INVALID_IMAGE", NULL},
      {kiln_CUDA_ERROR_NO_BINARY_FOR_GPU, KILN_ERROR_COMPILE_FAILED, "CUDA_ERROR_NO_BINARY_FOR_GPU",
       NULL},
      {kiln_CUDA_ERROR_INVALID_PTX, KILN_ERROR_COMPILE_FAILED, "CUDA_ERROR_INVALID_PTX", NULL},
      {kiln_CUDA_ERROR_UNSUPPORTED_PTX_VERSION, KILN_ERROR_COMPILE_FAILED,
       "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "update the NVIDIA driver"},
      {kiln_CUDA_ERROR_JIT_COMPILER_NOT_FOUND, KILN_ERROR_COMPILE_FAILED,
       "CUDA_ERROR_JIT_COMPILER_NOT_FOUND", NULL},
      {kiln_CUDA_ERROR_NOT_SUPPORTED, KILN_ERROR_UNSUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", NULL},
      {kiln_CUDA_ERROR_NO_DEVICE, KILN_ERROR_DEVICE_NOT_FOUND, "CUDA_ERROR_NO_DEVICE", NULL},
      {kiln_CUDA_ERROR_INVALID_DEVICE, KILN_ERROR_DEVICE_NOT_FOUND, "CUDA_ERROR_INVALID_DEVICE",
       NULL},
      {kiln_CUDA_ERROR_ILLEGAL_ADDRESS, KILN_ERROR_DEVICE_LOST, "CUDA_ERROR_ILLEGAL_ADDRESS",
       "kiln_device_reset()"},
      {kiln_CUDA_ERROR_LAUNCH_FAILED, KILN_ERROR_DEVICE_LOST, "CUDA_ERROR_LAUNCH_FAILED",
       "kiln_device_reset()"},
      {kiln_CUDA_ERROR_ECC_UNCORRECTABLE, KILN_ERROR_DEVICE_LOST, "CUDA_ERROR_ECC_UNCORRECTABLE",
       "kiln_device_reset()"},
      {kiln_CUDA_ERROR_INVALID_VALUE, KILN_ERROR_BACKEND, "CUDA_ERROR_INVALID_VALUE", NULL},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    kiln_status st = kiln__cu_fail(map[i].code, "cuSomething");
    assert_int_equal(st, map[i].status);
    const kiln_error_info *e = kiln_last_error();
    assert_int_equal(e->status, map[i].status);
    assert_int_equal(e->backend, KILN_BACKEND_CUDA);
    assert_int_equal(e->native_code, (int64_t)map[i].code);
    assert_string_equal(e->native_name, map[i].name);
    char code[32];
    snprintf(code, sizeof code, "(%d)", (int)map[i].code);
    assert_non_null(strstr(e->message, "cuSomething failed"));
    assert_non_null(strstr(e->message, map[i].name));
    assert_non_null(strstr(e->message, code));
    if (map[i].suggestion)
      assert_non_null(strstr(e->suggestion, map[i].suggestion));
    assert_int_equal(kiln__cu_is_sticky(map[i].code), map[i].status == KILN_ERROR_DEVICE_LOST);
  }
}

static void an_unknown_code_is_named_by_its_number(void **state) {
  (void)state;
  /* no driver is loaded in this process, so cuGetErrorName cannot name it either */
  assert_string_equal(kiln__cu_error_name((kiln_CUresult)12345), "CUDA_ERROR_UNKNOWN_12345");
  assert_int_equal(kiln__cu_fail((kiln_CUresult)12345, "cuOther"), KILN_ERROR_BACKEND);
  assert_non_null(strstr(kiln_last_error()->message, "CUDA_ERROR_UNKNOWN_12345 (12345)"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(each_code_maps_to_a_status_with_its_detail),
      cmocka_unit_test(an_unknown_code_is_named_by_its_number),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
