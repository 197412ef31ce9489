/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cuda cuda-fake */
/* Issue 12 on CUDA (NVRTC; the fake libcuda in CI): a NUL inside a program's
 * source_bytes is refused before NVRTC sees the source, and a kernel kiln's parser
 * found but the compiled module lacks (hidden by `#if 0`: kiln reads signatures
 * before preprocessing) is reported in kiln's words, with CUDA_ERROR_NOT_FOUND from
 * cuModuleGetFunction kept as the native code; more than 64 kernels in one program
 * are refused in user terms before NVRTC runs. The OpenCL side is in
 * test_reliability_input.c. */
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

static kiln_status create_program(kiln_context ctx, const char *source, size_t bytes,
                                  kiln_program *p) {
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = source;
  d.source_bytes = bytes;
  d.name = "reliability.kiln";
  return kiln_program_create(ctx, &d, p);
}

static void source_nul_refused(void **state) {
  kt_env *env = *state;
  static const char src[] = "KILN_KERNEL void k(int a) { }\0KILN_KERNEL void after_nul(int a) { }";
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  KT_EXPECT_MSG(create_program(env->ctx, src, sizeof src - 1, &p), KILN_ERROR_INVALID_ARGUMENT,
                "NUL byte at offset 29");
  assert_null(p);
  assert_int_equal(kiln_last_error()->backend, KILN_BACKEND_NONE);
}

static void kernel_hidden_by_the_preprocessor_named(void **state) {
  kt_env *env = *state;
  static const char src[] = "KILN_KERNEL void k(int a) { }\n"
                            "#if 0\n"
                            "KILN_KERNEL void hidden_by_if0(int a) { }\n"
                            "#endif\n";
  kiln_program p = NULL;
  KT_OK(create_program(env->ctx, src, 0, &p));
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, "k", &k));
  KT_OK(kiln_kernel_destroy(k));
  k = (kiln_kernel)(uintptr_t)0x1;
  kiln_status st = kiln_kernel_create(p, "hidden_by_if0", &k);
  assert_int_not_equal(st, KILN_SUCCESS);
  assert_null(k);
  const kiln_error_info *e = kiln_last_error();
  assert_int_equal(e->status, st);
  KT_MSG_HAS("kernel 'hidden_by_if0' was found in the source by kiln's parser");
  KT_MSG_HAS("is not in the program the cuda compiler built");
  assert_int_equal(e->backend, KILN_BACKEND_CUDA);
  assert_string_equal(e->native_name, "CUDA_ERROR_NOT_FOUND");
  assert_int_equal(e->native_code, 500);
  assert_non_null(kt_strcasestr(e->suggestion, "#if 0"));
  KT_OK(kiln_program_destroy(p));
}

/* 70 kernels: refused before NVRTC runs, the limit said in user terms. */
static void program_over_the_kernel_limit_says_so(void **state) {
  kt_env *env = *state;
  static char src[70 * 40];
  size_t at = 0;
  for (int i = 0; i < 70; i++)
    at += (size_t)snprintf(src + at, sizeof src - at, "KILN_KERNEL void k%02d(int a) { }\n", i);
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  KT_EXPECT_MSG(create_program(env->ctx, src, 0, &p), KILN_ERROR_LIMIT_EXCEEDED,
                "the source defines 70 kernels; a kiln program holds at most 64");
  assert_null(p);
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "split the source"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(source_nul_refused, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(kernel_hidden_by_the_preprocessor_named, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(program_over_the_kernel_limit_says_so, kt_setup, kt_teardown),
};

KT_MAIN(tests)
